"""What the ops dashboard shows: figures with the admin page behind each, and charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from django.utils import timezone

from callbacks.models import CallbackEvent
from licensing.models import OrderStatus
from ops import charts
from ops import gateway_panel
from ops import links
from ops import selectors
from tenants.models import Authorization

# Thresholds for the colour of a figure. WeCom wants an answer within 1 s (create_auth)
# and retries a callback it got no answer for; p99 ack should stay far below that.
ACK_P99_WARN_MS = 250.0
ACK_P99_BAD_MS = 1000.0
BACKLOG_WARN = 20
BACKLOG_BAD = 200

OK, INFO, WARN, BAD = "ok", "info", "warn", "bad"


@dataclass(frozen=True)
class Figure:
    """One number on the dashboard and the admin changelist listing what it counts.

    ``rows`` is what that changelist counts (rows, or for rejections the sum of the
    per-minute counters); tests compare the two.
    """

    label: str
    value: int | str
    href: str
    level: str = INFO
    hint: str = ""
    rows: int | None = None


def _level(value: float, *, warn: float, bad: float) -> str:
    if value >= bad:
        return BAD
    if value >= warn:
        return WARN
    return OK


def _duration(delta: timedelta | None) -> str:
    if delta is None:
        return "no ticket"
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _hour_label(bucket: selectors.HourBucket) -> str:
    return f"{bucket.start:%H}:00"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


# --- sections ----------------------------------------------------------------------------------


def suite_rows(now: datetime) -> list[dict]:
    rows = []
    for health in selectors.suites_health(now=now):
        token = health.token
        minutes = health.token_minutes_left
        if health.credential_state == "none":
            credential_text = "no token"
        elif health.credential_state == "expired":
            credential_text = "expired"
        else:
            credential_text = f"valid for {minutes} min"
        if token is not None and token.last_refresh_ok is False:
            credential_text += f" · last refresh failed ({token.last_error or 'unknown error'})"
        token_level = {"valid": OK, "expiring": WARN}.get(health.credential_state, BAD)
        if token is not None and token.last_refresh_ok is False:
            token_level = BAD
        rows.append(
            {
                "suite": health.suite,
                "href": links.suite(health.suite.pk),
                "ticket_age": _duration(health.ticket_age),
                "ticket_level": BAD if health.ticket_stale else OK,
                "ticket_stale": health.ticket_stale,
                "credential_text": credential_text,
                "token_level": token_level,
                "token_href": links.token(token.pk) if token is not None else None,
            }
        )
    return rows


def token_rows(now: datetime) -> list[dict]:
    soon = now + selectors.TOKEN_SOON
    rows = [
        {
            "kind": figures.kind,
            "total": Figure(
                "tokens", figures.total, links.tokens(kind=figures.kind), rows=figures.total
            ),
            "expiring": Figure(
                "expiring < 30 min",
                figures.expiring,
                links.tokens(kind=figures.kind, expiring_before=soon),
                rows=figures.expiring,
            ),
            "failed": Figure(
                "last refresh failed",
                figures.failed,
                links.tokens(kind=figures.kind, failed=True),
                level=BAD if figures.failed else OK,
                rows=figures.failed,
            ),
        }
        for figures in selectors.token_figures(now=now)
    ]
    for row in rows:
        row["figures"] = [row["total"], row["expiring"], row["failed"]]
    return rows


def tenant_figures(now: datetime) -> tuple[list[Figure], list[Figure]]:
    by_status = selectors.authorizations_by_status()
    levels = {
        Authorization.Status.ACTIVE: OK,
        Authorization.Status.SUSPENDED: WARN,
        Authorization.Status.CANCELLED: INFO,
    }
    statuses = [
        Figure(
            status,
            count,
            links.authorizations(status=status),
            level=levels[status] if count else OK,
            rows=count,
        )
        for status, count in by_status.items()
    ]
    alerts = selectors.corp_token_alerts(now=now)
    tokens = [
        Figure(
            "active tenants: corp token expires < 30 min",
            alerts["expiring"],
            links.authorizations(status=Authorization.Status.ACTIVE, expiry="soon"),
            hint="renewed 10–14 min before expiry; an expired one means refreshes stopped",
            rows=alerts["expiring"],
        ),
        Figure(
            "tenants: last corp token refresh failed",
            alerts["failed"],
            links.authorizations(expiry="failed"),
            level=BAD if alerts["failed"] else OK,
            rows=alerts["failed"],
        ),
        Figure(
            FLAGGED_LABEL,
            alerts["flagged"],
            links.authorizations(expiry="flagged"),
            level=BAD if alerts["flagged"] else OK,
            hint="wrong secret, dead permanent code or corp gone: no WeCom call until ops act",
            rows=alerts["flagged"],
        ),
        Figure(
            "JS-SDK tickets flagged (WeCom refused the fetch)",
            alerts["tickets_flagged"],
            links.jsapi_tickets(flagged=True),
            level=WARN if alerts["tickets_flagged"] else OK,
            hint="e.g. 48002: the app lacks the permission; signatures answer 503 meanwhile",
            rows=alerts["tickets_flagged"],
        ),
    ]
    return statuses, tokens


FLAGGED_LABEL = "tenants: corp credential flagged (WeCom refused it)"


def inbox_section(now: datetime) -> dict:
    report = selectors.inbox_report(now=now)
    status = CallbackEvent.Status
    figures = [
        Figure(
            "received (24 h)", report.received, links.callbacks(age="24h"), rows=report.received
        ),
        Figure(
            "processed (24 h)",
            report.processed,
            links.callbacks(age="24h", statuses=selectors.PROCESSED),
            level=OK,
            rows=report.processed,
        ),
        Figure(
            "failed (24 h)",
            report.failed,
            links.callbacks(age="24h", statuses=(status.FAILED,)),
            level=BAD if report.failed else OK,
            rows=report.failed,
        ),
        Figure(
            "quarantined (24 h)",
            report.quarantined,
            links.callbacks(age="24h", statuses=(status.QUARANTINED,)),
            level=WARN if report.quarantined else OK,
            rows=report.quarantined,
        ),
        Figure(
            "backlog (pending now)",
            report.backlog,
            links.callback_backlog(),
            level=_level(report.backlog, warn=BACKLOG_WARN, bad=BACKLOG_BAD),
            hint="stored, not processed yet: the sweeper re-dispatches every 30 s",
            rows=report.backlog,
        ),
        Figure(
            "rejected (24 h)",
            report.rejected,
            links.rejections(since=report.since),
            level=WARN if report.rejected else OK,
            rows=report.rejected,
        ),
        Figure(
            "p99 ack latency (24 h)",
            _ms(report.ack_p99_ms),
            links.callbacks(age="24h", slowest_first=True),
            level=OK
            if report.ack_p99_ms is None
            else _level(report.ack_p99_ms, warn=ACK_P99_WARN_MS, bad=ACK_P99_BAD_MS),
            hint="from storing to answering WeCom; slowest first",
        ),
    ]
    reasons = [
        Figure(
            reason,
            report.rejected_by_reason[reason],
            links.rejections(reason=reason, since=report.since),
            level=WARN,
            rows=report.rejected_by_reason[reason],
        )
        for reason in report.reasons
    ]
    return {
        "figures": figures,
        "reasons": reasons,
        "since": report.since,
        "charts": _inbox_charts(report),
    }


def _inbox_charts(report: selectors.InboxReport) -> list[dict]:
    buckets = report.buckets
    # The first and the last bucket are the same hour of two days: call the last "now".
    x_labels = [_hour_label(b) for b in buckets[:-1]] + ["now"] if buckets else []
    status = CallbackEvent.Status

    def layer(name: str, color: str, statuses: tuple[str, ...]) -> charts.Series:
        return charts.Series(
            name,
            color,
            [
                charts.Point(
                    b.count(*statuses),
                    links.callbacks(statuses=statuses, since=b.since, until=b.end)
                    if b.count(*statuses)
                    else None,
                    label=_hour_label(b),
                )
                for b in buckets
            ],
        )

    inbox = charts.stacked_bars(
        title="Callbacks received per hour, by current status (UTC)",
        x_labels=x_labels,
        series=[
            layer("processed", charts.COLORS["processed"], selectors.PROCESSED),
            layer("pending", charts.COLORS["backlog"], selectors.BACKLOG),
            layer("failed", charts.COLORS["failed"], (status.FAILED,)),
            layer("quarantined", charts.COLORS["quarantined"], (status.QUARANTINED,)),
        ],
    )
    rejections = charts.stacked_bars(
        title="Callbacks rejected per hour, by reason (UTC)",
        x_labels=x_labels,
        series=[
            charts.Series(
                reason,
                charts.REASON_COLORS[i % len(charts.REASON_COLORS)],
                [
                    charts.Point(
                        b.rejected.get(reason, 0),
                        links.rejections(reason=reason, since=b.since, until=b.end)
                        if b.rejected.get(reason)
                        else None,
                        label=_hour_label(b),
                    )
                    for b in buckets
                ],
            )
            for i, reason in enumerate(report.reasons)
        ],
    )
    latency = charts.line(
        title="p99 callback ack latency per hour, ms (UTC)",
        x_labels=x_labels,
        unit="ms",
        series=[
            charts.Series(
                "p99 ack",
                charts.COLORS["latency"],
                [
                    charts.Point(
                        None if b.ack_p99_ms is None else round(b.ack_p99_ms, 1),
                        links.callbacks(since=b.since, until=b.end, slowest_first=True),
                        label=_hour_label(b),
                    )
                    for b in buckets
                ],
            )
        ],
    )
    return [
        {"id": "inbox", "svg": inbox, "caption": "Inbox by hour: click a bar for its callbacks"},
        {"id": "rejections", "svg": rejections, "caption": "Rejections by hour and reason"},
        {"id": "latency", "svg": latency, "caption": "p99 time to store and answer a callback"},
    ]


def license_figures(now: datetime) -> list[Figure]:
    unpaid = selectors.license_orders_unpaid()
    warning_days = selectors.license_warning_days()
    windows = sorted({7, warning_days})
    expiring = selectors.license_accounts_expiring_counts(days=tuple(windows), now=now)
    figures = [
        Figure(
            "orders awaiting payment",
            unpaid,
            links.license_orders(status=OrderStatus.UNPAID),
            hint="paid by a person in WeCom's console; confirmed by callback or polling",
            rows=unpaid,
        )
    ]
    for days in windows:
        figures.append(
            Figure(
                f"accounts expiring within {days} days",
                expiring[days],
                links.license_accounts_expiring(days=days, warning_days=warning_days),
                level=(BAD if days <= 7 else WARN) if expiring[days] else OK,
                rows=expiring[days],
            )
        )
    return figures


def build(*, now: datetime | None = None) -> dict:
    """Return the dashboard's template context (without the admin's own context)."""
    now = now or timezone.now()
    suites = suite_rows(now)
    stale = selectors.suites_with_stale_ticket(now=now)
    statuses, corp_tokens = tenant_figures(now)
    tokens = token_rows(now)
    inbox = inbox_section(now)
    licenses = license_figures(now)
    failed_refreshes = sum(row["failed"].value for row in tokens)
    glance = [
        Figure(
            "suites with a stale ticket",
            stale,
            links.suites_stale(),
            level=BAD if stale else OK,
            hint="no suite_ticket for 20+ min: suite tokens cannot be renewed",
            rows=stale,
        ),
        Figure(
            "token refreshes failing",
            failed_refreshes,
            links.changelist("tenants_credentialtoken", last_refresh_ok__exact=0),
            level=BAD if failed_refreshes else OK,
            rows=failed_refreshes,
        ),
        next(f for f in corp_tokens if f.label == FLAGGED_LABEL),
        next(f for f in inbox["figures"] if f.label.startswith("backlog")),
        next(f for f in inbox["figures"] if f.label.startswith("failed")),
        next(f for f in inbox["figures"] if f.label.startswith("p99")),
        licenses[-1],
    ]
    return {
        "now": now,
        "glance": glance,
        "suites": suites,
        "tokens": tokens,
        "tenant_statuses": statuses,
        "corp_tokens": corp_tokens,
        "flagged_tenants": [
            {"tenant": tenant, "href": links.change("tenants_authorization", tenant.pk)}
            for tenant in selectors.flagged_tenants()
        ],
        "inbox": inbox,
        "licenses": licenses,
        "gateway": gateway_panel.section(),
    }
