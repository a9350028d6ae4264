from django.contrib import admin
from django.http import HttpResponse
from django.urls import include
from django.urls import path

from wecom_provider import health
from wecom_provider.observability.views import metrics_view

urlpatterns = [
    # Browsers ask for it on every admin page; an empty answer beats a logged 404.
    path("favicon.ico", lambda request: HttpResponse(status=204)),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("callbacks/", include("callbacks.urls")),
    path("api/", include("api.urls")),
    path("", include("tenants.urls")),
]
