"""Ingest (the request path), processing, sweeping, replay and retention of callbacks.

The request path verifies, decrypts, stores one row and answers: no WeCom call, no
task execution, and no dependency on Redis (enqueueing is best effort after the
commit; the sweeper catches up). A row that cannot be committed makes the answer an
error, never ``success``, so WeCom retries.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db import IntegrityError
from django.db import InterfaceError
from django.db import OperationalError
from django.db import connections
from django.db import router
from django.db import transaction
from django.db.models import F
from django.db.models import Q
from django.utils import timezone

from callbacks import binding
from callbacks.groupcommit import GroupCommit
from callbacks.handoff import MAX_BATCH
from callbacks.handoff import handoff
from callbacks.models import CallbackEvent
from callbacks.models import CallbackRejection
from callbacks.routes import Route
from callbacks.routes import route_for
from tenants.models import Authorization
from wecom import messages
from wecom.crypto import CallbackCryptoError
from wecom.crypto import InvalidSignature
from wecom.crypto import ReceiveIdMismatch
from wecom_provider import hotsql
from wecom_provider.commits import lazy_commit
from wecom_provider.observability import metrics
from wecom_provider.observability import remember_secret

logger = logging.getLogger(__name__)

# Auth codes expire in 10 minutes: these rows jump the queue.
PRIORITY_TYPES = frozenset({"create_auth", "reset_permanent_code"})
# A claimed row untouched this long belongs to a worker that died.
STALE_PROCESSING = timedelta(minutes=5)
# Rows the request already enqueued get this long before the sweeper enqueues them again.
SWEEP_GRACE = timedelta(seconds=30)
MAX_ATTEMPTS = 8
# Payload fields that are credentials: kept out of log lines by value while processed.
SECRET_EVENT_FIELDS = ("AuthCode", "SuiteTicket", "WelcomeCode", "ResponseCode")


class Rejected(Exception):
    """The callback is refused; ``reason`` is a metric label, ``status`` the HTTP code."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Stored:
    event_id: int
    duplicate: bool
    # Stored as rejected (callbacks/binding.py): the reason, else "".
    rejected: str = ""


# --- ingest -----------------------------------------------------------------------------


def _route(endpoint: str, route_id: str) -> Route:
    try:
        route = route_for(endpoint, route_id)
    except DatabaseError:
        raise  # the view answers 503: WeCom must retry
    if route is None:
        raise Rejected("unknown_route", 404)
    return route


def _check_timestamp(timestamp: str) -> None:
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        raise Rejected("stale_timestamp", 403) from None
    if abs(time.time() - sent) > settings.CALLBACK_TIMESTAMP_TOLERANCE:
        raise Rejected("stale_timestamp", 403)


def _signed_params(query) -> tuple[str, str, str]:
    signature = query.get("msg_signature", "")
    timestamp = query.get("timestamp", "")
    nonce = query.get("nonce", "")
    if (
        not (signature and timestamp and nonce)
        or max(map(len, (signature, timestamp, nonce))) > 128
    ):
        raise Rejected("bad_signature", 403)
    return signature, timestamp, nonce


def _with_fresh_route(endpoint: str, route_id: str, attempt):
    """Return attempt(route); on a crypto refusal, retry once with keys read afresh."""
    try:
        return attempt(_route(endpoint, route_id))
    except Rejected as exc:
        if exc.reason not in {"bad_signature", "bad_ciphertext", "receive_id_mismatch"}:
            raise
        fresh = route_for(endpoint, route_id, fresh=True)
        if fresh is None:
            raise Rejected("unknown_route", 404) from None
        return attempt(fresh)


def callback_verify_url(*, endpoint: str, route_id: str, query) -> str:
    """Return the echostr plaintext for WeCom's GET URL verification."""
    signature, timestamp, nonce = _signed_params(query)
    # Query parsing may have turned '+' into ' ' (protocol §7.2): the crypto restores it.
    echostr = query.get("echostr", "")
    if not echostr:
        raise Rejected("malformed", 400)
    _check_timestamp(timestamp)

    def attempt(route: Route) -> str:
        try:
            return route.crypto.verify_url(
                signature, timestamp, nonce, echostr, receive_ids=route.get_receive_ids()
            )
        except InvalidSignature:
            raise Rejected("bad_signature", 403) from None
        except ReceiveIdMismatch:
            raise Rejected("receive_id_mismatch", 403) from None
        except CallbackCryptoError:
            raise Rejected("bad_ciphertext", 403) from None

    return _with_fresh_route(endpoint, route_id, attempt)


def callback_ingest(
    *, endpoint: str, route_id: str, query, body: bytes, started: float | None = None
) -> Stored:
    """Verify, decrypt and store one POSTed callback; return the stored row's id.

    Raises Rejected (nothing stored) or DatabaseError (nothing stored; answer 503).
    """
    if len(body) > settings.CALLBACK_MAX_BODY_BYTES:
        raise Rejected("too_large", 413)
    try:
        envelope = messages.parse_envelope(body, max_bytes=settings.CALLBACK_MAX_BODY_BYTES)
    except messages.MessageError:
        raise Rejected("malformed", 400) from None
    signature, timestamp, nonce = _signed_params(query)

    def attempt(route: Route) -> tuple[Route, str, str]:
        # Signature first (constant time, inside the crypto), then freshness, then decrypt.
        try:
            route.crypto.check_signature(signature, timestamp, nonce, envelope.encrypt)
        except InvalidSignature:
            raise Rejected("bad_signature", 403) from None
        _check_timestamp(timestamp)
        accepted = route.post_receive_ids(envelope.to_user_name)
        try:
            plaintext, receive_id = route.crypto.decrypt_with_receive_id(
                signature,
                timestamp,
                nonce,
                envelope.encrypt,
                receive_ids=accepted if accepted is not None else {envelope.to_user_name},
            )
        except ReceiveIdMismatch:
            raise Rejected("receive_id_mismatch", 403) from None
        except CallbackCryptoError:
            raise Rejected("bad_ciphertext", 403) from None
        return route, plaintext, receive_id

    route, plaintext, receive_id = _with_fresh_route(endpoint, route_id, attempt)
    try:
        # Authentic (it decrypted) but not XML: refused, as WeCom never sends that.
        # Type-specific fields are checked by processing, which marks a bad row failed
        # and visible in admin instead of losing it.
        event = messages.parse_event_header(plaintext)
    except messages.MessageError:
        raise Rejected("bad_payload", 400) from None
    if route.post_receive_ids(envelope.to_user_name) is None and not _corp_may_send(
        route, receive_id
    ):
        raise Rejected("receive_id_mismatch", 403)
    violation = binding.header_violation(
        endpoint=route.endpoint, route_id=route.route_id, receive_id=receive_id, event=event
    )
    return _store(route, receive_id, plaintext, event, started=started, violation=violation)


def _corp_may_send(route: Route, corpid: str) -> bool:
    """Data URL: the receive id must be a corp that authorized (or is authorizing) the suite."""
    if not corpid:
        return False
    if Authorization.objects.filter(suite__suite_id=route.suite_id, corp__corpid=corpid).exists():
        return True
    # A create_auth still in the inbox: the corp is not known until it is processed.
    return CallbackEvent.objects.filter(
        suite_id=route.suite_id,
        info_type="create_auth",
        status__in=[CallbackEvent.Status.PENDING, CallbackEvent.Status.PROCESSING],
    ).exists()


def _dedupe_key(route: Route, receive_id: str, plaintext: str) -> str:
    # WeCom's retries re-encrypt the same payload (new random prefix, new Encrypt), so
    # the key is built from the plaintext, which retries repeat byte for byte.
    material = f"{route.endpoint}|{route.route_id}|{receive_id}|{plaintext.strip()}"
    return hashlib.sha256(material.encode()).hexdigest()


def _store(
    route: Route,
    receive_id: str,
    plaintext: str,
    event: messages.Event,
    *,
    started: float | None,
    violation: binding.Violation | None = None,
) -> Stored:
    dedupe_key = _dedupe_key(route, receive_id, plaintext)
    priority = event.info_type in PRIORITY_TYPES
    # A callback naming objects outside its URL is kept (ops can see it) and decided:
    # never handed to a worker.
    decided = (
        {
            "status": CallbackEvent.Status.REJECTED,
            "result": violation.describe(),
            "processed_at": timezone.now(),
        }
        if violation is not None
        else {}
    )
    event_id, duplicates, reconnected = _insert_or_count(
        {
            **decided,
            "endpoint": route.endpoint,
            "route_id": route.route_id,
            "receive_id": receive_id[:128],
            "info_type": (event.info_type or "")[:64],
            "change_type": (event.change_type or "")[:64],
            "suite_id": (event.suite_id or route.suite_id or "")[:64],
            "corp_id": (event.auth_corp_id or "")[:128],
            "event_timestamp": event.timestamp,
            "dedupe_key": dedupe_key,
            "payload_sealed": CallbackEvent.payload.seal_for(dedupe_key, plaintext),
            "priority": priority,
            "received_at": timezone.now(),
            # Time from receiving the request to storing it (the commit adds a little).
            "ack_ms": (time.perf_counter() - started) * 1000 if started is not None else None,
        }
    )
    if violation is not None:
        if not duplicates:
            binding_rejection_count(route, event, violation)
        return Stored(event_id, duplicate=bool(duplicates), rejected=violation.reason)
    if duplicates and not reconnected:
        # A retry or replay of a stored callback: acknowledged, nothing new stored.
        return Stored(event_id, duplicate=True)
    # Outside a transaction (the request path) this runs at once: the row is committed.
    # After a reconnect the row may be ours from the lost attempt: hand it off anyway
    # (a row already processed is not claimed twice).
    transaction.on_commit(lambda: handoff.add(event_id, priority=priority))
    return Stored(event_id, duplicate=bool(duplicates) and not reconnected)


def binding_rejection_count(route: Route, event: messages.Event, violation) -> None:
    """Count a callback stored as rejected: per-minute counter and metric."""
    rejection_record(endpoint=route.endpoint, reason=violation.reason)
    metrics.CALLBACK_NOT_APPLIED_TOTAL.labels(
        endpoint=route.endpoint,
        info_type=(event.info_type or "")[:64],
        outcome="rejected",
        reason=violation.reason,
    ).inc()


def _insert_or_count(values: dict) -> tuple[int, int, bool]:
    """Insert a row with ``values`` (by attribute name; other fields take their defaults),
    or count one more delivery of the row that has its dedupe key.

    One upsert, so no IntegrityError, rollback and second query for a duplicate. Rows
    of concurrent requests share the statement (callbacks/groupcommit.py); inside a
    caller's transaction the row goes in alone, on that transaction. The statement is
    also the connection's health check (wecom_provider/hotsql.py): being an upsert on
    the dedupe key, it may run twice. Returns (id, duplicates, reconnected): 0
    duplicates means this call inserted the row; after a reconnect the row may be ours
    from the lost first run. PostgreSQL and SQLite ≥ 3.35 both speak it;
    tests/callbacks check the row field by field.
    """
    connection = connections[router.db_for_write(CallbackEvent)]
    if connection.in_atomic_block:
        (outcome,) = _upsert_rows([values])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
    return _inbox_group.submit(values)


def _upsert_rows(rows: list[dict]) -> list:
    """Store ``rows`` on this thread's connection: one outcome per row, (id,
    duplicates, reconnected) or the exception that kept it from being stored.

    One statement for rows with the same columns and distinct dedupe keys (a retry
    of a callback in the same batch waits for the next statement, where it counts as
    the duplicate it is). If PostgreSQL refuses a statement of several rows for
    something other than the connection, each row is tried alone.
    """
    connection = connections[router.db_for_write(CallbackEvent)]
    outcomes: list = [None] * len(rows)
    todo = list(range(len(rows)))
    while todo:
        names, keys, batch, later = tuple(rows[todo[0]]), set(), [], []
        for i in todo:
            if tuple(rows[i]) == names and rows[i]["dedupe_key"] not in keys:
                keys.add(rows[i]["dedupe_key"])
                batch.append(i)
            else:
                later.append(i)
        todo = later
        try:
            stored = _upsert(connection, names, [rows[i] for i in batch])
        except (OperationalError, InterfaceError) as exc:
            for i in batch:
                outcomes[i] = exc
            continue
        except DatabaseError as exc:
            if len(batch) == 1:
                outcomes[batch[0]] = exc
                continue
            # A row PostgreSQL refuses must not fail the rows it travelled with.
            for i in batch:
                try:
                    outcomes[i] = _upsert(connection, names, [rows[i]])[rows[i]["dedupe_key"]]
                except DatabaseError as alone:
                    outcomes[i] = alone
            continue
        for i in batch:
            outcomes[i] = stored[rows[i]["dedupe_key"]]
    return outcomes


def _upsert(connection, names: tuple[str, ...], rows: list[dict]) -> dict:
    """Run the upsert of ``rows`` (all with ``names``, distinct dedupe keys): return
    {dedupe key: (id, duplicates, reconnected)}."""
    params: list = []
    adapt = connection.ops.adapt_datetimefield_value
    for row in rows:
        for name in names:
            value = row[name]
            if name in ("received_at", "processed_at") and value is not None:
                value = adapt(value)
            params.append(value)
    sql = _insert_statement(names, len(rows))
    found, rerun = hotsql.fetch_all_rerunnable(sql, params, alias=connection.alias)
    return {key: (event_id, duplicates, rerun) for event_id, duplicates, key in found}


# Concurrent requests of this process share upserts (see callbacks/groupcommit.py).
_inbox_group = GroupCommit(_upsert_rows)


def _sql_literal(value) -> str:
    """A model default as SQL text: constants of the model only, never request data."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # '%' is doubled: both drivers read the text as a %s-parameter template.
        return "'" + value.replace("'", "''").replace("%", "%%") + "'"
    raise TypeError(f"no SQL literal for a {type(value).__name__} default")


@functools.cache
def _insert_statement(names: tuple[str, ...], rows: int = 1) -> str:
    """The upsert of ``rows`` rows given ``names`` (attribute names), as parameters in
    that order, row after row; every other column gets its model default written into
    the text. It returns each row's id, duplicates and dedupe key.

    Fewer parameters are cheaper for both sides to bind (bench/callbacks.py). Only
    model metadata and the model's constant defaults go into the text; every value
    from a request is a parameter. A few variants exist: callers pass fixed sets of
    names, and a batch holds at most GroupCommit's max_batch rows.
    """

    def quote(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'  # both vendors quote names alike

    fields = {f.attname: f for f in CallbackEvent._meta.concrete_fields if not f.primary_key}
    unknown = set(names) - set(fields)
    if unknown:
        raise ValueError(f"not CallbackEvent columns: {sorted(unknown)}")
    rest = [f for name, f in fields.items() if name not in names]
    for field in rest:
        if field.has_default() and callable(field.default):
            raise ValueError(f"{field.attname} has a computed default: pass a value")
    table = quote(CallbackEvent._meta.db_table)
    columns = ", ".join(quote(f.column) for f in [*(fields[n] for n in names), *rest])
    row = "(" + ", ".join(["%s"] * len(names) + [_sql_literal(f.get_default()) for f in rest])
    values = ", ".join([row + ")"] * rows)
    return (
        f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608
        f'ON CONFLICT ("dedupe_key") DO UPDATE SET "duplicates" = {table}."duplicates" + 1 '
        'RETURNING "id", "duplicates", "dedupe_key"'
    )


def rejection_record(*, endpoint: str, reason: str) -> None:
    """Count a rejection in this minute's bucket (best effort: never fails the answer)."""
    minute = timezone.now().replace(second=0, microsecond=0)
    try:
        with transaction.atomic():
            updated = CallbackRejection.objects.filter(
                minute=minute, endpoint=endpoint, reason=reason
            ).update(count=F("count") + 1)
            if not updated:
                CallbackRejection.objects.create(
                    minute=minute, endpoint=endpoint, reason=reason, count=1
                )
    except IntegrityError:
        CallbackRejection.objects.filter(minute=minute, endpoint=endpoint, reason=reason).update(
            count=F("count") + 1
        )
    except DatabaseError:
        logger.warning("could not count a %s rejection", reason)


# --- enqueueing (best effort) ---------------------------------------------------------------

_broker_down_until = 0.0
BROKER_BACKOFF = 10.0  # s: after a failed publish, leave the broker alone for this long


def enqueue(event_id: int, *, priority: bool, countdown: float | None = None) -> bool:
    """Hand one row to a worker; return False (row stays pending for the sweeper) on failure."""
    from callbacks.tasks import process_callback

    return _publish(process_callback, [event_id], priority=priority, countdown=countdown)


def enqueue_batch(event_ids: list[int], *, priority: bool) -> bool:
    """Hand rows to a worker as one message (see callbacks/handoff.py); False on failure."""
    from callbacks.tasks import process_callbacks

    if not event_ids:
        return True
    return _publish(process_callbacks, [list(event_ids), priority], priority=priority)


def _publish(task, args: list, *, priority: bool, countdown: float | None = None) -> bool:
    """Publish ``task``; a circuit breaker keeps a dead broker from slowing every caller.

    After one failure, publishing is skipped for BROKER_BACKOFF seconds.
    """
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        return False
    try:
        task.apply_async(
            args=args,
            queue="priority" if priority else "default",
            countdown=countdown,
            retry=False,
        )
    except Exception as exc:
        _broker_down_until = time.monotonic() + BROKER_BACKOFF
        logger.warning("broker unavailable (%s); the sweeper will dispatch", type(exc).__name__)
        return False
    return True


# --- processing -----------------------------------------------------------------------------


def _backoff(attempts: int) -> timedelta:
    base = min(600, 10 * 2 ** max(0, attempts - 1))
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


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
    from callbacks.dispatch import FEED_PREFIXES
    from callbacks.dispatch import HANDLERS

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
    from callbacks.dispatch import feed_many

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
    from callbacks.dispatch import TRANSIENT_ERRORS
    from callbacks.dispatch import dispatch

    started = time.monotonic()
    updates: dict = {}
    try:
        event = messages.parse_event(row.payload)
        for field in SECRET_EVENT_FIELDS:
            if value := event.raw.get(field):
                remember_secret(str(value))
        if savepoint:
            with transaction.atomic():
                outcome = dispatch(event, row)
        else:
            outcome = dispatch(event, row)
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


# --- sweeping, replay, retention -----------------------------------------------------------


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
