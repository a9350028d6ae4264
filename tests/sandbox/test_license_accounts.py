"""Active codes and accounts: activation, merge, transfer, share, auto-activation, trial (§6.4)."""

from __future__ import annotations

import pytest

DAY = 86400


@pytest.fixture
def corp(api):
    return api.corps[0]["corpid"]


@pytest.fixture
def users(api):
    return [u["userid"] for u in api.corps[0]["users"]]


def test_activate_binds_code_for_its_duration(lic, corp, users, sandbox):
    code = lic.buy(corp, base=1)[0]["active_code"]
    assert lic.activate(corp, code, users[0]) == 0
    info = lic.info(corp, code)
    assert info["status"] == 2
    assert info["userid"] == users[0]
    assert info["expire_time"] == info["active_time"] + 31 * DAY
    by_user = lic.call("get_active_info_by_user", {"corpid": corp, "userid": users[0]})
    assert by_user["active_status"] == 1
    assert by_user["active_info_list"][0]["active_code"] == code
    nobody = lic.call("get_active_info_by_user", {"corpid": corp, "userid": users[1]})
    assert nobody["active_status"] == 0
    assert nobody["active_info_list"] == []


def test_activation_errors(lic, ctl, api, corp, users):
    codes = [c["active_code"] for c in lic.buy(corp, base=3)]
    other_code = lic.buy(api.corps[1]["corpid"], base=1)[0]["active_code"]
    assert lic.activate(corp, "LCnope", users[0]) == 701021
    assert lic.activate(corp, other_code, users[0]) == 701021  # another corp's code
    assert lic.activate(corp, codes[0], "ghost") == 701019
    ctl.update_user(corp, users[2], visible=False)
    assert lic.activate(corp, codes[0], users[2]) == 701088
    assert lic.activate(corp, codes[0], users[0]) == 0
    assert lic.activate(corp, codes[0], users[1]) == 701003  # already bound


def test_activation_window_is_365_days(lic, ctl, corp, users):
    code = lic.buy(corp, base=1)[0]["active_code"]
    ctl.advance(365 * DAY + 1)
    assert lic.activate(corp, code, users[0]) == 701012


def test_one_base_and_one_interop_per_user(lic, corp, users):
    codes = lic.buy(corp, base=1, external=1)
    for code in codes:
        assert lic.activate(corp, code["active_code"], users[0]) == 0
    data = lic.call("get_active_info_by_user", {"corpid": corp, "userid": users[0]})
    assert sorted(i["type"] for i in data["active_info_list"]) == [1, 2]


def test_reactivation_merges_only_with_20_days_left(lic, ctl, corp, users, sandbox):
    old, new = (c["active_code"] for c in lic.buy(corp, base=2))
    assert lic.activate(corp, old, users[0]) == 0
    assert lic.activate(corp, new, users[0]) == 701082
    ctl.advance(11 * DAY + 100)  # 31 - 11 days ≈ 19.99 days left
    remaining = lic.info(corp, old)["expire_time"] - sandbox.state.ts()
    assert remaining <= 20 * DAY
    assert lic.activate(corp, new, users[0]) == 0
    merged = lic.info(corp, old)
    assert merged["status"] == 5
    assert merged["merge_info"]["to_active_code"] == new
    assert merged["expire_time"] == sandbox.state.ts()
    info = lic.info(corp, new)
    assert info["merge_info"]["from_active_code"] == old
    assert info["expire_time"] == info["active_time"] + 31 * DAY + remaining


def test_merge_is_capped_at_five_years(lic, ctl, corp, users):
    first = lic.buy(corp, base=1, months=60)[0]["active_code"]
    assert lic.activate(corp, first, users[0]) == 0
    ctl.advance(1860 * DAY - 10 * DAY)
    second = lic.buy(corp, base=1, months=60)[0]["active_code"]
    assert lic.activate(corp, second, users[0]) == 701030
    short = lic.buy(corp, base=1, months=1)[0]["active_code"]
    assert lic.activate(corp, short, users[0]) == 0


def test_account_expires_on_the_simulator_clock(lic, ctl, corp, users):
    code = lic.buy(corp, base=1)[0]["active_code"]
    lic.activate(corp, code, users[0])
    ctl.advance(31 * DAY + 1)
    assert lic.info(corp, code)["status"] == 3
    data = lic.call("get_active_info_by_user", {"corpid": corp, "userid": users[0]})
    assert data["active_status"] == 0
    # An expired account is no obstacle: a new code binds without a merge.
    new = lic.buy(corp, base=1)[0]["active_code"]
    assert lic.activate(corp, new, users[0]) == 0
    assert "merge_info" not in lic.info(corp, new)


def test_batch_activation_per_item_errcodes(lic, corp, users):
    codes = [c["active_code"] for c in lic.buy(corp, base=3)]
    body = {
        "corpid": corp,
        "active_list": [
            {"active_code": codes[0], "userid": users[0]},
            {"active_code": codes[0], "userid": users[1]},
            {"active_code": "LCnope", "userid": users[1]},
            {"active_code": codes[1], "userid": users[0]},
            {"active_code": codes[2], "userid": users[2]},
        ],
    }
    data = lic.call("batch_active_account", body)
    assert data["errcode"] == 0
    assert [r["errcode"] for r in data["active_result"]] == [0, 701020, 701021, 701023, 0]


def test_batch_activation_all_failed_and_limits(lic, corp, users):
    body = {"corpid": corp, "active_list": [{"active_code": "LCnope", "userid": users[0]}]}
    data = lic.call("batch_active_account", body)
    assert data["errcode"] == 701024
    assert data["active_result"][0]["errcode"] == 701021
    assert (
        lic.call("batch_active_account", {"corpid": corp, "active_list": []})["errcode"] == 701025
    )
    many = {"corpid": corp, "active_list": [{"active_code": "x", "userid": "y"}] * 1001}
    assert lic.call("batch_active_account", many)["errcode"] == 701026


def test_active_account_by_type_picks_the_earliest_deadline(lic, ctl, corp, users):
    older = lic.buy(corp, base=1)[0]["active_code"]
    ctl.advance(DAY)
    newer = lic.buy(corp, base=1)[0]["active_code"]
    body = {"corpid": corp, "userid": users[1], "type": 1}
    assert lic.call("active_account_by_type", body)["errcode"] == 0
    assert lic.info(corp, older)["userid"] == users[1]
    assert lic.info(corp, newer)["status"] == 1
    assert lic.call("active_account_by_type", body)["errcode"] == 701011
    assert lic.call("active_account_by_type", {**body, "userid": users[2]})["errcode"] == 0
    assert lic.call("active_account_by_type", {**body, "userid": users[0]})["errcode"] == 701072
    assert lic.call("active_account_by_type", {**body, "type": 3})["errcode"] == 701006


def test_batch_get_active_info_and_list_actived_account(lic, corp, users):
    codes = [c["active_code"] for c in lic.buy(corp, base=3)]
    for code, user in zip(codes, users, strict=True):
        assert lic.activate(corp, code, user) == 0
    data = lic.call(
        "batch_get_active_info_by_code", {"corpid": corp, "active_code_list": [*codes, "LCnope"]}
    )
    assert [i["active_code"] for i in data["active_info_list"]] == codes
    assert data["invalid_active_code_list"] == ["LCnope"]
    page = lic.call("list_actived_account", {"corpid": corp, "limit": 2})
    assert page["has_more"] == 1
    rest = lic.call("list_actived_account", {"corpid": corp, "cursor": page["next_cursor"]})
    listed = page["account_list"] + rest["account_list"]
    assert sorted(a["userid"] for a in listed) == sorted(users)
    assert all({"type", "expire_time", "active_time"} <= set(a) for a in listed)


def transfer(lic, corp, pairs):
    body = {
        "corpid": corp,
        "transfer_list": [{"handover_userid": h, "takeover_userid": t} for h, t in pairs],
    }
    return lic.call("batch_transfer_license", body)


def test_transfer_moves_the_account(lic, corp, users):
    code = lic.buy(corp, base=1)[0]["active_code"]
    lic.activate(corp, code, users[0])
    data = transfer(lic, corp, [(users[0], users[1]), (users[2], users[0])])
    assert data["errcode"] == 0
    assert [r["errcode"] for r in data["transfer_result"]] == [0, 701016]
    assert lic.info(corp, code)["userid"] == users[1]


def test_transfer_cooldown_is_30_days_for_employed_users(lic, ctl, corp, users):
    a, b = (c["active_code"] for c in lic.buy(corp, base=2))
    lic.activate(corp, a, users[0])
    assert transfer(lic, corp, [(users[0], users[1])])["errcode"] == 0
    lic.activate(corp, b, users[0])
    data = transfer(lic, corp, [(users[0], users[2])])
    assert data["errcode"] == 701024
    assert data["transfer_result"][0]["errcode"] == 701017
    # A member who left may hand over at once.
    ctl.update_user(corp, users[0], status=5)
    assert transfer(lic, corp, [(users[0], users[2])])["errcode"] == 0


def test_transfer_takeover_may_hold_at_most_20_days(lic, ctl, corp, users):
    a, b = (c["active_code"] for c in lic.buy(corp, base=2))
    lic.activate(corp, a, users[0])
    lic.activate(corp, b, users[1])
    assert transfer(lic, corp, [(users[0], users[1])])["transfer_result"][0]["errcode"] == 701018
    ctl.advance(12 * DAY)  # users[1] now has 19 days left
    assert transfer(lic, corp, [(users[0], users[1])])["errcode"] == 0
    assert lic.info(corp, b)["status"] == 5
    assert lic.info(corp, a)["userid"] == users[1]


@pytest.fixture
def downstream(ctl, api):
    """A corp downstream (上下游) of corps[0] with two members, the app shared down."""
    corp = ctl.add_corp(name="下游", upstream=api.corps[0]["corpid"], users=["甲", "乙"])
    ctl.install(api.suite["suite_id"], corp["corpid"], push=False)
    return corp


def share(lic, source, target, codes):
    body = {
        "from_corpid": source,
        "to_corpid": target,
        "share_list": [{"active_code": c} for c in codes],
        "corp_link_type": 0,
    }
    return lic.call("batch_share_active_code", body)


def test_share_to_downstream(lic, corp, users, downstream):
    codes = [c["active_code"] for c in lic.buy(corp, base=3)]
    lic.activate(corp, codes[2], users[0])
    data = share(lic, corp, downstream["corpid"], codes)
    assert data["errcode"] == 0
    assert data["share_result"] == [
        {"active_code": codes[2], "errcode": 701003, "errmsg": "share failed"}
    ]
    assert lic.info(corp, codes[0])["status"] == 6
    assert lic.info(corp, codes[0])["share_info"]["to_corpid"] == downstream["corpid"]
    copy = lic.info(downstream["corpid"], codes[0])
    assert copy["status"] == 1
    assert copy["share_info"]["from_corpid"] == corp
    assert (
        share(lic, corp, downstream["corpid"], [codes[0]])["share_result"][0]["errcode"] == 701055
    )
    member = downstream["users"][0]["userid"]
    assert lic.activate(downstream["corpid"], codes[0], member) == 0
    listed = lic.call("list_actived_account", {"corpid": downstream["corpid"]})["account_list"]
    assert [a["userid"] for a in listed] == [member]


def test_share_is_capped_at_twice_the_headcount(lic, corp, downstream):
    codes = [c["active_code"] for c in lic.buy(corp, base=5)]
    data = share(lic, corp, downstream["corpid"], codes)
    assert [r["errcode"] for r in data["share_result"]] == [701056]


def test_share_needs_a_downstream_corp(lic, api, corp, ctl, downstream):
    codes = [c["active_code"] for c in lic.buy(corp, base=1)]
    assert share(lic, corp, api.corps[1]["corpid"], codes)["errcode"] == 701051
    further = ctl.add_corp(name="再下游", upstream=downstream["corpid"], users=["丙"])
    ctl.install(api.suite["suite_id"], further["corpid"], push=False)
    assert share(lic, corp, downstream["corpid"], codes)["errcode"] == 0
    # A code that came from upstream cannot be passed further down.
    data = share(lic, downstream["corpid"], further["corpid"], codes)
    assert data["errcode"] == 701024
    assert data["share_result"][0]["errcode"] == 701054


def test_auto_active_needs_a_past_purchase(lic, corp):
    body = {"corpid": corp, "auto_active_status": 1}
    assert lic.call("set_auto_active_status", body)["errcode"] == 701071
    assert lic.call("get_auto_active_status", {"corpid": corp})["auto_active_status"] == 0
    lic.buy(corp, base=1)
    assert lic.call("set_auto_active_status", body)["errcode"] == 0
    assert lic.call("get_auto_active_status", {"corpid": corp})["auto_active_status"] == 1


def test_unlicensed_member_triggers_unlicensed_notify(
    lic, ctl, api, corp, users, sandbox, receiver
):
    result = ctl.unlicensed(corp, users[1])
    assert result["action"] == "unlicensed_notify"
    sandbox.wait_pushes(5)
    [event] = receiver.of_type("unlicensed_notify")
    assert event["channel"] == "data"
    assert event["receive_id"] == corp
    assert event["to_user"] == corp
    assert event["agent_id"] == str(sandbox.state.auth(api.suite["suite_id"], corp).agentid)
    assert event["fields"]["FromUserName"] == users[1]
    assert event["fields"]["MsgType"] == "event"


def test_unlicensed_member_is_auto_activated(lic, ctl, api, corp, users, sandbox, receiver):
    code = lic.buy(corp, base=1)[0]["active_code"]
    lic.call("set_auto_active_status", {"corpid": corp, "auto_active_status": 1})
    result = ctl.unlicensed(corp, users[1])
    assert result == {"action": "auto_activate", "active_code": code, "push_id": result["push_id"]}
    assert lic.info(corp, code)["userid"] == users[1]
    sandbox.wait_pushes(5)
    [event] = receiver.of_type("auto_activate")
    assert event["channel"] == "system"
    assert event["receive_id"] == api.provider["corpid"]
    account = event["fields"]["AccountList"]
    assert account["ActiveCode"] == code
    assert account["UserId"] == users[1]
    assert account["PreviousStatus"] == "1"
    assert event["fields"]["Scene"] == "1"
    # A licensed member triggers nothing.
    assert ctl.unlicensed(corp, users[1])["action"] == "none"


def test_app_license_info_trial_survives_reinstall(lic, ctl, api, corp, sandbox):
    body = {"corpid": corp, "suite_id": api.suite["suite_id"]}
    first = lic.call("get_app_license_info", body)
    assert first["license_status"] == 1
    trial = first["trail_info"]
    assert trial["end_time"] - trial["start_time"] == 90 * DAY
    assert first["license_check_time"] > 0
    ctl.cancel_auth(api.suite["suite_id"], corp)
    ctl.advance(10 * DAY)
    ctl.install(api.suite["suite_id"], corp, push=False)
    assert lic.call("get_app_license_info", body)["trail_info"] == trial
    never = {"corpid": api.corps[2]["corpid"], "suite_id": api.suite["suite_id"]}
    assert lic.call("get_app_license_info", never)["errcode"] == 701015
    test_corp = ctl.add_corp(name="测试", test=True, users=["甲"])
    ctl.install(api.suite["suite_id"], test_corp["corpid"], push=False)
    data = lic.call("get_app_license_info", {**body, "corpid": test_corp["corpid"]})
    assert "trail_info" not in data
