"""Fixtures shared by the whole suite.

`make test` provides real PostgreSQL and Redis through DATABASE_URL and REDIS_URL.
Tests that need their own short-lived servers (to stop them mid-test) start them with
the helpers in harness/processes.py (tests/support.py re-exports them).
"""

from __future__ import annotations

import os

import pytest

from harness.platform import Platform
from harness.platform import register_platform


@pytest.fixture(autouse=True)
def _clean_redis():
    """Empty the test Redis database before each test: locks and caches must not leak."""
    url = os.environ.get("REDIS_URL")
    if url:
        import redis

        client = redis.Redis.from_url(url)
        try:
            client.flushdb()
        finally:
            client.close()


# --- the WeCom simulator over real HTTP ----------------------------------------------


def _start_sandbox(settings, *, callback_base: str | None = None, ticket_interval: float = 0):
    from sandbox import start_sandbox

    handle = start_sandbox(callback_base=callback_base, ticket_interval=ticket_interval)
    settings.WECOM_API_BASE = handle.base_url
    settings.WECOM_INSTALL_BASE = handle.base_url
    return handle


@pytest.fixture
def sandbox(settings):
    """A fresh simulator (no callback delivery) that the platform's client talks to."""
    handle = _start_sandbox(settings)
    yield handle
    handle.stop()


@pytest.fixture
def platform(sandbox, db) -> Platform:
    return register_platform(sandbox)


@pytest.fixture
def live_platform(settings, live_server, transactional_db) -> Platform:
    """Simulator pushing real encrypted callbacks to the platform served by live_server."""
    settings.PUBLIC_BASE_URL = live_server.url  # install redirects come back here
    handle = _start_sandbox(settings, callback_base=live_server.url)
    try:
        yield register_platform(handle)
    finally:
        handle.stop()
