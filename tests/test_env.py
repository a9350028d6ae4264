from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from wecom_provider import env


def test_env_bool_parses_common_spellings(monkeypatch):
    for raw, expected in [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False)]:
        monkeypatch.setenv("FLAG", raw)
        assert env.env_bool("FLAG", default=not expected) is expected


def test_env_bool_rejects_garbage_without_echoing_it(monkeypatch):
    monkeypatch.setenv("FLAG", "sometimes-secret")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be a boolean") as info:
        env.env_bool("FLAG", default=False)
    assert "sometimes-secret" not in str(info.value)


def test_env_int_fails_fast(monkeypatch):
    monkeypatch.setenv("N", "ten")
    with pytest.raises(ImproperlyConfigured, match="N must be an integer"):
        env.env_int("N", default=1)
    monkeypatch.setenv("N", "-1")
    with pytest.raises(ImproperlyConfigured, match=">= 0"):
        env.env_int("N", default=1, minimum=0)
    monkeypatch.setenv("N", "7")
    assert env.env_int("N", default=1) == 7


def test_env_str_missing_raises(monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(ImproperlyConfigured, match="NOPE is not set"):
        env.env_str("NOPE")
    assert env.env_str("NOPE", "fallback") == "fallback"


def test_env_secret_reads_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("TOKEN_FILE", str(secret_file))
    assert env.env_secret("TOKEN") == "from-file"
    monkeypatch.setenv("TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="unreadable"):
        env.env_secret("TOKEN")


def test_env_url_checks_scheme(monkeypatch):
    monkeypatch.setenv("U", "ftp://example.com")
    with pytest.raises(ImproperlyConfigured, match="scheme http or https"):
        env.env_url("U", default=None, schemes=("http", "https"))
    monkeypatch.setenv("U", "https://example.com/")
    assert env.env_url("U", default=None, schemes=("http", "https")) == "https://example.com"


def test_parse_database_url_postgres():
    config = env.parse_database_url(
        "DATABASE_URL", "postgres://app:p%40ss@db.internal:5433/wecom", base_dir=Path("/srv")
    )
    assert config.engine == "django.db.backends.postgresql"
    assert (config.name, config.user, config.password) == ("wecom", "app", "p@ss")
    assert (config.host, config.port) == ("db.internal", "5433")


def test_parse_database_url_sqlite_relative_and_absolute():
    relative = env.parse_database_url("D", "sqlite:///var/db.sqlite3", base_dir=Path("/srv/app"))
    assert relative.name == "/srv/app/var/db.sqlite3"
    absolute = env.parse_database_url("D", "sqlite:////tmp/x.sqlite3", base_dir=Path("/srv"))
    assert absolute.name == "/tmp/x.sqlite3"


@pytest.mark.parametrize(
    "url", ["mysql://x/y", "postgres://host", "sqlite:///", "postgres://h:notaport/db", "nonsense"]
)
def test_parse_database_url_rejects_malformed(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        env.parse_database_url("DATABASE_URL", url, base_dir=Path("/srv"))
