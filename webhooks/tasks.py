"""Thin Celery entry points of the webhooks app (queue ``webhooks``)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from webhooks import services


@shared_task(
    name="webhooks.deliver",
    ignore_result=True,
    # Safe: the attempt claims its row with a conditional UPDATE (services.delivery_attempt),
    # so a redelivered message finds it leased or finished and does nothing.
    acks_late=True,
    # The HTTP timeout is 10 s per connect and per read; well under the lease.
    soft_time_limit=30,
    time_limit=40,
)
def deliver(delivery_id: int) -> str:
    return services.delivery_attempt(delivery_id=delivery_id)


@shared_task(
    name="webhooks.deliveries_sweep", ignore_result=True, soft_time_limit=25, time_limit=30
)
def deliveries_sweep() -> int:
    return services.deliveries_sweep()


@shared_task(name="webhooks.feed_prune", ignore_result=True, soft_time_limit=240, time_limit=300)
def feed_prune() -> int:
    return services.feed_prune(older_than=timedelta(days=settings.FEED_RETENTION_DAYS))
