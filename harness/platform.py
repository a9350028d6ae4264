"""The simulator's provider and suites, registered in the platform (tests and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass


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
