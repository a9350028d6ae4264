"""Many machines in one: two gunicorn servers, three Celery workers and two beats
(redbeat) on one PostgreSQL through PgBouncer (transaction pooling) and one Redis.

The simulator pushes callbacks to one server, the API is asked on the other; the
leading beat is killed (SIGKILL: no lock release) half-way. Checked: the install ->
token -> callbacks flow, a standby beat takes over and ticks go on, and no tick's
WeCom calls are doubled (license-reconcile makes exactly one list_order call a tick).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
from pathlib import Path

import httpx
import pytest

from api import services as api_services
from tenants.models import Authorization
from tenants.models import Suite
from tests.cluster.conftest import pooled_env
from tests.conftest import register_platform
from tests.support import celery_beat
from tests.support import celery_worker
from tests.support import gunicorn_server
from tests.support import wait_until

PERIOD = 4.0  # license-reconcile's period in this test (6 h in production)
LOCK_TIMEOUT = 8  # the dead leader's lock lapses after this; the standby then leads

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def sends(log: Path, entry: str) -> list[float]:
    """Times (s since the epoch) at which this beat sent ``entry``'s task."""
    from datetime import datetime

    times = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "Sending due task" in record.get("message", "") and f"{entry} " in record["message"]:
            times.append(datetime.fromisoformat(record["time"]).timestamp())
    return times


def leads(log: Path) -> bool:
    return "Acquired lock" in log.read_text(errors="replace")


def test_two_servers_three_workers_two_beats_through_pgbouncer(pgbouncer, settings, tmp_path):
    from sandbox import start_sandbox

    sandbox = start_sandbox()
    settings.WECOM_API_BASE = sandbox.base_url
    try:
        platform = register_platform(sandbox)
        env = pooled_env(
            pgbouncer,
            WECOM_API_BASE=sandbox.base_url,
            WECOM_INSTALL_BASE=sandbox.base_url,
            LICENSE_RECONCILE_DAYS="1",  # one list_order window: one call a tick
            BEAT_PERIOD_OVERRIDES=f"license-reconcile={PERIOD},callback-inbox-sweep=5",
            REDBEAT_LOCK_TIMEOUT=str(LOCK_TIMEOUT),
            BEAT_MAX_LOOP_INTERVAL="1",
        )
        logs = [tmp_path / "beat-1.log", tmp_path / "beat-2.log"]
        with (
            gunicorn_server(env, workers=2) as web_a,
            gunicorn_server(env, workers=2) as web_b,
            celery_worker(env=env, concurrency=1, log_path=tmp_path / "worker-1.log"),
            celery_worker(env=env, concurrency=1, log_path=tmp_path / "worker-2.log"),
            celery_worker(env=env, concurrency=1, log_path=tmp_path / "worker-3.log"),
            celery_beat(env=env, log_path=logs[0]) as beat_1,
            celery_beat(env=env, log_path=logs[1]) as beat_2,
        ):
            sandbox.state.callback_base = web_a.url
            control = platform.control
            suite = platform.suite
            corpid = platform.corps[1]["corpid"]

            # install: ticket push -> stored by a worker; create_auth -> active tenant.
            control.push_ticket(suite.suite_id)
            newest = sandbox.state.tickets[suite.suite_id][-1].ticket
            wait_until(
                lambda: Suite.objects.get(pk=suite.pk).suite_ticket == newest,
                timeout=90,
                message="the pushed ticket to be stored",
            )
            control.install(suite.suite_id, corpid, state="mp1")
            wait_until(
                lambda: Authorization.objects.filter(corp__corpid=corpid, status="active").exists(),
                timeout=90,
                message="create_auth to be processed",
            )

            # token: asked on the other server, through the API.
            _, issued = api_services.api_client_create(name="mp", suite_ids=[suite.suite_id])
            url = f"{web_b.url}/api/v1/suites/{suite.suite_id}/corps/{corpid}/access-token/"
            response = httpx.get(url, headers={"Authorization": f"Bearer {issued.key}"}, timeout=60)
            assert response.status_code == 200, response.text
            assert response.json()["access_token"]

            # one leader: exactly one beat holds the lock and sends ticks.
            wait_until(
                lambda: any(len(sends(log, "license-reconcile")) >= 3 for log in logs),
                timeout=90,
                message="three license-reconcile ticks",
            )
            leader = 0 if leads(logs[0]) else 1
            assert leads(logs[leader])
            assert not leads(logs[1 - leader])
            assert not sends(logs[1 - leader], "license-reconcile")

            # kill the leader (no lock release); the standby must take over.
            killed = (beat_1, beat_2)[leader]
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait()
            before = len(sends(logs[leader], "license-reconcile"))
            standby = logs[1 - leader]
            wait_until(
                lambda: len(sends(standby, "license-reconcile")) >= 3,
                timeout=LOCK_TIMEOUT + 60,
                message="the standby to lead and send three ticks",
            )
            assert leads(standby)
            takeover = (
                sends(standby, "license-reconcile")[0]
                - sends(logs[leader], "license-reconcile")[-1]
            )
            assert takeover < 60  # the promise in docs/operations.md

            # callbacks after the failover still flow (a second install).
            other = platform.corps[0]["corpid"]
            control.install(suite.suite_id, other, state="mp2")
            wait_until(
                lambda: Authorization.objects.filter(corp__corpid=other, status="active").exists(),
                timeout=90,
                message="a create_auth after the failover",
            )

        # No tick sent twice: across both beats, consecutive sends of the entry are a
        # period apart (two leaders would interleave their own ticks).
        all_sends = sorted(
            sends(logs[0], "license-reconcile") + sends(logs[1], "license-reconcile")
        )
        assert len(all_sends) >= before + 3
        gaps = [b - a for a, b in itertools.pairwise(all_sends)]
        assert min(gaps) >= PERIOD * 0.5, gaps
        # And WeCom saw no doubled tick: at most one list_order call per send, and its
        # calls are as far apart as the ticks.
        calls = sorted(r["time"] for r in sandbox.state.requests if r["endpoint"] == "list_order")
        assert calls, "the ticks made no WeCom call"
        assert len(calls) <= len(all_sends)
        call_gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert not call_gaps or min(call_gaps) >= PERIOD * 0.5, call_gaps
    finally:
        sandbox.stop()
