"""Install flows, codes, permanent codes, auth info, 代开发 and lifecycle (§4, §5.1–5.6)."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from sandbox.control import SandboxControlError

V2_CODE = "/cgi-bin/service/v2/get_permanent_code"
V1_CODE = "/cgi-bin/service/get_permanent_code"
V2_INFO = "/cgi-bin/service/v2/get_auth_info"
V1_INFO = "/cgi-bin/service/get_auth_info"
CORP_TOKEN = "/cgi-bin/service/get_corp_token"


def pre_auth_code(api, token):
    data = api.get("/cgi-bin/service/get_pre_auth_code", suite_access_token=token)
    assert data["errcode"] == 0
    assert data["expires_in"] == 1200
    return data["pre_auth_code"]


def install_via_page(api, suite_id, code, corpid=None, state="abc123"):
    params = {
        "suite_id": suite_id,
        "pre_auth_code": code,
        "redirect_uri": "https://platform.example/install/done/?x=1",
        "state": state,
    }
    if corpid:
        params["corpid"] = corpid
    return api.http.get("/3rdapp/install", params=params)


def test_website_install_redirects_with_auth_code_and_pushes_nothing(api, sandbox, receiver):
    token = api.suite_token()
    code = pre_auth_code(api, token)
    receiver.records.clear()
    resp = install_via_page(api, api.suite["suite_id"], code, api.corps[1]["corpid"])
    assert resp.status_code == 302
    target = urlsplit(resp.headers["location"])
    assert target.netloc == "platform.example"
    query = parse_qs(target.query)
    assert query["x"] == ["1"]
    assert query["expires_in"] == ["600"]
    assert query["state"] == ["abc123"]
    sandbox.wait_pushes(5)
    assert receiver.of_type("create_auth") == []
    data = api.post(V2_CODE, {"auth_code": query["auth_code"][0]}, suite_access_token=token)
    assert data["errcode"] == 0
    assert data["auth_corp_info"] == {
        "corpid": api.corps[1]["corpid"],
        "corp_name": api.corps[1]["name"],
    }
    assert data["state"] == "abc123"
    assert data["auth_user_info"]["userid"] == api.corps[1]["users"][0]["userid"]
    assert "access_token" not in data
    assert "auth_info" not in data
    [logged] = api.ctl.requests("install")
    assert (logged["http_status"], logged["errcode"]) == (302, 0)


def test_install_page_checks_pre_auth_code_and_redirect_domain(api, ctl):
    token = api.suite_token()
    resp = install_via_page(api, api.suite["suite_id"], "nope")
    assert resp.status_code == 400
    assert resp.json()["errcode"] == 40077
    code = pre_auth_code(api, token)
    ctl.advance(1201)
    assert install_via_page(api, api.suite["suite_id"], code).json()["errcode"] == 42007
    ctl.add_suite(kind="third_party", redirect_domains=["good.example"], suite_id="wwdomain")
    token = api.suite_token("wwdomain")
    code = pre_auth_code(api, token)
    resp = install_via_page(api, "wwdomain", code)
    assert resp.json()["errcode"] == 50001
    assert install_via_page(api, "wwdomain", code, state="bad state!").status_code == 400


def test_pre_auth_code_belongs_to_its_suite(api):
    token = api.suite_token()
    code = pre_auth_code(api, token)
    resp = install_via_page(api, api.template["suite_id"], code)
    assert resp.json()["errcode"] == 40077


def test_set_session_info_test_install(api, sandbox):
    token = api.suite_token()
    code = pre_auth_code(api, token)
    body = {"pre_auth_code": code, "session_info": {"appid": [], "auth_type": 1}}
    assert (
        api.post("/cgi-bin/service/set_session_info", body, suite_access_token=token)["errcode"]
        == 0
    )
    install_via_page(api, api.suite["suite_id"], code, api.corps[2]["corpid"])
    auth = sandbox.state.auth(api.suite["suite_id"], api.corps[2]["corpid"])
    assert auth.test is True


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"pre_auth_code": "nope", "session_info": {}}, 40077),
        ({"session_info": {}}, 40063),
        ({"pre_auth_code": "CODE", "session_info": {"appid": ["x"]}}, 40086),
        ({"pre_auth_code": "CODE", "session_info": {"auth_type": 2}}, 40058),
        ({"pre_auth_code": "CODE", "session_info": "x"}, 40058),
    ],
)
def test_set_session_info_errors(api, body, errcode):
    token = api.suite_token()
    code = pre_auth_code(api, token)
    if body.get("pre_auth_code") == "CODE":
        body["pre_auth_code"] = code
    data = api.post("/cgi-bin/service/set_session_info", body, suite_access_token=token)
    assert data["errcode"] == errcode


def test_set_session_info_expired_pre_auth_code(api, ctl):
    token = api.suite_token()
    code = pre_auth_code(api, token)
    ctl.advance(1201)
    body = {"pre_auth_code": code, "session_info": {"auth_type": 1}}
    assert (
        api.post("/cgi-bin/service/set_session_info", body, suite_access_token=token)["errcode"]
        == 42007
    )


def test_auth_code_is_single_use_across_v1_and_v2(api, ctl):
    code = ctl.install(api.suite["suite_id"], api.corps[0]["corpid"], push=False)["auth_code"]
    token = api.suite_token()
    assert api.post(V1_CODE, {"auth_code": code}, suite_access_token=token)["errcode"] == 0
    assert api.post(V2_CODE, {"auth_code": code}, suite_access_token=token)["errcode"] == 40078
    assert api.post(V1_CODE, {"auth_code": code}, suite_access_token=token)["errcode"] == 40078


def test_auth_code_expires_after_600_seconds(api, ctl):
    code = ctl.install(api.suite["suite_id"], api.corps[0]["corpid"], push=False)["auth_code"]
    token = api.suite_token()
    ctl.advance(601)
    assert api.post(V2_CODE, {"auth_code": code}, suite_access_token=token)["errcode"] == 40078


def test_auth_code_of_another_suite_is_40078(api, ctl):
    code = ctl.install(api.suite["suite_id"], api.corps[0]["corpid"], push=False)["auth_code"]
    token = api.suite_token(api.template["suite_id"])
    assert api.post(V2_CODE, {"auth_code": code}, suite_access_token=token)["errcode"] == 40078
    # …and the failed attempt did not consume it.
    token = api.suite_token()
    assert api.post(V2_CODE, {"auth_code": code}, suite_access_token=token)["errcode"] == 0


def test_auth_code_missing_is_41008(api):
    token = api.suite_token()
    assert api.post(V2_CODE, {}, suite_access_token=token)["errcode"] == 41008
    assert api.post(V2_CODE, {"auth_code": 5}, suite_access_token=token)["errcode"] == 40058


def test_v1_permanent_code_adds_corp_token_and_auth_info(api, ctl):
    code = ctl.install(api.suite["suite_id"], api.corps[0]["corpid"], state="s1", push=False)
    token = api.suite_token()
    data = api.post(V1_CODE, {"auth_code": code["auth_code"]}, suite_access_token=token)
    assert data["errcode"] == 0
    assert data["expires_in"] == 7200
    assert data["access_token"]
    assert data["auth_corp_info"]["corp_type"] == "verified"
    assert data["auth_corp_info"]["corp_wxqrcode"]
    agent = data["auth_info"]["agent"][0]
    assert agent["agentid"] == code["agentid"]
    assert agent["is_customized_app"] is False
    assert data["state"] == "s1"
    # The token works as a corp access_token.
    ok = api.get("/cgi-bin/getcallbackip", access_token=data["access_token"])
    assert ok["errcode"] == 0


def test_v1_permanent_code_has_no_corp_token_for_customized(api, ctl):
    code = ctl.install(api.template["suite_id"], api.corps[0]["corpid"], push=False)["auth_code"]
    token = api.suite_token(api.template["suite_id"])
    data = api.post(V1_CODE, {"auth_code": code}, suite_access_token=token)
    assert data["errcode"] == 0
    assert "access_token" not in data
    agent = data["auth_info"]["agent"][0]
    assert agent["is_customized_app"] is True
    assert agent["privilege"]["level"] == 0


@pytest.mark.parametrize("path", [V2_INFO, V1_INFO])
def test_get_auth_info(api, path):
    grant = api.authorize()
    body = {"auth_corpid": grant["corpid"], "permanent_code": grant["permanent_code"]}
    data = api.post(path, body, suite_access_token=grant["suite_token"])
    assert data["errcode"] == 0
    info = data["auth_corp_info"]
    assert info["corpid"] == grant["corpid"]
    assert info["corp_scale"]
    agent = data["auth_info"]["agent"][0]
    assert agent["privilege"]["level"] == 1
    assert agent["auth_mode"] == 0
    assert ("corp_wxqrcode" in info) == (path == V1_INFO)


def test_get_auth_info_errors(api):
    grant = api.authorize()
    token = grant["suite_token"]
    bad = {"auth_corpid": grant["corpid"], "permanent_code": "wrong"}
    assert api.post(V2_INFO, bad, suite_access_token=token)["errcode"] == 40084
    other = {"auth_corpid": api.corps[2]["corpid"], "permanent_code": grant["permanent_code"]}
    assert api.post(V2_INFO, other, suite_access_token=token)["errcode"] == 48004
    missing = {"auth_corpid": grant["corpid"]}
    assert api.post(V2_INFO, missing, suite_access_token=token)["errcode"] == 41025


def test_get_corp_token_same_while_valid(api):
    grant = api.authorize()
    assert api.corp_token(grant) == api.corp_token(grant)


def test_get_corp_token_errors(api):
    grant = api.authorize()
    token = grant["suite_token"]
    unknown = {"auth_corpid": "wpnobody", "permanent_code": grant["permanent_code"]}
    assert api.post(CORP_TOKEN, unknown, suite_access_token=token)["errcode"] == 40013
    wrong = {"auth_corpid": grant["corpid"], "permanent_code": "x"}
    assert api.post(CORP_TOKEN, wrong, suite_access_token=token)["errcode"] == 40084


def test_get_corp_token_for_customized_is_48002(api):
    grant = api.authorize(api.template["suite_id"])
    body = {"auth_corpid": grant["corpid"], "permanent_code": grant["permanent_code"]}
    data = api.post(CORP_TOKEN, body, suite_access_token=grant["suite_token"])
    assert data["errcode"] == 48002


def test_customized_gettoken_uses_permanent_code_as_secret(api):
    grant = api.authorize(api.template["suite_id"])
    token = api.corp_token(grant)
    assert api.corp_token(grant) == token
    perms = api.post("/cgi-bin/agent/get_permissions", {}, access_token=token)
    assert perms["errcode"] == 0
    assert "message:send" in perms["app_permissions"]


def test_gettoken_errors(api):
    grant = api.authorize(api.template["suite_id"])
    third = api.authorize(corp=1)
    assert api.get("/cgi-bin/gettoken", corpsecret="x")["errcode"] == 41002
    assert api.get("/cgi-bin/gettoken", corpid=grant["corpid"])["errcode"] == 41004
    assert api.get("/cgi-bin/gettoken", corpid="wpnone", corpsecret="x")["errcode"] == 40013
    data = api.get("/cgi-bin/gettoken", corpid=grant["corpid"], corpsecret="wrong")
    assert data["errcode"] == 40001
    # A third-party permanent code is not a corpsecret.
    data = api.get("/cgi-bin/gettoken", corpid=third["corpid"], corpsecret=third["permanent_code"])
    assert data["errcode"] == 40001


def test_reset_permanent_code_retires_the_old_secret_after_exchange(api, ctl, sandbox, receiver):
    grant = api.authorize(api.template["suite_id"])
    reset = ctl.reset_permanent_code(api.template["suite_id"], grant["corpid"])
    sandbox.wait_pushes(5)
    event = receiver.of_type("reset_permanent_code")[0]
    assert event["fields"]["AuthCode"] == reset["auth_code"]
    assert event["fields"]["SuiteId"] == api.template["suite_id"]
    assert event["receive_id"] == api.template["suite_id"]
    # Until the exchange the old secret still works.
    assert api.corp_token(grant)
    data = api.post(
        V2_CODE, {"auth_code": reset["auth_code"]}, suite_access_token=grant["suite_token"]
    )
    assert data["permanent_code"] == reset["new_permanent_code"] != grant["permanent_code"]
    old = api.get("/cgi-bin/gettoken", corpid=grant["corpid"], corpsecret=grant["permanent_code"])
    assert old["errcode"] == 40001
    assert api.corp_token({**grant, "permanent_code": data["permanent_code"]})


def test_reset_permanent_code_only_for_customized(ctl, api):
    api.authorize()
    with pytest.raises(SandboxControlError, match="代开发"):
        ctl.reset_permanent_code(api.suite["suite_id"], api.corps[0]["corpid"])


def test_cancel_auth_kills_permanent_code_and_tokens(api, ctl, sandbox, receiver):
    grant = api.authorize()
    corp_token = api.corp_token(grant)
    ctl.cancel_auth(grant["suite_id"], grant["corpid"])
    sandbox.wait_pushes(5)
    event = receiver.of_type("cancel_auth")[0]
    assert event["fields"]["AuthCorpId"] == grant["corpid"]
    body = {"auth_corpid": grant["corpid"], "permanent_code": grant["permanent_code"]}
    assert api.post(CORP_TOKEN, body, suite_access_token=grant["suite_token"])["errcode"] == 40084
    assert api.get("/cgi-bin/getcallbackip", access_token=corp_token)["errcode"] == 40014
    # A reinstall is a new authorization with a new permanent code.
    again = api.authorize()
    assert again["permanent_code"] != grant["permanent_code"]


def test_dissolved_corp_gets_301007(api, ctl, sandbox, receiver):
    grant = api.authorize()
    ctl.dissolve_corp(grant["corpid"])
    body = {"auth_corpid": grant["corpid"], "permanent_code": grant["permanent_code"]}
    data = api.post(CORP_TOKEN, body, suite_access_token=grant["suite_token"])
    assert data["errcode"] == 301007
    sandbox.wait_pushes(5)
    assert receiver.of_type("cancel_auth") == []


def test_dissolved_corp_errcode_and_late_cancel_auth(api, ctl, sandbox, receiver):
    grant = api.authorize(corp=1)
    ctl.dissolve_corp(grant["corpid"], errcode=2000002, cancel_auth_after=15 * 86400)
    body = {"auth_corpid": grant["corpid"], "permanent_code": grant["permanent_code"]}
    data = api.post(CORP_TOKEN, body, suite_access_token=grant["suite_token"])
    assert data["errcode"] == 2000002
    ctl.advance(15 * 86400 + 1)
    sandbox.wait_pushes(5)
    assert [e["fields"]["AuthCorpId"] for e in receiver.of_type("cancel_auth")] == [grant["corpid"]]


def test_change_auth_changes_auth_info_and_pushes(api, ctl, sandbox, receiver):
    grant = api.authorize()
    user = api.corps[0]["users"][1]["userid"]
    ctl.change_auth(grant["suite_id"], grant["corpid"], allow_user=[user], allow_party=[])
    sandbox.wait_pushes(5)
    event = receiver.of_type("change_auth")[0]
    assert event["fields"]["AuthCorpId"] == grant["corpid"]
    body = {"auth_corpid": grant["corpid"], "permanent_code": grant["permanent_code"]}
    data = api.post(V2_INFO, body, suite_access_token=grant["suite_token"])
    assert data["auth_info"]["agent"][0]["privilege"]["allow_user"] == [user]


def test_member_auth_has_empty_admin_list(api, ctl):
    grant = api.authorize()
    token = api.corp_token(grant)
    admins = api.post("/cgi-bin/agent/get_admin_list", {}, access_token=token)["admin"]
    assert admins == [{"userid": api.corps[0]["users"][0]["userid"], "auth_type": 1}]
    ctl.change_auth(grant["suite_id"], grant["corpid"], auth_mode=1)
    assert api.post("/cgi-bin/agent/get_admin_list", {}, access_token=token)["admin"] == []


def test_legacy_admin_list(api, sandbox):
    grant = api.authorize()
    agentid = sandbox.state.auth(grant["suite_id"], grant["corpid"]).agentid
    path = "/cgi-bin/service/get_admin_list"
    body = {"auth_corpid": grant["corpid"], "agentid": agentid}
    data = api.post(path, body, suite_access_token=grant["suite_token"])
    assert data["errcode"] == 0
    assert data["admin"][0]["open_userid"] == api.corps[0]["users"][0]["open_userid"]
    body["agentid"] = agentid + 1000
    assert api.post(path, body, suite_access_token=grant["suite_token"])["errcode"] == 40056


def test_get_app_qrcode(api):
    token = api.suite_token()
    path = "/cgi-bin/service/get_app_qrcode"
    body = {"suite_id": api.suite["suite_id"], "appid": 1, "state": "qr1", "result_type": 2}
    data = api.post(path, body, suite_access_token=token)
    assert data["errcode"] == 0
    assert "state=qr1" in data["qrcode"]
    resp = api.http.post(
        path, params={"suite_access_token": token}, json={**body, "result_type": 1}
    )
    assert resp.headers["content-type"] == "image/png"
    assert resp.content.startswith(b"\x89PNG")
    bad = api.post(path, {**body, "state": "x" * 33}, suite_access_token=token)
    assert bad["errcode"] == 40058
    template_token = api.suite_token(api.template["suite_id"])
    body = {"suite_id": api.template["suite_id"], "result_type": 2}
    assert api.post(path, body, suite_access_token=template_token)["errcode"] == 48002


def test_qr_install_echoes_state(api, ctl, sandbox, receiver):
    ctl.install(api.suite["suite_id"], api.corps[2]["corpid"], state="qrstate")
    sandbox.wait_pushes(5)
    event = receiver.of_type("create_auth")[0]
    assert event["fields"]["State"] == "qrstate"
    token = api.suite_token()
    data = api.post(V2_CODE, {"auth_code": event["fields"]["AuthCode"]}, suite_access_token=token)
    assert data["state"] == "qrstate"


def test_get_customized_auth_url(api):
    token = api.provider_token()
    path = "/cgi-bin/service/get_customized_auth_url"
    body = {"state": "st", "templateid_list": [api.template["suite_id"]]}
    data = api.post(path, body, provider_access_token=token)
    assert data["errcode"] == 0
    assert data["expires_in"] == 864000
    # On the simulator's host: opening it plays the admin (tests/sandbox/test_lifecycle_model.py).
    assert data["qrcode_url"].startswith(api.handle.base_url + "/3rdservice/")
    third = {"templateid_list": [api.suite["suite_id"]]}
    assert api.post(path, third, provider_access_token=token)["errcode"] == 40083
    many = {"templateid_list": [api.template["suite_id"]] * 10}
    assert api.post(path, many, provider_access_token=token)["errcode"] == 40058
    assert api.post(path, {}, provider_access_token=token)["errcode"] == 40063


def test_get_register_code(api):
    token = api.provider_token()
    path = "/cgi-bin/service/get_register_code"
    data = api.post(path, {"template_id": "tpl"}, provider_access_token=token)
    assert data["errcode"] == 0
    assert data["register_code"]
    assert api.post(path, {}, provider_access_token=token)["errcode"] == 40063


def test_corpid_to_opencorpid(api):
    token = api.provider_token()
    path = "/cgi-bin/service/corpid_to_opencorpid"
    plain = api.corps[0]["plain_corpid"]
    assert api.post(path, {"corpid": plain}, provider_access_token=token)["errcode"] == 48001
    api.authorize()
    data = api.post(path, {"corpid": plain}, provider_access_token=token)
    assert data["open_corpid"] == api.corps[0]["corpid"]


def test_userid_to_openuserid(api, ctl):
    grant = api.authorize()
    token = api.corp_token(grant)
    users = api.corps[0]["users"]
    ctl.update_user(grant["corpid"], users[2]["userid"], visible=False)
    body = {"userid_list": [users[0]["userid"], users[2]["userid"], "ghost"]}
    data = api.post("/cgi-bin/batch/userid_to_openuserid", body, access_token=token)
    assert data["open_userid_list"] == [
        {"userid": users[0]["userid"], "open_userid": users[0]["open_userid"]}
    ]
    assert data["invalid_userid_list"] == [users[2]["userid"], "ghost"]
    too_many = {"userid_list": ["x"] * 1001}
    path = "/cgi-bin/batch/userid_to_openuserid"
    assert api.post(path, too_many, access_token=token)["errcode"] == 40058


def test_js_tickets_and_callback_ip(api):
    token = api.corp_token(api.authorize())
    first = api.get("/cgi-bin/get_jsapi_ticket", access_token=token)
    assert first["errcode"] == 0
    assert first["expires_in"] == 7200
    assert api.get("/cgi-bin/get_jsapi_ticket", access_token=token)["ticket"] == first["ticket"]
    agent = api.get("/cgi-bin/ticket/get", access_token=token, type="agent_config")
    assert agent["ticket"] != first["ticket"]
    assert api.get("/cgi-bin/ticket/get", access_token=token)["errcode"] == 40058
    assert api.get("/cgi-bin/getcallbackip", access_token=token)["ip_list"] == ["127.0.0.1"]
