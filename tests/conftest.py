"""Fixtures shared by the whole suite.

`make test` provides real PostgreSQL and Redis through DATABASE_URL and REDIS_URL.
Tests that need their own short-lived servers (to stop them mid-test) start them with
the helpers in tests/support.py.
"""

from __future__ import annotations

import os

import pytest


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
