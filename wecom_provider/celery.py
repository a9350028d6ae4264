"""The Celery application and the beat schedule.

Run workers with ``celery -A wecom_provider worker -Q priority,default`` and, apart,
``… worker -Q webhooks -n webhooks@%h`` (attempts wait on products' receivers), and
beats with ``celery -A wecom_provider beat`` (as many as you like: the redbeat scheduler
set in settings lets one lead and keeps the others as standbys). Every periodic task
must still be safe to run twice: a redelivery, a retry or a leader that dies between
sending a tick and recording it can fire it again.
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
    # Paid apps: orders not final and editions due; the order-list walk; trial warnings.
    ("app-orders-poll", "licensing.app_orders_poll_due", 2 * MIN),
    ("app-orders-reconcile", "licensing.app_orders_reconcile", 6 * 60 * MIN),
    ("trial-expiry-scan", "licensing.trials_expiring_scan", 60 * MIN),
    ("webhook-deliveries-sweep", "webhooks.deliveries_sweep", 10),  # retries, lost messages
    ("feed-prune", "webhooks.feed_prune", 60 * MIN),
]


def beat_schedule(scale: float = 1.0, overrides: dict[str, float] | None = None) -> dict:
    """The schedule for ``app.conf.beat_schedule``; ``scale`` shortens every period,
    ``overrides`` sets single entries' periods (seconds)."""
    overrides = overrides or {}
    unknown = set(overrides) - {name for name, _, _ in SCHEDULE}
    if unknown:
        raise ValueError(f"no beat entries named {sorted(unknown)}")
    schedule = {}
    for name, task, period in SCHEDULE:
        seconds = max(1.0, overrides.get(name, period * scale))
        schedule[name] = {
            "task": task,
            "schedule": seconds,
            "options": {"expires": seconds * 0.9},
        }
    return schedule


@app.on_after_configure.connect
def _install_schedule(sender, **kwargs) -> None:
    # After Celery has loaded Django's settings (not at import: importing the package
    # must not need a configured environment).
    from django.conf import settings

    sender.conf.beat_schedule = beat_schedule(
        getattr(settings, "BEAT_PERIOD_SCALE", 1.0),
        getattr(settings, "BEAT_PERIOD_OVERRIDES", {}),
    )


@app.task(name="wecom_provider.ping", ignore_result=False, soft_time_limit=5, time_limit=10)
def ping(value: str) -> str:
    """Return ``value`` unchanged: proves a round trip through broker, worker and backend."""
    return value


from wecom_provider.observability import celery_signals  # noqa: E402,F401  (connects the hooks)
