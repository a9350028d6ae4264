"""The install entry from the provider's own site (protocol §4.1).

``/install/<suite_id>/`` sends the admin's browser to WeCom's install page with a fresh
pre-auth code; WeCom sends it back to ``/install/<suite_id>/done/?auth_code=…&state=…``,
where the code is exchanged (exactly once, even if a create_auth callback races us).
"""

from __future__ import annotations

import hashlib
import logging
import re

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils.html import escape
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from tenants import install_links
from tenants import services
from tenants.credentials import CredentialUnavailable
from tenants.lifecycle import EventNotApplied
from tenants.models import Suite
from wecom.errors import WeComError
from wecom_provider.observability.net import client_ip

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


def _rate_limited(request: HttpRequest) -> int:
    """Count this hit for the client address; return seconds to wait if over the limit, else 0.

    A fixed one-minute window in Redis: ``add`` starts it, ``incr`` is atomic, so the cap
    holds across every web process. If Redis is down the entry stays open (and logs): a
    cache outage must not stop corps from installing.
    """
    digest = hashlib.sha256(client_ip(request).encode()).hexdigest()[:32]  # no raw address
    key = f"install-start:{digest}"
    try:
        count = 0
        for _ in range(2):
            cache.add(key, 0, timeout=60)
            try:
                count = cache.incr(key)
                break
            except ValueError:
                continue  # the window ended between add and incr: start a new one
        if count <= settings.INSTALL_RATE_LIMIT_PER_MINUTE:
            return 0
        ttl = cache.ttl(key)
    except Exception as exc:
        logger.warning("install rate limit unavailable: %s", type(exc).__name__)
        return 0
    return max(1, int(ttl or 60))


@never_cache
@require_GET
def install_start(request: HttpRequest, suite_id: str) -> HttpResponse:
    # Counted before anything else, so probing unknown suites or bad links is capped too.
    if retry_after := _rate_limited(request):
        response = _page(
            "Too many requests",
            f"Too many install attempts from your address; try again in {retry_after} s.",
            status=429,
        )
        response["Retry-After"] = str(retry_after)
        return response
    # Unknown suite: 404 before any WeCom call.
    suite = get_object_or_404(Suite, suite_id=suite_id)
    # A `state` in the query is ignored: from an anonymous visitor it would come back
    # signed as ours, and products trust a signed state. Products get one only through
    # install links they create with the API.
    # The signed token travels as `test_token`: a name the log redaction already treats
    # as a secret (wecom_provider/observability/redaction.py), so access logs drop it.
    test = "test" in request.GET or "test_token" in request.GET
    if test and not install_links.test_link_valid(
        suite_id=suite.suite_id, token=request.GET.get("test_token", "")
    ):
        # 测试授权 bars the corp from ever authorizing formally: never for anonymous
        # visitors, only through an unexpired link a security admin created.
        return _page(
            "Test install link invalid",
            "Test installs need a signed link created by a security admin in the ops "
            "console; this one is missing its signature, is for another suite or has "
            "expired. Ask for a new link.",
            status=403,
        )
    try:
        link = services.install_link_create(suite=suite, test=test)
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
