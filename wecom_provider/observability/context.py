"""Per-request / per-task logging context: request id, suite id, corp id.

Context variables, so each thread (WSGI), asyncio task (ASGI) and Celery task sees its
own values. ``RequestIdMiddleware`` and the Celery signal hooks set the request id; domain
code adds the tenant it works on with ``log_context(suite_id=…, corp_id=…)``. Ids only:
never put a secret here, every log line carries these values.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
# Incoming ids are echoed into every log line and a response header: a short, plain
# charset keeps log injection and header splitting impossible.
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ID_MAX_LENGTH = 128

request_id_var: ContextVar[str | None] = ContextVar("wecom_request_id", default=None)
parent_request_id_var: ContextVar[str | None] = ContextVar("wecom_parent_request_id", default=None)
suite_id_var: ContextVar[str | None] = ContextVar("wecom_suite_id", default=None)
corp_id_var: ContextVar[str | None] = ContextVar("wecom_corp_id", default=None)

_VARS: dict[str, ContextVar[str | None]] = {
    "request_id": request_id_var,
    "parent_request_id": parent_request_id_var,
    "suite_id": suite_id_var,
    "corp_id": corp_id_var,
}
_KEEP: Any = object()


def new_request_id() -> str:
    """Return a fresh request id (32 hex characters)."""
    return uuid.uuid4().hex


def is_valid_request_id(value: str | None) -> bool:
    """Return whether ``value`` may be used as a request id (≤64 of ``[A-Za-z0-9._-]``)."""
    return bool(value) and _REQUEST_ID_RE.fullmatch(value) is not None


def get_request_id() -> str | None:
    """Return the current request id (or Celery task id), if any."""
    return request_id_var.get()


def current_context() -> dict[str, str | None]:
    """Return the current values: request_id, parent_request_id, suite_id, corp_id."""
    return {name: var.get() for name, var in _VARS.items()}


def _clean(value: object) -> str | None:
    if value is None:
        return None
    return str(value)[:_ID_MAX_LENGTH]


@contextmanager
def log_context(
    *,
    suite_id: object = _KEEP,
    corp_id: object = _KEEP,
    request_id: object = _KEEP,
    parent_request_id: object = _KEEP,
) -> Iterator[None]:
    """Tag every log line written inside the block with the given ids.

    Arguments left out keep their current value; ``None`` clears one. The previous
    values come back when the block exits, even on error::

        with log_context(suite_id=suite.suite_id, corp_id=corp.corpid):
            corp_token_refresh(...)
    """
    given = {
        "suite_id": suite_id,
        "corp_id": corp_id,
        "request_id": request_id,
        "parent_request_id": parent_request_id,
    }
    tokens = [
        (_VARS[name], _VARS[name].set(_clean(value)))
        for name, value in given.items()
        if value is not _KEEP
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
