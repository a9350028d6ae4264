"""Hand-written statements of the hot paths (callback ingest, API authentication, audit).

With CONN_HEALTH_CHECKS, Django sends ``SELECT 1`` before the first query of each
request: a round trip, about as costly as the real statement when a request runs only
one or two (bench/callbacks.py, bench/token_api.py). A statement run by
fetch_one_rerunnable is that check instead: if the connection turns out to be dead,
it is replaced and the statement runs once more. Only statements whose second run
cannot do harm may go through it (a read, an upsert on a unique key); others run
after one that did, or after Django's own check.

Measured and rejected: binding parameters server-side and preparing the statements
(psycopg ``prepare=True``). It saved client CPU in isolation but cost throughput under
gunicorn: PostgreSQL switches prepared statements to generic plans, and the token
endpoint's key lookup got slower (bench/token_api.py: 0.27 → 0.23).
"""

from __future__ import annotations

from collections.abc import Sequence

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
    connection = connections[alias]
    if connection.in_atomic_block:  # a transaction is under way: the check is long done
        return _run(connection, sql, params), False
    connection.health_check_done = True  # this statement is the check (see above)
    try:
        return _run(connection, sql, params), False
    except (OperationalError, InterfaceError):
        connection.close()
        return _run(connection, sql, params), True


def _run(connection, sql: str, params: Sequence):
    with connection.cursor() as cursor:  # connects if needed; joins any transaction
        cursor.execute(sql, params)
        return cursor.fetchone() if cursor.description else None
