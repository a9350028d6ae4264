"""Load generator for bench/callbacks.py: a separate process, raw sockets, no Django.

    python bench/support/loadgen.py '<json spec>'   → one JSON result line on stdout

Spec: host, port, path, suite_id, token, aes_key, corpid, tag, mode ("open" | "closed"),
rate and duration (open), concurrency, duration and max_requests (closed), warmup,
expect (the body a good answer carries).

Every request is a distinct, validly signed and encrypted change_contact callback (the
inbox dedupes identical ones, which would measure a different path). Requests are built
before the clock starts; each uses its own connection (gunicorn's sync workers close
it after every answer).

open: requests leave on a fixed schedule (``rate`` per second) whatever the answers do;
latency runs from the scheduled start, so a stall is charged to every request it delays
(no coordinated omission). closed: ``concurrency`` clients send back to back.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wecom.crypto import CallbackCrypto


def payload(spec: dict, n: int, ts: int) -> str:
    userid = f"{spec['tag']}u{n:06d}"
    return (
        f"<xml><SuiteId><![CDATA[{spec['suite_id']}]]></SuiteId>"
        f"<AuthCorpId><![CDATA[{spec['corpid']}]]></AuthCorpId>"
        "<InfoType><![CDATA[change_contact]]></InfoType>"
        f"<TimeStamp>{ts}</TimeStamp><ChangeType><![CDATA[create_user]]></ChangeType>"
        f"<UserID><![CDATA[{userid}]]></UserID><Name><![CDATA[张三{n}]]></Name>"
        "<Department><![CDATA[1,2]]></Department><MainDepartment>1</MainDepartment>"
        "<Mobile><![CDATA[13800000000]]></Mobile><Position><![CDATA[产品经理]]></Position>"
        "<Gender>1</Gender><Status>1</Status></xml>"
    )


def build_requests(spec: dict, count: int) -> list[bytes]:
    crypto = CallbackCrypto(spec["token"], spec["aes_key"], spec["suite_id"])
    ts = int(time.time())
    host = f"{spec['host']}:{spec['port']}"
    requests = []
    for n in range(count):
        nonce = secrets.token_hex(8)
        encrypt, signature = crypto.encrypt(payload(spec, n, ts), str(ts), nonce)
        body = (
            f"<xml><ToUserName><![CDATA[{spec['suite_id']}]]></ToUserName>"
            f"<AgentID><![CDATA[]]></AgentID><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        ).encode()
        query = urlencode({"msg_signature": signature, "timestamp": ts, "nonce": nonce})
        head = (
            f"POST {spec['path']}?{query} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        requests.append(head + body)
    return requests


def exchange(address: tuple[str, int], request: bytes) -> tuple[int, bytes]:
    """Send one request on a new connection; return (status, body)."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


class Results:
    def __init__(self, expect: bytes) -> None:
        self.expect = expect
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.lock = threading.Lock()

    def record(self, started: float, outcome: tuple[int, bytes] | Exception) -> None:
        elapsed = time.perf_counter() - started
        with self.lock:
            if isinstance(outcome, Exception):
                key = type(outcome).__name__
            elif outcome != (200, self.expect):
                key = f"HTTP {outcome[0]} {outcome[1][:40]!r}"
            else:
                self.latencies.append(elapsed)
                return
            self.errors[key] = self.errors.get(key, 0) + 1


def send(address, request: bytes, started: float, results: Results) -> None:
    try:
        outcome: tuple[int, bytes] | Exception = exchange(address, request)
    except OSError as exc:
        outcome = exc
    results.record(started, outcome)


def run_open(spec: dict, requests: list[bytes], results: Results) -> float:
    address = (spec["host"], spec["port"])
    interval = 1.0 / spec["rate"]
    with ThreadPoolExecutor(max_workers=spec.get("threads", 64)) as pool:
        start = time.perf_counter() + 0.05
        for i, request in enumerate(requests):
            scheduled = start + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, address, request, scheduled, results)
    return time.perf_counter() - start


def run_closed(spec: dict, requests: list[bytes], results: Results) -> float:
    address = (spec["host"], spec["port"])
    feed = iter(requests)
    feed_lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + spec["duration"]

    def client() -> None:
        while time.perf_counter() < deadline:
            with feed_lock:
                request = next(feed, None)
            if request is None:
                return
            send(address, request, time.perf_counter(), results)

    threads = [threading.Thread(target=client) for _ in range(spec["concurrency"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    spec = json.loads(sys.argv[1])
    expect = spec.get("expect", "success").encode()
    if spec["mode"] == "open":
        count = int(spec["rate"] * spec["duration"])
    else:
        count = spec.get("max_requests", 20000)
    requests = build_requests(spec, spec.get("warmup", 0) + count)
    warmup, requests = requests[: spec.get("warmup", 0)], requests[spec.get("warmup", 0) :]
    throwaway = Results(expect)
    with ThreadPoolExecutor(max_workers=4) as pool:  # connections, caches, imports
        for request in warmup:
            pool.submit(send, (spec["host"], spec["port"]), request, time.perf_counter(), throwaway)
    cpu = time.process_time()
    if spec["mode"] == "open":
        duration = run_open(spec, requests, results := Results(expect))
    else:
        duration = run_closed(spec, requests, results := Results(expect))
    cpu = time.process_time() - cpu
    lat = results.latencies
    ms = {f"p{int(q * 100)}": round(percentile(lat, q) * 1000, 2) for q in (0.5, 0.9, 0.99)}
    print(
        json.dumps(
            {
                "ok": len(lat),
                "errors": results.errors,
                "warmup_errors": throwaway.errors,
                "duration": round(duration, 3),
                "requests": len(warmup) + len(lat) + sum(results.errors.values()),
                "loadgen_cpu_ms": round(cpu / max(1, len(lat)) * 1000, 3),
                "throughput": round(len(lat) / duration, 1) if duration else 0.0,
                "max_ms": round(max(lat, default=float("nan")) * 1000, 2),
                **ms,
            }
        )
    )


if __name__ == "__main__":
    main()
