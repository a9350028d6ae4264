"""URL binding (callbacks/binding.py): a callback touches only what its URL is for.

Every callback here is validly signed and encrypted, with the keys of the URL it is
posted to; only the payload names something else. It is answered (it is authentic
and decided), stored as rejected with a counted reason, and never applied.
"""

from __future__ import annotations

import time

import pytest
from django.db.models import Sum
from prometheus_client import REGISTRY

from callbacks import services
from callbacks.models import CallbackEvent
from callbacks.models import CallbackRejection
from licensing.models import LicenseOrder
from tenants.models import Authorization
from tenants.models import Suite
from tests.callbacks import signing
from tests.tenants import lifecycle_support as ls
from tests.tenants.factories import make_authorization
from tests.tenants.factories import make_provider
from tests.tenants.factories import make_suite

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider():
    return make_provider()


@pytest.fixture
def suite_a(provider):
    return make_suite(provider)


@pytest.fixture
def suite_b(provider):
    return make_suite(provider)


def rejections(reason: str) -> int:
    return CallbackRejection.objects.filter(reason=reason).aggregate(n=Sum("count"))["n"] or 0


def results(endpoint: str, result: str) -> float:
    labels = {"endpoint": endpoint, "result": result}
    return REGISTRY.get_sample_value("wecom_callback_results_total", labels) or 0.0


def the_row() -> CallbackEvent:
    [row] = CallbackEvent.objects.all()
    return row


def test_a_cancel_for_suite_a_signed_on_suite_bs_url_changes_nothing_of_a(client, suite_a, suite_b):
    tenant = make_authorization(suite_a)
    corpid = tenant.corp.corpid
    xml = ls.corp_event_xml("cancel_auth", suite_a.suite_id, corpid, int(time.time()))
    before = results("command", "rejected_foreign_suite")
    response = ls.post(client, signing.suite_command(suite_b, xml))  # B's keys, B's URL
    assert (response.status_code, response.content) == (200, b"success")
    row = the_row()
    assert row.status == CallbackEvent.Status.REJECTED
    assert row.result.startswith("rejected (foreign_suite)")
    assert suite_a.suite_id in row.result
    assert suite_b.suite_id in row.result
    assert row.processed_at is not None
    assert rejections("foreign_suite") == 1
    assert results("command", "rejected_foreign_suite") == before + 1
    assert ls.not_applied("rejected", "foreign_suite", "cancel_auth") >= 1
    # Never handed to a worker; an ops replay decides the same.
    assert services.callback_process(event_id=row.pk) is None
    assert ls.replay(row).status == CallbackEvent.Status.REJECTED
    tenant.refresh_from_db()
    assert tenant.status == Authorization.Status.ACTIVE
    assert tenant.permanent_code_sealed
    assert rejections("foreign_suite") == 2  # the replay decided again
    # WeCom's retry of the same callback lands on the row and is not counted again.
    ls.post(client, signing.suite_command(suite_b, xml))
    assert CallbackEvent.objects.get().duplicates == 1
    assert rejections("foreign_suite") == 2


def test_a_far_future_ticket_for_suite_a_on_suite_bs_url_is_not_stored(client, suite_a, suite_b):
    xml = signing.ticket_xml(suite_a.suite_id, "BLOCKER", int(time.time()) + 10**8)
    ls.post(client, signing.suite_command(suite_b, xml))
    assert the_row().status == CallbackEvent.Status.REJECTED
    assert Suite.objects.get(pk=suite_a.pk).suite_ticket_timestamp is None


def test_the_provider_url_takes_no_suite_event(client, provider, suite_a):
    xml = signing.ticket_xml(suite_a.suite_id, "T", int(time.time()))
    response = ls.post(client, signing.system(provider, xml))
    assert response.status_code == 200
    row = the_row()
    assert row.status == CallbackEvent.Status.REJECTED
    assert "suite_event_on_provider_url" in row.result
    assert rejections("suite_event_on_provider_url") == 1
    assert Suite.objects.get(pk=suite_a.pk).suite_ticket_timestamp is None


def pay_xml(service_corpid: str, corpid: str, order_id: str) -> str:
    return (
        f"<xml><ServiceCorpId><![CDATA[{service_corpid}]]></ServiceCorpId>"
        "<InfoType><![CDATA[license_pay_success]]></InfoType>"
        f"<AuthCorpId><![CDATA[{corpid}]]></AuthCorpId><OrderId><![CDATA[{order_id}]]></OrderId>"
        f"<BuyerUserId><![CDATA[buyer]]></BuyerUserId><TimeStamp>{int(time.time())}</TimeStamp></xml>"
    )


def test_the_provider_url_takes_no_event_of_another_provider(client, provider):
    other = make_provider()
    ls.post(client, signing.system(provider, pay_xml(other.corpid, "wpC", "OI1")))
    assert "foreign_provider" in the_row().result
    assert not LicenseOrder.objects.exists()


def test_a_suite_url_takes_no_provider_event(client, provider, suite_a):
    ls.post(client, signing.suite_command(suite_a, pay_xml(provider.corpid, "wpC", "OI2")))
    assert "provider_event_on_suite_url" in the_row().result
    assert not LicenseOrder.objects.exists()


def test_a_data_callback_naming_another_corp_than_it_was_sealed_for(client, suite_a):
    sender = make_authorization(suite_a)
    victim = make_authorization(suite_a)
    xml = (
        f"<xml><ToUserName><![CDATA[{victim.corp.corpid}]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[close_inactive_agent]]></Event><AgentID>1</AgentID></xml>"
    )
    # Sealed for the sender's corpid (the receive id), claiming the victim's.
    ls.post(client, signing.suite_data(suite_a, sender.corp.corpid, xml))
    assert "foreign_corp" in the_row().result
    victim.refresh_from_db()
    assert victim.agent_state == Authorization.AgentState.OPEN


def test_stored_rows_are_checked_again_before_dispatch(client, provider, suite_a):
    """A row stored before the rule (or by a bug) naming a foreign order: rejected."""
    other = make_provider()
    LicenseOrder.objects.create(order_id="OIOTHER", provider=other)
    ls.post(client, signing.system(provider, pay_xml(provider.corpid, "wpC", "OIOTHER")))
    row = the_row()
    assert row.status == CallbackEvent.Status.PENDING  # the header names the right provider
    assert ls.process(row).status == CallbackEvent.Status.REJECTED
    assert "foreign_order" in row.result
    assert LicenseOrder.objects.get(order_id="OIOTHER").status_source == ""


def test_a_license_event_for_a_corp_of_another_provider_is_rejected(client, provider):
    tenant = make_authorization(make_suite(make_provider()))
    ls.post(client, signing.system(provider, pay_xml(provider.corpid, tenant.corp.corpid, "OI3")))
    row = ls.process(the_row())
    assert row.status == CallbackEvent.Status.REJECTED
    assert "corp_of_another_provider" in row.result
    assert not LicenseOrder.objects.exists()
