"""Things that happen at a simulator time: suite_ticket pushes, late license pushes.

Due times are on the simulator clock, so POST /sandbox/clock/advance makes pending
work due at once; `run_due()` is also called synchronously after an advance and
before a push-queue wait, so tests never race the polling thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable

from sandbox import actions
from sandbox import app_orders

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, state, *, tick: float = 0.05) -> None:
        self.state = state
        self.tick = tick
        self._heap: list[tuple[float, int, Callable[[], object]]] = []
        self._seq = itertools.count()
        self._next_ticket: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sandbox-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def at(self, due: float, fn: Callable[[], object]) -> None:
        """Run fn (with the state lock held) once the simulator clock reaches `due`."""
        with self.state.lock:
            heapq.heappush(self._heap, (due, next(self._seq), fn))

    def schedule_tickets(self, suite_id: str, *, first: float) -> None:
        """Push the next suite_ticket for suite_id at `first`, then every interval."""
        with self.state.lock:
            self._next_ticket[suite_id] = first

    def run_due(self) -> None:
        """Run everything due on the simulator clock now."""
        state = self.state
        with state.lock:
            now = state.now()
            interval = state.ticket_interval
            if interval and interval > 0:
                for suite_id, due in list(self._next_ticket.items()):
                    if due <= now and suite_id in state.suites:
                        # WeCom pushes a new ticket whether or not the last was acknowledged.
                        actions.push_ticket(state, suite_id)
                        # One push per catch-up: after a big clock jump WeCom would not
                        # replay the missed pushes either.
                        self._next_ticket[suite_id] = now + interval
            # Trials and paid terms end at a time, whoever is watching (change_editon).
            app_orders.expire_due(state)
            while self._heap and self._heap[0][0] <= now:
                _, _, fn = heapq.heappop(self._heap)
                try:
                    fn()
                except Exception:
                    logger.exception("sandbox scheduled task failed")

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_due()
            except Exception:
                logger.exception("sandbox scheduler tick failed")
