"""The Celery application and the beat schedule.

Run a worker with ``celery -A wecom_provider worker -Q priority,default,webhooks`` and one
beat with ``celery -A wecom_provider beat``. Every periodic task must still be
safe to run twice: a second beat, a redelivery or a retry can fire it again.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wecom_provider.settings")

app = Celery("wecom_provider")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

MIN = 60
# name, task, period (s). `expires` drops a tick that waited too long in a backed-up
# queue instead of stacking it behind the next one.
SCHEDULE: list[tuple[str, str, int]] = [
    ("tokens-refresh-due", "tenants.tokens_refresh_due", 1 * MIN),
    ("authorizations-reconcile", "tenants.authorizations_reconcile", 30 * MIN),
    ("callback-inbox-sweep", "callbacks.inbox_sweep", 30),  # the broker can lose messages
    ("callback-inbox-prune", "callbacks.inbox_prune", 60 * MIN),
    ("license-orders-poll", "licensing.orders_poll_due", 2 * MIN),
    ("license-reconcile", "licensing.reconcile", 6 * 60 * MIN),
    ("license-expiry-scan", "licensing.expiry_scan", 60 * MIN),
    ("webhook-deliveries-sweep", "webhooks.deliveries_sweep", 10),  # retries, lost messages
    ("feed-prune", "webhooks.feed_prune", 60 * MIN),
]

app.conf.beat_schedule = {
    name: {"task": task, "schedule": period, "options": {"expires": period * 0.9}}
    for name, task, period in SCHEDULE
}


@app.task(name="wecom_provider.ping", ignore_result=False, soft_time_limit=5, time_limit=10)
def ping(value: str) -> str:
    """Return ``value`` unchanged: proves a round trip through broker, worker and backend."""
    return value


from wecom_provider.observability import celery_signals  # noqa: E402,F401  (connects the hooks)
