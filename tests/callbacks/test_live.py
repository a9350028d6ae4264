"""Every callback the WeCom simulator pushes, over real HTTP: stored once, processed once.

The simulator delivers each callback to the live server; the test then replays it the way
WeCom retries (same plaintext, encrypted and signed anew) three times concurrently before
it is processed and once more afterwards. Each must land on the one inbox row, and the
row's handler must run exactly once (one claim, one side effect), however often it is
dispatched.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection

from callbacks import services
from callbacks.models import CallbackEvent
from licensing import services as licensing
from licensing.models import UnlicensedMember
from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import FeedEvent
from tenants.models import Suite
from tests.callbacks import signing

PUSH_TIMEOUT = 20


class Inbox:
    """Drives the simulator one action at a time and checks what reached the inbox."""

    def __init__(self, platform, base_url: str) -> None:
        self.platform = platform
        self.ctl = platform.control
        self.http = httpx.Client(base_url=base_url, timeout=15, trust_env=False)
        self.suites = {s.suite_id: s for s in (platform.suite, platform.template)}
        self.handled: list[dict] = []
        assert self.ctl.wait_pushes(PUSH_TIMEOUT)  # the first tickets, pushed at start
        process_pending()
        self.last_push = max((p["id"] for p in self.ctl.pushes()), default=0)

    def close(self) -> None:
        self.http.close()
        self.ctl.close()

    def step(self, action, *info_types: str) -> list[dict]:
        """Run a simulator action; check its pushes were stored; replay, process them."""
        action()
        assert self.ctl.wait_pushes(PUSH_TIMEOUT)
        pushes = self.ctl.pushes(since_id=self.last_push)
        if pushes:
            self.last_push = max(p["id"] for p in pushes)
        assert sorted(p["info_type"] for p in pushes) == sorted(info_types)
        for push in pushes:
            assert push["status"] == "delivered", push
            assert self.rows_of(push), push
        for push in pushes:  # WeCom's retries, racing each other
            self.replay(push, times=3)
        process_pending()
        self.handled.extend(pushes)
        return pushes

    def signed(self, push: dict) -> signing.SignedCallback:
        """Encrypt and sign the push's plaintext anew, as a WeCom retry would."""
        if push["channel"] == "system":
            owner = self.platform.provider
            path = f"/callbacks/provider/{owner.corpid}/"
        else:
            owner = self.suites[push["suite_id"]]
            path = f"/callbacks/suite/{owner.suite_id}/{push['channel']}/"
        return signing.signed(
            path=path,
            token=owner.callback_token,
            aes_key=owner.encoding_aes_key,
            receive_id=push["receive_id"],
            xml=push["payload"],
        )

    def replay(self, push: dict, *, times: int) -> None:
        callbacks = [self.signed(push) for _ in range(times)]
        assert len({c.body for c in callbacks}) == times  # distinct ciphertexts
        with ThreadPoolExecutor(times) as pool:
            answers = list(pool.map(self.post, callbacks))
        expected = "" if push["channel"] == "data" else "success"
        assert answers == [(200, expected)] * times, (push["info_type"], answers)

    def post(self, callback: signing.SignedCallback) -> tuple[int, str]:
        response = self.http.post(
            callback.path,
            params=callback.query,
            content=callback.body,
            headers={"Content-Type": "text/xml"},
        )
        return response.status_code, response.text

    @staticmethod
    def rows_of(push: dict) -> list[CallbackEvent]:
        return [
            row
            for row in CallbackEvent.objects.filter(info_type=push["info_type"])
            if row.payload.strip() == push["payload"].strip()
        ]


def race(fn, threads: int = 2) -> list:
    """Call ``fn`` from ``threads`` threads at once; return the results."""
    barrier = threading.Barrier(threads)
    results: list = [None] * threads

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn()
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def process_pending() -> None:
    """Play two workers that got the same row (redelivery, sweeper): one claims it."""
    for pk in CallbackEvent.objects.filter(status="pending").values_list("pk", flat=True):
        outcomes = race(lambda pk=pk: services.callback_process(event_id=pk))
        claimed = [o for o in outcomes if o is not None]
        row = CallbackEvent.objects.get(pk=pk)
        assert len(claimed) == 1, (row.info_type, outcomes, row.last_error)
        assert claimed[0] in {"done", "ignored"}, (row.info_type, claimed, row.last_error)


@pytest.fixture
def inbox(live_platform, live_server):
    inbox = Inbox(live_platform, live_server.url)
    yield inbox
    inbox.close()


def test_every_pushed_callback_is_stored_once_and_processed_once(live_platform, inbox):
    platform, ctl = live_platform, inbox.ctl
    suite, template = platform.suite, platform.template
    corp_a, corp_b = (c["corpid"] for c in platform.corps[:2])
    users_a = [u["userid"] for u in platform.corps[0]["users"]]
    buyer = platform.sandbox.config["buyers"][0]

    [ticket] = inbox.step(lambda: ctl.push_ticket(suite.suite_id), "suite_ticket")
    inbox.step(lambda: ctl.install(suite.suite_id, corp_a), "create_auth")
    inbox.step(lambda: ctl.install(template.suite_id, corp_b), "create_auth")  # 代开发
    inbox.step(lambda: ctl.change_auth(suite.suite_id, corp_a), "change_auth")
    new_user = {"userid": "resilience_new", "name": "New Member"}
    inbox.step(lambda: ctl.contact_event(corp_a, "create_user", data=new_user), "change_contact")
    # 代开发: the self-built shape, on the data URL.
    inbox.step(lambda: ctl.contact_event(corp_b, "create_user", data=new_user), "change_contact")
    inbox.step(
        lambda: ctl.contact_event(
            corp_a,
            "add_external_contact",
            info_type="change_external_contact",
            data={"UserID": users_a[0], "ExternalUserID": "wmEXTERNAL1"},
        ),
        "change_external_contact",
    )
    inbox.step(
        lambda: ctl.contact_event(
            corp_a, "create", info_type="change_external_chat", data={"ChatId": "wrCHAT1"}
        ),
        "change_external_chat",
    )
    inbox.step(lambda: ctl.change_app_admin(suite.suite_id, corp_a), "change_app_admin")
    inbox.step(lambda: ctl.unlicensed(corp_a, users_a[1]), "unlicensed_notify")
    corp = Corp.objects.get(corpid=corp_a)
    order = licensing.license_order_create(corp=corp, buyer_userid=buyer, base_count=2, months=1)
    inbox.step(lambda: ctl.pay_order(order.order_id), "license_pay_success")
    licensing.license_auto_active_set(corp=corp, enabled=True)
    platform.sandbox.advance(2)
    inbox.step(lambda: ctl.unlicensed(corp_a, users_a[2]), "auto_activate")
    refunded = licensing.license_order_create(corp=corp, buyer_userid=buyer, base_count=1, months=1)
    inbox.step(lambda: ctl.pay_order(refunded.order_id), "license_pay_success")
    inbox.step(lambda: ctl.refund_order(refunded.order_id, "approve"), "license_refund")
    inbox.step(lambda: ctl.reset_permanent_code(template.suite_id, corp_b), "reset_permanent_code")
    inbox.step(lambda: ctl.cancel_auth(suite.suite_id, corp_a), "cancel_auth")

    assert {p["info_type"] for p in inbox.handled} == {
        "suite_ticket",
        "create_auth",
        "change_auth",
        "cancel_auth",
        "reset_permanent_code",
        "change_contact",
        "change_external_contact",
        "change_external_chat",
        "change_app_admin",
        "unlicensed_notify",
        "license_pay_success",
        "auto_activate",
        "license_refund",
    }
    assert {p["channel"] for p in inbox.handled} == {"command", "data", "system"}

    # Side effects so far; a late retry of every callback must change none of them.
    effects = (FeedEvent.objects.count(), len(ctl.requests()))
    for push in inbox.handled:
        inbox.replay(push, times=1)
    assert not CallbackEvent.objects.filter(status="pending").exists()
    for row in CallbackEvent.objects.filter(status__in=["pending", "processing"]):
        services.callback_process(event_id=row.pk)
    assert (FeedEvent.objects.count(), len(ctl.requests())) == effects

    # One row per push, every delivery counted on it, its handler run once.
    for push in inbox.handled:
        [row] = inbox.rows_of(push)
        assert row.duplicates == 4, (push["info_type"], row.duplicates)
        assert row.attempts == 1, push["info_type"]
        assert row.status == "done", (push["info_type"], row.status, row.result, row.last_error)
    handled_rows = {r.pk for p in inbox.handled for r in inbox.rows_of(p)}
    assert len(handled_rows) == len(inbox.handled)

    # Each auth code was exchanged exactly once (two installs, one reset).
    assert len(ctl.requests("get_permanent_code")) == 3
    assert Suite.objects.get(pk=suite.pk).suite_ticket in ticket["payload"]
    a = Authorization.objects.get(suite=suite, corp__corpid=corp_a)
    assert a.status == Authorization.Status.CANCELLED
    b = Authorization.objects.get(suite=template, corp__corpid=corp_b)
    assert b.status == Authorization.Status.ACTIVE
    assert UnlicensedMember.objects.get(corp=corp, userid=users_a[1]).times_seen == 1
    per_type = {}
    for entry in FeedEvent.objects.all():
        per_type[entry.type] = per_type.get(entry.type, 0) + 1
    assert per_type.get("contact.create_user") == 2  # one per corp
    assert per_type.get("external_contact.add_external_contact") == 1
    assert per_type.get("external_chat.create") == 1
    assert per_type.get("license.refunded") == 1
    assert per_type.get("license.auto_activated") == 1
