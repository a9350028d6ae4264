"""Log lines: JSON shape, ids, and no secret ever reaching the output."""

from __future__ import annotations

import io
import json
import logging
import secrets
import threading
from datetime import datetime

import pytest

from wecom_provider.observability import log_context
from wecom_provider.observability import remember_secret
from wecom_provider.observability.logs import ContextFilter
from wecom_provider.observability.logs import JsonFormatter
from wecom_provider.observability.logs import PlainFormatter
from wecom_provider.observability.logs import RedactingFilter
from wecom_provider.observability.redaction import REDACTED
from wecom_provider.observability.redaction import SecretRegistry
from wecom_provider.observability.redaction import scrub
from wecom_provider.observability.redaction import scrub_patterns


@pytest.fixture
def stream_logger():
    """A logger writing through a StringIO handler set up exactly like settings.LOGGING."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"tests.observability.{secrets.token_hex(4)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, buffer
    logger.handlers = []


def parsed(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


# --- shape -------------------------------------------------------------------


def test_json_line_shape(stream_logger):
    logger, buffer = stream_logger
    with log_context(request_id="rid-1", suite_id="ww-suite", corp_id="ww-corp"):
        logger.info("hello %s", "world")
    [line] = parsed(buffer)
    assert set(line) == {"time", "level", "logger", "message", "request_id", "suite_id", "corp_id"}
    assert line["level"] == "INFO"
    assert line["logger"] == logger.name
    assert line["message"] == "hello world"
    assert (line["request_id"], line["suite_id"], line["corp_id"]) == (
        "rid-1",
        "ww-suite",
        "ww-corp",
    )
    assert datetime.fromisoformat(line["time"]).utcoffset().total_seconds() == 0


def test_ids_are_null_outside_any_context(stream_logger):
    logger, buffer = stream_logger
    logger.warning("plain")
    [line] = parsed(buffer)
    assert line["request_id"] is None
    assert line["suite_id"] is None


def test_exception_is_one_line_with_traceback(stream_logger):
    logger, buffer = stream_logger
    try:
        raise KeyError("missing")
    except KeyError:
        logger.exception("it failed")
    assert len(buffer.getvalue().splitlines()) == 1
    [line] = parsed(buffer)
    assert line["level"] == "ERROR"
    assert "Traceback (most recent call last)" in line["exc_info"]
    assert "KeyError: 'missing'" in line["exc_info"]


def test_unicode_and_newlines_stay_on_one_line(stream_logger):
    logger, buffer = stream_logger
    logger.info("企业微信\nsecond line")
    assert len(buffer.getvalue().splitlines()) == 1
    assert parsed(buffer)[0]["message"] == "企业微信\nsecond line"


def test_plain_formatter_shows_request_and_tenant():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hi %s", ("there",), None)
    with log_context(request_id="rid-9", suite_id="s9"):
        ContextFilter().filter(record)
    text = PlainFormatter().format(record)
    assert "[rid-9 suite=s9]" in text
    assert text.endswith("x hi there")


def test_settings_use_json_and_the_filters_on_every_handler():
    from django.conf import settings

    assert settings.LOG_FORMAT == "json"  # make test runs with DJANGO_DEBUG=0
    for name in ["", "django", "django.request", "celery", "gunicorn.error", "gunicorn.access"]:
        logger = logging.getLogger(name)
        handlers = []
        while logger:
            handlers += logger.handlers
            logger = logger.parent if logger.propagate else None
        # pytest adds its own capture handlers to the root; ours must be there too.
        ours = [h for h in handlers if any(isinstance(f, RedactingFilter) for f in h.filters)]
        assert ours, name
        for handler in ours:
            kinds = [type(f) for f in handler.filters]
            assert kinds.index(ContextFilter) < kinds.index(RedactingFilter)
            assert isinstance(handler.formatter, JsonFormatter)


# --- redaction: value registry ---------------------------------------------------


def test_remembered_secret_in_message_args_dict_and_traceback(stream_logger, secret):
    logger, buffer = stream_logger
    remember_secret(secret)
    logger.info(f"inline {secret}")  # noqa: G004 (an f-string is exactly what we test)
    logger.info("as arg %s", secret)
    logger.info("as mapping %(value)s", {"value": secret})
    logger.info("as repr %r", {"nested": [secret]})
    try:
        raise ValueError(f"bad permanent code {secret}")
    except ValueError:
        logger.exception("failed with %s", secret)
    logger.info("stack", stack_info=True)
    output = buffer.getvalue()
    assert secret not in output
    assert output.count(REDACTED) >= 6
    assert len(parsed(buffer)) == 6


def test_exception_chain_and_locals_free_traceback(stream_logger, secret):
    logger, buffer = stream_logger
    remember_secret(secret)

    def inner():
        raise OSError(f"connect failed: {secret}")

    try:
        try:
            inner()
        except OSError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError:
        logger.error("chain", exc_info=True)  # noqa: G201 (exc_info path on purpose)
    assert secret not in buffer.getvalue()
    assert "The above exception was the direct cause" in parsed(buffer)[0]["exc_info"]


def test_short_values_are_not_remembered():
    registry = SecretRegistry()
    registry.remember("short")
    registry.remember("")
    assert len(registry) == 0
    assert registry.scrub("short text") == "short text"


def test_url_encoded_form_is_scrubbed_too():
    registry = SecretRegistry()
    registry.remember("abc+def/ghi=")
    assert registry.scrub("q=abc%2Bdef%2Fghi%3D") == f"q={REDACTED}"


def test_registry_is_bounded_and_keeps_the_most_recent():
    registry = SecretRegistry(max_size=50, max_pending=4)
    values = [f"value-{i:04d}-{secrets.token_hex(8)}" for i in range(200)]
    for value in values:
        registry.remember(value)
    assert len(registry) <= 50 * 2  # each value may add its URL-encoded form
    for value in values[-20:]:
        assert registry.scrub(f"x {value} y") == f"x {REDACTED} y"


def test_registry_scrubs_overlapping_and_adjacent_values():
    registry = SecretRegistry(max_pending=0)
    registry.remember("ABCDEFGH1234")
    registry.remember("CDEFGH1234XYZ0")
    assert registry.scrub("..ABCDEFGH1234XYZ0..") == f"..{REDACTED}.."
    assert registry.scrub("ABCDEFGH1234ABCDEFGH1234") == REDACTED


def test_registry_pending_and_compiled_paths_agree():
    registry = SecretRegistry(max_pending=3)
    values = [secrets.token_urlsafe(20) for _ in range(10)]
    for index, value in enumerate(values):
        registry.remember(value)
        # Every value remembered so far is scrubbed, whether compiled in or pending.
        text = " | ".join(values[: index + 1])
        assert set(registry.scrub(text).split(" | ")) == {REDACTED}


def test_registry_is_thread_safe():
    registry = SecretRegistry(max_size=5000, max_pending=8)
    values = [secrets.token_urlsafe(16) for _ in range(400)]
    errors: list[BaseException] = []

    def writer(chunk):
        try:
            for value in chunk:
                registry.remember(value)
                assert value not in registry.scrub(f"<{value}>")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(values[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    text = " ".join(values)
    assert not any(value in registry.scrub(text) for value in values)


def test_thousands_of_secrets_scrub_through_one_compiled_index():
    # What keeps scrubbing fast with thousands of secrets is structural: the values sit
    # in one compiled trie regex, and only a bounded handful of newly remembered ones
    # are searched for one by one. Check that structure (timing belongs in bench/).
    registry = SecretRegistry()
    values = [secrets.token_urlsafe(32) for _ in range(4096)]
    for value in values:
        registry.remember(value)
    line = f"GET /x?corpid=ww1 failed for {values[1234]} after retry " * 2
    result = registry.scrub(line)
    assert values[1234] not in result
    assert result.count("[REDACTED]") == 2
    regex, index, pending = registry._snapshot
    assert regex is not None
    assert len(pending) <= registry._rebuild_threshold()
    assert sum(len(group) for group in index.values()) >= 4096 - len(pending)
    # A value remembered after the build is still scrubbed (through the pending list).
    late = secrets.token_urlsafe(32)
    registry.remember(late)
    assert late not in registry.scrub(f"late {late}")


# --- redaction: patterns -----------------------------------------------------------

PATTERN_CASES = [
    ("GET /cgi-bin/user/get?access_token=AT123456&userid=u1", "AT123456"),
    ("POST /cgi-bin/service/get_corp_token?suite_access_token=SAT999 HTTP/1.1", "SAT999"),
    ("/cgi-bin/service/get_provider_token provider_access_token=PAT42", "PAT42"),
    ("/cgi-bin/gettoken?corpid=ww1&corpsecret=CS-secret-1", "CS-secret-1"),
    ('{"suite_id": "ww1", "suite_secret": "SS one", "suite_ticket": "TICK"}', "SS one"),
    ('{"suite_id": "ww1", "suite_secret": "SS one", "suite_ticket": "TICK"}', "TICK"),
    ("{'permanent_code': 'PC-abc', 'corpid': 'wwc'}", "PC-abc"),
    ('{"provider_secret":"PS\\"quoted"}', 'PS\\"quoted'),
    ("/install/ww1/done/?auth_code=AC777&state=x", "AC777"),
    ('{"pre_auth_code": "PRE-1", "expires_in": 1200}', "PRE-1"),
    ("oauth callback ?code=OAUTHCODE1&state=s", "OAUTHCODE1"),
    ("jsapi_ticket=JT1 ticket=T2 user_ticket=UT3", "JT1"),
    ("jsapi_ticket=JT1 ticket=T2 user_ticket=UT3", "T2"),
    ("jsapi_ticket=JT1 ticket=T2 user_ticket=UT3", "UT3"),
    ("<xml><AuthCode><![CDATA[XMLAUTH]]></AuthCode></xml>", "XMLAUTH"),
    ("<xml><SuiteTicket><![CDATA[XMLTICKET]]></SuiteTicket></xml>", "XMLTICKET"),
    (
        "<xml><ToUserName>ww1</ToUserName><Encrypt><![CDATA[ENCRYPTED==]]></Encrypt></xml>",
        "ENCRYPTED==",
    ),
    ("EncodingAESKey=AESKEYabcdefghijklmnopqrstuvwxyz0123456789A", "AESKEYabcdefghij"),
    ("token=CBTOKEN1 password=hunter22", "CBTOKEN1"),
    ("token=CBTOKEN1 password=hunter22", "hunter22"),
    ("connect(password='pass word')", "pass word"),
    ("Authorization: Bearer api-key-ABCDEFGH", "api-key-ABCDEFGH"),
    ("{'Authorization': 'Bearer api-key-XYZXYZXYZ'}", "api-key-XYZXYZXYZ"),
    ('body="{\\"access_token\\": \\"NESTED-TOKEN\\"}"', "NESTED-TOKEN"),
    ("refresh_token=RT1 ProviderSecret=PS2", "RT1"),
]


@pytest.mark.parametrize(("text", "secret_part"), PATTERN_CASES)
def test_patterns_redact_known_keys(text, secret_part):
    scrubbed = scrub_patterns(text)
    assert secret_part not in scrubbed
    assert REDACTED in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "errcode=40001 errmsg=invalid credential",
        "status_code=500 error_code=7",
        '{"errcode": 0, "errmsg": "ok", "expires_in": 7200}',
        "suite ww1 corp wwc refreshed in 0.2s",
        "corpid=wwabc suite_id=ww1 agentid=1000002",
    ],
)
def test_patterns_leave_ordinary_text_alone(text):
    assert scrub_patterns(text) == text


def test_scrub_is_idempotent(secret):
    remember_secret(secret)
    once = scrub(f"access_token={secret} and {secret}")
    assert scrub(once) == once
    assert once == f"access_token={REDACTED} and {REDACTED}"


def test_patterns_apply_to_args_and_dicts_before_formatting(stream_logger):
    logger, buffer = stream_logger
    logger.info("response %s", {"access_token": "DICT-TOKEN-1", "expires_in": 7200})
    logger.info("url %s", "https://qyapi/cgi-bin/gettoken?corpsecret=ARG-SECRET-1")
    logger.info(
        '%(h)s "%(r)s" %(s)s',
        {"h": "10.0.0.1", "r": "GET /install/ww1/done/?auth_code=ACCESS-LOG-1 HTTP/1.1", "s": 302},
    )
    output = buffer.getvalue()
    for value in ["DICT-TOKEN-1", "ARG-SECRET-1", "ACCESS-LOG-1"]:
        assert value not in output
    assert '"expires_in": 7200' in output or "'expires_in': 7200" in output


def test_unformattable_args_do_not_leak(stream_logger, secret):
    logger, buffer = stream_logger
    remember_secret(secret)
    logger.info("two %s %s", secret)  # wrong number of args
    assert secret not in buffer.getvalue()
    assert "unformattable" in buffer.getvalue()


# --- the real handlers, through Django --------------------------------------------


@pytest.mark.urls("tests.observability.urls")
def test_no_secret_reaches_the_configured_handlers(client, log_output, secret):
    remember_secret(secret)
    response = client.get(f"/test/log?s={secret}")
    assert response.status_code == 200
    client.raise_request_exception = False
    response = client.get(f"/test/boom?s={secret}&auth_code=AUTHCODE-IN-URL")
    assert response.status_code == 500
    output = log_output.text
    assert secret not in output
    assert "tok-in-dict-123" not in output
    assert "AUTHCODE-IN-URL" not in output
    lines = log_output.lines()
    errors = [line for line in lines if line["logger"] == "django.request"]
    assert errors, lines
    assert errors[0]["level"] == "ERROR"
    assert "RuntimeError: WeCom said no to permanent code [REDACTED]" in errors[0]["exc_info"]
    assert errors[0]["request_id"] == response["X-Request-ID"]


def test_other_libraries_loggers_are_scrubbed(log_output, secret):
    remember_secret(secret)
    logging.getLogger("celery.app.trace").info("Task t[%s] succeeded: %r", "id1", secret)
    logging.getLogger("gunicorn.access").info(
        '%(h)s "%(r)s"', {"h": "1.2.3.4", "r": "GET /?auth_code=GUNICORN-CODE HTTP/1.1"}
    )
    logging.getLogger("gunicorn.error").error("worker failed: %s", secret)
    logging.getLogger("django.server").info('"GET /x?access_token=RUNSERVER-TOKEN" 200')
    output = log_output.text
    assert secret not in output
    assert "GUNICORN-CODE" not in output
    assert "RUNSERVER-TOKEN" not in output
    assert len(log_output.lines()) == 4


def test_gunicorn_access_lines_carry_the_request_id_from_the_response(log_output):
    logging.getLogger("gunicorn.access").info(
        '%(h)s "%(r)s" %(s)s',
        {"h": "1.2.3.4", "r": "GET /healthz HTTP/1.1", "s": "200", "{x-request-id}o": "rid-77"},
    )
    [line] = log_output.lines()
    assert line["request_id"] == "rid-77"


def test_startup_secrets_are_remembered(log_output):
    from django.conf import settings

    logging.getLogger("tests").error("oops %s", settings.SECRET_KEY)
    assert settings.SECRET_KEY not in log_output.text
