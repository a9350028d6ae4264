"""Prometheus series, scrape-time gauges and the protected /metrics endpoint."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT
from tests.support import django_env
from wecom_provider.observability import metrics

TOKEN = "metrics-token-0123456789abcdef"
SERIES = {
    # family name as the parser reports it -> type
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
SCRAPE_GAUGES = [
    "wecom_suite_ticket_age_seconds",
    "wecom_callback_inbox_backlog",
    "wecom_license_accounts_expiring",
]


@pytest.fixture
def scrape_gauges():
    """Register scrape-time functions for the test and unregister them afterwards."""
    yield metrics.register_gauge_callback
    for name in SCRAPE_GAUGES:
        metrics.unregister_gauge_callback(name)
    # Put the real (database-backed) gauges back for the rest of the session.
    from ops.apps import register_gauges

    register_gauges()


def scrape(client, **extra) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **extra)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def sample(families: dict, family: str, name: str, labels: dict) -> float | None:
    for s in families[family].samples:
        if s.name == name and s.labels == labels:
            return s.value
    return None


@override_settings(METRICS_TOKEN=TOKEN)
def test_every_series_is_exposed_with_its_type(client, scrape_gauges):
    # Gauges computed at scrape time appear once an app registers their function.
    scrape_gauges("wecom_suite_ticket_age_seconds", lambda: [(("ww-suite-1",), 42.0)])
    scrape_gauges("wecom_callback_inbox_backlog", lambda: 3)
    scrape_gauges("wecom_license_accounts_expiring", lambda: [({"days": "7"}, 5), (("30",), 9)])
    metrics.TOKEN_REFRESH_TOTAL.labels(kind="corp", outcome="success")
    families = scrape(client)
    for name, kind in SERIES.items():
        assert name in families, name
        assert families[name].type == kind, name
    assert (
        sample(
            families,
            "wecom_suite_ticket_age_seconds",
            "wecom_suite_ticket_age_seconds",
            {"suite_id": "ww-suite-1"},
        )
        == 42.0
    )
    assert sample(families, "wecom_callback_inbox_backlog", "wecom_callback_inbox_backlog", {}) == 3
    expiring = "wecom_license_accounts_expiring"
    assert sample(families, expiring, expiring, {"days": "7"}) == 5
    assert sample(families, expiring, expiring, {"days": "30"}) == 9
    up = "wecom_scrape_callback_up"
    assert sample(families, up, up, {"gauge": "wecom_callback_inbox_backlog"}) == 1


def test_counters_and_histograms_record():
    def value(name, labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    labels = {"kind": "suite", "outcome": "failure"}
    before = value("wecom_token_refresh_total", labels)
    metrics.TOKEN_REFRESH_TOTAL.labels(**labels).inc()
    assert value("wecom_token_refresh_total", labels) == before + 1

    api = {"endpoint": "service/get_corp_token", "errcode": "40082"}
    before = value("wecom_api_calls_total", api)
    metrics.API_CALLS_TOTAL.labels(**api).inc()
    assert value("wecom_api_calls_total", api) == before + 1

    endpoint = {"endpoint": "suite_command"}
    count = value("wecom_callback_ingest_seconds_count", endpoint)
    metrics.CALLBACK_INGEST_SECONDS.labels(**endpoint).observe(0.004)
    assert value("wecom_callback_ingest_seconds_count", endpoint) == count + 1
    le = value("wecom_callback_ingest_seconds_bucket", {**endpoint, "le": "0.005"})
    assert le >= 1

    with metrics.TOKEN_REFRESH_SECONDS.labels(kind="corp").time():
        pass
    assert value("wecom_token_refresh_seconds_count", {"kind": "corp"}) >= 1

    result = {"endpoint": "suite_command", "result": "rejected_signature"}
    before = value("wecom_callback_results_total", result)
    metrics.CALLBACK_RESULTS_TOTAL.labels(**result).inc()
    assert value("wecom_callback_results_total", result) == before + 1


def test_ingest_buckets_cover_one_millisecond_to_one_second():
    buckets = metrics.CALLBACK_INGEST_SECONDS._upper_bounds
    assert buckets[0] <= 0.001
    assert 1.0 in buckets
    assert len([b for b in buckets if 0.001 <= b <= 1.0]) >= 8


@override_settings(METRICS_TOKEN=TOKEN)
def test_a_failing_gauge_function_does_not_break_the_scrape(client, scrape_gauges, log_output):
    def broken():
        raise RuntimeError("database says: password=hunter2hunter2")

    scrape_gauges("wecom_callback_inbox_backlog", broken)
    families = scrape(client)
    up = "wecom_scrape_callback_up"
    assert sample(families, up, up, {"gauge": "wecom_callback_inbox_backlog"}) == 0
    assert "wecom_token_refresh" in families
    assert "hunter2hunter2" not in log_output.text
    assert "RuntimeError" in log_output.text


def test_unknown_gauge_names_and_bad_labels_are_refused(scrape_gauges):
    with pytest.raises(KeyError):
        metrics.register_gauge_callback("wecom_not_declared", lambda: 1)
    with pytest.raises(ValueError, match="other labels"):
        metrics.declare_scrape_gauge("wecom_suite_ticket_age_seconds", "x", ["corp_id"])


def test_a_new_scrape_gauge_can_be_declared(client, scrape_gauges):
    metrics.declare_scrape_gauge("wecom_test_things", "Things, for a test.", ["kind"])
    metrics.register_gauge_callback("wecom_test_things", lambda: [(("a",), 1), (("b",), 2)])
    try:
        with override_settings(METRICS_TOKEN=TOKEN):
            families = scrape(client)
        assert sample(families, "wecom_test_things", "wecom_test_things", {"kind": "b"}) == 2
    finally:
        metrics.unregister_gauge_callback("wecom_test_things")


def test_endpoint_label_drops_query_strings():
    assert metrics.endpoint_label("/cgi-bin/gettoken?corpsecret=x") == "cgi-bin/gettoken"


# --- access ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings_", "extra", "expected"),
    [
        # token configured
        ({"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_NETWORKS": []}, {}, 403),
        (
            {"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_NETWORKS": []},
            {"HTTP_AUTHORIZATION": "Bearer nope"},
            403,
        ),
        (
            {"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_NETWORKS": []},
            {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}x"},
            403,
        ),
        (
            {"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_NETWORKS": []},
            {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
            403,
        ),
        (
            {"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_NETWORKS": []},
            {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"},
            200,
        ),
        (
            {"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_NETWORKS": []},
            {"HTTP_AUTHORIZATION": f"bearer {TOKEN}", "REMOTE_ADDR": "203.0.113.9"},
            200,
        ),
        # no token configured: a presented token never works
        (
            {"METRICS_TOKEN": "", "METRICS_ALLOWED_NETWORKS": []},
            {"HTTP_AUTHORIZATION": "Bearer "},
            403,
        ),
        # network allow-list (default: loopback)
        ({"METRICS_TOKEN": ""}, {"REMOTE_ADDR": "127.0.0.1"}, 200),
        ({"METRICS_TOKEN": ""}, {"REMOTE_ADDR": "::1"}, 200),
        ({"METRICS_TOKEN": ""}, {"REMOTE_ADDR": "203.0.113.9"}, 403),
        (
            {"METRICS_TOKEN": "", "METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8"]},
            {"REMOTE_ADDR": "10.1.2.3"},
            200,
        ),
        (
            {"METRICS_TOKEN": "", "METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8"]},
            {"REMOTE_ADDR": "11.1.2.3"},
            403,
        ),
        # a wrong token from an allowed address is still refused
        (
            {"METRICS_TOKEN": TOKEN},
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_AUTHORIZATION": "Bearer no"},
            403,
        ),
        # loopback seen through an untrusted reverse proxy is not the client
        (
            {"METRICS_TOKEN": ""},
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"},
            403,
        ),
        # behind one trusted proxy the forwarded address counts
        (
            {
                "METRICS_TOKEN": "",
                "TRUSTED_PROXY_COUNT": 1,
                "METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8"],
            },
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.9.9.9"},
            200,
        ),
        (
            {
                "METRICS_TOKEN": "",
                "TRUSTED_PROXY_COUNT": 1,
                "METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8"],
            },
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.9.9.9, 198.51.100.7"},
            403,
        ),
    ],
)
def test_metrics_access(client, settings_, extra, expected):
    with override_settings(**settings_):
        response = client.get("/metrics", **extra)
    assert response.status_code == expected
    if expected == 403:
        assert response.content == b""


@override_settings(METRICS_TOKEN=TOKEN)
def test_metrics_is_get_only_and_never_cached(client):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    assert client.post("/metrics", **auth).status_code == 405
    response = client.get("/metrics", **auth)
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@override_settings(METRICS_TOKEN=TOKEN, SECURE_SSL_REDIRECT=True)
def test_scrapers_and_probes_are_not_redirected_to_https(client):
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/login/").status_code == 301


# --- several processes ----------------------------------------------------------------

CHILD_INCREMENT = """
import django; django.setup()
from wecom_provider.observability import metrics
metrics.TOKEN_REFRESH_TOTAL.labels(kind="corp", outcome="success").inc(5)
"""
CHILD_SCRAPE = """
import django; django.setup()
from django.test import Client
from wecom_provider.observability import metrics
metrics.TOKEN_REFRESH_TOTAL.labels(kind="corp", outcome="success").inc(2)
metrics.register_gauge_callback("wecom_callback_inbox_backlog", lambda: 11)
r = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer %s")
print(r.status_code)
print(r.content.decode())
"""


def test_multiprocess_mode_aggregates_every_process(tmp_path):
    env = django_env(
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        METRICS_TOKEN=TOKEN,
        DJANGO_ALLOWED_HOSTS="testserver",
    )
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-c", CHILD_INCREMENT], cwd=ROOT, env=env, check=True, timeout=60
        )
    result = subprocess.run(
        [sys.executable, "-c", CHILD_SCRAPE % TOKEN],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status, _, body = result.stdout.partition("\n")
    assert status == "200", result.stderr
    families = {f.name: f for f in text_string_to_metric_families(body)}
    refresh = sample(
        families,
        "wecom_token_refresh",
        "wecom_token_refresh_total",
        {"kind": "corp", "outcome": "success"},
    )
    assert refresh == 12  # 5 + 5 from two exited processes, 2 from the scraping one
    assert (
        sample(families, "wecom_callback_inbox_backlog", "wecom_callback_inbox_backlog", {}) == 11
    )
