"""The HTTP server: WeCom API routes, the install page, and the /sandbox control API.

stdlib ThreadingHTTPServer with daemon threads: one thread per connection, every
state change under the state lock. WeCom-side errors are HTTP 200 with errcode
(§1); only injected faults produce 5xx.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit

from sandbox import actions
from sandbox import api_accounts  # noqa: F401  (registers the licence account routes)
from sandbox import api_auth
from sandbox import api_authorized  # noqa: F401  (registers the installed-app routes)
from sandbox import api_corp  # noqa: F401  (registers the corp API routes)
from sandbox import api_license  # noqa: F401  (registers the licence order routes)
from sandbox import app_orders  # noqa: F401  (registers the paid-app routes)
from sandbox import config as config_mod
from sandbox import control_api
from sandbox import corp_quota
from sandbox import credentials
from sandbox import faults as faults_mod
from sandbox.actions import ActionError
from sandbox.api import ROUTES
from sandbox.api import Call
from sandbox.api import Raw
from sandbox.clock import SimClock
from sandbox.errors import ApiError
from sandbox.errors import error_body
from sandbox.pushes import PushWorker
from sandbox.scheduler import Scheduler
from sandbox.state import SandboxState

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024


class Sandbox:
    """A running simulator: state, HTTP server, push worker and scheduler."""

    def __init__(
        self,
        state: SandboxState,
        *,
        host: str,
        port: int,
        snapshot_path: str | None = None,
        verbose: bool = False,
    ) -> None:
        self.state = state
        self.snapshot_path = snapshot_path
        self.verbose = verbose
        self.pusher = PushWorker(state)
        self.scheduler = Scheduler(state)
        state.pusher = self.pusher
        state.scheduler = self.scheduler
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.sandbox = self  # type: ignore[attr-defined]
        self.host = host
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-http",
            daemon=True,
        )

    def start(self) -> None:
        # Serve first: the platform may call get_suite_token as soon as a ticket lands.
        self._thread.start()
        self.pusher.start()
        with self.state.lock:
            # WeCom pushes a ticket every interval; the first goes out at once so the
            # platform can get suite tokens without waiting ten minutes.
            first = self.state.now() + (self.state.ticket_interval or 0)
            for suite_id in self.state.suites:
                actions.push_ticket(self.state, suite_id)
                self.scheduler.schedule_tickets(suite_id, first=first)
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.pusher.stop()
        self._thread.join(5)
        if self.snapshot_path:
            self.state.save(self.snapshot_path)

    def wait_pushes(self, timeout: float | None = 10) -> bool:
        """Return True once due work has run and the push queue is empty."""
        self.scheduler.run_due()
        return self.pusher.wait(timeout)


class SandboxHandle:
    """What start_sandbox returns: the URL, direct state access for tests, and stop()."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.base_url = sandbox.base_url
        self.port = sandbox.port
        self.host = sandbox.host
        self.state = sandbox.state

    def stop(self) -> None:
        self._sandbox.stop()

    def wait_pushes(self, timeout: float | None = 10) -> bool:
        return self._sandbox.wait_pushes(timeout)

    def advance(self, seconds: float) -> None:
        """Move the simulator clock forward and run what became due."""
        self.state.clock.advance(seconds)
        self._sandbox.scheduler.run_due()

    @property
    def config(self) -> dict[str, Any]:
        with self.state.lock:
            return self.state.config_view()

    def control(self):
        from sandbox.control import SandboxControl

        return SandboxControl(self.base_url)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    callback_base: str | None = None,
    config: config_mod.Scenario | dict[str, Any] | str | Path | None = None,
    ticket_interval: float = 600,
    snapshot: str | None = None,
    verbose: bool = False,
    frozen_clock: bool = False,
) -> SandboxHandle:
    """Start the simulator on a background thread and return its handle.

    config: a scenario dict, a YAML/JSON file path, a built Scenario (so a caller can
    learn the generated secrets before the first push), or None for the DEFAULT scenario.
    ticket_interval: seconds (simulator clock) between suite_ticket pushes; ≤0 pushes
    only the first ticket at start and those asked for with POST /sandbox/push_ticket.
    snapshot: a JSON file loaded at start when it exists and written at stop.
    frozen_clock: simulator time moves only by advance() (see SimClock).
    """
    if isinstance(config, config_mod.Scenario):
        scenario = config
    else:
        raw = config_mod.load_file(config) if isinstance(config, (str, Path)) else config
        scenario = config_mod.build_scenario(raw)
    state = SandboxState(
        scenario,
        callback_base=callback_base,
        ticket_interval=ticket_interval,
        clock=SimClock(frozen=frozen_clock),
    )
    if snapshot and Path(snapshot).exists():
        state.load(snapshot)
    sandbox = Sandbox(state, host=host, port=port, snapshot_path=snapshot, verbose=verbose)
    sandbox.start()
    return SandboxHandle(sandbox)


# ----- request handling --------------------------------------------------------------


def _corp_of(body: dict[str, Any], query: dict[str, str]) -> str | None:
    for key in ("auth_corpid", "corpid"):
        value = body.get(key) if isinstance(body, dict) else None
        if isinstance(value, str):
            return value
    return query.get("corpid")


def _parse_json(raw: bytes) -> tuple[dict[str, Any], bool]:
    """Return (body, malformed). WeCom reads what it can and warns; so do we (§1)."""
    if not raw.strip():
        return {}, False
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}, True
    if not isinstance(data, dict):
        return {}, True
    return data, False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "WeComSandbox/1.0"

    @property
    def sandbox(self) -> Sandbox:
        return self.server.sandbox  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without TCP_NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        if self.sandbox.verbose:
            logger.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    # ----- plumbing ------------------------------------------------------------------

    def _read_body(self, limit: int = MAX_BODY) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json; charset=UTF-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"))

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if not url.path.startswith("/sandbox") or "access_token" in query:
            # Every request but the tests' own control calls counts, whatever its path (a
            # token-bearing one even on a control path): tests assert that hostile input
            # never reached "WeCom" at all.
            with self.sandbox.state.lock:
                self.sandbox.state.http_hits += 1
        route = ROUTES.get(url.path)
        try:
            raw = self._read_body((route.max_body if route else None) or MAX_BODY)
        except ValueError:
            self._send_json(413, {"error": "body too large"})
            return
        path = url.path
        try:
            if path == "/sandbox" or path.startswith("/sandbox/"):
                self._control(path, query, raw)
            elif path == "/3rdapp/install":
                self._install(query)
            elif path == api_auth.CUSTOMIZED_AUTH_PATH:
                self._customized_auth(query)
            elif path in ROUTES:
                self._api(path, query, raw)
            else:
                self._send_json(404, {"errcode": 404, "errmsg": f"no such path {path}"})
        except Exception as exc:
            # A simulator bug: answer loudly (HTTP 500) instead of dropping the connection,
            # so the failing test shows what broke.
            logger.exception("sandbox failed on %s %s", self.command, path)
            self._send_json(500, {"error": f"sandbox bug: {type(exc).__name__}: {exc}"})

    # ----- WeCom API -----------------------------------------------------------------

    def _api(self, path: str, query: dict[str, str], raw: bytes) -> None:
        route = ROUTES[path]
        state = self.sandbox.state
        client_ip = self.client_address[0]
        started = time.perf_counter()
        # When the call reached "WeCom" (before any injected latency), to the millisecond:
        # rate tests count calls per second window on it.
        arrived = round(state.clock.now(), 3)
        with state.lock:
            fault = faults_mod.take(state.faults, target=faults_mod.API, name=route.name)
        if fault and fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)  # outside the lock: other calls go on
        status, payload, content_type = 200, None, "application/json; charset=UTF-8"
        headers: dict[str, str] = {}
        errcode: int | None = 0
        request_type = self.headers.get("Content-Type") or ""
        json_body = self.command == "POST" and not request_type.startswith("multipart/")
        body, malformed = _parse_json(raw) if json_body else ({}, False)
        with state.lock:
            now = state.ts()
            try:
                if fault and fault.http_status:
                    status, errcode = fault.http_status, None
                    payload = f"injected HTTP {fault.http_status}".encode()
                    content_type = "text/plain; charset=utf-8"
                elif fault and fault.errcode:
                    raise ApiError(fault.errcode, "injected fault")
                else:
                    result = self._api_call(route, query, body, client_ip, raw)
                    if isinstance(result, Raw):
                        payload, content_type = result.body, result.content_type
                        headers = result.headers
                    else:
                        payload = self._success(route, result)
            except ApiError as exc:
                errcode = exc.errcode
                payload = error_body(exc, client_ip=client_ip, now=now, warning=malformed)
            state.requests.append(
                {
                    "id": next(state.request_ids),
                    "time": now,
                    "arrived": arrived,
                    "endpoint": route.name,
                    "method": self.command,
                    # The path only: the query string carries tokens and secrets.
                    "path": path,
                    "errcode": errcode,
                    "http_status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "fault": fault.id if fault else None,
                    # Which corp the call was about (an id, never a secret).
                    "corpid": _corp_of(body, query),
                }
            )
        if isinstance(payload, dict):
            payload = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send(status, payload, content_type, headers)

    def _api_call(self, route, query, body, client_ip, raw=b""):
        state = self.sandbox.state
        allow = state.settings.ip_allowlist
        if allow and client_ip not in allow:
            raise ApiError(60020, f"{client_ip} is not in the IP allow-list")
        if self.command != route.method:
            # WeCom answers a wrong method with a parameter error, not HTTP 405 (§1).
            raise ApiError(40058, f"{route.path} takes {route.method}")
        token = None
        if route.token:
            token = credentials.check_token(
                state, param=route.token_param, kind=route.token, value=query.get(route.token_param)
            )
            if route.token == credentials.CORP:
                # WeCom's own quota per corp and API (settings; off by default).
                corp_quota.take(state, token.corpid, route.name)
        call = Call(state, route, query, body, client_ip, token, self.sandbox.base_url)
        call.raw, call.content_type = raw, self.headers.get("Content-Type") or ""
        return route.handler(call)

    def _success(self, route, result: dict[str, Any]) -> dict[str, Any]:
        # §1 / §11 item 4: some token endpoints omit errcode on success.
        randomize = self.sandbox.state.settings.randomize_legacy_errcode
        coin = randomize and random.random() < 0.5
        include = coin if route.legacy == "omit" else not (route.legacy == "optional" and coin)
        return {"errcode": 0, "errmsg": "ok", **result} if include else dict(result)

    # ----- the install page (§4.1, §11 item 9) ---------------------------------------

    def _install(self, query: dict[str, str]) -> None:
        """Play the corp admin on WeCom's install page: confirm and redirect back."""
        state = self.sandbox.state
        with state.lock:
            try:
                location = self._install_location(state, query)
                error = None
            except ApiError as exc:
                error = error_body(exc, client_ip=self.client_address[0], now=state.ts())
            state.requests.append(
                {
                    "id": next(state.request_ids),
                    "time": state.ts(),
                    "endpoint": "install",
                    "method": self.command,
                    "path": "/3rdapp/install",
                    "errcode": error["errcode"] if error else 0,
                    "http_status": 400 if error else 302,
                    "duration_ms": 0.0,
                    "fault": None,
                }
            )
        if error is not None:
            # WeCom shows an error page; a 400 with the errcode is easier to assert on.
            self._send_json(400, error)
        else:
            self._send(302, b"", "text/plain", {"Location": location})

    def _customized_auth(self, query: dict[str, str]) -> None:
        """Play the corp admin who opens a get_customized_auth_url link and authorizes.

        The 代开发 template is installed for ``corpid`` (or the first corp without it)
        and create_auth goes to the template's command URL with the link's state (§4.4).
        """
        state = self.sandbox.state
        with state.lock:
            try:
                templates = [t for t in query.get("templateid", "").split(",") if t]
                suite = state.suite(query.get("suite_id") or (templates[0] if templates else ""))
                if suite is None or not suite.customized or suite.suite_id not in templates:
                    raise ApiError(40083, "not a 代开发 template of this link")
                corpid = query.get("corpid")
                if corpid:
                    if state.corp(corpid) is None:
                        raise ApiError(40013, "unknown corpid")
                else:
                    corpid = next(
                        (
                            c.corpid
                            for c in state.corps.values()
                            if not state.auth(suite.suite_id, c.corpid)
                        ),
                        next(iter(state.corps)),
                    )
                code = actions.install(
                    state, suite.suite_id, corpid, state_param=query.get("state", "")
                )
                error = None
            except (ApiError, actions.ActionError) as exc:
                errcode = exc.errcode if isinstance(exc, ApiError) else 40058
                error = {"errcode": errcode, "errmsg": str(exc)}
            state.requests.append(
                {
                    "id": next(state.request_ids),
                    "time": state.ts(),
                    "endpoint": "customized_auth",
                    "method": self.command,
                    "path": api_auth.CUSTOMIZED_AUTH_PATH,
                    "errcode": error["errcode"] if error else 0,
                    "http_status": 400 if error else 200,
                    "duration_ms": 0.0,
                    "fault": None,
                    "corpid": None if error else code.corpid,
                }
            )
        if error is not None:
            self._send_json(400, error)
        else:
            self._send_json(200, {"authorized": True, "corpid": code.corpid})

    @staticmethod
    def _install_location(state: SandboxState, query: dict[str, str]) -> str:
        suite = state.suite(query.get("suite_id"))
        if suite is None:
            raise ApiError(40083, "unknown suite_id")
        code = query.get("pre_auth_code", "")
        pre = api_auth.lookup_pre_auth_code(state, suite.suite_id, code)
        redirect_uri = query.get("redirect_uri", "")
        target = urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or not target.netloc:
            raise ApiError(40058, "redirect_uri must be an absolute URL")
        if suite.redirect_domains and target.netloc not in suite.redirect_domains:
            raise ApiError(50001, f"{target.netloc} is not the app's redirect domain")
        state_param = api_auth.check_state(query.get("state", ""), 128)
        corpid = query.get("corpid")
        if corpid:
            corp = state.corp(corpid)
            if corp is None:
                raise ApiError(40013, "unknown corpid")
        else:
            # No fixture named: the first corp that has not installed the suite yet.
            corp = next(
                (c for c in state.corps.values() if not state.auth(suite.suite_id, c.corpid)),
                next(iter(state.corps.values())),
            )
        auth = actions.authorize(
            state, suite.suite_id, corp.corpid, state_param=state_param, test=pre.auth_type == 1
        )
        auth.state = state_param
        auth_code = actions.issue_auth_code(state, auth)
        # No create_auth push on this path (§4.1): the redirect carries the only auth_code.
        params = urlencode(
            {
                "auth_code": auth_code.code,
                "expires_in": state.settings.auth_code_ttl,
                "state": state_param,
            }
        )
        return f"{redirect_uri}{'&' if target.query else '?'}{params}"

    # ----- control API ---------------------------------------------------------------

    def _control(self, path: str, query: dict[str, str], raw: bytes) -> None:
        route, params, known = control_api.find(self.command, path.rstrip("/") or path)
        if route is None:
            status = 405 if known else 404
            self._send_json(status, {"error": f"{self.command} {path} is not a control route"})
            return
        body, malformed = _parse_json(raw)
        if malformed:
            self._send_json(400, {"error": "the body must be a JSON object"})
            return
        call = control_api.ControlCall(self.sandbox, body, query, params)
        state = self.sandbox.state
        try:
            if route.locked:
                with state.lock:
                    result = route.handler(call)
            else:
                result = route.handler(call)
        except ActionError as exc:
            self._send_json(exc.status, {"error": str(exc)})
            return
        except ApiError as exc:
            self._send_json(400, {"error": exc.detail or str(exc), "errcode": exc.errcode})
            return
        except (ValueError, TypeError, KeyError) as exc:
            self._send_json(400, {"error": str(exc)})
            return
        self._send_json(200, result)


# ----- running as a process ----------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Run the WeCom simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9800)
    parser.add_argument("--callback-base", default=None, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--config", default=None, help="scenario YAML/JSON file")
    parser.add_argument("--ticket-interval", type=float, default=600)
    parser.add_argument("--snapshot", default=None, help="JSON state file (load + save)")
    parser.add_argument("--verbose", action="store_true")
    return parser


def run_forever(handle: SandboxHandle, *, out=None) -> None:
    """Announce the handle, then block until Ctrl-C or SIGTERM and stop it cleanly."""
    out = out or sys.stdout
    out.write(f"WeCom sandbox on {handle.base_url} (config: {handle.base_url}/sandbox/config)\n")
    out.flush()
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    handle = start_sandbox(
        host=args.host,
        port=args.port,
        callback_base=args.callback_base,
        config=args.config,
        ticket_interval=args.ticket_interval,
        snapshot=args.snapshot,
        verbose=args.verbose,
    )
    run_forever(handle)
    return 0
