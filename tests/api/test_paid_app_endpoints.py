"""The paid-app endpoints of one tenant: edition, trial extension, app orders (simulator)."""

from __future__ import annotations

import pytest

from api.models import AuditLog
from licensing.app_orders import editions
from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import TrialExtension
from licensing.app_orders.services import app_order_sync_by_id
from tenants import services as tenant_services
from tests.api.conftest import install
from tests.api.conftest import make_caller

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(platform):
    return install(platform)


@pytest.fixture
def caller(platform, tenant):
    return make_caller("crm", suites=[platform.suite])


def base(tenant) -> str:
    return f"/api/v1/suites/{tenant.suite.suite_id}/corps/{tenant.corp.corpid}/"


def test_the_edition_answers_from_the_mirror_and_reads_wecom_on_request(platform, tenant, caller):
    body = caller.get(base(tenant) + "edition/").json()
    # Not read by the paid-app side yet: the install's copy, with no history.
    assert (body["edition_id"], body["app_status_name"], body["history"]) == (
        "ESBASIC",
        "trial",
        [],
    )
    assert not platform.requests("get_auth_info_v1")[1:]  # only the install's read
    synced = caller.get(base(tenant) + "edition/", {"sync": "true"}).json()
    assert synced["read_at"] is not None
    assert synced["history"][0]["source"] == "api"
    assert 14 <= synced["days_left"] <= 15
    assert len(platform.requests("get_auth_info_v1")) == 2


def test_extending_a_trial_records_who_and_answers_the_new_end(platform, tenant, caller):
    before = caller.get(base(tenant) + "edition/").json()["expired_time"]
    response = caller.post(base(tenant) + "edition/prolong-trial/", {"days": 7})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["days"] == 7
    assert body["edition"]["expired_time"] == body["try_end_time"] != before
    assert body["edition"]["trial_extensions"][0]["actor"] == "api:crm"
    assert TrialExtension.objects.get().days == 7
    [audit] = AuditLog.objects.filter(action="trial.prolong")
    assert (audit.status_code, audit.detail) == (200, {"days": 7})
    # WeCom refuses what would pass 60 days in total: 422 with its errcode.
    refused = caller.post(base(tenant) + "edition/prolong-trial/", {"days": 60})
    assert refused.status_code == 422
    assert refused.json()["error"]["details"]["errcode"] == 40058
    assert TrialExtension.objects.count() == 1
    assert AuditLog.objects.filter(action="trial.prolong", status_code=422).count() == 1


@pytest.mark.parametrize("days", [0, 61, "x", None])
def test_a_bad_number_of_days_is_a_400_and_reaches_no_wecom(platform, tenant, caller, days):
    response = caller.post(base(tenant) + "edition/prolong-trial/", {"days": days})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert platform.requests("prolong_try") == []


def test_an_inactive_tenant_cannot_extend(platform, tenant, caller):
    tenant_services.authorization_suspend(authorization=tenant, reason="test", actor="test")
    response = caller.post(base(tenant) + "edition/prolong-trial/", {"days": 3})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "authorization_inactive"
    assert platform.requests("prolong_try") == []


def test_a_tenant_without_a_paid_edition_gets_a_409(platform, caller):
    template_tenant = install(platform, 1, suite=platform.template)  # 代开发: no edition_info
    whole = make_caller("templates", suites=[platform.template])
    response = whole.post(base(template_tenant) + "edition/prolong-trial/", {"days": 3})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "paid_app_conflict"
    assert platform.requests("prolong_try") == []


def test_app_orders_list_filter_and_detail(platform, tenant, caller):
    ctl, suite_id, corpid = platform.control, tenant.suite.suite_id, tenant.corp.corpid
    unpaid = ctl.create_app_order(suite_id, corpid, user_count=3)
    paid = ctl.create_app_order(suite_id, corpid, edition_id="ESPRO", user_count=9)
    ctl.app_order(paid["orderid"], "pay")
    for order in (unpaid, paid):
        app_order_sync_by_id(suite=platform.suite, order_id=order["orderid"])
    listed = caller.get(base(tenant) + "app-orders/").json()["results"]
    assert {o["order_id"] for o in listed} == {unpaid["orderid"], paid["orderid"]}
    only_paid = caller.get(base(tenant) + "app-orders/", {"status": 1}).json()["results"]
    assert [o["order_id"] for o in only_paid] == [paid["orderid"]]
    assert caller.get(base(tenant) + "app-orders/", {"status": 9}).status_code == 400
    detail = caller.get(base(tenant) + f"app-orders/{paid['orderid']}/").json()
    assert (detail["edition_id"], detail["user_count"], detail["status"]) == ("ESPRO", 9, 1)
    assert detail["service_share_amount"] + detail["platform_share_amount"] == detail["price"]
    ctl.app_order(unpaid["orderid"], "cancel")
    synced = caller.get(base(tenant) + f"app-orders/{unpaid['orderid']}/", {"sync": "1"}).json()
    assert synced["status"] == 2
    assert AppOrder.objects.get(order_id=unpaid["orderid"]).status == 2
    # Another tenant's order through this tenant's path: the one 404.
    other = install(platform, 1)
    other_order = ctl.create_app_order(suite_id, other.corp.corpid)
    app_order_sync_by_id(suite=platform.suite, order_id=other_order["orderid"])
    response = caller.get(base(tenant) + f"app-orders/{other_order['orderid']}/")
    assert response.status_code == 404


def test_the_edition_endpoint_never_shows_a_secret(platform, tenant, caller):
    editions.edition_refresh(authorization=tenant, source="test")
    text = caller.get(base(tenant) + "edition/").content.decode()
    assert tenant.permanent_code not in text
