"""Transactions whose commit need not wait for the WAL flush.

PostgreSQL's ``synchronous_commit = off`` for one transaction (``SET LOCAL``): the
commit returns before its WAL reaches disk. If the database server crashes in the
next fraction of a second, such a transaction may be lost, never half-applied, and a
later durable commit flushes it along with its own WAL (the log is written in order).

Use it only where losing the transaction is harmless by design: bookkeeping that a
sweep redoes (a claim that, lost, leaves the row due again). Never for a write the
platform promised someone: a stored callback, a feed entry, a delivery row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connections
from django.db import transaction


@contextlib.contextmanager
def lazy_commit(using: str = "default") -> Iterator[None]:
    """``transaction.atomic()`` whose commit does not wait for the WAL flush (PostgreSQL;
    elsewhere a plain transaction). Inside a transaction already under way it is only a
    savepoint: the setting would apply to, and weaken, the caller's commit."""
    connection = connections[using]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using):
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        yield
