"""The process harness for tests: it lives in harness/ (benchmarks use it too).

Re-exported under this older name, which the tests import.
"""

from harness.processes import FAST_SETTINGS
from harness.processes import ROOT
from harness.processes import GunicornServer
from harness.processes import PgBouncer
from harness.processes import PostgresServer
from harness.processes import RedisServer
from harness.processes import celery_beat
from harness.processes import celery_worker
from harness.processes import database_url
from harness.processes import django_env
from harness.processes import free_port
from harness.processes import gunicorn_server
from harness.processes import pg_bindir
from harness.processes import pgbouncer_bin
from harness.processes import pgbouncer_server
from harness.processes import postgres_server
from harness.processes import redis_server
from harness.processes import wait_until

__all__ = [
    "FAST_SETTINGS",
    "ROOT",
    "GunicornServer",
    "PgBouncer",
    "PostgresServer",
    "RedisServer",
    "celery_beat",
    "celery_worker",
    "database_url",
    "django_env",
    "free_port",
    "gunicorn_server",
    "pg_bindir",
    "pgbouncer_bin",
    "pgbouncer_server",
    "postgres_server",
    "redis_server",
    "wait_until",
]
