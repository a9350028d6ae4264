"""Issue 19: one audit row per gateway call (client, tenant, path, errcode, duration,
bytes), never a body, a query value or a token; metrics by path and errcode (the ops
dashboard's panel: tests/ops/test_gateway_panel.py).

Known secrets and markers are seeded (the corp tokens before and after a forced
refresh, the permanent code, the suite and provider secrets, the API key, markers in a
query value, a JSON body and an uploaded file) and searched for in every audit row and
every log record of the run.
"""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client import REGISTRY

from api.models import AuditLog
from tenants import credentials
from tests.api.gateway_support import gateway_tenant

QUERY_MARKER = "QUERYMARKER7f3a"
BODY_MARKER = "BODYMARKER91c2"
FILE_MARKER = b"FILEMARKER55e0"


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db
def test_audit_rows_and_logs_hold_no_body_query_or_token(platform, caplog):
    caplog.set_level(logging.DEBUG)
    tenant = gateway_tenant(platform)
    stale = credentials.token_get(tenant.authorization).value
    platform.control.revoke_tokens(token=stale)  # the first call refreshes: two tokens
    calls_before = metric("wecom_gateway_calls_total", path="user/get", errcode="0")

    got = tenant.get("user/get", userid=tenant.userid, note=QUERY_MARKER)
    assert got["X-Wecom-Errcode"] == "0"
    sent = tenant.post(
        "message/send",
        {
            "touser": tenant.userid,
            "msgtype": "text",
            "agentid": tenant.authorization.agent_id,
            "text": {"content": BODY_MARKER},
        },
    )
    assert sent["X-Wecom-Errcode"] == "0"
    up = tenant.upload("file", "notes.txt", FILE_MARKER * 100, "text/plain")
    assert up["X-Wecom-Errcode"] == "0"
    assert tenant.get("user/get", userid="nobody")["X-Wecom-Errcode"] == "60111"

    fresh = credentials.token_get(tenant.authorization).value
    assert fresh != stale
    secrets = {
        "stale token": stale,
        "fresh token": fresh,
        "permanent code": tenant.authorization.permanent_code,
        "suite secret": platform.suite.secret,
        "provider secret": platform.provider.provider_secret,
        "api key": tenant.caller.key,
        "query marker": QUERY_MARKER,
        "body marker": BODY_MARKER,
        "file marker": FILE_MARKER.decode(),
    }
    rows = list(AuditLog.objects.filter(action="wecom.call").order_by("id").values())
    assert [(r["method"], r["detail"]["path"], r["detail"]["errcode"]) for r in rows] == [
        ("GET", "user/get", 0),
        ("POST", "message/send", 0),
        ("POST", "media/upload", 0),
        ("GET", "user/get", 60111),
    ]
    first = rows[0]
    assert first["client_id"] == tenant.caller.client.pk
    assert (first["suite_id"], first["corpid"]) == (
        tenant.authorization.suite.suite_id,
        tenant.authorization.corp.corpid,
    )
    assert first["detail"]["attempts"] == 2
    assert first["detail"]["token_refreshed"] is True
    assert first["detail"]["duration_ms"] >= 0
    assert first["detail"]["bytes_out"] == len(got.content)
    assert rows[2]["detail"]["bytes_in"] == len(FILE_MARKER) * 100
    text = json.dumps(rows, default=str) + "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records
    )
    assert [name for name, value in secrets.items() if value in text] == []

    assert metric("wecom_gateway_calls_total", path="user/get", errcode="0") == calls_before + 1
    assert metric("wecom_gateway_calls_total", path="user/get", errcode="40014") >= 1
    assert metric("wecom_gateway_call_seconds_count", path="message/send") >= 1


@pytest.mark.django_db
def test_refusals_are_counted_by_reason(platform, settings):
    tenant = gateway_tenant(platform, paths=["tag/list"])
    before = metric("wecom_gateway_refused_total", path="user/get", reason="not_allowed")
    assert tenant.get("user/get", userid=tenant.userid).status_code == 403
    assert metric("wecom_gateway_refused_total", path="user/get", reason="not_allowed") == (
        before + 1
    )
    settings.WECOM_QUOTA_CORP_API_PER_MINUTE = 1
    assert tenant.get("tag/list").status_code == 200
    quota_before = metric("wecom_gateway_refused_total", path="tag/list", reason="corp_api_minute")
    assert tenant.get("tag/list").status_code == 429
    assert metric("wecom_gateway_refused_total", path="tag/list", reason="corp_api_minute") == (
        quota_before + 1
    )
