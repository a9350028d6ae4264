"""The ops app: a dashboard inside the admin and the scrape-time Prometheus gauges.

It sits on top of tenants, licensing and callbacks (reads only, through selectors) and
owns no table (``ops.models.OpsConsole`` only carries permissions; roles: ``ops.roles``).
"""

from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        mount_dashboard()
        register_gauges()


def mount_dashboard() -> None:
    """Add ``/admin/ops/dashboard/`` (``admin:ops_dashboard``) to the default admin site.

    The admin's own URLs stay as they are; the dashboard is wrapped in ``admin_view``
    (staff login, CSRF, never cached) like any admin page, and needs
    ``ops.view_dashboard``. The index page gets a link
    to it through its own template.
    """
    from django.contrib import admin
    from django.urls import path

    site = admin.site
    if getattr(site, "_ops_dashboard_mounted", False):
        return
    original_get_urls = site.get_urls

    def get_urls():
        from ops.views import dashboard_view

        return [
            path("ops/dashboard/", site.admin_view(dashboard_view), name="ops_dashboard"),
            *original_get_urls(),
        ]

    site.get_urls = get_urls
    site.index_template = "ops/admin_index.html"
    site._ops_dashboard_mounted = True


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
