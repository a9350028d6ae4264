"""Issue 15: failure classes per WeCom call, against the simulator over HTTP.

40082/42009 on get_corp_token refuse the *suite* token (it travels in the query
string), not the corp's permanent code: the suite token is refreshed once and the call
retried; if WeCom still refuses, the corp is backed off briefly and never flagged.
"""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from prometheus_client import REGISTRY

from tenants import credentials
from tenants.models import CredentialToken
from tests.tenants.test_tokens import expire
from tests.tenants.test_tokens import install


def refused_alerts(kind: str) -> float:
    labels = {"kind": kind, "outcome": "credential_refused"}
    return REGISTRY.get_sample_value("wecom_token_refresh_total", labels) or 0.0


@pytest.mark.django_db
def test_a_suite_token_wecom_dropped_is_refreshed_once_for_all_corps_none_flagged(platform):
    tenants = [install(platform, index) for index in range(3)]
    for tenant in tenants:
        expire(tenant)
    # WeCom dropped the suite token early: get_corp_token answers 40082 (the simulator's
    # own check, not an injected fault).
    platform.control.revoke_tokens(kind="suite")
    suite_calls = len(platform.requests("get_suite_token"))
    corp_calls = len(platform.requests("get_corp_token"))
    tokens = [credentials.token_get(tenant).value for tenant in tenants]
    assert len(set(tokens)) == 3
    refused = platform.control.requests("get_corp_token")[corp_calls:]
    assert [r.get("errcode") for r in refused][:1] == [40082]  # the first call was refused
    assert len(platform.requests("get_suite_token")) - suite_calls == 1
    assert not CredentialToken.objects.filter(flagged=True).exists()


@pytest.mark.django_db
def test_40082_that_persists_backs_the_corps_off_briefly_and_flags_none(platform):
    tenants = [install(platform, index) for index in range(2)]
    for tenant in tenants:
        expire(tenant)
    # WeCom keeps refusing the suite token on get_corp_token, for both corps (whether the
    # client retries depends on whether the refreshed suite token is a new value).
    platform.control.add_fault(endpoint="get_corp_token", errcode=40082, times=1000)
    alerts = refused_alerts("corp")
    suite_calls = len(platform.requests("get_suite_token"))
    for tenant in tenants:
        with pytest.raises(credentials.CredentialBackoff) as caught:
            credentials.token_get(tenant)
        assert caught.value.errcode == 40082
        assert not caught.value.flagged
        assert caught.value.retry_after < 60  # a system-class backoff, not the long one
    rows = CredentialToken.objects.filter(authorization__in=tenants)
    assert [row.flagged for row in rows] == [False, False]
    assert all("40082" in row.last_error for row in rows)
    assert all(row.refresh_enabled for row in rows)
    suite = CredentialToken.objects.get(suite=platform.suite)
    assert not suite.flagged
    # One forced suite-token refresh for the suite (the cool-down), not one per corp.
    assert len(platform.requests("get_suite_token")) - suite_calls == 1
    assert refused_alerts("corp") == alerts  # no credential alert for the corps
    # The backoff ends in seconds; WeCom accepts the suite token again: fetched.
    platform.control.clear_faults()
    with time_machine.travel(timezone.now() + timedelta(seconds=15), tick=False):
        assert credentials.token_get(tenants[0]).value


@pytest.mark.django_db
def test_a_wrong_customized_secret_flags_that_tenant_and_alerts(platform):
    tenant = install(platform, 2, suite=platform.template)
    expire(tenant)
    tenant.permanent_code = "WRONG-SECRET-" + "s" * 30
    tenant.save(update_fields=["permanent_code_sealed"])
    alerts = refused_alerts("corp")
    before = len(platform.requests("gettoken"))
    with pytest.raises(credentials.CredentialBackoff) as caught:
        credentials.token_get(tenant)
    assert caught.value.flagged
    assert caught.value.errcode == 40001
    assert caught.value.retry_after >= 60
    assert refused_alerts("corp") == alerts + 1
    with pytest.raises(credentials.CredentialBackoff):
        credentials.token_get(tenant)
    assert len(platform.requests("gettoken")) - before == 1
    assert CredentialToken.objects.get(authorization=tenant).flagged
