"""License orders: creation rules, payment, refunds, jobs, listing (§6.3, §11 item 14)."""

from __future__ import annotations

import pytest

from sandbox.control import SandboxControlError

DAY = 86400


@pytest.fixture
def corp(api):
    return api.corps[0]["corpid"]


def test_price_is_counts_times_days_times_unit_price(lic, corp, sandbox):
    order_id = lic.order(corp, base=3, external=2, months=2, days=5)
    order = lic.call("get_order", {"order_id": order_id})["order"]
    days = 2 * 31 + 5
    settings = sandbox.state.settings
    assert order["price"] == days * (
        3 * settings.unit_price_base + 2 * settings.unit_price_external
    )
    assert order["order_status"] == 0
    assert order["order_type"] == 1
    assert order["corpid"] == corp
    assert order["account_count"] == {"base_count": 3, "external_contact_count": 2}
    assert order["account_duration"] == {"months": 2, "days": 5}
    assert order["pay_time"] == 0
    # Nothing to list before payment (§6.3).
    assert lic.codes(order_id) == []


def test_unit_prices_are_configurable(lic, ctl, corp):
    ctl.settings(unit_price_base=100, unit_price_external=7)
    order = lic.call("get_order", {"order_id": lic.order(corp, base=1, external=1, months=1)})
    assert order["order"]["price"] == 31 * 107


@pytest.mark.parametrize(
    ("patch", "errcode"),
    [
        ({"buyer_userid": "stranger"}, 49009),
        ({"corpid": "wpnobody"}, 40013),
        ({"account_count": {"base_count": 0, "external_contact_count": 0}}, 40058),
        ({"account_count": {"base_count": -1}}, 40058),
        ({"account_count": {"base_count": 1_000_001}}, 40058),
        ({"account_duration": {"days": 30}}, 40058),
        ({"account_duration": {"months": 61}}, 40058),
        ({"account_duration": {"months": 60, "days": 1}}, 40058),
        ({"account_duration": {"months": "1"}}, 40058),
        ({"account_count": None}, 40063),
        ({"buyer_userid": None}, 40063),
    ],
)
def test_create_new_order_validation(lic, corp, buyer, patch, errcode):
    body = {
        "corpid": corp,
        "buyer_userid": buyer,
        "account_count": {"base_count": 1},
        "account_duration": {"months": 1},
        **patch,
    }
    body = {k: v for k, v in body.items() if v is not None}
    assert lic.call("create_new_order", body)["errcode"] == errcode


def test_create_new_order_needs_an_authorization(lic, api, buyer):
    body = {
        "corpid": api.corps[2]["corpid"],
        "buyer_userid": buyer,
        "account_count": {"base_count": 1},
        "account_duration": {"months": 1},
    }
    assert lic.call("create_new_order", body)["errcode"] == 701015


def test_plaintext_corpid_is_accepted_and_encrypted_returned(lic, api, buyer):
    body = {
        "corpid": api.corps[0]["plain_corpid"],
        "buyer_userid": buyer,
        "account_count": {"base_count": 1},
        "account_duration": {"months": 1},
    }
    order_id = lic.call("create_new_order", body)["order_id"]
    assert (
        lic.call("get_order", {"order_id": order_id})["order"]["corpid"] == api.corps[0]["corpid"]
    )


def test_unpaid_order_blocks_new_orders(lic, corp):
    lic.order(corp)
    body = {
        "corpid": corp,
        "buyer_userid": lic.buyer,
        "account_count": {"base_count": 1},
        "account_duration": {"months": 1},
    }
    assert lic.call("create_new_order", body)["errcode"] == 701032


def test_pay_generates_codes_and_pushes_pay_success(lic, ctl, corp, sandbox, receiver, api):
    order_id = lic.order(corp, base=2, external=1)
    paid = ctl.pay_order(order_id)
    assert paid["order_status"] == 1
    assert paid["pay_time"] > 0
    codes = lic.codes(order_id)
    assert sorted(c["type"] for c in codes) == [1, 1, 2]
    info = lic.info(corp, codes[0]["active_code"])
    assert info["status"] == 1
    assert info["create_time"] == paid["pay_time"]
    sandbox.wait_pushes(5)
    [event] = receiver.of_type("license_pay_success")
    assert event["channel"] == "system"
    assert event["receive_id"] == api.provider["corpid"]
    assert event["fields"]["ServiceCorpId"] == api.provider["corpid"]
    assert event["fields"]["AuthCorpId"] == corp
    assert event["fields"]["OrderId"] == order_id
    assert event["fields"]["BuyerUserId"] == lic.buyer


def test_codes_generating_window_answers_701022(lic, ctl, corp, sandbox, receiver):
    ctl.settings(code_generation_seconds=60)
    order_id = lic.order(corp)
    ctl.pay_order(order_id)
    data = lic.call("list_order_account", {"order_id": order_id})
    assert data["errcode"] == 701022
    sandbox.wait_pushes(5)
    assert receiver.of_type("license_pay_success") == []
    ctl.advance(61)
    sandbox.wait_pushes(5)
    assert len(lic.codes(order_id)) == 2
    assert len(receiver.of_type("license_pay_success")) == 1


def test_cancel_order(lic, corp, api):
    order_id = lic.order(corp)
    wrong = {"corpid": api.corps[1]["corpid"], "order_id": order_id}
    assert lic.call("cancel_order", wrong)["errcode"] == 701005
    assert lic.call("cancel_order", {"order_id": order_id})["errcode"] == 40063
    assert lic.call("cancel_order", {"corpid": corp, "order_id": order_id})["errcode"] == 0
    assert lic.call("get_order", {"order_id": order_id})["order"]["order_status"] == 2
    assert lic.call("cancel_order", {"corpid": corp, "order_id": order_id})["errcode"] == 701084
    paid = lic.order(corp)
    lic.ctl.pay_order(paid)
    assert lic.call("cancel_order", {"corpid": corp, "order_id": paid})["errcode"] == 701084
    assert lic.call("get_order", {"order_id": "OInope"})["errcode"] == 701005


def test_expire_order(lic, ctl, corp):
    order_id = lic.order(corp)
    assert ctl.expire_order(order_id)["order_status"] == 3
    assert lic.call("cancel_order", {"corpid": corp, "order_id": order_id})["errcode"] == 701084
    # An expired order no longer blocks.
    assert lic.order(corp)


def test_refund_approved(lic, ctl, corp, sandbox, receiver):
    order_id = lic.order(corp)
    ctl.pay_order(order_id)
    codes = lic.codes(order_id)
    assert ctl.refund_order(order_id, "request")["order_status"] == 4
    # A refunding order blocks new purchases.
    body = {
        "corpid": corp,
        "buyer_userid": lic.buyer,
        "account_count": {"base_count": 1},
        "account_duration": {"months": 1},
    }
    assert lic.call("create_new_order", body)["errcode"] == 701037
    assert ctl.refund_order(order_id, "approve")["order_status"] == 5
    sandbox.wait_pushes(5)
    [event] = receiver.of_type("license_refund")
    assert event["fields"]["OrderStatus"] == "1"
    assert event["fields"]["OrderId"] == order_id
    # Unbound codes of a refunded order are void.
    data = lic.call(
        "get_active_info_by_code", {"corpid": corp, "active_code": codes[0]["active_code"]}
    )
    assert data["errcode"] == 701021


def test_refund_rejected(lic, ctl, corp, sandbox, receiver):
    order_id = lic.order(corp)
    ctl.pay_order(order_id)
    assert ctl.refund_order(order_id, "reject")["order_status"] == 6
    sandbox.wait_pushes(5)
    [event] = receiver.of_type("license_refund")
    assert event["fields"]["OrderStatus"] == "2"
    assert lic.info(corp, lic.codes(order_id)[0]["active_code"])["status"] == 1


def test_refund_needs_a_paid_order(lic, ctl, corp):
    order_id = lic.order(corp)
    with pytest.raises(SandboxControlError) as exc:
        ctl.refund_order(order_id, "approve")
    assert exc.value.body["errcode"] == 701083


def test_test_corp_orders_are_free_and_paid_at_once(lic, ctl, api, sandbox, receiver):
    corp = ctl.add_corp(name="测试企业", test=True, users=[{"name": "甲", "admin": True}])
    ctl.install(api.suite["suite_id"], corp["corpid"], push=False)
    order_id = lic.order(corp["corpid"], base=5, months=1)
    order = lic.call("get_order", {"order_id": order_id})["order"]
    assert order["order_status"] == 1
    assert order["price"] == 0
    assert len(lic.codes(order_id)) == 5
    body = {
        "corpid": corp["corpid"],
        "buyer_userid": lic.buyer,
        "account_count": {"base_count": 1},
        "account_duration": {"months": 2},
    }
    assert lic.call("create_new_order", body)["errcode"] == 701027
    body["account_duration"] = {"months": 1}
    body["account_count"] = {"base_count": 1001}
    assert lic.call("create_new_order", body)["errcode"] == 701028
    # Test orders are listed only with the test corp's corpid.
    assert order_id not in [o["order_id"] for o in lic.call("list_order", {})["order_list"]]
    listed = lic.call("list_order", {"corpid": corp["corpid"]})["order_list"]
    assert [o["order_id"] for o in listed] == [order_id]
    ctl.remove_test_corp(corp["corpid"])
    assert lic.call("get_order", {"order_id": order_id})["order"]["order_status"] == 7


def test_submit_pay_job_pays_from_the_balance(lic, corp, api, sandbox, receiver):
    before = api.get(
        "/cgi-bin/service/get_account_balance", provider_access_token=api.provider_token()
    )
    order_id = lic.order(corp)
    price = lic.call("get_order", {"order_id": order_id})["order"]["price"]
    jobid = lic.call("submit_pay_job", {"payer_userid": lic.buyer, "order_id": order_id})["jobid"]
    result = lic.call("pay_job_result", {"jobid": jobid})
    assert result["status"] == 1
    assert result["pay_job_result"]["errcode"] == 0
    assert lic.call("get_order", {"order_id": order_id})["order"]["order_status"] == 1
    after = api.get(
        "/cgi-bin/service/get_account_balance", provider_access_token=api.provider_token()
    )
    assert before["balance"] - after["balance"] == price
    sandbox.wait_pushes(5)
    assert len(receiver.of_type("license_pay_success")) == 1
    # Paying twice fails inside the job result, not at the top level.
    again = lic.call("submit_pay_job", {"payer_userid": lic.buyer, "order_id": order_id})
    result = lic.call("pay_job_result", {"jobid": again["jobid"]})
    assert result["status"] == 3
    assert result["pay_job_result"]["errcode"] == 701084


def test_pay_job_failures(lic, ctl, corp):
    order_id = lic.order(corp)
    job = lic.call("submit_pay_job", {"payer_userid": "stranger", "order_id": order_id})
    assert lic.call("pay_job_result", {"jobid": job["jobid"]})["pay_job_result"]["errcode"] == 48001
    ctl.settings(balance=1)
    job = lic.call("submit_pay_job", {"payer_userid": lic.buyer, "order_id": order_id})
    assert lic.call("pay_job_result", {"jobid": job["jobid"]})["pay_job_result"]["errcode"] == 90433
    ctl.settings(balance=None)
    job = lic.call("submit_pay_job", {"payer_userid": lic.buyer, "order_id": order_id})
    assert lic.call("pay_job_result", {"jobid": job["jobid"]})["pay_job_result"]["errcode"] == 90432
    assert lic.call("pay_job_result", {"jobid": "nope"})["errcode"] == 40088
    assert lic.call("get_order", {"order_id": order_id})["order"]["order_status"] == 0
    ctl.advance(7 * DAY + 1)
    assert lic.call("pay_job_result", {"jobid": job["jobid"]})["errcode"] == 40089


def renew(lic, corp, accounts, duration):
    job = lic.call("create_renew_order_job", {"corpid": corp, "account_list": accounts})
    assert job["errcode"] == 0, job
    body = {"jobid": job["jobid"], "buyer_userid": lic.buyer, "account_duration": duration}
    return job, lic.call("submit_order_job", body)


def test_renewal_by_months_extends_the_account(lic, ctl, api, corp, sandbox):
    user = api.corps[0]["users"][0]["userid"]
    code = lic.buy(corp, base=1)[0]["active_code"]
    assert lic.activate(corp, code, user) == 0
    before = lic.info(corp, code)["expire_time"]
    job, submitted = renew(
        lic, corp, [{"userid": user, "type": 1}, {"userid": "ghost", "type": 1}], {"months": 2}
    )
    assert job["invalid_account_list"][0]["userid"] == "ghost"
    order = lic.call("get_order", {"order_id": submitted["order_id"]})["order"]
    assert order["order_type"] == 2
    assert order["price"] == 62 * sandbox.state.settings.unit_price_base
    ctl.pay_order(submitted["order_id"])
    assert lic.info(corp, code)["expire_time"] == before + 62 * DAY
    assert lic.codes(submitted["order_id"]) == [{"userid": user, "type": 1}]


def test_renewal_to_a_new_expire_time(lic, ctl, api, corp, sandbox):
    user = api.corps[0]["users"][0]["userid"]
    code = lic.buy(corp, base=1)[0]["active_code"]
    lic.activate(corp, code, user)
    target = sandbox.state.ts() + 100 * DAY
    _, submitted = renew(lic, corp, [{"userid": user, "type": 1}], {"new_expire_time": target})
    assert submitted["errcode"] == 0, submitted
    ctl.pay_order(submitted["order_id"])
    expire = lic.info(corp, code)["expire_time"]
    # Normalised to 24:00 (China time) of the target day.
    assert target <= expire < target + DAY
    assert (expire + 8 * 3600) % DAY == 0


def test_renewal_errors(lic, api, corp, sandbox):
    users = [u["userid"] for u in api.corps[0]["users"]]
    # Nobody has an account yet: every member is invalid (701004).
    data = lic.call(
        "create_renew_order_job",
        {"corpid": corp, "account_list": [{"userid": users[0], "type": 1}]},
    )
    assert data["errcode"] == 701024
    assert data["invalid_account_list"][0]["errcode"] == 701004
    code = lic.buy(corp, base=1)[0]["active_code"]
    lic.activate(corp, code, users[0])
    job = lic.call(
        "create_renew_order_job",
        {"corpid": corp, "account_list": [{"userid": users[0], "type": 1}]},
    )
    base = {"jobid": job["jobid"], "buyer_userid": lic.buyer}
    both = {**base, "account_duration": {"months": 1, "new_expire_time": sandbox.state.ts() + DAY}}
    assert lic.call("submit_order_job", both)["errcode"] == 40058
    # The account already lasts past this date: 0 days for everyone.
    soon = {**base, "account_duration": {"new_expire_time": sandbox.state.ts() + DAY}}
    assert lic.call("submit_order_job", soon)["errcode"] == 701090
    assert lic.call("submit_order_job", {**base, "account_duration": {"months": 1}})["errcode"] == 0
    assert (
        lic.call("submit_order_job", {**base, "account_duration": {"months": 1}})["errcode"]
        == 701126
    )
    appended = {
        "corpid": corp,
        "jobid": job["jobid"],
        "account_list": [{"userid": users[0], "type": 1}],
    }
    assert lic.call("create_renew_order_job", appended)["errcode"] == 701126
    too_many = {"corpid": corp, "account_list": [{"userid": users[0], "type": 1}] * 1001}
    assert lic.call("create_renew_order_job", too_many)["errcode"] == 701026


def test_multi_corp_order(lic, api, ctl, sandbox, receiver):
    a, b, c = (corp["corpid"] for corp in api.corps)
    item = {"account_count": {"base_count": 1}, "account_duration": {"months": 1}}
    job = lic.call(
        "create_new_order_job",
        {"buy_list": [{"corpid": a, **item}, {"corpid": c, **item}, {"corpid": a, **item}]},
    )
    assert [(i["corpid"], i["errcode"]) for i in job["invalid_list"]] == [(c, 701015), (a, 701124)]
    appended = lic.call(
        "create_new_order_job", {"jobid": job["jobid"], "buy_list": [{"corpid": b, **item}]}
    )
    assert appended["jobid"] == job["jobid"]
    assert lic.call("new_order_job_result", {"jobid": job["jobid"]})["errcode"] == 701125
    submit = {"jobid": job["jobid"], "buyer_userid": lic.buyer}
    assert lic.call("submit_new_order_job", submit)["errcode"] == 0
    assert lic.call("submit_new_order_job", submit)["errcode"] == 701126
    result = lic.call("new_order_job_result", {"jobid": job["jobid"]})
    assert result["status"] == 1
    parent = result["order_id"]
    union = lic.call("get_union_order", {"order_id": parent, "limit": 1})
    assert union["order"]["order_type"] == 8
    assert union["order"]["order_status"] == 0
    assert union["has_more"] == 1
    second = lic.call("get_union_order", {"order_id": parent, "cursor": union["next_cursor"]})
    subs = [union["buy_list"][0], second["buy_list"][0]]
    assert second["has_more"] == 0
    assert {s["corpid"] for s in subs} == {a, b}
    assert lic.call("list_order_account", {"order_id": parent})["errcode"] == 701120
    # Listing: the parent only without corpid; the sub-order with its corp.
    all_ids = [o["order_id"] for o in lic.call("list_order", {})["order_list"]]
    assert parent in all_ids
    assert not {s["sub_order_id"] for s in subs} & set(all_ids)
    listed_a = lic.call("list_order", {"corpid": a})["order_list"]
    assert [o["order_id"] for o in listed_a] == [
        s["sub_order_id"] for s in subs if s["corpid"] == a
    ]
    jobid = lic.call("submit_pay_job", {"payer_userid": lic.buyer, "order_id": parent})["jobid"]
    assert lic.call("pay_job_result", {"jobid": jobid})["status"] == 1
    sandbox.wait_pushes(5)
    pushed = {e["fields"]["OrderId"] for e in receiver.of_type("license_pay_success")}
    assert pushed == {s["sub_order_id"] for s in subs}
    for sub in subs:
        assert len(lic.codes(sub["sub_order_id"])) == 1
    # create_new_order_job turns auto-activation on by default.
    assert lic.call("get_auto_active_status", {"corpid": a})["auto_active_status"] == 1


def test_multi_corp_limits(lic, api, ctl):
    test_corp = ctl.add_corp(name="测试", test=True, users=["甲"])
    ctl.install(api.suite["suite_id"], test_corp["corpid"], push=False)
    item = {"account_count": {"base_count": 1}, "account_duration": {"months": 1}}
    job = lic.call("create_new_order_job", {"buy_list": [{"corpid": test_corp["corpid"], **item}]})
    assert job["invalid_list"][0]["errcode"] == 701121
    eleven = [{"corpid": api.corps[0]["corpid"], **item}] * 11
    assert lic.call("create_new_order_job", {"buy_list": eleven})["errcode"] == 701123


def test_list_order_window_and_pagination(lic, ctl, corp, sandbox):
    start = sandbox.state.ts()
    ids = []
    for _ in range(3):
        order_id = lic.order(corp)
        ctl.pay_order(order_id)
        ids.append(order_id)
        ctl.advance(DAY)
    assert lic.call("list_order", {"start_time": start})["errcode"] == 40058
    wide = {"start_time": start, "end_time": start + 31 * DAY + 1}
    assert lic.call("list_order", wide)["errcode"] == 40058
    window = {"corpid": corp, "start_time": start, "end_time": start + DAY + 10, "limit": 1}
    page = lic.call("list_order", window)
    assert page["errcode"] == 0
    assert page["has_more"] == 1
    rest = lic.call("list_order", {**window, "cursor": page["next_cursor"]})
    assert rest["has_more"] == 0
    assert rest["next_cursor"] == ""
    assert [o["order_id"] for o in page["order_list"] + rest["order_list"]] == ids[:2]
    everything = lic.call("list_order", {"corpid": corp, "limit": 1000})
    assert [o["order_id"] for o in everything["order_list"]] == ids
    assert lic.call("list_order", {"limit": 1001})["errcode"] == 40058
    assert lic.call("list_order", {"limit": 0})["errcode"] == 40058
    assert lic.call("list_order", {"cursor": "garbage!"})["errcode"] == 40058


def test_list_order_account_pagination(lic, ctl, corp):
    order_id = lic.order(corp, base=5, external=2)
    ctl.pay_order(order_id)
    seen, cursor = [], None
    while True:
        body = {"order_id": order_id, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = lic.call("list_order_account", body)
        seen += page["account_list"]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert len(seen) == 7
    assert len({a["active_code"] for a in seen}) == 7
    assert lic.call("list_order_account", {"order_id": order_id, "limit": 1001})["errcode"] == 40058
