"""Best-effort publishing of Celery tasks, by name, behind a circuit breaker.

Used where the database already holds the work (an inbox row, a webhook delivery) and a
sweeper picks up whatever a lost message leaves behind: a failed publish is dropped,
never retried here. After one failure the broker is left alone for ``backoff`` seconds,
so a dead broker costs each caller nothing instead of a connection timeout.

By name (``send_task``): the code that queues work need not import the task that does
it, which usually imports that code back.
"""

from __future__ import annotations

import logging
import time

from celery import current_app

logger = logging.getLogger(__name__)


class BestEffortPublisher:
    """Publishes tasks until the broker fails, then skips it for ``backoff`` seconds."""

    def __init__(self, *, backoff: float, fallback: str) -> None:
        self.backoff = backoff
        self.fallback = fallback  # who delivers instead, for the log line
        self._down_until = 0.0

    def send(
        self, task: str, args: list, *, queue: str | None = None, countdown: float | None = None
    ) -> bool:
        """Publish ``task`` (``queue`` None: the default queue); return False (nothing
        raised) if the broker is or was just down."""
        if time.monotonic() < self._down_until:
            return False
        try:
            current_app.send_task(task, args=args, queue=queue, countdown=countdown, retry=False)
        except Exception as exc:
            self._down_until = time.monotonic() + self.backoff
            logger.warning(
                "broker unavailable (%s); %s will deliver", type(exc).__name__, self.fallback
            )
            return False
        return True
