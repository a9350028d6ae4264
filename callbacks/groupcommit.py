"""Group commit for the callback inbox: concurrent requests of one process share a statement.

A durable commit waits for a WAL flush, and each statement costs both processes a
round trip and PostgreSQL its per-statement work. With several request threads per
web process (gunicorn gthread, docs/operations.md), callbacks arriving together
are stored by one multi-row upsert in one transaction: the first thread to arrive
runs the statement for every row waiting at that moment (it is the leader), the
others sleep until their row's outcome is known. Rows that arrive while a
statement runs go in the next one, whose leader is one of them. Nobody waits for a
batch to fill: a request alone is stored at once, as before.

What a request learns is what it would have learned alone: its row's (id,
duplicates, reconnected), or the exception of the statement that carried it, in
which case nothing of that statement was stored (one statement, one transaction)
and the request answers 503 for WeCom to retry. A statement that fails for a reason
other than the connection (a row PostgreSQL refuses) is retried one row at a time,
so one bad row cannot fail the callbacks it happened to travel with.

This module knows nothing of SQL or Django: ``run`` does the work
(callbacks/services.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

# run(items) -> one outcome per item, in order: a result, or the exception to raise.
Run = Callable[[list[Any]], list[Any]]


class _Waiting:
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """Leader/follower batching of ``run(items) -> results`` (same order) across threads."""

    def __init__(self, run: Run, *, max_batch: int = 64) -> None:
        self._run = run
        self._max_batch = max_batch
        self._forget()
        # A forked child holds a copy of the parent's waiters and maybe a held lock:
        # start afresh (nothing of the parent's is ours to answer).
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[_Waiting] = []
        self._leading = False

    def submit(self, item: Any) -> Any:
        """Return ``item``'s result once the statement carrying it has committed."""
        waiting = _Waiting(item)
        with self._cond:
            self._queue.append(waiting)
            while self._leading and not waiting.done:
                self._cond.wait()
            if not waiting.done:
                # Nobody is running a statement: lead one with our row and those that
                # have waited longest (everything waiting, up to max_batch).
                self._leading = True
                self._queue.remove(waiting)
                batch = [waiting, *self._queue[: self._max_batch - 1]]
                del self._queue[: self._max_batch - 1]
        if not waiting.done:
            self._lead(batch, waiting)
        if waiting.error is not None:
            raise waiting.error
        return waiting.result

    def _lead(self, batch: list[_Waiting], own: _Waiting) -> None:
        try:
            outcomes = self._run([w.item for w in batch])
            for w, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    w.error = outcome if w is own else _copy(outcome)
                else:
                    w.result = outcome
        except BaseException as exc:  # every row of the batch shares its fate
            for w in batch:
                w.error = exc if w is own else _copy(exc)
        finally:
            with self._cond:
                for w in batch:
                    w.done = True
                self._leading = False
                # Wakes the finished and the next leader (any row still queued).
                self._cond.notify_all()


def _copy(exc: BaseException) -> BaseException:
    """An exception of the same type for another thread to raise: one instance raised
    in several threads at once would have its traceback rewritten under each of them."""
    try:
        clone = type(exc)(*exc.args)
    except Exception:
        return exc
    clone.__cause__ = exc
    return clone
