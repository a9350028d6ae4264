"""Thin Celery entry points for licensing: load by id, call one service.

Transient WeCom failures (transport, busy) are retried with backoff and jitter;
anything else fails once and loudly. The poller and reconciler are beat-driven and
safe to run twice: claims are conditional UPDATEs, order moves only go forward.
"""

from __future__ import annotations

import logging

from celery import shared_task

from licensing import services
from licensing.models import LicenseNewOrderJob
from licensing.models import LicenseOrder
from tenants.models import Corp
from wecom.errors import WeComBusy
from wecom.errors import WeComTransportError

logger = logging.getLogger(__name__)

TRANSIENT = (WeComTransportError, WeComBusy)


@shared_task(
    name="licensing.orders_poll_due", ignore_result=True, soft_time_limit=50, time_limit=60
)
def orders_poll_due() -> int:
    """Enqueue one sync per due order and multi-corp job (each claimed once)."""
    order_ids = services.license_orders_claim_due()
    for order_id in order_ids:
        order_sync.delay(order_id)
    job_ids = services.license_new_order_jobs_claim_due()
    for job_id in job_ids:
        new_order_job_sync.delay(job_id)
    return len(order_ids) + len(job_ids)


@shared_task(
    name="licensing.order_sync",
    ignore_result=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=120,
    time_limit=150,
    # Safe: order moves are conditional UPDATEs that only go forward, and account
    # upserts write what WeCom says; running twice converges to the same rows.
    acks_late=True,
)
def order_sync(order_id: int) -> None:
    order = LicenseOrder.objects.filter(pk=order_id).first()
    if order is None:
        logger.info("license order %s gone; nothing to sync", order_id)
        return
    services.license_order_sync(order=order, source="poll")


@shared_task(
    name="licensing.new_order_job_sync",
    ignore_result=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=120,
    time_limit=150,
    acks_late=True,  # safe: reading a job result and mirroring its order is idempotent
)
def new_order_job_sync(job_id: int) -> None:
    job = LicenseNewOrderJob.objects.filter(pk=job_id).first()
    if job is None:
        logger.info("multi-corp job %s gone; nothing to sync", job_id)
        return
    services.license_new_order_job_sync(job=job)


@shared_task(
    name="licensing.reconcile", ignore_result=True, soft_time_limit=25 * 60, time_limit=30 * 60
)
def reconcile() -> dict:
    """Walk list_order over the configured history, then fan out one task per corp."""
    result = services.license_orders_reconcile()
    corps = services.license_reconcile_corps()
    for corp in corps:
        corp_accounts_reconcile.delay(corp.pk)
    if result.errors:
        logger.warning(
            "license reconcile: %d error(s), first: %s", len(result.errors), result.errors[0]
        )
    return {
        "orders_listed": result.orders_listed,
        "orders_synced": result.orders_synced,
        "corps": len(corps),
    }


@shared_task(
    name="licensing.corp_accounts_reconcile",
    ignore_result=True,
    autoretry_for=TRANSIENT,
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=10 * 60,
    time_limit=12 * 60,
)
def corp_accounts_reconcile(corp_id: int) -> None:
    corp = Corp.objects.filter(pk=corp_id).first()
    if corp is None:
        return
    services.license_corp_accounts_reconcile(corp=corp)


@shared_task(
    name="licensing.expiry_scan", ignore_result=True, soft_time_limit=5 * 60, time_limit=6 * 60
)
def expiry_scan() -> int:
    """Publish license.expiring for accounts expiring within LICENSE_EXPIRY_WARNING_DAYS."""
    return services.license_expiry_scan()


# Paid apps' tasks live beside their services; Celery's autodiscovery imports this module.
from licensing.app_orders import tasks as app_order_tasks  # noqa: E402,F401
