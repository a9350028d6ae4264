"""Settings refuse to start without real secrets outside DEBUG (run in child processes)."""

import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support import django_env

IMPORT_SETTINGS = "import django; django.setup(); from django.conf import settings; print('ok')"
BASE = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x" * 50,
    "FIELD_ENCRYPTION_KEYS": "k1:" + "A" * 43 + "=",
    "PUBLIC_BASE_URL": "https://wecom.example.com",
}


def run_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    full = django_env()
    for name in [*BASE, "DJANGO_SECRET_KEY_FILE", "FIELD_ENCRYPTION_KEYS_FILE"]:
        full.pop(name, None)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", IMPORT_SETTINGS],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_load_with_everything_set():
    result = run_settings(BASE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    "missing", ["DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "PUBLIC_BASE_URL"]
)
def test_production_refuses_to_start_without_secret_or_url(missing):
    env = {k: v for k, v in BASE.items() if k != missing}
    result = run_settings(env)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr


def test_debug_generates_a_random_secret_key_per_process():
    env = {"DJANGO_DEBUG": "1"}
    script = IMPORT_SETTINGS.replace("print('ok')", "print(settings.SECRET_KEY)")
    keys = set()
    for _ in range(2):
        full = django_env()
        for name in BASE:
            full.pop(name, None)
        full.update(env)
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=full,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        keys.add(out.stdout.strip())
    assert len(keys) == 2
    assert all(len(key) >= 50 for key in keys)


def test_malformed_value_fails_fast_naming_the_variable():
    result = run_settings({**BASE, "DJANGO_DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be a boolean" in result.stderr


def test_settings_source_has_no_hard_coded_secret():
    source = (ROOT / "wecom_provider" / "settings.py").read_text()
    assert 'SECRET_KEY = "' not in source
    assert "django-insecure" not in source
