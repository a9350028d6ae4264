"""Liveness and readiness probes.

``/healthz`` answers as long as the process serves requests. ``/readyz`` checks the
dependencies a request may need and names the failing one, never its URL (which
may carry a password).
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

_redis_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    # One pool per process; short timeouts so a dead Redis answers 503 quickly.
    global _redis_client
    if _redis_client is None:
        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
    return _redis_client


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis() -> None:
    _redis().ping()


READINESS_CHECKS = {"database": check_database, "redis": check_redis}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception as exc:
            # The exception text can hold a DSN; log only its type.
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
            checks[name] = "unavailable"
        else:
            checks[name] = "ok"
    failing = [name for name, state in checks.items() if state != "ok"]
    body: dict = {"status": "unavailable" if failing else "ok", "checks": checks}
    if failing:
        body["failing"] = failing
    if checks["database"] == "ok":
        # Detail, not a failure: a stale ticket stops new suite tokens, not this process.
        body["suite_tickets"] = {"stale": stale_suite_tickets()}
    return JsonResponse(body, status=503 if failing else 200)


def stale_suite_tickets() -> list[str]:
    """Return the ids of the suites whose ticket is stale (tenants.selectors)."""
    from tenants.selectors import suites_with_stale_ticket

    return list(suites_with_stale_ticket().order_by("suite_id").values_list("suite_id", flat=True))
