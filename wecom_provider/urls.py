from django.contrib import admin
from django.urls import path

from wecom_provider import health

admin.site.site_header = "wecom-provider operations"
admin.site.site_title = "wecom-provider"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]
