"""Issue 19: quotas answer 429 before WeCom is called; WeCom's 45009 opens a breaker
that every process honours (two gunicorn workers, sharing only Redis and PostgreSQL)."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from django_redis import get_redis_connection

from api.gateway import quotas
from tenants import credentials
from tests.api.gateway_support import gateway_tenant
from tests.support import gunicorn_server
from tests.tenants.test_tokens import child_env


def refusal(response) -> dict:
    assert response.status_code == 429, response.content
    assert "X-Wecom-Errcode" not in response
    assert int(response["Retry-After"]) >= 1
    return response.json()["error"]


@pytest.mark.django_db
def test_a_full_corp_quota_answers_429_without_calling_wecom(platform, settings):
    settings.WECOM_QUOTA_CORP_API_PER_MINUTE = 3
    tenant = gateway_tenant(platform)
    credentials.token_get(tenant.authorization)
    answers = [tenant.get("user/get", userid=tenant.userid) for _ in range(3)]
    assert [a["X-Wecom-Errcode"] for a in answers] == ["0", "0", "0"]
    hits = tenant.hits
    error = refusal(tenant.get("user/get", userid=tenant.userid))
    assert error["code"] == "quota_exceeded"
    assert error["details"]["scope"] == "corp_api_minute"
    assert error["details"]["limit"] == 3
    assert int(error["details"]["retry_after"]) <= 60
    assert tenant.hits == hits  # WeCom was not asked
    # Per API: another path of the same corp still goes through.
    assert tenant.get("tag/list")["X-Wecom-Errcode"] == "0"
    # Per corp: another corp's user/get still goes through.
    other = gateway_tenant(platform, corp_index=1, name="other")
    assert other.get("user/get", userid=other.userid)["X-Wecom-Errcode"] == "0"


@pytest.mark.django_db
def test_the_hour_and_address_windows_count_too(platform, settings):
    settings.WECOM_QUOTA_CORP_API_PER_HOUR = 2
    tenant = gateway_tenant(platform)
    assert tenant.get("tag/list").status_code == 200
    assert tenant.get("tag/list").status_code == 200
    error = refusal(tenant.get("tag/list"))
    assert error["details"]["scope"] == "corp_api_hour"
    assert int(error["details"]["retry_after"]) <= 3600
    settings.WECOM_QUOTA_CORP_API_PER_HOUR = 150_000
    settings.WECOM_QUOTA_ADDRESS_API_PER_MINUTE = 1  # one address, every corp
    other = gateway_tenant(platform, corp_index=1, name="other")
    assert other.get("department/list").status_code == 200
    assert refusal(tenant.get("department/list"))["details"]["scope"] == "address_minute"


@pytest.mark.django_db
def test_app_messages_per_member_and_jsapi_tickets_per_hour(platform, settings):
    settings.WECOM_QUOTA_MESSAGE_PER_MEMBER_PER_MINUTE = 2
    settings.WECOM_QUOTA_JSAPI_TICKET_CORP_PER_HOUR = 1
    tenant = gateway_tenant(platform)
    first, second = (u["userid"] for u in tenant.corp["users"][:2])

    def send(touser: str):
        body = {
            "touser": touser,
            "msgtype": "text",
            "agentid": tenant.authorization.agent_id,
            "text": {"content": "hi"},
        }
        return tenant.post("message/send", body)

    assert send(first)["X-Wecom-Errcode"] == "0"
    assert send(f"{first}|{second}")["X-Wecom-Errcode"] == "0"
    sent_before = len(tenant.requests("message/send"))
    error = refusal(send(f"{second}|{first}"))  # the first member had two already
    assert error["details"]["scope"] == "member_minute"
    assert send(second)["X-Wecom-Errcode"] == "0"  # the second member had one
    assert len(tenant.requests("message/send")) == sent_before + 1

    assert tenant.get("get_jsapi_ticket")["X-Wecom-Errcode"] == "0"
    ticket = refusal(tenant.get("get_jsapi_ticket"))
    assert ticket["details"]["scope"] == "jsapi_ticket_corp_hour"


@pytest.mark.django_db
def test_wecoms_45009_opens_a_breaker_that_escalates(platform):
    tenant = gateway_tenant(platform)
    credentials.token_get(tenant.authorization)
    platform.control.settings(corp_api_quota_per_minute=2)
    codes = [tenant.get("user/get", userid=tenant.userid)["X-Wecom-Errcode"] for _ in range(3)]
    assert codes == ["0", "0", "45009"]  # WeCom's own answer reaches the product
    hits = tenant.hits
    error = refusal(tenant.get("user/get", userid=tenant.userid))
    assert error["code"] == "wecom_blocked"
    assert 50 <= int(error["details"]["retry_after"]) <= 60
    assert tenant.hits == hits  # held back: WeCom not asked
    assert tenant.get("tag/list")["X-Wecom-Errcode"] == "0"  # other APIs go on
    [open_now] = quotas.breakers_open()
    assert (open_now.corpid, open_now.path) == (tenant.corp["corpid"], "user/get")

    # The breaker closes, but WeCom still blocks (its block was an hour's): one hour next.
    field = quotas.breaker_field(tenant.corp["corpid"], "user/get")
    get_redis_connection("default").hset(quotas.BREAKERS, field, 0)
    assert tenant.get("user/get", userid=tenant.userid)["X-Wecom-Errcode"] == "45009"
    later = refusal(tenant.get("user/get", userid=tenant.userid))
    assert 3500 <= int(later["details"]["retry_after"]) <= 3600


@pytest.mark.django_db
def test_a_45033_holds_the_api_back_briefly(platform, settings):
    settings.WECOM_GATEWAY_CONCURRENCY_BREAKER_SECONDS = 7
    tenant = gateway_tenant(platform)
    platform.control.add_fault(endpoint="tag/list", errcode=45033, times=1)
    assert tenant.get("tag/list")["X-Wecom-Errcode"] == "45033"
    error = refusal(tenant.get("tag/list"))
    assert int(error["details"]["retry_after"]) <= 7


@pytest.mark.django_db(transaction=True)
def test_a_45009_in_one_gunicorn_worker_opens_the_breaker_in_the_other(platform):
    tenant = gateway_tenant(platform)
    credentials.token_get(tenant.authorization)  # the workers read it from Redis
    platform.control.settings(corp_api_quota_per_minute=1)
    access_log = ("--access-logfile", "-", "--access-logformat", "served-by-pid=%(p)s %(s)s")
    url = tenant.url("user/get")
    headers = {"Authorization": f"Bearer {tenant.caller.key}"}
    with (
        gunicorn_server(child_env(platform), workers=2, args=access_log) as web,
        httpx.Client(base_url=web.url, headers=headers, timeout=30, trust_env=False) as http,
    ):
        first = http.get(url, params={"userid": tenant.userid})
        blocked = http.get(url, params={"userid": tenant.userid})
        assert (first.headers["x-wecom-errcode"], blocked.headers["x-wecom-errcode"]) == (
            "0",
            "45009",
        )
        hits = tenant.hits
        # Many at once: a sync worker serves one request at a time, so both must answer.
        answers: list[httpx.Response] = []
        barrier = threading.Barrier(24)

        def ask() -> None:
            barrier.wait()
            answers.append(
                httpx.get(web.url + url, params={"userid": tenant.userid}, headers=headers)
            )

        threads = [threading.Thread(target=ask) for _ in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        log = web.log_tail(chars=100_000)
    assert {a.status_code for a in answers} == {429}
    assert {a.json()["error"]["code"] for a in answers} == {"wecom_blocked"}
    assert tenant.hits == hits  # no worker called WeCom once the breaker was open
    pids = set(re.findall(r"served-by-pid=<?(\d+)>? 429", log))
    assert len(pids) == 2, log[-2000:]  # both workers held the call back
