"""API keys: the command, storage, expiry, revocation, rotation; 401 everywhere."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from api import services
from api import urls as api_urls
from api.keys import key_digest
from api.models import ApiClient
from api.models import ApiKey
from tests.api.conftest import make_caller
from tests.tenants.factories import make_authorization
from tests.tenants.factories import make_suite

UNAUTHENTICATED_CODES = {"not_authenticated", "authentication_failed"}


def every_route() -> list[tuple[str, str]]:
    """Return (path, method) for every /api/v1/ route, ids filled with placeholders."""
    routes = []
    for pattern in api_urls.v1:
        path = "/api/v1/" + str(pattern.pattern)
        for name in ("suite_id", "corpid", "order_id"):
            path = path.replace(f"<wid:{name}>", f"x{name}")
        path = path.replace("<wecompath:wecom_path>", "user/get")
        for method in ("get", "post", "put"):
            if hasattr(pattern.callback.view_class, method):
                routes.append((path, method))
    return routes


def assert_401(response) -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] in UNAUTHENTICATED_CODES


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-key",
        "Bearer wcp_000000000000_" + "A" * 43,
        "Bearer wcp_\u00e9\u00e9",
    ],
)
def test_every_route_answers_401_without_a_valid_key(header):
    client = Client(HTTP_AUTHORIZATION=header) if header else Client()
    routes = every_route()
    assert len(routes) >= 20
    for path, method in [*routes, ("/api/v1/no/such/path/", "get"), ("/api/nothing", "post")]:
        response = getattr(client, method)(path, {}, content_type="application/json")
        assert_401(response)


@pytest.mark.django_db
def test_command_prints_the_key_alone_on_its_last_line_and_stores_only_a_hash(caplog):
    caplog.set_level(logging.DEBUG)
    suite = make_suite()
    authorization = make_authorization(suite)
    out = StringIO()
    call_command(
        "create_api_client",
        "crm",
        "--suite",
        suite.suite_id,
        "--corp",
        authorization.corp.corpid,
        "--expires-in-days",
        "30",
        stdout=out,
    )
    key = out.getvalue().rstrip("\n").splitlines()[-1]
    assert key.startswith("wcp_")
    assert key == key.strip()
    assert " " not in key
    client = ApiClient.objects.get(name="crm")
    assert list(client.suites.all()) == [suite]
    assert list(client.corps.all()) == [authorization.corp]
    row = ApiKey.objects.get(client=client)
    assert row.key_hash == key_digest(key)
    assert key.split("_")[1] == row.prefix
    assert row.expires_at > timezone.now() + timedelta(days=29)
    # The key is nowhere in the database but as its digest.
    stored = " ".join(str(v) for v in ApiKey.objects.values_list().get())
    assert key not in stored
    secret_part = key.split("_", 2)[2]
    assert secret_part not in stored
    # It works, and it is never logged.
    http = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert http.get("/api/v1/suites/").status_code == 200
    assert http.get("/api/v1/suites/x/corps/").status_code == 404
    assert key not in caplog.text
    assert secret_part not in caplog.text
    with pytest.raises(CommandError):
        call_command("create_api_client", "crm", stdout=StringIO())


@pytest.mark.django_db
def test_rotation_allows_two_keys_then_revocation_is_immediate():
    caller = make_caller("rotating")
    out = StringIO()
    call_command("create_api_client", "--rotate", "rotating", stdout=out)
    second = out.getvalue().rstrip("\n").splitlines()[-1]
    old = Client(HTTP_AUTHORIZATION=f"Bearer {caller.key}")
    new = Client(HTTP_AUTHORIZATION=f"Bearer {second}")
    assert old.get("/api/v1/suites/").status_code == 200
    assert new.get("/api/v1/suites/").status_code == 200
    with pytest.raises(CommandError, match="usable keys"):
        call_command("create_api_client", "--rotate", "rotating", stdout=StringIO())
    old_prefix = caller.key.split("_")[1]
    call_command("create_api_client", "--revoke-key", f"wcp_{old_prefix}", stdout=StringIO())
    assert_401(old.get("/api/v1/suites/"))
    assert new.get("/api/v1/suites/").status_code == 200
    # A third key may be issued once the old one is revoked.
    services.api_key_issue(client=caller.client)


@pytest.mark.django_db
def test_expired_key_and_revoked_client_get_401_at_once():
    caller = make_caller("expiring", expires_in_days=1)
    assert caller.get("/api/v1/suites/").status_code == 200
    ApiKey.objects.filter(client=caller.client).update(expires_at=timezone.now())
    assert_401(caller.get("/api/v1/suites/"))
    other = make_caller("revoked")
    assert other.get("/api/v1/events/").status_code == 200
    services.api_client_revoke(client=other.client)
    assert_401(other.get("/api/v1/events/"))
    with pytest.raises(services.ApiClientError):
        services.api_key_issue(client=other.client)


@pytest.mark.django_db
def test_a_key_with_the_right_prefix_and_a_wrong_secret_is_refused():
    caller = make_caller("guessed")
    prefix = caller.key.split("_")[1]
    forged = f"wcp_{prefix}_" + "B" * 43
    assert_401(Client(HTTP_AUTHORIZATION=f"Bearer {forged}").get("/api/v1/suites/"))


@pytest.mark.django_db
def test_client_without_scope_sees_nothing():
    suite = make_suite()
    make_authorization(suite)
    caller = make_caller("empty")
    assert caller.get("/api/v1/suites/").json()["results"] == []
    assert caller.get("/api/v1/events/").json()["results"] == []
    assert caller.get(f"/api/v1/suites/{suite.suite_id}/corps/").status_code == 404
