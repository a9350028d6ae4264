"""Logging filters and formatters wired in ``settings.LOGGING``.

Every handler carries two filters, in this order:

- ``ContextFilter`` stamps the record with request_id, parent_request_id, suite_id and
  corp_id from the current context;
- ``RedactingFilter`` formats the message (``msg % args``) and the traceback, scrubs
  both (see ``redaction``), and leaves the record holding only the scrubbed text.

They sit on handlers, not loggers, so they apply to every logger that reaches a handler:
ours, ``django.request``, Celery's, gunicorn's. Formatters: ``JsonFormatter`` (one JSON
object per line, production) and ``PlainFormatter`` (development).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime

from wecom_provider.observability.context import current_context
from wecom_provider.observability.redaction import scrub

CONTEXT_FIELDS = ("request_id", "parent_request_id", "suite_id", "corp_id")
_SCRUBBED = "_wecom_scrubbed"
_traceback_formatter = logging.Formatter()


class ContextFilter(logging.Filter):
    """Add the current request/task and tenant ids to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current_context()
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            # gunicorn writes the access line after the request's context has ended; the
            # id is still in the response headers it passes as format atoms.
            request_id = record.args.get("{x-request-id}o")
            if request_id and getattr(record, "request_id", None) is None:
                record.request_id = str(request_id)
        for name in CONTEXT_FIELDS:
            # A value passed with ``extra=`` wins over the context.
            if getattr(record, name, None) is None:
                setattr(record, name, context[name])
        return True


class RedactingFilter(logging.Filter):
    """Replace the record's message and traceback with secret-free text.

    The arguments are merged into the message first (``record.getMessage()``): a secret
    usually arrives as an argument, and a formatter would merge it back after we looked.
    Then ``msg`` is the scrubbed text and ``args`` is empty. The traceback is rendered
    here into ``exc_text`` (which formatters use as is) and ``exc_info`` dropped, so no
    later handler can render the raw exception again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SCRUBBED, False):
            return True  # a second handler sees the record already cleaned
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not lose the line (or leak its args)
        message = f"{record.msg!s} [unformattable log arguments]"
    record.msg = scrub(message)
    record.args = ()
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = _traceback_formatter.formatException(record.exc_info)
        record.exc_info = None
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    setattr(record, _SCRUBBED, True)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, _SCRUBBED, False):
            redact_record(record)  # defence in depth: used without RedactingFilter
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = current_context()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or context[name]
            if value is not None or name != "parent_request_id":
                payload[name] = value
        if record.exc_text:
            payload["exc_info"] = record.exc_text
        if record.stack_info:
            payload["stack_info"] = record.stack_info
        return json.dumps(payload, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """``time LEVEL [request_id suite=… corp=…] logger message`` for development."""

    default_format = "%(asctime)s %(levelname)s [%(wecom_context)s] %(name)s %(message)s"

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, **kwargs):
        super().__init__(fmt or self.default_format, datefmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, _SCRUBBED, False):
            redact_record(record)
        context = current_context()
        values = {name: getattr(record, name, None) or context[name] for name in CONTEXT_FIELDS}
        parts = [values["request_id"] or "-"]
        if values["suite_id"]:
            parts.append(f"suite={values['suite_id']}")
        if values["corp_id"]:
            parts.append(f"corp={values['corp_id']}")
        record.wecom_context = " ".join(parts)
        return super().format(record)
