"""The ops dashboard page (an admin URL of ``ops.sites.OpsAdminSite``; staff only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from ops import dashboard
from ops import paid_apps
from wecom_provider.adminperms import admin_view_requiring


@admin_view_requiring("ops.view_dashboard")
def dashboard_view(request: HttpRequest) -> TemplateResponse:
    figures = dashboard.build()
    context = {
        **admin.site.each_context(request),
        "title": "Operations dashboard",
        **figures,
        "paid_apps": paid_apps.section(now=figures["now"]),
    }
    return TemplateResponse(request, "ops/dashboard.html", context)
