"""Install via both entries, exactly-once code exchange, lifecycle (simulator over HTTP)."""

import html
import itertools
import re
import threading
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import httpx
import pytest
import time_machine
from django.conf import settings
from django.db import connection

from tenants import credentials
from tenants import handlers
from tenants import install_links
from tenants import services
from tenants.models import AuthCodeClaim
from tenants.models import Authorization
from tenants.models import FeedEvent
from tenants.models import Suite
from tests.ops.fixtures import plain_static  # noqa: F401
from wecom import messages
from wecom.errors import WeComCorpGone
from wecom.errors import WeComPermanentError
from wecom_provider.observability.redaction import scrub_patterns

# WeCom's TimeStamps, one second apart: these tests' events happen in this order.
CLOCK = itertools.count(int(time.time()))


def auth_code_via_redirect(client, platform, corpid: str, *, start_url: str | None = None):
    """Play the admin's browser: platform → WeCom install page → back with auth_code.

    Returns (auth_code, state) as WeCom sends them back.
    """
    start = client.get(start_url or f"/install/{platform.suite.suite_id}/")
    assert start.status_code == 302
    location = start["Location"]
    assert location.startswith(platform.sandbox.base_url + "/3rdapp/install?")
    wecom = httpx.get(location + f"&corpid={corpid}", follow_redirects=False)
    assert wecom.status_code == 302, wecom.text
    back = urlsplit(wecom.headers["location"])
    assert back.path == f"/install/{platform.suite.suite_id}/done/"
    query = parse_qs(back.query)
    sent = parse_qs(urlsplit(location).query)["state"][0]
    assert query["state"] == [sent]  # WeCom echoes what we sent
    return query["auth_code"][0], query["state"][0]


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
    # An anonymous visitor's state is ignored: it would otherwise come back signed as ours.
    code, state = auth_code_via_redirect(
        client, platform, corp["corpid"], start_url=f"/install/{platform.suite.suite_id}/?state=x1"
    )
    assert install_links.state_verify(suite_id=platform.suite.suite_id, state=state) == ""
    done = client.get(
        f"/install/{platform.suite.suite_id}/done/", {"auth_code": code, "state": state}
    )
    assert done.status_code == 200
    assert b"Installed" in done.content
    authorization = Authorization.objects.get(corp__corpid=corp["corpid"], suite=platform.suite)
    assert authorization.status == Authorization.Status.ACTIVE
    assert authorization.state == ""
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
        f"/install/{platform.suite.suite_id}/done/", {"auth_code": code, "state": state}
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
    code, _ = auth_code_via_redirect(client, platform, corp["corpid"])
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
    done = client.get(f"/install/{platform.suite.suite_id}/done/")
    assert done.status_code == 400
    bad_state = client.get(
        f"/install/{platform.suite.suite_id}/done/", {"auth_code": "AC1", "state": "a b<script>"}
    )
    assert bad_state.status_code == 400
    assert b"<script>" not in bad_state.content


@pytest.mark.django_db
def test_unknown_suite_is_404_without_a_wecom_call(client, platform):
    platform.control.clear_requests()
    assert client.get("/install/unknown-suite/").status_code == 404
    assert client.get("/install/unknown-suite/", {"test": "1"}).status_code == 404
    assert platform.control.requests() == []  # the simulator saw nothing at all


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [{"test": "1"}, {"test": "true"}, {"test": ""}, {"test_token": "forged:token"}],
)
def test_anonymous_test_install_is_refused_without_a_wecom_call(client, platform, query):
    platform.control.clear_requests()
    response = client.get(f"/install/{platform.suite.suite_id}/", query)
    assert response.status_code == 403
    assert b"Test installs need a signed link created by a security admin" in response.content
    assert platform.control.requests() == []


def security_admin(django_user_model):
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from ops import roles

    call_command("sync_roles", verbosity=0)
    user = django_user_model.objects.create_user("sec", password="unused-here", is_staff=True)
    user.groups.add(Group.objects.get(name=roles.SECURITY_ADMIN))
    return user


def signed_test_link(platform, user, suite=None) -> str:
    from django.test import Client

    suite = suite or platform.suite
    admin = Client()
    admin.force_login(user)
    url = f"/admin/tenants/suite/{suite.pk}/test-install-link/"
    form = admin.get(url)
    assert form.status_code == 200
    assert b"can then never authorize the suite formally" in form.content
    page = admin.post(url)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    match = re.search(r'<code class="test-install-link">([^<]+)</code>', page.content.decode())
    assert match
    link = html.unescape(match.group(1))
    assert link.startswith(f"{settings.PUBLIC_BASE_URL}/install/{suite.suite_id}/?test_token=")
    return link.removeprefix(settings.PUBLIC_BASE_URL)


@pytest.mark.django_db
@pytest.mark.usefixtures("plain_static")
def test_a_security_admins_signed_link_sets_session_info(client, platform, django_user_model):
    path = signed_test_link(platform, security_admin(django_user_model))
    token = parse_qs(urlsplit(path).query)["test_token"][0]
    # A logged request line keeps the suite but not the token that grants the install.
    signature = token.rsplit(":", 1)[1]  # URL-safe, so it appears as such in the path
    assert signature in path
    assert signature not in scrub_patterns(f"GET {path} HTTP/1.1")
    response = client.get(path)
    assert response.status_code == 302
    calls = platform.requests("set_session_info")
    assert len(calls) == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("plain_static")
def test_an_operator_cannot_create_a_test_link(platform, django_user_model):
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client

    from ops import roles

    call_command("sync_roles", verbosity=0)
    user = django_user_model.objects.create_user("op", password="unused-here", is_staff=True)
    user.groups.add(Group.objects.get(name=roles.OPERATOR))
    admin = Client()
    admin.force_login(user)
    url = f"/admin/tenants/suite/{platform.suite.pk}/test-install-link/"
    assert admin.post(url).status_code == 403


@pytest.mark.django_db
@pytest.mark.usefixtures("plain_static")
def test_a_signed_link_expires_and_is_bound_to_its_suite(client, platform, django_user_model):
    user = security_admin(django_user_model)
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False) as clock:
        path = signed_test_link(platform, user)
        token = parse_qs(urlsplit(path).query)["test_token"][0]
        other = Suite.objects.exclude(pk=platform.suite.pk).first()
        if other is not None:
            wrong_suite = client.get(f"/install/{other.suite_id}/", {"test_token": token})
            assert wrong_suite.status_code == 403
        clock.shift(timedelta(seconds=settings.TEST_INSTALL_LINK_MAX_AGE + 1))
        platform.control.clear_requests()
        expired = client.get(path)
        assert expired.status_code == 403
        assert platform.control.requests() == []


@pytest.mark.django_db
def test_the_public_entry_is_rate_limited_per_address(client, platform, settings):
    settings.INSTALL_RATE_LIMIT_PER_MINUTE = 3
    url = f"/install/{platform.suite.suite_id}/"
    for _ in range(3):
        assert client.get(url, REMOTE_ADDR="192.0.2.1").status_code == 302
    limited = client.get(url, REMOTE_ADDR="192.0.2.1")
    assert limited.status_code == 429
    assert 0 < int(limited["Retry-After"]) <= 60
    assert b"Too many install attempts" in limited.content
    assert len(platform.requests("get_pre_auth_code")) == 3  # the 4th cost WeCom nothing
    # Unknown suites count too (probing is capped), other addresses are untouched.
    assert client.get("/install/nope/", REMOTE_ADDR="192.0.2.1").status_code == 429
    assert client.get(url, REMOTE_ADDR="198.51.100.2").status_code == 302


@pytest.mark.django_db
def test_the_install_state_round_trips_signed_and_only_intact(platform):
    product = "crm42"
    signed = install_links.state_sign(suite_id=platform.suite.suite_id, product_state=product)
    assert len(signed) <= 128
    assert signed.isascii()
    assert signed.isalnum()  # WeCom: [a-zA-Z0-9]
    assert install_links.state_verify(suite_id=platform.suite.suite_id, state=signed) == product
    # Tampered, moved to another suite, unsigned or expired: not trusted.
    tampered = "crm43" + signed[len(product) :]
    assert install_links.state_verify(suite_id=platform.suite.suite_id, state=tampered) is None
    assert install_links.state_verify(suite_id="other", state=signed) is None
    assert install_links.state_verify(suite_id=platform.suite.suite_id, state="crm42") is None
    later = time.time() + settings.INSTALL_STATE_MAX_AGE + 1
    assert (
        install_links.state_verify(suite_id=platform.suite.suite_id, state=signed, now=later)
        is None
    )
    longest = "a" * install_links.PRODUCT_STATE_MAX
    assert len(install_links.state_sign(suite_id="s", product_state=longest)) == 128
    with pytest.raises(ValueError, match="at most 90"):
        install_links.state_sign(suite_id="s", product_state=longest + "a")


@pytest.mark.django_db
def test_an_unsigned_state_from_wecom_is_not_passed_on(platform):
    # A QR or hand-made install carries a state we never signed: products must not see it.
    corp = platform.corps[1]
    handlers.handle_create_auth(create_auth_event(platform, corp["corpid"]))  # state "qr1"
    assert Authorization.objects.get(corp__corpid=corp["corpid"]).state == ""
