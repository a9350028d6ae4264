"""Writes of the webhooks app: subscriptions, deliveries and their attempts, replays,
the sweep, and feed retention.

Delivery is at least once. A delivery row is created in the same transaction as its
feed entry (the ``tenants.feed`` publish hook), so no event is lost between the feed
and the push; after commit its first attempt is enqueued on the ``webhooks`` queue at
once (no beat tick in the way: the first attempt must leave within 2 s). The beat sweep
hands out retries that are due and anything whose message the broker lost.

Everything on the way to a first attempt works in batches, because at a few dozen
events a second the per-event overheads (a Celery message, a claim, a commit, a
subscription lookup) were what filled the CPU and queued events behind each other
(bench/webhooks.py): a callback batch's deliveries are written in one statement and
sent as one message, and the webhooks worker claims, sends (concurrently) and records
a message's deliveries together.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from django.conf import settings
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
from wecom_provider.broker import BestEffortPublisher
from wecom_provider.commits import lazy_commit
from wecom_provider.observability import metrics
from wecom_provider.observability import remember_secret

logger = logging.getLogger(__name__)

QUEUE = "webhooks"
# Deliveries per message, and threads sending a message's deliveries: every send of a
# batch starts at once (a prefork child runs one message at a time).
BATCH_MAX = 16
SEND_THREADS = BATCH_MAX
# The attempt task's hard time limit (webhooks/tasks.py): far above one batch, whose
# sends run side by side, each ending within ssrf.ATTEMPT_DEADLINE.
ATTEMPT_TIME_LIMIT = 40
# An attempt holds its delivery this long; a worker that dies mid-attempt lets the sweep
# take the row after it. Longer than the time limit: a batch still running when its
# lease ends was killed, so two attempts of one delivery never run at once.
LEASE = timedelta(seconds=ATTEMPT_TIME_LIMIT + 5)
# Retries sooner than this are enqueued with a countdown (punctual); later ones wait for
# the sweep, which runs every few seconds anyway.
COUNTDOWN_MAX = 5 * 60
REPLAY_RANGE_MAX = 10_000
MAX_PATTERNS = 50
PATTERN_RE = re.compile(r"^[a-z0-9_*?.\-]{1,64}$")
# webhooks/tasks.py registers them; published by name (wecom_provider/broker.py).
# enqueue publishes batches; the single-delivery task stays registered for messages
# published before batches (queued, or counting down, across an upgrade).
DELIVER_BATCH_TASK = "webhooks.deliver_batch"
DELIVER_TASK = "webhooks.deliver"
# After a failed publish, skip the broker for this long (the sweep delivers meanwhile).
BROKER_BACKOFF = 5.0
_publisher = BestEffortPublisher(backoff=BROKER_BACKOFF, fallback="the webhook sweep")


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
    rows = []
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


# --- attempts --------------------------------------------------------------------------------


def signed_headers(*, secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """Return the Standard Webhooks headers for ``body`` sent at ``at``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def delivery_attempt(*, delivery_id: int) -> str:
    """Make the next attempt of one due delivery; return its outcome (or why none ran)."""
    return deliveries_attempt(delivery_ids=[delivery_id])[delivery_id]


@dataclass
class _Try:
    """One attempt of a batch: what is sent, and what came back."""

    delivery: Delivery
    body: str
    target: ssrf.Target | None
    refusal: str  # why the SSRF guard refused the URL ("" if it did not)
    headers: dict[str, str]
    answer: ssrf.Answer | None = None
    outcome: str = ""


def deliveries_attempt(*, delivery_ids: list[int]) -> dict[int, str]:
    """Make the next attempt of each due delivery among ``delivery_ids``, all at once;
    return each id's outcome (``not_due`` for those not claimed here).

    - The claim is one conditional UPDATE (pending, due) that moves ``next_attempt_at``
      to the lease's end and counts the attempt: a redelivered task, the sweep's copy or
      a second worker finds the rows leased or finished and sends nothing. Its commit
      does not wait for the disk (wecom_provider/commits.py): lost in a database crash,
      the rows are simply due again, one more send with the same webhook-id.
    - The sends run concurrently (SEND_THREADS), so one slow receiver does not hold up
      the others' first attempts; each is bounded by ssrf.ATTEMPT_DEADLINE, so the whole
      batch ends well within its lease.
    - Results are written in one transaction, each only if its row still has this
      attempt's number (fencing against a stale worker whose lease ran out).
    """
    outcomes = dict.fromkeys(delivery_ids, "not_due")
    now = timezone.now()
    with lazy_commit():
        claimed = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(pk__in=delivery_ids, status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .values_list("pk", flat=True)
        )
        if claimed:
            Delivery.objects.filter(pk__in=claimed).update(
                next_attempt_at=now + LEASE, attempts=F("attempts") + 1
            )
    if not claimed:
        return outcomes
    deliveries = list(
        Delivery.objects.select_related("subscription").filter(pk__in=claimed).order_by("pk")
    )
    disabled = [d.pk for d in deliveries if not d.subscription.enabled]
    if disabled:
        Delivery.objects.filter(pk__in=disabled, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.CANCELLED, finished_at=now, last_error="subscription disabled"
        )
        outcomes.update(dict.fromkeys(disabled, "cancelled"))
    started = timezone.now()
    tries = _prepare([d for d in deliveries if d.subscription.enabled], started=started)
    _send(tries)
    for attempt in tries:
        outcomes[attempt.delivery.pk] = attempt.outcome
        metrics.WEBHOOK_ATTEMPTS_TOTAL.labels(outcome=attempt.outcome).inc()
        metrics.WEBHOOK_ATTEMPT_SECONDS.observe(attempt.answer.seconds)
    if tries:
        _record(tries, started=started)
    return outcomes


def _prepare(deliveries: list[Delivery], *, started: datetime) -> list[_Try]:
    """Check each URL (resolved once per batch, at attempt time: DNS may point elsewhere
    since the subscription was made) and sign each body."""
    checked: dict[str, ssrf.Target | ssrf.UnsafeDestination] = {}
    secrets_of: dict[int, str] = {}
    rules = allowlist()
    tries = []
    for delivery in deliveries:
        subscription = delivery.subscription
        if delivery.attempts == 1 and delivery.replay_of_id is None:
            metrics.WEBHOOK_FIRST_ATTEMPT_DELAY_SECONDS.observe(
                max(0.0, (started - delivery.event_at).total_seconds())
            )
        if subscription.url not in checked:
            try:
                checked[subscription.url] = ssrf.check_url(subscription.url, rules)
            except ssrf.UnsafeDestination as exc:
                checked[subscription.url] = exc
        target = checked[subscription.url]
        body = delivery.body
        if isinstance(target, ssrf.UnsafeDestination):
            tries.append(_Try(delivery, body, None, f"refused: {target}", {}))
            continue
        if subscription.pk not in secrets_of:
            secrets_of[subscription.pk] = subscription.secret
        headers = signed_headers(
            secret=secrets_of[subscription.pk], msg_id=delivery.msg_id, body=body, at=started
        )
        tries.append(_Try(delivery, body, target, "", headers))
    return tries


def _send(tries: list[_Try]) -> None:
    """POST every prepared attempt, concurrently when there are several; set answers."""
    sending = [t for t in tries if t.target is not None]
    if len(sending) == 1:
        only = sending[0]
        only.answer = ssrf.post(only.target, only.body.encode("utf-8"), only.headers)
    elif sending:
        pool = _sender_pool()
        futures = [
            pool.submit(ssrf.post, t.target, t.body.encode("utf-8"), t.headers) for t in sending
        ]
        for attempt, future in zip(sending, futures, strict=True):
            attempt.answer = future.result()
    for attempt in tries:
        if attempt.target is None:
            attempt.answer = ssrf.Answer(None, b"", attempt.refusal, 0.0)
            attempt.outcome = "refused"
        else:
            attempt.outcome = _outcome(attempt.answer)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _sender_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="webhook-send")
        return _pool


def _forget_pool() -> None:
    # A forked child (a Celery prefork worker) has the parent's pool object but none of
    # its threads: it makes its own on first use.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _outcome(answer: ssrf.Answer) -> str:
    if answer.status is None:
        return "no_answer"
    if 200 <= answer.status < 300:
        return "delivered"
    if answer.status == 410:
        return "gone"
    return "http_error"


def _record(tries: list[_Try], *, started: datetime) -> None:
    """Write the batch's attempts and results in one transaction, then act on them
    (disable on 410, enqueue near retries).

    The commit does not wait for the disk, as for the claim: lost in a database crash,
    a result leaves its delivery leased, and the sweep sends it again once the lease
    ends (same webhook-id; at least once allows it).
    """
    now = timezone.now()
    # Deliveries given the same fields (most often: delivered, first attempt) are
    # written by one UPDATE; the fence (attempts = this number) holds per row.
    groups: dict[tuple, list[int]] = {}
    retries: list[tuple[_Try, float]] = []
    gone: dict[int, Subscription] = {}
    succeeded: set[int] = set()
    failed: set[int] = set()
    log = []
    for attempt in tries:
        delivery, answer, outcome = attempt.delivery, attempt.answer, attempt.outcome
        number = delivery.attempts
        error = answer.error or ("" if outcome == "delivered" else f"HTTP {answer.status}")
        fields = {"last_status_code": answer.status, "last_error": error[:200]}
        if number == 1:
            fields["first_attempt_at"] = started
        retry_in = None
        if outcome == "delivered":
            fields.update(status=Delivery.Status.DELIVERED, finished_at=now, next_attempt_at=None)
            succeeded.add(delivery.subscription_id)
        elif outcome == "gone":
            fields.update(status=Delivery.Status.CANCELLED, finished_at=now, next_attempt_at=None)
            gone[delivery.subscription_id] = delivery.subscription
        else:
            failed.add(delivery.subscription_id)
            retry_in = schedule.next_delay(number)
            if retry_in is None:
                fields.update(status=Delivery.Status.FAILED, finished_at=now, next_attempt_at=None)
            else:
                fields["next_attempt_at"] = now + timedelta(seconds=retry_in)
                retries.append((attempt, retry_in))
        groups.setdefault((number, tuple(sorted(fields.items()))), []).append(delivery.pk)
        log.append(
            Attempt(
                delivery=delivery,
                number=number,
                started_at=started,
                duration_ms=int(answer.seconds * 1000),
                status_code=answer.status,
                outcome=outcome,
                error=error[:200],
                request_excerpt=payloads.redacted(attempt.body),
                response_excerpt=payloads.excerpt(answer.body),
            )
        )
    written: dict[int, int] = {}
    with lazy_commit():
        Attempt.objects.bulk_create(log)
        for (number, fields), ids in groups.items():
            count = Delivery.objects.filter(
                pk__in=ids, attempts=number, status=Delivery.Status.PENDING
            ).update(**dict(fields))
            if len(ids) == 1:
                written[ids[0]] = count
        if succeeded:
            # A success (any, in this batch) shows the receiver is up: the clock stops.
            Subscription.objects.filter(pk__in=succeeded, failing_since__isnull=False).update(
                failing_since=None
            )
        if failed - succeeded:
            # The auto-disable clock starts at the first failure after a success.
            Subscription.objects.filter(
                pk__in=failed - succeeded, failing_since__isnull=True
            ).update(failing_since=started)
    for subscription in gone.values():
        subscription_disable(subscription=subscription, reason=Subscription.DisabledReason.GONE)
    for attempt, retry_in in retries:
        if written.get(attempt.delivery.pk) and retry_in <= COUNTDOWN_MAX:
            enqueue([attempt.delivery.pk], countdown=retry_in)


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
