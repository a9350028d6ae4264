"""Client address helpers shared by ``/metrics`` and the admin login throttle.

Imported by settings.py (``parse_networks``): keep module-level imports free of anything
that reads settings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from django.http import HttpRequest

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def parse_networks(name: str, values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Return ``values`` parsed as networks; raise ``ImproperlyConfigured`` naming ``name``."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must be comma-separated networks such as 10.0.0.0/8"
            ) from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_networks("METRICS_ALLOWED_NETWORKS", values)


def trusted_proxy_count() -> int:
    return int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))


def client_ip(request: HttpRequest) -> str:
    """Return the client's address: REMOTE_ADDR, or X-Forwarded-For behind trusted proxies.

    With ``TRUSTED_PROXY_COUNT = n`` the n-th address from the right of X-Forwarded-For is
    the client (each trusted proxy appends the address it received from); anything left of
    it was written by the client and is ignored.
    """
    count = trusted_proxy_count()
    if count > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR", "")


def is_proxied_without_trust(request: HttpRequest) -> bool:
    """Return whether the request came through a proxy we were not told to trust.

    Then REMOTE_ADDR is the proxy (often 127.0.0.1), not the client, and must not grant
    network-based access.
    """
    return trusted_proxy_count() == 0 and any(h in request.META for h in _PROXY_HEADERS)


def ip_in_networks(address: str, networks: Iterable[str]) -> bool:
    """Return whether ``address`` belongs to one of ``networks`` (CIDR strings)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(
        ip in network for network in _networks(tuple(networks)) if ip.version == network.version
    )
