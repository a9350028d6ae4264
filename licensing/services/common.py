"""What every licence write shares: errors, the provider, WeCom values, backoff."""

from __future__ import annotations

import hashlib
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from licensing.models import LicenseBatch
from licensing.models import OrderStatus
from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import Provider
from tenants.wecom import provider_api
from wecom.client import ProviderApi
from wecom_provider.backoff import backoff

DAY = 86400
LIST_ORDER_WINDOW = timedelta(days=31)  # §6.3: start_time..end_time spans ≤31 days
MULTI_CORP_ITEMS_PER_CALL = 10  # §6.3: create_new_order_job takes ≤10 buy_list items
# Errcode recorded for an item whose call got no answer (timeout, connection, 5xx).
TRANSPORT_ERRCODE = -1
# A claimed-but-unfinished poll is retried after this (the worker may have died).
POLL_LEASE = timedelta(minutes=5)
# (first delay, cap) in seconds of the poll backoff per status; doubled per quiet poll.
POLL_BACKOFF: dict[int, tuple[int, int]] = {
    OrderStatus.UNPAID: (60, 30 * 60),
    OrderStatus.PAID: (60 * 60, 24 * 60 * 60),  # a refund request (→4) has no callback
    OrderStatus.REFUNDING: (10 * 60, 6 * 60 * 60),
}
ACCOUNTS_BACKOFF = (30, 30 * 60)  # 701022: codes are still being generated
NEW_ORDER_JOB_BACKOFF = (10, 10 * 60)
# active_account errcodes after which another free code may work (taken, unknown, too old).
TRY_NEXT_CODE_ERRCODES = frozenset({701003, 701012, 701021})


class LicenseError(Exception):
    """A license operation cannot run (message names ids, never a secret)."""


class LicenseBatchFailed(LicenseError):
    """WeCom accepted no item of a batch; ``batch`` holds every item's errcode."""

    def __init__(self, message: str, batch: LicenseBatch) -> None:
        super().__init__(message)
        self.batch = batch


# --- small helpers ----------------------------------------------------------------------


def from_unix(value: Any) -> datetime | None:
    """Return WeCom's Unix seconds as an aware datetime; 0/None/garbage mean "none"."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds > 0 else None


def to_unix(value: datetime) -> int:
    return int(value.timestamp())


def as_int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def idempotency_key(*parts: Any) -> str:
    """Return a ≤128-char idempotency key (FeedEvent.source_key, receipts)."""
    text = ":".join(str(p) for p in parts)
    if len(text) <= 128:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:40]
    return f"{text[:80]}…{digest}"


def corp_for_id(corpid: str) -> Corp:
    """Return the Corp row for a corpid WeCom gave us, creating a bare one if new.

    License events can name a corp before its authorization reached us (or after a
    history-only reconcile); the row is filled in by tenants on install.
    """
    corp, _ = Corp.objects.get_or_create(corpid=corpid)
    return corp


def license_provider(*, corp: Corp | None = None) -> Provider:
    """Return the provider whose license APIs cover ``corp`` (usually the only one)."""
    if corp is not None:
        provider = Provider.objects.filter(suites__authorizations__corp=corp).order_by("pk").first()
        if provider is not None:
            return provider
    provider = Provider.objects.order_by("pk").first()
    if provider is None:
        raise LicenseError("no provider is registered")
    return provider


def license_write_guard(*, authorization) -> None:
    """Refuse a product's licence write for a tenant that is not active (issue 14 §3).

    Reads the status from the database (not the caller's copy): a suspend, cancel or
    dissolution committed in any process refuses the very next write.
    """
    from tenants.credentials import AuthorizationInactive

    status = (
        Authorization.objects.filter(pk=authorization.pk).values_list("status", flat=True).first()
    )
    if status != Authorization.Status.ACTIVE:
        raise AuthorizationInactive(f"authorization {authorization} is {status}")


def license_api(provider: Provider | None = None, *, corp: Corp | None = None) -> ProviderApi:
    return provider_api(provider or license_provider(corp=corp))


def poll_backoff(attempts: int, base: int, cap: int) -> timedelta:
    # ±10 % jitter: orders created together must not be polled in lock-step forever.
    return backoff(attempts, base=base, cap=cap, jitter=(0.9, 1.1))


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
