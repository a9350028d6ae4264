"""Hand freshly stored inbox rows to the workers: off the request thread, in batches.

Publishing one Celery message costs the web process more CPU than verifying,
decrypting and storing the callback together (kombu builds the message, its headers
and a Redis client per publish). So the request only notes the new row's id here and
answers; a daemon thread of the same process publishes every id noted during the
last LINGER seconds as one ``callbacks.process_batch`` message. Under load a message
carries many ids; when idle, an id leaves LINGER seconds after its callback.

Nothing here is needed for correctness, only for speed: an id that dies with this
process (SIGKILL, a crash) or with the broker is a row still pending in the database,
and the sweeper enqueues it once it is SWEEP_GRACE old. That is also why a failed
publish is dropped rather than kept: the database already keeps it.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

from callbacks.queue import enqueue_batch

logger = logging.getLogger(__name__)

# Long enough to gather a useful batch at a few hundred callbacks per second per
# process (a publish holds the GIL for about half a millisecond, stalling the
# request thread), short against anything a product could notice.
LINGER = 0.1
# Ids per message. A worker runs a message's rows one after another and hands what
# is left after callbacks.tasks.BATCH_BUDGET to other workers.
MAX_BATCH = 100

Publish = Callable[[list[int], bool], bool]


class BatchHandoff:
    """Collect (id, priority) pairs and publish them in batches from one daemon thread."""

    def __init__(self, publish: Publish, *, linger: float = LINGER, max_batch: int = MAX_BATCH):
        self._publish = publish  # (ids, priority) -> published?
        self._linger = linger
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: dict[bool, list[int]] = {False: [], True: []}
        self._thread: threading.Thread | None = None
        # After a fork the child holds a copy of the parent's waiting ids (the parent
        # publishes them) and no thread: start afresh.
        os.register_at_fork(after_in_child=self._forget)

    def add(self, event_id: int, *, priority: bool) -> None:
        with self._cond:
            self._waiting[priority].append(event_id)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="callbacks-handoff", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def flush(self) -> None:
        """Publish everything waiting now, on the caller's thread (exit, tests)."""
        for priority, ids in self._take().items():
            self._send(ids, priority)

    def _forget(self) -> None:
        self._cond = threading.Condition()
        self._waiting = {False: [], True: []}
        self._thread = None

    def _take(self) -> dict[bool, list[int]]:
        with self._cond:
            taken = {p: ids for p, ids in self._waiting.items() if ids}
            self._waiting = {False: [], True: []}
        return taken

    def _send(self, ids: list[int], priority: bool) -> None:
        for start in range(0, len(ids), self._max_batch):
            if not self._publish(ids[start : start + self._max_batch], priority):
                return  # broker down: the rows wait in the database for the sweeper

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._waiting[False] or self._waiting[True]):
                    self._cond.wait()
            # Auth codes are only valid for minutes: priority ids do not linger.
            if not self._waiting[True]:
                time.sleep(self._linger)
            try:
                self.flush()
            except Exception:  # never let the thread die: the next ids need it
                logger.exception("callback handoff failed; the sweeper will dispatch")


def _publish(ids: list[int], priority: bool) -> bool:
    return enqueue_batch(ids, priority=priority)


handoff = BatchHandoff(_publish)
# A worker stopping gracefully (gunicorn's max-requests, a deploy) publishes what it
# holds instead of leaving it to the sweeper's delay.
atexit.register(handoff.flush)
