import base64
import os
import subprocess
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from tenants.models import Authorization
from tenants.models import CredentialToken
from tenants.models import Provider
from tenants.models import Suite
from tests.support import ROOT
from tests.tenants.factories import make_authorization
from tests.tenants.factories import make_suite
from wecom_provider import fieldcrypt
from wecom_provider.fieldcrypt import CorruptValueError
from wecom_provider.fieldcrypt import KeyRing
from wecom_provider.fieldcrypt import MissingKeyError


def new_key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def test_seal_round_trip_and_format():
    ring = KeyRing.parse(new_key("a") + "," + new_key("b"))
    sealed = ring.seal("secret 值", aad="ctx")
    assert sealed.startswith("v1:a:")
    assert "secret" not in sealed
    assert ring.unseal(sealed, aad="ctx") == "secret 值"
    assert ring.seal("x", aad="ctx") != ring.seal("x", aad="ctx")  # random nonce


def test_wrong_aad_or_tampering_raises_never_returns_ciphertext():
    ring = KeyRing.parse(new_key("a"))
    sealed = ring.seal("permanent", aad="row-1")
    with pytest.raises(CorruptValueError):
        ring.unseal(sealed, aad="row-2")
    head, tail = sealed.rsplit(":", 1)
    flipped = head + ":" + ("A" if tail[0] != "A" else "B") + tail[1:]
    with pytest.raises(CorruptValueError):
        ring.unseal(flipped, aad="row-1")
    for garbage in ["", "plaintext", "v1:a:xx", "v2:a:b:c", "v1:a:!!:??"]:
        with pytest.raises(CorruptValueError):
            ring.unseal(garbage, aad="row-1")


def test_missing_key_is_a_typed_error():
    old = KeyRing.parse(new_key("old"))
    sealed = old.seal("v", aad="x")
    with pytest.raises(MissingKeyError, match="old"):
        KeyRing.parse(new_key("new")).unseal(sealed, aad="x")


@pytest.mark.parametrize(
    "value",
    ["", "nokeyid", "a:notbase64!!", "a:" + base64.b64encode(b"short").decode(), "bad id:xx"],
)
def test_malformed_keyring_is_rejected(value):
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        KeyRing.parse(value)


def test_duplicate_key_ids_rejected():
    with pytest.raises(ImproperlyConfigured, match="repeats"):
        KeyRing.parse(new_key("a") + "," + new_key("a"))


def test_keyring_repr_shows_no_key_material():
    value = new_key("a")
    assert value.split(":")[1] not in repr(KeyRing.parse(value))


@pytest.mark.django_db
def test_secret_columns_hold_only_ciphertext():
    authorization = make_authorization()
    code = authorization.permanent_code
    stored = Authorization.objects.filter(pk=authorization.pk).values_list(
        "permanent_code_sealed", flat=True
    )[0]
    assert stored.startswith("v1:")
    assert code not in stored
    assert Authorization.objects.get(pk=authorization.pk).permanent_code == code


@pytest.mark.django_db
def test_ciphertext_copied_to_another_tenant_fails():
    victim = make_authorization()
    other = make_authorization(suite=victim.suite)
    Authorization.objects.filter(pk=other.pk).update(
        permanent_code_sealed=victim.permanent_code_sealed
    )
    other.refresh_from_db()
    with pytest.raises(CorruptValueError, match=r"tenants\.Authorization\.permanent_code"):
        _ = other.permanent_code
    # …and across columns of the same row.
    suite = Suite.objects.get(pk=victim.suite.pk)
    Suite.objects.filter(pk=suite.pk).update(callback_token_sealed=suite.secret_sealed)
    suite.refresh_from_db()
    with pytest.raises(CorruptValueError):
        _ = suite.callback_token


@pytest.mark.django_db(transaction=True)
def test_database_dump_contains_no_seeded_secret(tmp_path):
    """pg_dump the test database and grep it for every seeded plaintext."""
    authorization = make_authorization()
    suite = authorization.suite
    provider = suite.provider
    secrets = [
        provider.provider_secret,
        provider.callback_token,
        provider.encoding_aes_key,
        suite.secret,
        suite.callback_token,
        suite.encoding_aes_key,
        authorization.permanent_code,
    ]
    token = CredentialToken(owner_key="corp:x:y", kind="corp")
    token.value = "SEEDEDACCESSTOKEN" + os.urandom(8).hex()
    token.save()
    secrets.append(token.value)
    settings_dict = connection.settings_dict
    bindir = os.environ.get("TEST_PG_BINDIR", "/usr/lib/postgresql/15/bin")
    dump = subprocess.run(
        [
            f"{bindir}/pg_dump",
            "--host",
            settings_dict["HOST"],
            "--port",
            str(settings_dict["PORT"]),
            "--username",
            settings_dict["USER"] or "postgres",
            "--data-only",
            settings_dict["NAME"],
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "SEEDED" not in dump  # none of the seeded prefixes survive
    for secret in secrets:
        assert secret not in dump
    assert authorization.permanent_code_sealed in dump  # the dump did include the rows


@pytest.mark.django_db(transaction=True)
def test_rotate_keys_under_concurrent_reads(capsys):
    old_ring = new_key("old")
    with override_settings(FIELD_ENCRYPTION_KEYS=old_ring):
        authorizations = [make_authorization() for _ in range(30)]
        expected = {a.pk: a.permanent_code for a in authorizations}
        suite_secrets = {a.suite.pk: a.suite.secret for a in authorizations}
    rotated_ring = new_key("new") + "," + old_ring
    errors: list[BaseException] = []
    reads = 0
    stop = threading.Event()

    def reader():
        nonlocal reads
        try:
            while not stop.is_set():
                for row in Authorization.objects.all():
                    assert row.permanent_code == expected[row.pk]
                    reads += 1
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    with override_settings(FIELD_ENCRYPTION_KEYS=rotated_ring):
        threads = [threading.Thread(target=reader) for _ in range(3)]
        for thread in threads:
            thread.start()
        call_command("rotate_keys", "--batch-size", "7")
        call_command("rotate_keys", "--retire", "old")
        stop.set()
        for thread in threads:
            thread.join()
        out = capsys.readouterr().out
        assert errors == []
        assert reads > 0
        assert "safe to remove" in out
        for row in Authorization.objects.all():
            assert row.permanent_code_sealed.startswith("v1:new:")
            assert row.permanent_code == expected[row.pk]
        for suite in Suite.objects.all():
            assert suite.secret_sealed.startswith("v1:new:")
            assert suite.secret == suite_secrets[suite.pk]
    # With the old key gone, everything still opens.
    with override_settings(FIELD_ENCRYPTION_KEYS=rotated_ring.split(",")[0]):
        assert all(a.permanent_code == expected[a.pk] for a in Authorization.objects.all())


@pytest.mark.django_db
def test_rotate_keys_refuses_to_retire_a_key_in_use():
    from django.core.management.base import CommandError

    old_ring = new_key("old")
    with override_settings(FIELD_ENCRYPTION_KEYS=old_ring):
        make_suite()
    with override_settings(FIELD_ENCRYPTION_KEYS=new_key("new") + "," + old_ring):
        with pytest.raises(CommandError, match="is the primary key"):
            call_command("rotate_keys", "--retire", "new")
        with pytest.raises(CommandError, match="still used by 6 value"):
            call_command("rotate_keys", "--retire", "old", "--verify-only")
        call_command("rotate_keys", "--retire", "old")  # rotates, then confirms


def test_rotate_keys_prints_plain_progress_when_not_a_tty():
    result = subprocess.run(
        [os.path.join(ROOT, ".venv/bin/python"), "-c", "import sys; print(sys.stdout.isatty())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
    from io import StringIO

    from wecom_provider.progress import Progress

    out = StringIO()
    with Progress(out, 20, "label") as progress:
        for _ in range(20):
            progress.advance()
    lines = out.getvalue().splitlines()
    assert lines[0] == "label: 1/20 (5%)"
    assert lines[-1] == "label: 20/20 (100%)"
    assert "\r" not in out.getvalue()


def test_every_secret_column_is_registered():
    registered = {(f.model._meta.label, f.column) for f in fieldcrypt.SEALED_FIELDS}
    for model in (Provider, Suite, Authorization, CredentialToken):
        for field in model._meta.get_fields():
            if getattr(field, "attname", "").endswith("_sealed"):
                assert (model._meta.label, field.attname) in registered


@pytest.mark.django_db(transaction=True)
def test_retire_refuses_while_redis_holds_old_sealed_tokens_and_reads_never_fail():
    from django.core.management.base import CommandError

    from tenants import credentials
    from tests.api.conftest import give_token
    from wecom_provider import sealed_cache

    old_ring = new_key("old")
    with override_settings(FIELD_ENCRYPTION_KEYS=old_ring):
        authorizations = [make_authorization() for _ in range(8)]
        for index, authorization in enumerate(authorizations):
            give_token(authorization, f"corp-token-{index}")
            credentials.token_get(authorization)  # the cache now holds the old-key copy
    assert sealed_cache.cached_usage() == {"old": 8}
    rotated_ring = new_key("new") + "," + old_ring
    errors: list[BaseException] = []
    reads = 0
    stop = threading.Event()

    def reader():
        nonlocal reads
        try:
            while not stop.is_set():
                for index, authorization in enumerate(authorizations):
                    assert credentials.token_get(authorization).value == f"corp-token-{index}"
                    reads += 1
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    with override_settings(FIELD_ENCRYPTION_KEYS=rotated_ring):
        threads = [threading.Thread(target=reader) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            with pytest.raises(CommandError, match="rotate_keys --drop-cached"):
                call_command("rotate_keys", "--retire", "old")
            call_command("rotate_keys", "--drop-cached", "--retire", "old")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert errors == []
        assert reads > 0
        assert "old" not in sealed_cache.cached_usage()
    # The old key removed: cached and stored tokens still open.
    with override_settings(FIELD_ENCRYPTION_KEYS=rotated_ring.split(",")[0]):
        for index, authorization in enumerate(authorizations):
            assert credentials.token_get(authorization).value == f"corp-token-{index}"
