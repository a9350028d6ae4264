"""Tests of the typed WeCom HTTP client against a real local HTTP server.

`FakeWeCom` is a deliberately dumb stand-in: canned replies per path, every request
recorded. It is not the simulator (sandbox); these tests pin the
client's wire behaviour without depending on any WeCom logic.
"""

from __future__ import annotations

import json
import logging
import pickle
import socket
import threading
from collections import defaultdict
from collections import deque
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from wecom import client as client_module
from wecom.client import AccessToken
from wecom.client import CorpApi
from wecom.client import PreAuthCode
from wecom.client import ProviderApi
from wecom.client import StaticToken
from wecom.client import SuiteApi
from wecom.client import Ticket
from wecom.client import TokenSource
from wecom.client import WeComClient
from wecom.client import chunked
from wecom.client import iter_pages
from wecom.endpoints import ENDPOINTS
from wecom.endpoints import TokenKind
from wecom.errors import BUSY_ERRCODES
from wecom.errors import CORP_GONE_ERRCODES
from wecom.errors import RATE_LIMITED_ERRCODES
from wecom.errors import TOKEN_INVALID_ERRCODES
from wecom.errors import ErrorKind
from wecom.errors import WeComApiError
from wecom.errors import WeComBusy
from wecom.errors import WeComCorpGone
from wecom.errors import WeComError
from wecom.errors import WeComPermanentError
from wecom.errors import WeComPreAuthCodeInvalid
from wecom.errors import WeComRateLimited
from wecom.errors import WeComSuiteTicketInvalid
from wecom.errors import WeComTokenInvalid
from wecom.errors import WeComTransportError
from wecom.errors import error_for
from wecom.paid_apps import PaidAppApi

OK = {"errcode": 0, "errmsg": "ok"}
# One success body that satisfies every typed method (token, code and ticket fields).
UNIVERSAL_OK = {
    **OK,
    "provider_access_token": "minted-provider-token",
    "suite_access_token": "minted-suite-token",
    "access_token": "minted-corp-token",
    "pre_auth_code": "minted-pre-auth-code",
    "ticket": "minted-ticket",
    "expires_in": 7200,
    "orderid": "minted-order",  # paid_apps.PaidAppApi.get_app_order
    "order_status": 0,
    "try_end_time": 1767225600,  # paid_apps.PaidAppApi.prolong_try
}


# -- a real HTTP server with canned replies -------------------------------------------
@dataclass
class Reply:
    body: Any = field(default_factory=lambda: dict(UNIVERSAL_OK))
    status: int = 200
    delay: float = 0.0
    content_type: str = "application/json"
    raw: bytes | None = None  # sent as-is instead of the JSON body
    # Hostile errmsg: repeat the whole request (query string and body) back, as a
    # server echoing "invalid value <what you sent>" would.
    echo_errcode: int | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    raw: bytes


class FakeWeCom:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._queues: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without this, Nagle plus delayed
            # ACK adds ~40 ms to every call.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients hang up on purpose in the timeout tests

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> FakeWeCom:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def reply(self, path: str, *replies: Reply | dict) -> None:
        """Queue replies for `path`, served in order; then UNIVERSAL_OK."""
        with self._lock:
            for r in replies:
                self._queues[path].append(r if isinstance(r, Reply) else Reply(body=r))

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self._lock:
            self.requests.append(Seen(h.command, parts.path, query, body, raw))
            queue = self._queues[parts.path]
            reply = queue.popleft() if queue else Reply()
        if reply.delay:
            self.stopping.wait(reply.delay)
        if reply.echo_errcode is not None:
            echoed = f"echo {h.path} {raw.decode(errors='replace')}"
            reply = Reply(body={"errcode": reply.echo_errcode, "errmsg": echoed})
        payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        h.send_response(reply.status)
        h.send_header("Content-Type", reply.content_type)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)


@pytest.fixture
def server():
    fake = FakeWeCom().start()
    yield fake
    fake.stop()


@pytest.fixture
def client(server):
    with WeComClient(server.url, timeout=2.0, connect_timeout=1.0) as c:
        yield c


class RotatingToken:
    """A TokenSource that hands out t1, t2, ... and records refresh calls."""

    def __init__(self, kind: TokenKind, prefix: str = "tok") -> None:
        self.kind = kind
        self._prefix = prefix
        self._n = 1
        self.refreshed_with: list[str] = []

    @property
    def current(self) -> str:
        return f"{self._prefix}-{self._n}"

    def get(self) -> str:
        return self.current

    def refresh(self, rejected: str) -> str:
        self.refreshed_with.append(rejected)
        if rejected == self.current:  # only the holder of the current token rotates it
            self._n += 1
        return self.current


def provider_api(client: WeComClient, value: str = "PT") -> ProviderApi:
    return client.provider(StaticToken(TokenKind.PROVIDER, value))


def suite_api(client: WeComClient, value: str = "ST") -> SuiteApi:
    return client.suite(StaticToken(TokenKind.SUITE, value))


def corp_api(client: WeComClient, value: str = "CT") -> CorpApi:
    return client.corp(StaticToken(TokenKind.CORP, value), corp_id="wwcorp")


# -- token kinds and query parameters ------------------------------------------------
def test_each_token_kind_travels_in_its_own_query_parameter(client, server):
    provider_api(client).create_new_order(
        corpid="wwcorp", buyer_userid="buyer", base_count=2, months=1
    )
    suite_api(client).get_pre_auth_code()
    corp_api(client).get_jsapi_ticket()

    order, pre_auth, ticket = server.requests
    assert order.path == "/cgi-bin/license/create_new_order"
    assert order.query == {"provider_access_token": "PT"}
    assert pre_auth.method == "GET"
    assert pre_auth.query == {"suite_access_token": "ST"}
    assert ticket.method == "GET"
    assert ticket.query == {"access_token": "CT"}
    # Tokens live in the query string only, never in the body (§1).
    assert "PT" not in json.dumps(order.body)


def test_get_login_info_sends_the_provider_token_as_access_token(client, server):
    provider_api(client, "PROVIDER-TOKEN").get_login_info(auth_code="login-code")
    (seen,) = server.requests
    assert seen.path == "/cgi-bin/service/get_login_info"
    assert seen.query == {"access_token": "PROVIDER-TOKEN"}
    assert seen.body == {"auth_code": "login-code"}


def test_agent_jsapi_ticket_uses_ticket_get_with_type_agent_config(client, server):
    ticket = corp_api(client).get_agent_jsapi_ticket()
    (seen,) = server.requests
    assert (seen.method, seen.path) == ("GET", "/cgi-bin/ticket/get")
    assert seen.query == {"type": "agent_config", "access_token": "CT"}
    assert ticket == Ticket("minted-ticket", 7200)


def test_customized_corp_token_is_a_get_with_corpid_and_corpsecret(client, server):
    token = client.get_customized_corp_token(corpid="wwcorp", corpsecret="the-app-secret")
    (seen,) = server.requests
    assert (seen.method, seen.path) == ("GET", "/cgi-bin/gettoken")
    assert seen.query == {"corpid": "wwcorp", "corpsecret": "the-app-secret"}
    assert token == AccessToken("minted-corp-token", 7200)


def test_token_free_calls_send_credentials_in_the_body(client, server):
    client.get_provider_token(corpid="wwprovider", provider_secret="psecret")
    client.get_suite_token(suite_id="dk123", suite_secret="ssecret", suite_ticket="sticket")
    provider, suite = server.requests
    assert provider.query == {}
    assert provider.body == {"corpid": "wwprovider", "provider_secret": "psecret"}
    assert suite.query == {}
    assert suite.body == {"suite_id": "dk123", "suite_secret": "ssecret", "suite_ticket": "sticket"}


# -- wrong kinds are refused before any I/O ------------------------------------------
@pytest.mark.parametrize(
    ("factory", "kind"),
    [
        ("provider", TokenKind.SUITE),
        ("suite", TokenKind.CORP),
        ("corp", TokenKind.PROVIDER),
        ("suite", TokenKind.NONE),
    ],
)
def test_facade_refuses_a_token_source_of_another_kind(client, server, factory, kind):
    with pytest.raises(TypeError):
        getattr(client, factory)(StaticToken(kind, "x"))
    assert server.requests == []


@pytest.mark.parametrize(
    ("facade", "endpoint_name"),
    [
        (suite_api, "create_new_order"),  # provider endpoint via suite facade
        (provider_api, "get_pre_auth_code"),  # suite endpoint via provider facade
        (corp_api, "get_corp_token"),  # suite endpoint via corp facade
        (suite_api, "get_admin_list"),  # corp endpoint via suite facade
        (provider_api, "get_provider_token"),  # token-free endpoints are client-only
    ],
)
def test_generic_call_refuses_other_kinds_endpoints_before_io(
    client, server, facade, endpoint_name
):
    with pytest.raises(TypeError):
        facade(client).call(endpoint_name, json={})
    assert server.requests == []


def test_generic_call_reaches_endpoints_of_its_own_kind(client, server):
    body = provider_api(client).call("get_order", json={"order_id": "o1"})
    assert body == UNIVERSAL_OK
    (seen,) = server.requests
    assert seen.path == "/cgi-bin/license/get_order"
    assert seen.query == {"provider_access_token": "PT"}
    with pytest.raises(KeyError):
        provider_api(client).call("no_such_endpoint")
    with pytest.raises(TypeError, match="GET"):
        provider_api(client).call("get_account_balance", json={"x": 1})
    assert len(server.requests) == 1


# -- every registry entry has a typed method -----------------------------------------
FACADE_BY_KIND = {
    TokenKind.NONE: WeComClient,
    TokenKind.PROVIDER: ProviderApi,
    TokenKind.SUITE: SuiteApi,
    TokenKind.CORP: CorpApi,
}
# Endpoint groups kept out of client.py: a facade subclass of their token kind's.
GROUPS = (PaidAppApi,)


def typed_methods() -> dict[str, tuple[type, str]]:
    """Return endpoint name -> (class, method name) from the @_uses marks."""
    found: dict[str, tuple[type, str]] = {}
    for cls in (*FACADE_BY_KIND.values(), *GROUPS):
        # A facade's methods, inherited ones included (ProviderApi's licence calls are
        # wecom/licence.py's); a group's own only (it inherits its facade's).
        for attr in cls.__dict__ if cls in GROUPS else dir(cls):
            name = getattr(getattr(cls, attr), "wecom_endpoint", None)
            if name is not None:
                assert name not in found, f"two typed methods for {name}"
                found[name] = (cls, attr)
    return found


def test_every_registry_entry_has_exactly_one_typed_method_on_the_right_facade():
    found = typed_methods()
    assert set(found) == set(ENDPOINTS)
    for name, (cls, _attr) in found.items():
        assert issubclass(cls, FACADE_BY_KIND[ENDPOINTS[name].token]), name


# Dummy values for required keyword-only arguments, by annotation (as written).
DUMMY_BY_ANNOTATION = {
    "str": "dummy",
    "int": 1,
    "Sequence[str]": ["a", "b"],
    "Sequence[Mapping[str, Any]]": [{"userid": "u1", "type": 1}],
}
EXTRA_KWARGS = {"submit_order_job": {"months": 1}}  # exactly one of months/new_expire_time


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_every_endpoint_is_reachable_through_its_typed_method(client, server, name):
    import inspect

    ep = ENDPOINTS[name]
    cls, attr = typed_methods()[name]
    owner = {
        WeComClient: client,
        ProviderApi: provider_api(client, "TOKEN"),
        SuiteApi: suite_api(client, "TOKEN"),
        PaidAppApi: PaidAppApi(client, StaticToken(TokenKind.SUITE, "TOKEN")),
        CorpApi: corp_api(client, "TOKEN"),
    }[cls]
    kwargs = {
        p.name: DUMMY_BY_ANNOTATION[p.annotation]
        for p in inspect.signature(getattr(cls, attr)).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    }
    kwargs.update(EXTRA_KWARGS.get(name, {}))

    getattr(owner, attr)(**kwargs)

    (seen,) = server.requests
    assert seen.method == ep.method.value
    assert seen.path == ep.path
    if ep.token_param is not None:
        assert seen.query[ep.token_param] == "TOKEN"
        other_params = {"access_token", "provider_access_token", "suite_access_token"}
        assert not (other_params - {ep.token_param}) & set(seen.query)
    for key, value in ep.fixed_params:
        assert seen.query[key] == value
    if ep.method.value == "POST":
        assert isinstance(seen.body, dict)
    else:
        assert seen.raw == b""


# -- body decoding -------------------------------------------------------------------
def test_legacy_body_without_errcode_is_success(client, server):
    server.reply(
        "/cgi-bin/service/get_provider_token",
        {"provider_access_token": "legacy-token", "expires_in": 7200},
    )
    token = client.get_provider_token(corpid="wwprovider", provider_secret="psecret")
    assert token == AccessToken("legacy-token", 7200)
    assert "legacy-token" not in repr(token)


def test_legacy_permanent_code_v1_without_errcode_is_returned_whole(client, server):
    body = {"access_token": "x", "expires_in": 7200, "permanent_code": "p", "auth_info": {}}
    server.reply("/cgi-bin/service/get_permanent_code", body)
    assert suite_api(client).get_permanent_code_v1(auth_code="ac") == body


def test_token_response_without_the_token_field_is_a_transport_error(client, server):
    server.reply("/cgi-bin/service/get_suite_token", OK)
    with pytest.raises(WeComTransportError, match="suite_access_token"):
        client.get_suite_token(suite_id="s", suite_secret="x", suite_ticket="t")


def test_pre_auth_code_is_a_typed_value(client, server):
    server.reply(
        "/cgi-bin/service/get_pre_auth_code", {**OK, "pre_auth_code": "pac", "expires_in": 1200}
    )
    code = suite_api(client).get_pre_auth_code()
    assert code == PreAuthCode("pac", 1200)
    assert "pac" not in repr(code)


def test_post_bodies_are_utf8_json(client, server):
    provider_api(client).get_register_code(template_id="tpl", corp_name="腾讯科技")
    (seen,) = server.requests
    assert "腾讯科技".encode() in seen.raw
    assert seen.body == {"template_id": "tpl", "corp_name": "腾讯科技"}


def test_set_session_info_shapes_the_body(client, server):
    suite_api(client).set_session_info(pre_auth_code="pac", auth_type=1)
    with pytest.raises(ValueError, match="auth_type"):
        suite_api(client).set_session_info(pre_auth_code="pac", auth_type=2)
    (seen,) = server.requests
    assert seen.body == {"pre_auth_code": "pac", "session_info": {"auth_type": 1}}


def test_app_qrcode_png_returns_bytes(client, server):
    png = b"\x89PNG\r\n\x1a\nfake"
    server.reply("/cgi-bin/service/get_app_qrcode", Reply(raw=png, content_type="image/png"))
    assert suite_api(client).get_app_qrcode_png(suite_id="ww1", appid=1) == png
    assert server.requests[0].body["result_type"] == 1


# -- errcode families ----------------------------------------------------------------
FAMILY_CASES = [
    *[(code, WeComTokenInvalid, ErrorKind.REFRESH) for code in sorted(TOKEN_INVALID_ERRCODES)],
    (40077, WeComPreAuthCodeInvalid, ErrorKind.REFRESH),
    (42007, WeComPreAuthCodeInvalid, ErrorKind.REFRESH),
    (40085, WeComSuiteTicketInvalid, ErrorKind.TICKET),
    *[(code, WeComRateLimited, ErrorKind.BACK_OFF) for code in sorted(RATE_LIMITED_ERRCODES)],
    *[(code, WeComBusy, ErrorKind.RETRY) for code in sorted(BUSY_ERRCODES)],
    *[(code, WeComCorpGone, ErrorKind.CORP_GONE) for code in sorted(CORP_GONE_ERRCODES)],
    *[
        (code, WeComPermanentError, ErrorKind.PERMANENT)
        for code in (40001, 40029, 40078, 48002, 60020, 701003, 701082, 999999)
    ],
]


@pytest.mark.parametrize(("errcode", "cls", "kind"), FAMILY_CASES)
def test_errcode_maps_to_its_error_class(client, server, errcode, cls, kind):
    server.reply("/cgi-bin/license/get_order", {"errcode": errcode, "errmsg": f"msg {errcode}"})
    with pytest.raises(cls) as info:
        provider_api(client).get_order(order_id="o1")
    exc = info.value
    assert isinstance(exc, WeComApiError)
    assert (exc.errcode, exc.errmsg, exc.endpoint) == (errcode, f"msg {errcode}", "get_order")
    assert exc.kind is kind
    assert exc.retryable is (kind in (ErrorKind.RETRY, ErrorKind.BACK_OFF))
    assert "get_order" in str(exc)
    assert str(errcode) in str(exc)
    assert f"msg {errcode}" in str(exc)


def test_every_item_failed_is_an_answer_with_each_items_errcode(client, server):
    # §10: 701024 means every item of a batch failed; the answer says why, item by item.
    results = [{"active_code": "a", "userid": "u", "errcode": 701021, "errmsg": "bad code"}]
    server.reply(
        "/cgi-bin/license/batch_active_account",
        {"errcode": 701024, "errmsg": "every item failed", "active_result": results},
    )
    answer = provider_api(client).batch_active_account(
        corpid="c", active_list=[{"active_code": "a", "userid": "u"}]
    )
    assert answer["errcode"] == 701024
    assert answer["active_result"] == results


def test_every_item_failed_without_the_items_is_an_error(client, server):
    # Without the per-item list nobody could tell which items failed: raise as before.
    server.reply(
        "/cgi-bin/license/batch_active_account", {"errcode": 701024, "errmsg": "all failed"}
    )
    with pytest.raises(WeComPermanentError) as info:
        provider_api(client).batch_active_account(
            corpid="c", active_list=[{"active_code": "a", "userid": "u"}]
        )
    assert info.value.errcode == 701024


def test_701024_is_an_error_on_endpoints_without_item_results(client, server):
    server.reply(
        "/cgi-bin/license/get_order",
        {"errcode": 701024, "errmsg": "x", "active_result": [{"errcode": 1}]},
    )
    with pytest.raises(WeComPermanentError):
        provider_api(client).get_order(order_id="o1")


def test_error_for_is_pure_and_clips_long_errmsg():
    exc = error_for(45009, "x" * 5000, "list_order")
    assert isinstance(exc, WeComRateLimited)
    assert len(exc.errmsg) <= 300
    assert len(str(exc)) < 400


def test_errcode_as_numeric_string_is_understood(client, server):
    server.reply("/cgi-bin/license/get_order", {"errcode": "301007", "errmsg": "gone"})
    with pytest.raises(WeComCorpGone):
        provider_api(client).get_order(order_id="o1")


@pytest.mark.parametrize(
    "error",
    [
        WeComBusy(endpoint="get_order", errcode=-1, errmsg="busy"),
        WeComTransportError(endpoint="get_order", errmsg="ReadTimeout", request_sent=True),
        WeComTransportError(endpoint="x", errmsg="HTTP 502", status_code=502),
    ],
)
def test_errors_pickle_for_celery(error):
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert type(clone) is type(error)
    assert clone.__dict__ == error.__dict__
    assert str(clone) == str(error)


# -- token refresh: once, and only for token errors ----------------------------------
def test_rejected_token_is_refreshed_once_and_the_call_retried(client, server):
    server.reply("/cgi-bin/license/get_order", {"errcode": 42001, "errmsg": "expired"})
    tokens = RotatingToken(TokenKind.PROVIDER)
    body = client.provider(tokens).get_order(order_id="o1")
    assert body == UNIVERSAL_OK
    first, second = server.requests
    assert first.query == {"provider_access_token": "tok-1"}
    assert second.query == {"provider_access_token": "tok-2"}
    assert second.body == first.body
    assert tokens.refreshed_with == ["tok-1"]


def test_token_invalid_twice_raises_after_exactly_two_calls(client, server):
    server.reply(
        "/cgi-bin/service/v2/get_auth_info",
        {"errcode": 40014, "errmsg": "bad"},
        {"errcode": 40082, "errmsg": "bad again"},
    )
    tokens = RotatingToken(TokenKind.SUITE)
    with pytest.raises(WeComTokenInvalid) as info:
        client.suite(tokens).get_auth_info(auth_corpid="wwc", permanent_code="pc")
    assert info.value.errcode == 40082
    assert len(server.requests) == 2
    assert tokens.refreshed_with == ["tok-1"]


def test_static_token_rejection_is_final_after_one_call(client, server):
    server.reply("/cgi-bin/get_jsapi_ticket", {"errcode": 42001, "errmsg": "expired"})
    with pytest.raises(WeComTokenInvalid):
        corp_api(client).get_jsapi_ticket()
    assert len(server.requests) == 1


def test_pre_auth_code_errors_do_not_refresh_the_suite_token(client, server):
    server.reply("/cgi-bin/service/set_session_info", {"errcode": 42007, "errmsg": "expired"})
    tokens = RotatingToken(TokenKind.SUITE)
    with pytest.raises(WeComPreAuthCodeInvalid):
        client.suite(tokens).set_session_info(pre_auth_code="pac")
    assert len(server.requests) == 1
    assert tokens.refreshed_with == []


@pytest.mark.parametrize("errcode", [-1, 45009, 301007, 40078])
def test_other_errors_are_never_retried_by_the_client(client, server, errcode):
    server.reply("/cgi-bin/license/get_order", {"errcode": errcode, "errmsg": "no"})
    tokens = RotatingToken(TokenKind.PROVIDER)
    with pytest.raises(WeComApiError):
        client.provider(tokens).get_order(order_id="o1")
    assert len(server.requests) == 1
    assert tokens.refreshed_with == []


def test_rotating_token_satisfies_the_protocol():
    assert isinstance(RotatingToken(TokenKind.CORP), TokenSource)
    assert isinstance(StaticToken(TokenKind.CORP, "x"), TokenSource)


# -- transport failures --------------------------------------------------------------
def test_timeout_is_a_transport_error(server):
    server.reply("/cgi-bin/license/get_order", Reply(delay=2.0))
    with (
        WeComClient(server.url, timeout=0.2, connect_timeout=0.2) as c,
        pytest.raises(WeComTransportError) as info,
    ):
        provider_api(c).get_order(order_id="o1")
    assert info.value.errcode is None
    assert info.value.request_sent is True  # the server got it; a write may have happened
    assert info.value.retryable
    assert info.value.kind is ErrorKind.TRANSPORT
    # Raised outside the except block: no httpx exception (URL, token) hangs off it.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_connection_refused_is_a_transport_error_not_sent():
    with socket.socket() as s:  # find a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        WeComClient(f"http://127.0.0.1:{port}", timeout=1, connect_timeout=1) as c,
        pytest.raises(WeComTransportError) as info,
    ):
        c.get_provider_token(corpid="wwp", provider_secret="psecret")
    assert info.value.request_sent is False


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (Reply(status=502, raw=b"<html>Bad Gateway</html>", content_type="text/html"), 502),
        (Reply(status=500, body={"errcode": 0}), 500),
        (Reply(status=302, raw=b"", content_type="text/plain"), 302),
        (Reply(raw=b"<html>captive portal</html>", content_type="text/html"), 200),
        (Reply(raw=b'{"errcode": 0, "errm', content_type="application/json"), 200),
        (Reply(raw=b"\xff\xfe\x00garbage", content_type="application/json"), 200),
        (Reply(body=[1, 2, 3]), 200),
        (Reply(body={"errcode": "zero", "errmsg": "?"}), 200),
        (Reply(body={"errcode": None}), 200),
    ],
)
def test_unusable_answers_are_transport_errors(client, server, reply, status):
    server.reply("/cgi-bin/license/get_order", reply)
    with pytest.raises(WeComTransportError) as info:
        provider_api(client).get_order(order_id="o1")
    assert info.value.endpoint == "get_order"
    assert info.value.errcode is None
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    if status != 200:
        assert info.value.status_code == status


# -- pagination ----------------------------------------------------------------------
def pages(items_key: str) -> list[dict]:
    return [
        {**OK, "has_more": 1, "next_cursor": "c1", items_key: [{"n": 1}, {"n": 2}]},
        {**OK, "has_more": 1, "next_cursor": "c2", items_key: [{"n": 3}]},
        {**OK, "has_more": 0, "next_cursor": "", items_key: [{"n": 4}]},
    ]


@pytest.mark.parametrize(
    ("method", "kwargs", "path", "items_key"),
    [
        ("list_order_account_all", {"order_id": "o1"}, "list_order_account", "account_list"),
        ("list_order_all", {"corpid": "wwc"}, "list_order", "order_list"),
        ("list_actived_account_all", {"corpid": "wwc"}, "list_actived_account", "account_list"),
        ("get_union_order_all", {"order_id": "o1"}, "get_union_order", "buy_list"),
    ],
)
def test_pagination_walks_three_pages(client, server, method, kwargs, path, items_key):
    server.reply(f"/cgi-bin/license/{path}", *pages(items_key))
    items = list(getattr(provider_api(client), method)(**kwargs))
    assert items == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]
    bodies = [r.body for r in server.requests]
    assert [b.get("cursor") for b in bodies] == [None, "c1", "c2"]
    assert all(b["limit"] == 1000 for b in bodies)
    assert all(b.items() >= kwargs.items() for b in bodies)


def test_pagination_refuses_a_repeated_cursor(client, server):
    page = {**OK, "has_more": 1, "next_cursor": "same", "account_list": [{"n": 1}]}
    server.reply("/cgi-bin/license/list_actived_account", page, page, page)
    with pytest.raises(WeComTransportError, match="next_cursor"):
        list(provider_api(client).list_actived_account_all(corpid="wwc"))
    assert len(server.requests) == 2


def test_pagination_stops_when_has_more_is_zero_even_with_a_cursor(client, server):
    server.reply(
        "/cgi-bin/license/list_order",
        {**OK, "has_more": 0, "next_cursor": "ignored", "order_list": [{"order_id": "a"}]},
    )
    assert list(provider_api(client).list_order_all()) == [{"order_id": "a"}]
    assert len(server.requests) == 1


@pytest.mark.parametrize("limit", [0, 1001])
def test_page_limit_above_1000_is_refused_before_io(client, server, limit):
    with pytest.raises(ValueError, match="limit"):
        provider_api(client).list_order_account_all(order_id="o1", limit=limit)
    with pytest.raises(ValueError, match="limit"):
        provider_api(client).list_order(limit=limit)
    assert server.requests == []


def test_list_order_time_filter_comes_in_pairs(client, server):
    with pytest.raises(ValueError, match="start_time"):
        provider_api(client).list_order(start_time=1)
    assert server.requests == []


def test_iter_pages_is_usable_on_its_own():
    replies = iter([{"has_more": 1, "next_cursor": "x", "k": [1]}, {"has_more": 0, "k": [2]}])
    cursors = []

    def fetch(cursor):
        cursors.append(cursor)
        return next(replies)

    assert list(iter_pages(fetch, "k")) == [1, 2]
    assert cursors == [None, "x"]


# -- batch limits --------------------------------------------------------------------
BATCH_CASES = [
    ("provider", "batch_active_account", "active_list", {"corpid": "c"}, {"active_code": "a"}),
    (
        "provider",
        "batch_transfer_license",
        "transfer_list",
        {"corpid": "c"},
        {"handover_userid": "a"},
    ),
    (
        "provider",
        "batch_share_active_code",
        "share_list",
        {"from_corpid": "a", "to_corpid": "b"},
        {"active_code": "a"},
    ),
    ("provider", "batch_get_active_info_by_code", "active_code_list", {"corpid": "c"}, "code"),
    ("provider", "create_renew_order_job", "account_list", {"corpid": "c"}, {"userid": "u"}),
    ("corp", "userid_to_openuserid", "userid_list", {}, "userid"),
]


@pytest.mark.parametrize(("kind", "method", "list_arg", "kwargs", "item"), BATCH_CASES)
def test_batches_over_1000_items_are_refused_before_io(
    client, server, kind, method, list_arg, kwargs, item
):
    api = provider_api(client) if kind == "provider" else corp_api(client)
    with pytest.raises(ValueError, match="1001 items"):
        getattr(api, method)(**kwargs, **{list_arg: [item] * 1001})
    assert server.requests == []
    getattr(api, method)(**kwargs, **{list_arg: [item] * 1000})
    assert len(server.requests[0].body[list_arg]) == 1000


def test_generic_call_also_enforces_batch_limits(client, server):
    with pytest.raises(ValueError, match="at most 1000"):
        corp_api(client).call("userid_to_openuserid", json={"userid_list": ["u"] * 1001})
    with pytest.raises(TypeError):
        corp_api(client).call("userid_to_openuserid", json={"userid_list": "u1"})
    assert server.requests == []


def test_multi_corp_jobs_take_at_most_10_corps_per_call(client, server):
    with pytest.raises(ValueError, match="at most 10"):
        provider_api(client).create_new_order_job(buy_list=[{"corpid": "c"}] * 11)
    assert server.requests == []


def test_chunked_splits_into_lists_of_at_most_size():
    assert [len(c) for c in chunked(range(2500))] == [1000, 1000, 500]
    assert list(chunked([], 3)) == []
    assert list(chunked("abcde", 2)) == [["a", "b"], ["c", "d"], ["e"]]
    with pytest.raises(ValueError, match="size"):
        list(chunked([1], 0))


def test_submit_order_job_needs_exactly_one_duration(client, server):
    api = provider_api(client)
    with pytest.raises(ValueError, match="exactly one"):
        api.submit_order_job(jobid="j", buyer_userid="b")
    with pytest.raises(ValueError, match="exactly one"):
        api.submit_order_job(jobid="j", buyer_userid="b", months=1, new_expire_time=2)
    api.submit_order_job(jobid="j", buyer_userid="b", new_expire_time=1800000000)
    (seen,) = server.requests
    assert seen.body["account_duration"] == {"new_expire_time": 1800000000}


def test_create_new_order_body_matches_the_protocol(client, server):
    provider_api(client).create_new_order(
        corpid="wwc", buyer_userid="b", base_count=10, external_contact_count=5, months=12, days=3
    )
    assert server.requests[0].body == {
        "corpid": "wwc",
        "buyer_userid": "b",
        "account_count": {"base_count": 10, "external_contact_count": 5},
        "account_duration": {"months": 12, "days": 3},
    }


# -- logging and metrics -------------------------------------------------------------
def test_one_log_line_per_call_with_endpoint_errcode_duration_and_corp(client, server, caplog):
    caplog.set_level(logging.DEBUG)
    server.reply("/cgi-bin/license/get_active_info_by_user", {"errcode": 701019, "errmsg": "bad"})
    provider_api(client).get_order(order_id="o1")
    with pytest.raises(WeComPermanentError):
        provider_api(client).get_active_info_by_user(corpid="wwcorp42", userid="u")

    ours = [r for r in caplog.records if r.name == "wecom_provider.wecom.client"]
    assert len(ours) == 2
    ok, failed = ours
    assert ok.levelno == logging.INFO
    assert "get_order" in ok.getMessage()
    assert "errcode=0" in ok.getMessage()
    assert ok.wecom_duration_ms >= 0
    assert failed.levelno == logging.WARNING
    assert "errcode=701019" in failed.getMessage()
    assert "corp=wwcorp42" in failed.getMessage()
    assert (failed.wecom_endpoint, failed.wecom_errcode, failed.wecom_corp_id) == (
        "get_active_info_by_user",
        701019,
        "wwcorp42",
    )
    # Never the URL: its query string carries the token.
    assert all("?" not in r.getMessage() for r in ours)


def test_on_call_hook_sees_every_http_call(server):
    calls = []
    server.reply(
        "/cgi-bin/license/get_order",
        {"errcode": 42001, "errmsg": "expired"},
        dict(UNIVERSAL_OK),
        {"errcode": 45009, "errmsg": "slow down"},
        Reply(status=503, raw=b""),
    )
    on_call = lambda *args: calls.append(args)  # noqa: E731
    with WeComClient(server.url, on_call=on_call) as c:
        api = c.provider(RotatingToken(TokenKind.PROVIDER))
        api.get_order(order_id="o1")
        with pytest.raises(WeComRateLimited):
            api.get_order(order_id="o1")
        with pytest.raises(WeComTransportError):
            api.get_order(order_id="o1")
    assert [(name, errcode) for name, errcode, _ in calls] == [
        ("get_order", 42001),
        ("get_order", 0),
        ("get_order", 45009),
        ("get_order", None),
    ]
    assert all(isinstance(d, float) and d >= 0 for *_, d in calls)


def test_a_failing_on_call_hook_does_not_break_the_call(server):
    def broken(*_args):
        raise RuntimeError("metrics down")

    with WeComClient(server.url, on_call=broken) as c:
        assert provider_api(c).get_account_balance() == UNIVERSAL_OK


def test_httpx_loggers_are_kept_at_warning():
    assert logging.getLogger("httpx").level == logging.WARNING
    assert logging.getLogger("httpcore").level == logging.WARNING


# -- secrets never leak --------------------------------------------------------------
PROVIDER_SECRET = "SEEDprovsecret7f3a"
SUITE_SECRET = "SEEDsuitesecret91bc"
SUITE_TICKET = "SEEDsuiteticket55de"
TOKEN = "SEEDaccesstoken0a1b"
PERMANENT_CODE = "SEEDpermcode77c2"
AUTH_CODE = "SEEDauthcode3e4f"
SECRETS = (PROVIDER_SECRET, SUITE_SECRET, SUITE_TICKET, TOKEN, PERMANENT_CODE, AUTH_CODE)
ECHO_ALL = "echo " + " ".join(SECRETS)  # raw junk that contains every secret


def exception_chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        yield from (e for e in (exc.__cause__,) if e is not None)
        exc = exc.__context__


def drive_everything(server: FakeWeCom) -> list[BaseException]:
    """Run the client through success, errcodes, timeouts and transport errors."""
    errors: list[BaseException] = []

    def attempt(fn):
        try:
            fn()
        except WeComError as exc:
            errors.append(exc)

    api_error = Reply(echo_errcode=40001)
    with WeComClient(server.url, timeout=0.3, connect_timeout=0.3) as c:
        suite = c.suite(StaticToken(TokenKind.SUITE, TOKEN))
        provider = c.provider(StaticToken(TokenKind.PROVIDER, TOKEN))
        corp = c.corp(RotatingToken(TokenKind.CORP, prefix=TOKEN))
        # success
        c.get_provider_token(corpid="wwprov", provider_secret=PROVIDER_SECRET)
        c.get_suite_token(suite_id="ww1", suite_secret=SUITE_SECRET, suite_ticket=SUITE_TICKET)
        c.get_customized_corp_token(corpid="wwc", corpsecret=PERMANENT_CODE)
        suite.get_permanent_code(auth_code=AUTH_CODE)
        suite.get_corp_token(auth_corpid="wwc", permanent_code=PERMANENT_CODE)
        provider.get_login_info(auth_code=AUTH_CODE)
        # errcode errors echoing every secret, incl. after a token refresh
        for path in (
            "/cgi-bin/service/get_provider_token",
            "/cgi-bin/service/get_suite_token",
            "/cgi-bin/gettoken",
            "/cgi-bin/service/v2/get_permanent_code",
            "/cgi-bin/service/get_corp_token",
        ):
            server.reply(path, api_error)
        server.reply("/cgi-bin/get_jsapi_ticket", Reply(echo_errcode=40014))
        server.reply("/cgi-bin/get_jsapi_ticket", Reply(echo_errcode=40014))
        attempt(lambda: c.get_provider_token(corpid="wwprov", provider_secret=PROVIDER_SECRET))
        attempt(
            lambda: c.get_suite_token(
                suite_id="ww1", suite_secret=SUITE_SECRET, suite_ticket=SUITE_TICKET
            )
        )
        attempt(lambda: c.get_customized_corp_token(corpid="wwc", corpsecret=PERMANENT_CODE))
        attempt(lambda: suite.get_permanent_code(auth_code=AUTH_CODE))
        attempt(lambda: suite.get_corp_token(auth_corpid="wwc", permanent_code=PERMANENT_CODE))
        attempt(corp.get_jsapi_ticket)
        # timeout, HTTP 502 and a non-JSON body that contains the secrets
        server.reply("/cgi-bin/service/get_suite_token", Reply(delay=2.0))
        attempt(
            lambda: c.get_suite_token(
                suite_id="ww1", suite_secret=SUITE_SECRET, suite_ticket=SUITE_TICKET
            )
        )
        server.reply("/cgi-bin/gettoken", Reply(status=502, raw=ECHO_ALL.encode()))
        attempt(lambda: c.get_customized_corp_token(corpid="wwc", corpsecret=PERMANENT_CODE))
        server.reply("/cgi-bin/service/get_login_info", Reply(raw=ECHO_ALL.encode()))
        attempt(lambda: provider.get_login_info(auth_code=AUTH_CODE))
    # connection refused
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with WeComClient(f"http://127.0.0.1:{port}", timeout=0.5, connect_timeout=0.5) as c:
        attempt(lambda: c.get_provider_token(corpid="wwprov", provider_secret=PROVIDER_SECRET))
        attempt(
            lambda: c.suite(StaticToken(TokenKind.SUITE, TOKEN)).get_permanent_code(
                auth_code=AUTH_CODE
            )
        )
    return errors


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked in {where}: {text[:300]}"


@pytest.mark.parametrize("httpx_debug", [False, True], ids=["defaults", "httpx-at-debug"])
def test_no_secret_reaches_logs_or_exceptions(server, caplog, httpx_debug):
    caplog.set_level(logging.DEBUG)  # root: every logger that does not set its own level
    if httpx_debug:
        # Someone's LOGGING config turned httpx up again: the query filter still holds.
        caplog.set_level(logging.DEBUG, logger="httpx")
        caplog.set_level(logging.DEBUG, logger="httpcore")

    errors = drive_everything(server)

    assert len(errors) == 11
    assert any(isinstance(e, WeComTransportError) and e.request_sent is False for e in errors)
    assert any(isinstance(e, WeComTokenInvalid) for e in errors)
    # The hostile errmsg survives, scrubbed.
    echoed = [e.errmsg for e in errors if isinstance(e, WeComApiError)]
    assert len(echoed) == 6
    assert all("***" in m for m in echoed)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    assert caplog.records
    for record in caplog.records:
        assert_no_secret(formatter.format(record), f"log record {record.name}")
        assert_no_secret(repr(vars(record)), f"log record attrs {record.name}")
    for error in errors:
        for exc in exception_chain(error):
            assert_no_secret(str(exc), "str(exc)")
            assert_no_secret(repr(exc), "repr(exc)")
            assert_no_secret(repr(exc.args), "exc.args")
            assert_no_secret(repr(vars(exc)), "exc attrs")
    if httpx_debug:
        # httpx did log (so the filter was exercised), just without query strings.
        assert any(r.name == "httpx" for r in caplog.records)


def test_credential_values_are_hidden_from_repr():
    for value in (
        AccessToken(TOKEN, 7200),
        PreAuthCode(AUTH_CODE, 1200),
        Ticket(SUITE_TICKET, 7200),
        StaticToken(TokenKind.SUITE, TOKEN),
    ):
        assert_no_secret(repr(value), type(value).__name__)
        assert_no_secret(str(value), type(value).__name__)


def test_module_logger_name_is_stable():
    # Deployment LOGGING config and alerting refer to this name.
    assert client_module.logger.name == "wecom_provider.wecom.client"
