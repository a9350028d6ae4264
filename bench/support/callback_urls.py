"""Bench-only URLconf of the callback handler: WeCom's URLs plus the bare view."""

from django.urls import path

from bench.support.urls import bare
from wecom_provider.callback_urls import urlpatterns as callback_urlpatterns

urlpatterns = [
    path("callbacks/bench-bare/", bare, name="bench-bare-lean"),
    *callback_urlpatterns,
]
