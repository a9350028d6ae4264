"""Issue 19: the ops dashboard's gateway panel shows quota use per corp and the breakers
open now (both read from the Redis every web process counts in)."""

from __future__ import annotations

import pytest

from tests.api.gateway_support import gateway_tenant


@pytest.mark.django_db
def test_the_dashboard_shows_quota_use_per_corp_and_open_breakers(platform, admin_http):
    busy = gateway_tenant(platform)
    quiet = gateway_tenant(platform, corp_index=1, name="quiet")
    for _ in range(3):
        assert busy.get("user/get", userid=busy.userid).status_code == 200
    assert quiet.get("tag/list").status_code == 200
    platform.control.add_fault(endpoint="department/list", errcode=45009, times=1)
    assert busy.get("department/list")["X-Wecom-Errcode"] == "45009"

    page = admin_http.get("/admin/ops/dashboard/").content.decode()
    panel = page[page.index('id="ops-gateway"') : page.index('id="ops-licenses"')]
    busy_corp, quiet_corp = busy.corp["corpid"], quiet.corp["corpid"]
    assert f'data-gateway-corpid="{busy_corp}"' in panel
    assert "user/get: 3 / 10000" in panel  # the busiest API this minute
    assert panel.index(busy_corp) < panel.index(quiet_corp)  # the busiest corp first
    assert f'data-breaker="{busy_corp}|department/list"' in panel
    assert "action__exact=wecom.call" in panel


@pytest.mark.django_db
def test_the_panel_says_so_when_the_quota_store_is_down(admin_http, settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"},
    }
    page = admin_http.get("/admin/ops/dashboard/")
    assert page.status_code == 200
    assert "The quota store (Redis) cannot be read right now." in page.content.decode()
