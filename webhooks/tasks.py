"""Thin Celery entry points of the webhooks app (queue ``webhooks``)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from webhooks import services


@shared_task(
    name=services.DELIVER_BATCH_TASK,
    ignore_result=True,
    # Safe: the attempts claim their rows with a conditional UPDATE
    # (services.deliveries_attempt), so a redelivered message finds them leased or
    # finished and sends nothing.
    acks_late=True,
    # The sends run side by side, each within ssrf.ATTEMPT_DEADLINE (20 s); the lease
    # (services.LEASE) outlasts the hard limit.
    soft_time_limit=services.ATTEMPT_TIME_LIMIT - 10,
    time_limit=services.ATTEMPT_TIME_LIMIT,
)
def deliver_batch(delivery_ids: list[int]) -> dict[int, str]:
    return services.deliveries_attempt(delivery_ids=list(delivery_ids))


@shared_task(
    name=services.DELIVER_TASK,
    ignore_result=True,
    acks_late=True,
    soft_time_limit=services.ATTEMPT_TIME_LIMIT - 10,
    time_limit=services.ATTEMPT_TIME_LIMIT,
)
def deliver(delivery_id: int) -> str:
    # One delivery per message: what releases before deliver_batch published (messages
    # may still be queued, or counting down, across an upgrade).
    return services.delivery_attempt(delivery_id=delivery_id)


@shared_task(
    name="webhooks.deliveries_sweep", ignore_result=True, soft_time_limit=25, time_limit=30
)
def deliveries_sweep() -> int:
    return services.deliveries_sweep()


@shared_task(name="webhooks.feed_prune", ignore_result=True, soft_time_limit=240, time_limit=300)
def feed_prune() -> int:
    return services.feed_prune(older_than=timedelta(days=settings.FEED_RETENTION_DAYS))
