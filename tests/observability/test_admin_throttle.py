"""Failed admin logins are throttled per address and username, in Redis."""

from __future__ import annotations

import os

import pytest
import redis
from django.test import Client
from django.test import override_settings

LOGIN = "/admin/login/"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _fast_admin(settings):
    # Password hashing is deliberately slow; these tests make dozens of attempts.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The manifest storage used without DEBUG needs `collectstatic`; admin pages only need URLs.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)


def attempt(client: Client, username: str, password: str, ip: str = "192.0.2.10", **extra):
    return client.post(
        LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
        **extra,
    )


@pytest.mark.django_db
def test_five_failures_from_two_clients_block_the_sixth(operator):
    first, second = Client(), Client()
    for index in range(5):
        response = attempt(first if index % 2 else second, "ops", "wrong")
        assert response.status_code == 200  # the form again, with an error
    blocked = attempt(first, "ops", "wrong")
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    assert b"Too many failed login attempts" in blocked.content
    # Even the right password waits for the window: the guesser cannot tell it worked.
    assert attempt(second, "OPS", PASSWORD).status_code == 429


@pytest.mark.django_db
def test_the_counter_lives_in_redis_with_an_expiry(operator):
    for _ in range(5):
        attempt(Client(), "ops", "wrong")
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        keys = client.keys("*admin-login-fail*")
        assert len(keys) == 2  # (address, username) and address
        assert all(0 < client.ttl(key) <= 300 for key in keys)
        assert sorted(int(client.get(key)) for key in keys) == [5, 5]
        for key in keys:
            assert b"ops" not in key  # hashed
            assert b"192.0.2.10" not in key
    finally:
        client.close()


@pytest.mark.django_db
def test_other_address_and_other_username_are_not_blocked(operator):
    for _ in range(5):
        attempt(Client(), "ops", "wrong")
    assert attempt(Client(), "ops", "wrong").status_code == 429
    assert attempt(Client(), "ops", PASSWORD, ip="198.51.100.20").status_code == 302
    assert attempt(Client(), "someone-else", "wrong").status_code == 200


@pytest.mark.django_db
def test_success_resets_the_counter(operator):
    client = Client()
    for _ in range(4):
        assert attempt(client, "ops", "wrong").status_code == 200
    assert attempt(client, "ops", PASSWORD).status_code == 302
    other = Client()
    for _ in range(5):
        assert attempt(other, "ops", "wrong").status_code == 200
    assert attempt(other, "ops", "wrong").status_code == 429


@pytest.mark.django_db
def test_one_address_trying_many_usernames_is_capped(operator):
    for index in range(20):
        assert attempt(Client(), f"user{index}", "wrong").status_code == 200
    assert attempt(Client(), "ops", PASSWORD).status_code == 429


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_the_forwarded_address_is_throttled(operator):
    # The client controls everything left of the last proxy's entry.
    for index in range(5):
        spoofed = f"203.0.113.{index}, 198.51.100.7"
        attempt(Client(), "ops", "wrong", ip="10.0.0.1", HTTP_X_FORWARDED_FOR=spoofed)
    blocked = attempt(Client(), "ops", "wrong", ip="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert blocked.status_code == 429
    other = attempt(Client(), "ops", PASSWORD, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert other.status_code == 302


@pytest.mark.django_db
@override_settings(ADMIN_LOGIN_MAX_FAILURES=2, ADMIN_LOGIN_FAILURE_WINDOW=1)
def test_the_block_ends_with_the_window(operator):
    import time

    attempt(Client(), "ops", "wrong")
    attempt(Client(), "ops", "wrong")
    assert attempt(Client(), "ops", "wrong").status_code == 429
    time.sleep(1.2)
    assert attempt(Client(), "ops", PASSWORD).status_code == 302


def test_other_paths_and_methods_are_untouched(client):
    assert client.get(LOGIN).status_code == 200
    assert client.post("/healthz").status_code == 405
