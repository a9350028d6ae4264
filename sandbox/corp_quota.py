"""WeCom's own quota on corp-token APIs, per corp and API (§10), so 45009 can be provoked.

Off by default (limits 0). With ``corp_api_quota_per_minute`` / ``_per_hour`` set, each
call of a corp API counts in the current minute and hour window (simulator clock); the
call that goes over a limit, and every call of that corp and API after it, answers
45009 until the block ends: 60 s after a minute overrun, 3600 s after an hour one
(§10: "blocked for the window exceeded"). Blocked calls do not count.

Called with the state lock held (the server takes it around every API call).
"""

from __future__ import annotations

from sandbox.errors import ApiError

WINDOWS = (("m", 60), ("h", 3600))


def take(state, corpid: str, api: str) -> None:
    """Count one call of ``api`` by ``corpid``; raise ApiError(45009) when over quota."""
    settings = state.settings
    limits = {"m": settings.corp_api_quota_per_minute, "h": settings.corp_api_quota_per_hour}
    if not any(limits.values()):
        return
    data = state.corp_data
    now = state.clock.now()
    key = (corpid, api)
    until = data.blocks.get(key)
    if until is not None:
        if now < until:
            raise ApiError(45009, f"{api} blocked for this corp for {int(until - now) + 1} s")
        del data.blocks[key]
    counters = data.quota.setdefault(key, {})
    for name, length in WINDOWS:
        window = int(now // length)
        current = counters.get(name)
        if current is None or current[0] != window:
            current = counters[name] = [window, 0]
        current[1] += 1
    for name, length in WINDOWS:
        limit = limits[name]
        if limit and counters[name][1] > limit:
            data.blocks[key] = now + length
            raise ApiError(45009, f"{api}: more than {limit} calls per {name} for this corp")


def blocked_until(state, corpid: str, api: str) -> float | None:
    """Return when the block of (corpid, api) ends (simulator clock), or None."""
    until = state.corp_data.blocks.get((corpid, api))
    return until if until is not None and until > state.clock.now() else None
