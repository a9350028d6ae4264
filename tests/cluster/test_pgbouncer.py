"""The hot paths behind PgBouncer in transaction pooling (DATABASE_POOLER=pgbouncer-transaction).

Child processes reach the suite's test database through a real PgBouncer whose pool
has fewer server connections than there are clients, so consecutive transactions of
one client really run on different server connections.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from callbacks.models import CallbackEvent
from tests.cluster.conftest import pooled_env
from tests.support import ROOT
from wecom_provider import pglocks

pytestmark = pytest.mark.django_db(transaction=True)


def run_children(env: dict[str, str], *args_per_child: list[str]) -> list[str]:
    """Start one child per argument list at once; return their outputs (all must pass)."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.cluster.child", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in args_per_child
    ]
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=240)
        assert child.returncode == 0, err[-3000:]
        outputs.append(out)
    return outputs


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def test_settings_for_transaction_pooling(pgbouncer):
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        "db = settings.DATABASES['default']; "
        "print(json.dumps([db.get('DISABLE_SERVER_SIDE_CURSORS'), "
        "'prepare_threshold' in db['OPTIONS'], db['OPTIONS'].get('prepare_threshold'), "
        "db['CONN_MAX_AGE']]))"
    )
    env = pooled_env(pgbouncer, DATABASE_CONN_MAX_AGE="0")
    env["DATABASE_URL"] += "?prepare_threshold=5"  # must not re-enable prepared statements
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, True, None, 0]

    bad = pooled_env(pgbouncer, DATABASE_POOLER="pgbouncer-session")
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=bad, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "DATABASE_POOLER must be empty or 'pgbouncer-transaction'" in out.stderr


def test_advisory_lock_excludes_across_processes_through_pgbouncer(pgbouncer):
    """Three processes, one counter, a read-wait-write race under the credential lock's
    database fallback: no update is lost. The control run without the lock loses some,
    so the check can fail."""
    env = pooled_env(pgbouncer)
    children, rounds = 3, 15
    client = redis_client()

    run_children(env, *[["lock", str(children), "k-locked", str(rounds), "locked"]] * children)
    assert int(client.get("counter:k-locked")) == children * rounds

    run_children(env, *[["lock", str(children), "k-open", str(rounds), "unlocked"]] * children)
    assert int(client.get("counter:k-open")) < children * rounds  # the race is real

    # Nothing leaked: no advisory lock is left on any server connection.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert cursor.fetchone()[0] == 0


def test_advisory_lock_lives_in_its_own_transaction():
    """The lock is held by a side connection's transaction, not by Django's connection:
    the guarded work keeps autocommit (no transaction held open across WeCom calls),
    and leaving the block releases the lock."""

    def advisory_locks() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            return cursor.fetchone()[0]

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_pid = cursor.fetchone()[0]
    with pglocks.advisory_lock("token:probe"):
        assert connection.get_autocommit()
        assert not connection.in_atomic_block
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
            holders = [row[0] for row in cursor.fetchall()]
        assert len(holders) == 1
        assert holders[0] != own_pid
    assert advisory_locks() == 0


def _queued_event_ids(client: redis.Redis) -> list[int]:
    """Event ids in the process_batch messages waiting in the broker's queues."""
    ids: list[int] = []
    # Kombu keeps one Redis list per queue and priority step ("default", "default\x06\x163").
    queues = [key for key in client.scan_iter() if client.type(key) == b"list"]
    assert queues, "nothing was published to the broker"
    for queue in queues:
        for raw in client.lrange(queue, 0, -1):
            message = json.loads(raw)
            if message["headers"]["task"] != "callbacks.process_batch":
                continue
            body = message["body"]
            if message["properties"].get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(body)[0]
            ids.extend(args[0])
    return ids


def test_skip_locked_sweeps_take_disjoint_rows_through_pgbouncer(pgbouncer):
    """Three sweepers at once (as three beats would, or a sweeper and a redelivery):
    every stranded row goes out exactly once, none twice."""
    old = timezone.now() - timedelta(minutes=10)
    rows = CallbackEvent.objects.bulk_create(
        [
            CallbackEvent(
                endpoint="command",
                route_id="wwsuite",
                receive_id="wwsuite",
                info_type="change_contact",
                dedupe_key=f"sweep-{n}",
                payload_sealed="",
                priority=n % 5 == 0,
                received_at=old,
            )
            for n in range(600)
        ]
    )
    client = redis_client()
    outputs = run_children(pooled_env(pgbouncer), *[["sweep", "3"]] * 3)
    counts = [int(out.strip().splitlines()[-1]) for out in outputs]
    assert sum(counts) == len(rows)
    queued = _queued_event_ids(client)
    assert sorted(queued) == sorted(row.pk for row in rows)  # each id once, none twice
    assert CallbackEvent.objects.filter(dispatched_at__isnull=True).count() == 0
