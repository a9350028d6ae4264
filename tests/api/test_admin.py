"""Admin for API clients, keys and the audit log; the audit log's database guard."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.db import transaction
from django.test import Client

from api.models import ApiClient
from api.models import ApiKey
from api.models import AuditLog
from tests.api.conftest import make_caller
from tests.tenants.factories import make_suite


@pytest.fixture
def admin_client(db, settings):
    # The manifest storage used without DEBUG needs `collectstatic`; pages only need URLs.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-not-used-1")
    client = Client()
    client.force_login(user)
    return client


def test_adding_a_client_shows_its_key_once_and_never_again(admin_client):
    suite = make_suite()
    response = admin_client.post(
        "/admin/api/apiclient/add/",
        {
            "name": "billing",
            "description": "",
            "suites": [suite.pk],
            "corps": [],
            "rate_limit_per_minute": "",
            "keys-TOTAL_FORMS": "0",
            "keys-INITIAL_FORMS": "0",
            "keys-MIN_NUM_FORMS": "0",
            "keys-MAX_NUM_FORMS": "1000",
        },
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    keys = re.findall(r"wcp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", page)
    assert len(set(keys)) == 1
    key = keys[0]
    client = ApiClient.objects.get(name="billing")
    assert list(client.suites.all()) == [suite]
    row = ApiKey.objects.get(client=client)
    http = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert http.get("/api/v1/suites/").json()["results"][0]["suite_id"] == suite.suite_id
    for url in (
        "/admin/api/apiclient/",
        f"/admin/api/apiclient/{client.pk}/change/",
        "/admin/api/apikey/",
        f"/admin/api/apikey/{row.pk}/change/",
    ):
        text = admin_client.get(url).content.decode()
        assert key not in text, url
        assert row.key_hash not in text, url
        assert row.prefix in text or url.endswith("/apiclient/"), url


def test_issue_key_and_revoke_actions(admin_client):
    caller = make_caller("actions")
    response = admin_client.post(
        "/admin/api/apiclient/",
        {"action": "issue_key", "_selected_action": [caller.client.pk]},
        follow=True,
    )
    new_keys = set(re.findall(r"wcp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", response.content.decode()))
    assert len(new_keys) == 1
    assert caller.key not in new_keys
    assert ApiKey.objects.filter(client=caller.client).count() == 2
    admin_client.post(
        "/admin/api/apiclient/", {"action": "revoke", "_selected_action": [caller.client.pk]}
    )
    assert caller.get("/api/v1/suites/").status_code == 401
    assert Client(HTTP_AUTHORIZATION=f"Bearer {new_keys.pop()}").get(
        "/api/v1/suites/"
    ).status_code == (401)


def test_audit_log_is_view_only_in_admin_and_append_only_in_the_database(admin_client):
    caller = make_caller("audited")
    caller.post("/api/v1/suites/x/install-links/")  # a write: one audit row
    row = AuditLog.objects.get(client=caller.client)
    assert row.outcome == "not_found"
    assert admin_client.get("/admin/api/auditlog/").status_code == 200
    change = admin_client.get(f"/admin/api/auditlog/{row.pk}/change/")
    assert change.status_code == 200
    assert b'name="_save"' not in change.content  # view only
    assert admin_client.post(f"/admin/api/auditlog/{row.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/api/auditlog/add/").status_code == 403
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).update(outcome="ok")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).delete()
    assert AuditLog.objects.get(pk=row.pk).outcome == "not_found"


def test_new_key_page_is_no_store_and_the_key_is_in_no_cookie_session_or_message(admin_client):
    from django.contrib.messages import get_messages
    from django.contrib.sessions.models import Session

    caller = make_caller("once")
    response = admin_client.post(
        "/admin/api/apiclient/", {"action": "issue_key", "_selected_action": [caller.client.pk]}
    )
    # Rendered by the request that created the key: no redirect, nothing stored for later.
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    (key,) = set(re.findall(r"wcp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", response.content.decode()))
    assert not [str(m) for m in get_messages(response.wsgi_request)]
    for morsel in [*response.cookies.values(), *admin_client.cookies.values()]:
        assert key not in morsel.value
    for session in Session.objects.all():
        assert key not in str(session.get_decoded())
        assert key not in session.session_data
    # Reloading the list (or going back) shows no key.
    assert key not in admin_client.get("/admin/api/apiclient/").content.decode()
