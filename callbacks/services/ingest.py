"""Ingest: the request path of a callback, from verification to a stored row.

The request path verifies, decrypts, stores one row and answers: no WeCom call, no
task execution, and no dependency on Redis (enqueueing is best effort after the
commit; the sweeper catches up). A row that cannot be committed makes the answer an
error, never ``success``, so WeCom retries.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError
from django.db import InterfaceError
from django.db import OperationalError
from django.db import connections
from django.db import router
from django.db import transaction
from django.utils import timezone

from callbacks import binding
from callbacks.groupcommit import GroupCommit
from callbacks.handoff import handoff
from callbacks.models import CallbackEvent
from callbacks.rejections import binding_rejection_count
from callbacks.routes import Route
from callbacks.routes import route_for
from tenants.models import Authorization
from wecom import messages
from wecom.crypto import CallbackCryptoError
from wecom.crypto import InvalidSignature
from wecom.crypto import ReceiveIdMismatch
from wecom_provider import hotsql

logger = logging.getLogger(__name__)

# Auth codes expire in 10 minutes: these rows jump the queue.
PRIORITY_TYPES = frozenset({"create_auth", "reset_permanent_code"})


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
