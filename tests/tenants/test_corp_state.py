"""The corp's whole state, end to end: simulator → callbacks → admin, corp API and feed.

Edition info from the call that carries it (v1 get_auth_info) and change_editon;
agent/get_permissions on install and every change_auth; each change_auth's diff;
the low-activity and disuse events; 代开发 install links from get_customized_auth_url.
"""

from __future__ import annotations

import httpx
import pytest

from tenants.models import Authorization
from tenants.models import FeedEvent
from tests.api.conftest import make_caller
from tests.tenants import lifecycle_support as ls

pytestmark = pytest.mark.django_db


class Flow:
    def __init__(self, platform, client) -> None:
        self.platform = platform
        self.client = client
        self.ctl = platform.control
        self.last_push = max((p["id"] for p in self.ctl.pushes()), default=0)

    def wecom(self, action) -> list:
        """Run a simulator action, deliver what it pushed, process it; return the rows."""
        action()
        rows, self.last_push = ls.deliver_new_pushes(self.client, self.platform, self.last_push)
        for row in rows:
            assert row.status == "done", (row.info_type, row.status, row.result, row.last_error)
        ls.run_install_follow_ups()  # an install's reads follow in their own task
        return rows


@pytest.fixture
def admin_client(admin_client, settings):
    # No collectstatic in tests: plain static storage for the admin's pages.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return admin_client


@pytest.fixture
def flow(platform, client, settings):
    settings.API_EVENTS_SETTLE_SECONDS = 0  # the feed's settle delay is tested on its own
    return Flow(platform, client)


def test_edition_permissions_and_the_change_diff_reach_admin_api_and_feed(
    flow, platform, admin_client
):
    suite, corp = platform.suite, platform.corps[0]
    corpid = corp["corpid"]
    [install] = flow.wecom(lambda: flow.ctl.install(suite.suite_id, corpid))
    assert install.info_type == "create_auth"
    tenant = Authorization.objects.get(suite=suite, corp__corpid=corpid)
    truth = platform.sandbox.state.auth(suite.suite_id, corpid)
    # Edition from v1 get_auth_info (v2 has none), permissions from agent/get_permissions.
    assert tenant.edition["edition_id"] == "ESBASIC"
    assert tenant.edition == {"agentid": truth.agentid, **truth.edition}
    assert tenant.permissions == ["contact:base:read", "external_contact:read"]
    assert tenant.last_change == {}
    assert platform.requests("get_auth_info_v1")
    assert platform.requests("get_permissions")

    member = corp["users"][1]["userid"]
    flow.wecom(
        lambda: flow.ctl.change_auth(
            suite.suite_id,
            corpid,
            allow_user=[member],
            app_permissions=["contact:base:read", "message:send"],
        )
    )
    tenant.refresh_from_db()
    agentid = str(tenant.agent_id)
    diff = tenant.last_change["diff"]
    assert tenant.last_change["source"] == "change_auth"
    assert diff["permissions"] == {"added": ["message:send"], "removed": ["external_contact:read"]}
    assert diff["privileges"] == {agentid: {"allow_user": {"added": [member], "removed": []}}}
    assert "edition" not in diff  # change_auth does not re-read the edition
    assert tenant.permissions == ["contact:base:read", "message:send"]
    [changed] = tenant.history.filter(action="changed")
    assert changed.detail["diff"] == diff

    flow.wecom(
        lambda: flow.ctl.change_edition(suite.suite_id, corpid, edition_id="ESPRO", app_status=3)
    )
    tenant.refresh_from_db()
    assert (tenant.edition["edition_id"], tenant.edition["edition_name"]) == ("ESPRO", "专业版")
    assert tenant.edition["app_status"] == 3

    # The product feed.
    [feed_change] = FeedEvent.objects.filter(type="tenant.changed", corp=tenant.corp)
    assert feed_change.data["diff"] == diff
    [feed_edition] = FeedEvent.objects.filter(type="tenant.edition_changed", corp=tenant.corp)
    assert feed_edition.data["edition"]["edition_id"] == "ESPRO"
    assert feed_edition.data["previous_edition"]["edition_id"] == "ESBASIC"
    caller = make_caller("state-reader", suites=[suite])
    events = caller.get("/api/v1/events/", {"type": "tenant.changed"}).json()["results"]
    assert [e["data"]["diff"] for e in events] == [diff]

    # The corp detail API.
    detail = caller.get(f"/api/v1/suites/{suite.suite_id}/corps/{corpid}/")
    assert detail.status_code == 200, detail.content
    body = detail.json()
    assert body["edition"]["edition_id"] == "ESPRO"
    assert body["permissions"] == ["contact:base:read", "message:send"]
    assert body["last_change"]["diff"] == diff
    assert (body["activity"], body["agent_state"]) == ("normal", "open")

    # The admin: the diff on the tenant's page, its history and the inbox row.
    page = admin_client.get(f"/admin/tenants/authorization/{tenant.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "message:send" in html
    assert "ESPRO" in html
    assert member in html  # the allow_user diff, in last_change and the history inline


def test_activity_events_set_the_tenant_state_admin_filters_and_feed(flow, platform, admin_client):
    suite, corpid = platform.suite, platform.corps[1]["corpid"]
    flow.wecom(lambda: flow.ctl.install(suite.suite_id, corpid))
    tenant = Authorization.objects.get(suite=suite, corp__corpid=corpid)
    [alert] = flow.wecom(
        lambda: flow.ctl.activity(
            suite.suite_id, corpid, "low_active_alert", effect_time=1900000000
        )
    )
    assert alert.endpoint == "data"
    flow.wecom(lambda: flow.ctl.activity(suite.suite_id, corpid, "close_inactive_agent"))
    tenant.refresh_from_db()
    assert tenant.activity == Authorization.Activity.LOW_ACTIVE_ALERT
    assert int(tenant.activity_effect_at.timestamp()) == 1900000000
    assert tenant.agent_state == Authorization.AgentState.CLOSED
    types = set(FeedEvent.objects.filter(corp=tenant.corp).values_list("type", flat=True))
    assert {"tenant.low_active_alert", "tenant.close_inactive_agent"} <= types
    listing = admin_client.get("/admin/tenants/authorization/", {"activity": "low_active_alert"})
    assert corpid in listing.content.decode()
    other = platform.corps[0]["corpid"]
    assert other not in listing.content.decode()
    closed = admin_client.get("/admin/tenants/authorization/", {"agent_state": "closed"})
    assert corpid in closed.content.decode()

    flow.wecom(lambda: flow.ctl.activity(suite.suite_id, corpid, "low_active"))
    flow.wecom(lambda: flow.ctl.activity(suite.suite_id, corpid, "active_restored"))
    flow.wecom(lambda: flow.ctl.activity(suite.suite_id, corpid, "reopen_inactive_agent"))
    tenant.refresh_from_db()
    assert (tenant.activity, tenant.activity_effect_at) == ("normal", None)
    assert tenant.agent_state == "open"
    caller = make_caller("activity-reader", suites=[suite])
    body = caller.get(f"/api/v1/suites/{suite.suite_id}/corps/{corpid}/").json()
    assert (body["activity"], body["agent_state"]) == ("normal", "open")


def test_an_older_activity_event_does_not_undo_a_newer_one(flow, platform, client):
    suite, corpid = platform.suite, platform.corps[2]["corpid"]
    flow.wecom(lambda: flow.ctl.install(suite.suite_id, corpid))
    platform.sandbox.advance(5)
    flow.ctl.activity(suite.suite_id, corpid, "low_active")
    older = flow.ctl.pushes(since_id=flow.last_push)[-1]
    platform.sandbox.advance(5)
    rows = flow.wecom(lambda: flow.ctl.activity(suite.suite_id, corpid, "active_restored"))
    assert [r.info_type for r in rows] == ["low_active", "active_restored"]
    late = ls.replay(ls.deliver_push(client, platform, older))
    assert late.status == "superseded"
    tenant = Authorization.objects.get(suite=suite, corp__corpid=corpid)
    assert tenant.activity == "normal"


def test_customized_install_links_come_from_get_customized_auth_url(flow, platform):
    template = platform.template
    caller = make_caller("installer", suites=[template])
    answer = caller.post(f"/api/v1/suites/{template.suite_id}/install-links/", {"state": "shop7"})
    assert answer.status_code == 201, answer.content
    url = answer.json()["url"]
    assert "/3rdservice/wework/customized/auth?" in url
    assert platform.requests("get_customized_auth_url")
    assert not platform.requests("get_pre_auth_code")
    too_long = caller.post(
        f"/api/v1/suites/{template.suite_id}/install-links/", {"state": "s" * 33}
    )
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "invalid"
    # The admin opens the link and authorizes; create_auth follows on the template's URL.
    corpid = platform.corps[2]["corpid"]
    [install] = flow.wecom(lambda: httpx.get(f"{url}&corpid={corpid}").raise_for_status())
    assert install.info_type == "create_auth"
    tenant = Authorization.objects.get(suite=template, corp__corpid=corpid)
    assert tenant.is_active
    assert tenant.state == "shop7"
    assert tenant.edition == {}  # WeCom gives 代开发 templates no edition_info


def test_the_install_entry_of_a_template_leads_to_its_customized_auth_link(client, platform):
    start = client.get(f"/install/{platform.template.suite_id}/", {"state": "web1"})
    assert start.status_code == 302
    assert "/3rdservice/wework/customized/auth?" in start["Location"]
    # The public entry passes no visitor's state on (only API-made links carry one).
    assert "state=web1" not in start["Location"]
    # An unsigned test install is refused before a 代开发 template is even considered.
    assert client.get(f"/install/{platform.template.suite_id}/", {"test": "1"}).status_code == 403


def test_an_api_link_for_a_template_carries_the_state_within_wecoms_32_bytes(platform):
    caller = make_caller("template-installer", suites=[platform.template])
    path = f"/api/v1/suites/{platform.template.suite_id}/install-links/"
    link = caller.post(path, {"state": "web1"})
    assert link.status_code == 201
    assert "/3rdservice/wework/customized/auth?" in link.json()["url"]
    assert "state=web1" in link.json()["url"]  # unsigned: no room for a MAC in 32 bytes
    # WeCom's 32-byte limit for get_customized_auth_url: a clear 400, not a 500.
    assert caller.post(path, {"state": "s" * 33}).status_code == 400
    assert caller.post(path, {"state": "s" * 32}).status_code == 201
