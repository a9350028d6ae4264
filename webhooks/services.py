"""Writes of the webhooks app: subscriptions, deliveries and their attempts, replays,
the sweep, and feed retention.

Delivery is at least once. A delivery row is created in the same transaction as its
feed entry (the ``tenants.feed`` publish hook), so no event is lost between the feed
and the push; after commit its first attempt is enqueued on the ``webhooks`` queue at
once (no beat tick in the way: the first attempt must leave within 2 s). The beat sweep
hands out retries that are due and anything whose message the broker lost.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import time
from contextlib import contextmanager
from datetime import datetime
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db import transaction
from django.db.models import Exists
from django.db.models import F
from django.db.models import OuterRef
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from api.models import ApiClient
from tenants.models import FeedEvent
from webhooks import payloads
from webhooks import schedule
from webhooks import selectors
from webhooks import ssrf
from webhooks.models import Attempt
from webhooks.models import Delivery
from webhooks.models import Subscription
from webhooks.models import new_uid
from wecom_provider.observability import metrics
from wecom_provider.observability import remember_secret

logger = logging.getLogger(__name__)

QUEUE = "webhooks"
# An attempt holds its delivery this long (the 10 s timeout, connect and read, plus
# margin); a worker that dies mid-attempt lets the sweep take the row after it.
LEASE = timedelta(seconds=3 * ssrf.TIMEOUT + 5)
# Retries sooner than this are enqueued with a countdown (punctual); later ones wait for
# the sweep, which runs every few seconds anyway.
COUNTDOWN_MAX = 5 * 60
REPLAY_RANGE_MAX = 10_000
MAX_PATTERNS = 50
PATTERN_RE = re.compile(r"^[a-z0-9_*?.\-]{1,64}$")
# After a failed publish, skip the broker for this long (the sweep delivers meanwhile).
BROKER_BACKOFF = 5.0
_broker_down_until = 0.0


class SubscriptionError(ValueError):
    """A subscription request that cannot be accepted; the message is for the client."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# --- subscriptions -----------------------------------------------------------------------


def allowlist() -> ssrf.Allowlist:
    return ssrf.Allowlist.parse(settings.WEBHOOK_ALLOWED_HOSTS)


def new_secret() -> str:
    """Return a Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def event_types_clean(patterns) -> list[str]:
    """Return the patterns, de-duplicated, or raise SubscriptionError."""
    if isinstance(patterns, str):
        patterns = [p for p in re.split(r"[\s,]+", patterns) if p]
    if not isinstance(patterns, list | tuple) or not patterns:
        raise SubscriptionError("give at least one event type pattern", field="event_types")
    if len(patterns) > MAX_PATTERNS:
        raise SubscriptionError(f"at most {MAX_PATTERNS} patterns", field="event_types")
    cleaned = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not PATTERN_RE.match(pattern):
            raise SubscriptionError(
                "an event type pattern is lower-case letters, digits, '_', '.', '-' and the "
                "wildcards '*' and '?' (e.g. external_contact.*)",
                field="event_types",
            )
        if pattern not in cleaned:
            cleaned.append(pattern)
    return cleaned


def url_clean(url: str) -> str:
    """Return ``url`` if the SSRF guard lets it through now (resolved), else raise."""
    url = (url or "").strip()
    if len(url) > 500:
        raise SubscriptionError("the URL is longer than 500 characters", field="url")
    try:
        ssrf.check_url(url, allowlist())
    except ssrf.UnsafeDestination as exc:
        raise SubscriptionError(str(exc), field="url") from None
    return url


def subscription_create(
    *, client: ApiClient, url: str, event_types, description: str = ""
) -> tuple[Subscription, str]:
    """Create a subscription; return it with its secret (shown to the caller once)."""
    url = url_clean(url)
    patterns = event_types_clean(event_types)
    secret = new_secret()
    subscription = Subscription(
        uid=new_uid("sub"),
        client=client,
        url=url,
        event_types=patterns,
        description=description[:200],
    )
    subscription.secret = secret
    subscription.save()
    return subscription, secret


def subscription_update(
    *,
    subscription: Subscription,
    url: str | None = None,
    event_types=None,
    description: str | None = None,
    enabled: bool | None = None,
) -> Subscription:
    """Change what the caller gave; re-enabling clears the disable reason and clock."""
    fields = ["updated_at"]
    if url is not None:
        subscription.url = url_clean(url)
        fields.append("url")
    if event_types is not None:
        subscription.event_types = event_types_clean(event_types)
        fields.append("event_types")
    if description is not None:
        subscription.description = description[:200]
        fields.append("description")
    subscription.save(update_fields=fields)
    if enabled is True and not subscription.enabled:
        subscription_enable(subscription=subscription)
    elif enabled is False and subscription.enabled:
        subscription_disable(subscription=subscription, reason=Subscription.DisabledReason.MANUAL)
    return subscription


def subscription_secret_rotate(*, subscription: Subscription) -> str:
    """Give the subscription a new secret; return it (shown once). Attempts from now on
    are signed with it."""
    secret = new_secret()
    subscription.secret = secret
    subscription.save(update_fields=["secret_sealed", "updated_at"])
    return secret


def subscription_enable(*, subscription: Subscription) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(
        enabled=True, disabled_reason="", disabled_at=None, failing_since=None
    )
    subscription.refresh_from_db()


def subscription_disable(*, subscription: Subscription, reason: str) -> int:
    """Disable it and cancel its pending deliveries; return how many were cancelled.

    Conditional on ``enabled``: of two workers seeing a 410 at once, one disables.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = Subscription.objects.filter(pk=subscription.pk, enabled=True).update(
            enabled=False, disabled_reason=reason, disabled_at=now
        )
        cancelled = Delivery.objects.filter(
            subscription_id=subscription.pk, status=Delivery.Status.PENDING
        ).update(
            status=Delivery.Status.CANCELLED,
            finished_at=now,
            last_error=f"subscription disabled ({reason})",
        )
    if changed and reason != Subscription.DisabledReason.MANUAL:
        metrics.WEBHOOK_SUBSCRIPTIONS_DISABLED_TOTAL.labels(reason=reason).inc()
        logger.warning(
            "webhook subscription %s disabled automatically (%s)", subscription.uid, reason
        )
    subscription.refresh_from_db()
    return cancelled


# --- creating deliveries -------------------------------------------------------------------


def feed_published(entry: FeedEvent, codes: dict) -> list[int]:
    """The tenants.feed publish hook: create this entry's deliveries (in the publishing
    transaction) and enqueue their first attempts after it commits; return their ids."""
    subscriptions = [
        s
        for s in selectors.subscriptions_listening()
        if selectors.type_matches(s.event_types, entry.type)
        and selectors.client_sees(s.client, entry)
    ]
    if not subscriptions:
        return []
    for value in codes.values():
        remember_secret(str(value))  # log redaction: the code never reaches a log line
    body = payloads.body_for(entry, codes=codes)
    rows = [_new_delivery(s, entry, body) for s in subscriptions]
    # No conflict is possible: the entry was created in this very transaction.
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
    """Publish an attempt task per delivery; False if the broker is down (the sweep then
    delivers). Never raises: the caller has committed already."""
    global _broker_down_until
    from webhooks.tasks import deliver

    if time.monotonic() < _broker_down_until:
        return False
    try:
        for delivery_id in delivery_ids:
            deliver.apply_async(args=[delivery_id], queue=QUEUE, countdown=countdown, retry=False)
    except Exception as exc:
        _broker_down_until = time.monotonic() + BROKER_BACKOFF
        logger.warning(
            "broker unavailable (%s); the webhook sweep will deliver", type(exc).__name__
        )
        return False
    return True


# --- attempts --------------------------------------------------------------------------------


def signed_headers(*, secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """Return the Standard Webhooks headers for ``body`` sent at ``at``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def delivery_attempt(*, delivery_id: int) -> str:
    """Make the next attempt of a due delivery; return its outcome (or why none ran).

    The claim is a conditional UPDATE (pending, due) that moves ``next_attempt_at`` to
    the lease's end and counts the attempt: a redelivered task, the sweep's copy or a
    second worker updates 0 rows and stops. The result is written only if the row still
    has this attempt's number (fencing against a stale worker whose lease ran out).
    """
    now = timezone.now()
    with _lazy_commit():
        claimed = Delivery.objects.filter(
            pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now
        ).update(next_attempt_at=now + LEASE, attempts=F("attempts") + 1)
    if not claimed:
        return "not_due"
    delivery = Delivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    if not subscription.enabled:
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.CANCELLED, finished_at=now, last_error="subscription disabled"
        )
        return "cancelled"
    number = delivery.attempts
    body = delivery.body
    started = timezone.now()
    if number == 1 and delivery.replay_of_id is None:
        metrics.WEBHOOK_FIRST_ATTEMPT_DELAY_SECONDS.observe(
            max(0.0, (started - delivery.event_at).total_seconds())
        )
    try:
        # Resolved and checked at every attempt: DNS may point elsewhere since creation.
        target = ssrf.check_url(subscription.url, allowlist())
    except ssrf.UnsafeDestination as exc:
        answer, outcome = ssrf.Answer(None, b"", f"refused: {exc}", 0.0), "refused"
    else:
        headers = signed_headers(
            secret=subscription.secret, msg_id=delivery.msg_id, body=body, at=started
        )
        answer = ssrf.post(target, body.encode("utf-8"), headers)
        outcome = _outcome(answer)
    metrics.WEBHOOK_ATTEMPTS_TOTAL.labels(outcome=outcome).inc()
    metrics.WEBHOOK_ATTEMPT_SECONDS.observe(answer.seconds)
    _record(delivery, subscription, number, started, answer, outcome, body)
    return outcome


@contextmanager
def _lazy_commit():
    """A transaction whose commit does not wait for the WAL flush (PostgreSQL).

    Safe for attempt bookkeeping only: if the database crashes before the flush, the
    claim or the result is lost and the delivery is simply due again: one more send
    with the same webhook-id, which at-least-once allows. Waiting for two flushes per
    attempt capped a worker at a few dozen attempts a second on a busy disk.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        yield


def _outcome(answer: ssrf.Answer) -> str:
    if answer.status is None:
        return "no_answer"
    if 200 <= answer.status < 300:
        return "delivered"
    if answer.status == 410:
        return "gone"
    return "http_error"


def _record(delivery, subscription, number, started, answer, outcome, body) -> None:
    now = timezone.now()
    error = answer.error or ("" if outcome == "delivered" else f"HTTP {answer.status}")
    fields = {"last_status_code": answer.status, "last_error": error[:200]}
    if number == 1:
        fields["first_attempt_at"] = started
    retry_in = None
    if outcome == "delivered":
        fields.update(status=Delivery.Status.DELIVERED, finished_at=now, next_attempt_at=None)
    elif outcome == "gone":
        fields.update(status=Delivery.Status.CANCELLED, finished_at=now, next_attempt_at=None)
    else:
        retry_in = schedule.next_delay(number)
        if retry_in is None:
            fields.update(status=Delivery.Status.FAILED, finished_at=now, next_attempt_at=None)
        else:
            fields["next_attempt_at"] = now + timedelta(seconds=retry_in)
    with _lazy_commit():
        Attempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=started,
            duration_ms=int(answer.seconds * 1000),
            status_code=answer.status,
            outcome=outcome,
            error=error[:200],
            request_excerpt=payloads.redacted(body),
            response_excerpt=payloads.excerpt(answer.body),
        )
        written = Delivery.objects.filter(
            pk=delivery.pk, attempts=number, status=Delivery.Status.PENDING
        ).update(**fields)
        if outcome == "delivered":
            Subscription.objects.filter(pk=subscription.pk, failing_since__isnull=False).update(
                failing_since=None
            )
        elif outcome != "gone":
            # The auto-disable clock starts at the first failure after a success.
            Subscription.objects.filter(pk=subscription.pk, failing_since__isnull=True).update(
                failing_since=started
            )
    if outcome == "gone":
        subscription_disable(subscription=subscription, reason=Subscription.DisabledReason.GONE)
    elif written and retry_in is not None and retry_in <= COUNTDOWN_MAX:
        enqueue([delivery.pk], countdown=retry_in)


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
