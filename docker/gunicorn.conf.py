"""gunicorn settings of the web tier: the image's default (docker/Dockerfile), the
Kubernetes base (deploy/k8s/base/web.yaml) and what bench/callbacks.py and
bench/token_api.py measure. docs/operations.md §1.4a says why.

Threaded workers (gthread): a callback is answered only once its row is durably
committed, and a durable commit waits for a WAL flush (about a millisecond on an SSD).
With one request per process (sync workers) the CPU idles through every flush; with
several request threads per process, the rows of callbacks waiting together are
stored by one statement and one flush (callbacks/groupcommit.py), and PostgreSQL
groups the flushes of the processes' commits. One process per CPU does the Python
work (each has one GIL); the threads overlap the waits.

Override any value with gunicorn's own GUNICORN_CMD_ARGS (e.g. "--workers 4 --threads
8"), or the process count alone with WEB_CONCURRENCY. Every thread may hold a
PostgreSQL connection: workers × threads counts in the connection budget (§1.5).
"""

import os

wsgi_app = "wecom_provider.wsgi:application"
bind = "0.0.0.0:8000"

worker_class = "gthread"
# One process per CPU this container may use (os.cpu_count() would count the host's).
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, len(os.sched_getaffinity(0))))
# Enough requests in flight per process to share commits (bench/callbacks.py measures
# rows per commit); each one may hold a PostgreSQL connection.
threads = 16
timeout = 30
graceful_timeout = 30
# Behind a load balancer that reuses connections: a little longer than gunicorn's 2 s.
keepalive = 5
accesslog = "-"
