"""Which keys open which callback URL, and which receive ids each accepts (protocol §7.1).

Lookups are cached per process for a short time: the request path must not pay for
a database query and two AES-GCM openings per callback. Two rules keep the cache from
losing callbacks (WeCom does not retry a rejected one):
- "no such route" is never cached: a suite registered a second ago (in another
  process) must accept its first callback;
- a callback that fails the signature or decryption with a cached route is checked
  once more against a fresh route, so a rotated Token or key works at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.db.models.signals import post_save

from tenants.models import Provider
from tenants.models import Suite
from wecom.crypto import CallbackCrypto

ROUTE_TTL = 30.0


@dataclass(frozen=True)
class Route:
    endpoint: str  # command | data | system
    route_id: str  # suite_id, or the provider corpid
    crypto: CallbackCrypto
    provider_corpid: str
    suite_id: str = ""

    def get_receive_ids(self) -> frozenset[str]:
        """Receive ids accepted on GET URL verification."""
        if self.endpoint == "command":
            # Reported: provider corpid on GET, suite id on POST. Accept exactly both.
            return frozenset({self.provider_corpid, self.suite_id})
        return frozenset({self.provider_corpid})

    def post_receive_ids(self, to_user_name: str) -> frozenset[str] | None:
        """Receive ids accepted on POST; None means "the authorizing corp" (checked later)."""
        if self.endpoint == "command":
            return frozenset({self.suite_id})
        if self.endpoint == "system":
            return frozenset({self.provider_corpid})
        return None


_cache: dict[tuple[str, str], tuple[float, Route]] = {}
_lock = threading.Lock()


def route_for(endpoint: str, route_id: str, *, fresh: bool = False) -> Route | None:
    """Return the route for a callback URL, or None when nothing is registered there.

    ``fresh`` bypasses the cache (used to re-check a callback the cached keys refused).
    """
    key = (endpoint, route_id)
    now = time.monotonic()
    cached = None if fresh else _cache.get(key)
    if cached and cached[0] > now:
        return cached[1]
    route = _load(endpoint, route_id)
    with _lock:
        if route is None:
            _cache.pop(key, None)
        else:
            _cache[key] = (now + ROUTE_TTL, route)
    return route


def _load(endpoint: str, route_id: str) -> Route | None:
    if endpoint == "system":
        provider = Provider.objects.filter(corpid=route_id).first()
        if provider is None:
            return None
        crypto = CallbackCrypto(provider.callback_token, provider.encoding_aes_key, provider.corpid)
        return Route(endpoint, route_id, crypto, provider_corpid=provider.corpid)
    suite = Suite.objects.select_related("provider").filter(suite_id=route_id).first()
    if suite is None:
        return None
    crypto = CallbackCrypto(suite.callback_token, suite.encoding_aes_key, suite.suite_id)
    return Route(
        endpoint, route_id, crypto, provider_corpid=suite.provider.corpid, suite_id=suite.suite_id
    )


def routes_forget(**kwargs) -> None:
    with _lock:
        _cache.clear()


post_save.connect(routes_forget, sender=Suite, dispatch_uid="callbacks-routes-suite")
post_save.connect(routes_forget, sender=Provider, dispatch_uid="callbacks-routes-provider")
