"""The platform's one WeCom client per process, on the platform-wide call ceiling.

Token-bearing facades over it (``provider_api``, ``suite_api``, ``corp_api``) are in
tenants/wecom.py; this module knows nothing of tokens, so the token layer
(tenants/credentials.py) can mint tokens with it.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.signals import setting_changed
from django_redis import get_redis_connection

from wecom.client import WeComClient
from wecom.ratelimit import CallRateLimiter

_client: WeComClient | None = None
_client_lock = threading.Lock()

# One window for the whole platform (ids only in the key, like every Redis key here).
RATE_KEY = "wcp:wecom:calls"


def wecom_client() -> WeComClient:
    """Return this process's WeCom client (pointed at WECOM_API_BASE)."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = WeComClient(
                    settings.WECOM_API_BASE,
                    timeout=float(settings.WECOM_HTTP_TIMEOUT),
                    on_call=_on_call,
                    limiter=call_limiter(),
                )
    return _client


def call_limiter() -> CallRateLimiter:
    """Return a limiter on the platform-wide WECOM_MAX_CALLS_PER_SECOND (shared Redis)."""

    def redis_client():
        # Resolved on first call, in the process that makes it (forked workers get
        # their own connection pool).
        return get_redis_connection("default")

    return CallRateLimiter(
        settings.WECOM_MAX_CALLS_PER_SECOND,
        redis_client=redis_client,
        key=RATE_KEY,
        ledger=settings.WECOM_RATE_LEDGER or None,
        guard=settings.WECOM_RATE_WINDOW_GUARD_MS / 1000,
        reserve=settings.WECOM_RATE_PRODUCT_RESERVE_PERCENT / 100,
        product_wait=float(settings.WECOM_RATE_PRODUCT_WAIT),
        background_wait=float(settings.WECOM_RATE_BACKGROUND_WAIT),
    )


def _on_call(endpoint: str, errcode: int | None, duration: float) -> None:
    from wecom_provider.observability import metrics

    label = "transport" if errcode is None else str(errcode)
    metrics.API_CALLS_TOTAL.labels(endpoint=endpoint, errcode=label).inc()
    metrics.API_CALL_SECONDS.labels(endpoint=endpoint).observe(duration)


_CLIENT_SETTINGS = {"WECOM_API_BASE", "WECOM_HTTP_TIMEOUT", "WECOM_MAX_CALLS_PER_SECOND"}


def _reset_client(*, setting: str, **kwargs) -> None:
    global _client
    if (setting in _CLIENT_SETTINGS or setting.startswith("WECOM_RATE_")) and _client is not None:
        _client.close()
        _client = None


setting_changed.connect(_reset_client)
