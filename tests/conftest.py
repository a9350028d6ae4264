"""Fixtures shared by the whole suite.

`make test` provides real PostgreSQL and Redis through DATABASE_URL and REDIS_URL.
Tests that need their own short-lived servers (to stop them mid-test) start them with
the helpers in tests/support.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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


# --- the WeCom simulator over real HTTP ----------------------------------------------


@dataclass
class Platform:
    """The simulator plus the platform rows registered from its scenario."""

    sandbox: object  # sandbox.SandboxHandle
    provider: object  # tenants.models.Provider
    suite: object  # third-party suite
    template: object  # 代开发 template
    corps: list[dict]

    @property
    def control(self):
        return self.sandbox.control()

    def requests(self, endpoint: str) -> list[dict]:
        """Return the simulator's log of calls to ``endpoint``."""
        return self.control.requests(endpoint=endpoint)


def _start_sandbox(settings, *, callback_base: str | None = None, ticket_interval: float = 0):
    from sandbox import start_sandbox

    handle = start_sandbox(callback_base=callback_base, ticket_interval=ticket_interval)
    settings.WECOM_API_BASE = handle.base_url
    settings.WECOM_INSTALL_BASE = handle.base_url
    return handle


def register_platform(handle) -> Platform:
    """Register the simulator's provider and suites in the platform, tickets included."""
    from tenants import services
    from tenants.models import Suite

    config = handle.config
    raw_provider = config["provider"]
    provider, _ = services.provider_register(
        corpid=raw_provider["corpid"],
        provider_secret=raw_provider["provider_secret"],
        callback_token=raw_provider["token"],
        encoding_aes_key=raw_provider["encoding_aes_key"],
        name=raw_provider.get("name", ""),
    )
    suites = {}
    for raw in config["suites"]:
        suite, _ = services.suite_register(
            provider=provider,
            suite_id=raw["suite_id"],
            secret=raw["secret"],
            callback_token=raw["token"],
            encoding_aes_key=raw["encoding_aes_key"],
            kind=raw["kind"],
            name=raw.get("name", ""),
        )
        tickets = handle.state.tickets.get(raw["suite_id"]) or []
        if tickets:
            services.suite_ticket_store(
                suite_id=suite.suite_id,
                ticket=tickets[-1].ticket,
                timestamp=int(tickets[-1].issued_at),
            )
        suites[suite.kind] = suite
    return Platform(
        sandbox=handle,
        provider=provider,
        suite=suites[Suite.Kind.THIRD_PARTY],
        template=suites[Suite.Kind.CUSTOMIZED_TEMPLATE],
        corps=config["corps"],
    )


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
