"""The retry schedule of a delivery (published in docs/operations.md).

Attempt 1 leaves as soon as the event is published. After a failed attempt ``n`` the
next one waits ``RETRY_DELAYS[n - 1]`` (seconds), with ±20 % jitter so a receiver that
comes back is not hit by every queued delivery in the same second. After the last
delay's attempt fails the delivery is ``failed`` (replay it from the admin). The delays
grow roughly exponentially and add up to about 28 hours, so an outage of a day loses
nothing.
"""

from __future__ import annotations

import random
from datetime import timedelta

from wecom_provider.backoff import jittered

MIN = 60
HOUR = 60 * MIN

# Delay before attempt 2, 3, …: 12 retries after the first attempt.
RETRY_DELAYS: tuple[int, ...] = (
    5,
    30,
    2 * MIN,
    10 * MIN,
    30 * MIN,
    1 * HOUR,
    2 * HOUR,
    3 * HOUR,
    4 * HOUR,
    5 * HOUR,
    6 * HOUR,
    6 * HOUR,
)
JITTER = 0.2
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def total_span() -> timedelta:
    """Return the time from the first to the last attempt, without jitter."""
    return timedelta(seconds=sum(RETRY_DELAYS))


def next_delay(attempts_made: int, *, rng: random.Random | None = None) -> float | None:
    """Return seconds until the next attempt after ``attempts_made`` failures, or None
    when the schedule is used up."""
    if attempts_made < 1 or attempts_made > len(RETRY_DELAYS):
        return None
    return jittered(RETRY_DELAYS[attempts_made - 1], low=1 - JITTER, high=1 + JITTER, rng=rng)
