"""The inbox over time: sweeping rows left behind, replay and quarantine, retention."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from callbacks.handoff import MAX_BATCH
from callbacks.models import CallbackEvent
from callbacks.models import CallbackRejection
from callbacks.queue import enqueue
from callbacks.queue import enqueue_batch

# A claimed row untouched this long belongs to a worker that died.
STALE_PROCESSING = timedelta(minutes=5)
# Rows the request already enqueued get this long before the sweeper enqueues them again.
SWEEP_GRACE = timedelta(seconds=30)


def inbox_sweep(*, limit: int = 500) -> int:
    """Enqueue rows left pending (broker down, lost message, dead worker); return the count.

    ``FOR UPDATE SKIP LOCKED``: two beats sweeping at once take disjoint rows.
    """
    now = timezone.now()
    due = (
        Q(status=CallbackEvent.Status.PENDING)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - SWEEP_GRACE))
        # Fresh rows were enqueued by the request itself; retries are due at once.
        & (Q(received_at__lt=now - SWEEP_GRACE) | Q(next_attempt_at__isnull=False))
    )
    stale = Q(status=CallbackEvent.Status.PROCESSING, claimed_at__lt=now - STALE_PROCESSING)
    with transaction.atomic():
        rows = list(
            CallbackEvent.objects.select_for_update(skip_locked=True)
            .filter(due | stale)
            .order_by("-priority", "received_at")
            .values_list("pk", "priority", "status")[:limit]
        )
        ids = [pk for pk, _, _ in rows]
        CallbackEvent.objects.filter(pk__in=[pk for pk, _, s in rows if s == "processing"]).update(
            status=CallbackEvent.Status.PENDING, next_attempt_at=None
        )
        CallbackEvent.objects.filter(pk__in=ids).update(dispatched_at=now)
    sent = 0
    for priority in (True, False):  # auth codes first
        ids = [pk for pk, p, _ in rows if p is priority]
        for start in range(0, len(ids), MAX_BATCH):
            chunk = ids[start : start + MAX_BATCH]
            if not enqueue_batch(chunk, priority=priority):
                return sent  # broker down: the next sweep tries again
            sent += len(chunk)
    return sent


def callback_replay(*, event: CallbackEvent) -> bool:
    """Queue a stored callback to be processed again (handlers are idempotent)."""
    updated = (
        CallbackEvent.objects.filter(pk=event.pk)
        .exclude(status=CallbackEvent.Status.PROCESSING)
        .update(
            status=CallbackEvent.Status.PENDING,
            next_attempt_at=None,
            dispatched_at=timezone.now(),
            last_error="",
        )
    )
    if updated:
        transaction.on_commit(lambda: enqueue(event.pk, priority=event.priority))
    return bool(updated)


def callback_quarantine(*, event: CallbackEvent) -> bool:
    """Take a callback out of processing for good (until replayed)."""
    return bool(
        CallbackEvent.objects.filter(pk=event.pk)
        .exclude(status=CallbackEvent.Status.PROCESSING)
        .update(status=CallbackEvent.Status.QUARANTINED)
    )


def inbox_prune(*, older_than: timedelta, batch: int = 1000) -> int:
    """Delete processed rows older than ``older_than`` in batches; return how many."""
    cutoff = timezone.now() - older_than
    finished = [
        CallbackEvent.Status.DONE,
        CallbackEvent.Status.IGNORED,
        CallbackEvent.Status.SUPERSEDED,
        CallbackEvent.Status.REJECTED,
    ]
    total = 0
    while True:
        ids = list(
            CallbackEvent.objects.filter(status__in=finished, processed_at__lt=cutoff).values_list(
                "pk", flat=True
            )[:batch]
        )
        if not ids:
            break
        total += CallbackEvent.objects.filter(pk__in=ids).delete()[0]
    CallbackRejection.objects.filter(minute__lt=cutoff).delete()
    return total
