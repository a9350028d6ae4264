"""A suite's tickets come before its auth codes (callbacks/dependencies.py).

On a fresh suite, a suite_ticket acknowledged just before a create_auth must not leave
the install waiting for the sweeper: the ticket is applied first, whichever lane gets
there first. The timing test runs the real thing: the simulator pushing over HTTP to
the live server, a real Celery worker, no beat.
"""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from api import services as api_services
from callbacks.models import CallbackEvent
from tenants import credentials
from tenants import services as tenant_services
from tenants.models import Authorization
from tenants.models import Suite
from tests.callbacks import signing
from tests.ops.scenario import worker_env
from tests.support import celery_worker
from tests.support import wait_until
from tests.tenants import lifecycle_support as ls
from tests.tenants.factories import aes_key

ACK_TO_TOKEN = 5.0  # s: the bound, from the create_auth's acknowledgement


def fresh_suite(platform) -> Suite:
    """A suite the platform registered before WeCom ever pushed it a ticket."""
    values = {
        "suite_id": "wwfresh" + secrets.token_hex(6),
        "secret": secrets.token_hex(16),
        "token": "tok" + secrets.token_hex(6),
        "encoding_aes_key": aes_key(),
    }
    suite, _ = tenant_services.suite_register(
        provider=platform.provider,
        suite_id=values["suite_id"],
        secret=values["secret"],
        callback_token=values["token"],
        encoding_aes_key=values["encoding_aes_key"],
    )
    assert suite.suite_ticket_timestamp is None
    platform.control.add_suite(kind="third_party", name="fresh", **values)  # pushes a ticket
    return suite


def ticket_row(client, platform, suite) -> CallbackEvent:
    ticket = platform.sandbox.state.latest_ticket(suite.suite_id)
    xml = signing.ticket_xml(suite.suite_id, ticket, int(time.time()))
    return ls.deliver(client, suite, xml)


@pytest.mark.django_db
def test_an_auth_code_processed_first_applies_the_waiting_ticket_itself(client, platform):
    suite = fresh_suite(platform)
    corpid = platform.corps[0]["corpid"]
    ticket = ticket_row(client, platform, suite)
    code = platform.control.install(suite.suite_id, corpid, push=False)["auth_code"]
    install = ls.deliver(client, suite, ls.create_auth_xml(suite.suite_id, code, int(time.time())))
    assert ls.process(install).status == "done", install.last_error
    ticket.refresh_from_db()
    assert ticket.status == "done"  # applied by the create_auth's worker, before the exchange
    authorization = Authorization.objects.get(suite=suite, corp__corpid=corpid)
    assert credentials.token_get(authorization).value


@pytest.mark.django_db
def test_an_auth_code_that_waited_for_a_ticket_is_due_again_once_one_is_stored(client, platform):
    suite = fresh_suite(platform)
    corpid = platform.corps[1]["corpid"]
    code = platform.control.install(suite.suite_id, corpid, push=False)["auth_code"]
    install = ls.deliver(client, suite, ls.create_auth_xml(suite.suite_id, code, int(time.time())))
    install = ls.process(install)  # no ticket anywhere yet
    assert install.status == "pending"
    assert install.last_error.startswith("SuiteTicketUnavailable")
    assert install.next_attempt_at is not None
    assert ls.process(ticket_row(client, platform, suite)).status == "done"
    install.refresh_from_db()
    assert install.next_attempt_at is not None
    # Due now, not after its backoff (or the sweeper).
    assert ls.process(install).status == "done", install.last_error


@pytest.mark.slow
def test_ticket_then_create_auth_on_a_fresh_suite_gives_a_corp_token_within_5s(
    live_platform, live_server
):
    platform = live_platform
    corpid = platform.corps[2]["corpid"]
    with celery_worker(env=worker_env(platform), concurrency=2):
        _wait_worker_ready()
        suite = fresh_suite(platform)  # WeCom pushes the suite's first ticket …
        _, issued = api_services.api_client_create(name="dep-test", suite_ids=[suite.suite_id])
        time.sleep(0.2)
        asked = time.monotonic()
        platform.control.install(suite.suite_id, corpid)  # … and create_auth 0.2 s later

        def answered():
            records = platform.control.pushes(suite_id=suite.suite_id)
            done = len(records) == 2 and all(r["status"] != "queued" for r in records)
            return records if done else None

        pushes = wait_until(answered, timeout=ACK_TO_TOKEN, interval=0.01, message="the acks")
        assert [p["info_type"] for p in pushes] == ["suite_ticket", "create_auth"]
        assert all(p["status"] == "delivered" for p in pushes), pushes
        path = f"/api/v1/suites/{suite.suite_id}/corps/{corpid}/access-token/"
        with httpx.Client(
            base_url=live_server.url,
            headers={"Authorization": f"Bearer {issued.key}"},
            timeout=5,
            trust_env=False,
        ) as http:

            def corp_token():
                answer = http.get(path)
                return answer.json() if answer.status_code == 200 else None

            # Timed from before the push: stricter than from its acknowledgement.
            body = wait_until(corp_token, timeout=ACK_TO_TOKEN, interval=0.05, message="a token")
        elapsed = time.monotonic() - asked
        # Each row's final status is written after the effects waited for above: let the
        # worker finish before it is stopped (SIGTERM ends a task in flight).
        wait_until(
            lambda: (
                not CallbackEvent.objects.filter(
                    suite_id=suite.suite_id, status__in=["pending", "processing"]
                ).exists()
            ),
            timeout=30,
            message="the rows to be finished",
        )
    assert body["access_token"]
    assert elapsed <= ACK_TO_TOKEN
    rows = CallbackEvent.objects.filter(suite_id=suite.suite_id)
    assert sorted(rows.values_list("info_type", "status")) == [
        ("create_auth", "done"),
        ("suite_ticket", "done"),
    ]
    assert set(rows.values_list("attempts", flat=True)) == {1}  # nothing waited for a retry


def _wait_worker_ready() -> None:
    """Send one cheap task through the broker and wait for the worker to run it."""
    from wecom_provider.celery import ping

    assert ping.delay("up").get(timeout=60) == "up"
