"""Retry delays: exponential growth with a cap, and jitter. The one home of the rule.

Every retry of the platform waits with these: token and ticket fetches after a failure
(tenants/fetching.py), inbox rows after a transient error (callbacks), licence order
polls (licensing), webhook deliveries (webhooks/schedule.py, whose delays come from a
table). Jitter matters more than the curve: work that failed together (a WeCom
outage, a fleet of tokens minted in one minute) must not come back together.
"""

from __future__ import annotations

import random
from datetime import timedelta


def exponential(attempt: int, *, base: float, cap: float) -> float:
    """Return ``base`` × 2^``attempt`` seconds (attempt 0 waits ``base``), at most ``cap``."""
    # The exponent is bounded only so a huge attempt count cannot overflow a float.
    return min(cap, base * 2 ** min(max(attempt, 0), 64))


def jittered(seconds: float, *, low: float, high: float, rng: random.Random | None = None) -> float:
    """Return ``seconds`` × a random factor in [low, high] (jitter is not security)."""
    return seconds * (rng or random).uniform(low, high)


def backoff(attempt: int, *, base: float, cap: float, jitter: tuple[float, float]) -> timedelta:
    """Return the jittered exponential delay before retry ``attempt`` (0 for the first)."""
    low, high = jitter
    return timedelta(seconds=jittered(exponential(attempt, base=base, cap=cap), low=low, high=high))
