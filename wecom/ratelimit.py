"""The platform-wide ceiling on outbound calls to WeCom, shared by every process.

WeCom limits the provider as a whole (45009 blocks the whole window exceeded), so the
ceiling must hold across all web workers, Celery workers and beat together: a
per-process limit multiplies by the number of processes. The count lives in Redis, a
sliding-window log (a sorted set of grant times) checked and appended by one Lua
script, so check-and-take is atomic however many processes ask at once. The script
reads Redis' own clock (TIME): hosts whose clocks disagree still share one window.

Priority. Two classes share the window:

* ``PRODUCT`` (the default: anything a product or an admin is waiting for, and auth
  code exchanges, which die in 10 minutes) may use the whole ceiling;
* ``BACKGROUND`` (beat's token refreshes, reconciliation, an install's follow-up reads:
  work that can be late) may use it only while fewer than ``ceiling - reserve`` calls
  are in the window, and only while no product call is waiting for a slot.

So background traffic alone can never take the last ``reserve`` slots of a window, and
never a slot a product call is waiting for: in a burst of installs every slot goes to
the auth code exchanges (whose codes die in 10 minutes) until none waits. A product
call that finds no slot registers as waiting (a sorted set beside the window, each
entry expiring within seconds so a dead process cannot hold background work off).
Code marks background work with ``with background_calls():`` (a context variable, so
it follows the thread or task that set it and nothing else); ``background_calls(wait=0)``
gives up at once instead of waiting, for work that is better deferred than queued.

A caller without a slot waits for the one the script says frees first, up to its
class's wait budget, then gets ``WeComThrottled`` (a transport error that certainly
never reached WeCom): a product request answers 503, a background refresh defers to a
later tick.

The window is 1 s plus ``guard``: a call is granted here but arrives at WeCom a moment
later (scheduling, the network). With the guard, calls granted in any window of
1 s + guard number at most the ceiling, so WeCom sees at most the ceiling in any
second as long as no call spends longer than the guard between grant and arrival.

If Redis is unreachable, each process falls back to a local window of the same
ceiling (logged): the platform keeps working, the ceiling then holds per process only.

Measuring: given a ``ledger`` key, every grant's time (Redis' clock, µs) is also
appended to that Redis list, in the same script, so a benchmark can count what was
actually let through per second (bench/scale.py). Off unless configured.

Imports: stdlib and redis-py only (this package stays free of Django).
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from wecom.errors import WeComTransportError

__all__ = [
    "CallPriority",
    "CallRateLimiter",
    "WeComThrottled",
    "background_calls",
    "current_priority",
]

logger = logging.getLogger(__name__)


class CallPriority(StrEnum):
    PRODUCT = "product"
    BACKGROUND = "background"


_priority: contextvars.ContextVar[CallPriority] = contextvars.ContextVar(
    "wecom_call_priority", default=CallPriority.PRODUCT
)
# Seconds a caller in the block may wait for a slot, instead of its class's budget.
_wait: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "wecom_call_wait", default=None
)


def current_priority() -> CallPriority:
    return _priority.get()


@contextlib.contextmanager
def background_calls(*, wait: float | None = None) -> Iterator[None]:
    """Mark every WeCom call made inside the block as background (deferrable) work.

    ``wait``: seconds each call may wait for a slot (default: the limiter's background
    budget); 0 fails at once with WeComThrottled when no slot is free.
    """
    token = _priority.set(CallPriority.BACKGROUND)
    wait_token = _wait.set(wait)
    try:
        yield
    finally:
        _wait.reset(wait_token)
        _priority.reset(token)


class WeComThrottled(WeComTransportError):
    """No slot under the platform's outbound ceiling within the wait budget.

    The request was never sent (``request_sent`` is False): retrying later is safe.
    """

    def __init__(self, *, endpoint: str, priority: CallPriority, waited: float) -> None:
        super().__init__(
            endpoint=endpoint,
            errmsg=f"outbound rate ceiling reached ({priority} call, waited {waited:.1f} s)",
            request_sent=False,
        )
        self.priority = priority
        self.waited = waited


# After Redis failed, the local window is used for this long before Redis is tried again.
SHARED_RETRY_AFTER = 5.0
# A product caller's "waiting" entry lives this long unless renewed by its next attempt
# (every attempt renews it; attempts are at most a window apart): a caller that died
# holds background work off for at most this long.
WAITER_TTL = 2.0
# A background caller held off by a waiting product call tries again after this long.
YIELD_RETRY = 0.05
# Grants kept in the ledger (a benchmark's worth).
LEDGER_LENGTH = 1_000_000

# KEYS: the window's sorted set, the waiting product callers' sorted set (score: when
# the entry expires), and optionally the ledger list. ARGV: capacity for this caller's
# class, window (µs), the caller's member, 1 for a product caller, waiter TTL (µs), the
# retry delay of a background caller held off (µs), the ledger's length. Returns {1, 0}
# when granted, else {0, µs until it is worth asking again}. Entries older than the
# window are dropped first, so the set never holds more than the ceiling's worth of
# members and each call is O(log n).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
local product = ARGV[4] == '1'
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not product and redis.call('ZCARD', KEYS[2]) > 0 then
  return {0, tonumber(ARGV[6])}
end
local capacity = tonumber(ARGV[1])
local used = redis.call('ZCARD', KEYS[1])
if used < capacity then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  if product then
    redis.call('ZREM', KEYS[2], ARGV[3])
  end
  if KEYS[3] then
    redis.call('RPUSH', KEYS[3], now)
    redis.call('LTRIM', KEYS[3], -tonumber(ARGV[7]), -1)
  end
  return {1, 0}
end
if product then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[5]) / 1000) + 1000)
end
local oldest = redis.call('ZRANGE', KEYS[1], used - capacity, used - capacity, 'WITHSCORES')
return {0, math.max(1, tonumber(oldest[2]) + window - now)}
"""


class CallRateLimiter:
    """At most ``ceiling`` calls per window (1 s + ``guard``) across all processes.

    ``redis_client``: a redis-py client (or a callable returning one, resolved on first
    use so a forked worker does not share its parent's sockets); ``None`` means local
    only (tests of the client, scripts). ``reserve``: the share of the ceiling kept for
    product calls. ``product_wait`` / ``background_wait``: seconds a caller of each class
    may wait for a slot before ``WeComThrottled``.
    """

    def __init__(
        self,
        ceiling: int,
        *,
        redis_client: Any = None,  # a redis.Redis, or a callable returning one
        key: str = "wcp:wecom:calls",
        ledger: str | None = None,
        guard: float = 0.1,
        reserve: float = 0.3,
        product_wait: float = 5.0,
        background_wait: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if ceiling < 1:
            raise ValueError("the ceiling must allow at least one call per second")
        self.ceiling = ceiling
        self.window = 1.0 + max(0.0, guard)
        reserved = min(ceiling - 1, max(1, math.ceil(ceiling * reserve))) if ceiling > 1 else 0
        self.capacity = {
            CallPriority.PRODUCT: ceiling,
            CallPriority.BACKGROUND: ceiling - reserved,
        }
        self.waits = {CallPriority.PRODUCT: product_wait, CallPriority.BACKGROUND: background_wait}
        self._redis_source = redis_client
        self._redis = None
        self._script = None
        self._key = key
        self._waiters_key = f"{key}:waiting"
        self._ledger = ledger
        self._sleep = sleep
        self._local: collections.deque[float] = collections.deque()
        self._local_waiters: dict[str, float] = {}  # member -> expiry (monotonic)
        self._local_lock = threading.Lock()
        self._shared_down_until = 0.0

    # -- taking a slot ------------------------------------------------------------------
    def acquire(self, endpoint: str, priority: CallPriority | None = None) -> float:
        """Wait for a slot for one call to ``endpoint``; return the seconds waited.

        Raises WeComThrottled when the class's wait budget runs out first.
        """
        priority = priority or current_priority()
        capacity = self.capacity[priority]
        budget = self.waits[priority]
        if (override := _wait.get()) is not None:
            budget = override
        product = priority is CallPriority.PRODUCT
        member = uuid.uuid4().hex  # this call: its slot in the window, its waiting entry
        started = time.monotonic()
        while True:
            granted, wait = self._take(capacity, member, product)
            waited = time.monotonic() - started
            if granted:
                return waited
            if waited + wait > budget:
                if product:
                    self._stop_waiting(member)
                raise WeComThrottled(endpoint=endpoint, priority=priority, waited=waited)
            # A little jitter: callers woken by the same freed slot do not all retry at
            # the same instant (only one of them can have it).
            self._sleep(wait + random.uniform(0, 0.01))

    def _take(self, capacity: int, member: str, product: bool) -> tuple[bool, float]:
        script = self._shared_script()
        if script is not None and time.monotonic() >= self._shared_down_until:
            keys = [self._key, self._waiters_key, *([self._ledger] if self._ledger else [])]
            try:
                granted, wait_us = script(
                    keys=keys,
                    args=[
                        capacity,
                        int(self.window * 1_000_000),
                        member,
                        1 if product else 0,
                        int(WAITER_TTL * 1_000_000),
                        int(YIELD_RETRY * 1_000_000),
                        LEDGER_LENGTH,
                    ],
                )
                return bool(granted), int(wait_us) / 1_000_000
            except Exception as exc:  # redis.RedisError and friends; never block a call
                # Connecting to a dead Redis costs its retries on every attempt: stop
                # asking for a while instead of adding that delay to every WeCom call.
                self._shared_down_until = time.monotonic() + SHARED_RETRY_AFTER
                logger.warning("rate limiter store unavailable (%s); limiting locally", exc)
        return self._take_local(capacity, member, product)

    def _stop_waiting(self, member: str) -> None:
        """A product caller gave up: background work need not hold off for it."""
        with self._local_lock:
            self._local_waiters.pop(member, None)
        if self._redis is not None and time.monotonic() >= self._shared_down_until:
            try:
                self._redis.zrem(self._waiters_key, member)
            except Exception:  # the entry expires on its own (WAITER_TTL)
                logger.debug("could not drop a waiting entry", exc_info=True)

    def _shared_script(self) -> Any:
        if self._script is None and self._redis_source is not None:
            client = self._redis_source() if callable(self._redis_source) else self._redis_source
            self._redis = client
            self._script = client.register_script(_TAKE)
        return self._script

    def _take_local(self, capacity: int, member: str, product: bool) -> tuple[bool, float]:
        with self._local_lock:
            now = time.monotonic()
            while self._local and self._local[0] <= now - self.window:
                self._local.popleft()
            for waiter, expires in list(self._local_waiters.items()):
                if expires <= now:
                    del self._local_waiters[waiter]
            if not product and self._local_waiters:
                return False, YIELD_RETRY
            if len(self._local) < capacity:
                self._local.append(now)
                self._local_waiters.pop(member, None)
                return True, 0.0
            if product:
                self._local_waiters[member] = now + WAITER_TTL
            oldest = self._local[len(self._local) - capacity]
            return False, max(0.001, oldest + self.window - now)
