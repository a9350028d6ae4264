"""Benchmark: the WeCom API gateway against calling the simulator directly, same token.

Run with `.venv/bin/python bench/gateway.py` (`make bench` runs it). Not part of the
test suite.

- The simulator runs as its own process (`python -m sandbox`).
- The platform runs under gunicorn as shipped (docker/gunicorn.conf.py: threaded
  workers, access log on). It registers the simulator's suites and installs one
  third-party tenant the way WeCom does.
- PostgreSQL runs at production durability (bench/support/servers.py); its settings are
  printed with the figures. Redis is a throwaway server.
- The same `user/get` call goes two ways, interleaved round by round, so noisy
  neighbours hit both alike:
  - **direct**: to the simulator, with the tenant's corp token, as a product would
    call WeCom;
  - **gateway**: to `/api/v1/…/wecom/user/get` with the API key. Each call does the
    key lookup, the rate limit, the allowlist, the quota script (Redis), the token read
    (Redis), the simulator, and a durable audit INSERT.
- For reference, the corp access-token endpoint on the same server (key lookup, rate
  limit, token read, durable audit row; no WeCom call): the platform's floor for an
  authenticated, audited request, so the gateway's own share of the cost shows.
- Every side uses a fresh connection per request (as a product's one-off call would),
  and the CPU each process spent per request is printed.
- **Saturation** (closed loop, --connections callers on each side): requests/s.
  TARGET: gateway ≥ 0.5 × direct.
- **Fixed rate** (open loop, --rate req/s, latency from each request's scheduled start):
  p50/p99 of both, and the gateway's added p50/p99.
- Both measurements run twice:
  - at the simulator's own speed (sub-millisecond: the gateway's fixed cost is all
    there is);
  - with --wecom-latency-ms added to every simulator answer (a fault of the
    simulator), about what a call to qyapi.weixin.qq.com takes from a data centre.
- The load generator shares the machine's CPUs: the load average is printed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support.rawload import Result  # noqa: E402
from bench.support.rawload import merged  # noqa: E402
from bench.support.rawload import raw_get  # noqa: E402
from bench.support.servers import cpu_seconds  # noqa: E402
from bench.support.servers import gunicorn_args  # noqa: E402
from bench.support.servers import gunicorn_line  # noqa: E402
from bench.support.servers import pg_settings_line  # noqa: E402
from bench.support.servers import stores  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start")


@contextlib.contextmanager
def process(
    command: list[str], env: dict[str, str], url: str, what: str
) -> Iterator[subprocess.Popen]:
    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(url, child, what)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()


def django_env(database_url: str, redis_url: str, port: int, sim_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "wecom_provider.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-" + base64.b64encode(os.urandom(32)).decode(),
            "FIELD_ENCRYPTION_KEYS": "bench:" + base64.b64encode(os.urandom(32)).decode(),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "WECOM_API_BASE": sim_url,
        }
    )
    return env


# --- load generation -------------------------------------------------------------------------


def request(port: int, raw: bytes) -> int:
    """Send one request on a fresh connection; return the HTTP status (599: no errcode 0
    nor a token in a 200)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    status = int(data.split(b" ", 2)[1])
    good = (b'"errcode": 0', b'"errcode":0', b'"access_token"')
    return status if any(marker in data for marker in good) else 599


def _run(label: str, port: int, raw: bytes, workers: int, due) -> Result:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    started = time.perf_counter()

    def worker() -> None:
        while (start := due()) is not None:
            try:
                ok = request(port, raw) == 200
            except OSError:
                ok = False
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(label, time.perf_counter() - started, latencies, errors[0])


def saturate(label: str, port: int, raw: bytes, connections: int, seconds: float) -> Result:
    """Closed loop: each caller sends its next request as soon as the last is answered."""
    stop_at = time.perf_counter() + seconds

    def due() -> float | None:
        now = time.perf_counter()
        return now if now < stop_at else None

    return _run(label, port, raw, connections, due)


def fixed_rate(label: str, port: int, raw: bytes, rate: float, seconds: float) -> Result:
    """Open loop: request i is due at start + i/rate; latency counts from when it was due."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    counter = iter(range(total))
    lock = threading.Lock()

    def due() -> float | None:
        with lock:
            i = next(counter, None)
        if i is None:
            return None
        when = start + i / rate
        if (delay := when - time.perf_counter()) > 0:
            time.sleep(delay)
        return when

    return _run(label, port, raw, 32, due)


# --- main ------------------------------------------------------------------------------------


PARTS = ("simulator", "gunicorn", "postgres", "redis")


def measure(args, pids: dict, sim_port: int, web_port: int, raws: dict[str, bytes]) -> dict:
    """Interleaved rounds of every side; also the CPU each process spent per request.

    ``token api`` (the corp access-token endpoint on the same server: key lookup, rate
    limit, token read, durable audit row, no WeCom call) is measured in saturation only:
    it is the platform's own floor for an authenticated, audited request.
    """
    direct, gateway = raws["direct"], raws["gateway"]
    sat: dict[str, list[Result]] = {"direct": [], "gateway": [], "token api": []}
    fixed: dict[str, list[Result]] = {"direct": [], "gateway": []}
    cpu = {side: dict.fromkeys(PARTS, 0.0) for side in sat}
    sides = (
        ("direct", sim_port, direct),
        ("gateway", web_port, gateway),
        ("token api", web_port, raws["token api"]),
    )
    for _ in range(args.rounds):
        for label, port, raw in sides:
            before = {part: cpu_seconds(pids[part]) for part in PARTS}
            sat[label].append(saturate(label, port, raw, args.connections, args.seconds))
            for part in PARTS:
                cpu[label][part] += cpu_seconds(pids[part]) - before[part]
        for label, port, raw in (("direct", sim_port, direct), ("gateway", web_port, gateway)):
            fixed[label].append(fixed_rate(label, port, raw, args.rate, args.seconds))
    merged_sat = {k: merged(v) for k, v in sat.items()}
    return {
        "sat": merged_sat,
        "fixed": {k: merged(v) for k, v in fixed.items()},
        "rounds": [g.rate / d.rate for g, d in zip(sat["gateway"], sat["direct"], strict=True)],
        "cpu_ms": {
            side: {
                part: 1000 * spent / max(1, len(merged_sat[side].latencies))
                for part, spent in parts.items()
            }
            for side, parts in cpu.items()
        },
    }


def report(title: str, figures: dict, args) -> float:
    sat, fixed = figures["sat"], figures["fixed"]
    ratio = sat["gateway"].rate / sat["direct"].rate
    print(f"{title}")
    print(f"  saturation, {args.connections} callers each side, {args.seconds:.0f} s per round:")
    print("    " + sat["direct"].line())
    print("    " + sat["gateway"].line())
    print("    " + sat["token api"].line() + "   (the platform's floor, for reference)")
    print(
        f"    ratio gateway/direct {ratio:.2f} (per round: "
        + ", ".join(f"{r:.2f}" for r in figures["rounds"])
        + ")"
    )
    print(f"  fixed rate {args.rate:.0f} req/s, {args.seconds:.0f} s per round:")
    print("    " + fixed["direct"].line())
    print("    " + fixed["gateway"].line())
    added50 = fixed["gateway"].pct(0.5) - fixed["direct"].pct(0.5)
    added99 = fixed["gateway"].pct(0.99) - fixed["direct"].pct(0.99)
    print(f"    added by the gateway: p50 {added50:+.2f} ms, p99 {added99:+.2f} ms")
    for side, parts in figures["cpu_ms"].items():
        spent = ", ".join(f"{part} {ms:.2f}" for part, ms in parts.items())
        print(f"  CPU ms per {side} request: {spent} (total {sum(parts.values()):.2f})")
    return ratio


def main() -> None:
    args = _arguments()
    sim_port, web_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    sim = [sys.executable, "-m", "sandbox", "--port", str(sim_port)]
    with (
        stores() as st,
        process(sim, dict(os.environ), f"{sim_url}/sandbox/config", "the simulator") as simulator,
    ):
        settings_line = pg_settings_line(st.database_url)
        print(settings_line)
        env = django_env(st.database_url, st.redis_url, web_port, sim_url)
        raws = _requests(_setup(env, sim_url))
        web = _gunicorn_command(args, web_port)
        with process(web, env, f"http://127.0.0.1:{web_port}/healthz", "gunicorn") as server:
            pids = {
                "simulator": simulator.pid,
                "gunicorn": server.pid,
                "postgres": st.postmaster_pid,
                "redis": st.redis_pid,
            }
            assert request(sim_port, raws["direct"]) == 200, "direct call failed"
            assert request(web_port, raws["gateway"]) == 200, "gateway call failed"
            saturate("warm-up", web_port, raws["gateway"], args.workers * 2, 2)
            saturate("warm-up", sim_port, raws["direct"], args.connections, 1)
            load_before = os.getloadavg()
            plain = measure(args, pids, sim_port, web_port, raws)
            httpx.post(
                f"{sim_url}/sandbox/faults",
                json={"endpoint": "user/get", "latency_ms": args.wecom_latency_ms},
                trust_env=False,
            )
            slow = measure(args, pids, sim_port, web_port, raws)
            load_after = os.getloadavg()
    print(
        f"{gunicorn_line(args.workers, args.threads)}, the simulator; "
        f"{args.rounds} interleaved rounds; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    _targets(args, plain, slow, settings_line)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, default=max(2, os.cpu_count() or 2), help="gunicorn workers"
    )
    parser.add_argument("--threads", type=int, help="gunicorn threads (default: as shipped)")
    parser.add_argument("--connections", type=int, default=4, help="callers on each side")
    parser.add_argument("--seconds", type=float, default=6.0, help="per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=40.0, help="fixed-rate requests/s")
    parser.add_argument("--wecom-latency-ms", type=int, default=30)
    return parser.parse_args()


def _setup(env: dict[str, str], sim_url: str) -> dict:
    """Migrate and seed the database (bench/support/gateway_setup.py); return its facts."""
    manage = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
    subprocess.run(manage, cwd=ROOT, env=env, check=True)
    setup = subprocess.run(
        [sys.executable, "-m", "bench.support.gateway_setup", sim_url],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(setup.stdout.strip().splitlines()[-1])


def _requests(facts: dict) -> dict[str, bytes]:
    """The raw requests of each side: WeCom direct, through the gateway, the token API."""
    tenant = f"/api/v1/suites/{facts['suite_id']}/corps/{facts['corpid']}"
    return {
        "direct": raw_get(
            f"/cgi-bin/user/get?access_token={facts['token']}&userid={facts['userid']}"
        ),
        "gateway": raw_get(f"{tenant}/wecom/user/get?userid={facts['userid']}", facts["key"]),
        "token api": raw_get(f"{tenant}/access-token/", facts["key"]),
    }


def _gunicorn_command(args: argparse.Namespace, web_port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        *gunicorn_args(threads=args.threads),
        "--bind",
        f"127.0.0.1:{web_port}",
        "--workers",
        str(args.workers),
    ]


def _targets(args: argparse.Namespace, plain: dict, slow: dict, settings_line: str) -> None:
    ratio = report("the simulator at its own speed:", plain, args)
    slow_ratio = report(f"every simulator answer {args.wecom_latency_ms} ms late:", slow, args)
    print(settings_line)
    errors = sum(r.errors for figures in (plain, slow) for r in figures["sat"].values())
    for label, value in (("own speed", ratio), (f"{args.wecom_latency_ms} ms WeCom", slow_ratio)):
        verdict = "PASS" if value >= 0.5 and errors == 0 else "FAIL"
        print(f"TARGET gateway ≥ 0.5 × direct ({label}): {value:.2f} {verdict}")


if __name__ == "__main__":
    main()
