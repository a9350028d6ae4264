"""Thin Celery entry points for tenants: load by id, call one service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task

from tenants import credentials
from tenants import services
from tenants.models import Authorization
from wecom_provider.wecom.errors import WeComBusy
from wecom_provider.wecom.errors import WeComTransportError

logger = logging.getLogger(__name__)


@shared_task(
    name="tenants.tokens_refresh_due", ignore_result=True, soft_time_limit=50, time_limit=60
)
def tokens_refresh_due() -> int:
    """Enqueue one refresh per due token (a second beat enqueues duplicates; they no-op)."""
    keys = credentials.tokens_due()
    for key in keys:
        token_refresh.delay(key)
    return len(keys)


@shared_task(
    name="tenants.token_refresh",
    ignore_result=True,
    acks_late=True,  # safe: the refresh re-checks "still due" under the credential lock
    soft_time_limit=45,
    time_limit=60,
)
def token_refresh(owner_key: str) -> None:
    try:
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
    return services.authorizations_reconcile(older_than=timedelta(hours=6))


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
