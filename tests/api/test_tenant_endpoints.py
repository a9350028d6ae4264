"""Suites, corps, install links, JS-SDK signatures, login helpers and the event feed."""

from __future__ import annotations

import hashlib
import threading
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from api.models import AuditLog
from api.models import JsapiTicket
from tenants import install_links
from tenants import services
from tenants.feed import feed_publish
from tenants.models import Authorization
from tests.api.conftest import NOT_FOUND
from tests.api.conftest import install
from tests.api.conftest import make_caller
from tests.api.conftest import tenant_path


@pytest.mark.django_db
def test_corps_list_filters_searches_and_pages(platform):
    tenants = [install(platform, i) for i in range(3)]
    services.authorization_cancel(authorization=tenants[2], actor="test")
    caller = make_caller("lister", suites=[platform.suite])
    base = f"/api/v1/suites/{platform.suite.suite_id}/corps/"
    first = caller.get(base, {"limit": 2}).json()
    assert len(first["results"]) == 2
    assert first["next"]
    rest = caller.http.get(first["next"]).json()
    assert [r["corpid"] for r in first["results"] + rest["results"]] == [
        t.corp.corpid for t in tenants
    ]
    active = caller.get(base, {"status": "active"}).json()["results"]
    assert {r["corpid"] for r in active} == {tenants[0].corp.corpid, tenants[1].corp.corpid}
    found = caller.get(base, {"search": tenants[1].corp.name[:4]}).json()["results"]
    assert [r["corpid"] for r in found] == [tenants[1].corp.corpid]
    assert caller.get(base, {"status": "nope"}).status_code == 400


@pytest.mark.django_db
def test_corp_detail_has_facts_agent_edition_times_and_license_summary(platform):
    tenant = install(platform)
    caller = make_caller("detail", corps=[tenant.corp])
    body = caller.get(tenant_path(tenant)).json()
    assert body["corpid"] == tenant.corp.corpid
    assert body["name"] == platform.corps[0]["name"]
    assert body["agent"]["agentid"] == tenant.agent_id
    assert body["status"] == "active"
    assert body["authorized_at"]
    assert body["cancelled_at"] is None
    assert body["license"] == {
        "bought": 0,
        "active": 0,
        "free": 0,
        "expiring": 0,
        "trial_end": None,
    }
    assert "permanent_code" not in str(body)
    assert tenant.permanent_code not in str(body)


@pytest.mark.django_db
def test_install_link_points_at_wecom_with_a_signed_state(platform):
    caller = make_caller("installer", suites=[platform.suite])
    path = f"/api/v1/suites/{platform.suite.suite_id}/install-links/"
    response = caller.post(path, {"state": "crm42"})
    assert response.status_code == 201
    body = response.json()
    url = urlsplit(body["url"])
    assert body["url"].startswith(platform.sandbox.base_url)
    query = parse_qs(url.query)
    signed = query["state"][0]
    assert signed.startswith("crm42")
    assert len(signed) <= 128
    assert signed.isalnum()
    assert install_links.state_verify(suite_id=platform.suite.suite_id, state=signed) == "crm42"
    assert query["suite_id"] == [platform.suite.suite_id]
    assert caller.post(path, {"state": "no spaces!"}).status_code == 400
    # 38 of WeCom's 128 characters carry the expiry and MAC: 90 are left for products.
    assert caller.post(path, {"state": "a" * 90}).status_code == 201
    assert caller.post(path, {"state": "a" * 91}).status_code == 400
    row = AuditLog.objects.filter(action="install_link.create").order_by("id").first()
    assert (row.outcome, row.suite_id) == ("ok", platform.suite.suite_id)
    assert query["pre_auth_code"][0] not in str(list(AuditLog.objects.values()))


@pytest.mark.django_db
def test_the_product_state_comes_back_on_the_tenant(platform):
    caller = make_caller("installer", suites=[platform.suite])
    path = f"/api/v1/suites/{platform.suite.suite_id}/install-links/"
    link = caller.post(path, {"state": "crm42"}).json()["url"]
    corpid = platform.corps[0]["corpid"]
    wecom = httpx.get(link + f"&corpid={corpid}", follow_redirects=False)
    back = urlsplit(wecom.headers["location"])
    done = Client().get(back.path, parse_qs(back.query))
    assert done.status_code == 200
    assert Authorization.objects.get(corp__corpid=corpid).state == "crm42"


@pytest.mark.django_db
def test_products_cannot_create_test_installs(platform):
    caller = make_caller("installer", suites=[platform.suite])
    platform.control.clear_requests()
    path = f"/api/v1/suites/{platform.suite.suite_id}/install-links/"
    response = caller.post(path, {"state": "crm42", "test": True})
    assert response.status_code == 400
    assert "security admin" in str(response.json())
    assert platform.control.requests() == []


def _sha1(ticket: str, body: dict, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={body['nonceStr']}&timestamp={body['timestamp']}"
    return hashlib.sha1(f"{plain}&url={url}".encode()).hexdigest()  # noqa: S324 (JS-SDK's)


@pytest.mark.django_db(transaction=True)
def test_jsapi_signatures_use_cached_tickets_fetched_once(platform):
    tenant = install(platform)
    caller = make_caller("jssdk", suites=[platform.suite])
    path = tenant_path(tenant, "jsapi-signature/")
    url = "https://app.example.com/page?a=1"
    results: list[dict] = []

    def sign() -> None:
        try:
            results.append(caller.post(path, {"url": url + "#frag", "kind": "corp"}).json())
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=sign) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(platform.requests("get_jsapi_ticket")) == 1  # single flight
    row = JsapiTicket.objects.get(kind="corp")
    assert row.value not in row.value_sealed  # sealed at rest
    for body in results:
        assert body["appId"] == tenant.corp.corpid
        assert body["agentid"] == tenant.agent_id
        assert body["signature"] == _sha1(row.value, body, url)  # fragment dropped
    cache.clear()  # Redis lost: the database copy serves, still no WeCom call
    caller.post(path, {"url": url, "kind": "corp"})
    assert len(platform.requests("get_jsapi_ticket")) == 1
    agent = caller.post(path, {"url": url, "kind": "agent"}).json()
    agent_row = JsapiTicket.objects.get(kind="agent")
    assert agent["kind"] == "agent"
    assert agent["signature"] == _sha1(agent_row.value, agent, url)
    assert len(platform.requests("get_agent_jsapi_ticket")) == 1
    audit = str(list(AuditLog.objects.values()))
    assert row.value not in audit
    assert agent_row.value not in audit
    assert AuditLog.objects.filter(action="jsapi.sign", outcome="ok").count() == 14


@pytest.mark.django_db
def test_oauth_user_identity_only_within_scope(platform):
    ours, theirs = install(platform, 0), install(platform, 1)
    caller = make_caller("oauth", corps=[ours.corp])
    path = f"/api/v1/suites/{platform.suite.suite_id}/oauth/user/"
    ctl = platform.control
    member = platform.corps[0]["users"][1]
    code = ctl.oauth_code(platform.suite.suite_id, ours.corp.corpid, member["userid"])
    body = caller.post(path, {"code": code}).json()
    assert body["corpid"] == ours.corp.corpid
    assert body["userid"] == member["userid"]
    assert body["detail"] is None
    other = platform.corps[1]["users"][0]
    code = ctl.oauth_code(platform.suite.suite_id, theirs.corp.corpid, other["userid"])
    assert caller.post(path, {"code": code}).json() == NOT_FOUND
    # A reused code is WeCom's 40029, passed through.
    response = caller.post(path, {"code": code})
    assert response.status_code == 422  # the client sent a spent code
    assert response.json()["error"]["details"]["errcode"] == 40029
    whole = make_caller("oauth-whole", suites=[platform.suite])
    code = ctl.oauth_code(
        platform.suite.suite_id, ours.corp.corpid, member["userid"], scope="snsapi_privateinfo"
    )
    detailed = whole.post(path, {"code": code, "detail": True}).json()
    assert detailed["detail"]["name"]


@pytest.mark.django_db
def test_qr_login_identity_only_within_scope(platform):
    ours, theirs = install(platform, 0), install(platform, 1)
    caller = make_caller("qr", corps=[ours.corp])
    admin = platform.corps[0]["users"][0]
    code = platform.control.login_code(ours.corp.corpid, admin["userid"], usertype=1)
    body = caller.post("/api/v1/login/qr/", {"auth_code": code}).json()
    assert body["corpid"] == ours.corp.corpid
    assert body["usertype"] == 1
    assert body["user_info"]["userid"] == admin["userid"]
    foreign = platform.corps[1]["users"][0]
    code = platform.control.login_code(theirs.corp.corpid, foreign["userid"])
    assert caller.post("/api/v1/login/qr/", {"auth_code": code}).json() == NOT_FOUND
    row = AuditLog.objects.filter(action="login.qr").order_by("-id").first()
    assert (row.outcome, row.corpid) == ("not_found", theirs.corp.corpid)


@pytest.mark.django_db
def test_event_feed_cursor_types_and_settle_delay(platform, settings):
    first, second = install(platform, 0), install(platform, 1)
    caller = make_caller("feed", corps=[first.corp])
    services.authorization_cancel(authorization=first, actor="test")
    services.authorization_cancel(authorization=second, actor="test")
    feed_publish(type="license.paid", source_key="t:lic:1", corp=first.corp, data={"n": 1})
    page = caller.get("/api/v1/events/").json()
    types = [e["type"] for e in page["results"]]
    assert types == ["tenant.authorized", "tenant.cancelled", "license.paid"]
    assert {e["corpid"] for e in page["results"]} == {first.corp.corpid}
    ids = [e["id"] for e in page["results"]]
    assert ids == sorted(ids)
    assert page["next_cursor"] == str(ids[-1])
    later = caller.get("/api/v1/events/", {"after": ids[0]}).json()["results"]
    assert [e["id"] for e in later] == ids[1:]
    only = caller.get("/api/v1/events/", {"type": ["license.paid", "tenant.cancelled"]}).json()
    assert [e["type"] for e in only["results"]] == ["tenant.cancelled", "license.paid"]
    empty = caller.get("/api/v1/events/", {"after": ids[-1]}).json()
    assert empty == {"results": [], "next_cursor": str(ids[-1]), "has_more": False}
    settings.API_EVENTS_SETTLE_SECONDS = 60  # fresh events are held back
    assert caller.get("/api/v1/events/").json()["results"] == []
