"""Admin login throttling: django-axes, made race-free with a PostgreSQL advisory lock.

The ops console guards every tenant's credentials, so password guessing is capped.
django-axes (database handler, so the counts live in PostgreSQL beside the users) locks
out a username, and separately a client address, after ``ADMIN_LOGIN_MAX_FAILURES``
failures within ``ADMIN_LOGIN_FAILURE_WINDOW`` seconds. While locked out even the right
password is refused, so a guesser cannot tell that a guess was right.

Axes alone is check-then-act: its backend reads the failure count before the password is
checked and the failure is counted afterwards, so N parallel guesses all read "0" and
all get checked. :class:`AdminLoginSerializeMiddleware` closes that window by holding a
transaction-scoped advisory lock per username and per address around the login view:
the next attempt for the same username or address reads the count only after the
previous one has committed its failure.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db import transaction
from django.http import HttpRequest
from django.http import HttpResponse
from django.urls import NoReverseMatch
from django.urls import reverse
from django.utils.html import escape

from wecom_provider.observability.net import client_ip

logger = logging.getLogger(__name__)

_PAGE = (
    "<!doctype html><html><head><title>Too many login attempts</title></head><body>"
    "<h1>Too many failed login attempts</h1>"
    "<p>Sign-in is locked for this account or address. Try again in {minutes} minute(s); "
    "if you need access sooner, ask a security admin to run "
    "<code>manage.py axes_reset_username</code>.</p></body></html>"
)


# --- axes hooks (named in settings.AXES_*) ----------------------------------------------
def axes_client_ip(request: HttpRequest) -> str:
    """Return the client address axes counts: the same one /metrics and the logs use."""
    return client_ip(request)


def axes_cool_off(request: HttpRequest | None = None) -> timedelta:
    """Return the lockout window; read per call so tests can override the setting."""
    return timedelta(seconds=settings.ADMIN_LOGIN_FAILURE_WINDOW)


def axes_failure_limit(request: HttpRequest, credentials: dict | None) -> int:
    """Return how many failures lock a username or address out."""
    return settings.ADMIN_LOGIN_MAX_FAILURES


def axes_lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """Return the 429 page shown to a locked-out login attempt, with Retry-After."""
    window = int(settings.ADMIN_LOGIN_FAILURE_WINDOW)
    logger.warning("admin login locked out for client %s", client_ip(request))
    response = HttpResponse(_PAGE.format(minutes=escape(max(1, -(-window // 60)))), status=429)
    # At most the window: the lock ends `window` seconds after the last counted failure.
    response["Retry-After"] = str(window)
    response["Cache-Control"] = "no-store"
    return response


# --- serialization ------------------------------------------------------------------------
def _lock_id(kind: str, value: str) -> int:
    # pg_advisory_xact_lock takes a signed 64-bit key; hashing keeps raw input out of it.
    digest = hashlib.blake2b(f"admin-login:{kind}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdminLoginSerializeMiddleware:
    """Run admin login POSTs one at a time per username and per client address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self._login_path: str | None = None

    def login_path(self) -> str | None:
        if self._login_path is None:
            try:
                self._login_path = reverse("admin:login")
            except NoReverseMatch:
                return None
        return self._login_path

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method != "POST"
            or request.path != self.login_path()
            or connection.vendor != "postgresql"  # `make run` on SQLite: one local user
        ):
            return self.get_response(request)
        username = str(request.POST.get("username", "")).strip().lower()[:150]
        # Sorted, so two attempts needing the same two locks never wait on each other.
        keys = sorted({_lock_id("user", username), _lock_id("ip", client_ip(request))})
        # The transaction is the lock's scope: axes' failure rows commit in it, and the
        # locks are released by that same commit, so the next waiter reads the new count.
        with transaction.atomic():
            with connection.cursor() as cursor:
                for key in keys:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
            return self.get_response(request)
