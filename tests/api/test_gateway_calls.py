"""Issue 19: the seed 003/004 calls through the gateway, WeCom's answer unchanged, the
token refreshed once, -1 retried, transport errors retried only when safe.

Everything against the simulator over real HTTP; the tenants are installed the way
WeCom installs them (third-party: get_corp_token, 代开发: gettoken).
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from api.models import AuditLog
from tenants import credentials
from tests.api.gateway_support import gateway_tenant
from tests.support import wait_until


def answer(response) -> dict:
    assert response.status_code == 200, response.content
    body = response.json()
    assert response["X-Wecom-Errcode"] == str(body.get("errcode", 0))
    return body


def direct(platform, path: str, token: str, **params) -> httpx.Response:
    with httpx.Client(base_url=platform.sandbox.base_url, trust_env=False) as http:
        return http.get(f"/cgi-bin/{path}", params={"access_token": token, **params})


@pytest.mark.django_db
@pytest.mark.parametrize("customized", [False, True], ids=["third_party", "customized"])
def test_seed_003_contact_calls_work_through_the_gateway(platform, customized):
    tenant = gateway_tenant(platform, customized=customized, corp_index=1)
    users = {u["userid"] for u in tenant.corp["users"]}

    one = answer(tenant.get("user/get", userid=tenant.userid))
    assert one["errcode"] == 0
    assert one["userid"] == tenant.userid
    assert answer(tenant.get("user/get", userid="nobody"))["errcode"] == 60111

    first = answer(tenant.post("user/list_id", {"limit": 1}))
    rest = answer(tenant.post("user/list_id", {"cursor": first["next_cursor"]}))
    assert {r["userid"] for r in first["dept_user"] + rest["dept_user"]} == users

    simple = answer(tenant.get("user/simplelist", department_id="1", fetch_child="1"))
    assert {u["userid"] for u in simple["userlist"]} == users
    assert answer(tenant.get("department/list"))["department"][0]["id"] == 1
    assert answer(tenant.get("tag/list"))["taglist"]

    upload = tenant.upload("file", "users.csv", b"userid,name\nu1,A\n", "text/csv")
    job = answer(tenant.post("batch/syncuser", {"media_id": answer(upload)["media_id"]}))
    result = answer(tenant.get("batch/getresult", jobid=job["jobid"]))
    assert (result["status"], result["total"]) == (3, 1)

    # The tenant's own kind of corp token, never the suite or provider token.
    token_calls = tenant.requests("gettoken" if customized else "get_corp_token")
    assert [r["corpid"] for r in token_calls] == [tenant.authorization.corp.corpid]


@pytest.mark.django_db
def test_seed_004_external_contact_calls_and_messages_work(platform):
    tenant = gateway_tenant(platform)
    listed = answer(tenant.get("externalcontact/list", userid=tenant.userid))
    external_userid = listed["external_userid"][0]
    detail = answer(tenant.get("externalcontact/get", external_userid=external_userid))
    assert detail["follow_user"][0]["userid"] == tenant.userid
    batch = answer(
        tenant.post("externalcontact/batch/get_by_user", {"userid_list": [tenant.userid]})
    )
    assert {c["external_contact"]["external_userid"] for c in batch["external_contact_list"]} == (
        set(listed["external_userid"])
    )
    way = answer(
        tenant.post(
            "externalcontact/add_contact_way",
            {"type": 1, "scene": 2, "user": [tenant.userid], "state": "gw"},
        )
    )
    assert way["config_id"]
    assert way["qr_code"]
    code = httpx.post(
        f"{platform.sandbox.base_url}/sandbox/welcome_code",
        json={"corpid": tenant.corp["corpid"], "userid": tenant.userid},
    ).json()["welcome_code"]
    welcome = {"welcome_code": code, "text": {"content": "欢迎"}}
    assert answer(tenant.post("externalcontact/send_welcome_msg", welcome))["errcode"] == 0
    assert answer(tenant.post("externalcontact/send_welcome_msg", welcome))["errcode"] == 41050

    message = {
        "touser": tenant.userid,
        "msgtype": "text",
        "agentid": tenant.authorization.agent_id,
        "text": {"content": "hello"},
    }
    sent = answer(tenant.post("message/send", message))
    assert sent["errcode"] == 0
    assert sent["msgid"]
    sent_messages = platform.sandbox.state.corp_data.messages
    assert [m["touser"] for m in sent_messages if m["kind"] == "app"] == [[tenant.userid]]


@pytest.mark.django_db
def test_wecom_answers_come_back_byte_for_byte(platform):
    tenant = gateway_tenant(platform)
    token = credentials.token_get(tenant.authorization).value
    through = tenant.get("user/get", userid=tenant.userid)
    straight = direct(platform, "user/get", token, userid=tenant.userid)
    assert through.content == straight.content
    assert through["Content-Type"] == straight.headers["content-type"]
    refused = tenant.get("user/get", userid="nobody")
    assert refused.status_code == 200  # WeCom's refusal is WeCom's answer, not ours
    assert refused["X-Wecom-Errcode"] == "60111"
    assert set(json.loads(refused.content)) == {"errcode", "errmsg"}


@pytest.mark.django_db
def test_a_callers_access_token_is_dropped_the_tenants_own_is_sent(platform):
    mine = gateway_tenant(platform, corp_index=0)
    other = gateway_tenant(platform, corp_index=1, name="other")
    others_token = credentials.token_get(other.authorization).value
    # The other tenant's token in the query would address the other corp: it is dropped.
    body = answer(mine.get("user/get", userid=mine.userid, access_token=others_token))
    assert body["userid"] == mine.userid
    foreign = answer(mine.get("user/get", userid=other.userid, access_token=others_token))
    assert foreign["errcode"] == 60111


@pytest.mark.django_db
def test_a_token_error_is_refreshed_once_and_the_call_retried(platform, settings):
    tenant = gateway_tenant(platform)
    stale = credentials.token_get(tenant.authorization).value
    platform.control.revoke_tokens(token=stale)  # WeCom dropped it early
    before = len(tenant.requests("get_corp_token"))

    body = answer(tenant.get("user/get", userid=tenant.userid))
    assert body["errcode"] == 0
    calls = tenant.requests("user/get")
    assert [c["errcode"] for c in calls] == [40014, 0]  # refused, then the retry
    assert len(tenant.requests("get_corp_token")) == before + 1
    fresh = credentials.token_get(tenant.authorization).value
    assert fresh != stale
    row = AuditLog.objects.filter(action="wecom.call").latest("id")
    assert row.detail["attempts"] == 2
    assert row.detail["token_refreshed"] is True

    # Rejected again within the cool-down: no second forced fetch, WeCom's refusal stands.
    platform.control.revoke_tokens(token=fresh)
    again = tenant.get("user/get", userid=tenant.userid)
    assert again.status_code == 200
    assert again["X-Wecom-Errcode"] == "40014"
    assert len(tenant.requests("get_corp_token")) == before + 1


@pytest.mark.django_db
def test_system_busy_is_retried_at_most_three_times(platform):
    tenant = gateway_tenant(platform)
    platform.control.add_fault(endpoint="user/get", errcode=-1, times=2)
    assert answer(tenant.get("user/get", userid=tenant.userid))["errcode"] == 0
    assert [c["errcode"] for c in tenant.requests("user/get")] == [-1, -1, 0]

    platform.control.add_fault(endpoint="tag/list", errcode=-1, times=10)
    busy = tenant.get("tag/list")
    assert busy.status_code == 200
    assert busy["X-Wecom-Errcode"] == "-1"
    assert len(tenant.requests("tag/list")) == 4  # the call and three retries


@pytest.mark.django_db
def test_a_timeout_is_retried_for_reads_and_never_for_a_message_send(platform, settings):
    tenant = gateway_tenant(platform)
    credentials.token_get(tenant.authorization)  # cached: no token fetch below
    settings.WECOM_HTTP_TIMEOUT = 1
    platform.control.add_fault(endpoint="user/get", latency_ms=1500, times=1)
    assert answer(tenant.get("user/get", userid=tenant.userid))["errcode"] == 0
    # Timed out, then repeated (the simulator logs a slow call when it answers).
    wait_until(lambda: len(tenant.requests("user/get")) == 2, timeout=5)

    platform.control.add_fault(endpoint="message/send", latency_ms=1500, times=1)
    message = {
        "touser": tenant.userid,
        "msgtype": "text",
        "agentid": tenant.authorization.agent_id,
        "text": {"content": "once"},
    }
    response = tenant.post("message/send", message)
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "wecom_timeout"
    assert error["details"]["repeatable"] is False
    assert "X-Wecom-Errcode" not in response
    wait_until(lambda: len(tenant.requests("message/send")) == 1, timeout=5)
    time.sleep(1)  # a repeat would have been logged by now
    assert len(tenant.requests("message/send")) == 1  # sent once, never repeated


@pytest.mark.django_db
def test_an_unreachable_wecom_is_503_and_a_wecom_http_error_502(platform, settings):
    tenant = gateway_tenant(platform)
    credentials.token_get(tenant.authorization)
    platform.control.add_fault(endpoint="tag/list", http_status=500, times=1)
    broken = tenant.get("tag/list")
    assert broken.status_code == 502
    assert broken.json()["error"]["code"] == "wecom_http_error"
    settings.WECOM_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    down = tenant.get("tag/list")
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "wecom_unavailable"
    assert int(down["Retry-After"]) >= 1


@pytest.mark.django_db
def test_a_suspended_tenant_is_409_and_nothing_is_sent(platform):
    from tenants import services

    tenant = gateway_tenant(platform)
    services.authorization_suspend(authorization=tenant.authorization, actor="ops", reason="t")
    hits = tenant.hits
    response = tenant.get("user/get", userid=tenant.userid)
    assert response.status_code == 409
    assert tenant.hits == hits
