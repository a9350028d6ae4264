"""Failed admin logins lock out the username and the address (django-axes), even in parallel."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest
from axes.models import AccessAttempt
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from django.test import override_settings

LOGIN = "/admin/login/"
PASSWORD = "correct-horse-battery-staple"
LOCKED = b"Too many failed login attempts"


class CountingHasher(MD5PasswordHasher):
    """MD5 (fast) that counts how many passwords were actually checked.

    The count is what the throttle must cap: an attempt refused before the hasher runs
    taught the guesser nothing. The live server runs in this process, so it shares it.
    """

    algorithm = "counting_md5"
    checked = 0
    _lock = threading.Lock()

    def verify(self, password, encoded):
        with CountingHasher._lock:
            CountingHasher.checked += 1
        return super().verify(password, encoded)


@pytest.fixture(autouse=True)
def _fast_admin(settings):
    # Password hashing is deliberately slow; these tests make dozens of attempts.
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.checked = 0
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


def assert_locked(response) -> None:
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert LOCKED in response.content
    assert b"Try again in" in response.content


@pytest.mark.django_db
def test_the_limit_th_failure_locks_out_and_even_the_right_password_waits(operator):
    first, second = Client(), Client()
    for index in range(4):
        response = attempt(first if index % 2 else second, "ops", "wrong")
        assert response.status_code == 200  # the form again, with an error
    assert_locked(attempt(first, "ops", "wrong"))  # the 5th failure locks
    assert CountingHasher.checked == 5
    # Even the right password is refused unchecked: the guesser cannot tell it worked.
    assert_locked(attempt(second, "ops", PASSWORD))
    assert CountingHasher.checked == 5


@pytest.mark.django_db
def test_failures_are_counted_in_the_database(operator):
    for _ in range(3):
        attempt(Client(), "ops", "wrong")
    rows = list(AccessAttempt.objects.values_list("username", "ip_address", "failures_since_start"))
    assert rows == [("ops", "192.0.2.10", 3)]
    # Axes keeps the failed form, but never the password.
    post_data = AccessAttempt.objects.get().post_data
    assert "password=" in post_data
    assert "wrong" not in post_data


@pytest.mark.django_db
def test_lockout_is_per_username_and_per_address(operator):
    for _ in range(5):
        attempt(Client(), "ops", "wrong")
    # The username is locked from every address (guesses spread over many addresses) ...
    assert_locked(attempt(Client(), "ops", PASSWORD, ip="198.51.100.20"))
    # ... and the address is locked for every username (one address, many usernames).
    assert_locked(attempt(Client(), "someone-else", "wrong"))
    # Another username from another address is untouched.
    assert attempt(Client(), "someone-else", "wrong", ip="198.51.100.30").status_code == 200


@pytest.mark.django_db
def test_success_resets_the_counter(operator):
    client = Client()
    for _ in range(4):
        assert attempt(client, "ops", "wrong").status_code == 200
    assert attempt(client, "ops", PASSWORD).status_code == 302
    other = Client()
    for _ in range(4):
        assert attempt(other, "ops", "wrong").status_code == 200
    assert_locked(attempt(other, "ops", "wrong"))


@pytest.mark.django_db
def test_one_address_trying_many_usernames_is_capped(operator):
    for index in range(4):
        assert attempt(Client(), f"user{index}", "wrong").status_code == 200
    assert_locked(attempt(Client(), "user-last", "wrong"))
    assert_locked(attempt(Client(), "ops", PASSWORD))


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_the_forwarded_address_is_counted(operator):
    # The client controls everything left of the last proxy's entry.
    for index in range(5):
        spoofed = f"203.0.113.{index}, 198.51.100.7"
        attempt(Client(), f"user{index}", "wrong", ip="10.0.0.1", HTTP_X_FORWARDED_FOR=spoofed)
    blocked = attempt(Client(), "ops", PASSWORD, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert_locked(blocked)
    other = attempt(Client(), "ops", PASSWORD, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert other.status_code == 302


@pytest.mark.django_db
@override_settings(ADMIN_LOGIN_MAX_FAILURES=2, ADMIN_LOGIN_FAILURE_WINDOW=1)
def test_the_lockout_ends_with_the_window(operator):
    attempt(Client(), "ops", "wrong")
    assert_locked(attempt(Client(), "ops", "wrong"))
    time.sleep(1.2)  # the window is the behaviour under test, not a speed assert
    assert attempt(Client(), "ops", PASSWORD).status_code == 302


def test_other_paths_and_methods_are_untouched(client):
    assert client.get(LOGIN).status_code == 200
    assert client.post("/healthz").status_code == 405


# --- under concurrency, on a real threaded server -----------------------------------------
PARALLEL = 12


def _login_form(http: httpx.Client) -> str:
    page = http.get(LOGIN)
    assert page.status_code == 200
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


@pytest.mark.parametrize("spread_addresses", [False, True], ids=["one-address", "12-addresses"])
def test_parallel_wrong_passwords_get_no_more_checks_than_the_limit(
    live_server, django_user_model, settings, spread_addresses
):
    django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    # With a trusted proxy each thread can claim its own address: then only the
    # per-username lock stands between the 12 guesses and the password check.
    settings.TRUSTED_PROXY_COUNT = 1 if spread_addresses else 0
    limit = settings.ADMIN_LOGIN_MAX_FAILURES
    clients = [httpx.Client(base_url=live_server.url, timeout=60) for _ in range(PARALLEL)]
    tokens = [_login_form(http) for http in clients]
    CountingHasher.checked = 0
    start = threading.Barrier(PARALLEL)
    statuses: list[int] = [0] * PARALLEL

    def guess(index: int) -> None:
        start.wait()  # all 12 POSTs leave together
        response = clients[index].post(
            LOGIN,
            data={
                "csrfmiddlewaretoken": tokens[index],
                "username": "ops",
                "password": f"wrong-{index}",
                "next": "/admin/",
            },
            headers={"X-Forwarded-For": f"203.0.113.{index + 1}"},
        )
        statuses[index] = response.status_code

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert CountingHasher.checked <= limit
        assert sorted(statuses) == [200] * (limit - 1) + [429] * (PARALLEL - limit + 1)
        # Then locked out, right password included, with a message that says so.
        token = _login_form(clients[0])
        locked = clients[0].post(
            LOGIN,
            data={"csrfmiddlewaretoken": token, "username": "ops", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.99"},
        )
        assert locked.status_code == 429
        assert "Too many failed login attempts" in locked.text
        assert int(locked.headers["Retry-After"]) > 0
        assert CountingHasher.checked <= limit
    finally:
        for http in clients:
            http.close()
