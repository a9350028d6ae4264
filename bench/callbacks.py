"""Benchmark: the callback URL under gunicorn + PostgreSQL, against a bare Django view.

Run with `.venv/bin/python bench/callbacks.py` (`make bench` runs it too). Not part of
the test suite. Needs the PostgreSQL and Redis binaries `make test` installs: it starts
throwaway servers (or uses BENCH_DATABASE_URL / BENCH_REDIS_URL), migrates, registers
a suite and serves the platform with gunicorn as shipped (docker/gunicorn.conf.py:
threaded workers, one per CPU; Redis up, no Celery worker, so each callback's row is
also handed off to the broker, as in production). PostgreSQL keeps its durable
defaults (fsync, synchronous_commit, full_page_writes on; bench/support/servers.py).

A load generator in a second process (bench/support/loadgen.py) sends distinct, validly
encrypted change_contact callbacks:

* open loop at a fixed rate (100/s for 20 s): p50 / p99 latency, measured from each
  request's scheduled start. Target: p99 ≤ 100 ms.
* closed loop (N clients back to back, default 32: more than the server's request
  threads, so the server, not the clients, sets the pace): maximum throughput.

Both run against the callback URL and against a bare view returning ``success`` behind
the same gunicorn and the full middleware stack (bench/support/urls.py, bench-only):
the issue's baseline. Target: the callback URL keeps at least half of the bare view's
throughput (ratio ≥ 0.5). Rounds alternate, and CPU time per request of every process
involved (gunicorn, PostgreSQL, Redis, load generator) is printed beside throughput:
on a shared machine it is the steadier figure, and bare CPU / callback CPU is what the
throughput ratio tends to when the CPUs are the limit.

Callbacks answered together share one upsert and one commit (callbacks/groupcommit.py):
the bench prints how many callbacks each statement stored (rows per transaction id).

In production, callback URLs are served by a lean Django handler that runs only
settings.CALLBACK_MIDDLEWARE (wecom_provider/wsgi.py). So the closed loop also runs the
bare view behind that handler (/callbacks/bench-bare/) and prints the second ratio,
callback URL against it: the cost of the callback work alone (verify, decrypt, parse,
insert, hand-off), without the handler's saving. And it runs /callbacks/bench-insert/,
which only stores the row (same statement and group commit, same handler): the ceiling
of the ratio for any URL that stores a callback durably before answering.

Then one web process acknowledges callbacks and one Celery worker process drains them
(target: it drains at ≥ 0.5× the rate the web process acknowledges), and the RSS of both
over three repeats (target: growth ≤ 10 %).

``--profile DIR`` profiles sync workers instead (cProfile follows one thread).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support.servers import Stores  # noqa: E402
from bench.support.servers import cpu_seconds  # noqa: E402
from bench.support.servers import gunicorn_args  # noqa: E402
from bench.support.servers import gunicorn_line  # noqa: E402
from bench.support.servers import pg_settings_line  # noqa: E402
from bench.support.servers import rss_mb  # noqa: E402
from bench.support.servers import stores  # noqa: E402
from harness.processes import celery_worker  # noqa: E402
from harness.processes import django_env  # noqa: E402
from harness.processes import gunicorn_server  # noqa: E402

PROVIDER = "wwbenchprovider"
SUITE_ID = "wwbenchsuite0001"
CORPID = "wpbenchcorp0001"
TOKEN = "benchToken"
AES_KEY = base64.b64encode(b"bench-callbacks-aes-key-32-bytes").decode()[:43]


def platform_env(database_url: str, redis_url: str) -> dict[str, str]:
    return django_env(
        DJANGO_SETTINGS_MODULE="bench.support.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-" + base64.b64encode(os.urandom(32)).decode(),
        FIELD_ENCRYPTION_KEYS="bench1:" + base64.b64encode(os.urandom(32)).decode(),
        PUBLIC_BASE_URL="http://127.0.0.1",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def prepare(env: dict[str, str]) -> None:
    manage(env, "migrate", "--noinput")
    secrets = {
        "WECOM_PROVIDER_CORPID": PROVIDER,
        "WECOM_PROVIDER_SECRET": "bench-provider-secret",
        "WECOM_PROVIDER_TOKEN": TOKEN,
        "WECOM_PROVIDER_AES_KEY": AES_KEY,
        "WECOM_SUITE_ID": SUITE_ID,
        "WECOM_SUITE_SECRET": "bench-suite-secret",
        "WECOM_SUITE_TOKEN": TOKEN,
        "WECOM_SUITE_AES_KEY": AES_KEY,
    }
    manage({**env, **secrets}, "register_provider")
    manage({**env, **secrets}, "register_suite")


def load(servers: Stores, web, path: str, tag: str, **spec) -> dict:
    """Run one load generator process; return its figures, with CPU ms per request."""
    spec = {
        "host": "127.0.0.1",
        "port": web.port,
        "path": path,
        "suite_id": SUITE_ID,
        "token": TOKEN,
        "aes_key": AES_KEY,
        "corpid": CORPID,
        "tag": tag + os.urandom(3).hex(),
        "warmup": 40,
        **spec,
    }
    roots = {
        "gunicorn": web.process.pid,
        "postgres": servers.postmaster_pid,
        "redis": servers.redis_pid,
    }
    before = {name: cpu_seconds(pid) for name, pid in roots.items()}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "support" / "loadgen.py"), json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"load generator failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout)
    # Server CPU covers the warm-up too: divide by every request the servers answered.
    figures["cpu_ms"] = {
        name: (cpu_seconds(pid) - before[name]) * 1000 / max(1, figures["requests"])
        for name, pid in roots.items()
    }
    figures["cpu_ms"]["loadgen"] = figures["loadgen_cpu_ms"]
    return figures


def describe(label: str, figures: dict) -> str:
    errors = sum(figures["errors"].values())
    line = (
        f"  {label:<28} {figures['ok']:>6} ok  {figures['throughput']:>8.1f}/s  "
        f"p50 {figures['p50']:>7.2f} ms  p99 {figures['p99']:>7.2f} ms  "
        f"max {figures['max_ms']:>7.2f} ms"
    )
    if errors:
        line += f"  ERRORS {figures['errors']}"
    return line


def inbox_last_id(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url, connect_timeout=5) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM callbacks_callbackevent").fetchone()[
            0
        ]


def inbox_statements(database_url: str, after_id: int) -> tuple[int, int]:
    """(callback rows stored after ``after_id``, statements that stored them): rows one
    statement inserted share its transaction id (xmin; the bench sends no duplicate)."""
    import psycopg

    with psycopg.connect(database_url, connect_timeout=5) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT xmin::text) FROM callbacks_callbackevent "
            "WHERE id > %s AND route_id <> 'bench'",
            [after_id],
        ).fetchone()


def inbox_rows(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url, connect_timeout=5) as conn:
        # Rows of the insert-only reference view (route_id 'bench') are not callbacks.
        query = "SELECT count(*) FROM callbacks_callbackevent WHERE route_id <> 'bench'"
        return conn.execute(query).fetchone()[0]


def drain(database_url: str, env: dict[str, str], timeout: float) -> dict:
    """Start one Celery worker process (concurrency 1) on the rows the bench stored
    (their batches wait in the broker) and time it from its first finished row to its
    last: the rate one worker process drains contact-change callbacks."""
    import time

    import psycopg

    pending = (
        "SELECT count(*) FROM callbacks_callbackevent "
        "WHERE route_id <> 'bench' AND status IN ('pending', 'processing')"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        before = conn.execute(pending).fetchone()[0]
        deadline = time.monotonic() + timeout
        rss: list[float] = []  # worker RSS after each third of the rows
        with celery_worker(env=env, concurrency=1) as worker:
            cpu_before = cpu_seconds(worker.pid)
            while (left := conn.execute(pending).fetchone()[0]) and time.monotonic() < deadline:
                if len(rss) < 2 and before - left >= before * (len(rss) + 1) / 3:
                    rss.append(rss_mb(worker.pid))
                time.sleep(0.5)
            rss.append(rss_mb(worker.pid))
            cpu = cpu_seconds(worker.pid) - cpu_before
        left = conn.execute(pending).fetchone()[0]
        done, first, last = conn.execute(
            "SELECT count(*), min(processed_at), max(processed_at) FROM callbacks_callbackevent "
            "WHERE route_id <> 'bench' AND status = 'done'"
        ).fetchone()
        failed = conn.execute(
            "SELECT count(*) FROM callbacks_callbackevent "
            "WHERE route_id <> 'bench' AND status NOT IN ('done', 'pending', 'processing')"
        ).fetchone()[0]
    seconds = (last - first).total_seconds() if done > 1 else 0.0
    return {
        "rows": before,
        "done": done,
        "left": left,
        "failed": failed,
        "rate": (done - 1) / seconds if seconds else 0.0,
        "cpu_ms": cpu * 1000 / max(1, done),
        "rss": rss,
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def combine(rounds: list[dict]) -> dict:
    """Merge closed-loop rounds: counts and time add up; latency figures are the worst."""
    ok = sum(r["ok"] for r in rounds)
    duration = sum(r["duration"] for r in rounds)
    errors: dict[str, int] = {}
    for r in rounds:
        for key, count in r["errors"].items():
            errors[key] = errors.get(key, 0) + count
    return {
        "ok": ok,
        "duration": duration,
        "throughput": ok / duration if duration else 0.0,
        "errors": errors,
        **{key: max(r[key] for r in rounds) for key in ("p50", "p90", "p99", "max_ms")},
        "cpu_ms": {
            name: sum(r["cpu_ms"][name] * r["ok"] for r in rounds) / max(1, ok)
            for name in rounds[0]["cpu_ms"]
        },
    }


def profile(args) -> int:
    import pstats

    directory = Path(args.profile).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    closed_spec = {
        "mode": "closed",
        "concurrency": args.concurrency,
        "duration": args.round_duration * args.rounds,
        "max_requests": int(2000 * args.round_duration * args.rounds),
    }
    config = str(ROOT / "bench" / "support" / "gunicorn_profile.py")
    with stores() as servers:
        env = platform_env(servers.database_url, servers.redis_url)
        env["BENCH_PROFILE_DIR"] = str(directory)
        prepare(env)
        with gunicorn_server(env, workers=args.workers, args=("-c", config)) as web:
            figures = load(
                servers, web, f"/callbacks/suite/{SUITE_ID}/command/", "p", **closed_spec
            )
    print(describe("callback URL (profiled)", figures))
    files = sorted(str(f) for f in directory.glob("worker-*.prof"))
    if not files:
        print("no profile written (workers did not exit cleanly)")
        return 1
    stats = pstats.Stats(*files)
    stats.sort_stats("cumulative").print_stats(40)
    return 0


def main() -> int:
    args = _arguments()
    if args.profile:
        return profile(args)
    print(
        f"callbacks: load average {os.getloadavg()[0]:.1f}; open loop {args.rate:g}/s × "
        f"{args.duration:g} s; closed loop {args.concurrency} clients, {args.rounds} × "
        f"{args.round_duration:g} s per URL, interleaved"
    )
    print(gunicorn_line(args.workers, args.threads))
    runs = _measure(args)
    _figures(args, runs)
    return _targets(args, runs)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, default=max(2, os.cpu_count() or 2), help="gunicorn workers"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads per worker (default: as shipped)"
    )
    parser.add_argument("--rate", type=float, default=100, help="open-loop callbacks per second")
    parser.add_argument("--duration", type=float, default=20, help="open-loop seconds")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop clients")
    parser.add_argument(
        "--rounds", type=int, default=3, help="closed-loop rounds, callback and bare alternating"
    )
    parser.add_argument("--round-duration", type=float, default=5, help="seconds per round")
    parser.add_argument(
        "--drain-timeout", type=float, default=300, help="seconds one worker may take to drain"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="instead: profile sync workers (cProfile, CPU time) under closed-loop callbacks, "
        "write DIR/worker-<pid>.prof and print the top functions",
    )
    return parser.parse_args()


def _measure(args: argparse.Namespace) -> dict:
    """Run every load against the callback URL and its baselines; return the figures."""
    callback_path = f"/callbacks/suite/{SUITE_ID}/command/"
    bare_path = "/bench/bare/"
    lean_bare_path = "/callbacks/bench-bare/"
    insert_path = "/callbacks/bench-insert/"
    open_spec = {"mode": "open", "rate": args.rate, "duration": args.duration}
    closed_spec = {
        "mode": "closed",
        "concurrency": args.concurrency,
        "duration": args.round_duration,
        "max_requests": int(4000 * args.round_duration),
    }
    server = gunicorn_args(threads=args.threads)
    with stores() as servers:
        settings_line = pg_settings_line(servers.database_url)
        print(settings_line)
        env = platform_env(servers.database_url, servers.redis_url)
        prepare(env)
        rows_before = inbox_rows(servers.database_url)
        with gunicorn_server(env, workers=args.workers, args=server) as web:
            callback_open = load(servers, web, callback_path, "o", **open_spec)
            bare_open = load(servers, web, bare_path, "b", **open_spec)
            # Alternate short rounds: a machine whose background load drifts hits all alike.
            callback_rounds, bare_rounds, lean_rounds, insert_rounds = [], [], [], []
            web_rss: list[float] = []  # gunicorn workers' RSS after each callback round
            stored_by = [0, 0]  # closed-loop callbacks stored, statements that stored them
            for n in range(args.rounds):
                last_id = inbox_last_id(servers.database_url)
                callback_rounds.append(load(servers, web, callback_path, f"c{n}", **closed_spec))
                rows, statements = inbox_statements(servers.database_url, last_id)
                stored_by = [stored_by[0] + rows, stored_by[1] + statements]
                web_rss.append(rss_mb(web.process.pid))
                bare_rounds.append(load(servers, web, bare_path, f"d{n}", **closed_spec))
                lean_rounds.append(load(servers, web, lean_bare_path, f"l{n}", **closed_spec))
                insert_rounds.append(load(servers, web, insert_path, f"i{n}", **closed_spec))
            log = web.log_tail(3000)
        # Processing keeps up: one web process acknowledging, then one worker draining.
        with gunicorn_server(env, workers=1, args=server) as one:
            single = load(servers, one, callback_path, "s", **closed_spec)
        stored = inbox_rows(servers.database_url) - rows_before
        drained = drain(servers.database_url, env, timeout=args.drain_timeout)
    return {
        "settings_line": settings_line,
        "stored_by": stored_by,
        "callback_open": callback_open,
        "bare_open": bare_open,
        "callback_rounds": callback_rounds,
        "bare_rounds": bare_rounds,
        "lean_rounds": lean_rounds,
        "insert_rounds": insert_rounds,
        "web_rss": web_rss,
        "log": log,
        "single": single,
        "stored": stored,
        "drained": drained,
    }


def _figures(args: argparse.Namespace, runs: dict) -> None:
    callback_rounds, bare_rounds = runs["callback_rounds"], runs["bare_rounds"]
    lean_rounds, insert_rounds = runs["lean_rounds"], runs["insert_rounds"]
    callback_open, bare_open, single = runs["callback_open"], runs["bare_open"], runs["single"]
    stored, drained, stored_by = runs["stored"], runs["drained"], runs["stored_by"]
    callback_closed, bare_closed = combine(callback_rounds), combine(bare_rounds)
    lean_closed, insert_closed = combine(lean_rounds), combine(insert_rounds)

    print(f"open loop, {args.rate:g}/s (latency from the scheduled send):")
    print(describe("callback URL", callback_open))
    print(describe("bare view", bare_open))
    print(f"closed loop, {args.concurrency} clients:")
    print(describe("callback URL", callback_closed))
    print(describe("bare view", bare_closed))
    print(describe("bare view, callback handler", lean_closed))
    print(describe("insert only, callback handler", insert_closed))
    per_round = [
        c["throughput"] / b["throughput"] for c, b in zip(callback_rounds, bare_rounds, strict=True)
    ]

    sent = callback_open["ok"] + callback_closed["ok"] + single["ok"]
    ratio = callback_closed["throughput"] / bare_closed["throughput"]
    p99 = callback_open["p99"]
    print(f"inbox rows stored: {stored} (callbacks answered success, warm-up excluded: {sent})")
    print(
        f"group commit: {stored_by[0]} closed-loop callbacks stored by {stored_by[1]} statements "
        f"({stored_by[0] / max(1, stored_by[1]):.1f} callbacks per statement and commit)"
    )
    print(f"p99 at {args.rate:g}/s: {p99:.2f} ms (target ≤ 100 ms)")
    print(
        f"throughput ratio callback/bare: {ratio:.2f} (target ≥ 0.5; per round "
        + ", ".join(f"{r:.2f}" for r in per_round)
        + f"); load average now {os.getloadavg()[0]:.1f}"
    )
    lean_ratio = callback_closed["throughput"] / lean_closed["throughput"]
    print(
        f"throughput ratio callback/bare view behind the same lean handler: {lean_ratio:.2f} "
        "(the callback work alone; informational)"
    )
    ceiling = insert_closed["throughput"] / bare_closed["throughput"]
    print(
        f"ceiling: the durable insert alone reaches {ceiling:.2f} of the bare view; the "
        f"callback URL reaches {ratio / ceiling:.2f} of that ceiling"
    )
    print("CPU per request (ms, closed loop; steadier than throughput on a shared machine):")
    for label, f in (
        ("callback URL", callback_closed),
        ("bare view", bare_closed),
        ("bare view, callback handler", lean_closed),
        ("insert only, callback handler", insert_closed),
    ):
        parts = "  ".join(f"{name} {ms:.2f}" for name, ms in f["cpu_ms"].items())
        print(f"  {label:<28} {parts}  total {sum(f['cpu_ms'].values()):.2f}")
    cpu_ratio = sum(bare_closed["cpu_ms"].values()) / sum(callback_closed["cpu_ms"].values())
    print(
        f"CPU ratio bare/callback (all processes): {cpu_ratio:.2f} (what the throughput "
        "ratio tends to when the CPUs are the limit; informational)"
    )
    print(describe("callback URL, 1 web process", single))
    print(
        f"one worker process drained {drained['done']} of {drained['rows']} stored callbacks "
        f"at {drained['rate']:.1f}/s ({drained['cpu_ms']:.2f} ms worker CPU per row; "
        f"{drained['failed']} failed, {drained['left']} left)"
    )
    print(gunicorn_line(args.workers, args.threads))


def _targets(args: argparse.Namespace, runs: dict) -> int:
    callback_rounds, bare_rounds = runs["callback_rounds"], runs["bare_rounds"]
    lean_rounds, insert_rounds = runs["lean_rounds"], runs["insert_rounds"]
    callback_open, bare_open, single = runs["callback_open"], runs["bare_open"], runs["single"]
    stored, drained, web_rss = runs["stored"], runs["drained"], runs["web_rss"]
    callback_closed, bare_closed = combine(callback_rounds), combine(bare_rounds)
    settings_line, log = runs["settings_line"], runs["log"]
    sent = callback_open["ok"] + callback_closed["ok"] + single["ok"]
    ratio = callback_closed["throughput"] / bare_closed["throughput"]
    p99 = callback_open["p99"]
    drain_ratio = drained["rate"] / single["throughput"] if single["throughput"] else 0.0
    print(settings_line)
    print(
        f"TARGET ingest/bare ≥ 0.5: {ratio:.2f} (baseline bare view "
        f"{bare_closed['throughput']:.0f}/s, callback {callback_closed['throughput']:.0f}/s) "
        f"{verdict(ratio >= 0.5)}"
    )
    print(f"TARGET p99 at {args.rate:g}/s ≤ 100 ms: {p99:.2f} ms {verdict(p99 <= 100)}")
    print(
        f"TARGET one worker drains ≥ 0.5× one web process acks: {drain_ratio:.2f} (baseline "
        f"{single['throughput']:.0f}/s acknowledged, {drained['rate']:.0f}/s drained) "
        f"{verdict(drain_ratio >= 0.5 and not drained['left'] and not drained['failed'])}"
    )
    for label, series in (("web workers", web_rss), ("Celery worker", drained["rss"])):
        growth = series[-1] / series[0] - 1 if len(series) >= 3 and series[0] else float("nan")
        print(
            f"TARGET memory, {label} RSS growth ≤ 10 % over 3 repeats: {growth * 100:+.1f} % "
            f"(baseline {series[0] if series else float('nan'):.1f} MB; "
            + ", ".join(f"{mb:.1f}" for mb in series)
            + f" MB) {verdict(len(series) >= 3 and growth <= 0.10)}"
        )
    figures = [callback_open, bare_open, *callback_rounds, *bare_rounds, *lean_rounds]
    figures += [*insert_rounds, single]
    errors = sum(sum(f["errors"].values()) for f in figures)
    if errors:
        print(f"{errors} request(s) failed; gunicorn log tail:\n{log}")
    return 1 if errors or stored < sent else 0


if __name__ == "__main__":
    sys.exit(main())
