"""Group commit of the inbox: concurrent callbacks of one process share an upsert.

Batching is forced deterministically: a second connection holds a SHARE lock on the
inbox table, so the first request's INSERT (the leader's) waits on PostgreSQL while
the other requests queue behind it in the process; when the lock goes, the next
leader stores every queued row in one statement. Rows of one statement share their
transaction id (``xmin``), which is how the tests count statements.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlencode

import psycopg
import pytest
from django.db import DatabaseError
from django.db import connection
from django.test import Client
from django.utils import timezone

from callbacks.groupcommit import GroupCommit
from callbacks.handoff import handoff
from callbacks.models import CallbackEvent
from callbacks.services import ingest
from tests.callbacks import signing
from tests.tenants.factories import make_suite

TABLE = CallbackEvent._meta.db_table


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def queued() -> int:
    return len(ingest._inbox_group._queue)


class TableLock:
    """A SHARE lock on the inbox, from a connection of its own: INSERTs wait on it."""

    def __enter__(self):
        self.conn = psycopg.connect(**connection.get_connection_params(), autocommit=False)
        self.conn.execute(f'LOCK TABLE "{TABLE}" IN SHARE MODE')
        return self

    def leader_waiting(self) -> bool:
        row = self.conn.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
            [TABLE],
        ).fetchone()
        return row[0] >= 1

    def release(self) -> None:
        self.conn.rollback()

    def __exit__(self, *exc):
        self.conn.close()


def in_threads(targets):
    """Run each callable in its own thread (own database connection); return results."""
    results: dict[int, object] = {}

    def run(n, target):
        try:
            results[n] = target()
        except Exception as exc:
            results[n] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n, t)) for n, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    return threads, results


def post(callback):
    response = Client().generic(
        "POST", f"{callback.path}?{urlencode(callback.query)}", callback.body, "text/xml"
    )
    return response.status_code, response.content


def ticket(suite, value):
    return signing.suite_command(suite, signing.ticket_xml(suite.suite_id, value, int(time.time())))


@pytest.fixture
def handed_off(monkeypatch):
    ids: list[int] = []
    monkeypatch.setattr(handoff, "add", lambda event_id, **kw: ids.append(event_id))
    return ids


@pytest.mark.django_db(transaction=True)
def test_callbacks_waiting_together_are_stored_by_one_statement_each_answered(handed_off):
    suite = make_suite()
    first = ticket(suite, "LEADER")
    others = [ticket(suite, f"T{n:02d}") for n in range(12)]
    # WeCom's retry of T00 (re-encrypted) arrives in the same batch: one row, counted.
    retry = signing.suite_command(
        suite, signing.ticket_xml(suite.suite_id, "T00", int(others[0].query["timestamp"]))
    )
    assert post(ticket(suite, "WARM"))[0] == 200  # routes cached, tables touched

    with TableLock() as lock:
        threads, results = in_threads([lambda: post(first)])
        wait_for(lock.leader_waiting)  # the leader's INSERT waits on the lock
        more, more_results = in_threads([lambda c=c: post(c) for c in [*others, retry]])
        wait_for(lambda: queued() == len(others) + 1)  # everyone else waits in the process
        lock.release()
        for thread in [*threads, *more]:
            thread.join()

    answers = [results[0], *more_results.values()]
    assert answers == [(200, b"success")] * (len(others) + 2)
    rows = {
        row.payload.split("<SuiteTicket><![CDATA[")[1].split("]")[0]: row
        for row in CallbackEvent.objects.exclude(payload_sealed="")
    }
    assert set(rows) == {"WARM", "LEADER", *(f"T{n:02d}" for n in range(12))}
    assert rows["T00"].duplicates == 1  # the retry counted, not stored again
    assert all(r.duplicates == 0 for name, r in rows.items() if name != "T00")
    xmins = _xmins({r.pk for name, r in rows.items() if name not in ("WARM", "LEADER")})
    # The twelve waiting rows went in one statement; the retry waited for the next one
    # (one statement cannot touch a row twice), where it updated T00's row.
    assert len(set(xmins.values())) == 2
    assert xmins[rows["T00"].pk] != xmins[rows["T01"].pk]
    # Every new row was handed to the workers once; the duplicate was not.
    assert sorted(handed_off) == sorted(r.pk for r in rows.values())


@pytest.mark.django_db(transaction=True)
def test_a_row_postgresql_refuses_does_not_fail_the_rows_it_travels_with():
    row = inbox_row
    with TableLock() as lock:
        threads, _ = in_threads([lambda: ingest._insert_or_count(row("lead", "x"))])
        wait_for(lock.leader_waiting)
        good = [row(f"good{n}", "x") for n in range(5)]
        bad = row("bad", "nul\x00byte")  # PostgreSQL text cannot hold NUL
        more, more_results = in_threads(
            [lambda r=r: ingest._insert_or_count(r) for r in [*good, bad]]
        )
        wait_for(lambda: queued() == 6)
        lock.release()
        for thread in [*threads, *more]:
            thread.join()

    outcomes = list(more_results.items())
    refused = [value for n, value in outcomes if n == len(good)]
    assert isinstance(refused[0], DatabaseError)
    stored = [value for n, value in outcomes if n < len(good)]
    assert all(isinstance(v, tuple) and v[1] == 0 for v in stored), stored
    keys = set(CallbackEvent.objects.values_list("dedupe_key", flat=True))
    assert keys == {r["dedupe_key"] for r in [row("lead", "x"), *good]}


def inbox_row(key: str, payload: str = "x") -> dict:
    return {
        "endpoint": "command",
        "route_id": "r",
        "receive_id": "r",
        "info_type": "suite_ticket",
        "suite_id": "s",
        "dedupe_key": key.ljust(64, "0"),
        "payload_sealed": payload,
        "received_at": timezone.now(),
    }


def waiting_backends(conn) -> list[int]:
    """Backends whose statement waits for a lock (on the inbox or on a row's writer)."""
    rows = conn.execute(
        "SELECT DISTINCT pid FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()"
    ).fetchall()
    return [pid for (pid,) in rows]


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_connection_dies_is_rerun_and_every_row_stored_once():
    params = connection.get_connection_params()
    holder = psycopg.connect(**params, autocommit=False)  # a writer of the leader's key
    locker = psycopg.connect(**params, autocommit=False)
    watcher = psycopg.connect(**params, autocommit=True)
    try:
        lead_row = inbox_row("lead")
        holder.execute(ingest._insert_statement(tuple(lead_row)), list(lead_row.values()))
        # The leader's upsert waits for the holder's uncommitted row with its key.
        threads, results = in_threads([lambda: ingest._insert_or_count(inbox_row("lead"))])
        wait_for(lambda: len(waiting_backends(watcher)) == 1)
        # A SHARE lock queued behind the leader: granted once the leader commits, it
        # holds the next statement (the followers' batch) until released.
        share = threading.Thread(
            target=lambda: locker.execute(f'LOCK TABLE "{TABLE}" IN SHARE MODE')
        )
        share.start()
        wait_for(lambda: len(waiting_backends(watcher)) == 2)
        rows = [inbox_row(f"follower{n}") for n in range(5)]
        more, more_results = in_threads([lambda r=r: ingest._insert_or_count(r) for r in rows])
        wait_for(lambda: queued() == 5)
        holder.rollback()  # the leader inserts its row and commits; the lock is granted
        share.join()
        threads[0].join()
        wait_for(lambda: len(waiting_backends(watcher)) == 1)  # the five-row statement
        (batch_backend,) = waiting_backends(watcher)
        watcher.execute("SELECT pg_terminate_backend(%s)", [batch_backend])
        # Its leader reconnects and runs the statement again (it waits on the lock again).
        wait_for(lambda: waiting_backends(watcher) not in ([], [batch_backend]))
        locker.rollback()
        for thread in more:
            thread.join()
    finally:
        for conn in (holder, locker, watcher):
            conn.close()

    assert results[0][1:] == (0, False)  # the leader's row, on a healthy connection
    outcomes = [more_results[n] for n in range(5)]
    assert all(isinstance(o, tuple) and o[1:] == (0, True) for o in outcomes), outcomes
    keys = list(CallbackEvent.objects.values_list("dedupe_key", flat=True))
    assert sorted(keys) == sorted(r["dedupe_key"] for r in [lead_row, *rows])


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_row_is_stored_in_that_transaction():
    from django.db import transaction

    values = {
        "endpoint": "command",
        "route_id": "r",
        "receive_id": "r",
        "info_type": "suite_ticket",
        "suite_id": "s",
        "dedupe_key": "t" * 64,
        "payload_sealed": "x",
        "received_at": timezone.now(),
    }
    seen = []

    def store_then_fail():
        with transaction.atomic():
            event_id, duplicates, _ = ingest._insert_or_count(dict(values))
            seen.append((CallbackEvent.objects.filter(pk=event_id).exists(), duplicates))
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        store_then_fail()
    assert seen == [(True, 0)]  # stored, visible to the transaction…
    assert not CallbackEvent.objects.exists()  # …and gone with it


def _xmins(ids: set[int]) -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT id, xmin::text FROM "{TABLE}" WHERE id = ANY(%s)', [list(ids)])  # noqa: S608
        return dict(cursor.fetchall())


# --- the batching itself (no database) ------------------------------------------------------


def test_a_lone_caller_runs_at_once_and_gets_its_own_result():
    batches = []
    group = GroupCommit(lambda items: batches.append(list(items)) or [i * 2 for i in items])

    assert group.submit(21) == 42
    assert batches == [[21]]


def test_callers_waiting_on_a_leader_share_the_next_run_and_each_get_their_result():
    started, release = threading.Event(), threading.Event()
    batches = []

    def run(items):
        batches.append(list(items))
        if len(batches) == 1:
            started.set()
            release.wait(10)
        return [("ok", i) for i in items]

    group = GroupCommit(run)
    results = {}
    lead = threading.Thread(target=lambda: results.update(lead=group.submit(0)))
    lead.start()
    started.wait(10)
    followers = [
        threading.Thread(target=lambda n=n: results.update({n: group.submit(n)}))
        for n in range(1, 9)
    ]
    for thread in followers:
        thread.start()
    wait_for(lambda: len(group._queue) == 8)
    release.set()
    for thread in [lead, *followers]:
        thread.join()

    assert batches[0] == [0]
    assert sorted(batches[1]) == list(range(1, 9))
    assert len(batches) == 2
    assert results == {"lead": ("ok", 0), **{n: ("ok", n) for n in range(1, 9)}}


def test_a_failed_run_raises_in_every_caller_of_its_batch_and_the_next_batch_runs():
    started, release = threading.Event(), threading.Event()
    calls = []

    def run(items):
        calls.append(list(items))
        if len(calls) == 1:
            started.set()
            release.wait(10)
            return list(items)
        if len(calls) == 2:
            raise DatabaseError("the server went away")
        return [ValueError("this row"), *items[1:]]  # per-item outcomes

    group = GroupCommit(run, max_batch=3)
    results = {}

    def call(n):
        try:
            results[n] = group.submit(n)
        except Exception as exc:
            results[n] = exc

    lead = threading.Thread(target=call, args=(0,))
    lead.start()
    started.wait(10)
    followers = [threading.Thread(target=call, args=(n,)) for n in range(1, 7)]
    for thread in followers:
        thread.start()
    wait_for(lambda: len(group._queue) == 6)
    release.set()
    for thread in [lead, *followers]:
        thread.join()

    assert calls[0] == [0]
    second, third = calls[1], calls[2]
    assert sorted(second + third) == list(range(1, 7))
    assert len(second) == len(third) == 3
    for n in second:  # the whole batch failed: each caller sees the error
        assert isinstance(results[n], DatabaseError)
        assert "went away" in str(results[n])
    assert isinstance(results[third[0]], ValueError)
    assert [results[n] for n in third[1:]] == third[1:]
    assert results[0] == 0
