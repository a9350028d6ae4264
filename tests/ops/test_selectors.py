"""The dashboard's aggregates on PostgreSQL: hourly buckets, p99, rejections, the window."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from callbacks.models import CallbackEvent
from callbacks.models import CallbackRejection
from ops import selectors

NOW = datetime(2026, 3, 4, 15, 40, tzinfo=UTC)


def event(n: int, *, received_at: datetime, status: str = "done", ack_ms: float | None = None):
    return CallbackEvent.objects.create(
        endpoint="command",
        route_id="wwsuite",
        receive_id="wwsuite",
        info_type="suite_ticket",
        dedupe_key=f"selector-test-{n}",
        payload_sealed="",
        status=status,
        received_at=received_at,
        ack_ms=ack_ms,
    )


@pytest.mark.django_db
def test_inbox_report_buckets_by_hour_within_the_last_24_hours():
    # 100 callbacks in the current hour with ack 1..100 ms; p99 interpolates like
    # percentile_cont: 99 + 0.01 * (100 - 99).
    for n in range(1, 101):
        event(n, received_at=NOW - timedelta(minutes=30), ack_ms=float(n))
    event(200, received_at=NOW - timedelta(hours=5), status="failed", ack_ms=4.0)
    event(201, received_at=NOW - timedelta(hours=5), status="pending")
    event(202, received_at=NOW - timedelta(hours=23, minutes=50), status="quarantined")
    event(203, received_at=NOW - timedelta(hours=25), status="failed")  # outside the window
    for minute, reason, count in (
        (NOW - timedelta(minutes=10), "bad_signature", 3),
        (NOW - timedelta(minutes=11), "bad_signature", 2),
        (NOW - timedelta(hours=2), "malformed", 1),
        (NOW - timedelta(hours=30), "malformed", 50),  # outside the window
    ):
        CallbackRejection.objects.create(
            minute=minute.replace(second=0, microsecond=0),
            endpoint="command",
            reason=reason,
            count=count,
        )

    report = selectors.inbox_report(now=NOW)

    assert report.since == NOW - timedelta(hours=24)
    assert len(report.buckets) == 25  # a partial hour at each end
    assert report.buckets[0].start == datetime(2026, 3, 3, 15, tzinfo=UTC)
    assert report.buckets[0].since == report.since
    assert report.buckets[-1].start == datetime(2026, 3, 4, 15, tzinfo=UTC)
    assert report.received == 103
    assert report.processed == 100
    assert report.failed == 1
    assert report.quarantined == 1
    assert report.backlog == 1  # pending rows, whatever their age
    assert report.rejected_by_reason == {"bad_signature": 5, "malformed": 1}
    assert report.ack_p99_ms == pytest.approx(99.0)  # 101 values: 1..100 and 4.0
    current = report.buckets[-1]
    assert current.count(*selectors.PROCESSED) == 100
    assert current.ack_p99_ms == pytest.approx(99.01)
    assert current.rejected == {"bad_signature": 5}
    ten = datetime(2026, 3, 4, 10, tzinfo=UTC)
    five_hours_ago = next(b for b in report.buckets if b.start == ten)
    assert five_hours_ago.by_status == {"failed": 1, "pending": 1}
    assert report.buckets[0].by_status == {"quarantined": 1}
    assert sum(sum(b.by_status.values()) for b in report.buckets) == report.received


def test_the_python_percentile_matches_postgresqls_percentile_cont():
    # make run's SQLite fallback must agree with percentile_cont (linear interpolation).
    assert selectors._p99([float(n) for n in range(1, 101)]) == pytest.approx(99.01)
    assert selectors._p99([7.0]) == 7.0
