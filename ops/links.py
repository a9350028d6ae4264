"""Admin URLs behind each dashboard figure: a changelist with the list filters that
select exactly the rows the figure counts (see the admin classes named below)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.urls import reverse

from callbacks.admin import CallbackEventAdmin
from callbacks.models import CallbackEvent


def changelist(model_label: str, **params: object) -> str:
    """Return ``/admin/<app>/<model>/?<params>`` (``model_label`` is ``app_model``)."""
    url = reverse(f"admin:{model_label}_changelist")
    query = {key: _param(value) for key, value in params.items() if value is not None}
    return f"{url}?{urlencode(query)}" if query else url


def change(model_label: str, pk: int) -> str:
    return reverse(f"admin:{model_label}_change", args=[pk])


def _param(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)  # the admin splits ``__in`` values on commas
    return str(value)


# --- tenants (tenants.admin) -------------------------------------------------------------------


def suites_stale() -> str:
    return changelist("tenants_suite", ticket="stale")  # TicketStaleFilter


def suite(pk: int) -> str:
    return change("tenants_suite", pk)


def token(pk: int) -> str:
    return change("tenants_credentialtoken", pk)


def tokens(*, kind: str, expiring_before: datetime | None = None, failed: bool = False) -> str:
    params: dict[str, object] = {"kind__exact": kind}
    if expiring_before is not None:
        params.update({"refresh_enabled__exact": 1, "expires_at__lt": expiring_before})
    if failed:
        params["last_refresh_ok__exact"] = 0
    return changelist("tenants_credentialtoken", **params)


def authorizations(*, status: str | None = None, expiry: str | None = None) -> str:
    # ``expiry`` goes to TokenExpiryFilter (``?token=``): "soon" (expires within
    # 30 min), "failed" (last refresh failed) or "flagged" (WeCom refused the credential).
    return changelist("tenants_authorization", status__exact=status, token=expiry)


def jsapi_tickets(*, flagged: bool | None = None) -> str:
    return changelist("api_jsapiticket", flagged__exact=None if flagged is None else int(flagged))


# --- callback inbox (callbacks.admin) ------------------------------------------------------


def callbacks(
    *,
    statuses: tuple[str, ...] = (),
    age: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    slowest_first: bool = False,
) -> str:
    params: dict[str, object] = {"age": age}  # AgeFilter: 1h, 24h, 7d
    if len(statuses) == 1:
        params["status__exact"] = statuses[0]
    elif statuses:
        params["status__in"] = statuses
    if since is not None:
        params["received_at__gte"] = since
    if until is not None:
        params["received_at__lt"] = until
    if slowest_first:
        # The changelist sorts by list_display position: ``o=-N`` is column N descending.
        params["o"] = f"-{CallbackEventAdmin.list_display.index('ack_ms') + 1}"
    return changelist("callbacks_callbackevent", **params)


def callback_backlog() -> str:
    return callbacks(statuses=(CallbackEvent.Status.PENDING, CallbackEvent.Status.PROCESSING))


def rejections(
    *, reason: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> str:
    return changelist(
        "callbacks_callbackrejection", reason=reason, minute__gte=since, minute__lt=until
    )


# --- licenses (licensing.admin) ------------------------------------------------------------


def license_orders(*, status: int) -> str:
    return changelist("licensing_licenseorder", status__exact=status)


def license_accounts_expiring(*, days: int, warning_days: int) -> str:
    # ExpiryFilter: "7" is seven days, "soon" is LICENSE_EXPIRY_WARNING_DAYS.
    if days == 7:
        return changelist("licensing_licenseaccount", expiry="7")
    if days == warning_days:
        return changelist("licensing_licenseaccount", expiry="soon")
    raise ValueError(f"no admin filter for accounts expiring within {days} days")
