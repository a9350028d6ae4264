"""License endpoints against the simulator: orders, renewals, accounts, activation, transfer,
auto-activation and app license info, each scoped to one tenant."""

from __future__ import annotations

import pytest

from api.models import AuditLog
from licensing.models import LicenseOrder
from licensing.models import OrderStatus
from tests.api.conftest import NOT_FOUND
from tests.api.conftest import install
from tests.api.conftest import make_caller
from tests.api.conftest import tenant_path


@pytest.fixture
def tenant(platform):
    return install(platform)


@pytest.fixture
def buyer(platform) -> str:
    return platform.sandbox.config["buyers"][0]


@pytest.fixture
def users(platform) -> list[str]:
    return [u["userid"] for u in platform.corps[0]["users"]]


@pytest.fixture
def caller(tenant):
    return make_caller("licenses", corps=[tenant.corp])


def paid_order(platform, caller, tenant, buyer, **counts) -> dict:
    body = {"buyer_userid": buyer, "base_count": 3, "months": 2, **counts}
    response = caller.post(tenant_path(tenant, "license/orders/"), body)
    assert response.status_code == 201, response.content
    order = response.json()
    platform.control.pay_order(order["order_id"])
    synced = caller.get(tenant_path(tenant, f"license/orders/{order['order_id']}/"), {"sync": "1"})
    assert synced.status_code == 200, synced.content
    return synced.json()


@pytest.mark.django_db
def test_orders_create_list_get_cancel(platform, caller, tenant, buyer):
    orders = tenant_path(tenant, "license/orders/")
    created = caller.post(orders, {"buyer_userid": buyer, "base_count": 2, "months": 1})
    assert created.status_code == 201
    order = created.json()
    assert order["status"] == OrderStatus.UNPAID
    assert order["corpid"] == tenant.corp.corpid
    assert order["price"] > 0
    listed = caller.get(orders).json()["results"]
    assert [o["order_id"] for o in listed] == [order["order_id"]]
    assert caller.get(orders, {"status": 1}).json()["results"] == []
    detail = caller.get(tenant_path(tenant, f"license/orders/{order['order_id']}/"))
    assert detail.json()["order_id"] == order["order_id"]
    cancel = tenant_path(tenant, f"license/orders/{order['order_id']}/cancel/")
    cancelled = caller.post(cancel)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == OrderStatus.CANCELLED
    again = caller.post(cancel)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "license_conflict"
    invalid = caller.post(orders, {"buyer_userid": buyer, "base_count": 0, "months": 1})
    assert invalid.status_code == 400
    # WeCom refuses what the client sent (not an admin of the provider corp): 422.
    refused = caller.post(orders, {"buyer_userid": "not-a-buyer", "base_count": 1})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "wecom_error"
    assert refused.json()["error"]["details"]["errcode"] == 49009
    actions = list(
        AuditLog.objects.filter(client=caller.client)
        .order_by("id")
        .values_list("action", "outcome", "detail")
    )
    assert actions[0] == ("license.order.create", "ok", {"order_id": order["order_id"]})
    assert [a[1] for a in actions] == ["ok", "ok", "conflict", "invalid", "invalid"]


@pytest.mark.django_db
def test_accounts_activate_batch_and_transfer(platform, caller, tenant, buyer, users):
    order = paid_order(platform, caller, tenant, buyer, base_count=3)
    assert order["status"] == OrderStatus.PAID
    accounts = tenant_path(tenant, "license/accounts/")
    listed = caller.get(accounts).json()["results"]
    assert len(listed) == 3
    assert {a["status"] for a in listed} == {1}
    assert caller.get(accounts, {"order_id": order["order_id"]}).json()["results"] == listed
    activated = caller.post(tenant_path(tenant, "license/accounts/activate/"), {"userid": users[0]})
    assert activated.status_code == 200, activated.content
    assert activated.json()["userid"] == users[0]
    assert activated.json()["status"] == 2
    free = [a["active_code"] for a in caller.get(accounts, {"status": 1}).json()["results"]]
    batch = caller.post(
        tenant_path(tenant, "license/accounts/batch-activate/"),
        {
            "items": [
                {"active_code": free[0], "userid": users[1]},
                {"active_code": "NO-SUCH-CODE", "userid": users[2]},
            ]
        },
    ).json()
    assert (batch["total"], batch["succeeded"], batch["failed"]) == (2, 1, 1)
    assert batch["errors"][0]["item"]["active_code"] == "NO-SUCH-CODE"
    assert batch["errors"][0]["errcode"] != 0
    transfer = caller.post(
        tenant_path(tenant, "license/accounts/transfer/"),
        {"transfers": [{"handover_userid": users[0], "takeover_userid": users[2]}]},
    ).json()
    assert (transfer["succeeded"], transfer["failed"]) == (1, 0)
    mine = caller.get(accounts, {"userid": users[2]}).json()["results"]
    assert len(mine) == 1
    detail = caller.get(tenant_path(tenant)).json()
    assert detail["license"]["bought"] == 3
    assert detail["license"]["active"] == 2


@pytest.mark.django_db
def test_renew_auto_active_and_app_info(platform, caller, tenant, buyer, users):
    paid_order(platform, caller, tenant, buyer, base_count=2)
    caller.post(tenant_path(tenant, "license/accounts/activate/"), {"userid": users[0]})
    renew = caller.post(
        tenant_path(tenant, "license/renew/"),
        {"buyer_userid": buyer, "accounts": [{"userid": users[0], "type": 1}], "months": 1},
    )
    assert renew.status_code == 201, renew.content
    body = renew.json()
    assert body["jobid"]
    assert body["accounts"] == [{"userid": users[0], "type": 1}]
    assert LicenseOrder.objects.get(order_id=body["order"]["order_id"]).order_type == 2
    both = caller.post(
        tenant_path(tenant, "license/renew/"),
        {
            "buyer_userid": buyer,
            "accounts": [{"userid": users[0]}],
            "months": 1,
            "new_expire_time": "2030-01-01T00:00:00Z",
        },
    )
    assert both.status_code == 400
    auto = tenant_path(tenant, "license/auto-active/")
    assert caller.put(auto, {"enabled": True}).json()["enabled"] is True
    assert caller.get(auto).json()["enabled"] is True
    info = caller.get(tenant_path(tenant, "license/app-info/"))
    assert info.status_code == 200, info.content
    assert info.json()["suite_id"] == tenant.suite.suite_id


@pytest.mark.django_db
def test_another_tenants_orders_are_invisible(platform, buyer, caller, tenant):
    other = install(platform, 1)
    theirs = make_caller("theirs", corps=[other.corp])
    order = theirs.post(
        tenant_path(other, "license/orders/"), {"buyer_userid": buyer, "base_count": 1}
    ).json()
    assert caller.get(tenant_path(tenant, "license/orders/")).json()["results"] == []
    foreign = tenant_path(tenant, f"license/orders/{order['order_id']}/")
    assert caller.get(foreign).json() == NOT_FOUND
    assert caller.post(foreign + "cancel/").json() == NOT_FOUND
    assert caller.get(tenant_path(other, "license/orders/")).json() == NOT_FOUND
