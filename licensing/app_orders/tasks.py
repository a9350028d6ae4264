"""Thin Celery entry points for paid apps: load by id, call one service.

Beat-driven (wecom_provider/celery.py): the poller (orders not final, editions due, the
tenants app's fresh reads adopted), the reconciler and the trial warning scan. Each is
safe to run twice: claims are conditional UPDATEs, order moves only go forward, edition
writes are fenced by read time, feed entries are keyed by their cause.
"""

from __future__ import annotations

import logging

from celery import shared_task

from licensing.app_orders import editions
from licensing.app_orders import reconcile as reconciler
from licensing.app_orders import selectors
from licensing.app_orders import services
from licensing.app_orders.models import AppOrder
from tenants.models import Authorization
from wecom.errors import WeComBusy
from wecom.errors import WeComTransportError

logger = logging.getLogger(__name__)

TRANSIENT = (WeComTransportError, WeComBusy)


@shared_task(
    name="licensing.app_orders_poll_due", ignore_result=True, soft_time_limit=50, time_limit=60
)
def app_orders_poll_due() -> int:
    """Adopt fresh tenant reads, then enqueue one read per due order and due edition."""
    editions.editions_adopt()
    order_ids = services.app_orders_claim_due()
    for order_id in order_ids:
        app_order_sync.delay(order_id)
    edition_ids = editions.editions_claim_due()
    for edition_id in edition_ids:
        edition_refresh.delay(edition_id)
    return len(order_ids) + len(edition_ids)


@shared_task(
    name="licensing.app_order_sync",
    ignore_result=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
    # Safe: order moves are conditional UPDATEs that only go forward; a second run reads
    # WeCom again and converges to the same row.
    acks_late=True,
)
def app_order_sync(order_id: int) -> None:
    order = AppOrder.objects.select_related("suite").filter(pk=order_id).first()
    if order is None:
        logger.info("app order %s gone; nothing to sync", order_id)
        return
    services.app_order_sync(order=order, source="poll")


@shared_task(
    name="licensing.edition_refresh",
    ignore_result=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
    acks_late=True,  # safe: a read fenced by its start time, applied once or twice alike
)
def edition_refresh(edition_id: int) -> None:
    row = editions.TenantEdition.objects.filter(pk=edition_id).first()
    if row is None or row.authorization.status != Authorization.Status.ACTIVE:
        return
    editions.edition_refresh(authorization=row.authorization, source="poll")


@shared_task(
    name="licensing.app_orders_reconcile",
    ignore_result=True,
    soft_time_limit=25 * 60,
    time_limit=30 * 60,
)
def app_orders_reconcile() -> dict:
    """Walk get_order_list over the history, then fan out one edition read per tenant."""
    result = reconciler.app_orders_reconcile(read_editions=False)
    tenants = list(selectors.editions_to_reconcile().values_list("pk", flat=True))
    for pk in tenants:
        edition_reconcile.delay(pk)
    if result.errors:
        logger.warning(
            "app order reconcile: %d error(s), first: %s", len(result.errors), result.errors[0]
        )
    return {
        "orders_listed": result.orders_listed,
        "orders_new": result.orders_new,
        "tenants": len(tenants),
    }


@shared_task(
    name="licensing.edition_reconcile",
    ignore_result=True,
    autoretry_for=TRANSIENT,
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def edition_reconcile(authorization_id: int) -> None:
    authorization = Authorization.objects.filter(pk=authorization_id).first()
    if authorization is None or not authorization.is_active:
        return
    editions.edition_refresh(authorization=authorization, source="reconcile")


@shared_task(
    name="licensing.trials_expiring_scan",
    ignore_result=True,
    soft_time_limit=5 * 60,
    time_limit=6 * 60,
)
def trials_expiring_scan() -> int:
    """Publish trial.expiring for trials ending within 30 and within 7 days."""
    return editions.trials_expiring_scan()
