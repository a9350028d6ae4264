"""Feed retention: old rows go, rows a pending delivery needs stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.feed import feed_publish
from tenants.models import FeedEvent
from tests.webhooks.conftest import drain
from webhooks import services
from webhooks.models import Delivery


@pytest.mark.django_db(transaction=True)
def test_prune_keeps_rows_pending_deliveries_need(tenant, subscribed, receiver):
    receiver.script = [503]  # the first event's delivery stays pending
    old = [
        feed_publish(
            type="tenant.changed", source_key=f"p{n}", suite=tenant.suite, corp=tenant.corp
        )
        for n in range(3)
    ]
    drain()
    FeedEvent.objects.filter(pk__in=[e.pk for e in old]).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    fresh = feed_publish(
        type="tenant.changed", source_key="new", suite=tenant.suite, corp=tenant.corp
    )
    pending = Delivery.objects.get(status="pending", feed_event__in=old)

    deleted = services.feed_prune(older_than=timedelta(days=30))

    remaining = set(FeedEvent.objects.values_list("pk", flat=True))
    assert pending.feed_event_id in remaining
    assert fresh.pk in remaining
    assert deleted == 2
    assert not remaining & ({e.pk for e in old} - {pending.feed_event_id})
    # The delivery log of pruned events stays (their feed row reference is cleared).
    assert Delivery.objects.filter(feed_event__isnull=True, status="delivered").count() == 2
