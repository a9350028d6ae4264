"""register_provider reads secrets from the environment, a *_FILE or stdin; flags warn."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.models import Provider

AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def register(monkeypatch, *, stdin: str = "", **flags) -> tuple[str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    call_command("register_provider", stdout=out, stderr=err, **flags)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_secrets_from_env_file_and_stdin_without_warning(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("WECOM_PROVIDER_CORPID", "wwprov1")
    monkeypatch.setenv("WECOM_PROVIDER_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("WECOM_PROVIDER_AES_KEY", AES)
    _, err = register(monkeypatch, stdin="tok123\n", token="-")
    assert "warning" not in err
    provider = Provider.objects.get(corpid="wwprov1")
    assert provider.provider_secret == "from-a-file"
    assert provider.callback_token == "tok123"


@pytest.mark.django_db
def test_secret_flags_still_work_but_warn_without_echoing(monkeypatch):
    monkeypatch.setenv("WECOM_PROVIDER_CORPID", "wwprov2")
    _, err = register(monkeypatch, secret="flag-secret-value", token="tok9", aes_key=AES)
    assert "--secret given on the command line" in err
    assert "flag-secret-value" not in err
    assert Provider.objects.get(corpid="wwprov2").provider_secret == "flag-secret-value"


@pytest.mark.django_db
def test_missing_secret_names_every_way_to_give_it(monkeypatch):
    monkeypatch.setenv("WECOM_PROVIDER_CORPID", "wwprov3")
    for name in ("WECOM_PROVIDER_SECRET", "WECOM_PROVIDER_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CommandError, match="WECOM_PROVIDER_SECRET_FILE"):
        register(monkeypatch, token="tok9", aes_key=AES)
    assert not Provider.objects.filter(corpid="wwprov3").exists()
