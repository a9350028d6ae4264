"""Fixtures for API tests: API clients with keys, HTTP clients carrying them, tenants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api import services as api_services
from api.models import ApiClient
from tenants import services
from tenants.models import Authorization
from tenants.models import CredentialToken

NOT_FOUND = {"error": {"code": "not_found", "message": "Not found.", "details": {}}}


@pytest.fixture(autouse=True)
def _api_settings(settings):
    # The feed's settle delay is tested on its own; elsewhere events show at once.
    settings.API_EVENTS_SETTLE_SECONDS = 0
    settings.API_RATE_LIMIT_PER_MINUTE = 100_000


@dataclass
class Caller:
    """An API client with its key, and a Django test client sending it."""

    client: ApiClient
    key: str
    http: Client

    def get(self, path: str, data=None, **extra):
        return self.http.get(path, data, **extra)

    def post(self, path: str, data=None, **extra):
        return self.http.post(path, data or {}, content_type="application/json", **extra)

    def put(self, path: str, data=None, **extra):
        return self.http.put(path, data or {}, content_type="application/json", **extra)


def make_caller(
    name: str,
    *,
    suites=(),
    corps=(),
    rate_limit: int | None = None,
    expires_in_days: int | None = None,
    wecom_paths=(),
) -> Caller:
    client, issued = api_services.api_client_create(
        name=name,
        suite_ids=[s.suite_id for s in suites],
        corpids=[c.corpid for c in corps],
        rate_limit_per_minute=rate_limit,
        expires_in_days=expires_in_days,
        wecom_paths=wecom_paths,
    )
    return Caller(client, issued.key, Client(HTTP_AUTHORIZATION=f"Bearer {issued.key}"))


@pytest.fixture
def caller_factory(db):
    return make_caller


def install(platform, corp_index: int = 0, *, suite=None) -> Authorization:
    """Install ``suite`` (third-party by default) for a simulator corp, as WeCom would."""
    suite = suite or platform.suite
    corpid = platform.corps[corp_index]["corpid"]
    answer = platform.control.install(suite.suite_id, corpid, push=False)
    authorization = services.authorization_install(
        suite=suite, auth_code=answer.get("auth_code") or answer["code"], source="callback"
    )
    authorization.refresh_from_db()  # the post-install sync wrote another copy
    return authorization


def give_token(authorization: Authorization, value: str, *, minutes: int = 100) -> None:
    """Store a usable corp token without asking WeCom (database-only tests)."""
    from tenants import credentials

    row = credentials.credential_row(authorization)
    holder = CredentialToken(owner_key=row.owner_key)
    holder.value = value
    now = timezone.now()
    CredentialToken.objects.filter(pk=row.pk).update(
        value_sealed=holder.value_sealed,
        expires_at=now + timedelta(minutes=minutes),
        obtained_at=now,
        refresh_after=now + timedelta(minutes=minutes - 10),
    )


def tenant_path(authorization: Authorization, tail: str = "") -> str:
    return f"/api/v1/suites/{authorization.suite.suite_id}/corps/{authorization.corp.corpid}/{tail}"
