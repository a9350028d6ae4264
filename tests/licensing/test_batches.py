"""Batch calls: chunked at WeCom's limits, every refused item stored with its errcode."""

from __future__ import annotations

from datetime import timedelta

import pytest

from licensing import services
from licensing.models import AccountStatus
from licensing.models import LicenseAccount
from licensing.models import LicenseBatch
from licensing.models import LicenseBatchItemError
from licensing.models import LicenseNewOrderJob
from licensing.models import LicenseOrder
from licensing.models import LicenseRenewJob
from licensing.models import OrderStatus
from licensing.models import OrderType
from tenants.models import Corp
from tests.licensing.conftest import dispatch
from tests.licensing.conftest import install
from wecom.errors import WeComPermanentError


def paid_order(ctl, pushes, corp, buyer, **counts) -> LicenseOrder:
    order = services.license_order_create(corp=corp, buyer_userid=buyer, months=1, **counts)
    ctl.pay_order(order.order_id)
    for event in pushes.new("license_pay_success"):
        dispatch(event)
    order.refresh_from_db()
    return order


@pytest.fixture
def big_order(platform, ctl, pushes, corp, buyer) -> LicenseOrder:
    return paid_order(ctl, pushes, corp, buyer, base_count=1500)


def test_large_order_accounts_are_paged_and_read_in_chunks(platform, big_order):
    assert big_order.accounts_synced_at is not None
    assert LicenseAccount.objects.filter(order=big_order).count() == 1500
    assert LicenseAccount.objects.filter(order=big_order, created_time__isnull=True).count() == 0
    # list_order_account pages of ≤1000 (cursor), details in ≤1000-code batches.
    assert len(platform.requests("list_order_account")) == 2
    assert len(platform.requests("batch_get_active_info_by_code")) == 2


def test_batch_activation_is_chunked_and_failed_items_keep_their_errcode(
    platform, corp, users, big_order
):
    codes = list(
        LicenseAccount.objects.filter(order=big_order)
        .order_by("active_code")
        .values_list("active_code", flat=True)
    )
    items = [{"active_code": code, "userid": f"ghost{i}"} for i, code in enumerate(codes)]
    # One good item per chunk: a chunk whose items all fail is a whole-call 701024.
    items[0]["userid"] = users[0]
    items[1000]["userid"] = users[1]
    batch = services.license_accounts_activate_batch(corp=corp, items=items)
    assert len(platform.requests("batch_active_account")) == 2
    assert (batch.total, batch.calls, batch.succeeded, batch.failed) == (1500, 2, 2, 1498)
    errors = LicenseBatchItemError.objects.filter(batch=batch)
    assert errors.count() == 1498
    assert set(errors.values_list("errcode", flat=True)) == {701019}
    assert errors.filter(item__userid="ghost1", item__active_code=codes[1]).exists()
    bound = LicenseAccount.objects.filter(corp=corp, status=AccountStatus.ACTIVE)
    assert set(bound.values_list("userid", flat=True)) == {users[0], users[1]}


def test_a_chunk_that_fails_whole_records_every_item(platform, corp, big_order):
    codes = list(LicenseAccount.objects.filter(order=big_order)[:3])
    items = [{"active_code": c.active_code, "userid": "nobody"} for c in codes]
    batch = services.license_accounts_activate_batch(corp=corp, items=items)
    assert (batch.succeeded, batch.failed) == (0, 3)
    # WeCom answers 701024 for the call, with each item's reason, and those are stored:
    # "nobody" is no member (701019), and the same userid again in one call (701023).
    errors = batch.errors.order_by("pk")
    assert list(errors.values_list("errcode", flat=True)) == [701019, 701023, 701023]
    assert [e.item["active_code"] for e in errors] == [c.active_code for c in codes]


def test_renew_job_is_chunked_and_invalid_accounts_are_stored(
    platform, ctl, pushes, corp, buyer, users
):
    paid_order(ctl, pushes, corp, buyer, base_count=1)
    account = services.license_account_activate(corp=corp, userid=users[0])
    accounts = [{"userid": users[0], "type": 1}] + [
        {"userid": f"ghost{i}", "type": 1} for i in range(1199)
    ]
    job = services.license_renew_job_create(corp=corp, accounts=accounts)
    assert len(platform.requests("create_renew_order_job")) == 2
    assert job.accounts == [{"userid": users[0], "type": 1}]
    batch = LicenseBatch.objects.get(renew_job=job)
    assert (batch.calls, batch.succeeded, batch.failed) == (2, 1, 1199)
    assert set(batch.errors.values_list("errcode", flat=True)) == {701019}
    # The second call appended to the same job (jobid passed back).
    assert [j["jobid"] for j in ctl.state()["renew_jobs"]] == [job.jobid]

    order = services.license_renew_job_submit(job=job, buyer_userid=buyer, months=1)
    job.refresh_from_db()
    assert job.status == LicenseRenewJob.Status.SUBMITTED
    assert job.order == order
    assert order.order_type == OrderType.RENEW
    assert order.status == OrderStatus.UNPAID
    before = account.expire_time
    ctl.pay_order(order.order_id)
    [paid] = pushes.new("license_pay_success")
    dispatch(paid)
    order.refresh_from_db()
    account.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.accounts_synced_at is not None
    assert account.expire_time == before + timedelta(days=31)


def test_renew_job_with_no_valid_account_reports_every_item(platform, corp):
    with pytest.raises(services.LicenseBatchFailed) as info:
        services.license_renew_job_create(corp=corp, accounts=[{"userid": "ghost", "type": 1}])
    # The item's own reason (701024 is only "every item failed"): not a member.
    assert list(info.value.batch.errors.values_list("errcode", flat=True)) == [701019]


def test_share_codes_downstream(platform, ctl, pushes, corp, buyer):
    order = paid_order(ctl, pushes, corp, buyer, base_count=3)
    downstream_sim = ctl.add_corp(
        name="下游门店", upstream=corp.corpid, users=[{"name": "A"}, {"name": "B"}]
    )
    downstream = install(platform, ctl, downstream_sim["corpid"]).corp
    codes = list(LicenseAccount.objects.filter(order=order).values_list("active_code", flat=True))
    batch = services.license_codes_share(
        from_corp=corp, to_corp=downstream, active_codes=[codes[0], codes[1], "NOSUCHCODE"]
    )
    assert (batch.succeeded, batch.failed) == (2, 1)
    [error] = batch.errors.all()
    assert (error.item, error.errcode) == ({"active_code": "NOSUCHCODE"}, 701021)
    upstream = LicenseAccount.objects.get(corp=corp, active_code=codes[0])
    assert upstream.status == AccountStatus.SHARED
    assert upstream.shared_to_corp == downstream
    copy = LicenseAccount.objects.get(corp=downstream, active_code=codes[0])
    assert copy.status == AccountStatus.UNBOUND
    assert copy.shared_from_corp == corp
    # The downstream corp activates its copy for one of its members.
    member = downstream_sim["users"][0]["userid"]
    activated = services.license_account_activate(corp=downstream, userid=member)
    assert activated.corp == downstream
    assert activated.status == AccountStatus.ACTIVE


def test_multi_corp_job_is_chunked_by_ten_and_yields_sub_orders(platform, ctl, pushes, buyer):
    corps = [install(platform, ctl, c["corpid"]).corp for c in platform.corps[1:3]]
    item = {"base_count": 2, "months": 1}
    items = [{"corp": corps[0], **item}]
    items += [{"corpid": f"wpnobody{i}", **item} for i in range(10)]
    items += [{"corp": corps[1], **item}]
    job = services.license_new_order_job_create(items=items)
    assert len(platform.requests("create_new_order_job")) == 2
    assert [b["corpid"] for b in job.buy_list] == [c.corpid for c in corps]
    errors = LicenseBatchItemError.objects.filter(batch__new_order_job=job)
    assert errors.count() == 10
    assert set(errors.values_list("errcode", flat=True)) == {701015}

    job = services.license_new_order_job_submit(job=job, buyer_userid=buyer)
    assert job.status == LicenseNewOrderJob.Status.DONE
    parent = job.order
    assert parent.order_type == OrderType.MULTI_CORP
    assert parent.corp is None
    subs = list(parent.sub_orders.order_by("corp__corpid"))
    assert {s.corp for s in subs} == set(corps)
    assert all(s.status == OrderStatus.UNPAID for s in subs)

    ctl.pay_order(parent.order_id)
    events = pushes.new("license_pay_success")
    assert {e.order_id for e in events} == {s.order_id for s in subs}  # one per sub-order
    for event in events:
        dispatch(event)
    for sub in subs:
        sub.refresh_from_db()
        assert sub.status == OrderStatus.PAID
        assert LicenseAccount.objects.filter(order=sub, corp=sub.corp).count() == 2
    services.license_order_sync(order=parent)
    parent.refresh_from_db()
    assert parent.status == OrderStatus.PAID


def test_auto_activation_and_app_license_info(platform, ctl, pushes, corp, buyer):
    with pytest.raises(WeComPermanentError) as info:
        services.license_auto_active_set(corp=corp, enabled=True)
    assert info.value.errcode == 701071  # never bought
    paid_order(ctl, pushes, corp, buyer, base_count=1)
    services.license_auto_active_set(corp=corp, enabled=True)
    assert ctl.state()["auto_active"][corp.corpid] == 1
    assert services.license_auto_active_get(corp=corp).auto_active_status == 1

    info = services.license_app_info_sync(corp=corp, suite=platform.suite)
    assert info.license_status == 1
    assert info.trial_end - info.trial_start == timedelta(days=90)


def test_user_activation_info(platform, ctl, pushes, corp, buyer, users):
    paid_order(ctl, pushes, corp, buyer, base_count=1, external_contact_count=1)
    services.license_account_activate(corp=corp, userid=users[1], account_type=2)
    info = services.license_user_info_sync(corp=corp, userid=users[1])
    assert info.active_status == 1
    assert [(a.type, a.userid) for a in info.accounts] == [(2, users[1])]
    assert services.license_user_info_sync(corp=corp, userid=users[2]).active_status == 0


def test_activation_falls_back_to_wecom_choice_without_a_known_code(
    platform, ctl, corp, buyer, users
):
    # The codes exist in WeCom only (bought in the console, never mirrored).
    from tenants.wecom import provider_api

    api = provider_api(platform.provider)
    order_id = api.create_new_order(corpid=corp.corpid, buyer_userid=buyer, base_count=1, months=1)[
        "order_id"
    ]
    ctl.pay_order(order_id)
    account = services.license_account_activate(corp=corp, userid=users[0])
    assert account.userid == users[0]
    assert len(platform.requests("active_account_by_type")) == 1
    assert Corp.objects.filter(corpid=corp.corpid).count() == 1
