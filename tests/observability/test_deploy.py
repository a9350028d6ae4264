"""`manage.py check --deploy` passes with production settings; security settings fail fast."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support import django_env

# Variables `make test` sets that a production deploy would not have.
DROP = [
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "DJANGO_SECRET_KEY_FILE",
    "FIELD_ENCRYPTION_KEYS",
    "FIELD_ENCRYPTION_KEYS_FILE",
    "PUBLIC_BASE_URL",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_HSTS_SECONDS",
    "DJANGO_HSTS_INCLUDE_SUBDOMAINS",
    "DJANGO_HSTS_PRELOAD",
    "DJANGO_SECURE_SSL_REDIRECT",
    "METRICS_TOKEN",
    "METRICS_TOKEN_FILE",
    "METRICS_ALLOWED_NETWORKS",
    "LOG_FORMAT",
]


def production_env(**overrides: str) -> dict[str, str]:
    env = django_env()
    for name in DROP:
        env.pop(name, None)
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEYS="k1:" + base64.b64encode(os.urandom(32)).decode(),
        PUBLIC_BASE_URL="https://wecom.example.com",
        DJANGO_HSTS_SECONDS="31536000",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)


def test_deploy_check_passes_with_production_settings():
    result = deploy_check(production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_catches_a_missing_hsts():
    # Proves the check above is not silenced wholesale.
    env = production_env(DJANGO_HSTS_SECONDS="0")
    result = deploy_check(env)
    assert result.returncode != 0
    assert "security.W004" in result.stderr


SHOW = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
    "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.CSRF_TRUSTED_ORIGINS, "
    "s.LOG_FORMAT, s.METRICS_ALLOWED_NETWORKS, s.DEBUG)"
)


def test_hsts_is_on_by_default_for_https_and_forwarded_proto_needs_a_proxy():
    env = production_env()
    env.pop("DJANGO_HSTS_SECONDS")
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER)"
    )
    result = run(["-c", script], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["31536000", "None"]
    assert deploy_check(env).returncode == 0
    proxied = run(["-c", script], {**env, "DJANGO_TRUSTED_PROXY_COUNT": "1"})
    assert "HTTP_X_FORWARDED_PROTO" in proxied.stdout
    plain = run(["-c", script], production_env(PUBLIC_BASE_URL="http://wecom.internal"))
    assert plain.stdout.split()[0] == "31536000"  # explicitly set by production_env
    unset = {**production_env(PUBLIC_BASE_URL="http://wecom.internal")}
    unset.pop("DJANGO_HSTS_SECONDS")
    assert run(["-c", script], unset).stdout.split()[0] == "0"


def test_production_values():
    result = run(["-c", SHOW], production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == (
        "True True True 31536000 True ['https://wecom.example.com'] json "
        "['127.0.0.1/32', '::1/128'] False"
    )


def test_development_uses_plain_logs_and_no_https_requirements():
    env = production_env(DJANGO_DEBUG="1", PUBLIC_BASE_URL="http://127.0.0.1:8000")
    result = run(["-c", SHOW], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("False False False")
    assert " plain " in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,not-a-net"}, "METRICS_ALLOWED_NETWORKS must"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be json or plain"),
        ({"ADMIN_LOGIN_MAX_FAILURES": "0"}, "ADMIN_LOGIN_MAX_FAILURES must be >= 1"),
    ],
)
def test_malformed_security_settings_fail_fast(overrides, message):
    result = run(["-c", "import django; django.setup()"], production_env(**overrides))
    assert result.returncode != 0
    assert message in result.stderr
    for value in overrides.values():
        if value not in {"0"}:
            assert f"'{value}'" not in result.stderr  # values are not echoed back


def test_startup_logs_are_json_and_redacted():
    env = production_env(LOG_LEVEL="INFO")
    script = (
        "import django, logging; django.setup(); from django.conf import settings; "
        "logging.getLogger('x').error('boom %s', settings.SECRET_KEY)"
    )
    result = run(["-c", script], env)
    assert result.returncode == 0, result.stderr
    assert env["DJANGO_SECRET_KEY"] not in result.stderr
    assert '"message": "boom [REDACTED]"' in result.stderr
