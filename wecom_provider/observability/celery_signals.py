"""Celery hooks: request id and tenant context per task, outcome counters, logging.

Connected by importing this module from ``wecom_provider.celery`` (so every worker,
beat and producer process has them):

- ``before_task_publish`` passes the publisher's request id in a message header, so a
  task's log lines can name the web request (or parent task) that queued it;
- ``task_prerun`` / ``task_postrun`` set the request id to the task id for the run (the
  publisher's id becomes ``parent_request_id``) and clear suite/corp ids;
- ``task_success`` / ``task_failure`` / ``task_retry`` / ``task_revoked`` count
  ``celery_task_outcomes_total{task, outcome}``;
- ``setup_logging`` makes Celery use ``settings.LOGGING`` (with the redacting filters)
  instead of replacing the root handlers with its own;
- ``worker_process_shutdown`` tells prometheus_client's multiprocess mode a child is gone;
- ``worker_ready`` starts a small metrics HTTP server in the worker's main process when
  ``WORKER_METRICS_PORT`` is set: the counters above are updated in worker processes,
  which the web's ``/metrics`` cannot see when they run on another machine/container.
  With the prefork pool it needs ``PROMETHEUS_MULTIPROC_DIR`` (one per worker host) so
  the main process can sum its children's values.
"""

from __future__ import annotations

import logging.config
import os
import threading
from contextvars import Token

from celery import signals

from wecom_provider.observability import metrics
from wecom_provider.observability.context import corp_id_var
from wecom_provider.observability.context import get_request_id
from wecom_provider.observability.context import is_valid_request_id
from wecom_provider.observability.context import parent_request_id_var
from wecom_provider.observability.context import request_id_var
from wecom_provider.observability.context import suite_id_var

PARENT_HEADER = "wecom_request_id"

# task id -> tokens to restore at postrun. prerun and postrun run in the same thread for a
# given task; the lock only guards the dict itself under a threaded pool.
_tokens: dict[str, list[tuple[object, Token]]] = {}
_tokens_lock = threading.Lock()


@signals.before_task_publish.connect(dispatch_uid="wecom_observability_publish")
def _add_parent_request_id(headers: dict | None = None, **_: object) -> None:
    request_id = get_request_id()
    if headers is not None and request_id and PARENT_HEADER not in headers:
        headers[PARENT_HEADER] = request_id


def _parent_of(task) -> str | None:
    request = getattr(task, "request", None)
    if request is None:
        return None
    parent = getattr(request, PARENT_HEADER, None)
    if parent is None:
        parent = (getattr(request, "headers", None) or {}).get(PARENT_HEADER)
    if parent is None and getattr(request, "is_eager", False):
        parent = get_request_id()  # apply() inside a request: the caller is the parent
    return parent if isinstance(parent, str) and is_valid_request_id(parent) else None


@signals.task_prerun.connect(dispatch_uid="wecom_observability_prerun")
def _enter_task_context(task_id: str | None = None, task=None, **_: object) -> None:
    if not task_id:
        return
    parent = _parent_of(task)
    tokens = [
        (parent_request_id_var, parent_request_id_var.set(parent)),
        (request_id_var, request_id_var.set(task_id)),
        (suite_id_var, suite_id_var.set(None)),
        (corp_id_var, corp_id_var.set(None)),
    ]
    with _tokens_lock:
        _tokens[task_id] = tokens


@signals.task_postrun.connect(dispatch_uid="wecom_observability_postrun")
def _leave_task_context(task_id: str | None = None, **_: object) -> None:
    with _tokens_lock:
        tokens = _tokens.pop(task_id, None) if task_id else None
    for var, token in reversed(tokens or []):
        try:
            var.reset(token)
        except ValueError:
            var.set(None)  # token from another context (should not happen): just clear


def _count(sender, outcome: str) -> None:
    name = getattr(sender, "name", None) or "unknown"
    metrics.CELERY_TASK_OUTCOMES_TOTAL.labels(task=name, outcome=outcome).inc()


@signals.task_success.connect(dispatch_uid="wecom_observability_success")
def _count_success(sender=None, **_: object) -> None:
    _count(sender, "success")


@signals.task_failure.connect(dispatch_uid="wecom_observability_failure")
def _count_failure(sender=None, **_: object) -> None:
    _count(sender, "failure")


@signals.task_retry.connect(dispatch_uid="wecom_observability_retry")
def _count_retry(sender=None, **_: object) -> None:
    _count(sender, "retry")


@signals.task_revoked.connect(dispatch_uid="wecom_observability_revoked")
def _count_revoked(sender=None, request=None, **_: object) -> None:
    task = sender if getattr(sender, "name", None) else getattr(request, "task", None)
    _count(task, "revoked")


@signals.setup_logging.connect(dispatch_uid="wecom_observability_logging")
def _use_django_logging(loglevel: int | str | None = None, **_: object) -> None:
    # Connecting this signal stops Celery from hijacking the root logger; apply the
    # project's LOGGING so worker and beat lines are JSON, carry ids and are redacted.
    # The command line's -l/--loglevel still sets the root level, as Celery users expect.
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@signals.worker_ready.connect(dispatch_uid="wecom_observability_worker_metrics")
def _serve_worker_metrics(**_: object) -> None:
    from django.conf import settings

    port = getattr(settings, "WORKER_METRICS_PORT", 0)
    if not port:
        return
    from prometheus_client import REGISTRY
    from prometheus_client import CollectorRegistry
    from prometheus_client import start_http_server

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    # Scrape-time gauges are left to the web's /metrics: computing them here too would
    # run their queries from every worker and duplicate the series.
    start_http_server(port, addr=settings.WORKER_METRICS_ADDR, registry=registry)


@signals.worker_process_shutdown.connect(dispatch_uid="wecom_observability_multiproc")
def _mark_process_dead(pid: int | None = None, **_: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
