"""The Prometheus series of the platform, defined in one place.

Domain code imports the objects below and updates them; ``/metrics`` exposes them.
Label values are ids and enums only (suite ids, endpoint names, errcodes, outcomes),
never a secret, a URL with a query string or a free-form message.

Counters and histograms are updated where things happen::

    from wecom_provider.observability import metrics

    metrics.TOKEN_REFRESH_TOTAL.labels(kind="corp", outcome="success").inc()
    with metrics.TOKEN_REFRESH_SECONDS.labels(kind="corp").time():
        ...

Gauges that describe stored state (ticket age, inbox backlog, expiring licenses) are
computed from the database when Prometheus scrapes: an app registers a function once,
typically in ``AppConfig.ready()``::

    metrics.register_gauge_callback("wecom_callback_inbox_backlog", lambda: backlog_count())
    metrics.register_gauge_callback(
        "wecom_suite_ticket_age_seconds",
        lambda: [((suite_id,), age) for suite_id, age in suite_ticket_ages()],
    )

Several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (before this module is
imported), prometheus_client keeps values in files there and ``/metrics`` aggregates
every process's files; scrape-time gauges are computed once, by the process answering.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# One `<name>_created` series per label set doubles the series count for little use.
disable_created_metrics()

# --- updated where things happen ---------------------------------------------------------

TOKEN_REFRESH_TOTAL = Counter(
    "wecom_token_refresh_total",
    "Credential fetches by kind (provider, suite, corp tokens; jsapi tickets) and outcome.",
    ["kind", "outcome"],
)
TOKEN_REFRESH_SECONDS = Histogram(
    "wecom_token_refresh_seconds",
    "Time to refresh one credential token, lock wait excluded.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
API_CALLS_TOTAL = Counter(
    "wecom_api_calls_total",
    "WeCom API calls by endpoint name and errcode (0 for success, 'transport' when no answer).",
    ["endpoint", "errcode"],
)
API_CALL_SECONDS = Histogram(
    "wecom_api_call_seconds",
    "WeCom API call duration by endpoint name.",
    ["endpoint"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
# WeCom wants an answer within 1 s (create_auth), so the interesting range is 1 ms–1 s.
CALLBACK_INGEST_SECONDS = Histogram(
    "wecom_callback_ingest_seconds",
    "Time from receiving a callback to answering it, by endpoint.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5),
)
CALLBACK_RESULTS_TOTAL = Counter(
    "wecom_callback_results_total",
    "Callbacks by endpoint and result (stored, duplicate, rejected_<reason>).",
    ["endpoint", "result"],
)
CALLBACK_NOT_APPLIED_TOTAL = Counter(
    "wecom_callback_not_applied_total",
    "Authentic callbacks not applied, by endpoint, info type, outcome (superseded: older "
    "than what the tenant reflects; rejected: naming objects outside its URL; ignored) "
    "and reason.",
    ["endpoint", "info_type", "outcome", "reason"],
)
CELERY_TASK_OUTCOMES_TOTAL = Counter(
    "celery_task_outcomes_total",
    "Celery task executions by task name and outcome (success, failure, retry, revoked).",
    ["task", "outcome"],
)

WEBHOOK_ATTEMPTS_TOTAL = Counter(
    "wecom_webhook_attempts_total",
    "Webhook delivery attempts by outcome (delivered, gone, http_error, no_answer, refused).",
    ["outcome"],
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "wecom_webhook_attempt_seconds",
    "Duration of one webhook HTTP attempt (connect to answer read).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# The latency products feel: the feed entry was published (callback processed) until
# the first attempt left. The target is 2 s at p99 (a WelcomeCode lives 20 s).
WEBHOOK_FIRST_ATTEMPT_DELAY_SECONDS = Histogram(
    "wecom_webhook_first_attempt_delay_seconds",
    "Seconds from a feed event's publication to its delivery's first attempt.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
)
WEBHOOK_SUBSCRIPTIONS_DISABLED_TOTAL = Counter(
    "wecom_webhook_subscriptions_disabled_total",
    "Subscriptions disabled automatically, by reason (gone: a 410; failing: days of failures).",
    ["reason"],
)

# The WeCom API gateway (api/gateway/): every call it sends to WeCom (retries included), by
# path (known paths; others "other") and WeCom's errcode ("transport": no answer,
# "http_<status>": not WeCom's JSON), and the calls it refused before WeCom.
GATEWAY_WECOM_CALLS_TOTAL = Counter(
    "wecom_gateway_calls_total",
    "WeCom calls sent by the gateway, by path and errcode (0 success, transport, http_<status>).",
    ["path", "errcode"],
)
GATEWAY_WECOM_CALL_SECONDS = Histogram(
    "wecom_gateway_call_seconds",
    "Duration of one WeCom call sent by the gateway, by path.",
    ["path"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
GATEWAY_REFUSED_TOTAL = Counter(
    "wecom_gateway_refused_total",
    "Gateway calls refused before WeCom, by path and reason (a quota scope, breaker, not_allowed).",
    ["path", "reason"],
)

# --- computed at scrape time -------------------------------------------------------------

GaugeValue = float | int
GaugeSamples = GaugeValue | Iterable[tuple[Sequence[str] | Mapping[str, str], GaugeValue]]


@dataclass
class _ScrapeGauge:
    name: str
    documentation: str
    labelnames: tuple[str, ...]
    callback: Callable[[], GaugeSamples] | None = field(default=None)


class ScrapeTimeCollector(Collector):
    """Calls the registered functions on every scrape and exposes their values as gauges.

    A function returns a number (gauge without labels) or an iterable of
    ``(labels, value)`` where ``labels`` is a tuple in ``labelnames`` order or a dict.
    One that raises is logged and skipped, and ``wecom_scrape_callback_up{gauge}`` says so:
    a broken query must not take down the whole scrape.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gauges: dict[str, _ScrapeGauge] = {}

    def declare(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        with self._lock:
            existing = self._gauges.get(name)
            if existing and existing.labelnames != tuple(labelnames):
                raise ValueError(f"gauge {name} already declared with other labels")
            if not existing:
                self._gauges[name] = _ScrapeGauge(name, documentation, tuple(labelnames))

    def register(self, name: str, callback: Callable[[], GaugeSamples]) -> None:
        with self._lock:
            if name not in self._gauges:
                raise KeyError(f"gauge {name} is not declared; call declare_scrape_gauge() first")
            self._gauges[name].callback = callback  # re-registering replaces

    def unregister(self, name: str) -> None:
        with self._lock:
            if name in self._gauges:
                self._gauges[name].callback = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Lets the registry check names without running callbacks (which may hit the DB).
        with self._lock:
            gauges = list(self._gauges.values())
        for gauge in gauges:
            yield GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labelnames)
        yield GaugeMetricFamily(_UP, _UP_DOC, labels=["gauge"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            gauges = [g for g in self._gauges.values() if g.callback is not None]
        up = GaugeMetricFamily(_UP, _UP_DOC, labels=["gauge"])
        for gauge in gauges:
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labelnames)
            try:
                _add_samples(family, gauge, gauge.callback())
            except Exception as exc:
                # The message may quote data; the type is enough to start looking.
                logger.warning("scrape-time gauge %s failed: %s", gauge.name, type(exc).__name__)
                up.add_metric([gauge.name], 0)
                continue
            up.add_metric([gauge.name], 1)
            yield family
        yield up


_UP = "wecom_scrape_callback_up"
_UP_DOC = "1 when the scrape-time function of a gauge ran, 0 when it raised."


def _add_samples(family: GaugeMetricFamily, gauge: _ScrapeGauge, samples: GaugeSamples) -> None:
    if isinstance(samples, int | float):
        if gauge.labelnames:
            raise TypeError(f"{gauge.name} has labels; return (labels, value) pairs")
        family.add_metric([], float(samples))
        return
    for labels, value in samples:
        if isinstance(labels, Mapping):
            values = [str(labels[name]) for name in gauge.labelnames]
        else:
            values = [str(label) for label in labels]
        if len(values) != len(gauge.labelnames):
            raise ValueError(f"{gauge.name} expects labels {gauge.labelnames}")
        family.add_metric(values, float(value))


SCRAPE_TIME = ScrapeTimeCollector()
SCRAPE_TIME.declare(
    "wecom_suite_ticket_age_seconds",
    "Seconds since the newest suite_ticket of each suite was pushed (WeCom pushes every 10 min).",
    ["suite_id"],
)
SCRAPE_TIME.declare(
    "wecom_callback_inbox_backlog",
    "Callback inbox rows not processed yet (pending or failed awaiting retry).",
)
SCRAPE_TIME.declare(
    "wecom_license_accounts_expiring",
    "License accounts whose activation expires within the given number of days.",
    ["days"],
)


SCRAPE_TIME.declare(
    "wecom_gateway_breakers_open",
    "Corp APIs the gateway holds back now after WeCom's 45009/45033 (shared by every process).",
)
SCRAPE_TIME.declare(
    "wecom_webhook_deliveries_pending",
    "Webhook deliveries waiting for an attempt (due now or retrying later).",
)
SCRAPE_TIME.declare(
    "wecom_webhook_subscriptions",
    "Webhook subscriptions by state (enabled, failing: enabled with failures, disabled_<reason>).",
    ["state"],
)


def declare_scrape_gauge(name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
    """Declare another scrape-time gauge (the three above are declared already)."""
    SCRAPE_TIME.declare(name, documentation, labelnames)


def register_gauge_callback(name: str, fn: Callable[[], GaugeSamples]) -> None:
    """Compute the gauge ``name`` by calling ``fn`` on every scrape (replaces an earlier fn).

    ``fn`` returns a number, or ``[(labels, value), …]`` with labels as a tuple in the
    gauge's label order or a dict. It runs in the web process answering ``/metrics``, with
    database access, so keep it to one cheap aggregate query.
    """
    SCRAPE_TIME.register(name, fn)


def unregister_gauge_callback(name: str) -> None:
    SCRAPE_TIME.unregister(name)


# Not in the default REGISTRY: only the web's /metrics runs the scrape-time functions
# (see views.metrics_registry); a worker's metrics server exposes REGISTRY alone.


def endpoint_label(path: str) -> str:
    """Return a safe ``endpoint`` label for a WeCom path: no query string, bounded length."""
    return path.split("?", 1)[0].strip("/")[:80] or "unknown"
