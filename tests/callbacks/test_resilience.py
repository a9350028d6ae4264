"""The callbacks issue's "Done when" items, with real processes: gunicorn, Celery, Redis, Postgres.

* Workers and Redis down: every callback is still answered ``success`` and stored; after
  Redis and a worker come back, the sweeper gets each one processed exactly once.
* PostgreSQL down: the answer is an error (WeCom retries), and it comes within 1 s;
  once it is back, callbacks are stored again.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from django.db import connection
from django.db.models import F

from callbacks.models import CallbackEvent
from tenants.models import FeedEvent
from tenants.models import Suite
from tests.callbacks import signing
from tests.support import ROOT
from tests.support import celery_worker
from tests.support import database_url
from tests.support import django_env
from tests.support import gunicorn_server
from tests.support import postgres_server
from tests.support import redis_server
from tests.support import wait_until
from tests.tenants.factories import aes_key
from tests.tenants.factories import make_authorization

CALLBACKS = 1000
SENDERS = 8
WECOM_REPLY_TIMEOUT = 5.0  # s (protocol §7.2); create_auth wants 1 s


def contact_xml(suite_id: str, corpid: str, userid: str, ts: int) -> str:
    """A third-party app's change_contact (command URL): processing needs no WeCom call."""
    return (
        f"<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId>"
        f"<AuthCorpId><![CDATA[{corpid}]]></AuthCorpId>"
        "<InfoType><![CDATA[change_contact]]></InfoType>"
        f"<TimeStamp>{ts}</TimeStamp><ChangeType><![CDATA[create_user]]></ChangeType>"
        f"<UserID><![CDATA[{userid}]]></UserID><Name><![CDATA[{userid}]]></Name></xml>"
    )


def post_all(
    base_url: str, callbacks: list[signing.SignedCallback]
) -> list[tuple[int, str, float]]:
    """POST every callback from SENDERS threads; return (status, body, seconds) of each."""

    def send(chunk: list[signing.SignedCallback]) -> list[tuple[int, str, float]]:
        answers = []
        with httpx.Client(base_url=base_url, timeout=30, trust_env=False) as http:
            for callback in chunk:
                started = time.perf_counter()
                response = http.post(
                    callback.path,
                    params=callback.query,
                    content=callback.body,
                    headers={"Content-Type": "text/xml"},
                )
                answers.append((response.status_code, response.text, time.perf_counter() - started))
        return answers

    chunks = [callbacks[i::SENDERS] for i in range(SENDERS)]
    with ThreadPoolExecutor(SENDERS) as pool:
        return [answer for answers in pool.map(send, chunks) for answer in answers]


@pytest.mark.django_db(transaction=True)
def test_with_workers_and_redis_down_every_callback_is_stored_then_processed_once():
    authorization = make_authorization()
    suite, corpid = authorization.suite, authorization.corp.corpid
    base_ts = int(time.time()) - 2 * CALLBACKS
    callbacks, userids, tickets = [], [], []
    for i in range(CALLBACKS):
        if i % 10 == 0:  # one in ten is a suite_ticket: the newest must win
            tickets.append((f"TICKET{i:04d}", base_ts + i))
            xml = signing.ticket_xml(suite.suite_id, tickets[-1][0], base_ts + i)
        else:
            userids.append(f"user{i:04d}")
            xml = contact_xml(suite.suite_id, corpid, userids[-1], base_ts + i)
        callbacks.append(signing.suite_command(suite, xml))

    with redis_server() as redis:
        env = django_env(
            DATABASE_URL=database_url(connection.settings_dict),
            REDIS_URL=redis.url,
            CELERY_BROKER_URL=redis.url,
            LOG_LEVEL="WARNING",
        )
        with gunicorn_server(env, workers=2) as web:
            redis.stop()  # no broker, and no worker runs
            answers = post_all(web.url, callbacks)
            failed = [a for a in answers if a[:2] != (200, "success")]
            assert not failed, f"{len(failed)} not success, e.g. {failed[:3]}\n{web.log_tail()}"
            # WeCom hangs up after WECOM_REPLY_TIMEOUT: a later "success" is a failure to it.
            slow = sorted(a[2] for a in answers)[-5:]
            assert slow[-1] < WECOM_REPLY_TIMEOUT, f"slowest answers took {slow} s"
        assert CallbackEvent.objects.count() == CALLBACKS
        assert CallbackEvent.objects.filter(status="pending", attempts=0).count() == CALLBACKS
        assert not FeedEvent.objects.exists()

        redis.start()  # same port, empty: every enqueue of the outage is lost
        # The sweeper leaves rows younger than SWEEP_GRACE to the request's own enqueue:
        # make these old enough instead of waiting 30 s.
        CallbackEvent.objects.update(received_at=F("received_at") - timedelta(minutes=1))
        with celery_worker(env=env, concurrency=2) as worker:
            _sweep_until_done(redis.url, worker)

    rows = CallbackEvent.objects.all()
    assert rows.count() == CALLBACKS  # none lost
    assert rows.filter(status="done").count() == CALLBACKS
    assert set(rows.values_list("attempts", flat=True)) == {1}  # none processed twice
    feed = FeedEvent.objects.filter(type="contact.create_user")
    assert feed.count() == len(userids)
    assert sorted(e.data["UserID"] for e in feed) == userids
    suite = Suite.objects.get(pk=suite.pk)
    assert (suite.suite_ticket, suite.suite_ticket_timestamp) == tickets[-1]


def _sweep_until_done(redis_url: str, worker: subprocess.Popen, timeout: float = 90) -> None:
    """Play beat: send the real sweep task to the restarted broker until every row is done.

    One sweep dispatches at most 500 rows; the next is sent once it has run (or after 5 s),
    on the priority queue so that it does not wait behind the tasks the last one queued.
    """
    from callbacks.tasks import inbox_sweep
    from wecom_provider.celery import app

    deadline = time.monotonic() + timeout
    sent_at, undispatched_then = 0.0, None
    with app.connection_for_write(redis_url) as broker:
        while CallbackEvent.objects.exclude(status="done").exists():
            assert worker.poll() is None, worker.stderr.read().decode(errors="replace")[-3000:]
            assert time.monotonic() < deadline, (
                f"still not done: {CallbackEvent.objects.exclude(status='done').count()}"
            )
            undispatched = CallbackEvent.objects.filter(
                status="pending", dispatched_at__isnull=True
            ).count()
            if undispatched and (
                undispatched != undispatched_then or time.monotonic() - sent_at > 5
            ):
                inbox_sweep.apply_async(connection=broker, queue="priority")
                sent_at, undispatched_then = time.monotonic(), undispatched
            time.sleep(0.5)


# --- PostgreSQL down ------------------------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"manage.py {args[0]}: {result.stderr[-3000:]}"
    return result.stdout


def test_with_postgresql_down_callbacks_get_an_error_reply_within_one_second():
    suite = SimpleNamespace(
        suite_id="wwsuiteresilience", callback_token="tokResilience", encoding_aes_key=aes_key()
    )
    with postgres_server() as pg, redis_server() as redis:
        env = django_env(DATABASE_URL=pg.url(), REDIS_URL=redis.url, CELERY_BROKER_URL=redis.url)
        manage(env, "migrate", "--noinput")
        secrets = {
            "WECOM_PROVIDER_CORPID": "wwproviderresilience",
            "WECOM_PROVIDER_SECRET": "provider-secret",
            "WECOM_PROVIDER_TOKEN": "tokProvider",
            "WECOM_PROVIDER_AES_KEY": aes_key(),
            "WECOM_SUITE_ID": suite.suite_id,
            "WECOM_SUITE_SECRET": "suite-secret",
            "WECOM_SUITE_TOKEN": suite.callback_token,
            "WECOM_SUITE_AES_KEY": suite.encoding_aes_key,
        }
        manage({**env, **secrets}, "register_provider")
        manage({**env, **secrets}, "register_suite")

        def ticket(n: int) -> signing.SignedCallback:
            xml = signing.ticket_xml(suite.suite_id, f"T{n}", int(time.time()) + n)
            return signing.suite_command(suite, xml)

        with (
            gunicorn_server(env, workers=2) as web,
            httpx.Client(base_url=web.url, timeout=10, trust_env=False) as http,
        ):

            def post(callback: signing.SignedCallback) -> tuple[httpx.Response, float]:
                started = time.perf_counter()
                response = http.post(callback.path, params=callback.query, content=callback.body)
                return response, time.perf_counter() - started

            for n in range(2):  # both workers have answered once (routes cached or not)
                response, _ = post(ticket(n))
                assert (response.status_code, response.text) == (200, "success")

            pg.stop(mode="immediate")
            wait_until(lambda: not pg.running(), timeout=10, message="PostgreSQL to stop")
            elapsed = []
            for n in range(2, 6):
                response, seconds = post(ticket(n))
                assert response.status_code >= 500, (response.status_code, response.text)
                assert response.text != "success"
                elapsed.append(seconds)
            assert max(elapsed) < 1.0, f"error replies took {elapsed} s\n{web.log_tail()}"

            pg.start()  # the workers reconnect: callbacks are stored again
            response, _ = post(ticket(6))
            assert (response.status_code, response.text) == (200, "success"), web.log_tail()
