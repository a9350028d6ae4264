"""A real HTTP receiver for webhook tests: a threaded server on 127.0.0.1 that records
every request and answers from a script (e.g. 503 three times, then 200)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[int] = []  # statuses to answer, in order; then `default`
        self.default = 200
        self.secret: str | None = None
        # Called with each request before it is answered (on the server's thread for
        # that request): tests hold answers back with it; its return value, if not
        # None, is the status to answer.
        self.hold: Callable[[Received], int | None] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/in"

    def answer(self) -> int:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def verified(self, secret: str | None = None) -> list[dict]:
        """Return every body, each verified with standardwebhooks (raises if one fails)."""
        hook = Webhook(secret or self.secret)
        return [hook.verify(r.body, r.headers) for r in list(self.requests)]

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return True
            time.sleep(0.02)
        return False


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            received = Received(self.path, headers, body, time.time())
            receiver.record(received)
            held = receiver.hold(received) if receiver.hold else None
            status = held if held is not None else receiver.answer()
            payload = json.dumps({"status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args) -> None:
            return

    return Handler


class _Server(ThreadingHTTPServer):
    # A real receiver's accept queue (nginx: 511), not http.server's 5: a batch's
    # deliveries arrive side by side, and a full queue drops connections for a second.
    request_queue_size = 512


@contextlib.contextmanager
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()
    server = _Server(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver._server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
