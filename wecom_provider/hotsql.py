"""Hand-written statements of the hot paths (callback ingest, API authentication, audit).

With CONN_HEALTH_CHECKS, Django sends ``SELECT 1`` before the first query of each
request: a round trip, about as costly as the real statement when a request runs only
one or two (bench/callbacks.py, bench/token_api.py). A statement run by
fetch_one_rerunnable is that check instead: if the connection turns out to be dead,
it is replaced and the statement runs once more. Only statements whose second run
cannot do harm may go through it (a read, an upsert on a unique key); others run
after one that did, or after Django's own check.

On PostgreSQL these statements bind their parameters server-side (psycopg's plain
``Cursor``, an unnamed statement), not client-side as Django's cursors do: PostgreSQL
then receives the values apart from the text instead of lexing them as literals. For
the callback upsert, whose sealed payload is a kilobyte of text, that halves
PostgreSQL's CPU per statement and saves a third of the client's (issue 17's note).
An unnamed statement lives only until the next one, so this is safe behind PgBouncer
in transaction pooling. Django's query log still sees them: with ``queries_logged``
(DEBUG, CaptureQueriesContext) they go through Django's cursor as before.

Measured and rejected: preparing the statements (psycopg ``prepare=True``). It saved
client CPU in isolation but cost throughput under gunicorn: PostgreSQL switches
prepared statements to generic plans, and the token endpoint's key lookup got slower
(bench/token_api.py: 0.27 → 0.23); PgBouncer's transaction pooling forbids them too.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from django.db import InterfaceError
from django.db import OperationalError
from django.db import connections


def fetch_one(sql: str, params: Sequence, *, alias: str = "default"):
    """Run ``sql`` and return its first row (None if it returns none)."""
    return _run(connections[alias], sql, params)


def fetch_one_rerunnable(sql: str, params: Sequence, *, alias: str = "default"):
    """Run ``sql``, which may run twice, as the connection's health check.

    Returns (first row, rerun): ``rerun`` is True when the connection was dead and the
    statement ran again on a new one (its first run may or may not have happened).
    """
    return _rerunnable(connections[alias], sql, params, many=False)


def fetch_all_rerunnable(sql: str, params: Sequence, *, alias: str = "default"):
    """As fetch_one_rerunnable, returning every row: (rows, rerun)."""
    return _rerunnable(connections[alias], sql, params, many=True)


def _rerunnable(connection, sql: str, params: Sequence, *, many: bool):
    if connection.in_atomic_block:  # a transaction is under way: the check is long done
        return _run(connection, sql, params, many=many), False
    connection.health_check_done = True  # this statement is the check (see above)
    try:
        return _run(connection, sql, params, many=many), False
    except (OperationalError, InterfaceError):
        connection.close()
        return _run(connection, sql, params, many=many), True


def _fetch(cursor, many: bool):
    if not cursor.description:
        return [] if many else None
    return cursor.fetchall() if many else cursor.fetchone()


def _run(connection, sql: str, params: Sequence, *, many: bool = False):
    if connection.vendor != "postgresql" or connection.queries_logged:
        with connection.cursor() as cursor:  # connects if needed; joins any transaction
            cursor.execute(sql, params)
            return _fetch(cursor, many)
    # What connection.cursor() and CursorWrapper.execute() do, around a server-binding
    # cursor: health check (unless done), connect, the same-thread and broken-atomic
    # guards, and psycopg errors raised as Django's (which also marks the connection
    # for the end-of-request check).
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        cursor = _server_cursor(connection)
        cursor.execute(sql, params)
        return _fetch(cursor, many)


def _server_cursor(connection) -> psycopg.Cursor:
    """This connection's server-binding cursor, made once per PostgreSQL connection.

    Reused because creating and closing a psycopg cursor costs a third of running a
    one-row statement on it. Django's connection objects belong to one thread, and so
    does this cursor; a new PostgreSQL connection (reconnect) gets a new one.
    """
    raw = connection.connection
    cursor = getattr(connection, "_hotsql_cursor", None)
    if cursor is None or cursor.connection is not raw:
        cursor = psycopg.Cursor(raw)
        connection._hotsql_cursor = cursor
    return cursor
