"""Bench-only URLconf and WSGI entry: the project's URLs plus a bare DRF view.

``gunicorn bench.support.token_api_urls:application`` serves the real application with one
extra route, ``/bench/bare/``: a DRF APIView with no authentication, permission or
throttle that returns a constant body shaped like the token answer. It is the floor
the token endpoint is compared with (same process, middleware, renderer and server).
And ``/bench/floor/<suite_id>/<corpid>/``: the same bare view doing only the token read's
mandated work with the platform's own functions (key lookup, hash check, rate limit,
token read, audit row), none of the API layers around it: the ceiling of the ratio for
any endpoint that must do that work. Never part of the deployed URLconf.
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


class FloorApi(BareApi):
    """The token read's mandated work, called directly (no authentication classes,
    permissions, throttles, scoped views or error handling of our own)."""

    def get(self, request, suite_id: str, corpid: str):
        from api.keys import key_matches
        from api.keys import key_prefix_of
        from api.selectors import api_key_lookup
        from api.services import audit_record
        from api.throttling import rate_limit_hit
        from tenants.credentials import token_get

        key = request.headers["Authorization"].partition(" ")[2]
        row, tenant = api_key_lookup(prefix=key_prefix_of(key), tenant=(suite_id, corpid))
        if not key_matches(key, row.key_hash) or tenant is None:
            raise RuntimeError("the bench key must open the bench tenant")
        rate_limit_hit(client_id=row.client_id, limit=10**9)
        token = token_get(tenant)
        audit_record(
            client=row.client,
            key=row,
            action="token.read",
            method="GET",
            status_code=200,
            suite_id=suite_id,
            corpid=corpid,
        )
        return Response(
            {"access_token": token.value, "expires_at": token.expires_at, "expires_in": 7000}
        )


urlpatterns = [
    path("bench/bare/", BareApi.as_view()),
    path("bench/floor/<str:suite_id>/<str:corpid>/", FloorApi.as_view()),
    *project_urlpatterns,
]
