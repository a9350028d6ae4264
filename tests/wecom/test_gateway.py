"""The gateway's protocol side (wecom/gateway.py), without Django."""

from __future__ import annotations

import httpx
import pytest

from wecom import gateway as wg
from wecom.errors import WeComTransportError


@pytest.mark.parametrize(
    "path",
    ["user/get", "externalcontact/batch/get_by_user", "get_jsapi_ticket", "a/b/c/d/e/f/g/h"],
)
def test_corp_api_paths_pass(path):
    assert wg.validate_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "..",
        "user/..",
        "./user",
        "%2e%2e",
        "user/get/",
        "/user/get",
        "user//get",
        "a:b",
        "user/get\r\nX: y",
        "user get",
        "用户/get",
        "a/" * 8 + "b",
        "x" * 201,
    ],
)
def test_anything_else_is_refused(path):
    with pytest.raises(wg.PathRefused) as refused:
        wg.validate_path(path)
    assert not refused.value.denied


@pytest.mark.parametrize("path", ["service/get_corp_token", "license/list_order", "gettoken"])
def test_token_families_are_denied(path):
    with pytest.raises(wg.PathRefused) as refused:
        wg.validate_path(path)
    assert refused.value.denied


def test_what_is_safe_to_repeat():
    assert wg.repeatable("GET", "anything/at_all")
    assert wg.repeatable("POST", "user/list_id")
    assert not wg.repeatable("POST", "message/send")
    assert not wg.repeatable("POST", "media/upload")


def test_errcodes_and_labels():
    assert wg.errcode_of(b'{"errcode": 40014, "errmsg": "x"}') == 40014
    assert wg.errcode_of(b'{"errcode": "45009"}') == 45009
    assert wg.errcode_of(b'{"userid": "a"}') == 0  # absent: success (§1)
    assert wg.errcode_of(b"[1]") is None
    assert wg.errcode_of(b"<html>") is None
    assert wg.path_label("user/get") == "user/get"
    assert wg.path_label("user/made_up_1") == "other"


def _forwarder(handler) -> wg.Forwarder:
    return wg.Forwarder("https://qyapi.example", transport=httpx.MockTransport(handler))


def test_the_token_goes_in_the_query_and_never_comes_back():
    seen = {}

    def wecom(request: httpx.Request) -> httpx.Response:
        seen["url"] = request.url
        token = request.url.params["access_token"]
        return httpx.Response(200, json={"errcode": 40014, "errmsg": f"bad {token}"})

    answer = _forwarder(wecom).send(
        "GET", "user/get", token="T0KEN-abcdef", params=[("userid", "u"), ("access_token", "x")]
    )
    assert seen["url"].path == "/cgi-bin/user/get"
    assert seen["url"].params.get_list("access_token") == ["T0KEN-abcdef"]  # the caller's dropped
    assert answer.errcode == 40014
    assert b"T0KEN-abcdef" not in answer.body
    assert b"***" in answer.body


def test_redirects_are_not_followed_and_errors_name_no_url():
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://evil.example/"})

    answer = _forwarder(redirect).send("GET", "user/get", token="T0KEN-abcdef")
    assert answer.status == 302
    assert answer.errcode is None

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("cannot connect to https://qyapi.example/?access_token=T0KEN")

    with pytest.raises(WeComTransportError) as failed:
        _forwarder(refuse).send("GET", "user/get", token="T0KEN-abcdef")
    assert failed.value.request_sent is False
    assert "T0KEN" not in str(failed.value)
    assert failed.value.__context__ is None
