"""End to end with real processes: a callback over HTTP to the live server, processed by
a real Celery worker, pushed by the same worker from the ``webhooks`` queue (no beat)."""

from __future__ import annotations

import time

import httpx
import pytest
from django.db import connection

from api.models import SCOPE_WEBHOOKS_MANAGE
from tests.api.conftest import install
from tests.api.conftest import make_caller
from tests.callbacks import signing
from tests.support import celery_worker
from tests.support import database_url
from tests.support import django_env
from tests.support import wait_until
from webhooks import services
from webhooks.models import Delivery


@pytest.mark.django_db(transaction=True)
def test_an_external_contact_add_is_pushed_with_its_welcome_code(
    live_platform, live_server, receiver
):
    tenant = install(live_platform)
    caller = make_caller("crm-live", suites=[tenant.suite])
    caller.client.scopes = [SCOPE_WEBHOOKS_MANAGE]
    caller.client.save()
    _, secret = services.subscription_create(
        client=caller.client, url=receiver.url, event_types=["external_contact.*"]
    )
    env = django_env(
        DATABASE_URL=database_url(connection.settings_dict),
        WECOM_API_BASE=live_platform.sandbox.base_url,
        WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
    )
    xml = (
        f"<xml><SuiteId>{tenant.suite.suite_id}</SuiteId><AuthCorpId>{tenant.corp.corpid}"
        f"</AuthCorpId><InfoType>change_external_contact</InfoType>"
        f"<TimeStamp>{int(time.time())}</TimeStamp><ChangeType>add_external_contact"
        f"</ChangeType><UserID>zhangsan</UserID><ExternalUserID>wmLIVE</ExternalUserID>"
        f"<State>qr-7</State><WelcomeCode>LIVE-WELCOME-1</WelcomeCode></xml>"
    )
    with celery_worker(env=env, queues="priority,default,webhooks", concurrency=2):
        callback = signing.suite_command(tenant.suite, xml)
        answer = httpx.post(
            f"{live_server.url}{callback.path}",
            params=callback.query,
            content=callback.body,
            headers={"Content-Type": "text/xml"},
            trust_env=False,
        )
        assert (answer.status_code, answer.text) == (200, "success")
        wait_until(lambda: receiver.requests, timeout=60, message="the webhook to arrive")
        # The worker records the answer after the receiver has the request: stop it only
        # once that is written.
        wait_until(
            lambda: Delivery.objects.filter(status="delivered").exists(),
            timeout=30,
            message="the attempt to be recorded",
        )
    (body,) = receiver.verified(secret)
    assert body["type"] == "external_contact.add_external_contact"
    assert body["data"]["WelcomeCode"] == "LIVE-WELCOME-1"
    assert body["data"]["State"] == "qr-7"
    delivery = Delivery.objects.get()
    assert delivery.status == "delivered"
    assert delivery.attempts == 1
