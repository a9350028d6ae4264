"""Paid apps in the simulator (§13): orders, callbacks, editions, trials, errcodes."""

from __future__ import annotations

import pytest

from sandbox.control import SandboxControlError

DAY = 86400


@pytest.fixture
def grant(api):
    return api.authorize()


def service(api, grant, name: str, body: dict) -> dict:
    return api.post(f"/cgi-bin/service/{name}", body, suite_access_token=grant["suite_token"])


def wait_pushes(sandbox, receiver, info_type: str, count: int = 1) -> list[dict]:
    assert sandbox.wait_pushes(10)
    records = receiver.of_type(info_type)
    assert len(records) >= count, (info_type, len(records))
    return records


def test_a_purchase_from_open_order_to_a_paid_edition(api, ctl, grant, sandbox, receiver):
    corpid, suite_id = grant["corpid"], grant["suite_id"]
    order = ctl.create_app_order(suite_id, corpid, edition_id="ESPRO", user_count=20)
    assert (order["order_status"], order["order_type"]) == (0, 0)  # a new purchase, unpaid
    assert order["price"] == 20 * 365 * 10
    assert order["service_share_amount"] + order["platform_share_amount"] == order["price"]
    assert order["dealer_share_amount"] == 0
    assert "dealer_corp_info" not in order
    [opened] = wait_pushes(sandbox, receiver, "open_order")
    assert opened["fields"]["OrderId"] == order["orderid"]
    assert opened["fields"]["PaidCorpId"] == corpid
    assert opened["fields"]["OperatorId"] == order["operator_id"] != ""

    ctl.app_order(order["orderid"], "pay")
    got = service(api, grant, "get_order", {"orderid": order["orderid"]})
    assert got["errcode"] == 0
    assert got["order_status"] == 1
    assert got["end_time"] - got["begin_time"] == 365 * DAY
    assert got["paid_corpid"] == corpid
    assert got["suiteid"] == suite_id
    wait_pushes(sandbox, receiver, "pay_for_app_success")
    wait_pushes(sandbox, receiver, "change_editon")
    edition = sandbox.state.auth(suite_id, corpid).edition
    assert (edition["edition_id"], edition["app_status"]) == ("ESPRO", 3)
    assert (edition["user_limit"], edition["expired_time"]) == (20, got["end_time"])
    info = api.post(
        "/cgi-bin/service/get_auth_info",
        {"auth_corpid": corpid, "permanent_code": grant["permanent_code"]},
        suite_access_token=grant["suite_token"],
    )
    assert info["edition_info"]["agent"][0]["edition_id"] == "ESPRO"


def test_upgrade_renew_refund_and_the_edition_put_back(api, ctl, grant, sandbox):
    corpid, suite_id = grant["corpid"], grant["suite_id"]
    first = ctl.create_app_order(suite_id, corpid, edition_id="ESBASIC", user_count=10)
    ctl.app_order(first["orderid"], "pay")
    upgrade = ctl.create_app_order(suite_id, corpid, edition_id="ESPRO", user_count=10)
    assert upgrade["order_type"] == 3  # 变更版本, inferred from the paid edition
    ctl.app_order(upgrade["orderid"], "pay")
    assert sandbox.state.auth(suite_id, corpid).edition["edition_id"] == "ESPRO"
    ctl.app_order(upgrade["orderid"], "refund", action="request")
    assert service(api, grant, "get_order", {"orderid": upgrade["orderid"]})["order_status"] == 4
    ctl.app_order(upgrade["orderid"], "refund", action="approve")
    assert service(api, grant, "get_order", {"orderid": upgrade["orderid"]})["order_status"] == 5
    edition = sandbox.state.auth(suite_id, corpid).edition
    assert (edition["edition_id"], edition["app_status"]) == ("ESBASIC", 3)  # back to before
    renew = ctl.create_app_order(suite_id, corpid, edition_id="ESBASIC", user_count=10)
    assert renew["order_type"] == 2
    bigger = ctl.create_app_order(suite_id, corpid, edition_id="ESBASIC", user_count=50)
    assert bigger["order_type"] == 1


def test_change_price_gives_a_new_order_and_closes_the_old(api, ctl, grant, sandbox, receiver):
    order = ctl.create_app_order(grant["suite_id"], grant["corpid"], order_from=2)
    assert order["operator_corpid"].startswith("wwdealer")
    assert "operator_id" not in order
    assert order["dealer_corp_info"]["corpid"] == order["operator_corpid"]
    assert (
        sum(order[f"{k}_share_amount"] for k in ("service", "platform", "dealer"))
        == (order["price"])
    )
    answer = ctl.app_order(order["orderid"], "change_price", price=1234)
    new = answer["new_order"]
    assert (new["price"], new["order_status"], answer["order"]["order_status"]) == (1234, 0, 2)
    [changed] = wait_pushes(sandbox, receiver, "change_order")
    assert changed["fields"]["OldOrderId"] == order["orderid"]
    assert changed["fields"]["NewOrderId"] == new["orderid"]
    with pytest.raises(SandboxControlError) as refused:
        ctl.app_order(order["orderid"], "pay")
    assert refused.value.status == 409


def test_order_list_is_by_order_time_per_suite_and_test_mode(api, ctl, grant, sandbox):
    now = sandbox.state.ts()
    orders = [ctl.create_app_order(grant["suite_id"], grant["corpid"]) for _ in range(3)]
    listed = service(api, grant, "get_order_list", {"start_time": now - DAY, "end_time": now + DAY})
    assert [o["orderid"] for o in listed["order_list"]] == [o["orderid"] for o in orders]
    assert (
        service(
            api,
            grant,
            "get_order_list",
            {"start_time": now - DAY, "end_time": now + DAY, "test_mode": 1},
        )["order_list"]
        == []
    )
    too_long = service(
        api, grant, "get_order_list", {"start_time": now, "end_time": now + 32 * DAY}
    )
    assert too_long["errcode"] == 40058
    unknown = service(api, grant, "get_order", {"orderid": "AONOSUCH"})
    assert unknown["errcode"] == 40058


def test_trials_extend_within_sixty_days_and_expire(api, ctl, grant, sandbox, receiver):
    corpid, suite_id = grant["corpid"], grant["suite_id"]
    edition = sandbox.state.auth(suite_id, corpid).edition
    assert edition["app_status"] == 1  # installs start on a trial
    answer = service(api, grant, "prolong_try", {"buyer_corpid": corpid, "prolong_days": 10})
    assert answer["try_end_time"] == edition["expired_time"] + 10 * DAY
    too_much = service(api, grant, "prolong_try", {"buyer_corpid": corpid, "prolong_days": 40})
    assert too_much["errcode"] == 40058  # 15 + 10 + 40 > 60 days in total
    assert (
        service(api, grant, "prolong_try", {"buyer_corpid": "wpnobody", "prolong_days": 1})[
            "errcode"
        ]
        == 40013
    )
    ctl.expire_trial(suite_id, corpid)
    assert sandbox.state.auth(suite_id, corpid).edition["app_status"] == 2
    # An expired trial can still be extended (path/91913).
    assert (
        service(api, grant, "prolong_try", {"buyer_corpid": corpid, "prolong_days": 5})["errcode"]
        == 0
    )
    paid = ctl.create_app_order(suite_id, corpid)
    ctl.app_order(paid["orderid"], "pay")
    refused = service(api, grant, "prolong_try", {"buyer_corpid": corpid, "prolong_days": 5})
    assert refused["errcode"] == 40058  # not a trial any more
    # A paid term that runs out flips to 4 on the simulator clock, with change_editon.
    assert sandbox.wait_pushes(10)
    before = len(receiver.of_type("change_editon"))
    sandbox.advance(366 * DAY)
    assert sandbox.state.auth(suite_id, corpid).edition["app_status"] == 4
    assert sandbox.wait_pushes(10)
    assert len(receiver.of_type("change_editon")) == before + 1


def test_snapshot_keeps_app_orders(ctl, grant, sandbox, tmp_path):
    order = ctl.create_app_order(grant["suite_id"], grant["corpid"])
    path = tmp_path / "state.json"
    sandbox.state.save(path)
    sandbox.state.app_orders.clear()
    sandbox.state.load(path)
    assert order["orderid"] in sandbox.state.app_orders
