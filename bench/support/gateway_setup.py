"""Seed the gateway benchmark's database; print its facts as JSON on the last line.

Run in the benchmark's environment (its DATABASE_URL, REDIS_URL and settings):
``python -m bench.support.gateway_setup <simulator URL>``. The simulator's provider and
third-party suite registered, one corp installed (its corp token fetched), and an API
client scoped to the suite and allowed ``user/*`` through the gateway.
"""

from __future__ import annotations

import json
import sys

import django


def main(sim: str) -> None:
    django.setup()
    import httpx
    from django.utils import timezone

    from api import services as api_services
    from tenants import credentials
    from tenants import services

    config = httpx.get(sim + "/sandbox/config", trust_env=False).json()
    p = config["provider"]
    provider, _ = services.provider_register(
        corpid=p["corpid"],
        provider_secret=p["provider_secret"],
        callback_token=p["token"],
        encoding_aes_key=p["encoding_aes_key"],
    )
    raw = next(s for s in config["suites"] if s["kind"] == "third_party")
    suite, _ = services.suite_register(
        provider=provider,
        suite_id=raw["suite_id"],
        secret=raw["secret"],
        callback_token=raw["token"],
        encoding_aes_key=raw["encoding_aes_key"],
        kind=raw["kind"],
    )
    services.suite_ticket_store(
        suite_id=suite.suite_id, ticket=raw["suite_ticket"], timestamp=config["now"]
    )
    corp = config["corps"][0]
    answer = httpx.post(
        sim + "/sandbox/install",
        trust_env=False,
        json={"suite_id": suite.suite_id, "corpid": corp["corpid"], "push": False},
    ).json()
    tenant = services.authorization_install(
        suite=suite, auth_code=answer["auth_code"], source="callback"
    )
    _client, issued = api_services.api_client_create(
        name=f"bench-gateway-{timezone.now().timestamp()}",
        suite_ids=[suite.suite_id],
        rate_limit_per_minute=10**9,
        wecom_paths=["user/*"],
    )
    facts = {
        "key": issued.key,
        "token": credentials.token_get(tenant).value,
        "suite_id": suite.suite_id,
        "corpid": corp["corpid"],
        "userid": corp["users"][0]["userid"],
    }
    print(json.dumps(facts))


if __name__ == "__main__":
    main(sys.argv[1])
