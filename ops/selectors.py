"""Reads for the ops dashboard and the scrape-time gauges: aggregates, never a write.

Every query here is an aggregate over an indexed range (``received_at``, ``minute``,
``status``, the partial ``license_account_expiry`` index) or over the small tables
(suites, tokens), so the dashboard and a Prometheus scrape stay cheap however large the
inbox grows. The figures use exactly the conditions of the admin list filters they link
to, so a number on the dashboard is the row count of the page behind it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

from django.db import connection
from django.db.models import Aggregate
from django.db.models import Count
from django.db.models import FloatField
from django.db.models import Q
from django.db.models import Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from api.models import JsapiTicket
from callbacks import selectors as callback_selectors
from callbacks.models import CallbackEvent
from callbacks.models import CallbackRejection
from licensing import selectors as license_selectors
from licensing.models import AccountStatus
from licensing.models import LicenseAccount
from licensing.models import LicenseOrder
from licensing.models import OrderStatus
from tenants import selectors as tenant_selectors
from tenants.models import Authorization
from tenants.models import CredentialToken
from tenants.models import Suite

# The admin's TokenExpiryFilter ("soon") and the threshold for tokens.
TOKEN_SOON = timedelta(minutes=30)
# Both windows are exposed as wecom_license_accounts_expiring{days}.
EXPIRY_GAUGE_DAYS = (7, 30)
WINDOW = timedelta(hours=24)

# Superseded rows were processed too: decided, with nothing left to change.
PROCESSED = (
    CallbackEvent.Status.DONE,
    CallbackEvent.Status.IGNORED,
    CallbackEvent.Status.SUPERSEDED,
)
BACKLOG = (CallbackEvent.Status.PENDING, CallbackEvent.Status.PROCESSING)


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(p) WITHIN GROUP (ORDER BY expr)`` (NULLs ignored)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, *, percentile: float, **extra):
        # A float we pass ourselves, formatted into the SQL: never user input.
        super().__init__(expression, percentile=repr(float(percentile)), **extra)


# --- suites and tokens ---------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteHealth:
    suite: Suite
    ticket_age: timedelta | None
    ticket_stale: bool
    token: CredentialToken | None
    credential_state: str  # valid, expiring, expired, none

    @property
    def token_minutes_left(self) -> int | None:
        if self.token is None or self.token.expires_at is None:
            return None
        return int((self.token.expires_at - timezone.now()).total_seconds() // 60)


def _credential_state(token: CredentialToken | None, now: datetime) -> str:
    if token is None or token.expires_at is None or not token.value_sealed:
        return "none"
    if token.expires_at <= now:
        return "expired"
    if token.expires_at < now + TOKEN_SOON:
        return "expiring"
    return "valid"


def suites_health(*, now: datetime | None = None) -> list[SuiteHealth]:
    """Return every suite with its ticket age and its suite token (two small queries)."""
    now = now or timezone.now()
    suites = list(
        Suite.objects.only("pk", "suite_id", "name", "kind", "suite_ticket_timestamp").order_by(
            "suite_id"
        )
    )
    tokens = {
        token.owner_key: token
        for token in CredentialToken.objects.filter(
            owner_key__in=[f"suite:{suite.suite_id}" for suite in suites]
        )
    }
    health = []
    for suite in suites:
        token = tokens.get(f"suite:{suite.suite_id}")
        health.append(
            SuiteHealth(
                suite=suite,
                ticket_age=suite.ticket_age(now=now),
                ticket_stale=suite.ticket_is_stale(now=now),
                token=token,
                credential_state=_credential_state(token, now),
            )
        )
    return health


def suite_ticket_ages(*, now: datetime | None = None) -> list[tuple[str, float]]:
    """Return (suite_id, seconds since its newest ticket) per suite; +Inf without a ticket.

    +Inf keeps a suite that never got a ticket inside an ``age > 1200`` alert.
    """
    now = now or timezone.now()
    ages = []
    for suite_id, timestamp in Suite.objects.values_list("suite_id", "suite_ticket_timestamp"):
        age = float("inf") if timestamp is None else max(0.0, now.timestamp() - timestamp)
        ages.append((suite_id, age))
    return ages


def suites_with_stale_ticket(*, now: datetime | None = None) -> int:
    """Return how many suites have a stale ticket (as the admin's ``?ticket=stale``)."""
    return tenant_selectors.suites_with_stale_ticket(now=now).count()


@dataclass(frozen=True)
class TokenFigures:
    kind: str
    total: int
    expiring: int  # refresh enabled and expiring within 30 min (or expired)
    failed: int  # last refresh failed


def token_figures(*, now: datetime | None = None) -> list[TokenFigures]:
    """Return per kind (provider, suite, corp): tokens, expiring soon, last refresh failed."""
    now = now or timezone.now()
    rows = {
        row["kind"]: row
        for row in CredentialToken.objects.values("kind").annotate(
            total=Count("id"),
            expiring=Count("id", filter=Q(refresh_enabled=True, expires_at__lt=now + TOKEN_SOON)),
            failed=Count("id", filter=Q(last_refresh_ok=False)),
        )
    }
    return [
        TokenFigures(
            kind=kind,
            total=rows.get(kind, {}).get("total", 0),
            expiring=rows.get(kind, {}).get("expiring", 0),
            failed=rows.get(kind, {}).get("failed", 0),
        )
        for kind in CredentialToken.Kind.values
    ]


# --- tenants -------------------------------------------------------------------------------


def authorizations_by_status() -> dict[str, int]:
    """Return {status: count} for every authorization status (zeros included)."""
    counts = {
        row["status"]: row["n"]
        for row in Authorization.objects.order_by().values("status").annotate(n=Count("id"))
    }
    return {status: counts.get(status, 0) for status in Authorization.Status.values}


def corp_token_alerts(*, now: datetime | None = None) -> dict[str, int]:
    """Return active tenants whose corp token expires within 30 min (or has expired),
    tenants whose last corp-token refresh failed, and tenants whose corp credential is
    flagged (admin TokenExpiryFilter soon / failed / flagged); and JS-SDK tickets whose
    fetch WeCom refused for good (``tickets_flagged``)."""
    now = now or timezone.now()
    alerts = Authorization.objects.aggregate(
        expiring=Count(
            "id",
            filter=Q(status=Authorization.Status.ACTIVE, token__expires_at__lt=now + TOKEN_SOON),
        ),
        failed=Count("id", filter=Q(token__last_refresh_ok=False)),
        flagged=Count("id", filter=Q(token__flagged=True)),
    )
    alerts["tickets_flagged"] = JsapiTicket.objects.filter(flagged=True).count()
    return alerts


@dataclass(frozen=True)
class FlaggedTenant:
    """A tenant whose corp credential WeCom refused (ids and the errcode, never a secret)."""

    pk: int
    corpid: str
    corp_name: str
    suite_id: str
    status: str
    last_error: str
    retry_not_before: datetime | None


def flagged_tenants(*, limit: int = 20) -> list[FlaggedTenant]:
    """Return up to ``limit`` tenants whose corp token is flagged (wrong secret, dead code,
    corp gone): no WeCom call is made for them until their backoff ends or ops act."""
    rows = (
        Authorization.objects.filter(token__flagged=True)
        .order_by("corp__corpid", "suite__suite_id")
        .values_list(
            "pk",
            "corp__corpid",
            "corp__name",
            "suite__suite_id",
            "status",
            "token__last_error",
            "token__retry_not_before",
        )[:limit]
    )
    return [FlaggedTenant(*row) for row in rows]


# --- callback inbox --------------------------------------------------------------------------


@dataclass
class HourBucket:
    start: datetime  # the hour (UTC)
    since: datetime  # = start, or the window start for the first, partial hour
    by_status: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    ack_p99_ms: float | None = None

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=1)

    def count(self, *statuses: str) -> int:
        return sum(self.by_status.get(status, 0) for status in statuses)


@dataclass
class InboxReport:
    since: datetime
    buckets: list[HourBucket]
    received: int
    by_status: dict[str, int]
    rejected_by_reason: dict[str, int]
    backlog: int
    ack_p99_ms: float | None

    @property
    def processed(self) -> int:
        return sum(self.by_status.get(status, 0) for status in PROCESSED)

    @property
    def failed(self) -> int:
        return self.by_status.get(CallbackEvent.Status.FAILED, 0)

    @property
    def quarantined(self) -> int:
        return self.by_status.get(CallbackEvent.Status.QUARANTINED, 0)

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def reasons(self) -> list[str]:
        return sorted(self.rejected_by_reason)


def _hours(since: datetime, now: datetime) -> list[datetime]:
    start = since.replace(minute=0, second=0, microsecond=0)
    hours = []
    while start <= now:
        hours.append(start)
        start += timedelta(hours=1)
    return hours


def _ack_p99_by_hour(events) -> tuple[dict[datetime, float], float | None]:
    """Return ({hour: p99 ack_ms}, p99 over the whole window)."""
    if connection.vendor == "postgresql":
        hourly = {
            row["hour"]: row["p99"]
            for row in events.annotate(hour=TruncHour("received_at"))
            .values("hour")
            .annotate(p99=PercentileCont("ack_ms", percentile=0.99))
            .order_by()
        }
        overall = events.aggregate(p99=PercentileCont("ack_ms", percentile=0.99))["p99"]
        return hourly, overall
    # SQLite (make run) has no percentile_cont: the same interpolation in Python, on a
    # development-sized inbox.
    values: dict[datetime, list[float]] = defaultdict(list)
    for received_at, ack_ms in events.exclude(ack_ms__isnull=True).values_list(
        "received_at", "ack_ms"
    ):
        values[received_at.replace(minute=0, second=0, microsecond=0)].append(ack_ms)
    everything = [v for hour in values.values() for v in hour]
    return (
        {hour: _p99(hour_values) for hour, hour_values in values.items()},
        _p99(everything) if everything else None,
    )


def _p99(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def inbox_report(*, now: datetime | None = None, window: timedelta = WINDOW) -> InboxReport:
    """Return the inbox over the last ``window`` in hourly buckets (UTC), with totals.

    Rows are counted by the hour they were received, in their current status; the
    totals are the admin's ``?age=24h`` pages. Rejections come from the per-minute
    counters (no row is stored for a rejected callback).
    """
    now = now or timezone.now()
    since = now - window
    buckets = {hour: HourBucket(start=hour, since=max(hour, since)) for hour in _hours(since, now)}
    events = CallbackEvent.objects.filter(received_at__gte=since).order_by()
    by_status: dict[str, int] = defaultdict(int)
    for row in (
        events.annotate(hour=TruncHour("received_at"))
        .values("hour", "status")
        .annotate(n=Count("id"))
    ):
        bucket = buckets.get(row["hour"])
        if bucket is not None:
            bucket.by_status[row["status"]] = row["n"]
        by_status[row["status"]] += row["n"]
    rejected: dict[str, int] = defaultdict(int)
    for row in (
        CallbackRejection.objects.filter(minute__gte=since)
        .order_by()
        .annotate(hour=TruncHour("minute"))
        .values("hour", "reason")
        .annotate(n=Sum("count"))
    ):
        bucket = buckets.get(row["hour"])
        if bucket is not None:
            bucket.rejected[row["reason"]] = row["n"]
        rejected[row["reason"]] += row["n"]
    hourly_p99, overall_p99 = _ack_p99_by_hour(events)
    for hour, p99 in hourly_p99.items():
        if hour in buckets:
            buckets[hour].ack_p99_ms = p99
    return InboxReport(
        since=since,
        buckets=[buckets[hour] for hour in sorted(buckets)],
        received=sum(by_status.values()),
        by_status=dict(by_status),
        rejected_by_reason=dict(rejected),
        backlog=callback_selectors.inbox_backlog(),
        ack_p99_ms=overall_p99,
    )


def inbox_backlog() -> int:
    """Return callbacks stored and not processed yet (pending or being processed)."""
    return callback_selectors.inbox_backlog()


# --- licenses ------------------------------------------------------------------------------


def license_orders_unpaid() -> int:
    """Return orders waiting for someone to pay them in WeCom's console."""
    return LicenseOrder.objects.filter(status=OrderStatus.UNPAID).count()


def license_accounts_expiring_counts(
    *, days: tuple[int, ...] = EXPIRY_GAUGE_DAYS, now: datetime | None = None
) -> dict[int, int]:
    """Return {days: active accounts expiring within that many days}, in one query.

    Same condition as ``licensing.selectors.license_accounts_expiring`` and the admin's
    ExpiryFilter; a range over the partial index on active accounts' expire_time.
    """
    now = now or timezone.now()
    if not days:
        return {}
    longest = max(days)
    figures = LicenseAccount.objects.filter(
        status=AccountStatus.ACTIVE,
        expire_time__gt=now,
        expire_time__lte=now + timedelta(days=longest),
    ).aggregate(
        **{f"d{d}": Count("id", filter=Q(expire_time__lte=now + timedelta(days=d))) for d in days}
    )
    return {d: figures[f"d{d}"] for d in days}


def license_warning_days() -> int:
    """Return the LICENSE_EXPIRY_WARNING_DAYS window (the admin's ``?expiry=soon``)."""
    return license_selectors.expiry_warning_days()
