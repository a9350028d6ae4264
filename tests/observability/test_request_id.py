"""Request ids: generated, echoed when sane, replaced when not, present in log lines."""

import re

import pytest

from wecom_provider.observability import get_request_id
from wecom_provider.observability import log_context
from wecom_provider.observability.context import current_context
from wecom_provider.observability.context import is_valid_request_id

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_a_request_without_id_gets_a_generated_one(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_two_requests_get_different_ids(client):
    assert client.get("/healthz")["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]


@pytest.mark.parametrize("incoming", ["abc-123", "LB.trace_ID-9", "x" * 64])
def test_a_sane_incoming_id_is_echoed(client, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["", "x" * 65, "has space", "semi;colon", "new\nline", "<script>", "ünïcode", "a/b", "a%20b"],
)
def test_an_insane_incoming_id_is_replaced(client, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_validation_rules():
    assert is_valid_request_id("a")
    assert not is_valid_request_id(None)
    assert not is_valid_request_id("")
    assert not is_valid_request_id("a\r\nSet-Cookie: x")


@pytest.mark.urls("tests.observability.urls")
def test_log_lines_of_a_request_carry_its_id_and_tenant(client, log_output):
    response = client.get("/test/log", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 200
    ours = [line for line in log_output.lines() if line["logger"] == "tests.observability.views"]
    assert len(ours) == 3
    assert {line["request_id"] for line in ours} == {"req-42"}
    assert ours[0]["suite_id"] == "wwsuite1"
    assert ours[0]["corp_id"] == "wwcorp1"
    assert ours[2]["suite_id"] is None  # log_context ended before the third line


def test_the_context_is_cleared_after_the_request(client):
    client.get("/healthz", HTTP_X_REQUEST_ID="gone-after")
    assert get_request_id() is None


def test_log_context_nests_and_restores_even_on_error():
    def fail_inside():
        with log_context(corp_id="c2"):
            assert current_context()["corp_id"] == "c2"
            assert current_context()["suite_id"] == "s1"
            raise LookupError("inside")

    with log_context(suite_id="s1", corp_id="c1"):
        with pytest.raises(LookupError, match="inside"):
            fail_inside()
        assert current_context()["corp_id"] == "c1"
        with log_context(corp_id=None):
            assert current_context()["corp_id"] is None
    assert current_context() == {
        "request_id": None,
        "parent_request_id": None,
        "suite_id": None,
        "corp_id": None,
    }
