"""End to end against the simulator: order → paid → accounts → activate → transfer → refund.

Once driven by callbacks (handlers fed with the events the simulator pushed), once
with every callback lost (the poller and the reconciler alone must converge).
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from licensing import services
from licensing.models import AccountStatus
from licensing.models import AccountType
from licensing.models import LicenseAccount
from licensing.models import LicenseBatchItemError
from licensing.models import LicenseOrder
from licensing.models import LicenseTransfer
from licensing.models import OrderStatus
from tenants.models import FeedEvent
from tenants.wecom import provider_api
from tests.licensing.conftest import dispatch
from tests.licensing.conftest import truth
from wecom.errors import WeComPermanentError

DAY = 86400


def feed(type_: str) -> list[FeedEvent]:
    return list(FeedEvent.objects.filter(type=type_))


def accounts(order: LicenseOrder):
    return LicenseAccount.objects.filter(order=order).order_by("type", "active_code")


def assert_matches_simulator(ctl, order: LicenseOrder) -> None:
    """The mirror equals the simulator's truth: status and every code's binding."""
    order.refresh_from_db()
    state = ctl.state()
    sim_order = next(o for o in state["orders"] if o["order_id"] == order.order_id)
    assert order.status == sim_order["order_status"]
    sim_codes = {
        c["active_code"]: c
        for c in state["codes"]
        if c["order_id"] == order.order_id and c["corpid"] == order.corp.corpid
    }
    ours = {a.active_code: a for a in accounts(order)}
    assert set(ours) == set(sim_codes)
    for code, sim in sim_codes.items():
        mine = ours[code]
        if sim["void"]:
            assert mine.invalid_at is not None, code
            continue
        assert mine.status == sim["status"], code
        assert mine.userid == sim["userid"], code
        if sim["expire_time"]:
            assert int(mine.expire_time.timestamp()) == sim["expire_time"], code


def test_lifecycle_through_services_and_callbacks(platform, ctl, corp, buyer, users, pushes):
    order = services.license_order_create(
        corp=corp, buyer_userid=buyer, base_count=3, external_contact_count=1, months=2, days=3
    )
    assert order.status == OrderStatus.UNPAID
    assert order.order_type == 1
    assert (order.base_count, order.external_contact_count) == (3, 1)
    assert (order.duration_months, order.duration_days) == (2, 3)
    assert order.price == truth(ctl, order.order_id)["price"] > 0
    assert order.raw["order_id"] == order.order_id
    assert order.next_sync_at is not None  # the poller watches it until it settles

    # A person pays in WeCom's console; WeCom pushes license_pay_success.
    ctl.pay_order(order.order_id)
    [paid] = pushes.new("license_pay_success")
    assert paid.order_id == order.order_id
    dispatch(paid)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.paid_at is not None
    assert order.accounts_synced_at is not None
    assert accounts(order).count() == 4
    assert all(a.created_time and a.raw for a in accounts(order))
    assert accounts(order).filter(type=AccountType.EXTERNAL_CONTACT).count() == 1
    assert len(feed("license.paid")) == 1

    # WeCom retries callbacks: the same event again changes nothing.
    dispatch(paid)
    assert len(feed("license.paid")) == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID

    # Activate two members; the earliest-deadline free basic code is picked.
    first = services.license_account_activate(corp=corp, userid=users[0])
    assert first.status == AccountStatus.ACTIVE
    assert first.userid == users[0]
    assert first.type == AccountType.BASE
    assert first.expire_time > timezone.now() + timedelta(days=64)
    third = services.license_account_activate(corp=corp, userid=users[2])
    assert third.active_code != first.active_code

    # Transfer users[0] → users[1], then back (users[1] hands over for the first time).
    batch = services.license_transfer(
        corp=corp, transfers=[{"handover_userid": users[0], "takeover_userid": users[1]}]
    )
    assert (batch.succeeded, batch.failed) == (1, 0)
    first.refresh_from_db()
    assert first.userid == users[1]
    services.license_transfer(
        corp=corp, transfers=[{"handover_userid": users[1], "takeover_userid": users[0]}]
    )
    first.refresh_from_db()
    assert first.userid == users[0]

    # 30-day rule: users[0] handed over minutes ago. Refused locally, WeCom not asked.
    calls = len(platform.requests("batch_transfer_license"))
    blocked = services.license_transfer(
        corp=corp, transfers=[{"handover_userid": users[0], "takeover_userid": users[1]}]
    )
    assert (blocked.succeeded, blocked.failed) == (0, 1)
    [error] = blocked.errors.all()
    assert (error.errcode, error.local) == (701017, True)
    assert len(platform.requests("batch_transfer_license")) == calls
    # Forced (e.g. the member left): WeCom decides, and its errcode is stored per item.
    forced = services.license_transfer(
        corp=corp,
        transfers=[
            {"handover_userid": users[0], "takeover_userid": users[1]},
            {"handover_userid": users[2], "takeover_userid": users[1]},
        ],
        force=True,
    )
    assert (forced.succeeded, forced.failed) == (1, 1)
    [error] = forced.errors.all()
    assert error.errcode == 701017
    assert not error.local
    assert error.item == {"handover_userid": users[0], "takeover_userid": users[1]}
    assert LicenseTransfer.objects.filter(corp=corp).count() == 3
    assert_matches_simulator(ctl, order)

    # Refund approved in WeCom: license_refund (OrderStatus 1) → 5; free codes die.
    ctl.refund_order(order.order_id, "approve")
    [refund] = pushes.new("license_refund")
    dispatch(refund)
    dispatch(refund)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert len(feed("license.refunded")) == 1
    assert accounts(order).filter(invalid_at__isnull=False).count() == 2  # 1 basic + 1 interop
    # A late duplicate of the pay callback cannot move it back.
    dispatch(paid)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.next_sync_at is None  # terminal: polling stopped
    assert_matches_simulator(ctl, order)


def test_lifecycle_with_every_callback_lost(platform, ctl, corp, buyer, users, pushes, poller):
    order = services.license_order_create(
        corp=corp, buyer_userid=buyer, base_count=2, external_contact_count=0, months=1
    )
    ctl.pay_order(order.order_id)
    pushes.new()  # dropped on the floor
    assert poller.run() == [order.pk]
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.accounts_synced_at is not None
    assert accounts(order).count() == 2
    assert order.next_sync_at > timezone.now() + timedelta(minutes=50)  # paid: hourly backoff

    services.license_account_activate(corp=corp, userid=users[0])
    services.license_transfer(
        corp=corp, transfers=[{"handover_userid": users[0], "takeover_userid": users[1]}]
    )
    assert_matches_simulator(ctl, order)

    # Refund requested (no callback exists for that), then approved (callback lost).
    ctl.refund_order(order.order_id, "request")
    poller.run()
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDING
    ctl.refund_order(order.order_id, "approve")
    pushes.new()
    poller.run()
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.next_sync_at is None
    assert poller.run() == []  # polling stopped at the terminal state
    assert_matches_simulator(ctl, order)


def test_reconciler_mirrors_console_orders_and_lost_callbacks(
    platform, ctl, corp, buyer, users, pushes
):
    api = provider_api(platform.provider)
    # Created in WeCom's console: the platform never heard of it.
    console_id = api.create_new_order(
        corpid=corp.corpid, buyer_userid=buyer, base_count=1, months=1
    )["order_id"]
    ctl.pay_order(console_id)
    # Activated in the console too: only list_actived_account reveals it.
    api.active_account_by_type(corpid=corp.corpid, userid=users[2], account_type=1)
    pushes.new()
    assert not LicenseOrder.objects.filter(order_id=console_id).exists()

    result = services.license_reconcile(days=365)
    assert result.errors == []
    assert result.windows == 12  # 365 days in ≤31-day windows (+1 day of clock margin)
    order = LicenseOrder.objects.get(order_id=console_id)
    assert order.status == OrderStatus.PAID
    assert order.corp == corp
    assert_matches_simulator(ctl, order)
    bound = LicenseAccount.objects.get(corp=corp, userid=users[2])
    assert bound.status == AccountStatus.ACTIVE
    assert len(platform.requests("list_order")) == 12

    # A second reconcile finds nothing new.
    again = services.license_reconcile(days=365)
    assert again.orders_new == 0


def test_reconciler_heals_a_lost_pay_callback(platform, ctl, corp, buyer, pushes):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=1, months=1)
    ctl.pay_order(order.order_id)
    pushes.new()  # lost
    services.license_reconcile(days=31, corps=False)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.accounts_synced_at is not None


def test_codes_still_generating_are_retried_later(platform, ctl, corp, buyer, pushes, poller):
    ctl.settings(code_generation_seconds=120)
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=2, months=1)
    ctl.pay_order(order.order_id)
    assert pushes.new("license_pay_success") == []  # pushed only once codes exist (§6.1)
    poller.run()
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.accounts_synced_at is None
    assert "701022" in order.last_sync_error
    assert order.next_sync_at < timezone.now() + timedelta(minutes=2)  # short retry
    assert platform.requests("list_order_account")[-1]["errcode"] == 701022

    platform.sandbox.advance(121)
    [paid] = pushes.new("license_pay_success")
    dispatch(paid)
    order.refresh_from_db()
    assert order.accounts_synced_at is not None
    assert accounts(order).count() == 2
    assert order.last_sync_error == ""


def test_cancel_unpaid_order(platform, ctl, corp, buyer):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=1, months=1)
    order = services.license_order_cancel(order=order)
    assert order.status == OrderStatus.CANCELLED
    assert truth(ctl, order.order_id)["order_status"] == OrderStatus.CANCELLED
    assert order.next_sync_at is None
    with pytest.raises(services.LicenseError):
        services.license_order_cancel(order=order)


def test_cancel_refused_by_wecom_mirrors_the_payment(platform, ctl, corp, buyer):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=1, months=1)
    ctl.pay_order(order.order_id)  # paid meanwhile; our row still says 0
    with pytest.raises(WeComPermanentError) as info:
        services.license_order_cancel(order=order)
    assert info.value.errcode == 701084
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


def test_expired_order_stops_polling(platform, ctl, corp, buyer, poller):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=1, months=1)
    ctl.expire_order(order.order_id)
    poller.run()
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert order.next_sync_at is None


def test_unpaid_poll_backs_off(platform, corp, buyer, poller):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=1, months=1)
    delays = []
    for _ in range(4):
        poller.run()
        order.refresh_from_db()
        delays.append((order.next_sync_at - order.last_synced_at).total_seconds())
    assert delays == sorted(delays)
    assert delays[-1] > 4 * delays[0]
    assert LicenseBatchItemError.objects.count() == 0


def test_list_order_windows_cover_the_history_in_31_day_steps():
    now = timezone.now()
    windows = services.list_order_windows(days=365, now=now)
    assert windows[0][1] == now + timedelta(days=1)
    assert windows[-1][0] == now - timedelta(days=365)
    for (start, end), (_, older_end) in itertools.pairwise(windows):
        assert timedelta(0) < end - start <= timedelta(days=31)
        assert older_end == start  # contiguous, newest first
    assert windows[-1][1] - windows[-1][0] <= timedelta(days=31)
