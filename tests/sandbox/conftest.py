"""Fixtures: a simulator per test, a fake platform receiving its callbacks, API helpers.

Everything talks over real HTTP on 127.0.0.1; nothing is mocked. The receiver plays
the platform's callback endpoints: it decrypts each push with CallbackCrypto using
the receive id that URL must carry (§7.1), records it, and answers `success`.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import httpx
import pytest
from defusedxml import ElementTree

from sandbox import SandboxControl
from sandbox import start_sandbox
from sandbox.config import Scenario
from sandbox.config import build_scenario
from wecom.crypto import CallbackCrypto
from wecom.crypto import CallbackCryptoError

SUITE_PATH = re.compile(r"^/callbacks/suite/(?P<suite>[^/]+)/(?P<channel>command|data)/$")
PROVIDER_PATH = re.compile(r"^/callbacks/provider/(?P<corpid>[^/]+)/$")


def cdata(xml: str, name: str) -> str | None:
    match = re.search(rf"<{name}>(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))</{name}>", xml, re.S)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def parse_fields(xml: str) -> dict[str, Any]:
    """Return the decrypted payload as a dict (children of repeated/nested elements too)."""
    root = ElementTree.fromstring(xml)
    out: dict[str, Any] = {}
    for child in root:
        if len(child):
            value: Any = {c.tag: (c.text or "").strip() for c in child}
            out.setdefault(child.tag + "[]", []).append(value)
            out[child.tag] = value
        else:
            out[child.tag] = (child.text or "").strip()
    return out


class Receiver:
    """The platform stand-in. Behaviour knobs: `delays` (seconds to sleep before
    answering, one per incoming request in order), `hold` (while cleared, every
    request waits for it to be set, so a test can prove nothing waits on the
    answer without measuring time), `reply` and `status`."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.gets: list[dict[str, Any]] = []
        self.delays: list[float] = []
        self.hold = threading.Event()
        self.hold.set()
        self.reply = "success"
        self.status = 200
        self.hits = 0
        self.lock = threading.Lock()
        self.suites: dict[str, tuple[str, str]] = {}
        self.provider: tuple[str, str, str] = ("", "", "")
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                receiver.handle_post(self)

            def do_GET(self) -> None:
                receiver.handle_get(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def configure(self, config: dict[str, Any]) -> None:
        """Learn tokens and keys from GET /sandbox/config (as the platform would)."""
        p = config["provider"]
        self.provider = (p["corpid"], p["token"], p["encoding_aes_key"])
        for s in config["suites"]:
            self.suites[s["suite_id"]] = (s["token"], s["encoding_aes_key"])

    def know(self, scenario: Scenario) -> Scenario:
        """Learn the keys of a scenario before the simulator starts pushing."""
        p = scenario.provider
        self.provider = (p.corpid, p.token, p.encoding_aes_key)
        for s in scenario.suites:
            self.suites[s.suite_id] = (s.token, s.encoding_aes_key)
        return scenario

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _crypto(self, path: str, to_user: str) -> tuple[CallbackCrypto, str, str, str]:
        if m := SUITE_PATH.match(path):
            suite_id, channel = m["suite"], m["channel"]
            self.suites.setdefault(suite_id, ("", ""))
            token, key = self.suites[suite_id]
            # command URL: receive id = suite/template id; data URL: the corp's corpid.
            receive_id = suite_id if channel == "command" else to_user
            return CallbackCrypto(token, key, receive_id), channel, suite_id, receive_id
        if m := PROVIDER_PATH.match(path):
            corpid, token, key = self.provider
            assert m["corpid"] == corpid
            return CallbackCrypto(token, key, corpid), "system", "", corpid
        raise AssertionError(f"unexpected callback path {path}")

    def _pause(self) -> None:
        with self.lock:
            self.hits += 1
            delay = self.delays.pop(0) if self.delays else 0
        if delay:
            time.sleep(delay)
        self.hold.wait(timeout=30)

    def handle_post(self, req: BaseHTTPRequestHandler) -> None:
        self._pause()
        url = urlsplit(req.path)
        query = dict(parse_qsl(url.query))
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0)).decode()
        to_user, agent = cdata(body, "ToUserName") or "", cdata(body, "AgentID")
        try:
            crypto, channel, suite_id, receive_id = self._crypto(url.path, to_user)
            message = crypto.decrypt(
                query["msg_signature"], query["timestamp"], query["nonce"], cdata(body, "Encrypt")
            )
        except (CallbackCryptoError, AssertionError, KeyError) as exc:
            with self.lock:
                self.errors.append(f"{url.path}: {exc!r}")
            self._answer(req, 400, "bad callback")
            return
        fields = parse_fields(message)
        with self.lock:
            self.records.append(
                {
                    "path": url.path,
                    "channel": channel,
                    "suite_id": suite_id,
                    "receive_id": receive_id,
                    "to_user": to_user,
                    "agent_id": agent,
                    "query": query,
                    "body": body,
                    "message": message,
                    "fields": fields,
                    "type": fields.get("InfoType") or fields.get("Event"),
                }
            )
        self._answer(req, self.status, self.reply)

    def handle_get(self, req: BaseHTTPRequestHandler) -> None:
        self._pause()
        url = urlsplit(req.path)
        query = dict(parse_qsl(url.query))
        provider_corpid = self.provider[0]
        if m := SUITE_PATH.match(url.path):
            token, key = self.suites[m["suite"]]
        else:
            _, token, key = self.provider
        crypto = CallbackCrypto(token, key, provider_corpid)
        try:
            plain = crypto.verify_url(
                query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
            )
        except (CallbackCryptoError, KeyError) as exc:
            self._answer(req, 400, repr(exc))
            return
        with self.lock:
            self.gets.append({"path": url.path, "query": query, "plain": plain})
        self._answer(req, 200, plain)

    @staticmethod
    def _answer(req: BaseHTTPRequestHandler, status: int, text: str) -> None:
        data = text.encode()
        try:
            req.send_response(status)
            req.send_header("Content-Type", "text/plain")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
        except OSError:
            pass  # the simulator gave up waiting (timeout tests)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.records if r["type"] == kind]


class WeComApi:
    """The calls a platform would make, as plain HTTP against the simulator."""

    def __init__(self, handle, ctl: SandboxControl) -> None:
        self.handle = handle
        self.ctl = ctl
        self.http = httpx.Client(base_url=handle.base_url, trust_env=False, timeout=10)
        self.cfg = handle.config
        self.provider = self.cfg["provider"]
        self.suite = next(s for s in self.cfg["suites"] if s["kind"] == "third_party")
        self.template = next(s for s in self.cfg["suites"] if s["kind"] == "customized_template")
        self.corps = self.cfg["corps"]

    def close(self) -> None:
        self.http.close()

    def post(self, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        resp = self.http.post(path, params=params, json=body if body is not None else {})
        assert resp.status_code == 200, resp.text
        return resp.json()

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        resp = self.http.get(path, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def suite_cfg(self, suite_id: str) -> dict[str, Any]:
        return next(s for s in self.handle.config["suites"] if s["suite_id"] == suite_id)

    def provider_token(self) -> str:
        body = {
            "corpid": self.provider["corpid"],
            "provider_secret": self.provider["provider_secret"],
        }
        return self.post("/cgi-bin/service/get_provider_token", body)["provider_access_token"]

    def suite_token(self, suite_id: str | None = None) -> str:
        suite = self.suite_cfg(suite_id or self.suite["suite_id"])
        body = {
            "suite_id": suite["suite_id"],
            "suite_secret": suite["secret"],
            "suite_ticket": suite["suite_ticket"],
        }
        data = self.post("/cgi-bin/service/get_suite_token", body)
        assert data["errcode"] == 0, data
        return data["suite_access_token"]

    def authorize(self, suite_id: str | None = None, corp: int = 0) -> dict[str, Any]:
        """Install (control action, no push) and exchange the auth_code: the tenant's grant."""
        suite_id = suite_id or self.suite["suite_id"]
        corpid = self.corps[corp]["corpid"]
        code = self.ctl.install(suite_id, corpid, push=False)["auth_code"]
        token = self.suite_token(suite_id)
        data = self.post(
            "/cgi-bin/service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=token
        )
        assert data["errcode"] == 0, data
        return {
            "suite_id": suite_id,
            "corpid": corpid,
            "permanent_code": data["permanent_code"],
            "suite_token": token,
        }

    def corp_token(self, grant: dict[str, Any]) -> str:
        if grant["suite_id"].startswith("dk"):
            data = self.get(
                "/cgi-bin/gettoken", corpid=grant["corpid"], corpsecret=grant["permanent_code"]
            )
        else:
            data = self.post(
                "/cgi-bin/service/get_corp_token",
                {"auth_corpid": grant["corpid"], "permanent_code": grant["permanent_code"]},
                suite_access_token=grant["suite_token"],
            )
        assert data["errcode"] == 0, data
        return data["access_token"]

    def lic(self, name: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        token = token or self.provider_token()
        return self.post(f"/cgi-bin/license/{name}", body, provider_access_token=token)


@pytest.fixture
def receiver():
    r = Receiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture
def sandbox(receiver):
    # ticket_interval=0: tickets only at start and on demand, so tests are deterministic.
    scenario = receiver.know(build_scenario())
    scenario.settings.push_timeout = 2.0
    handle = start_sandbox(callback_base=receiver.url, ticket_interval=0, config=scenario)
    yield handle
    handle.stop()


@pytest.fixture
def ctl(sandbox):
    client = SandboxControl(sandbox.base_url)
    yield client
    client.close()


@pytest.fixture
def api(sandbox, ctl):
    client = WeComApi(sandbox, ctl)
    yield client
    client.close()


@pytest.fixture
def buyer(sandbox) -> str:
    return sandbox.state.buyers[0]


class License:
    """License helpers: an authorized corp, orders bought and paid, their codes."""

    def __init__(self, api: WeComApi, buyer: str) -> None:
        self.api = api
        self.ctl = api.ctl
        self.buyer = buyer

    def call(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        # Same token while valid, a new one after clock jumps: like a well-behaved client.
        return self.api.lic(name, body, self.api.provider_token())

    def order(
        self, corpid: str, *, base: int = 2, external: int = 0, months: int = 1, days: int = 0
    ):
        body = {
            "corpid": corpid,
            "buyer_userid": self.buyer,
            "account_count": {"base_count": base, "external_contact_count": external},
            "account_duration": {"months": months, "days": days},
        }
        data = self.call("create_new_order", body)
        assert data["errcode"] == 0, data
        return data["order_id"]

    def codes(self, order_id: str) -> list[dict[str, Any]]:
        data = self.call("list_order_account", {"order_id": order_id, "limit": 1000})
        assert data["errcode"] == 0, data
        return data["account_list"]

    def buy(self, corpid: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Create and pay an order; return its accounts [{active_code, type}]."""
        order_id = self.order(corpid, **kwargs)
        self.ctl.pay_order(order_id)
        return self.codes(order_id)

    def activate(self, corpid: str, code: str, userid: str) -> int:
        body = {"corpid": corpid, "active_code": code, "userid": userid}
        return self.call("active_account", body)["errcode"]

    def info(self, corpid: str, code: str) -> dict[str, Any]:
        data = self.call("get_active_info_by_code", {"corpid": corpid, "active_code": code})
        assert data["errcode"] == 0, data
        return data["active_info"]


@pytest.fixture
def lic(api, buyer):
    api.authorize(corp=0)
    api.authorize(corp=1)
    return License(api, buyer)
