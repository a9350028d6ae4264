"""Credential rows by owner: their key, their row, and forgetting what they hold.

A provider, a suite and an authorization each own one CredentialToken row. This is
the bottom of the token layer: tenants/credentials.py fetches and serves tokens on top
of it, and the status transitions (tenants/transitions.py) void them from below it.
"""

from __future__ import annotations

from collections.abc import Callable

from tenants import fetching
from tenants.models import Authorization
from tenants.models import CredentialToken
from tenants.models import Provider
from tenants.models import Suite

# The Redis copy of a token lives under "token:<owner_key>" (tenants/fetching.py).
CACHE_PREFIX = "token"


def owner_key(owner: Provider | Suite | Authorization) -> str:
    """Return the credential's stable key: ids only (safe for locks, caches, logs)."""
    if isinstance(owner, Provider):
        return f"provider:{owner.corpid}"
    if isinstance(owner, Suite):
        return f"suite:{owner.suite_id}"
    if isinstance(owner, Authorization):
        return f"corp:{owner.suite.suite_id}:{owner.corp.corpid}"
    raise TypeError(f"no credential for {type(owner).__name__}")


def _kind(owner: Provider | Suite | Authorization) -> str:
    if isinstance(owner, Provider):
        return CredentialToken.Kind.PROVIDER
    if isinstance(owner, Suite):
        return CredentialToken.Kind.SUITE
    return CredentialToken.Kind.CORP


def credential_row(owner: Provider | Suite | Authorization) -> CredentialToken:
    """Return the owner's CredentialToken row, creating an empty one on first use."""
    key = owner_key(owner)
    links = {
        "provider": owner if isinstance(owner, Provider) else None,
        "suite": owner if isinstance(owner, Suite) else None,
        "authorization": owner if isinstance(owner, Authorization) else None,
    }
    row, _ = CredentialToken.objects.get_or_create(
        owner_key=key, defaults={"kind": _kind(owner), **links}
    )
    return row


def token_invalidate(owner: Provider | Suite | Authorization) -> None:
    """Forget the owner's token (cancel, reset, suspend): the next reader fetches anew.

    Bumps the generation, so a refresh in flight cannot store (or serve) the token it
    is fetching, and fences the Redis copy. For a tenant, its JS-SDK tickets (derived
    from the corp token) are invalidated the same way. The backoff is cleared: a new
    permanent code or secret deserves a fresh try.
    """
    fetching.invalidate_rows(
        CredentialToken.objects.filter(owner_key=owner_key(owner)),
        cache_prefix=CACHE_PREFIX,
        refresh_after=None,
    )
    if isinstance(owner, Authorization):
        for hook in TENANT_INVALIDATION_HOOKS:
            hook(authorization=owner)


# Called with ``authorization=`` whenever a tenant's corp token is invalidated: caches
# derived from that token register here (api: JS-SDK tickets, in ApiConfig.ready), so
# tenants never imports the layers above it.
TENANT_INVALIDATION_HOOKS: list[Callable[..., None]] = []


def token_backoff_clear(owner: Provider | Suite | Authorization) -> None:
    """Forget a remembered failure (ops fixed the secret): the next read may call WeCom."""
    CredentialToken.objects.filter(owner_key=owner_key(owner)).update(
        retry_not_before=None, flagged=False, forced_refresh_at=None
    )
