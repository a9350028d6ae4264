"""Throttle failed admin logins per client address and username, in Redis.

The ops console guards every tenant's credentials, so password guessing is capped:
after ``ADMIN_LOGIN_MAX_FAILURES`` failed POSTs to the admin login page for one
(address, username) within ``ADMIN_LOGIN_FAILURE_WINDOW`` seconds, further attempts get
429 until the window ends; one address trying many usernames is capped at four times
that. A successful login clears its (address, username) counter.

Counters live in the Django cache (Redis), incremented atomically, so the limit holds
across every web process and machine. If Redis is unreachable the throttle fails open
(and logs): a cache outage must not lock the operators out of the console.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.http import HttpResponse
from django.urls import NoReverseMatch
from django.urls import reverse
from django.utils.html import escape

from wecom_provider.observability.net import client_ip

logger = logging.getLogger(__name__)

IP_WIDE_FACTOR = 4
_PAGE = (
    "<!doctype html><html><head><title>Too many login attempts</title></head><body>"
    "<h1>Too many failed login attempts</h1>"
    "<p>Try again in {minutes} minute(s).</p></body></html>"
)


def _limits() -> tuple[int, int]:
    failures = int(getattr(settings, "ADMIN_LOGIN_MAX_FAILURES", 5))
    window = int(getattr(settings, "ADMIN_LOGIN_FAILURE_WINDOW", 300))
    return failures, window


def _digest(value: str) -> str:
    # Usernames and addresses are hashed: cache keys stay short and carry no raw input.
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


def throttle_keys(ip: str, username: str) -> tuple[str, str]:
    """Return the cache keys (address+username, address) counting failed logins."""
    return (
        f"admin-login-fail:pair:{_digest(ip + chr(0) + username.strip().lower())}",
        f"admin-login-fail:ip:{_digest(ip)}",
    )


def _record_failure(key: str, window: int) -> int:
    for _ in range(2):
        cache.add(key, 0, timeout=window)  # the window starts at the first failure
        try:
            return cache.incr(key)
        except ValueError:
            continue  # expired between add and incr: start a new window
    return 0


def _retry_after(keys: list[str], window: int) -> int:
    ttl = getattr(cache, "ttl", None)
    if ttl is None:
        return window
    remaining = [ttl(key) or 0 for key in keys]
    return max([window if r is None else int(r) for r in remaining] + [1])


class AdminLoginThrottleMiddleware:
    """Answer 429 to admin login POSTs once an address+username failed too often."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self._login_path: str | None = None

    def login_path(self) -> str | None:
        if self._login_path is None:
            try:
                self._login_path = reverse("admin:login")
            except NoReverseMatch:
                return None
        return self._login_path

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or request.path != self.login_path():
            return self.get_response(request)

        max_failures, window = _limits()
        ip = client_ip(request)
        username = str(request.POST.get("username", ""))[:150]
        pair_key, ip_key = throttle_keys(ip, username)
        try:
            counts = cache.get_many([pair_key, ip_key])
        except Exception as exc:
            logger.warning("admin login throttle unavailable: %s", type(exc).__name__)
            return self.get_response(request)

        blocked = [
            key
            for key, limit in ((pair_key, max_failures), (ip_key, max_failures * IP_WIDE_FACTOR))
            if int(counts.get(key) or 0) >= limit
        ]
        if blocked:
            retry_after = _retry_after(blocked, window)
            logger.warning("admin login throttled for client %s", ip)
            response = HttpResponse(
                _PAGE.format(minutes=escape(max(1, -(-retry_after // 60)))), status=429
            )
            response["Retry-After"] = str(retry_after)
            return response

        response = self.get_response(request)
        try:
            if response.status_code == 200:
                # The login view answers a failed attempt by showing the form again (200);
                # success redirects.
                _record_failure(pair_key, window)
                _record_failure(ip_key, window)
            elif 300 <= response.status_code < 400 and request.user.is_authenticated:
                cache.delete(pair_key)
        except Exception as exc:
            logger.warning("admin login throttle unavailable: %s", type(exc).__name__)
        return response
