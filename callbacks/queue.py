"""Handing inbox rows to workers: best effort, by task name, behind a circuit breaker.

Publishing is by the task's registered name (callbacks/tasks.py registers
``callbacks.process`` and ``callbacks.process_batch``): the code that queues a row
does not import the code that processes it, which in turn queues rows. A row whose
message is lost stays pending in the database, and the sweeper queues it again.
"""

from __future__ import annotations

from wecom_provider.broker import BestEffortPublisher

PROCESS_TASK = "callbacks.process"
PROCESS_BATCH_TASK = "callbacks.process_batch"
BROKER_BACKOFF = 10.0  # s: after a failed publish, leave the broker alone for this long

_publisher = BestEffortPublisher(backoff=BROKER_BACKOFF, fallback="the sweeper")


def enqueue(event_id: int, *, priority: bool, countdown: float | None = None) -> bool:
    """Hand one row to a worker; return False (row stays pending for the sweeper) on failure."""
    return _publisher.send(PROCESS_TASK, [event_id], queue=_queue(priority), countdown=countdown)


def enqueue_batch(event_ids: list[int], *, priority: bool) -> bool:
    """Hand rows to a worker as one message (see callbacks/handoff.py); False on failure."""
    if not event_ids:
        return True
    return _publisher.send(PROCESS_BATCH_TASK, [list(event_ids), priority], queue=_queue(priority))


def _queue(priority: bool) -> str:
    return "priority" if priority else "default"
