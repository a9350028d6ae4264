"""Seed the token-API benchmark's database; print the API key as JSON on the last line.

Run in the benchmark's environment (its DATABASE_URL, REDIS_URL and settings):
``python -m bench.support.token_api_setup``. One provider, suite and tenant holding a
valid corp token, 50 more tenants (so scope lookups do not run on near-empty tables),
and an API client allowed the tenant.
"""

from __future__ import annotations

import json
from datetime import timedelta

import django


def main() -> None:
    django.setup()
    from django.utils import timezone

    from api import services as api_services
    from tenants import credentials
    from tenants import services
    from tenants.models import Authorization
    from tenants.models import Corp
    from tenants.models import CredentialToken

    provider, _ = services.provider_register(
        corpid="wwbenchprovider",
        provider_secret="s" * 32,
        callback_token="tok",
        encoding_aes_key="a" * 43,
    )
    suite, _ = services.suite_register(
        provider=provider,
        suite_id="wwbenchsuite",
        secret="s" * 32,
        callback_token="tok",
        encoding_aes_key="a" * 43,
    )
    corp, _ = Corp.objects.get_or_create(corpid="wpbenchcorp", defaults={"name": "bench"})
    authorization, _ = Authorization.objects.get_or_create(suite=suite, corp=corp)
    row = credentials.credential_row(authorization)
    holder = CredentialToken(owner_key=row.owner_key)
    holder.value = "BENCHTOKEN" + "x" * 54
    now = timezone.now()
    CredentialToken.objects.filter(pk=row.pk).update(
        value_sealed=holder.value_sealed,
        expires_at=now + timedelta(hours=2),
        obtained_at=now,
        refresh_after=now + timedelta(hours=2),
    )
    for i in range(50):
        other, _ = Corp.objects.get_or_create(corpid=f"wpbenchother{i}")
        Authorization.objects.get_or_create(suite=suite, corp=other)
    name = f"bench-{timezone.now().timestamp()}"
    _, issued = api_services.api_client_create(
        name=name, corpids=["wpbenchcorp"], rate_limit_per_minute=10**9
    )
    print(json.dumps({"key": issued.key}))


if __name__ == "__main__":
    main()
