"""Issue 15: JS-SDK tickets run through the token machinery: remembered failures with
a backoff by class (no WeCom call meanwhile: 400/h per corp, 100/h per app), 503 with
Retry-After, a forced-refetch cool-down, fencing. Against the simulator over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from api import services as api_services
from api.models import JsapiTicket
from tenants import credentials
from tests.api.conftest import install
from tests.api.conftest import make_caller
from tests.api.conftest import tenant_path

BODY = {"url": "https://app.example.com/page", "kind": "corp"}


@pytest.mark.django_db
def test_a_failed_ticket_fetch_is_remembered_briefly_and_products_get_503(platform):
    authorization = install(platform)
    caller = make_caller("ticket-busy", suites=[platform.suite])
    path = tenant_path(authorization, "jsapi-signature/")
    platform.control.add_fault(endpoint="get_jsapi_ticket", errcode=-1, times=1)
    before = len(platform.requests("get_jsapi_ticket"))
    first = caller.post(path, BODY)
    assert first.status_code == 503
    assert first["Retry-After"]
    # Asked again at once: remembered, no WeCom call.
    again = caller.post(path, BODY)
    assert again.status_code == 503
    assert again.json()["error"]["code"] == "credential_unavailable"
    assert int(again["Retry-After"]) >= 1
    assert len(platform.requests("get_jsapi_ticket")) - before == 1
    row = JsapiTicket.objects.get(authorization=authorization, kind="corp")
    assert not row.flagged
    assert row.consecutive_failures == 1
    assert "errcode=-1" in row.last_error
    # The short backoff ends; WeCom is asked once more and the page is signed.
    with time_machine.travel(timezone.now() + timedelta(seconds=5), tick=False):
        signed = caller.post(path, BODY)
    assert signed.status_code == 200
    assert len(platform.requests("get_jsapi_ticket")) - before == 2
    row.refresh_from_db()
    assert row.consecutive_failures == 0
    assert row.retry_not_before is None


@pytest.mark.django_db
def test_a_ticket_wecom_refuses_for_good_is_backed_off_long_and_flagged(platform):
    authorization = install(platform, 1)
    caller = make_caller("ticket-refused", suites=[platform.suite])
    path = tenant_path(authorization, "jsapi-signature/")
    # 48002: the app lacks the permission; retrying cannot help.
    platform.control.add_fault(endpoint="get_agent_jsapi_ticket", errcode=48002, times=1000)
    before = len(platform.requests("get_agent_jsapi_ticket"))
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(30):  # a signature request every 20 s for 10 minutes
            response = caller.post(path, {**BODY, "kind": "agent"})
            assert response.status_code == 503
            assert int(response["Retry-After"]) >= 1
            clock.shift(20)
    assert len(platform.requests("get_agent_jsapi_ticket")) - before <= 2
    row = JsapiTicket.objects.get(authorization=authorization, kind="agent")
    assert row.flagged
    assert "48002" in row.last_error
    # The corp ticket is a credential of its own: unaffected.
    assert caller.post(path, BODY).status_code == 200


@pytest.mark.django_db
def test_forced_ticket_refetches_are_one_call_per_cooldown(platform):
    authorization = install(platform)
    first = api_services.jsapi_ticket_get(authorization=authorization, kind="corp").value
    before = len(platform.requests("get_jsapi_ticket"))
    second = api_services.jsapi_ticket_get(authorization=authorization, kind="corp", rejected=first)
    assert len(platform.requests("get_jsapi_ticket")) - before == 1
    # Reported again within the cool-down (WeCom handed back the same value): no call.
    third = api_services.jsapi_ticket_get(
        authorization=authorization, kind="corp", rejected=second.value
    )
    assert third.value == second.value
    assert len(platform.requests("get_jsapi_ticket")) - before == 1
    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=False):
        api_services.jsapi_ticket_get(
            authorization=authorization, kind="corp", rejected=second.value
        )
    assert len(platform.requests("get_jsapi_ticket")) - before == 2


@pytest.mark.django_db
def test_an_invalidation_during_an_in_flight_ticket_fetch_drops_that_ticket(platform, monkeypatch):
    authorization = install(platform)
    real_fetch = api_services.TicketFetcher.fetch
    in_flight = []

    def fetch_then_invalidate(self):
        ticket = real_fetch(self)  # the real WeCom call
        in_flight.append(ticket.value)
        credentials.token_invalidate(authorization)  # a reset commits meanwhile
        return ticket

    monkeypatch.setattr(api_services.TicketFetcher, "fetch", fetch_then_invalidate)
    with pytest.raises(credentials.CredentialUnavailable):
        api_services.jsapi_ticket_get(authorization=authorization, kind="corp")
    row = JsapiTicket.objects.get(authorization=authorization, kind="corp")
    assert row.value_sealed == ""
    assert row.fetch_count == 0
