"""/metrics after a simulator scenario: every series the Operations issue lists is there,
with the labels it promises and values that follow what happened.

Counters are process-wide and other tests move them too, so the test compares a scrape
taken after the scenario with one taken before it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from callbacks.models import CallbackEvent
from licensing.models import AccountStatus
from licensing.models import AccountType
from licensing.models import LicenseAccount
from ops import selectors
from tenants.models import Corp
from tenants.models import Suite
from tests.ops.scenario import Day
from tests.tenants.factories import make_suite

Samples = dict[tuple[str, frozenset], float]


def scrape() -> tuple[dict, Samples]:
    """Return (families by name, {(sample name, labels): value}) from GET /metrics."""
    response = Client().get("/metrics")  # from 127.0.0.1: inside METRICS_ALLOWED_NETWORKS
    assert response.status_code == 200, response.status_code
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in families.values()
        for s in family.samples
    }
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def before(ops_gauges, db) -> Samples:
    return scrape()[1]


@pytest.mark.slow
def test_metrics_expose_every_series_of_the_issue_after_a_scenario(before, day: Day):
    families, after = scrape()

    # Family and type of each series (counters lose their _total in the family name).
    expected = {
        "wecom_suite_ticket_age_seconds": "gauge",
        "wecom_token_refresh": "counter",
        "wecom_token_refresh_seconds": "histogram",
        "wecom_api_calls": "counter",
        "wecom_api_call_seconds": "histogram",
        "wecom_callback_ingest_seconds": "histogram",
        "wecom_callback_results": "counter",
        "wecom_callback_inbox_backlog": "gauge",
        "celery_task_outcomes": "counter",
        "wecom_license_accounts_expiring": "gauge",
    }
    for name, kind in expected.items():
        assert name in families, name
        assert families[name].type == kind, name

    # Suite ticket age, per suite: both suites got a ticket seconds ago.
    for suite in Suite.objects.all():
        age = value(after, "wecom_suite_ticket_age_seconds", suite_id=suite.suite_id)
        assert 0 <= age < 120, (suite.suite_id, age)

    # Token refreshes by kind and outcome, with their latency.
    for kind in ("provider", "suite", "corp"):
        assert grew(before, after, "wecom_token_refresh_total", kind=kind, outcome="ok") >= 1, kind
        assert grew(before, after, "wecom_token_refresh_seconds_count", kind=kind) >= 1, kind
    # The dissolved corp's forced refresh failed.
    assert grew(before, after, "wecom_token_refresh_total", kind="corp", outcome="error") >= 1

    # WeCom calls by endpoint and errcode: successes and the errors the scenario caused.
    assert grew(before, after, "wecom_api_calls_total", endpoint="get_suite_token", errcode="0")
    assert grew(before, after, "wecom_api_calls_total", endpoint="get_permanent_code", errcode="0")
    assert grew(before, after, "wecom_api_calls_total", endpoint="get_auth_info", errcode="60011")
    dissolved = [
        (dict(labels), v - before.get((name, labels), 0.0))
        for (name, labels), v in after.items()
        if name == "wecom_api_calls_total" and dict(labels)["errcode"] in {"301007", "2000002"}
    ]
    assert any(delta >= 1 for _, delta in dissolved), dissolved
    assert grew(before, after, "wecom_api_call_seconds_count", endpoint="get_corp_token") >= 1

    # Callback ingest latency (a histogram with buckets) and results by reason.
    stored = CallbackEvent.objects.filter(endpoint="command").count()
    assert grew(before, after, "wecom_callback_ingest_seconds_count", endpoint="command") >= stored
    assert value(after, "wecom_callback_ingest_seconds_bucket", endpoint="command", le="1.0") > 0
    assert grew(before, after, "wecom_callback_results_total", endpoint="command", result="stored")
    for (endpoint, reason), count in {
        ("command", "bad_signature"): 2,
        ("data", "malformed"): 1,
        ("command", "unknown_route"): 1,
    }.items():
        result = f"rejected_{reason}"
        got = grew(before, after, "wecom_callback_results_total", endpoint=endpoint, result=result)
        assert got >= count, (endpoint, reason)

    # Inbox backlog, computed from the database when scraped.
    assert value(after, "wecom_callback_inbox_backlog") == selectors.inbox_backlog() == 0

    # Celery task outcomes: every callback went through the real task (apply()).
    processed = grew(
        before, after, "celery_task_outcomes_total", task="callbacks.process", outcome="success"
    )
    assert processed >= CallbackEvent.objects.count()

    # License accounts expiring within 7 and 30 days, as the selectors count them.
    counts = selectors.license_accounts_expiring_counts()
    for days in (7, 30):
        got = value(after, "wecom_license_accounts_expiring", days=str(days))
        assert ("wecom_license_accounts_expiring", frozenset({("days", str(days))})) in after
        assert got == counts[days]

    # Every scrape-time function ran.
    for gauge in (
        "wecom_suite_ticket_age_seconds",
        "wecom_callback_inbox_backlog",
        "wecom_license_accounts_expiring",
    ):
        assert value(after, "wecom_scrape_callback_up", gauge=gauge) == 1, gauge


def test_gauges_follow_the_database(ops_gauges, db):
    now = timezone.now()
    fresh = make_suite()
    Suite.objects.filter(pk=fresh.pk).update(suite_ticket_timestamp=int(now.timestamp()) - 90)
    never = make_suite()
    corp = Corp.objects.create(corpid="wpgaugecorp")
    for n, (days, status) in enumerate(
        [
            (3, AccountStatus.ACTIVE),
            (20, AccountStatus.ACTIVE),
            (29, AccountStatus.ACTIVE),
            (45, AccountStatus.ACTIVE),  # beyond both windows
            (-2, AccountStatus.ACTIVE),  # already expired
            (5, AccountStatus.EXPIRED),  # not active
        ]
    ):
        LicenseAccount.objects.create(
            corp=corp,
            active_code=f"LCGAUGE{n}",
            type=AccountType.BASE,
            status=status,
            expire_time=now + timedelta(days=days),
        )
    CallbackEvent.objects.create(
        endpoint="command",
        route_id=fresh.suite_id,
        receive_id=fresh.suite_id,
        info_type="suite_ticket",
        dedupe_key="gauge-test",
        payload_sealed="",
    )
    # (left pending on purpose: it is the backlog)

    _, samples = scrape()
    age = value(samples, "wecom_suite_ticket_age_seconds", suite_id=fresh.suite_id)
    assert 85 <= age <= 150
    assert value(samples, "wecom_suite_ticket_age_seconds", suite_id=never.suite_id) == float("inf")
    assert value(samples, "wecom_callback_inbox_backlog") == 1
    assert value(samples, "wecom_license_accounts_expiring", days="7") == 1
    assert value(samples, "wecom_license_accounts_expiring", days="30") == 3
