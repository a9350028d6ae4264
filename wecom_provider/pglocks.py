"""PostgreSQL advisory locks that hold behind PgBouncer's transaction pooling.

A session-level ``pg_advisory_lock`` belongs to the server connection that ran it.
Behind a transaction pooler, our next statement (the unlock, or the work it guards)
may run on another server connection: the unlock fails, the lock stays held by a
pooled connection that some *other* client gets next, and as advisory locks are
re-entrant per session, that client walks straight through it.

So the lock here is ``pg_advisory_xact_lock`` inside a transaction on a connection of
its own, opened for the lock and closed with it: the transaction pins one server
connection for exactly as long as the lock is held, and ending it (commit, rollback,
or the process dying) releases the lock. The guarded work keeps using Django's
connection, with its own transactions, untouched: a caller that makes HTTP calls under
the lock does not hold a transaction open on its working connection.

Cost: one extra connection (one pooled server connection) per held lock. Callers use
it as a fallback or for rare, long-held locks, not on a hot path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connections


@contextlib.contextmanager
def advisory_lock(key: str, *, alias: str = "default") -> Iterator[None]:
    """Hold the advisory lock for ``key`` (text, hashed server-side) across processes."""
    if connections[alias].vendor != "postgresql":
        yield  # SQLite (make run) serialises writers itself
        return
    side = connections.create_connection(alias)
    try:
        side.connect()
        side.set_autocommit(False)  # BEGIN: the lock lives as long as this transaction
        with side.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])
        yield
    finally:
        # ROLLBACK releases the lock before it returns; closing alone would leave the
        # release to the server process's exit, after we have moved on (another process
        # could still find the lock held). A dead connection has released it already.
        with contextlib.suppress(Exception):
            side.rollback()
        with contextlib.suppress(Exception):
            side.close()
