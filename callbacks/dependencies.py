"""Dependencies between inbox rows: a suite's tickets come before its auth codes.

An auth code rides the priority lane (it expires in 10 minutes), so it is often
processed before a suite_ticket acknowledged a moment earlier. On a fresh suite (no
ticket yet) or after a ticket gap, its exchange would then fail for want of a suite
token, and wait for the sweeper. Two rules keep it from waiting:

- before an auth code is exchanged, the suite's tickets still in the inbox are
  applied first, in this worker (a ticket another worker is applying right now is
  waited for, briefly);
- when a ticket is stored, the suite's auth codes that failed for want of one are
  made due again at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from callbacks.models import CallbackEvent
from callbacks.queue import enqueue

logger = logging.getLogger(__name__)

# Rows whose processing needs the suite's token (an auth code to exchange).
NEEDS_SUITE_TOKEN = frozenset({"create_auth", "reset_permanent_code"})
# How long to wait for a ticket another worker is applying.
TICKET_WAIT = 5.0
TICKET_MISSING = "SuiteTicketUnavailable"


def tickets_apply_pending(*, suite_id: str, process: Callable[..., str | None]) -> int:
    """Apply the suite's suite_ticket rows still in the inbox; return how many were applied.

    ``process`` processes one row by id (callbacks.services.callback_process, handed in
    by the processing that got here). Claims are the usual conditional UPDATE, so a
    ticket is still applied once however many workers get here at the same time.
    """

    waiting = CallbackEvent.objects.filter(
        suite_id=suite_id,
        info_type="suite_ticket",
        endpoint=CallbackEvent.Endpoint.COMMAND,
        status__in=[CallbackEvent.Status.PENDING, CallbackEvent.Status.PROCESSING],
    )
    applied = 0
    deadline = time.monotonic() + TICKET_WAIT
    # Newest last: each ticket is a compare-and-set on its TimeStamp anyway.
    for pk in waiting.order_by("event_timestamp", "id").values_list("pk", flat=True):
        if _apply(pk, process) == CallbackEvent.Status.DONE:
            applied += 1
    while waiting.filter(status=CallbackEvent.Status.PROCESSING).exists():
        if time.monotonic() > deadline:
            logger.info("a ticket of %s is still being applied elsewhere; going on", suite_id)
            break
        time.sleep(0.05)
    return applied


def _apply(pk: int, process: Callable[..., str | None]) -> str | None:
    # Due or not (a ticket backing off after a database hiccup is due for this).
    CallbackEvent.objects.filter(pk=pk, status=CallbackEvent.Status.PENDING).update(
        next_attempt_at=None
    )
    return process(event_id=pk)


def auth_codes_wake(*, suite_id: str) -> int:
    """Make the suite's auth-code rows that waited for a ticket due now; return how many."""
    now = timezone.now()
    rows = list(
        CallbackEvent.objects.filter(
            suite_id=suite_id,
            info_type__in=NEEDS_SUITE_TOKEN,
            status=CallbackEvent.Status.PENDING,
            next_attempt_at__gt=now,
            last_error__startswith=TICKET_MISSING,
        ).values_list("pk", "priority")
    )
    if not rows:
        return 0
    CallbackEvent.objects.filter(pk__in=[pk for pk, _ in rows]).update(
        next_attempt_at=now, dispatched_at=now
    )
    for pk, priority in rows:
        transaction.on_commit(lambda pk=pk, priority=priority: enqueue(pk, priority=priority))
    return len(rows)
