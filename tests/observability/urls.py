"""The project's URLs plus views that log, for tests that go through the whole stack."""

import logging

from django.http import HttpResponse
from django.urls import path

from wecom_provider.observability import log_context
from wecom_provider.urls import urlpatterns as project_urlpatterns

logger = logging.getLogger("tests.observability.views")


def log_view(request):
    secret = request.GET.get("s", "")
    with log_context(suite_id="wwsuite1", corp_id="wwcorp1"):
        logger.info("fetched token %s for corp", secret)
        logger.info("payload %s", {"access_token": "tok-in-dict-123", "expires_in": 7200})
    logger.warning("calling /cgi-bin/gettoken?corpid=ww1&corpsecret=%s", secret)
    return HttpResponse("ok")


def boom_view(request):
    secret = request.GET.get("s", "")
    raise RuntimeError(f"WeCom said no to permanent code {secret}")


urlpatterns = [
    *project_urlpatterns,
    path("test/log", log_view),
    path("test/boom", boom_view),
]
