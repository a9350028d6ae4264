"""Fixtures for observability tests: capture what the real log handlers write."""

from __future__ import annotations

import io
import json
import logging
import secrets

import pytest

from wecom_provider.observability.logs import RedactingFilter


def configured_handlers() -> list[logging.Handler]:
    """Return the handlers settings.LOGGING attached (those carrying RedactingFilter)."""
    seen: dict[int, logging.Handler] = {}
    for logger in [logging.getLogger(), logging.getLogger("django")]:
        for handler in logger.handlers:
            if any(isinstance(f, RedactingFilter) for f in handler.filters):
                seen[id(handler)] = handler
    return list(seen.values())


class Captured:
    def __init__(self, buffer: io.StringIO):
        self.buffer = buffer

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def log_output():
    """Point the configured console handler(s) at a buffer for the test."""
    handlers = configured_handlers()
    assert handlers, "settings.LOGGING installed no redacting handler"
    buffer = io.StringIO()
    previous = [handler.setStream(buffer) for handler in handlers]
    try:
        yield Captured(buffer)
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            handler.setStream(stream)


@pytest.fixture
def secret() -> str:
    """A fresh secret-looking value, unique per test."""
    return "SEC" + secrets.token_urlsafe(24)
