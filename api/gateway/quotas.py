"""Quota counters and breakers in Redis, shared by every web process (protocol §10).

Counters. One Redis hash per minute window and one per hour window; a field per thing
counted (``c|<corpid>|<path>``, ``a|<address>|<path>``, ``u|<suite>|<corp>|<member>``,
``j|…`` for JS-SDK tickets). One Lua script checks every counter a call needs and the
breakers, and only if all fit takes one from each: check-and-take is atomic however
many processes ask at once, and a refused call counts nowhere. Windows are fixed
(aligned to the minute and the hour) and read Redis' own clock, so hosts whose clocks
disagree still share one window; WeCom's own windows are fixed too (a 45009 lasts "the
window exceeded").

Breakers. A 45009 from WeCom means WeCom blocks that corp's API for the window it
exceeded: the hash ``wcp:gw:brk`` maps ``<corpid>|<path>`` to when the block ends (ms),
and every process refuses the key until then (429, no WeCom call). WeCom does not say
which window was exceeded, so the block escalates: 60 s; a 45009 again within two
minutes of the breaker closing, 1 h; then the rest of the natural day (Beijing time).
A 45033 (too many concurrent calls) holds the key for
WECOM_GATEWAY_CONCURRENCY_BREAKER_SECONDS.

Redis unreachable: calls go through uncounted (logged); WeCom still enforces its quotas
and the breakers then live in WeCom only. The gateway protects corps' quotas, it is not
an access control (the allowlist is, and it does not depend on Redis).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone as dt_timezone

import redis
from django.conf import settings
from django_redis import get_redis_connection

from api.gateway.policy import Check

logger = logging.getLogger(__name__)

PREFIX = "wcp:gw:q"
BREAKERS = "wcp:gw:brk"
STRIKE_PREFIX = "wcp:gw:strike:"
WINDOW_SECONDS = {"m": 60, "h": 3600}
BEIJING = dt_timezone(timedelta(hours=8))

# ARGV: prefix, breaker hash, n breakers, breaker fields…, n checks, (window, field, limit)…
# Returns {1} when taken, else {0, ms to wait, "breaker"|"quota", field or check index}.
_TAKE = """
local t = redis.call('TIME')
local now_s = tonumber(t[1])
local now_ms = now_s * 1000 + math.floor(tonumber(t[2]) / 1000)
local nb = tonumber(ARGV[3])
for b = 1, nb do
  local untilv = redis.call('HGET', ARGV[2], ARGV[3 + b])
  if untilv and tonumber(untilv) > now_ms then
    return {0, tonumber(untilv) - now_ms, 'breaker', ARGV[3 + b]}
  end
end
local base = 4 + nb
local nc = tonumber(ARGV[base])
local lengths = {m = 60, h = 3600}
local keys = {
  m = ARGV[1] .. ':m:' .. math.floor(now_s / 60),
  h = ARGV[1] .. ':h:' .. math.floor(now_s / 3600)
}
for c = 0, nc - 1 do
  local w, f, limit = ARGV[base + 1 + c * 3], ARGV[base + 2 + c * 3], ARGV[base + 3 + c * 3]
  local used = tonumber(redis.call('HGET', keys[w], f) or '0')
  if used + 1 > tonumber(limit) then
    local wend = (math.floor(now_s / lengths[w]) + 1) * lengths[w] * 1000
    return {0, wend - now_ms, 'quota', tostring(c)}
  end
end
local touched = {}
for c = 0, nc - 1 do
  local w = ARGV[base + 1 + c * 3]
  redis.call('HINCRBY', keys[w], ARGV[base + 2 + c * 3], 1)
  touched[w] = true
end
for w, _ in pairs(touched) do
  redis.call('EXPIRE', keys[w], lengths[w] * 2)
end
return {1, 0, '', ''}
"""

# ARGV: breaker hash, strike key, field, kind ("quota"|"concurrency"), concurrency ms,
# then the escalating block lengths (ms). Returns the ms the key is now blocked for.
_OPEN = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local current = redis.call('HGET', ARGV[1], ARGV[3])
if current and tonumber(current) > now_ms then
  return tonumber(current) - now_ms
end
local dur
if ARGV[4] == 'concurrency' then
  dur = tonumber(ARGV[5])
else
  local level = redis.call('INCR', ARGV[2])
  local n = #ARGV - 5
  dur = tonumber(ARGV[5 + math.min(level, n)])
  redis.call('PEXPIRE', ARGV[2], dur + 120000)
end
redis.call('HSET', ARGV[1], ARGV[3], now_ms + dur)
if redis.call('HLEN', ARGV[1]) > 200 then
  local all = redis.call('HGETALL', ARGV[1])
  for j = 1, #all, 2 do
    if tonumber(all[j + 1]) <= now_ms then redis.call('HDEL', ARGV[1], all[j]) end
  end
end
return dur
"""


@dataclass(frozen=True)
class Refusal:
    """Why a call may not go to WeCom now, and for how long."""

    reason: str  # "quota" or "breaker"
    scope: str  # quota: the check's scope; breaker: "corp_api"
    retry_after: int  # seconds
    limit: int | None = None


def _redis():
    return get_redis_connection("default")


def breaker_field(corpid: str, path: str) -> str:
    return f"{corpid}|{path}"


def take(*, checks: Sequence[Check], breakers: Sequence[str]) -> Refusal | None:
    """Count one call against every check unless a check is full or a breaker is open.

    Returns None when the call may go (and was counted), else the Refusal.
    """
    args: list = [PREFIX, BREAKERS, len(breakers), *breakers, len(checks)]
    for check in checks:
        args += [check.window, check.field, check.limit]
    try:
        script = _redis().register_script(_TAKE)
        granted, wait_ms, reason, which = script(args=args)
    except redis.RedisError as exc:
        logger.warning("gateway quota store unavailable (%s); call not counted", type(exc).__name__)
        return None
    if int(granted):
        return None
    retry_after = max(1, math.ceil(int(wait_ms) / 1000))
    reason = reason.decode() if isinstance(reason, bytes) else str(reason)
    if reason == "breaker":
        return Refusal("breaker", "corp_api", retry_after)
    check = checks[int(which)]
    return Refusal("quota", check.scope, retry_after, check.limit)


def _day_remaining_ms() -> int:
    now = datetime.now(BEIJING)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(60_000, int((midnight - now).total_seconds() * 1000))


def open_breaker(*, corpid: str, path: str, errcode: int) -> int | None:
    """Hold (corpid, path) back after WeCom's 45009/45033; return the seconds, None if unknown."""
    concurrency = errcode == 45033
    args = [
        BREAKERS,
        f"{STRIKE_PREFIX}{breaker_field(corpid, path)}",
        breaker_field(corpid, path),
        "concurrency" if concurrency else "quota",
        settings.WECOM_GATEWAY_CONCURRENCY_BREAKER_SECONDS * 1000,
        60_000,
        3_600_000,
        _day_remaining_ms(),
    ]
    try:
        script = _redis().register_script(_OPEN)
        held_ms = int(script(args=args))
    except redis.RedisError as exc:
        logger.warning("gateway breaker store unavailable (%s)", type(exc).__name__)
        return None
    logger.warning(
        "wecom gateway breaker open: corp=%s path=%s errcode=%s for %d s",
        corpid,
        path,
        errcode,
        math.ceil(held_ms / 1000),
    )
    return math.ceil(held_ms / 1000)


# --- reads (ops dashboard, metrics) ---------------------------------------------------------


@dataclass(frozen=True)
class OpenBreaker:
    corpid: str
    path: str
    until: datetime

    @property
    def seconds_left(self) -> int:
        return max(0, math.ceil((self.until - datetime.now(UTC)).total_seconds()))


@dataclass(frozen=True)
class CorpUsage:
    """A corp's busiest API in the current minute and hour, against its quota."""

    corpid: str
    minute_path: str
    minute_used: int
    hour_path: str
    hour_used: int
    minute_limit: int
    hour_limit: int

    @property
    def share(self) -> float:
        """The larger of the two windows' use, as a fraction of the quota."""
        windows = ((self.minute_used, self.minute_limit), (self.hour_used, self.hour_limit))
        shares = [used / limit for used, limit in windows if limit]
        return max(shares, default=0.0)


def breakers_open() -> list[OpenBreaker]:
    """Return the breakers open now (the soonest to close first)."""
    client = _redis()
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    found = []
    for raw_field, raw_until in client.hgetall(BREAKERS).items():
        until_ms = int(raw_until)
        if until_ms <= now_ms:
            continue
        corpid, _, path = raw_field.decode().partition("|")
        found.append(OpenBreaker(corpid, path, datetime.fromtimestamp(until_ms / 1000, tz=UTC)))
    return sorted(found, key=lambda b: b.until)


def _busiest(fields: dict) -> dict[str, tuple[str, int]]:
    """Return {corpid: (path, calls)} of each corp's busiest API in one window's hash."""
    busiest: dict[str, tuple[str, int]] = {}
    for raw_field, raw_count in fields.items():
        field = raw_field.decode()
        if not field.startswith("c|"):
            continue
        _, corpid, path = field.split("|", 2)
        count = int(raw_count)
        if count > busiest.get(corpid, ("", -1))[1]:
            busiest[corpid] = (path, count)
    return busiest


def corp_usage(*, limit: int = 20) -> list[CorpUsage]:
    """Return the corps using the most of a quota now (current minute and hour windows)."""
    client = _redis()
    now_s = client.time()[0]
    minute = _busiest(client.hgetall(f"{PREFIX}:m:{now_s // 60}"))
    hour = _busiest(client.hgetall(f"{PREFIX}:h:{now_s // 3600}"))
    rows = [
        CorpUsage(
            corpid=corpid,
            minute_path=minute.get(corpid, ("", 0))[0],
            minute_used=minute.get(corpid, ("", 0))[1],
            hour_path=hour.get(corpid, ("", 0))[0],
            hour_used=hour.get(corpid, ("", 0))[1],
            minute_limit=settings.WECOM_QUOTA_CORP_API_PER_MINUTE,
            hour_limit=settings.WECOM_QUOTA_CORP_API_PER_HOUR,
        )
        for corpid in set(minute) | set(hour)
    ]
    return sorted(rows, key=lambda r: (-r.share, -r.hour_used, r.corpid))[:limit]
