"""Benchmark: the corp access-token endpoint (cache hit) under gunicorn, against a bare
DRF view on the same server.

Run with `.venv/bin/python bench/token_api.py`. Not part of the test suite.

It needs PostgreSQL and Redis: DATABASE_URL / REDIS_URL are used when set (the database
gets a few bench rows; use a throwaway one), otherwise throwaway servers are started
with the helpers `make test` uses (scripts/lib.sh) and removed at the end.

Served by gunicorn as shipped (docker/gunicorn.conf.py: threaded workers, one per CPU,
access log on), with
`bench/support/token_api_urls.py` adding `/bench/bare/`: a DRF view without authentication,
permission or throttling that returns a constant token-shaped body. The token endpoint
does the real work on every request: key lookup, scope check, rate limit (Redis),
token read (Redis, sealed value opened), audit row (INSERT).

Two measurements, each interleaved between the two endpoints:

- fixed rate (open loop, default 200 req/s): latency from each request's *scheduled*
  start (no coordinated omission); targets p99 <= 30 ms;
- saturation (closed loop, N connections): requests/s. The saturation rounds also run
  ``/bench/floor/…``: only the token read's mandated work (key lookup, rate limit,
  token read, durable audit row); target token/floor >= 0.9 (issue 17; the bare
  view's ratio is printed for reference).

PostgreSQL runs on production durability (fsync, synchronous_commit, full_page_writes
on), printed with the figures.

The load generator runs on the same machine and shares its CPUs (reported).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support.rawload import Result  # noqa: E402
from bench.support.rawload import merged  # noqa: E402
from bench.support.rawload import raw_get  # noqa: E402
from bench.support.servers import bench_pg_settings  # noqa: E402
from bench.support.servers import gunicorn_args  # noqa: E402
from bench.support.servers import gunicorn_line  # noqa: E402
from bench.support.servers import pg_settings_line  # noqa: E402
from harness.processes import postgres_server  # noqa: E402
from harness.processes import redis_server  # noqa: E402

# --- infrastructure ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def data_stores() -> Iterator[dict[str, str]]:
    """Yield DATABASE_URL and REDIS_URL: from the environment, or throwaway servers.

    The throwaway PostgreSQL runs on production durability (bench/support/servers.py).
    """
    urls = {k: os.environ[k] for k in ("DATABASE_URL", "REDIS_URL") if os.environ.get(k)}
    with contextlib.ExitStack() as stack:
        if "DATABASE_URL" not in urls:
            pg = stack.enter_context(postgres_server(settings=bench_pg_settings()))
            urls["DATABASE_URL"] = pg.url()
        if "REDIS_URL" not in urls:
            urls["REDIS_URL"] = stack.enter_context(redis_server()).url
        yield urls


def django_env(urls: dict[str, str], port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(urls)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "wecom_provider.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-" + base64.b64encode(os.urandom(32)).decode(),
            "FIELD_ENCRYPTION_KEYS": "bench:" + base64.b64encode(os.urandom(32)).decode(),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "WECOM_API_BASE": "http://127.0.0.1:9",  # never called: the token is stored
        }
    )
    return env


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int, threads: int | None) -> Iterator[None]:
    # The shipped settings (docker/gunicorn.conf.py, access log included), serving the
    # bench's application: the project's URLs plus the two reference views.
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        *gunicorn_args(threads=threads),
        "bench.support.token_api_urls:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--backlog",
        "2048",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request("127.0.0.1", port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


# --- load generation ----------------------------------------------------------------------


def request(host: str, port: int, raw: bytes) -> tuple[int, bytes]:
    """Send one request on a fresh connection (sync workers close it); return (status, body)."""
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def fixed_rate(label: str, port: int, raw: bytes, rate: float, seconds: float) -> Result:
    """Open loop: request i is due at start + i/rate; latency counts from when it was due."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.05
    next_index = [0]

    def worker() -> None:
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= total:
                return
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                status, _ = request("127.0.0.1", port, raw)
                ok = status == 200
            except OSError:
                ok = False
            elapsed = (time.perf_counter() - due) * 1000
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1

    # Enough threads that a slow answer never delays the next scheduled request.
    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(label, time.perf_counter() - start, latencies, errors[0])


def saturate(label: str, port: int, raw: bytes, connections: int, seconds: float) -> Result:
    """Closed loop: ``connections`` callers, each sending its next request at once."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        mine, failed = [], 0
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            try:
                status, _ = request("127.0.0.1", port, raw)
                ok = status == 200
            except OSError:
                ok = False
            if ok:
                mine.append((time.perf_counter() - began) * 1000)
            else:
                failed += 1
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(label, time.perf_counter() - start, latencies, errors[0])


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    args = _arguments()

    port = free_port()
    with data_stores() as urls:
        settings_line = pg_settings_line(urls["DATABASE_URL"])
        print(settings_line)
        env = django_env(urls, port)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        setup = subprocess.run(
            [sys.executable, "-m", "bench.support.token_api_setup"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        key = json.loads(setup.stdout.strip().splitlines()[-1])["key"]
        token_raw = raw_get("/api/v1/suites/wwbenchsuite/corps/wpbenchcorp/access-token/", key)
        bare_raw = raw_get("/bench/bare/", None)
        floor_raw = raw_get("/bench/floor/wwbenchsuite/wpbenchcorp/", key)
        with gunicorn(env, port, args.workers, args.threads):
            status, body = request("127.0.0.1", port, token_raw)
            assert status == 200, body
            assert set(json.loads(body)) == {"access_token", "expires_at", "expires_in"}
            assert request("127.0.0.1", port, bare_raw)[0] == 200
            assert request("127.0.0.1", port, floor_raw)[0] == 200
            fixed, sat = _rounds(
                args, port, {"token": token_raw, "bare": bare_raw, "floor": floor_raw}
            )
    _report(args, settings_line, fixed, sat)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, default=max(2, os.cpu_count() or 2), help="gunicorn workers"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads per worker (default: as shipped)"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="fixed-rate requests/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="per fixed-rate round")
    parser.add_argument("--connections", type=int, default=32, help="saturation callers")
    parser.add_argument("--saturation-seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each")
    return parser.parse_args()


def _rounds(args: argparse.Namespace, port: int, raw: dict[str, bytes]) -> tuple[dict, dict]:
    """Warm up, then run the interleaved rounds; return (fixed-rate, saturation) results."""
    token_raw, bare_raw, floor_raw = raw["token"], raw["bare"], raw["floor"]
    # Warm every worker: connections, imports, the token in Redis.
    saturate("warm-up", port, token_raw, args.connections, 2)
    saturate("warm-up", port, bare_raw, args.connections, 1)

    fixed = {"token": [], "bare": []}
    sat = {"token": [], "bare": [], "floor": []}
    for _ in range(args.rounds):
        # Interleaved, so noisy neighbours and frequency drift hit both alike.
        fixed["bare"].append(fixed_rate("bare DRF view", port, bare_raw, args.rate, args.seconds))
        fixed["token"].append(
            fixed_rate("token endpoint", port, token_raw, args.rate, args.seconds)
        )
        sat["bare"].append(
            saturate("bare DRF view", port, bare_raw, args.connections, args.saturation_seconds)
        )
        sat["token"].append(
            saturate(
                "token endpoint",
                port,
                token_raw,
                args.connections,
                args.saturation_seconds,
            )
        )
        sat["floor"].append(
            saturate(
                "mandated work only",
                port,
                floor_raw,
                args.connections,
                args.saturation_seconds,
            )
        )
    return fixed, sat


def _report(args: argparse.Namespace, settings_line: str, fixed: dict, sat: dict) -> None:
    token_fixed, bare_fixed = merged(fixed["token"]), merged(fixed["bare"])
    token_sat, bare_sat = merged(sat["token"]), merged(sat["bare"])
    floor_sat = merged(sat["floor"])
    per_round = [t.rate / b.rate for t, b in zip(sat["token"], sat["bare"], strict=True)]
    ratio = token_sat.rate / bare_sat.rate
    p99_ok = token_fixed.pct(0.99) <= 30 and token_fixed.errors == 0
    print(f"{gunicorn_line(args.workers, args.threads)}; {args.rounds} interleaved rounds")
    print(f"fixed rate {args.rate:.0f} req/s, {args.seconds:.0f} s per round:")
    print("  " + token_fixed.line())
    print("  " + bare_fixed.line())
    print(f"saturation, {args.connections} connections, {args.saturation_seconds:.0f} s per round:")
    print("  " + token_sat.line())
    print("  " + bare_sat.line())
    print("  " + floor_sat.line())
    print(
        f"ratio token/bare (saturation req/s): {ratio:.2f} "
        f"(per round: {', '.join(f'{r:.2f}' for r in per_round)}; "
        f"median {statistics.median(per_round):.2f})"
    )
    ceiling = floor_sat.rate / bare_sat.rate
    print(
        f"ceiling: the mandated work alone reaches {ceiling:.2f} of the bare view; the "
        f"token endpoint reaches {ratio / ceiling:.2f} of that ceiling"
    )
    floor_ratio = token_sat.rate / floor_sat.rate
    floor_rounds = [t.rate / f.rate for t, f in zip(sat["token"], sat["floor"], strict=True)]
    print(settings_line)
    print(
        f"TARGET p99 ≤ 30 ms at {args.rate:.0f} req/s: {token_fixed.pct(0.99):.2f} ms "
        f"(baseline bare view {bare_fixed.pct(0.99):.2f} ms) {'PASS' if p99_ok else 'FAIL'}"
    )
    print(
        f"TARGET token/floor ≥ 0.9: {floor_ratio:.2f} (baseline floor {floor_sat.rate:.0f} req/s, "
        f"token {token_sat.rate:.0f} req/s; per round "
        + ", ".join(f"{r:.2f}" for r in floor_rounds)
        + f") {'PASS' if floor_ratio >= 0.9 and token_sat.errors == 0 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
