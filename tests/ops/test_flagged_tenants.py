"""Issue 15: a tenant whose credential WeCom refuses is flagged for ops, never leaking it.

A 代开发 tenant is given a wrong secret (its permanent code is gettoken's corpsecret);
the simulator answers 40001 (and, opted in, bans the IP after repeated wrong secrets).
The product gets 503 with Retry-After, the admin changelist and the dashboard show the
tenant flagged, and the seeded secret is on neither page.
"""

from __future__ import annotations

import html
import re

import pytest
from prometheus_client import REGISTRY

from api import services as api_services
from ops.dashboard import FLAGGED_LABEL
from tenants import credentials
from tenants.models import Authorization
from tests.api.conftest import install
from tests.api.conftest import make_caller
from tests.api.conftest import tenant_path
from tests.ops.test_dashboard import DASHBOARD
from tests.ops.test_dashboard import figure
from tests.ops.test_dashboard import rows_behind

WRONG_SECRET = "SEEDED-WRONG-SECRET-7f3a9c1e5b"
CHANGELIST = "/admin/tenants/authorization/"


def refused_alerts() -> float:
    labels = {"kind": "corp", "outcome": "credential_refused"}
    return REGISTRY.get_sample_value("wecom_token_refresh_total", labels) or 0.0


@pytest.mark.django_db
def test_a_wrong_secret_flags_the_tenant_in_admin_and_dashboard_and_503s(platform, admin_http):
    # Opt-in: the simulator bans the IP after 3 wrong secrets within an hour (§5.4).
    platform.control.settings(wrong_secret_ban_after=3)
    tenant = install(platform, 0, suite=platform.template)
    healthy = install(platform, 1)
    caller = make_caller("flagged", suites=[platform.template])
    tenant.permanent_code = WRONG_SECRET
    tenant.save(update_fields=["permanent_code_sealed"])
    credentials.token_invalidate(tenant)  # as a reset would: the next read fetches
    alerts = refused_alerts()
    before = len(platform.requests("gettoken"))

    path = tenant_path(tenant, "access-token/")
    responses = [caller.get(path) for _ in range(5)]
    assert [r.status_code for r in responses] == [503] * 5
    for response in responses:
        assert int(response["Retry-After"]) >= 60
        error = response.json()["error"]
        assert error["code"] == "credential_unavailable"
        assert error["details"] == {"flagged": True, "errcode": 40001}
        assert WRONG_SECRET not in response.content.decode()
    # One WeCom call, then the remembered failure: far below the ban's threshold.
    assert len(platform.requests("gettoken")) - before == 1
    assert refused_alerts() == alerts + 1

    # The Authorization changelist: the flag filter finds it, the column shows it.
    flagged_list = admin_http.get(CHANGELIST, {"token": "flagged"})
    assert flagged_list.status_code == 200
    found = list(flagged_list.context["cl"].queryset)
    assert found == [Authorization.objects.get(pk=tenant.pk)]
    page = flagged_list.content.decode()
    assert tenant.corp.corpid in page
    assert "credential flagged" in page
    assert 'alt="True"' in page  # the boolean column's icon
    assert WRONG_SECRET not in page
    everything = admin_http.get(CHANGELIST).content.decode()
    assert healthy.corp.corpid in everything
    assert WRONG_SECRET not in everything

    # The dashboard: the count (linked to exactly that list) and the tenant by name.
    dashboard = admin_http.get(DASHBOARD)
    assert dashboard.status_code == 200
    page = dashboard.content.decode()
    assert figure(page, FLAGGED_LABEL) == "1"
    assert f'data-flagged-corpid="{tenant.corp.corpid}"' in page
    assert f'data-flagged-corpid="{healthy.corp.corpid}"' not in page
    assert "errcode=40001" in page
    assert WRONG_SECRET not in page
    assert html.escape(WRONG_SECRET) not in page
    link = f"{CHANGELIST}?token=flagged"
    assert html.escape(link) in page
    assert rows_behind(admin_http, link) == 1


@pytest.mark.django_db
def test_an_unflagged_platform_shows_no_flagged_tenants(platform, admin_http):
    install(platform)
    page = admin_http.get(DASHBOARD).content.decode()
    assert figure(page, FLAGGED_LABEL) == "0"
    assert "data-flagged-corpid" not in page
    assert admin_http.get(CHANGELIST, {"token": "flagged"}).context["cl"].result_count == 0


@pytest.mark.django_db
def test_a_flagged_ticket_shows_on_the_dashboard(platform, admin_http):
    authorization = install(platform, 2)
    platform.control.add_fault(endpoint="get_jsapi_ticket", errcode=48002, times=1)
    with pytest.raises(credentials.CredentialBackoff):
        api_services.jsapi_ticket_get(authorization=authorization, kind="corp")
    page = admin_http.get("/admin/ops/dashboard/").content.decode()
    label = "JS-SDK tickets flagged (WeCom refused the fetch)"
    shown = re.search(re.escape(label) + r'.{0,400}?data-rows="(\d+)">(\d+)</a>', page, re.S)
    assert shown
    assert shown.groups() == ("1", "1")
    listing = admin_http.get("/admin/api/jsapiticket/", {"flagged__exact": "1"})
    assert listing.context["cl"].result_count == 1
