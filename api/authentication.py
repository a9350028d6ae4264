"""``Authorization: Bearer wcp_…`` authentication.

Every request reads its key row from the database: revocation and expiry take effect
on the very next request (no cached auth result outlives a request). The key itself is
never logged, stored or echoed; failures all say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication
from rest_framework import exceptions

from api.keys import key_matches
from api.keys import key_prefix_of
from api.models import ApiClient
from api.models import ApiKey
from api.selectors import api_key_lookup
from tenants.models import Authorization

# last_used_at is bookkeeping, not security: refresh it at most this often per key.
LAST_USED_RESOLUTION = timedelta(seconds=60)
INVALID_KEY = "Invalid, expired or revoked API key."


class ApiClientUser:
    """``request.user`` for an API client: authenticated, never staff, no Django user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.username = client.name
        self.pk = None

    def __str__(self) -> str:
        return f"api client {self.client.name}"


@dataclass(frozen=True)
class ApiPrincipal:
    """``request.auth``: the client and the key it used (the key's row, never its value).

    ``tenant``: for a URL naming ``<suite_id>/corps/<corpid>``, that tenant as this client
    may see it (None: out of scope or absent), read by the same query as the key. It
    lives as long as the request; TenantScopedApi uses it instead of a second lookup.
    """

    client: ApiClient
    key: ApiKey
    tenant: TenantLookup | None = None

    @property
    def client_id(self) -> int:
        return self.client.pk


@dataclass(frozen=True)
class TenantLookup:
    suite_id: str
    corpid: str
    authorization: Authorization | None


def _tenant_named_by(request) -> tuple[str, str] | None:
    kwargs = (getattr(request, "parser_context", None) or {}).get("kwargs") or {}
    if "suite_id" in kwargs and "corpid" in kwargs:
        return str(kwargs["suite_id"]), str(kwargs["corpid"])
    return None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        scheme, _, raw = header.partition(b" ")
        if scheme.lower() != self.keyword.lower().encode():
            return None  # another scheme: not ours; IsAuthenticated answers 401
        try:
            key = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID_KEY) from None
        prefix = key_prefix_of(key)
        if prefix is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        named = _tenant_named_by(request)
        row, authorization = api_key_lookup(prefix=prefix, tenant=named)
        now = timezone.now()
        if (
            row is None
            or not key_matches(key, row.key_hash)
            or not row.is_usable(now=now)
            or row.client.is_revoked
        ):
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        if row.last_used_at is None or row.last_used_at < now - LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
        lookup = TenantLookup(*named, authorization) if named else None
        principal = ApiPrincipal(client=row.client, key=row, tenant=lookup)
        return ApiClientUser(row.client), principal

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'
