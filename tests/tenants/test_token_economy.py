"""Issue 15 + issue 14 item 3: fenced token writes, remembered failures, revocation at once.

All against the simulator over HTTP, on real PostgreSQL and Redis.
"""

import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from api import services as api_services
from tenants import credentials
from tenants.models import Authorization
from tenants.models import CredentialToken
from tests.api.conftest import make_caller
from tests.api.conftest import tenant_path
from tests.support import ROOT
from tests.tenants.test_token_day import fresh_ticket
from tests.tenants.test_tokens import child_env
from tests.tenants.test_tokens import expire
from tests.tenants.test_tokens import install
from wecom.client import AccessToken


@pytest.mark.django_db
def test_a_delayed_writer_from_an_older_generation_cannot_overwrite_a_newer_token(platform):
    authorization = install(platform)
    credentials.token_get(authorization)
    late_row = CredentialToken.objects.get(authorization=authorization)
    late_generation = late_row.generation
    # A newer token is stored meanwhile (WeCom revoked the first early).
    platform.control.revoke_tokens(token=late_row.value)
    newer = credentials.token_get(authorization, rejected=late_row.value).value
    # The slow writer, which read the row before that, arrives last.
    served = credentials._store(
        late_row,
        AccessToken(value="LATE-TOKEN-" + "x" * 40, expires_in=7200),
        started=timezone.now(),
        generation=late_generation,
    )
    assert served.value == newer
    row = CredentialToken.objects.get(authorization=authorization)
    assert row.value == newer
    assert credentials.token_get(authorization).value == newer


@pytest.mark.django_db
def test_an_invalidation_during_an_in_flight_refresh_never_lets_that_token_be_served(
    platform, monkeypatch
):
    authorization = install(platform)
    expire(authorization)
    real_fetch = credentials._fetch
    in_flight = []

    def fetch_then_invalidate(owner):
        grant = real_fetch(owner)  # the real WeCom call
        in_flight.append(grant.value)
        # The invalidation (a reset: WeCom killed that token) commits while the answer
        # is on its way back.
        platform.control.revoke_tokens(token=grant.value)
        credentials.token_invalidate(authorization)
        return grant

    monkeypatch.setattr(credentials, "_fetch", fetch_then_invalidate)
    with pytest.raises(credentials.CredentialUnavailable):
        credentials.token_get(authorization)
    monkeypatch.setattr(credentials, "_fetch", real_fetch)
    row = CredentialToken.objects.get(authorization=authorization)
    assert row.value_sealed == ""
    assert credentials.token_get(authorization).value != in_flight[0]


@pytest.mark.django_db
def test_a_stale_cache_copy_written_after_an_invalidation_is_never_served(platform):
    authorization = install(platform)
    token = credentials.token_get(authorization)
    row = CredentialToken.objects.get(authorization=authorization)
    read_before = credentials.time.time() - 1  # a reader read the row before the change
    credentials.token_invalidate(authorization)
    credentials._to_cache(row, read_at=read_before)  # …and re-caches it after
    platform.control.revoke_tokens(token=token.value)
    assert credentials.token_get(authorization).value != token.value


@pytest.mark.django_db
def test_forced_refreshes_are_one_call_per_cooldown_and_others_get_the_current_token(platform):
    authorization = install(platform, 1)
    first = credentials.token_get(authorization).value
    platform.control.revoke_tokens(token=first)
    before = len(platform.requests("get_corp_token"))
    second = credentials.token_get(authorization, rejected=first).value
    # A product reports the fresh token too, within the cool-down: no call.
    assert credentials.token_get(authorization, rejected=second).value == second
    assert len(platform.requests("get_corp_token")) - before == 1
    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=False):
        third = credentials.token_get(authorization, rejected=second).value
    assert len(platform.requests("get_corp_token")) - before == 2
    assert third  # the simulator may hand back the same value (it is still valid)


@pytest.mark.django_db
def test_wrong_secret_is_at_most_3_calls_in_10_minutes_flagged_and_503(platform):
    authorization = install(platform, 2)
    caller = make_caller("wrong-secret", suites=[platform.suite])
    expire(authorization)
    platform.control.add_fault(endpoint="get_corp_token", errcode=40001, times=1000)
    before = len(platform.requests("get_corp_token"))
    start = timezone.now()
    statuses = set()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(60):  # a product read and a beat tick every 10 s for 10 minutes
            response = caller.get(tenant_path(authorization, "access-token/"))
            statuses.add(response.status_code)
            assert int(response["Retry-After"]) >= 1
            for key in credentials.tokens_due():
                credentials.token_refresh_scheduled(key)
            clock.shift(10)
    assert statuses == {503}
    assert len(platform.requests("get_corp_token")) - before <= 3
    row = CredentialToken.objects.get(authorization=authorization)
    assert row.flagged
    assert "40001" in row.last_error


@pytest.mark.django_db
def test_same_token_is_served_to_its_real_expiry_and_fetched_once_after(platform):
    platform.control.settings(token_renew_window=0, token_mode="same_while_valid")
    authorization = install(platform)
    first = credentials.token_get(authorization)
    row = CredentialToken.objects.get(authorization=authorization)
    before = len(platform.requests("get_corp_token"))
    with time_machine.travel(row.refresh_after + timedelta(seconds=1), tick=False) as clock:
        assert credentials.tokens_due()
        assert credentials.token_refresh_scheduled(row.owner_key)
        row.refresh_from_db()
        assert row.reissues_same  # WeCom handed back the same value
        assert row.refresh_after >= row.expires_at
        assert len(platform.requests("get_corp_token")) - before == 1
        clock.move_to(row.expires_at - timedelta(seconds=120))
        token = credentials.token_get(authorization)
        assert token.value == first.value
        assert 0 < token.expires_in() < 300  # the documented exception
        assert len(platform.requests("get_corp_token")) - before == 1
        clock.move_to(row.expires_at + timedelta(seconds=3))
        fresh_ticket(platform)  # WeCom pushed tickets meanwhile
        assert row.owner_key in credentials.tokens_due()
        assert credentials.token_refresh_scheduled(row.owner_key)
        renewed = credentials.token_get(authorization)
        assert renewed.value != first.value
        assert renewed.expires_in() > 7000
        assert len(platform.requests("get_corp_token")) - before == 2


SUSPEND = """
import sys
import django
django.setup()
from tenants import services
from tenants.models import Authorization
authorization = Authorization.objects.get(pk=int(sys.argv[1]))
getattr(services, sys.argv[2])(authorization=authorization, actor="ops", **(
    {"reason": "test"} if sys.argv[2] == "authorization_suspend" else {}))
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["authorization_suspend", "authorization_cancel"])
def test_suspend_or_cancel_in_another_process_refuses_token_and_jsapi_at_once(platform, change):
    authorization = install(platform)
    caller = make_caller(f"revoke-{change}", suites=[platform.suite])
    assert caller.get(tenant_path(authorization, "access-token/")).status_code == 200
    body = {"url": "https://app.example.com/page", "kind": "corp"}
    assert caller.post(tenant_path(authorization, "jsapi-signature/"), body).status_code == 200
    # Cached in Redis and the database: every cache path is warm before the change.
    subprocess.run(
        [sys.executable, "-c", SUSPEND, str(authorization.pk), change],
        cwd=ROOT,
        env=child_env(platform),
        check=True,
        timeout=60,
    )
    before = len(platform.requests("get_corp_token"))
    wecom_calls = len(platform.requests(None))
    token = caller.get(tenant_path(authorization, "access-token/"))
    signature = caller.post(tenant_path(authorization, "jsapi-signature/"), body)
    licence = caller.put(tenant_path(authorization, "license/auto-active/"), {"enabled": True})
    activate_path = tenant_path(authorization, "license/accounts/activate/")
    activate = caller.post(activate_path, {"userid": "u1"})
    statuses = [r.status_code for r in (token, signature, licence, activate)]
    assert statuses == [409, 409, 409, 409]
    assert {r.json()["error"]["code"] for r in (token, signature, licence, activate)} == {
        "authorization_inactive"
    }
    assert len(platform.requests("get_corp_token")) == before
    assert len(platform.requests(None)) == wecom_calls  # nothing reached WeCom
    # Internal callers holding a stale "active" row find nothing usable either.
    stale = Authorization.objects.get(pk=authorization.pk)
    stale.status = Authorization.Status.ACTIVE
    with pytest.raises(credentials.AuthorizationInactive):
        credentials.token_get(stale)
    with pytest.raises(credentials.AuthorizationInactive):
        api_services.jsapi_ticket_get(authorization=stale, kind="corp")
    assert cache.get(f"token:{credentials.owner_key(authorization)}") is None
