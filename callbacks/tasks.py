"""Thin Celery entry points for the inbox."""

from __future__ import annotations

import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from callbacks import queue
from callbacks import services
from callbacks.handoff import MAX_BATCH


@shared_task(
    name=queue.PROCESS_TASK,
    ignore_result=True,
    # Safe: the service claims the row with a conditional UPDATE, so a redelivered
    # message finds it claimed or finished and does nothing.
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
)
def process_callback(event_id: int) -> None:
    services.callback_process(event_id=event_id)


@shared_task(name="callbacks.inbox_sweep", ignore_result=True, soft_time_limit=25, time_limit=30)
def inbox_sweep() -> int:
    return services.inbox_sweep()


@shared_task(name="callbacks.inbox_prune", ignore_result=True, soft_time_limit=240, time_limit=300)
def inbox_prune() -> int:
    return services.inbox_prune(older_than=timedelta(days=settings.CALLBACK_RETENTION_DAYS))


# Seconds one worker spends on a batch before handing the rest to other workers: a
# few slow rows (a WeCom call timing out) must not hold up the rows behind them.
BATCH_BUDGET = 10.0


@shared_task(
    name=queue.PROCESS_BATCH_TASK,
    ignore_result=True,
    acks_late=True,  # safe for the same reason as callbacks.process
    # Rows left unfinished when stopped stay pending (or stale-processing): the sweeper
    # takes them.
    soft_time_limit=240,
    time_limit=300,
)
def process_callbacks(event_ids: list[int], priority: bool = False) -> None:
    if priority and len(event_ids) > 1:
        # Auth codes die in 10 minutes and each exchange waits on WeCom: keep one, and
        # hand the rest straight back in two halves, so every free worker process of
        # the queue takes a share at once (a burst of installs spreads in log2(n) steps
        # instead of waiting out BATCH_BUDGET). If the broker refuses, the rows stay
        # pending for the sweeper.
        rest = event_ids[1:]
        services.enqueue_batch(rest[: len(rest) // 2], priority=True)
        services.enqueue_batch(rest[len(rest) // 2 :], priority=True)
        event_ids = event_ids[:1]
    deadline = time.monotonic() + BATCH_BUDGET
    # Contact-family rows first, all together in one transaction (one WAL flush for
    # the batch instead of three per row), with those of other messages still waiting
    # (batches grow when the workers fall behind); then the rest, row by row.
    handled = (
        set()
        if priority
        else services.callback_process_local_batch(
            event_ids=event_ids, also_waiting=max(0, MAX_BATCH - len(event_ids))
        )
    )
    event_ids = [event_id for event_id in event_ids if event_id not in handled]
    for done, event_id in enumerate(event_ids):
        if time.monotonic() > deadline:
            rest = event_ids[done:]
            # If the broker refuses, the rows stay pending for the sweeper.
            queue.enqueue_batch(rest[: len(rest) // 2], priority=priority)
            queue.enqueue_batch(rest[len(rest) // 2 :], priority=priority)
            return
        services.callback_process(event_id=event_id)
