"""Per-client rate limit: a fixed one-minute window counted in Redis.

One Lua script does INCR and (on the first hit) EXPIRE, so the count is atomic across
every web process and machine sharing the Redis. The limit is the client's
``rate_limit_per_minute`` or ``settings.API_RATE_LIMIT_PER_MINUTE``. If Redis is
unreachable the request is let through (logged): the limiter protects capacity, it is
not an access control.
"""

from __future__ import annotations

import logging
import math
import time

import redis
from django.conf import settings
from django_redis import get_redis_connection
from rest_framework.throttling import BaseThrottle

from api.authentication import ApiPrincipal

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
_INCR_WITH_EXPIRY = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""


def _counter():
    # Per call (cheap): follows the cache settings, and EVALSHA reloads a flushed script.
    return get_redis_connection("default").register_script(_INCR_WITH_EXPIRY)


def rate_limit_hit(*, client_id: int, limit: int, now: float | None = None) -> float | None:
    """Count one request; return None if allowed, else seconds until the window resets."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    key = f"wcp:api:rate:{client_id}:{window}"
    try:
        count = int(_counter()(keys=[key], args=[WINDOW_SECONDS + 5]))
    except redis.RedisError as exc:
        logger.warning("rate limiter unavailable (%s); request allowed", type(exc).__name__)
        return None
    if count <= limit:
        return None
    return (window + 1) * WINDOW_SECONDS - now


def client_limit(principal: ApiPrincipal) -> int:
    return principal.client.rate_limit_per_minute or settings.API_RATE_LIMIT_PER_MINUTE


class ClientRateThrottle(BaseThrottle):
    """DRF throttle over ``rate_limit_hit``; unauthenticated requests never get here."""

    def allow_request(self, request, view) -> bool:
        principal = request.auth
        if not isinstance(principal, ApiPrincipal):
            return True
        self._wait = rate_limit_hit(client_id=principal.client_id, limit=client_limit(principal))
        return self._wait is None

    def wait(self) -> float | None:
        wait = getattr(self, "_wait", None)
        return None if wait is None else max(1, math.ceil(wait))
