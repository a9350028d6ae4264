"""Deliveries: created with their feed entries, handed to the webhooks queue in batches,
replayed, swept when due or lost, and the feed's retention (webhooks services)."""

from __future__ import annotations

import logging
from datetime import datetime
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists
from django.db.models import OuterRef
from django.utils import timezone

from api.models import ApiClient
from tenants.models import FeedEvent
from webhooks import payloads
from webhooks import selectors
from webhooks.models import Delivery
from webhooks.models import Subscription
from webhooks.models import new_uid
from webhooks.services.subscriptions import SubscriptionError
from webhooks.services.subscriptions import subscription_disable
from wecom_provider.broker import BestEffortPublisher
from wecom_provider.observability import remember_secret

logger = logging.getLogger(__name__)

QUEUE = "webhooks"
# Deliveries per message (the attempts of a message are sent side by side,
# services/attempts.py).
BATCH_MAX = 16
# Retries sooner than this are enqueued with a countdown (punctual); later ones wait for
# the sweep, which runs every few seconds anyway.
COUNTDOWN_MAX = 5 * 60
REPLAY_RANGE_MAX = 10_000
# webhooks/tasks.py registers them; published by name (wecom_provider/broker.py).
# enqueue publishes batches; the single-delivery task stays registered for messages
# published before batches (queued, or counting down, across an upgrade).
DELIVER_BATCH_TASK = "webhooks.deliver_batch"
DELIVER_TASK = "webhooks.deliver"
# After a failed publish, skip the broker for this long (the sweep delivers meanwhile).
BROKER_BACKOFF = 5.0
_publisher = BestEffortPublisher(backoff=BROKER_BACKOFF, fallback="the webhook sweep")


# --- creating deliveries -------------------------------------------------------------------


def feed_published(published: list[tuple[FeedEvent, dict]]) -> list[int]:
    """The tenants.feed publish hook: create the deliveries of freshly published entries
    (each with its push-only codes) in the publishing transaction, and enqueue their
    first attempts after it commits; return their ids.

    Called once per publish, however many entries it made (a callback batch publishes
    many): subscriptions are read once, the deliveries written in one statement and
    handed to the webhooks queue in as few messages as BATCH_MAX allows.
    """
    subscriptions = selectors.subscriptions_listening()
    if not subscriptions:
        return []
    sees = selectors.ScopeCheck()
    rows: list[Delivery] = []
    for entry, codes in published:
        taking = [
            s
            for s in subscriptions
            if selectors.type_matches(s.event_types, entry.type) and sees(s.client, entry)
        ]
        if not taking:
            continue
        for value in codes.values():
            remember_secret(str(value))  # log redaction: the code never reaches a log line
        body = payloads.body_for(entry, codes=codes)
        rows.extend(_new_delivery(s, entry, body) for s in taking)
    if not rows:
        return []
    # No conflict is possible: the entries were created in this very transaction.
    Delivery.objects.bulk_create(rows)
    ids = [row.pk for row in rows]
    transaction.on_commit(lambda: enqueue(ids))
    return ids


def _new_delivery(
    subscription: Subscription,
    entry: FeedEvent,
    body: str,
    *,
    replay_of: Delivery | None = None,
    now: datetime | None = None,
) -> Delivery:
    delivery = Delivery(
        uid=new_uid("dlv"),
        subscription=subscription,
        feed_event=entry,
        msg_id=payloads.msg_id_for(entry.pk),
        event_type=entry.type,
        cursor=entry.pk,
        event_at=entry.created_at,
        next_attempt_at=now or entry.created_at,
        replay_of=replay_of,
    )
    delivery.body = body
    return delivery


def enqueue(delivery_ids: list[int], *, countdown: float | None = None) -> bool:
    """Publish attempt tasks for the deliveries, BATCH_MAX ids a message; False if the
    broker is down (the sweep then delivers). Never raises: the caller has committed."""
    return all(
        _publisher.send(
            DELIVER_BATCH_TASK,
            [delivery_ids[start : start + BATCH_MAX]],
            queue=QUEUE,
            countdown=countdown,
        )
        for start in range(0, len(delivery_ids), BATCH_MAX)
    )


# --- replay -------------------------------------------------------------------------------


def delivery_replay(*, delivery: Delivery) -> Delivery:
    """Send ``delivery``'s event again (same webhook-id and body) as a new delivery."""
    subscription = delivery.subscription
    if not subscription.enabled:
        raise SubscriptionError(f"subscription {subscription.uid} is disabled; enable it first")
    now = timezone.now()
    replay = Delivery(
        uid=new_uid("dlv"),
        subscription=subscription,
        feed_event_id=delivery.feed_event_id,
        msg_id=delivery.msg_id,
        event_type=delivery.event_type,
        cursor=delivery.cursor,
        event_at=delivery.event_at,
        next_attempt_at=now,
        replay_of=delivery,
    )
    replay.body = delivery.body
    with transaction.atomic():
        replay.save()
        transaction.on_commit(lambda: enqueue([replay.pk]))
    return replay


def deliveries_replay_range(*, subscription: Subscription, start: datetime, end: datetime) -> int:
    """Send again every event published in [start, end] that the subscription takes
    (matching types, in the client's scope); return how many deliveries were created.
    Pruned events are gone from the feed and are not replayed."""
    if not subscription.enabled:
        raise SubscriptionError(f"subscription {subscription.uid} is disabled; enable it first")
    if end < start:
        raise SubscriptionError("the range ends before it starts")
    client = (
        ApiClient.objects.prefetch_related("suites", "corps")
        .filter(pk=subscription.client_id)
        .get()
    )
    entries = [
        e
        for e in selectors.feed_events_between(start=start, end=end)[: REPLAY_RANGE_MAX + 1]
        if selectors.type_matches(subscription.event_types, e.type)
        and selectors.client_sees(client, e)
    ]
    if len(entries) > REPLAY_RANGE_MAX:
        raise SubscriptionError(f"more than {REPLAY_RANGE_MAX} events; choose a shorter range")
    originals = {
        d.feed_event_id: d
        for d in Delivery.objects.filter(
            subscription=subscription, feed_event__in=entries, replay_of__isnull=True
        )
    }
    now = timezone.now()
    rows = []
    for entry in entries:
        original = originals.get(entry.pk)
        # The original's body keeps push-only codes it had; a never-delivered event is
        # rebuilt from the feed (codes are not stored there: long dead anyway).
        body = original.body if original else payloads.body_for(entry)
        rows.append(_new_delivery(subscription, entry, body, replay_of=original, now=now))
    with transaction.atomic():
        Delivery.objects.bulk_create(rows)
        ids = [row.pk for row in rows]
        transaction.on_commit(lambda: enqueue(ids))
    return len(rows)


# --- the sweep and retention ---------------------------------------------------------------


def deliveries_sweep(*, now: datetime | None = None) -> int:
    """Enqueue due deliveries (retries, lost messages, dead workers' leases) and disable
    subscriptions that failed for WEBHOOK_DISABLE_AFTER_DAYS; return how many enqueued."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    for subscription in Subscription.objects.filter(enabled=True, failing_since__lt=cutoff):
        subscription_disable(subscription=subscription, reason=Subscription.DisabledReason.FAILING)
    due = selectors.deliveries_due(now=now)
    if due:
        enqueue(due)
    return len(due)


def feed_prune(*, older_than: timedelta, batch: int = 1000, now: datetime | None = None) -> int:
    """Delete feed entries older than ``older_than``, except those a pending delivery
    still needs, and finished deliveries as old; return how many feed entries went."""
    cutoff = (now or timezone.now()) - older_than
    needed = Delivery.objects.filter(feed_event_id=OuterRef("pk"), status=Delivery.Status.PENDING)
    deleted = 0
    while True:
        ids = list(
            FeedEvent.objects.filter(created_at__lt=cutoff)
            .exclude(Exists(needed))
            .order_by("id")
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            break
        with transaction.atomic():
            # Re-checked inside the delete: a replay created since the select keeps its row.
            _, per_model = FeedEvent.objects.filter(pk__in=ids).exclude(Exists(needed)).delete()
        deleted += per_model.get(FeedEvent._meta.label, 0)
        if len(ids) < batch:
            break
    Delivery.objects.filter(finished_at__lt=cutoff).exclude(status=Delivery.Status.PENDING).delete()
    return deleted
