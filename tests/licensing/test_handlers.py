"""Callback handlers: idempotent, and fed with the events the simulator really pushed."""

from __future__ import annotations

import pytest

from licensing import handlers
from licensing import services
from licensing.models import AccountStatus
from licensing.models import LicenseAccount
from licensing.models import LicenseOrder
from licensing.models import OrderStatus
from licensing.models import UnlicensedMember
from tenants.models import FeedEvent
from tenants.wecom import provider_api
from tests.licensing.conftest import dispatch
from wecom import messages


def test_handlers_cover_the_license_callbacks():
    assert set(handlers.HANDLERS) == {
        "license_pay_success",
        "license_refund",
        "auto_activate",
        "unlicensed_notify",
        # Paid apps (应用版本付费, licensing/app_orders/handlers.py); change_editon is taken
        # over from the tenants app, whose event-time rule it keeps.
        "open_order",
        "change_order",
        "pay_for_app_success",
        "refund",
        "cancel_order",
        "change_editon",
    }


def test_pay_callback_for_an_order_created_in_the_console(platform, ctl, corp, buyer, pushes):
    order_id = provider_api(platform.provider).create_new_order(
        corpid=corp.corpid, buyer_userid=buyer, base_count=2, months=1
    )["order_id"]
    ctl.pay_order(order_id)
    [event] = pushes.new("license_pay_success")
    assert event.auth_corp_id == corp.corpid
    dispatch(event)
    order = LicenseOrder.objects.get(order_id=order_id)
    assert order.status == OrderStatus.PAID
    assert order.buyer_userid == buyer
    assert order.corp == corp
    assert LicenseAccount.objects.filter(order=order).count() == 2


def test_pay_callback_counts_even_when_wecom_is_unreachable(
    platform, ctl, corp, buyer, pushes, poller
):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=1, months=1)
    ctl.pay_order(order.order_id)
    [event] = pushes.new("license_pay_success")
    ctl.add_fault(endpoint="get_order", http_status=502, times=1)
    dispatch(event)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID  # from the callback alone
    assert order.accounts_synced_at is None
    poller.run()  # the poller finishes the job
    order.refresh_from_db()
    assert order.accounts_synced_at is not None


def test_refund_rejected(platform, ctl, corp, buyer, pushes):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=1, months=1)
    ctl.pay_order(order.order_id)
    ctl.refund_order(order.order_id, "reject")
    events = pushes.new()
    refund = next(e for e in events if e.info_type == "license_refund")
    assert refund.order_status == 2
    # Delivered before the pay callback (out of order): 0 → 6 is forward.
    dispatch(refund)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUND_REJECTED
    for event in events:
        dispatch(event)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUND_REJECTED
    assert not FeedEvent.objects.filter(type="license.refunded").exists()
    assert FeedEvent.objects.filter(type="license.paid").count() == 1


def test_refund_with_an_unknown_result_is_rejected():
    event = messages.parse_event(
        "<xml><InfoType>license_refund</InfoType><AuthCorpId>wpx</AuthCorpId>"
        "<OrderId>o1</OrderId><OrderStatus>9</OrderStatus><TimeStamp>1</TimeStamp></xml>"
    )
    with pytest.raises(handlers.MalformedLicenseEvent):
        dispatch(event)


def test_unlicensed_notify_is_recorded_once_and_published(platform, ctl, auth, users, pushes):
    corp = auth.corp
    answer = ctl.unlicensed(corp.corpid, users[1])
    assert answer["action"] == "unlicensed_notify"
    [event] = pushes.new("unlicensed_notify")
    assert isinstance(event, messages.UnlicensedNotify)
    assert event.from_user_name == users[1]
    assert dispatch(event).startswith(f"unlicensed member {users[1]}")
    assert dispatch(event) == "duplicate: already recorded"
    member = UnlicensedMember.objects.get(corp=corp, userid=users[1])
    assert member.suite == platform.suite  # found through the event's AgentID
    assert member.times_seen == 1
    assert member.resolved_at is None
    [entry] = FeedEvent.objects.filter(type="license.unlicensed")
    assert entry.data == {
        "corpid": corp.corpid,
        "userid": users[1],
        "suite_id": auth.suite.suite_id,
    }

    platform.sandbox.advance(5)
    ctl.unlicensed(corp.corpid, users[1])
    [again] = pushes.new("unlicensed_notify")
    dispatch(again)
    member.refresh_from_db()
    assert member.times_seen == 2
    assert FeedEvent.objects.filter(type="license.unlicensed").count() == 2


def test_auto_activate_binds_the_code_and_resolves_the_member(
    platform, ctl, corp, buyer, users, pushes
):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=2, months=1)
    ctl.pay_order(order.order_id)
    for event in pushes.new("license_pay_success"):
        dispatch(event)
    ctl.unlicensed(corp.corpid, users[2])  # auto-activation off: unlicensed_notify
    for event in pushes.new("unlicensed_notify"):
        dispatch(event)
    services.license_auto_active_set(corp=corp, enabled=True)
    platform.sandbox.advance(2)
    answer = ctl.unlicensed(corp.corpid, users[2])
    assert answer["action"] == "auto_activate"
    [event] = pushes.new("auto_activate")
    assert [a.user_id for a in event.accounts] == [users[2]]
    dispatch(event)
    dispatch(event)
    account = LicenseAccount.objects.get(corp=corp, active_code=answer["active_code"])
    assert account.status == AccountStatus.ACTIVE
    assert account.userid == users[2]
    assert account.order == order
    assert UnlicensedMember.objects.get(corp=corp, userid=users[2]).resolved_at is not None
    [entry] = FeedEvent.objects.filter(type="license.auto_activated")
    assert entry.data["accounts"][0]["userid"] == users[2]
    assert "active_code" not in str(entry.data)
