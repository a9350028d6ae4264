"""One error shape for every error, and the per-client rate limit."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from django.core.cache import cache

from api.models import AuditLog
from tenants.models import CredentialToken
from tests.api.conftest import NOT_FOUND
from tests.api.conftest import give_token
from tests.api.conftest import make_caller
from tests.api.conftest import tenant_path
from tests.support import ROOT
from tests.support import django_env
from tests.tenants.factories import make_authorization
from tests.tenants.factories import make_suite


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


@pytest.fixture
def tenant(db):
    authorization = make_authorization(make_suite())
    give_token(authorization, "TOKEN-ERRORS-1")
    return authorization


@pytest.mark.django_db
def test_client_errors_share_one_shape(tenant):
    caller = make_caller("errs", suites=[tenant.suite])
    token_path = tenant_path(tenant, "access-token/")
    refresh = tenant_path(tenant, "access-token/refresh/")

    error = error_of(caller.post(refresh, {"stale_token": ""}), 400)
    assert error["code"] == "invalid"
    assert "stale_token" in error["details"]

    bad_json = caller.http.post(refresh, "{not json", content_type="application/json")
    assert error_of(bad_json, 400)["code"] == "parse_error"

    text = caller.http.post(refresh, "stale_token=x", content_type="text/plain")
    assert error_of(text, 415)["code"] == "unsupported_media_type"

    assert error_of(caller.http.delete(token_path), 405)["code"] == "method_not_allowed"
    # Same 405 for a tenant the client cannot see: the method check reveals nothing.
    other = make_authorization(make_suite())
    assert error_of(caller.http.delete(tenant_path(other, "access-token/")), 405)

    assert error_of(caller.get("/api/v1/nope/"), 404) == NOT_FOUND["error"]
    assert error_of(caller.get("/api/v1/events/", {"after": "x"}), 400)["code"] == "invalid"
    huge = caller.get("/api/v1/events/", {"after": str(2**70)})
    assert error_of(huge, 400)["details"]["after"]
    cursor = caller.get(f"/api/v1/suites/{tenant.suite.suite_id}/corps/", {"cursor": "garbage"})
    assert error_of(cursor, 404) == NOT_FOUND["error"]


@pytest.mark.django_db
def test_unexpected_errors_are_500_without_internals(tenant, caplog):
    caller = make_caller("boom", suites=[tenant.suite])
    # A sealed value that no longer opens (corrupt row): an internal failure.
    CredentialToken.objects.filter(authorization=tenant).update(value_sealed="v1:nokey:AAAA:BBBB")
    cache.clear()
    response = caller.get(tenant_path(tenant, "access-token/"))
    error = error_of(response, 500)
    assert error == {"code": "internal_error", "message": "Internal server error.", "details": {}}
    assert "nokey" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert response["X-Request-ID"] in caplog.text or "unhandled error" in caplog.text
    row = AuditLog.objects.get(action="token.read")
    assert (row.outcome, row.status_code) == ("error", 500)


@pytest.mark.django_db
def test_rate_limit_answers_429_with_retry_after_per_client(tenant, settings):
    limited = make_caller("limited", suites=[tenant.suite], rate_limit=3)
    other = make_caller("other", suites=[tenant.suite])
    settings.API_RATE_LIMIT_PER_MINUTE = 5
    path = tenant_path(tenant, "access-token/")
    if time.time() % 60 > 50:  # the window must not turn over mid-test
        time.sleep(61 - time.time() % 60)
    assert [limited.get(path).status_code for _ in range(5)] == [200, 200, 200, 429, 429]
    response = limited.get(path)
    error = error_of(response, 429)
    assert error["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Throttled requests did nothing and leave no audit rows.
    assert AuditLog.objects.filter(client=limited.client).count() == 3
    # Another client has its own window, with the settings default.
    assert [other.get("/api/v1/suites/").status_code for _ in range(6)][-1] == 429


LIMIT_CHILD = """
import json, sys
import django
django.setup()
from api.throttling import rate_limit_hit
allowed = sum(
    rate_limit_hit(client_id=int(sys.argv[1]), limit=50, now=float(sys.argv[2])) is None
    for _ in range(40)
)
print(json.dumps(allowed))
"""


def test_rate_limit_is_atomic_across_processes():
    now = time.time()
    window_start = now - now % 60 + 1  # a fixed instant: all children count one window
    children = [
        subprocess.Popen(
            [sys.executable, "-c", LIMIT_CHILD, "987654", str(window_start)],
            cwd=ROOT,
            env=django_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    allowed = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err[-2000:]
        allowed.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(allowed) == 50  # 160 attempts, exactly the limit let through
