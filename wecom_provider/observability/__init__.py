"""Observability: request/task context in logs, secret redaction, metrics, /metrics.

What domain code calls:

- ``remember_secret(value)`` whenever it decrypts or receives a secret (redaction);
- ``log_context(suite_id=…, corp_id=…)`` around work on one tenant (context);
- the metric objects in ``wecom_provider.observability.metrics`` and
  ``metrics.register_gauge_callback(name, fn)`` for scrape-time gauges.

This package imports no Django models and no prometheus_client at import time, so the
logging configuration can load it before apps are ready.
"""

from wecom_provider.observability.context import get_request_id
from wecom_provider.observability.context import log_context
from wecom_provider.observability.redaction import remember_secret
from wecom_provider.observability.redaction import scrub

__all__ = ("get_request_id", "log_context", "remember_secret", "scrub")
