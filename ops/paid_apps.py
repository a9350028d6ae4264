"""The dashboard's paid-app section: orders by status over time, trials ending, seat overruns.

Each figure links to the admin changelist filtered exactly as the selector that counts
it (licensing.app_orders.admin's TrialFilter and SeatsFilter), so a number is the row
count of the page behind it.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta

from licensing.app_orders import selectors
from licensing.app_orders.models import AppOrderStatus
from ops import charts
from ops import links
from ops.dashboard import BAD
from ops.dashboard import OK
from ops.dashboard import WARN
from ops.dashboard import Figure

CHART_DAYS = 30
LIST_MAX = 20  # rows in each table; the figure's link lists them all
TRIAL_DAYS = (7, 30)
STATUS_COLORS = {
    AppOrderStatus.UNPAID: "#e0a000",
    AppOrderStatus.PAID: "#3f9c35",
    AppOrderStatus.CANCELLED: "#6c6c6c",
    AppOrderStatus.EXPIRED: "#a0a0a0",
    AppOrderStatus.REFUNDING: "#8e44ad",
    AppOrderStatus.REFUNDED: "#ba2121",
    AppOrderStatus.REFUND_REJECTED: "#2c7fb8",
}


def _orders(**params) -> str:
    return links.changelist("licensing_apporder", **params)


def _editions(**params) -> str:
    return links.changelist("licensing_tenantedition", **params)


def _figures(now: datetime) -> list[Figure]:
    unpaid = selectors.app_orders_awaiting_payment()
    counts = selectors.edition_figures(trial_days=TRIAL_DAYS, now=now)
    trials, over = counts["trials"], counts["over_limit"]
    figures = [
        Figure(
            "app orders awaiting payment",
            unpaid,
            _orders(status__exact=AppOrderStatus.UNPAID),
            hint="placed in WeCom, not paid yet: confirmed by callback or polling",
            rows=unpaid,
        )
    ]
    for days in TRIAL_DAYS:
        level = (BAD if days <= 7 else WARN) if trials[days] else OK
        figures.append(
            Figure(
                f"trials ending within {days} days",
                trials[days],
                _editions(trial=str(days)),
                level=level,
                hint="限时试用 of active tenants; extend from the list (prolong_try)",
                rows=trials[days],
            )
        )
    figures.append(
        Figure(
            "editions over their seat limit",
            over,
            _editions(seats="over"),
            level=BAD if over else OK,
            hint="WeCom's app_status 6/7: more members see the app than the edition allows",
            rows=over,
        )
    )
    return figures


def _edition_rows(rows, now: datetime) -> list[dict]:
    out = []
    for row in rows[:LIST_MAX]:
        days_left = max(0, (row.expired_time - now).days) if row.expired_time else None
        out.append(
            {
                "row": row,
                "href": links.change("licensing_tenantedition", row.pk),
                "corp": row.authorization.corp,
                "suite_id": row.authorization.suite.suite_id,
                "days_left": days_left,
                "level": BAD if days_left is not None and days_left <= 7 else WARN,
            }
        )
    return out


def _chart(now: datetime):
    by_day = selectors.app_orders_by_day(days=CHART_DAYS, now=now)
    days = sorted(by_day)
    series = []
    for status in AppOrderStatus:
        points = []
        for day in days:
            count = by_day[day].get(status, 0)
            start = datetime.combine(day, time.min, tzinfo=UTC)
            href = (
                _orders(
                    status__exact=status.value,
                    order_time__gte=start,
                    order_time__lt=start + timedelta(days=1),
                )
                if count
                else None
            )
            points.append(charts.Point(count, href, label=f"{day:%m-%d}"))
        series.append(charts.Series(status.label, STATUS_COLORS[status], points))
    return charts.stacked_bars(
        title=f"App orders placed per day, last {CHART_DAYS} days, by current status (UTC)",
        x_labels=[f"{day:%m-%d}" for day in days],
        series=series,
    )


def section(*, now: datetime) -> dict:
    """Return the paid-app section of the dashboard's context."""
    return {
        "figures": _figures(now),
        "trials": _edition_rows(selectors.trials_ending(within_days=max(TRIAL_DAYS), now=now), now),
        "over_limit": _edition_rows(selectors.editions_over_limit(), now),
        "chart": {
            "id": "app-orders",
            "svg": _chart(now),
            "caption": "App orders by the day they were placed: click a bar for those orders",
        },
    }
