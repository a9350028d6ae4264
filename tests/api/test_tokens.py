"""The access-token endpoints against the simulator over real HTTP."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import httpx
import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from api.models import AuditLog
from tenants import credentials
from tenants import services
from tenants.models import CredentialToken
from tests.api.conftest import install
from tests.api.conftest import make_caller
from tests.api.conftest import tenant_path


def expire(owner) -> None:
    key = credentials.owner_key(owner)
    CredentialToken.objects.filter(owner_key=key).update(
        expires_at=timezone.now() - timedelta(seconds=1), refresh_after=None
    )
    cache.delete(f"token:{key}")


def audit_text() -> str:
    return json.dumps(list(AuditLog.objects.values()), default=str)


@pytest.mark.django_db(transaction=True)
def test_100_concurrent_requests_for_an_expired_token_make_one_wecom_call(platform, live_server):
    authorization = install(platform)
    caller = make_caller("concurrent", suites=[platform.suite])
    expire(authorization)
    before = len(platform.requests("get_corp_token"))
    url = live_server.url + tenant_path(authorization, "access-token/")
    barrier = threading.Barrier(100)
    results: list[tuple[int, dict]] = []

    def fetch() -> None:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            response = http.get(url, headers={"Authorization": f"Bearer {caller.key}"})
            results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=fetch) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [200] * 100, results[:3]
    tokens = {body["access_token"] for _, body in results}
    assert len(tokens) == 1
    assert len(platform.requests("get_corp_token")) - before == 1
    for _, body in results:
        assert set(body) == {"access_token", "expires_at", "expires_in"}
        assert body["expires_in"] >= 300
    # One audit row per access, and no token value anywhere in the log.
    rows = AuditLog.objects.filter(action="token.read", client=caller.client)
    assert rows.count() == 100
    assert set(rows.values_list("outcome", flat=True)) == {"ok"}
    assert len(set(rows.values_list("request_id", flat=True))) == 100
    assert tokens.pop() not in audit_text()


@pytest.mark.django_db
def test_token_shape_and_at_least_five_minutes_of_life(platform):
    authorization = install(platform)
    caller = make_caller("shape", corps=[authorization.corp])
    response = caller.get(tenant_path(authorization, "access-token/"))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_at", "expires_in"}
    assert body["access_token"] == credentials.token_get(authorization).value
    assert response["Cache-Control"] == "no-store"
    # A stored token with 4 minutes left is never served: it is refreshed first.
    CredentialToken.objects.filter(authorization=authorization).update(
        expires_at=timezone.now() + timedelta(minutes=4)
    )
    cache.clear()
    platform.control.revoke_tokens(kind="corp")
    body = caller.get(tenant_path(authorization, "access-token/")).json()
    assert body["expires_in"] >= 300


@pytest.mark.django_db
def test_refresh_forces_one_call_only_for_the_current_token(platform):
    authorization = install(platform)
    caller = make_caller("refresh", suites=[platform.suite])
    stale = caller.get(tenant_path(authorization, "access-token/")).json()["access_token"]
    platform.control.revoke_tokens(token=stale)  # WeCom dropped it early
    before = len(platform.requests("get_corp_token"))
    path = tenant_path(authorization, "access-token/refresh/")
    fresh = caller.post(path, {"stale_token": stale}).json()
    assert fresh["access_token"] != stale
    assert len(platform.requests("get_corp_token")) - before == 1
    # Reporting the same old token again: already replaced, no WeCom call.
    again = caller.post(path, {"stale_token": stale}).json()
    assert again["access_token"] == fresh["access_token"]
    assert len(platform.requests("get_corp_token")) - before == 1
    rows = AuditLog.objects.filter(action="token.refresh")
    assert rows.count() == 2
    text = audit_text()
    assert stale not in text
    assert fresh["access_token"] not in text


@pytest.mark.django_db
def test_inactive_tenant_gets_409_and_no_token(platform):
    authorization = install(platform)
    caller = make_caller("inactive", suites=[platform.suite])
    services.authorization_cancel(authorization=authorization, actor="test")
    response = caller.get(tenant_path(authorization, "access-token/"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "authorization_inactive"
    # The tenant stays visible (history), only the token is refused.
    assert caller.get(tenant_path(authorization)).json()["status"] == "cancelled"


@pytest.mark.django_db
def test_wecom_errors_pass_through_with_their_errcode(platform):
    authorization = install(platform)
    caller = make_caller("errors", suites=[platform.suite])
    expire(authorization)
    platform.control.add_fault(endpoint="get_corp_token", http_status=500, times=1)
    response = caller.get(tenant_path(authorization, "access-token/"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "wecom_unavailable"
    assert response["Retry-After"]
    # A system failure backs off for seconds only; after it, WeCom is asked again.
    with time_machine.travel(timezone.now() + timedelta(seconds=5), tick=False):
        platform.control.add_fault(endpoint="get_corp_token", errcode=45009, times=1)
        response = caller.get(tenant_path(authorization, "access-token/"))
    assert response.status_code == 503
    assert response.json()["error"]["details"]["errcode"] == 45009


@pytest.mark.django_db
def test_a_refused_credential_is_503_with_retry_after_and_its_errcode(platform):
    authorization = install(platform)
    caller = make_caller("errors", suites=[platform.suite])
    expire(authorization)
    platform.control.add_fault(endpoint="get_corp_token", errcode=40001, times=1)
    response = caller.get(tenant_path(authorization, "access-token/"))
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "credential_unavailable"
    assert error["details"] == {"flagged": True, "errcode": 40001}
    assert int(response["Retry-After"]) >= 60
    # Remembered: the next request makes no WeCom call (the fault was used up).
    before = len(platform.requests("get_corp_token"))
    again = caller.get(tenant_path(authorization, "access-token/"))
    assert again.status_code == 503
    assert int(again["Retry-After"]) >= 60
    assert len(platform.requests("get_corp_token")) == before
    outcomes = list(
        AuditLog.objects.filter(action="token.read")
        .order_by("id")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["unavailable", "unavailable"]
