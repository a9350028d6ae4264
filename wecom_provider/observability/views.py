"""``/metrics``: the Prometheus text exposition, for scrapers only.

Access is granted by either of:

- ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time), when the
  setting is non-empty;
- a client address inside ``METRICS_ALLOWED_NETWORKS`` (default loopback only), for a
  request that carries no Authorization header and did not come through an untrusted
  proxy (see ``net.is_proxied_without_trust``).

Anything else gets a bare 403: no hint about which check failed.
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpRequest
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest
from prometheus_client.registry import Collector

from wecom_provider.observability import metrics
from wecom_provider.observability.net import client_ip
from wecom_provider.observability.net import ip_in_networks
from wecom_provider.observability.net import is_proxied_without_trust


class _DefaultRegistry(Collector):
    """This process's default registry as one collector (no describe: nothing runs early)."""

    def collect(self):
        return REGISTRY.collect()


_single_process_registry = CollectorRegistry()
_single_process_registry.register(_DefaultRegistry())
_single_process_registry.register(metrics.SCRAPE_TIME)


def metrics_registry() -> CollectorRegistry:
    """Return what ``/metrics`` exposes: the process's (or, in multiprocess mode, every
    process's) counters and histograms, plus the scrape-time gauges."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return _single_process_registry
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(metrics.SCRAPE_TIME)
    return registry


def metrics_access_allowed(request: HttpRequest) -> bool:
    header = request.headers.get("Authorization")
    if header is not None:
        token = getattr(settings, "METRICS_TOKEN", "") or ""
        scheme, _, presented = header.partition(" ")
        if not token or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), token.encode())
    if is_proxied_without_trust(request):
        return False
    networks = getattr(settings, "METRICS_ALLOWED_NETWORKS", ())
    return bool(networks) and ip_in_networks(client_ip(request), networks)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_access_allowed(request):
        return HttpResponse(status=403)
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
