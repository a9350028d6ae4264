"""Waiting for the Celery workers of a bench to go idle."""

from __future__ import annotations

import time


def wait_until_quiet(broker, ledger: str, *, timeout: float, quiet: float = 10.0) -> float:
    """Wait until no task waits in ``broker`` (queued or taken but unacknowledged, which
    includes tasks held for a countdown) and the outbound limiter granted nothing for
    ``quiet`` seconds (``ledger``: WECOM_RATE_LEDGER); return the seconds waited.

    A create_auth burst leaves each install's follow-up reads to later tasks, which run
    for minutes after the last code is stored: memory measured before they end counts
    work in progress, not what the worker keeps.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        waiting = broker.hlen("unacked") + sum(
            broker.llen(key)
            for key in broker.scan_iter()
            if key != ledger.encode() and broker.type(key) == b"list"
        )
        newest = broker.lindex(ledger, -1)
        idle = newest is None or time.time() - int(newest) / 1_000_000 >= quiet
        if not waiting and idle:
            return time.monotonic() - start
        time.sleep(1.0)
    raise TimeoutError(f"the workers were still busy after {timeout:.0f} s")
