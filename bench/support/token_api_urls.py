"""Bench-only URLconf and WSGI entry: the project's URLs plus a bare DRF view.

``gunicorn bench.support.token_api_urls:application`` serves the real application with one
extra route, ``/bench/bare/``: a DRF APIView with no authentication, permission or
throttle that returns a constant body shaped like the token answer. It is the floor
the token endpoint is compared with (same process, middleware, renderer and server).
Never part of the deployed URLconf.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wecom_provider.settings")

from django.conf import settings
from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()  # django.setup()
# Only in the bench server process: route requests through this module.
settings.ROOT_URLCONF = __name__

from django.urls import path  # noqa: E402
from rest_framework.permissions import AllowAny  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from wecom_provider.urls import urlpatterns as project_urlpatterns  # noqa: E402

BARE_BODY = {
    "access_token": "x" * 64,
    "expires_at": "2030-01-01T00:00:00Z",
    "expires_in": 7000,
}


class BareApi(APIView):
    """The framework floor: DRF dispatch and JSON rendering, nothing else."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response(BARE_BODY)


urlpatterns = [path("bench/bare/", BareApi.as_view()), *project_urlpatterns]
