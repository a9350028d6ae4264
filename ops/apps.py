"""The ops app: a dashboard inside the admin and the scrape-time Prometheus gauges.

It sits on top of tenants, licensing and callbacks (reads only, through selectors) and
owns no table (``ops.models.OpsConsole`` only carries permissions; roles: ``ops.roles``).
The admin site with the dashboard is ``ops.sites.OpsAdminSite``.
"""

from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        register_gauges()


def register_gauges() -> None:
    """Compute the stored-state gauges from the database whenever /metrics is scraped."""
    from ops import selectors
    from wecom_provider.observability import metrics

    metrics.register_gauge_callback(
        "wecom_suite_ticket_age_seconds",
        lambda: [((suite_id,), age) for suite_id, age in selectors.suite_ticket_ages()],
    )
    metrics.register_gauge_callback("wecom_callback_inbox_backlog", selectors.inbox_backlog)
    metrics.register_gauge_callback(
        "wecom_license_accounts_expiring",
        lambda: [
            ((str(days),), count)
            for days, count in selectors.license_accounts_expiring_counts().items()
        ],
    )
