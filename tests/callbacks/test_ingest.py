"""The callback request path: verify, decrypt, store once, answer (in-process client)."""

import threading
import time

import pytest
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from callbacks import services
from callbacks.models import CallbackEvent
from callbacks.models import CallbackRejection
from tests.callbacks import signing
from tests.tenants.factories import make_authorization
from tests.tenants.factories import make_suite
from wecom.crypto import CallbackCrypto

pytestmark = pytest.mark.django_db


def post(client, callback: signing.SignedCallback, **query_overrides):
    query = {**callback.query, **query_overrides}
    from urllib.parse import urlencode

    return client.generic(
        "POST", f"{callback.path}?{urlencode(query)}", callback.body, content_type="text/xml"
    )


@pytest.fixture
def suite():
    return make_suite()


def ticket(suite, ticket_value="T1", ts=None, **kwargs):
    ts = ts or int(time.time())
    return signing.suite_command(
        suite, signing.ticket_xml(suite.suite_id, ticket_value, ts), **kwargs
    )


def test_valid_callback_is_stored_once_and_answered_success(client, suite):
    response = post(client, ticket(suite, "SEEDED-TICKET-VALUE-0001"))
    assert response.status_code == 200
    assert response.content == b"success"
    row = CallbackEvent.objects.get()
    assert row.info_type == "suite_ticket"
    assert row.status == CallbackEvent.Status.PENDING
    assert row.ack_ms is not None
    assert "SEEDED-TICKET" not in row.payload_sealed  # the ticket is sealed at rest
    assert "<SuiteTicket><![CDATA[SEEDED-TICKET-VALUE-0001]]>" in row.payload


def test_raw_insert_writes_what_the_orm_would(client, suite):
    """The request path inserts with one raw statement: every column must match the model."""
    from django.utils import timezone

    before = timezone.now()
    post(client, ticket(suite, "FIELD-BY-FIELD"))
    row = CallbackEvent.objects.get()
    expected = CallbackEvent(
        endpoint="command",
        route_id=suite.suite_id,
        receive_id=suite.suite_id,
        info_type="suite_ticket",
        suite_id=suite.suite_id,
        event_timestamp=row.event_timestamp,
        dedupe_key=row.dedupe_key,
    )
    skip = {"id", "payload_sealed", "received_at", "ack_ms", "dedupe_key", "event_timestamp"}
    for field in CallbackEvent._meta.concrete_fields:
        if field.attname not in skip:
            assert getattr(row, field.attname) == getattr(expected, field.attname), field.name
    assert before <= row.received_at <= timezone.now()
    assert row.received_at.tzinfo is not None
    assert len(row.dedupe_key) == 64
    assert row.event_timestamp > 0
    assert row.ack_ms > 0
    assert "<SuiteTicket><![CDATA[FIELD-BY-FIELD]]>" in row.payload  # opens under its aad


@pytest.mark.django_db(transaction=True)
def test_insert_is_its_own_health_check(monkeypatch):
    """No SELECT 1 before the insert; a connection found dead is replaced, nothing lost."""
    import psycopg
    from django.db.backends.postgresql.base import DatabaseWrapper

    from callbacks.handoff import handoff

    checks = []
    is_usable = DatabaseWrapper.is_usable
    monkeypatch.setattr(
        DatabaseWrapper, "is_usable", lambda self: checks.append(1) or is_usable(self)
    )
    handed_off = []
    monkeypatch.setattr(handoff, "add", lambda event_id, **kw: handed_off.append(event_id))
    suite = make_suite()
    assert post(Client(), ticket(suite, "WARM")).status_code == 200  # routes now cached
    checks.clear()

    assert post(Client(), ticket(suite, "HOT")).content == b"success"
    assert checks == []  # the reused connection was not pinged first

    # The server drops our connection between two requests (restart, idle timeout).
    with psycopg.connect(**connection.get_connection_params()) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    assert post(Client(), ticket(suite, "AFTER-DROP")).content == b"success"

    stored = {
        row.payload.split("<SuiteTicket><![CDATA[")[1][:10] for row in CallbackEvent.objects.all()
    }
    assert stored == {"WARM]]></S", "HOT]]></Su", "AFTER-DROP"}
    assert len(handed_off) == 3  # each new row went to the workers, the re-run one too


def test_processing_applies_the_handler_once(client, suite):
    post(client, ticket(suite, "TICKET-X"))
    row = CallbackEvent.objects.get()
    assert services.callback_process(event_id=row.pk) == CallbackEvent.Status.DONE
    assert services.callback_process(event_id=row.pk) is None  # already done: not claimed
    row.refresh_from_db()
    assert row.attempts == 1
    suite.refresh_from_db()
    assert suite.suite_ticket == "TICKET-X"


@pytest.mark.django_db(transaction=True)
def test_duplicates_concurrent_and_late_make_one_row():
    suite = make_suite()
    callback = ticket(suite, "DUP")
    statuses = []

    def send():
        statuses.append(post(Client(), callback).status_code)
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    row = CallbackEvent.objects.get()
    services.callback_process(event_id=row.pk)
    # WeCom's retry re-encrypts the same payload (new random prefix, new nonce).
    retry = ticket(suite, "DUP", ts=row.event_timestamp)
    assert retry.body != callback.body
    statuses.append(post(Client(), retry).status_code)
    assert statuses == [200, 200, 200, 200]
    assert CallbackEvent.objects.count() == 1
    row.refresh_from_db()
    assert row.duplicates == 3
    assert row.status == CallbackEvent.Status.DONE
    assert row.attempts == 1


def test_url_verification_accepts_exactly_the_documented_receive_ids(client, suite):
    provider = suite.provider
    for receive_id in (provider.corpid, suite.suite_id):
        crypto = CallbackCrypto(suite.callback_token, suite.encoding_aes_key, receive_id)
        echostr, signature = crypto.encrypt("echo-123", str(int(time.time())), "n1")
        ts = str(int(time.time()))
        echostr, signature = crypto.encrypt("echo-123", ts, "n1")
        response = client.get(
            f"/callbacks/suite/{suite.suite_id}/command/",
            {"msg_signature": signature, "timestamp": ts, "nonce": "n1", "echostr": echostr},
        )
        assert response.status_code == 200
        assert response.content == b"echo-123"
    # The data URL verifies with the provider corpid only.
    crypto = CallbackCrypto(suite.callback_token, suite.encoding_aes_key, suite.suite_id)
    ts = str(int(time.time()))
    echostr, signature = crypto.encrypt("echo", ts, "n2")
    response = client.get(
        f"/callbacks/suite/{suite.suite_id}/data/",
        {"msg_signature": signature, "timestamp": ts, "nonce": "n2", "echostr": echostr},
    )
    assert response.status_code == 403
    assert CallbackEvent.objects.count() == 0


def test_system_events_decrypt_with_the_provider_corpid(client, suite):
    provider = suite.provider
    xml = (
        f"<xml><ServiceCorpId>{provider.corpid}</ServiceCorpId><InfoType>license_refund"
        f"</InfoType><AuthCorpId>wpX</AuthCorpId><OrderId>OI1</OrderId><OrderStatus>1"
        f"</OrderStatus><TimeStamp>{int(time.time())}</TimeStamp></xml>"
    )
    assert post(client, signing.system(provider, xml)).content == b"success"
    wrong = signing.system(provider, xml, receive_id=suite.suite_id)
    assert post(client, wrong).status_code == 403
    assert CallbackEvent.objects.get().endpoint == "system"


def test_data_url_accepts_only_an_authorizing_corp(client):
    authorization = make_authorization()
    suite, corpid = authorization.suite, authorization.corp.corpid
    xml = (
        f"<xml><ToUserName>{corpid}</ToUserName><FromUserName>u1</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType>"
        "<Event>unlicensed_notify</Event><AgentID>1000001</AgentID></xml>"
    )
    ok = post(client, signing.suite_data(suite, corpid, xml))
    assert ok.status_code == 200
    assert ok.content == b""  # the data URL answers with an empty body
    stranger = signing.suite_data(suite, "wpSTRANGER", xml)
    assert post(client, stranger).status_code == 403
    assert CallbackEvent.objects.count() == 1


def rejection_cases(suite):
    good = ticket(suite)
    sig = good.query["msg_signature"]
    flipped_sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    encrypt_start = good.body.index(b"<Encrypt><![CDATA[") + len(b"<Encrypt><![CDATA[")
    tampered_body = bytearray(good.body)
    tampered_body[encrypt_start + 5] = (
        ord("A") if tampered_body[encrypt_start + 5] != ord("A") else ord("B")
    )
    huge = b"<xml><Encrypt>" + b"A" * 70_000 + b"</Encrypt></xml>"
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<xml><Encrypt>&lol2;</Encrypt></xml>"
    )
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xml><Encrypt>&xxe;</Encrypt></xml>"
    )
    return {
        "signature": (good.path, {**good.query, "msg_signature": flipped_sig}, good.body, 403),
        "nonce": (good.path, {**good.query, "nonce": "other"}, good.body, 403),
        "timestamp": (
            good.path,
            {**good.query, "timestamp": str(int(good.query["timestamp"]) + 1)},
            good.body,
            403,
        ),
        "ciphertext": (good.path, good.query, bytes(tampered_body), 403),
        "receive_id": (*_parts(ticket(suite, receive_id="wwSOMEONEELSE")), 403),
        "stale": (*_parts(ticket(suite, timestamp=int(time.time()) - 3600)), 403),
        "oversized": (good.path, good.query, huge, 413),
        "malformed": (good.path, good.query, b"<xml><Encrypt>", 400),
        "not_xml": (good.path, good.query, b"\x00\xff garbage", 400),
        "dtd_bomb": (good.path, good.query, bomb, 400),
        "xxe": (good.path, good.query, xxe, 400),
        "unknown_suite": ("/callbacks/suite/wwNOPE/command/", good.query, good.body, 404),
        "no_signature": (good.path, {}, good.body, 403),
    }


def _parts(callback):
    return callback.path, callback.query, callback.body


@pytest.mark.parametrize(
    "case",
    [
        "signature",
        "nonce",
        "timestamp",
        "ciphertext",
        "receive_id",
        "stale",
        "oversized",
        "malformed",
        "not_xml",
        "dtd_bomb",
        "xxe",
        "unknown_suite",
        "no_signature",
    ],
)
def test_rejections_store_nothing_and_share_one_body_shape(client, suite, case):
    from urllib.parse import urlencode

    path, query, body, status = rejection_cases(suite)[case]
    response = client.generic("POST", f"{path}?{urlencode(query)}", body, content_type="text/xml")
    assert response.status_code == status
    assert response.json() == {"error": "rejected"}
    assert CallbackEvent.objects.count() == 0
    assert CallbackRejection.objects.count() == 1


def test_methods_other_than_get_and_post_are_rejected(client, suite):
    response = client.put(f"/callbacks/suite/{suite.suite_id}/command/", b"x")
    assert response.status_code == 405
    assert response.json() == {"error": "rejected"}


@hypothesis_settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=500).map(lambda t: f"<xml><Encrypt>{t}</Encrypt></xml>".encode()),
        st.text(alphabet="<>/![]CDATxmlEncrypt&;\"' =", max_size=300).map(str.encode),
    ),
    signature=st.text(max_size=60),
    timestamp=st.one_of(st.integers().map(str), st.text(max_size=12)),
    nonce=st.text(max_size=20),
)
def test_hostile_bodies_never_store_and_never_500(client, suite, body, signature, timestamp, nonce):
    from urllib.parse import urlencode

    query = urlencode({"msg_signature": signature, "timestamp": timestamp, "nonce": nonce})
    response = client.generic(
        "POST", f"/callbacks/suite/{suite.suite_id}/command/?{query}", body, content_type="text/xml"
    )
    assert response.status_code in {400, 403, 404, 413}
    assert CallbackEvent.objects.count() == 0


@hypothesis_settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(min_value=0), replacement=st.integers(min_value=0, max_value=255))
def test_any_tampered_byte_of_a_valid_body_is_rejected(client, suite, position, replacement):
    from urllib.parse import urlencode

    callback = ticket(suite, "FUZZ")
    body = bytearray(callback.body)
    index = position % len(body)
    if body[index] == replacement:
        replacement = (replacement + 1) % 256
    body[index] = replacement
    response = client.generic(
        "POST", f"{callback.path}?{urlencode(callback.query)}", bytes(body), content_type="text/xml"
    )
    if response.status_code == 200:
        # Only bytes outside the signed Encrypt value (e.g. ToUserName text) may change.
        assert CallbackEvent.objects.count() <= 1
    else:
        assert response.status_code in {400, 403}
        assert CallbackEvent.objects.filter(info_type="suite_ticket").count() == 0
    CallbackEvent.objects.all().delete()


def test_unknown_types_are_stored_and_ignored(client, suite):
    xml = (
        f"<xml><SuiteId>{suite.suite_id}</SuiteId><InfoType>brand_new_event</InfoType>"
        f"<TimeStamp>{int(time.time())}</TimeStamp><Foo>bar</Foo></xml>"
    )
    post(client, signing.suite_command(suite, xml))
    row = CallbackEvent.objects.get()
    assert services.callback_process(event_id=row.pk) == CallbackEvent.Status.IGNORED


def test_permanent_failure_marks_failed_with_the_error(client, suite):
    # A create_auth whose code WeCom will refuse (no simulator: the call fails to connect,
    # which is transient) – a cancel_auth naming no corp is a permanent error. (A payload
    # naming another suite is rejected at ingest: tests/callbacks/test_binding.py.)
    xml = (
        f"<xml><SuiteId>{suite.suite_id}</SuiteId><InfoType>cancel_auth</InfoType>"
        f"<TimeStamp>{int(time.time())}</TimeStamp></xml>"
    )
    post(client, signing.suite_command(suite, xml))
    row = CallbackEvent.objects.get()
    assert services.callback_process(event_id=row.pk) == CallbackEvent.Status.FAILED
    row.refresh_from_db()
    assert "UnknownTenant" in row.last_error


def test_transient_failure_backs_off_then_fails_after_max_attempts(client, suite, settings):
    settings.WECOM_API_BASE = "http://127.0.0.1:9"  # nothing listens: transport error
    from tenants.services import suite_ticket_store

    suite_ticket_store(suite_id=suite.suite_id, ticket="T", timestamp=int(time.time()))
    xml = (
        f"<xml><SuiteId>{suite.suite_id}</SuiteId><AuthCode>CODE</AuthCode>"
        f"<InfoType>create_auth</InfoType><TimeStamp>{int(time.time())}</TimeStamp></xml>"
    )
    post(client, signing.suite_command(suite, xml))
    row = CallbackEvent.objects.get()
    assert row.priority
    assert services.callback_process(event_id=row.pk) == CallbackEvent.Status.PENDING
    row.refresh_from_db()
    assert row.next_attempt_at is not None
    assert services.callback_process(event_id=row.pk) is None  # not due yet
    for _ in range(services.MAX_ATTEMPTS):
        CallbackEvent.objects.filter(pk=row.pk).update(next_attempt_at=None)
        services.callback_process(event_id=row.pk)
    row.refresh_from_db()
    assert row.status == CallbackEvent.Status.FAILED
    assert row.attempts == services.MAX_ATTEMPTS
    assert "WeComTransportError" in row.last_error


def test_a_suite_registered_elsewhere_accepts_its_first_callback(client):
    """No negative caching: a 404 must not stick after another process registers the suite."""
    suite = make_suite()
    callback = ticket(suite, "FIRST")
    suite_id = suite.suite_id
    from tenants.models import Suite

    Suite.objects.filter(pk=suite.pk).update(suite_id="wwNOTYET")  # as if not registered
    assert post(client, callback).status_code == 404
    # "Another process" registers it: a queryset update sends no signal to this process.
    Suite.objects.filter(pk=suite.pk).update(suite_id=suite_id)
    assert post(client, callback).content == b"success"


def test_a_rotated_callback_key_works_at_once_in_every_process(client):
    suite = make_suite()
    assert post(client, ticket(suite, "OLD-KEY")).status_code == 200  # route now cached
    from tenants.models import Suite
    from tests.tenants.factories import aes_key

    rotated = Suite(suite_id=suite.suite_id)
    rotated.callback_token = "newtoken123"
    rotated.encoding_aes_key = aes_key()
    Suite.objects.filter(pk=suite.pk).update(
        callback_token_sealed=rotated.callback_token_sealed,
        encoding_aes_key_sealed=rotated.encoding_aes_key_sealed,
    )  # no signal: the cached route still holds the old key
    fresh = Suite.objects.get(pk=suite.pk)
    response = post(client, ticket(fresh, "NEW-KEY"))
    assert response.status_code == 200
    assert CallbackEvent.objects.count() == 2
