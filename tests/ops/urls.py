"""The project's URLs plus a view that fails, for the 500 page in the leak test."""

from django.http import HttpRequest
from django.urls import path

from tenants.models import Suite
from wecom_provider.urls import urlpatterns as project_urlpatterns


def boom(request: HttpRequest):
    # A real failure while a decrypted secret sits in a local variable: neither the 500
    # page nor the logged traceback may show it.
    suite = Suite.objects.order_by("pk").first()
    if suite is not None and suite.secret:
        raise RuntimeError(f"WeCom unreachable for suite {suite.suite_id}")
    raise RuntimeError("no suite registered")


urlpatterns = [path("ops-test/boom/", boom), *project_urlpatterns]
