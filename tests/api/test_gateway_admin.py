"""Issue 19: the gateway allowlist is managed in the admin (security admins: the
``api.change_apiclient`` permission) and by ``create_api_client --wecom-path``; both
refuse patterns for the families the gateway never calls."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from api.models import ApiClient
from ops import roles
from tests.api.conftest import make_caller
from tests.api.test_admin import admin_client  # noqa: F401 (fixture)


def _form(client: ApiClient, paths) -> dict:
    return {
        "name": client.name,
        "description": "",
        "scopes": "[]",
        "wecom_paths": json.dumps(paths),
        "rate_limit_per_minute": "",
        "keys-TOTAL_FORMS": "0",
        "keys-INITIAL_FORMS": "0",
        "keys-MIN_NUM_FORMS": "0",
        "keys-MAX_NUM_FORMS": "1000",
    }


def test_the_allowlist_is_edited_in_the_admin_and_validated(admin_client):  # noqa: F811
    caller = make_caller("crm")
    url = f"/admin/api/apiclient/{caller.client.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert "WeCom gateway paths" in page
    ok = admin_client.post(url, _form(caller.client, ["user/*", "message/send"]))
    assert ok.status_code == 302, ok.content
    caller.client.refresh_from_db()
    assert caller.client.wecom_paths == ["user/*", "message/send"]
    bad = admin_client.post(url, _form(caller.client, ["service/*"]))
    assert bad.status_code == 200
    assert "never reachable" in bad.content.decode()
    caller.client.refresh_from_db()
    assert caller.client.wecom_paths == ["user/*", "message/send"]


def test_only_roles_that_change_clients_may_edit_it():
    permissions = dict.fromkeys(roles.SECURITY_ADMIN_PERMISSIONS)
    assert "api.change_apiclient" in permissions
    assert "api.change_apiclient" not in dict.fromkeys(roles.OPERATOR_PERMISSIONS)


@pytest.mark.django_db
def test_the_command_sets_the_allowlist_and_refuses_bad_patterns(capsys):
    call_command("create_api_client", "erp", "--wecom-path", "user/*", "--wecom-path", "tag/list")
    assert ApiClient.objects.get(name="erp").wecom_paths == ["user/*", "tag/list"]
    with pytest.raises(CommandError, match="never reachable"):
        call_command("create_api_client", "bad", "--wecom-path", "license/*")
    assert not ApiClient.objects.filter(name="bad").exists()
