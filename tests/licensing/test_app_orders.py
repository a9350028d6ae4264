"""Paid-app orders and editions against the simulator over HTTP (protocol doc §13).

Callbacks are not delivered here (no callback base): each test reads what the simulator
pushed, parses it with the protocol library and calls the handler, as the callbacks app
would, or leaves it out to play a lost callback.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from licensing.app_orders import editions
from licensing.app_orders import services
from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import AppOrderStatusChange
from licensing.app_orders.models import TenantEdition
from licensing.app_orders.models import TenantEditionChange
from licensing.app_orders.models import TrialExtension
from licensing.app_orders.reconcile import app_orders_reconcile
from tenants.models import FeedEvent
from tests.licensing.app_order_support import edition_mismatches
from tests.licensing.app_order_support import order_mismatches
from tests.licensing.app_order_support import poll_everything
from tests.licensing.app_order_support import truth_edition
from tests.licensing.app_order_support import truth_orders
from tests.licensing.conftest import dispatch
from tests.licensing.conftest import install
from wecom.errors import WeComError
from wecom.errors import WeComPermanentError


@pytest.fixture
def tenant(platform, ctl):
    return install(platform, ctl, platform.corps[0]["corpid"])


def deliver(pushes, *kinds: str) -> list[str]:
    """Dispatch every new push (only ``kinds`` if given); return the info types handled."""
    handled = []
    for event in pushes.new():
        if not kinds or event.info_type in kinds:
            dispatch(event)
            handled.append(event.info_type)
    return handled


def feed(type_: str) -> list[FeedEvent]:
    return list(FeedEvent.objects.filter(type=type_).order_by("pk"))


def test_a_purchase_and_an_upgrade_through_their_callbacks(platform, ctl, tenant, pushes):
    suite, corpid = platform.suite, tenant.corp.corpid
    editions.editions_adopt()  # the poller's first step: the install's trial edition
    truth = ctl.create_app_order(suite.suite_id, corpid, edition_id="ESBASIC", user_count=20)
    assert deliver(pushes) == ["open_order"]
    order = AppOrder.objects.get(order_id=truth["orderid"])
    assert order_mismatches(order, truth_orders(ctl)[order.order_id]) == []
    assert (order.suite, order.corp) == (suite, tenant.corp)
    assert order.next_sync_at is not None  # unpaid: the poller follows it

    ctl.app_order(order.order_id, "pay")
    assert deliver(pushes) == ["pay_for_app_success", "change_editon"]
    order.refresh_from_db()
    assert order_mismatches(order, truth_orders(ctl)[order.order_id]) == []
    assert order.status == 1
    edition = TenantEdition.objects.get(authorization=tenant)
    wecom = truth_edition(platform.sandbox, suite.suite_id, corpid)
    assert edition_mismatches(edition, wecom) == []
    assert (edition.edition_id, edition.app_status, edition.user_limit) == ("ESBASIC", 3, 20)
    tenant.refresh_from_db()
    assert tenant.edition == {"agentid": tenant.agent_id, **wecom}  # the corp API's copy

    upgrade = ctl.create_app_order(suite.suite_id, corpid, edition_id="ESPRO", user_count=20)
    ctl.app_order(upgrade["orderid"], "pay")
    deliver(pushes)
    edition.refresh_from_db()
    assert (
        edition_mismatches(edition, truth_edition(platform.sandbox, suite.suite_id, corpid)) == []
    )
    assert edition.edition_id == "ESPRO"
    assert AppOrder.objects.get(order_id=upgrade["orderid"]).order_type == 3

    # History and the feed: every move once, every edition change once.
    moves = list(
        AppOrderStatusChange.objects.filter(order=order).values_list("from_status", "to_status")
    )
    assert moves == [(None, 0), (0, 1)]
    assert [e.data["order_id"] for e in feed("app_order.created")] == [
        order.order_id,
        upgrade["orderid"],
    ]
    assert len(feed("app_order.paid")) == 2
    changes = [
        (c.source, c.after["edition_id"], c.after["app_status"]) for c in feed_changes(tenant)
    ]
    assert changes == [("install", "ESBASIC", 1), ("order", "ESBASIC", 3), ("order", "ESPRO", 3)]
    assert [e.data["edition"]["edition_id"] for e in feed("edition.changed")][-1] == "ESPRO"


def feed_changes(tenant) -> list[TenantEditionChange]:
    return list(
        TenantEditionChange.objects.filter(edition__authorization=tenant).order_by("at", "pk")
    )


def test_duplicates_and_stale_events_only_read_the_truth_again(platform, ctl, tenant, pushes):
    truth = ctl.create_app_order(platform.suite.suite_id, tenant.corp.corpid)
    [opened] = pushes.new()
    ctl.app_order(truth["orderid"], "pay")
    later = pushes.new()
    for event in [*later, opened, opened, *later]:  # reordered, twice
        dispatch(event)
    order = AppOrder.objects.get(order_id=truth["orderid"])
    assert order.status == 1
    assert AppOrderStatusChange.objects.filter(order=order).count() == 1  # created paid
    assert len(feed("app_order.paid")) == 1


def test_refund_request_has_no_callback_the_poller_finds_it(platform, ctl, tenant, pushes):
    suite, corpid = platform.suite, tenant.corp.corpid
    first = ctl.create_app_order(suite.suite_id, corpid, edition_id="ESBASIC")
    ctl.app_order(first["orderid"], "pay")
    second = ctl.create_app_order(suite.suite_id, corpid, edition_id="ESPRO")
    ctl.app_order(second["orderid"], "pay")
    deliver(pushes)
    ctl.app_order(second["orderid"], "refund", action="request")
    assert pushes.new() == []  # WeCom says nothing about a refund request
    poll_everything()
    assert AppOrder.objects.get(order_id=second["orderid"]).status == 4
    ctl.app_order(second["orderid"], "refund", action="approve")
    assert deliver(pushes) == ["refund", "change_editon"]
    order = AppOrder.objects.get(order_id=second["orderid"])
    assert order.status == 5
    edition = TenantEdition.objects.get(authorization=tenant)
    assert edition.edition_id == "ESBASIC"  # WeCom put the edition before the refund back
    assert (
        edition_mismatches(edition, truth_edition(platform.sandbox, suite.suite_id, corpid)) == []
    )
    assert order.next_sync_at is None  # final: never polled again
    assert len(feed("app_order.refund_requested")) == 1
    assert len(feed("app_order.refunded")) == 1


def test_a_price_change_links_the_new_order_to_the_old(platform, ctl, tenant, pushes):
    truth = ctl.create_app_order(platform.suite.suite_id, tenant.corp.corpid, order_from=1)
    deliver(pushes)
    new = ctl.app_order(truth["orderid"], "change_price", price=500)["new_order"]
    assert deliver(pushes) == ["change_order"]
    old, replacement = (
        AppOrder.objects.get(order_id=i) for i in (truth["orderid"], new["orderid"])
    )
    assert (old.status, old.replaced_by) == (2, replacement.order_id)
    assert (replacement.status, replacement.price, replacement.replaces) == (0, 500, old.order_id)
    assert replacement.operator_id == ""  # the provider ordered: WeCom names no operator
    assert [e.data["replaces"] for e in feed("app_order.replaced")] == [old.order_id]


def test_wecom_down_the_callback_fails_and_the_reconciler_catches_up(platform, ctl, tenant, pushes):
    truth = ctl.create_app_order(platform.suite.suite_id, tenant.corp.corpid)
    [opened] = pushes.new()
    ctl.add_fault(endpoint="app_get_order", errcode=-1, times=1)
    with pytest.raises(WeComError):
        dispatch(opened)  # the inbox retries it; nothing half-written meanwhile
    assert not AppOrder.objects.filter(order_id=truth["orderid"]).exists()
    result = app_orders_reconcile(read_editions=False)
    assert result.errors == []
    assert AppOrder.objects.get(order_id=truth["orderid"]).status == 0


def test_an_unknown_order_is_a_permanent_error(platform, tenant):
    with pytest.raises(WeComPermanentError):
        services.app_order_sync_by_id(suite=platform.suite, order_id="AONOSUCHORDER")


def test_a_late_read_never_overwrites_a_newer_one(platform, tenant):
    newer = timezone.now()
    editions.edition_observe(
        authorization=tenant,
        entry={"edition_id": "ESPRO", "app_status": 3},
        read_at=newer,
        source="t",
    )
    row = editions.edition_observe(
        authorization=tenant,
        entry={"edition_id": "ESBASIC", "app_status": 1},
        read_at=newer - timedelta(seconds=1),
        source="t",
    )
    assert (row.edition_id, row.app_status) == ("ESPRO", 3)
    tenant.refresh_from_db()
    assert tenant.edition["edition_id"] == "ESPRO"


def test_trials_extend_with_a_record_and_warn_at_30_and_7_days(platform, ctl, tenant):
    editions.editions_adopt()
    row = TenantEdition.objects.get(authorization=tenant)
    assert row.app_status == 1  # installs start on a trial
    extension = editions.trial_prolong(authorization=tenant, days=10, actor="ops-alice")
    row.refresh_from_db()
    wecom = truth_edition(platform.sandbox, platform.suite.suite_id, tenant.corp.corpid)
    assert edition_mismatches(row, wecom) == []
    assert int(extension.try_end_time.timestamp()) == wecom["expired_time"]
    assert TrialExtension.objects.get().actor == "ops-alice"
    with pytest.raises(editions.PaidAppError):
        editions.trial_prolong(authorization=tenant, days=0, actor="x")
    with pytest.raises(WeComPermanentError):  # 15 + 10 + 40 > 60 days
        editions.trial_prolong(authorization=tenant, days=40, actor="x")
    assert editions.trials_expiring_scan() == 1  # 25 days left: within 30
    assert editions.trials_expiring_scan() == 0  # once
    soon = row.expired_time - timedelta(days=6)
    assert editions.trials_expiring_scan(now=soon) == 1  # and once within 7
    assert [e.data["within_days"] for e in feed("trial.expiring")] == [30, 7]


def test_the_reconcile_command_mirrors_and_reports(platform, ctl, tenant, capsys):
    truth = ctl.create_app_order(platform.suite.suite_id, tenant.corp.corpid)
    ctl.app_order(truth["orderid"], "pay")
    call_command("app_order_reconcile", "--days", "31")
    out = capsys.readouterr().out
    assert "orders_new=1" in out
    assert "editions_read=1" in out
    assert "errors=0" in out
    assert AppOrder.objects.get(order_id=truth["orderid"]).status == 1
