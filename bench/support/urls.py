"""Bench-only URLconf: every production URL, plus a bare view that only answers `success`.

The bare view is the baseline of bench/callbacks.py: the same gunicorn, middleware and
request parsing as the callback URL, none of the callback work. Never in production urls.
"""

from django.http import HttpRequest
from django.http import HttpResponse
from django.urls import include
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    request.body  # read the body, as the callback view does  # noqa: B018
    response = HttpResponse("success", content_type="text/plain")
    response["Content-Length"] = "7"  # as the callback views do (no CommonMiddleware there)
    return response


urlpatterns = [
    path("bench/bare/", bare, name="bench-bare"),
    path("", include("wecom_provider.urls")),
]
