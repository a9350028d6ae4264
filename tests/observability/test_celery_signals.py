"""Celery hooks: task ids in log lines, parent request ids, outcome counters, logging."""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.request
import uuid

import pytest
from celery import signals
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.support import celery_worker
from tests.support import django_env
from tests.support import free_port
from tests.support import wait_until
from wecom_provider.celery import app
from wecom_provider.celery import ping
from wecom_provider.observability import get_request_id
from wecom_provider.observability import log_context
from wecom_provider.observability import remember_secret

logger = logging.getLogger("tests.observability.tasks")


@app.task(name="tests.observability.log_task")
def log_task(secret: str) -> str:
    with log_context(suite_id="ww-suite-t", corp_id="ww-corp-t"):
        logger.info("working with %s", secret)
    return get_request_id() or ""


@app.task(name="tests.observability.fail_task")
def fail_task() -> None:
    raise LookupError("nope")


@app.task(name="tests.observability.retry_task", bind=True, max_retries=1)
def retry_task(self) -> None:
    raise self.retry(countdown=0, exc=LookupError("again"))


def outcomes(task: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("celery_task_outcomes_total", {"task": task, "outcome": outcome})
        or 0.0
    )


def test_task_log_lines_carry_the_task_id_and_the_caller(log_output, secret):
    remember_secret(secret)
    task_id = uuid.uuid4().hex
    with log_context(request_id="web-req-1"):
        result = log_task.apply(args=(secret,), task_id=task_id)
        assert get_request_id() == "web-req-1"  # restored after the task
    assert result.get() == task_id
    [line] = [line for line in log_output.lines() if line["logger"] == logger.name]
    assert line["request_id"] == task_id
    assert line["parent_request_id"] == "web-req-1"
    assert (line["suite_id"], line["corp_id"]) == ("ww-suite-t", "ww-corp-t")
    assert secret not in log_output.text


def test_outcomes_are_counted():
    before = {
        "success": outcomes("wecom_provider.ping", "success"),
        "failure": outcomes("tests.observability.fail_task", "failure"),
        "retry": outcomes("tests.observability.retry_task", "retry"),
    }
    ping.apply(args=("x",))
    fail_task.apply()
    retry_task.apply()
    assert outcomes("wecom_provider.ping", "success") == before["success"] + 1
    assert outcomes("tests.observability.fail_task", "failure") == before["failure"] + 1
    assert outcomes("tests.observability.retry_task", "retry") >= before["retry"] + 1


def test_celery_does_not_replace_the_logging_configuration():
    # A setup_logging receiver stops Celery from hijacking the root logger.
    assert signals.setup_logging.receivers


def worker_writing_logs_to(path, **env):
    return celery_worker(env=django_env(**env), loglevel="info", log_path=path)


@pytest.mark.timeout(120)
def test_a_real_worker_logs_json_with_ids_and_serves_its_metrics(tmp_path):
    log_file = tmp_path / "worker.log"
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = free_port()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc), "WORKER_METRICS_PORT": str(port)}
    with worker_writing_logs_to(log_file, **env):
        with log_context(request_id="publisher-req-7"):
            result = ping.delay("pong-value")
        assert result.get(timeout=60) == "pong-value"

        def task_line():
            for raw in log_file.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    line = json.loads(raw)
                    if line.get("request_id") == result.id:
                        return line
            return None

        line = wait_until(task_line, timeout=30, message="a log line for the task")

        def scrape():
            url = f"http://127.0.0.1:{port}/metrics"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
            return None

        body = wait_until(scrape, timeout=30, message="the worker's metrics server")
    assert line["parent_request_id"] == "publisher-req-7"
    assert line["logger"].startswith("celery")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    samples = {
        (s.labels["task"], s.labels["outcome"]): s.value
        for s in families["celery_task_outcomes"].samples
    }
    assert samples[("wecom_provider.ping", "success")] == 1  # counted in the pool child
    assert "wecom_callback_inbox_backlog" not in families  # scrape-time gauges: web only
