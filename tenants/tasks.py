"""Thin Celery entry points for tenants: load by id, call one service."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

import redis
from celery import shared_task

from tenants import credentials
from tenants import services
from tenants.models import Authorization
from wecom.errors import WeComBusy
from wecom.errors import WeComTransportError
from wecom.ratelimit import background_calls

logger = logging.getLogger(__name__)


# The beat period of tenants.tokens_refresh_due (wecom_provider/celery.py, SCHEDULE).
TICK_SECONDS = 60
# However high the ceiling, one tick never holds more keys than this (one index range
# scan, one Redis pipeline, this many publishes).
MAX_REFRESHES_PER_TICK = 20_000
QUEUED_KEY = "wcp:refresh-queued:{}"


def refreshes_per_tick() -> int:
    """How many refreshes one tick may start: what the background share of the outbound
    ceiling carries in one tick period (TOKEN_REFRESHES_PER_TICK overrides it).

    At 10/s with a 30 % product reserve and the 1.1 s window that is 7 / 1.1 × 60 = 381
    a tick. Enough: 10 000 corps renewing every ~6 700 s need 10 000 × 60 / 6 700 ≈ 90
    a tick, and a wave (10 000 tokens obtained together) is spread by the jitter over
    ~216 s and drained at this rate in ~26 ticks; starting more would only queue tasks
    that wait for the ceiling. The most overdue rows go first (ORDER BY refresh_after).
    """
    from django.conf import settings

    from tenants.wecom import call_limiter
    from wecom.ratelimit import CallPriority

    configured = int(getattr(settings, "TOKEN_REFRESHES_PER_TICK", 0) or 0)
    if configured > 0:
        return min(configured, MAX_REFRESHES_PER_TICK)
    limiter = call_limiter()
    per_second = limiter.capacity[CallPriority.BACKGROUND] / limiter.window
    return max(1, min(MAX_REFRESHES_PER_TICK, int(per_second * TICK_SECONDS)))


@shared_task(
    name="tenants.tokens_refresh_due", ignore_result=True, soft_time_limit=50, time_limit=60
)
def tokens_refresh_due() -> int:
    """Enqueue one refresh per due token, at most refreshes_per_tick(); return how many.

    Reads only due rows (an index range scan on token_refresh_due, one query whatever
    the number of tenants). A key still waiting in the queue from an earlier tick is
    not enqueued again (a Redis mark set with NX, cleared when its task runs): when the
    ceiling holds the workers back, ticks do not pile duplicates into the broker. A
    second beat racing this one loses the NX and enqueues nothing twice.
    """
    keys = credentials.tokens_due(limit=refreshes_per_tick())
    if not keys:
        return 0
    fresh = _mark_queued(keys)
    for key in fresh:
        token_refresh.delay(key)
    return len(fresh)


def _mark_queued(keys: list[str]) -> list[str]:
    """Return the keys not already queued, marking them queued (one Redis round trip)."""
    from django_redis import get_redis_connection

    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        for key in keys:
            # Expires after two ticks: a task lost by the broker is enqueued again then.
            pipe.set(QUEUED_KEY.format(key), 1, nx=True, ex=2 * TICK_SECONDS)
        marked = pipe.execute()
    except redis.RedisError:
        return keys  # no marks without Redis: duplicates are no-ops, just wasted work
    return [key for key, new in zip(keys, marked, strict=True) if new]


def _unmark_queued(key: str) -> None:
    from django_redis import get_redis_connection

    with contextlib.suppress(redis.RedisError):
        get_redis_connection("default").delete(QUEUED_KEY.format(key))


@shared_task(
    name="tenants.token_refresh",
    ignore_result=True,
    acks_late=True,  # safe: the refresh re-checks "still due" under the credential lock
    soft_time_limit=45,
    time_limit=60,
)
def token_refresh(owner_key: str) -> None:
    # Unmark first: if this run is deferred (throttled, failed), a later tick may queue
    # the key again.
    _unmark_queued(owner_key)
    try:
        # Beat's renewals can be late: they yield the product reserve of the ceiling.
        with background_calls():
            credentials.token_refresh_scheduled(owner_key)
    except (WeComTransportError, WeComBusy) as exc:
        # Failure is recorded on the row with a backoff; the next beat tick retries.
        logger.info("refresh of %s failed transiently: %s", owner_key, type(exc).__name__)
    except Exception:
        logger.exception("refresh of %s failed", owner_key)


@shared_task(
    name="tenants.authorizations_reconcile",
    ignore_result=True,
    soft_time_limit=240,
    time_limit=300,
)
def authorizations_reconcile() -> int:
    """Re-read auth info of authorizations not synced for 6 h: lost callbacks heal."""
    with background_calls():  # nobody waits for it: it yields the product reserve
        return services.authorizations_reconcile(older_than=timedelta(hours=6))


@shared_task(
    name=services.INSTALL_FOLLOW_UP_TASK,
    bind=True,
    ignore_result=True,
    acks_late=True,  # safe: a sync and a token read may run twice
    max_retries=60,  # then the reconciliation (every 30 min) completes the install
    soft_time_limit=60,
    time_limit=90,
)
def install_follow_up(self, authorization_id: int) -> None:
    """Complete an install whose follow-up reads were deferred (services: no room under
    the outbound ceiling while auth codes were being exchanged)."""
    authorization = (
        Authorization.objects.select_related("suite", "corp").filter(pk=authorization_id).first()
    )
    if authorization is None or not authorization.is_active:
        return
    if not services.authorization_install_follow_up(authorization=authorization):
        raise self.retry(countdown=services.follow_up_delay(self.request.retries + 1))


@shared_task(
    name="tenants.authorization_sync",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(WeComTransportError, WeComBusy),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=30,
    time_limit=60,
)
def authorization_sync(authorization_id: int) -> None:
    authorization = Authorization.objects.filter(pk=authorization_id).first()
    if authorization is None:
        logger.info("authorization %s gone; nothing to sync", authorization_id)
        return
    services.authorization_sync(authorization=authorization)
