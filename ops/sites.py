"""The admin site of the ops console: Django's, plus the dashboard and its index link.

Installed in place of ``django.contrib.admin`` (INSTALLED_APPS names OpsAdminConfig), so
``admin.site`` is an OpsAdminSite from the start and every app's ``@admin.register``
lands on it. The dashboard is one more admin URL (``admin:ops_dashboard``), wrapped in
``admin_view`` (staff login, CSRF, never cached) like any admin page; the view itself
needs ``ops.view_dashboard``.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import URLPattern
from django.urls import URLResolver
from django.urls import path


class OpsAdminSite(admin.AdminSite):
    site_header = "wecom-provider operations"
    site_title = "wecom-provider"
    # Django's index with a link to the dashboard.
    index_template = "ops/admin_index.html"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        # Imported here, not at the top: this module loads with the app registry,
        # before any model may be imported; URLs are built once it is ready.
        from ops.views import dashboard_view

        return [
            path("ops/dashboard/", self.admin_view(dashboard_view), name="ops_dashboard"),
            *super().get_urls(),
        ]


class OpsAdminConfig(AdminConfig):
    default_site = "ops.sites.OpsAdminSite"
