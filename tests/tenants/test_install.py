"""Install via both entries, exactly-once code exchange, lifecycle (simulator over HTTP)."""

import itertools
import threading
import time
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import httpx
import pytest
from django.db import connection

from tenants import credentials
from tenants import handlers
from tenants import services
from tenants.models import AuthCodeClaim
from tenants.models import Authorization
from tenants.models import FeedEvent
from wecom_provider.wecom import messages
from wecom_provider.wecom.errors import WeComCorpGone
from wecom_provider.wecom.errors import WeComPermanentError

# WeCom's TimeStamps, one second apart: these tests' events happen in this order.
CLOCK = itertools.count(int(time.time()))


def auth_code_via_redirect(client, platform, corpid: str, *, state: str = "abc123") -> str:
    """Play the admin's browser: platform → WeCom install page → back with auth_code."""
    start = client.get(f"/install/{platform.suite.suite_id}/", {"state": state})
    assert start.status_code == 302
    location = start["Location"]
    assert location.startswith(platform.sandbox.base_url + "/3rdapp/install?")
    wecom = httpx.get(location + f"&corpid={corpid}", follow_redirects=False)
    assert wecom.status_code == 302, wecom.text
    back = urlsplit(wecom.headers["location"])
    assert back.path == f"/install/{platform.suite.suite_id}/done/"
    query = parse_qs(back.query)
    assert query["state"] == [state]
    return query["auth_code"][0]


def create_auth_event(platform, corpid: str, *, suite=None) -> messages.CreateAuth:
    suite = suite or platform.suite
    result = platform.control.install(suite.suite_id, corpid, state="qr1", push=False)
    code = result.get("auth_code") or result["code"]
    xml = (
        f"<xml><SuiteId><![CDATA[{suite.suite_id}]]></SuiteId>"
        f"<AuthCode><![CDATA[{code}]]></AuthCode><InfoType><![CDATA[create_auth]]></InfoType>"
        f"<TimeStamp>{next(CLOCK)}</TimeStamp><State><![CDATA[qr1]]></State></xml>"
    )
    return messages.parse_event(xml)


@pytest.mark.django_db
def test_install_from_the_providers_site_ends_active_with_a_working_token(client, platform):
    corp = platform.corps[0]
    code = auth_code_via_redirect(client, platform, corp["corpid"])
    done = client.get(
        f"/install/{platform.suite.suite_id}/done/", {"auth_code": code, "state": "abc123"}
    )
    assert done.status_code == 200
    assert b"Installed" in done.content
    authorization = Authorization.objects.get(corp__corpid=corp["corpid"], suite=platform.suite)
    assert authorization.status == Authorization.Status.ACTIVE
    assert authorization.state == "abc123"
    assert authorization.permanent_code_sealed.startswith("v1:")
    assert authorization.permanent_code not in authorization.permanent_code_sealed
    assert authorization.agent_id is not None  # auth info synced
    token = credentials.token_get(authorization)
    assert token.expires_in() > 300
    # The token works at WeCom: a corp API accepts it.
    assert (
        "admin"
        in httpx.post(
            f"{platform.sandbox.base_url}/cgi-bin/agent/get_admin_list",
            params={"access_token": token.value},
            json={},
        ).json()
    )
    assert FeedEvent.objects.filter(type="tenant.authorized", corp=authorization.corp).count() == 1
    # Reusing the code (browser back button) does not call WeCom again.
    again = client.get(
        f"/install/{platform.suite.suite_id}/done/", {"auth_code": code, "state": "abc123"}
    )
    assert again.status_code == 200
    assert len(platform.requests("get_permanent_code")) == 1


@pytest.mark.django_db
def test_install_from_create_auth_callback(platform):
    corp = platform.corps[1]
    event = create_auth_event(platform, corp["corpid"])
    result = handlers.handle_create_auth(event)
    assert corp["corpid"] in result
    authorization = Authorization.objects.get(corp__corpid=corp["corpid"])
    assert authorization.is_active
    assert credentials.token_get(authorization).value
    # A redelivered event (same code) is a no-op.
    assert handlers.handle_create_auth(event) == result
    assert len(platform.requests("get_permanent_code")) == 1


@pytest.mark.django_db(transaction=True)
def test_racing_callback_and_redirect_exchange_one_code_once(client, platform):
    corp = platform.corps[2]
    code = auth_code_via_redirect(client, platform, corp["corpid"])
    event = messages.parse_event(
        f"<xml><SuiteId>{platform.suite.suite_id}</SuiteId><AuthCode>{code}</AuthCode>"
        f"<InfoType>create_auth</InfoType><TimeStamp>{next(CLOCK)}</TimeStamp></xml>"
    )
    results, errors = [], []
    barrier = threading.Barrier(6)

    def via_callback():
        try:
            barrier.wait()
            results.append(handlers.handle_create_auth(event))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def via_redirect():
        try:
            barrier.wait()
            a = services.authorization_install(
                suite=platform.suite, auth_code=code, source="redirect"
            )
            results.append(a.corp.corpid)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=f) for f in [via_callback, via_redirect] * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 6
    assert len(platform.requests("get_permanent_code")) == 1
    assert AuthCodeClaim.objects.get().status == AuthCodeClaim.Status.EXCHANGED
    assert Authorization.objects.filter(corp__corpid=corp["corpid"]).count() == 1


@pytest.mark.django_db
def test_a_refused_code_fails_cleanly_and_is_not_retried(platform):
    event = messages.parse_event(
        f"<xml><SuiteId>{platform.suite.suite_id}</SuiteId><AuthCode>not-a-real-code</AuthCode>"
        f"<InfoType>create_auth</InfoType><TimeStamp>{next(CLOCK)}</TimeStamp></xml>"
    )
    with pytest.raises(WeComPermanentError) as info:
        handlers.handle_create_auth(event)
    assert info.value.errcode == 40078
    with pytest.raises(services.InstallFailed):
        handlers.handle_create_auth(event)
    assert len(platform.requests("get_permanent_code")) == 1
    assert not Authorization.objects.exists()


@pytest.mark.django_db
def test_cancel_then_reinstall_reactivates_the_same_authorization(platform):
    corp = platform.corps[0]["corpid"]
    handlers.handle_create_auth(create_auth_event(platform, corp))
    authorization = Authorization.objects.get(corp__corpid=corp)
    first_code = authorization.permanent_code
    platform.control.cancel_auth(platform.suite.suite_id, corp)
    cancel = messages.parse_event(
        f"<xml><SuiteId>{platform.suite.suite_id}</SuiteId><InfoType>cancel_auth</InfoType>"
        f"<TimeStamp>{next(CLOCK)}</TimeStamp><AuthCorpId>{corp}</AuthCorpId></xml>"
    )
    assert handlers.handle_cancel_auth(cancel) == "cancelled"
    assert handlers.handle_cancel_auth(cancel) == "already cancelled"
    authorization.refresh_from_db()
    assert authorization.status == Authorization.Status.CANCELLED
    assert authorization.permanent_code_sealed == ""  # the dead code is not kept
    with pytest.raises(credentials.AuthorizationInactive):
        credentials.token_get(authorization)
    handlers.handle_create_auth(create_auth_event(platform, corp))
    again = Authorization.objects.get(corp__corpid=corp)
    assert again.pk == authorization.pk
    assert again.is_active
    assert again.permanent_code != first_code
    assert credentials.token_get(again).value
    actions = list(again.history.order_by("created_at", "id").values_list("action", flat=True))
    assert actions == ["authorized", "cancelled", "reauthorized"]


@pytest.mark.django_db
def test_customized_app_uses_gettoken_and_reset_swaps_the_code(platform):
    corp = platform.corps[1]["corpid"]
    handlers.handle_create_auth(create_auth_event(platform, corp, suite=platform.template))
    authorization = Authorization.objects.get(corp__corpid=corp, suite=platform.template)
    old_token = credentials.token_get(authorization).value
    assert len(platform.requests("gettoken")) == 1
    assert platform.requests("get_corp_token") == []
    old_code = authorization.permanent_code
    result = platform.control.reset_permanent_code(platform.template.suite_id, corp)
    code = result.get("auth_code") or result["code"]
    reset = messages.parse_event(
        f"<xml><SuiteId>{platform.template.suite_id}</SuiteId><AuthCode>{code}</AuthCode>"
        f"<InfoType>reset_permanent_code</InfoType><TimeStamp>{next(CLOCK)}</TimeStamp></xml>"
    )
    handlers.handle_reset_permanent_code(reset)
    authorization.refresh_from_db()
    assert authorization.permanent_code != old_code
    # Tokens were invalidated: the next read fetches with the new secret.
    assert credentials.token_get(authorization).value
    assert len(platform.requests("gettoken")) == 2
    assert old_token  # the old token was served before the reset


@pytest.mark.django_db
def test_dissolved_corp_suspends_the_authorization(platform):
    corp = platform.corps[2]["corpid"]
    handlers.handle_create_auth(create_auth_event(platform, corp))
    authorization = Authorization.objects.get(corp__corpid=corp)
    credentials.token_invalidate(authorization)
    platform.control.dissolve_corp(corp)
    with pytest.raises(WeComCorpGone) as info:
        credentials.token_get(authorization)
    assert info.value.errcode == 301007
    authorization.refresh_from_db()
    assert authorization.status == Authorization.Status.SUSPENDED
    assert not authorization.token.refresh_enabled
    calls = len(platform.requests("get_corp_token"))
    with pytest.raises(credentials.AuthorizationInactive):
        credentials.token_get(authorization)
    assert len(platform.requests("get_corp_token")) == calls  # no retry storm
    assert FeedEvent.objects.filter(type="tenant.suspended").count() == 1


@pytest.mark.django_db
def test_change_auth_rereads_auth_info_once_per_event(platform):
    corp = platform.corps[0]["corpid"]
    handlers.handle_create_auth(create_auth_event(platform, corp))
    before = len(platform.requests("get_auth_info"))
    platform.control.change_auth(platform.suite.suite_id, corp, auth_mode=1)
    event = messages.parse_event(
        f"<xml><SuiteId>{platform.suite.suite_id}</SuiteId><InfoType>change_auth</InfoType>"
        f"<TimeStamp>{next(CLOCK)}</TimeStamp><AuthCorpId>{corp}</AuthCorpId></xml>"
    )
    handlers.handle_change_auth(event)
    handlers.handle_change_auth(event)  # redelivered
    authorization = Authorization.objects.get(corp__corpid=corp)
    assert authorization.auth_mode == 1
    assert len(platform.requests("get_auth_info")) == before + 2
    assert FeedEvent.objects.filter(type="tenant.changed").count() == 1


@pytest.mark.django_db
def test_install_start_validates_input(client, platform):
    assert client.get("/install/unknown-suite/").status_code == 404
    bad_state = client.get(f"/install/{platform.suite.suite_id}/", {"state": "a b<script>"})
    assert bad_state.status_code == 400
    assert b"<script>" not in bad_state.content
    done = client.get(f"/install/{platform.suite.suite_id}/done/")
    assert done.status_code == 400


@pytest.mark.django_db
def test_test_install_sets_session_info(client, platform):
    response = client.get(f"/install/{platform.suite.suite_id}/", {"test": "1"})
    assert response.status_code == 302
    calls = platform.requests("set_session_info")
    assert len(calls) == 1
