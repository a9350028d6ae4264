"""The beat tick at 10 000 tenants: one index range scan over due rows, bounded work.

Rows are bulk-inserted credential rows (the tick reads owner keys only); the refresh
tasks the tick enqueues are real messages in the test Redis broker, counted there.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants import credentials
from tenants import tasks
from tenants.models import CredentialToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture(autouse=True)
def production_ceiling(settings):
    settings.WECOM_MAX_CALLS_PER_SECOND = 10
    settings.WECOM_RATE_PRODUCT_RESERVE_PERCENT = 30
    settings.WECOM_RATE_WINDOW_GUARD_MS = 100


def add_rows(start: int, count: int, *, due: bool) -> None:
    """``count`` corp credentials, due now (overdue by up to an hour) or later today."""
    now = timezone.now()
    rows = [
        CredentialToken(
            kind=CredentialToken.Kind.CORP,
            owner_key=f"corp:wwscale:{'due' if due else 'later'}{start + i:05d}",
            refresh_after=(
                now - timedelta(seconds=1 + (i * 37) % 3600)
                if due
                else now + timedelta(seconds=60 + (i * 7919) % 86_000)
            ),
        )
        for i in range(count)
    ]
    CredentialToken.objects.bulk_create(rows, batch_size=2000)


def queued_keys(broker) -> list[str]:
    """Owner keys of the token_refresh messages waiting in the broker."""
    keys = []
    for raw in broker.lrange("default", 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "tenants.token_refresh"
        keys.append(message["headers"]["argsrepr"].strip("(),'\""))
    return keys


def tick() -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        started = tasks.tokens_refresh_due()
    return started, len(queries.captured_queries)


def test_a_tick_costs_the_same_queries_at_1000_and_10000_tenants(broker):
    add_rows(0, 1000, due=False)
    add_rows(0, 40, due=True)
    started_small, queries_small = tick()

    add_rows(1000, 9000, due=False)
    add_rows(40, 40, due=True)
    started_large, queries_large = tick()

    assert CredentialToken.objects.count() == 10_080
    assert queries_small == queries_large == 1  # the due scan, nothing per tenant
    assert started_small == 40
    # The first 40 are still waiting in the queue: read again, not enqueued twice.
    assert started_large == 40
    keys = queued_keys(broker)
    assert len(keys) == len(set(keys)) == 80
    assert all(":due" in key for key in keys)


@pytest.mark.django_db(transaction=True)
def test_the_due_scan_reads_only_due_rows_through_the_partial_index():
    add_rows(0, 10_000, due=False)
    add_rows(0, 25, due=True)
    with connection.cursor() as cursor:
        # Outside a transaction: VACUUM drops index entries of rows other tests rolled
        # back (an index scan visits those too), so the count below is exact.
        cursor.execute("VACUUM ANALYZE tenants_credentialtoken")
    now = timezone.now()
    query = (
        CredentialToken.objects.filter(refresh_enabled=True, refresh_after__lte=now)
        .order_by("refresh_after")
        .values_list("owner_key", flat=True)[: tasks.refreshes_per_tick()]
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    nodes = []

    def walk(node):
        nodes.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], nodes
    # An index scan, or a bitmap index scan feeding a heap scan: the planner's choice.
    index_nodes = [n for n in nodes if n["Node Type"] in ("Index Scan", "Bitmap Index Scan")]
    assert [n["Index Name"] for n in index_nodes] == ["token_refresh_due"]
    assert index_nodes[0]["Actual Rows"] == 25  # of 10 025 rows, only the due ones were read
    # The same statement the tick runs.
    assert sorted(credentials.tokens_due(now=now, limit=tasks.refreshes_per_tick())) == sorted(
        query
    )


def test_a_tick_starts_what_the_ceiling_can_carry_most_overdue_first(broker):
    # 10 000 tokens obtained together all come due in one wave.
    add_rows(0, 10_000, due=True)
    budget = tasks.refreshes_per_tick()
    # Background share of 10/s (7 per 1.1 s window) for one 60 s tick.
    assert budget == int(7 / 1.1 * 60) == 381
    # Enough for 10 000 corps in steady state: a token is renewed at most every
    # 7200 × (1 − 0.08) s, so a tick needs 10 000 × 60 / 6624 ≈ 91 on average.
    assert budget >= 10_000 * tasks.TICK_SECONDS / (7200 * (1 - credentials.REFRESH_AHEAD[1]))

    started, _ = tick()
    assert started == budget
    expected = list(
        CredentialToken.objects.order_by("refresh_after").values_list("owner_key", flat=True)[
            :budget
        ]
    )
    assert sorted(queued_keys(broker)) == sorted(expected)
    # Nothing is run yet (the ceiling holds the workers back): the next tick adds nothing.
    assert tick()[0] == 0
    # A task that ran clears its mark, so its key may be queued again if still due.
    tasks._unmark_queued(expected[0])
    assert tick()[0] == 1


def test_an_explicit_budget_is_honoured(settings):
    settings.TOKEN_REFRESHES_PER_TICK = 1000
    assert tasks.refreshes_per_tick() == 1000
    settings.TOKEN_REFRESHES_PER_TICK = 10**9
    assert tasks.refreshes_per_tick() == tasks.MAX_REFRESHES_PER_TICK


@pytest.mark.django_db(transaction=True)
def test_a_throttled_background_refresh_defers_without_a_backoff_for_products(
    platform, settings, broker
):
    from tenants import services
    from tenants.models import Authorization
    from tenants.wecom import RATE_KEY

    control = platform.control
    corp = control.add_corp(name="Throttled Corp")
    code = control.install(platform.suite.suite_id, corp["corpid"], push=False)
    services.authorization_install(
        suite=platform.suite, auth_code=code["auth_code"], source="callback"
    )
    authorization = Authorization.objects.select_related("suite", "corp").get(
        corp__corpid=corp["corpid"]
    )
    key = credentials.owner_key(authorization)
    credentials.token_invalidate(authorization)
    CredentialToken.objects.filter(owner_key=key).update(
        refresh_after=timezone.now() - timedelta(seconds=1)
    )
    settings.WECOM_MAX_CALLS_PER_SECOND = 4
    settings.WECOM_RATE_PRODUCT_RESERVE_PERCENT = 50
    settings.WECOM_RATE_BACKGROUND_WAIT = 0
    # Background traffic holds the background share of the window (2 of 4 slots) for
    # the next minute: scores are grant times in µs, here in the future.
    busy_until = (broker.time()[0] + 60) * 1_000_000
    broker.zadd(RATE_KEY, {"bg-1": busy_until, "bg-2": busy_until})
    calls_before = len(control.requests(endpoint="get_corp_token"))

    tasks.token_refresh(key)  # the beat task, run here: throttled, nothing sent

    row = CredentialToken.objects.get(owner_key=key)
    assert len(control.requests(endpoint="get_corp_token")) == calls_before
    assert row.retry_not_before is None
    assert row.consecutive_failures == 0
    assert row.value_sealed == ""
    assert row.refresh_after > timezone.now()  # a later tick looks again
    # A product read right now takes the reserve: it gets a token, no 503.
    token = credentials.token_get(authorization)
    assert token.expires_in() > 300
    assert len(control.requests(endpoint="get_corp_token")) == calls_before + 1
