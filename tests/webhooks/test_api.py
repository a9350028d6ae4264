"""/api/v1/webhooks/subscriptions/: scope-checked, the client's own rows only."""

from __future__ import annotations

import pytest

from api.models import SCOPE_WEBHOOKS_MANAGE
from tests.api.conftest import make_caller
from webhooks.models import Subscription

BASE = "/api/v1/webhooks/subscriptions/"


def patch(caller, path, data):
    return caller.http.patch(path, data, content_type="application/json")


@pytest.mark.django_db
def test_without_the_scope_everything_is_403(tenant):
    caller = make_caller("noscope", suites=[tenant.suite])
    assert caller.get(BASE).status_code == 403
    response = caller.post(BASE, {"url": "https://93.184.216.34/", "event_types": ["*"]})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_anonymous_is_401(client):
    assert client.get(BASE).status_code == 401


@pytest.mark.django_db
def test_create_shows_the_secret_once_and_the_client_sees_only_its_own(product, tenant):
    response = product.post(
        BASE, {"url": "https://93.184.216.34/hook", "event_types": ["external_contact.*"]}
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    secret, uid = body["secret"], body["id"]
    assert secret.startswith("whsec_")
    assert body["event_types"] == ["external_contact.*"]
    listed = product.get(BASE)
    assert [s["id"] for s in listed.json()] == [uid]
    assert secret not in listed.content.decode()
    detail = product.get(f"{BASE}{uid}/")
    assert detail.status_code == 200
    assert secret not in detail.content.decode()
    other = make_caller("other", suites=[tenant.suite])
    other.client.scopes = [SCOPE_WEBHOOKS_MANAGE]
    other.client.save()
    assert other.get(BASE).json() == []
    assert other.get(f"{BASE}{uid}/").status_code == 404
    assert patch(other, f"{BASE}{uid}/", {"enabled": False}).status_code == 404
    assert other.http.delete(f"{BASE}{uid}/").status_code == 404
    assert Subscription.objects.get(uid=uid).enabled


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("http://93.184.216.34/hook", "url"),
        ("https://169.254.169.254/latest", "url"),
        ("https://10.0.0.8/hook", "url"),
        ("not-a-url", "url"),
    ],
)
def test_unsafe_urls_get_a_clear_400(product, url, field):
    response = product.post(BASE, {"url": url, "event_types": ["*"]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in str(error["details"])
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_a_name_resolving_to_loopback_is_refused_when_loopback_is_not_allowed(product, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    response = product.post(BASE, {"url": "https://localhost/hook", "event_types": ["*"]})
    assert response.status_code == 400
    assert "loopback" in str(response.json()["error"]["details"])


@pytest.mark.django_db
@pytest.mark.parametrize("types", [[], ["Bad Type"], ["x" * 65], "tenant.*"])
def test_bad_event_types_get_a_400(product, types):
    response = product.post(BASE, {"url": "https://93.184.216.34/", "event_types": types})
    assert response.status_code == 400
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_update_rotate_deliveries_and_delete(product):
    uid = product.post(BASE, {"url": "https://93.184.216.34/", "event_types": ["*"]}).json()["id"]
    response = patch(product, f"{BASE}{uid}/", {"event_types": ["tenant.*"], "enabled": False})
    assert response.status_code == 200
    assert response.json()["enabled"] is False
    assert response.json()["disabled_reason"] == "manual"
    assert patch(product, f"{BASE}{uid}/", {"url": "https://10.0.0.1/"}).status_code == 400
    rotated = product.post(f"{BASE}{uid}/rotate-secret/")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert Subscription.objects.get(uid=uid).secret == rotated.json()["secret"]
    assert product.get(f"{BASE}{uid}/deliveries/").json() == []
    assert product.http.delete(f"{BASE}{uid}/").status_code == 204
    assert not Subscription.objects.exists()
