"""What the simulator models for the authorization lifecycle issue.

A reinstall kills every code of the install before it (WeCom's errcodes), a newer
reset voids older reset codes, edition_info only where WeCom gives it, the
permissions read, the activity events, and 代开发 authorization links.
"""

from __future__ import annotations

import httpx
import pytest

from sandbox.control import SandboxControlError

V1_CODE = "/cgi-bin/service/get_permanent_code"
V2_CODE = "/cgi-bin/service/v2/get_permanent_code"
V1_INFO = "/cgi-bin/service/get_auth_info"
V2_INFO = "/cgi-bin/service/v2/get_auth_info"
CORP_TOKEN = "/cgi-bin/service/get_corp_token"


def exchange(api, suite_id: str, auth_code: str, path: str = V2_CODE) -> dict:
    return api.post(path, {"auth_code": auth_code}, suite_access_token=api.suite_token(suite_id))


def test_after_a_reinstall_the_old_permanent_code_and_auth_codes_are_refused(api, ctl):
    suite_id, corpid = api.suite["suite_id"], api.corps[0]["corpid"]
    first_code = ctl.install(suite_id, corpid, push=False)["auth_code"]
    old = exchange(api, suite_id, first_code)["permanent_code"]
    stale_code = ctl.install(suite_id, corpid, push=False)["auth_code"]  # still the same install
    ctl.cancel_auth(suite_id, corpid)
    fresh = exchange(api, suite_id, ctl.install(suite_id, corpid, push=False)["auth_code"])
    assert fresh["permanent_code"] != old
    token = api.suite_token(suite_id)
    # The old install's permanent code: 40084 wherever it is used.
    body = {"auth_corpid": corpid, "permanent_code": old}
    assert api.post(CORP_TOKEN, body, suite_access_token=token)["errcode"] == 40084
    assert api.post(V2_INFO, body, suite_access_token=token)["errcode"] == 40084
    # An auth code the old install issued never opens the new one.
    assert exchange(api, suite_id, stale_code)["errcode"] == 40078
    [auth] = [
        a for a in ctl.state()["auths"] if a["corpid"] == corpid and a["suite_id"] == suite_id
    ]
    assert auth["generation"] == 2
    assert old in auth["retired_codes"]


def test_after_a_reinstall_the_old_customized_secret_fails_gettoken(api, ctl):
    template = api.template["suite_id"]
    grant = api.authorize(template, corp=1)
    ctl.cancel_auth(template, grant["corpid"])
    again = api.authorize(template, corp=1)
    assert again["permanent_code"] != grant["permanent_code"]
    old = api.get("/cgi-bin/gettoken", corpid=grant["corpid"], corpsecret=grant["permanent_code"])
    assert old["errcode"] == 40001
    assert api.corp_token(again)


def test_a_reset_code_of_an_earlier_install_or_an_older_reset_is_refused(api, ctl):
    template = api.template["suite_id"]
    grant = api.authorize(template, corp=1)
    older = ctl.reset_permanent_code(template, grant["corpid"])
    newer = ctl.reset_permanent_code(template, grant["corpid"])
    assert exchange(api, template, older["auth_code"])["errcode"] == 40078  # voided by newer
    assert (
        exchange(api, template, newer["auth_code"])["permanent_code"]
        == (newer["new_permanent_code"])
    )
    pending = ctl.reset_permanent_code(template, grant["corpid"])
    ctl.cancel_auth(template, grant["corpid"])
    reinstalled = api.authorize(template, corp=1)
    # The reset was for the install before: it must not swap the new install's secret.
    assert exchange(api, template, pending["auth_code"])["errcode"] == 40078
    assert api.corp_token(reinstalled)


def test_edition_info_only_in_v1_answers_and_only_for_paid_edition_apps(api, ctl):
    suite_id, corpid = api.suite["suite_id"], api.corps[0]["corpid"]
    assert api.suite["editions"], "the default third-party suite has paid editions"
    v1 = exchange(api, suite_id, ctl.install(suite_id, corpid, push=False)["auth_code"], V1_CODE)
    [entry] = v1["edition_info"]["agent"]
    assert entry["edition_id"] == api.suite["editions"][0]["edition_id"]
    assert entry["agentid"] == v1["auth_info"]["agent"][0]["agentid"]
    assert entry["app_status"] == 1
    token = api.suite_token(suite_id)
    body = {"auth_corpid": corpid, "permanent_code": v1["permanent_code"]}
    assert "edition_info" not in api.post(V2_INFO, body, suite_access_token=token)
    assert api.post(V1_INFO, body, suite_access_token=token)["edition_info"]["agent"] == [entry]
    # A 代开发 template has no editions: no edition_info, not even in v1.
    template = api.template["suite_id"]
    grant = api.authorize(template, corp=1)
    body = {"auth_corpid": grant["corpid"], "permanent_code": grant["permanent_code"]}
    info = api.post(V1_INFO, body, suite_access_token=api.suite_token(template))
    assert info["errcode"] == 0
    assert "edition_info" not in info


def test_change_edition_pushes_change_editon_and_v1_shows_it(api, ctl, sandbox, receiver):
    grant = api.authorize()
    ctl.change_edition(grant["suite_id"], grant["corpid"], edition_id="ESPRO", app_status=3)
    assert sandbox.wait_pushes(5)
    [event] = receiver.of_type("change_editon")
    assert event["fields"]["PaidCorpId"] == grant["corpid"]
    assert event["fields"]["SuiteId"] == grant["suite_id"]
    assert event["channel"] == "command"
    body = {"auth_corpid": grant["corpid"], "permanent_code": grant["permanent_code"]}
    info = api.post(V1_INFO, body, suite_access_token=grant["suite_token"])
    [entry] = info["edition_info"]["agent"]
    assert (entry["edition_id"], entry["edition_name"], entry["app_status"]) == (
        "ESPRO",
        "专业版",
        3,
    )
    with pytest.raises(SandboxControlError):
        ctl.change_edition(api.template["suite_id"], grant["corpid"], edition_id="ESPRO")


def test_permissions_follow_change_auth(api, ctl):
    grant = api.authorize()
    token = api.corp_token(grant)
    first = api.post("/cgi-bin/agent/get_permissions", {}, access_token=token)
    assert first["app_permissions"] == api.suite["app_permissions"]
    ctl.change_auth(grant["suite_id"], grant["corpid"], app_permissions=["contact:base:read"])
    then = api.post("/cgi-bin/agent/get_permissions", {}, access_token=token)
    assert then["app_permissions"] == ["contact:base:read"]


@pytest.mark.parametrize(
    ("event", "attribute", "value", "effect"),
    [
        ("low_active_alert", "activity", "low_active_alert", True),
        ("low_active", "activity", "low_active", False),
        ("active_restored", "activity", "normal", False),
        ("inactive_alert", "agent_state", "inactive_alert", True),
        ("close_inactive_agent", "agent_state", "closed", False),
        ("reopen_inactive_agent", "agent_state", "open", False),
    ],
)
def test_activity_events_go_to_the_data_url(
    api, ctl, sandbox, receiver, event, attribute, value, effect
):
    grant = api.authorize()
    answer = ctl.activity(grant["suite_id"], grant["corpid"], event, effect_time=1900000000)
    assert answer[attribute] == value
    assert sandbox.wait_pushes(5)
    [push] = receiver.of_type(event)
    assert push["channel"] == "data"
    assert push["receive_id"] == grant["corpid"]
    fields = push["fields"]
    assert (fields["MsgType"], fields["Event"], fields["FromUserName"]) == ("event", event, "sys")
    assert fields["AgentID"] == push["agent_id"] != ""
    assert ("EffectTime" in fields) is effect
    if effect:
        assert fields["EffectTime"] == "1900000000"


def test_a_customized_auth_url_opened_by_an_admin_installs_the_template(
    api, ctl, sandbox, receiver
):
    template = api.template["suite_id"]
    corpid = api.corps[2]["corpid"]
    link = api.post(
        "/cgi-bin/service/get_customized_auth_url",
        {"templateid_list": [template], "state": "shop7"},
        provider_access_token=api.provider_token(),
    )
    assert link["qrcode_url"].startswith(sandbox.base_url + "/3rdservice/wework/customized/auth?")
    opened = httpx.get(f"{link['qrcode_url']}&corpid={corpid}")  # params= would replace
    assert opened.status_code == 200, opened.text
    assert sandbox.wait_pushes(5)
    [push] = receiver.of_type("create_auth")
    assert push["suite_id"] == template
    assert push["fields"]["State"] == "shop7"
    grant = exchange(api, template, push["fields"]["AuthCode"])
    assert grant["auth_corp_info"]["corpid"] == corpid
    assert grant["state"] == "shop7"
