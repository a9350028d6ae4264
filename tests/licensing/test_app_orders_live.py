"""Paid apps end to end: real encrypted callbacks (or none at all) from the simulator,
through the callbacks app, to the admin, the corp detail API, the edition API and the feed."""

from __future__ import annotations

import pytest

from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import TenantEdition
from licensing.app_orders.reconcile import app_orders_reconcile
from tenants.models import FeedEvent
from tests.api.conftest import make_caller
from tests.licensing.app_order_support import edition_mismatches
from tests.licensing.app_order_support import order_mismatches
from tests.licensing.app_order_support import truth_edition
from tests.licensing.app_order_support import truth_orders
from tests.licensing.conftest import install

PAID_APP_CALLBACKS = (
    "open_order",
    "change_order",
    "pay_for_app_success",
    "refund",
    "cancel_order",
    "change_editon",
)


@pytest.fixture
def admin_client(admin_client, settings):
    # No collectstatic in tests: plain static storage for the admin's pages.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return admin_client


@pytest.fixture
def live(live_platform, settings):
    settings.API_EVENTS_SETTLE_SECONDS = 0  # the feed's settle delay is tested on its own
    ctl = live_platform.control
    yield live_platform, ctl
    ctl.close()


def process_inbox() -> list:
    """Run the worker's task for every stored callback not processed yet (no worker here)."""
    from callbacks.models import CallbackEvent
    from callbacks.tasks import process_callback

    rows = list(CallbackEvent.objects.filter(status=CallbackEvent.Status.PENDING).order_by("pk"))
    for row in rows:
        process_callback(row.pk)
        row.refresh_from_db()
    return rows


def buy_and_upgrade(platform, ctl, corpid: str) -> tuple[dict, dict]:
    suite_id = platform.suite.suite_id
    bought = ctl.create_app_order(suite_id, corpid, edition_id="ESBASIC", user_count=30)
    ctl.app_order(bought["orderid"], "pay")
    upgrade = ctl.create_app_order(suite_id, corpid, edition_id="ESPRO", user_count=30)
    ctl.app_order(upgrade["orderid"], "pay")
    assert platform.sandbox.wait_pushes(10)
    return bought, upgrade


def test_every_callback_of_a_purchase_and_an_upgrade_lost_the_reconciler_restores_both(live):
    from callbacks.models import CallbackEvent

    platform, ctl = live
    tenant = install(platform, ctl, platform.corps[0]["corpid"])
    corpid = tenant.corp.corpid
    for info_type in PAID_APP_CALLBACKS:
        ctl.add_fault(target="callback", info_type=info_type, drop=True)
    bought, upgrade = buy_and_upgrade(platform, ctl, corpid)

    pushed = [p for p in ctl.pushes() if p["info_type"] in PAID_APP_CALLBACKS]
    assert len(pushed) == 6  # open, pay, change_editon, twice
    assert {p["status"] for p in pushed} == {"dropped"}
    assert not CallbackEvent.objects.filter(info_type__in=PAID_APP_CALLBACKS).exists()
    assert not AppOrder.objects.exists()

    result = app_orders_reconcile()
    assert result.errors == []
    assert (result.orders_new, result.editions_read) == (2, 1)
    truth = truth_orders(ctl)
    for order_id in (bought["orderid"], upgrade["orderid"]):
        order = AppOrder.objects.get(order_id=order_id)
        assert order_mismatches(order, truth[order_id]) == []
        assert order.status == 1
    wecom = truth_edition(platform.sandbox, platform.suite.suite_id, corpid)
    edition = TenantEdition.objects.get(authorization=tenant)
    assert edition_mismatches(edition, wecom) == []
    assert (edition.edition_id, edition.app_status, edition.user_limit) == ("ESPRO", 3, 30)
    [change] = FeedEvent.objects.filter(type="edition.changed")
    assert change.data["source"] == "reconcile"
    assert (change.data["previous"]["app_status"], change.data["edition"]["edition_id"]) == (
        None,  # nothing was known of this tenant's edition before: the install trial
        "ESPRO",
    )
    caller = make_caller("after-reconcile", suites=[platform.suite])
    detail = caller.get(f"/api/v1/suites/{platform.suite.suite_id}/corps/{corpid}/").json()
    assert detail["edition"]["edition_id"] == "ESPRO"
    assert app_orders_reconcile().orders_new == 0  # a second walk finds nothing new


def test_the_edition_reaches_admin_corp_api_edition_api_and_feed(live, admin_client):
    platform, ctl = live
    suite = platform.suite
    tenant = install(platform, ctl, platform.corps[1]["corpid"])
    corpid = tenant.corp.corpid
    rows = []
    orders = []
    for edition_id in ("ESBASIC", "ESPRO"):  # a purchase, then an upgrade, a day apart
        order = ctl.create_app_order(suite.suite_id, corpid, edition_id=edition_id, user_count=30)
        ctl.app_order(order["orderid"], "pay")
        assert platform.sandbox.wait_pushes(10)
        rows += process_inbox()
        orders.append(order)
    bought, upgrade = orders
    handled = [r.info_type for r in rows if r.info_type in PAID_APP_CALLBACKS]
    assert handled.count("open_order") == handled.count("pay_for_app_success") == 2
    # Two change_editon in one second are the same plaintext: the inbox keeps one (a retry,
    # as far as it can tell). The pay callback's own read of the edition covers the loss.
    assert 1 <= handled.count("change_editon") <= 2
    assert all(r.status == "done" for r in rows), [(r.info_type, r.last_error) for r in rows]

    wecom = truth_edition(platform.sandbox, suite.suite_id, corpid)
    edition = TenantEdition.objects.get(authorization=tenant)
    assert edition_mismatches(edition, wecom) == []
    assert edition.edition_name == "专业版"

    # The admin: the edition with its history, and the order with WeCom's fields.
    page = admin_client.get(f"/admin/licensing/tenantedition/{edition.pk}/change/").content.decode()
    assert "专业版" in page
    assert "基础版" in page  # the history inline: the edition before the upgrade
    order = AppOrder.objects.get(order_id=upgrade["orderid"])
    page = admin_client.get(f"/admin/licensing/apporder/{order.pk}/change/").content.decode()
    for value in (
        order.order_id,
        str(order.service_share_amount),
        str(order.platform_share_amount),
    ):
        assert value in page
    listing = admin_client.get("/admin/licensing/apporder/", {"status__exact": 1})
    assert listing.context["cl"].result_count == 2

    # The API: the corp detail's edition, the edition endpoint, the orders.
    caller = make_caller("edition-reader", corps=[tenant.corp])
    base = f"/api/v1/suites/{suite.suite_id}/corps/{corpid}/"
    assert caller.get(base).json()["edition"]["edition_id"] == "ESPRO"
    body = caller.get(base + "edition/").json()
    assert (body["edition_id"], body["app_status_name"], body["user_limit"]) == (
        "ESPRO",
        "paid",
        30,
    )
    assert int(body["expired_time"][:4]) >= 2026
    assert [h["after"]["edition_id"] for h in body["history"]][:2] == ["ESPRO", "ESBASIC"]
    orders = caller.get(base + "app-orders/", {"status": 1}).json()["results"]
    assert {o["order_id"] for o in orders} == {bought["orderid"], upgrade["orderid"]}

    # The feed, as products read it.
    events = caller.get("/api/v1/events/", {"type": "edition.changed"}).json()["results"]
    assert events[-1]["data"]["edition"]["edition_id"] == "ESPRO"
    assert events[-1]["data"]["previous"]["edition_id"] == "ESBASIC"
    paid = caller.get("/api/v1/events/", {"type": "app_order.paid"}).json()["results"]
    assert {e["data"]["order_id"] for e in paid} == {bought["orderid"], upgrade["orderid"]}
