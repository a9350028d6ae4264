"""Processing inbox rows: claim (one worker per row), run the handler, record the outcome."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db import connections
from django.db import router
from django.db import transaction
from django.db.models import F
from django.db.models import Q
from django.utils import timezone

from callbacks.dispatch import FEED_PREFIXES
from callbacks.dispatch import HANDLERS
from callbacks.dispatch import TRANSIENT_ERRORS
from callbacks.dispatch import dispatch
from callbacks.dispatch import feed_many
from callbacks.models import CallbackEvent
from wecom import messages
from wecom_provider.backoff import backoff
from wecom_provider.commits import lazy_commit
from wecom_provider.observability import remember_secret

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# Payload fields that are credentials: kept out of log lines by value while processed.
SECRET_EVENT_FIELDS = ("AuthCode", "SuiteTicket", "WelcomeCode", "ResponseCode")


def _backoff(attempts: int) -> timedelta:
    # 10 s, 20 s, 40 s … up to 10 minutes, ±20 %.
    return backoff(attempts - 1, base=10, cap=600, jitter=(0.8, 1.2))


def callback_process(*, event_id: int) -> str | None:
    """Process one inbox row if it is due; return its new status (None if not claimed).

    Claiming is a conditional UPDATE, so two workers (a redelivery, the sweeper's
    duplicate) cannot both run the handler; a handler running twice after a crash is
    fine too, handlers are idempotent.
    """
    now = timezone.now()
    claimed = (
        CallbackEvent.objects.filter(pk=event_id, status=CallbackEvent.Status.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=CallbackEvent.Status.PROCESSING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    row = CallbackEvent.objects.get(pk=event_id)
    updates = _process_claimed_row(row, savepoint=False)
    CallbackEvent.objects.filter(pk=row.pk, status=CallbackEvent.Status.PROCESSING).update(
        **updates
    )
    return updates["status"]


def callback_process_local_batch(*, event_ids: list[int], also_waiting: int = 0) -> set[int]:
    """Process, in one transaction, the rows among ``event_ids`` whose handling only
    writes our own tables (contact-family events onto the product feed); return the ids
    handled (claimed and finished here). The caller runs the others one by one.

    ``also_waiting``: take up to this many other such rows that are waiting (due and
    pending, oldest first) into the same batch. A message then stands for "rows are
    waiting" rather than for its own ids only, so batches grow when the workers fall
    behind: at 50 callbacks/s the web processes hand off ~20 small batches a second,
    and running each as its own transaction kept two worker processes busy full time
    while events queued behind them for seconds (bench/webhooks.py). A message whose
    rows another batch took finds nothing to claim: one short transaction.

    On durable storage each commit waits for a WAL flush; processing a contact event
    row by row costs three (claim, feed entry, final status). Here a batch costs one:
    every feed entry and final status are committed together, and the claim's commit
    does not wait for the disk (below).

    - The claim is a ``SELECT … FOR UPDATE SKIP LOCKED`` of due pending rows, turned
      into ``processing`` before the commit: a row claimed elsewhere (a redelivered
      message, the sweeper's duplicate) is skipped, never run twice at once. Lost in a
      database crash, the claim leaves the rows pending, for the sweeper; the durable
      commit of their processing, later, flushes it too (the log is written in order).
    - The feed entries of the batch are written together (callbacks.dispatch.feed_many:
      one statement, and one of the webhook deliveries they make). Should that fail,
      it is undone and each row runs alone under its own savepoint, so one bad row
      fails alone; the handlers are the same idempotent ones (the feed entry is keyed
      by the row's dedupe key).
    - If the processing transaction itself fails (the database went away), nothing of
      it is kept: the rows stay ``processing`` and the sweeper hands them out again
      after STALE_PROCESSING, as for a worker that died.
    """
    local_types = [t for t in FEED_PREFIXES if t not in HANDLERS]
    if not event_ids:
        return set()
    now = timezone.now()
    claimable = (
        CallbackEvent.objects.select_for_update(skip_locked=True)
        .filter(status=CallbackEvent.Status.PENDING, info_type__in=local_types)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("pk")
    )
    with lazy_commit():
        rows = list(claimable.filter(pk__in=event_ids))
        if also_waiting > 0:
            # The pending rows are few (the partial index callback_due holds only them).
            rows += claimable.exclude(pk__in=[row.pk for row in rows])[:also_waiting]
            rows.sort(key=lambda row: row.pk)
        if not rows:
            return set()
        CallbackEvent.objects.filter(pk__in=[row.pk for row in rows]).update(
            status=CallbackEvent.Status.PROCESSING, claimed_at=now, attempts=F("attempts") + 1
        )
    for row in rows:
        row.status, row.claimed_at, row.attempts = (
            CallbackEvent.Status.PROCESSING,
            now,
            row.attempts + 1,
        )
    with transaction.atomic():
        together = _feed_together(rows)
        for row in rows:
            if row.pk not in together:
                _process_claimed_row(row, savepoint=True)
        _finish_rows(rows)
    return {row.pk for row in rows}


def _feed_together(rows: list[CallbackEvent]) -> set[int]:
    """Run the rows that only go to the feed as one publish (inside the caller's
    transaction); set their final fields and return their ids. Rows it cannot take (a
    payload that does not parse, a handler to run) are left to the caller; if the
    publish fails, it is undone and nothing is taken."""
    started = time.monotonic()
    pairs = []
    for row in rows:
        try:
            event = messages.parse_event(row.payload)
        except Exception:  # noqa: S112 - _process_claimed_row fails it, with the reason
            continue
        for field in SECRET_EVENT_FIELDS:
            if value := event.raw.get(field):
                remember_secret(str(value))
        pairs.append((event, row))
    try:
        with transaction.atomic():  # a savepoint: a failure undoes the batch's publish only
            outcomes = feed_many(pairs)
    except Exception as exc:
        logger.warning(
            "publishing %s callbacks together failed (%s); running them one by one",
            len(pairs),
            type(exc).__name__,
        )
        return set()
    # The rows' share of the batch (they ran together, not one after another).
    duration_ms = (time.monotonic() - started) * 1000 / max(1, len(outcomes))
    finished = timezone.now()
    for row in rows:
        outcome = outcomes.get(row.pk)
        if outcome is None:
            continue
        row.status, row.result, row.last_error = outcome.status, outcome.result[:300], ""
        row.processed_at, row.duration_ms = finished, duration_ms
    return set(outcomes)


_FINISH_FIELDS = (
    "status",
    "result",
    "last_error",
    "processed_at",
    "next_attempt_at",
    "dispatched_at",
    "duration_ms",
)


def _finish_rows(rows: list[CallbackEvent]) -> None:
    """Write each row's final fields in one statement.

    Django's bulk_update builds a CASE per field and row, which cost the worker about
    as much CPU as the handlers themselves (profiled); on PostgreSQL one UPDATE joins
    the rows to parameter arrays instead. SQLite (make run) keeps bulk_update.
    """
    connection = connections[router.db_for_write(CallbackEvent)]
    if connection.vendor != "postgresql":
        CallbackEvent.objects.bulk_update(rows, list(_FINISH_FIELDS))
        return
    table = CallbackEvent._meta.db_table
    columns = {f.attname: f.column for f in CallbackEvent._meta.concrete_fields}
    types = {
        "status": "text",
        "result": "text",
        "last_error": "text",
        "processed_at": "timestamptz",
        "next_attempt_at": "timestamptz",
        "dispatched_at": "timestamptz",
        "duration_ms": "float8",
    }
    assignments = ", ".join(f'"{columns[name]}" = v."{name}"' for name in _FINISH_FIELDS)
    arrays = ", ".join(f"%s::{types[name]}[]" for name in _FINISH_FIELDS)
    aliases = ", ".join(f'"{name}"' for name in _FINISH_FIELDS)
    # Only model metadata goes into the text; every value is a parameter.
    sql = (
        f'UPDATE "{table}" AS e SET {assignments} '  # noqa: S608
        f'FROM unnest(%s::bigint[], {arrays}) AS v("id", {aliases}) WHERE e."id" = v."id"'
    )
    params = [[row.pk for row in rows]]
    params += [[getattr(row, name) for row in rows] for name in _FINISH_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _process_claimed_row(row: CallbackEvent, *, savepoint: bool) -> dict:
    """Run the handler of a row this worker claimed; set and return its final fields.

    ``savepoint``: run the handler in a savepoint of the caller's transaction, so that
    its failure undoes its own writes only.
    """
    started = time.monotonic()
    updates: dict = {}
    try:
        event = messages.parse_event(row.payload)
        for field in SECRET_EVENT_FIELDS:
            if value := event.raw.get(field):
                remember_secret(str(value))
        if savepoint:
            with transaction.atomic():
                outcome = dispatch(event, row, process=callback_process)
        else:
            outcome = dispatch(event, row, process=callback_process)
    except TRANSIENT_ERRORS as exc:
        error = _describe(exc)
        if row.attempts >= MAX_ATTEMPTS:
            updates = {"status": CallbackEvent.Status.FAILED, "last_error": error}
        else:
            updates = {
                "status": CallbackEvent.Status.PENDING,
                "last_error": error,
                "next_attempt_at": timezone.now() + _backoff(row.attempts),
                "dispatched_at": None,
            }
        logger.warning("callback %s attempt %s failed transiently: %s", row.pk, row.attempts, error)
    except Exception as exc:
        updates = {"status": CallbackEvent.Status.FAILED, "last_error": _describe(exc)}
        logger.warning("callback %s (%s) failed: %s", row.pk, row.info_type, updates["last_error"])
    else:
        updates = {
            "status": outcome.status,
            "result": outcome.result[:300],
            "last_error": "",
            "processed_at": timezone.now(),
        }
    updates["duration_ms"] = (time.monotonic() - started) * 1000
    for name, value in updates.items():
        setattr(row, name, value)
    return updates


def _describe(exc: BaseException) -> str:
    # Our exceptions and WeCom's (scrubbed) carry ids and errcodes, never secrets.
    return f"{type(exc).__name__}: {exc}"[:500]
