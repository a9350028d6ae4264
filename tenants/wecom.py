"""The platform's one WeCom client per process, and token sources backed by tenants.

Services get their facades here (`provider_api`, `suite_api`, `corp_api`): the
token sources read tokens through tenants.credentials (cache, lock, database), so
a token WeCom rejects is force-refreshed once by the client, single-flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed
from django_redis import get_redis_connection

from wecom.client import CorpApi
from wecom.client import ProviderApi
from wecom.client import SuiteApi
from wecom.client import WeComClient
from wecom.endpoints import TokenKind
from wecom.ratelimit import CallRateLimiter

_client: WeComClient | None = None
_client_lock = threading.Lock()


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


# One window for the whole platform (ids only in the key, like every Redis key here).
RATE_KEY = "wcp:wecom:calls"


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


@dataclass
class CredentialSource:
    """A TokenSource reading one credential through tenants.credentials."""

    kind: TokenKind
    owner: object  # Provider, Suite or Authorization

    def get(self) -> str:
        from tenants import credentials

        return credentials.token_get(self.owner).value

    def refresh(self, rejected: str) -> str:
        from tenants import credentials

        return credentials.token_get(self.owner, rejected=rejected).value


def provider_api(provider) -> ProviderApi:
    return wecom_client().provider(CredentialSource(TokenKind.PROVIDER, provider))


def suite_api(suite) -> SuiteApi:
    return wecom_client().suite(CredentialSource(TokenKind.SUITE, suite))


def corp_api(authorization) -> CorpApi:
    return wecom_client().corp(
        CredentialSource(TokenKind.CORP, authorization), corp_id=authorization.corp.corpid
    )
