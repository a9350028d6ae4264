"""Fixtures for webhook tests: a receiver over real HTTP, a client with a subscription."""

from __future__ import annotations

import pytest
from django.utils import timezone

from api.models import SCOPE_WEBHOOKS_MANAGE
from tests.api.conftest import install
from tests.api.conftest import make_caller
from tests.webhooks.receiver import receiver_server
from webhooks import services
from webhooks.models import Delivery


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    # Tests allow loopback by address only: "localhost" stays forbidden (SSRF tests).
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.API_EVENTS_SETTLE_SECONDS = 0
    settings.API_RATE_LIMIT_PER_MINUTE = 100_000


@pytest.fixture
def receiver():
    with receiver_server() as running:
        yield running


@pytest.fixture
def tenant(platform):
    return install(platform)


@pytest.fixture
def product(tenant, db):
    caller = make_caller("crm", suites=[tenant.suite])
    caller.client.scopes = [SCOPE_WEBHOOKS_MANAGE]
    caller.client.save()
    return caller


@pytest.fixture
def subscribed(product, receiver):
    """A subscription of ``product`` to every event type, pointing at the receiver."""
    subscription, secret = services.subscription_create(
        client=product.client, url=receiver.url, event_types=["*"]
    )
    receiver.secret = secret
    return subscription


def drain(*, rounds: int = 1) -> int:
    """Run every due attempt in this process (what the webhooks worker does); return
    how many ran."""
    ran = 0
    for _ in range(rounds):
        due = list(
            Delivery.objects.filter(
                status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now()
            ).values_list("id", flat=True)
        )
        for delivery_id in due:
            services.delivery_attempt(delivery_id=delivery_id)
            ran += 1
    return ran
