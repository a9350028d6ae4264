"""The install entry from the provider's own site (protocol §4.1).

``/install/<suite_id>/`` sends the admin's browser to WeCom's install page with a fresh
pre-auth code; WeCom sends it back to ``/install/<suite_id>/done/?auth_code=…&state=…``,
where the code is exchanged (exactly once, even if a create_auth callback races us).
"""

from __future__ import annotations

import logging
import re

from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils.html import escape
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from tenants import services
from tenants.credentials import CredentialUnavailable
from tenants.lifecycle import EventNotApplied
from tenants.models import Suite
from wecom_provider.wecom.errors import WeComError

logger = logging.getLogger(__name__)

STATE_RE = re.compile(r"^[A-Za-z0-9]{0,128}$")  # WeCom's rule for install state
AUTH_CODE_RE = re.compile(r"^[\x21-\x7e]{1,512}$")


def _page(title: str, message: str, *, status: int = 200) -> HttpResponse:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>"
        f"<p>{escape(message)}</p></body></html>"
    )
    return HttpResponse(body, status=status)


@never_cache
@require_GET
def install_start(request: HttpRequest, suite_id: str) -> HttpResponse:
    suite = get_object_or_404(Suite, suite_id=suite_id)
    state = request.GET.get("state", "")
    if not STATE_RE.match(state):
        return _page("Invalid request", "state must be at most 128 letters or digits", status=400)
    test = request.GET.get("test") in {"1", "true"}
    try:
        link = services.install_link_create(suite=suite, state=state, test=test)
    except services.InstallLinkInvalid as exc:
        return _page("Invalid request", str(exc), status=400)
    except (WeComError, CredentialUnavailable) as exc:
        logger.warning("install link for %s failed: %s", suite_id, type(exc).__name__)
        return _page("Try again shortly", "WeCom could not be reached.", status=503)
    return HttpResponseRedirect(link.url)


@never_cache
@require_GET
def install_done(request: HttpRequest, suite_id: str) -> HttpResponse:
    suite = get_object_or_404(Suite, suite_id=suite_id)
    auth_code = request.GET.get("auth_code", "")
    state = request.GET.get("state", "")
    if not AUTH_CODE_RE.match(auth_code) or not STATE_RE.match(state):
        return _page("Invalid request", "auth_code is missing or malformed.", status=400)
    try:
        authorization = services.authorization_install(
            suite=suite, auth_code=auth_code, source="redirect", state=state
        )
    except services.InstallInProgress:
        return _page("Almost there", "The installation is being completed; refresh shortly.")
    except (services.InstallFailed, EventNotApplied, WeComError) as exc:
        logger.warning("install of %s failed: %s", suite_id, type(exc).__name__)
        return _page(
            "Installation failed",
            "The authorization code was refused or expired; start the installation again.",
            status=400,
        )
    name = authorization.corp.name or authorization.corp.corpid
    return _page("Installed", f"{suite.name or suite.suite_id} is now installed for {name}.")
