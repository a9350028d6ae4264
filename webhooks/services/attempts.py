"""Attempts: claim a message's deliveries, send them side by side, record the results
together (webhooks services)."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from webhooks import payloads
from webhooks import schedule
from webhooks import ssrf
from webhooks.models import Attempt
from webhooks.models import Delivery
from webhooks.models import Subscription
from webhooks.services.deliveries import BATCH_MAX
from webhooks.services.deliveries import COUNTDOWN_MAX
from webhooks.services.deliveries import enqueue
from webhooks.services.subscriptions import allowlist
from webhooks.services.subscriptions import subscription_disable
from wecom_provider.commits import lazy_commit
from wecom_provider.observability import metrics

logger = logging.getLogger(__name__)

# Threads sending a message's deliveries: every send of a batch starts at once (a
# prefork child runs one message at a time).
SEND_THREADS = BATCH_MAX
# The attempt task's hard time limit (webhooks/tasks.py): far above one batch, whose
# sends run side by side, each ending within ssrf.ATTEMPT_DEADLINE.
ATTEMPT_TIME_LIMIT = 40
# An attempt holds its delivery this long; a worker that dies mid-attempt lets the sweep
# take the row after it. Longer than the time limit: a batch still running when its
# lease ends was killed, so two attempts of one delivery never run at once.
LEASE = timedelta(seconds=ATTEMPT_TIME_LIMIT + 5)


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


# What a _Try holds until _send sets its answer (nothing reads it before).
NOT_SENT = ssrf.Answer(None, b"", "not sent", 0.0)


@dataclass
class _Try:
    """One attempt of a batch: what is sent, and what came back."""

    delivery: Delivery
    body: str
    target: ssrf.Target | None
    refusal: str  # why the SSRF guard refused the URL ("" if it did not)
    headers: dict[str, str]
    answer: ssrf.Answer = field(default_factory=lambda: NOT_SENT)  # set by _send
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
    sending = [(t, t.target) for t in tries if t.target is not None]
    if len(sending) == 1:
        only, target = sending[0]
        only.answer = ssrf.post(target, only.body.encode("utf-8"), only.headers)
    elif sending:
        pool = _sender_pool()
        futures = [
            pool.submit(ssrf.post, target, t.body.encode("utf-8"), t.headers)
            for t, target in sending
        ]
        for (attempt, _), future in zip(sending, futures, strict=True):
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
        fields: dict[str, Any] = {"last_status_code": answer.status, "last_error": error[:200]}
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
