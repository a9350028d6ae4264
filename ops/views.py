"""The ops dashboard page (mounted in the admin by ``ops.apps``; staff only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from ops import dashboard
from wecom_provider.adminperms import admin_view_requiring


@admin_view_requiring("ops.view_dashboard")
def dashboard_view(request: HttpRequest) -> TemplateResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Operations dashboard",
        **dashboard.build(),
    }
    return TemplateResponse(request, "ops/dashboard.html", context)
