"""Benchmark: the platform at 10 000 tenants, under the outbound ceiling to WeCom.

Run with `.venv/bin/python bench/scale.py [options]` (`make bench`: the defaults); not in
the test suite. PostgreSQL runs durable (bench/support/servers.py), settings printed.

Four phases, each printing its figures, target and PASS/FAIL:

1. Beat tick cost at --tick-sizes tenants (default 1 000 and 10 000 credential rows,
   --tick-due of them due): SQL statements per tick, their time (client round trips
   and PostgreSQL's own execution time from EXPLAIN ANALYZE), and how many index
   entries the due scan read. Target: the same statements at every size, reading
   only due rows. The tick is the real task (tenants.tokens_refresh_due) publishing
   to the real broker.
2. A simulated day (--hours, default 24) of --corps authorizations (default 1 000;
   `--corps 10000` is the issue's size, ~10× longer) installed through the simulator,
   with an accelerated clock (time_machine moves this process and the in-process
   simulator together): beat every 60 s with four refresh threads and the tick budget
   the production ceiling allows, products reading at random moments.
   get_corp_token calls per corp per day (max, p50; target ≤ 14) and the busiest tick's
   call rate (calls in that simulated minute / 60; target ≤ the ceiling, i.e. the
   ceiling carries the day). The accelerated clock makes real-time rate limiting
   meaningless here, so this phase runs with the ceiling lifted; the ceiling itself is
   measured in phase 3, in real time.
3. A create_auth burst: --burst distinct corps (default 1 000) installed in the
   simulator, which pushes their encrypted create_auth callbacks to gunicorn (as
   shipped, docker/gunicorn.conf.py); --celery-concurrency Celery worker processes
   exchange the auth codes; the simulator answers every API call 200 ms late
   (--latency-ms); every process shares the ceiling (--ceiling, default 10/s). An
   install's follow-up reads (auth info, admins, permissions, corp token) give way to
   the exchanges (tenants.install_follow_up). Every permanent code stored, p99 ack →
   stored ≤ 60 s, none stored past the code's 10-minute life, and the peak call rate ≤
   the ceiling, counted from the limiter's own grants (WECOM_RATE_LEDGER: every grant's
   time on Redis' clock; the simulator's arrival times, stamped inside this loaded
   process, are printed beside them). At 10/s the ceiling alone puts p99 at ≥ 99 s for
   1 000 codes (one get_permanent_code each): the bench prints that floor from the
   measured grant rate, and with --also-ceiling N repeats the burst at N/s to show
   what the platform does when the ceiling is not the limit.
4. Memory: RSS of the gunicorn workers and of the Celery worker once the burst's work
   is done (follow-ups included), then after each of three repeats (--memory-corps
   installs each, also waited out). Target: growth ≤ 10 % over the three repeats.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import statistics
import sys
import threading
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.callbacks import platform_env  # noqa: E402
from bench.support import scale_report  # noqa: E402
from bench.support.quiesce import wait_until_quiet  # noqa: E402
from bench.support.servers import gunicorn_args  # noqa: E402
from bench.support.servers import pg_settings_line  # noqa: E402
from bench.support.servers import rss_mb  # noqa: E402
from bench.support.servers import stores  # noqa: E402
from harness.processes import celery_worker  # noqa: E402
from harness.processes import gunicorn_server  # noqa: E402

STEP = 60  # seconds between beat ticks (the production schedule)


class SqlMeter:
    """Counts and times every SQL statement this process sends (connection.execute_wrapper)."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


@contextlib.contextmanager
def metered():
    from django.db import connection

    meter = SqlMeter()
    with connection.execute_wrapper(meter):
        yield meter


# --- phase 1: the tick at several sizes ---------------------------------------------------


def tick_cost(sizes: list[int], due: int, repeats: int, broker) -> list[dict]:
    from django.db import connection
    from django.utils import timezone

    from tenants import credentials
    from tenants import tasks
    from tenants.models import CredentialToken

    now = timezone.now()
    CredentialToken.objects.bulk_create(
        CredentialToken(
            kind="corp",
            owner_key=f"corp:wwbenchtick:due{i:05d}",
            refresh_after=now - timedelta(seconds=1 + i),
        )
        for i in range(due)
    )
    have, results = 0, []
    for size in sorted(sizes):
        later = [
            CredentialToken(
                kind="corp",
                owner_key=f"corp:wwbenchtick:later{i:05d}",
                refresh_after=now + timedelta(seconds=3600 + (i * 7919) % 80_000),
            )
            for i in range(have, size - due)
        ]
        CredentialToken.objects.bulk_create(later, batch_size=5000)
        have = size - due
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE tenants_credentialtoken")
        counts, round_trips, started = [], [], []
        for _ in range(repeats):
            _forget_queued(broker)
            with metered() as meter:
                started.append(tasks.tokens_refresh_due())
            counts.append(meter.count)
            round_trips.append(meter.seconds * 1000)
        plan = _explain(credentials, tasks)
        results.append(
            {
                "tenants": CredentialToken.objects.count(),
                "queries": max(counts),
                "queries_min": min(counts),
                "sql_ms": statistics.median(round_trips),
                "pg_ms": plan["Execution Time"],
                "index_rows": plan["index_rows"],
                "index": plan["index"],
                "seq_scan": plan["seq_scan"],
                "started": max(started),
            }
        )
    CredentialToken.objects.filter(owner_key__startswith="corp:wwbenchtick:").delete()
    _forget_queued(broker)
    return results


def _forget_queued(broker) -> None:
    """Drop the bench's queued refresh messages and their marks (nothing consumes them)."""
    broker.delete("default")
    marks = list(broker.scan_iter("wcp:refresh-queued:*", count=5000))
    if marks:
        broker.delete(*marks)


def _explain(credentials, tasks) -> dict:
    from django.db import connection
    from django.utils import timezone

    from tenants.models import CredentialToken

    query = (
        CredentialToken.objects.filter(refresh_enabled=True, refresh_after__lte=timezone.now())
        .order_by("refresh_after")
        .values_list("owner_key", flat=True)[: tasks.refreshes_per_tick()]
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0][0]
    nodes, todo = [], [plan["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", []))
    index_nodes = [n for n in nodes if n["Node Type"] in ("Index Scan", "Bitmap Index Scan")]
    return {
        "Execution Time": plan["Execution Time"],
        "index_rows": sum(n["Actual Rows"] for n in index_nodes),
        "index": ",".join(n.get("Index Name", "?") for n in index_nodes) or "none",
        "seq_scan": any(n["Node Type"] == "Seq Scan" for n in nodes),
    }


# --- phase 2: the simulated day -----------------------------------------------------------


def simulated_day(corps: int, hours: float, mode: str, budget: int, product_reads: int) -> dict:
    import time_machine
    from django.test import override_settings

    from harness.platform import register_platform
    from sandbox import start_sandbox
    from tenants import services

    handle = start_sandbox(ticket_interval=0)
    # The clock is accelerated: a real-time ceiling would stretch the day to real hours.
    lifted = override_settings(
        WECOM_API_BASE=handle.base_url,
        WECOM_INSTALL_BASE=handle.base_url,
        WECOM_MAX_CALLS_PER_SECOND=1_000_000,
    )
    lifted.enable()
    try:
        platform = register_platform(handle)
        control = platform.control
        control.settings(token_mode=mode, token_renew_window=0)
        suite_id = platform.suite.suite_id
        start = datetime.fromtimestamp(handle.state.clock.now(), tz=UTC)
        setup_started = time.monotonic()
        with time_machine.travel(start, tick=False) as clock:
            for index in range(corps):
                corp = control.add_corp(name=f"Scale corp {index}")
                code = control.install(suite_id, corp["corpid"], push=False)
                services.authorization_install(
                    suite=platform.suite, auth_code=code["auth_code"], source="callback"
                )
            setup_seconds = time.monotonic() - setup_started
            day_started = time.monotonic()
            day = _run_day(platform, handle, clock, hours=hours, budget=budget, reads=product_reads)
            day_seconds = time.monotonic() - day_started
    finally:
        lifted.disable()
        handle.stop()
    calls = day["calls"]
    per_tick = day["per_tick"]
    tick_queries = day["tick_queries"]
    tick_sql_ms = day["tick_sql_ms"]
    served = day["served"]
    expired = day["expired"]
    per_corp = sorted(calls.values())
    return {
        "corps": corps,
        "corps_called": len(per_corp),
        "max": per_corp[-1] if per_corp else 0,
        "p50": per_corp[len(per_corp) // 2] if per_corp else 0,
        "scale": 24 / hours,
        "peak_rate": max(per_tick) / STEP if per_tick else 0.0,
        "tick_queries": (min(tick_queries), max(tick_queries)),
        "tick_sql_ms": (statistics.median(tick_sql_ms), max(tick_sql_ms)),
        "served": served,
        "expired": expired,
        "setup_s": setup_seconds,
        "day_s": day_seconds,
    }


def _run_day(platform, handle, clock, *, hours: float, budget: int, reads: int) -> dict:
    """Play the day tick by tick on the accelerated clock; return what was counted."""
    from django.db import connection

    from tenants import credentials
    from tenants import services
    from tenants.models import Authorization
    from wecom.ratelimit import background_calls

    control = platform.control
    rng = random.Random(17)
    tenants = list(
        Authorization.objects.select_related("suite", "corp").filter(suite=platform.suite)
    )
    day: dict = {"calls": collections.Counter(), "per_tick": [], "tick_queries": []}
    day.update(tick_sql_ms=[], served=0, expired=0, last_id=0)

    def collect() -> int:
        entries = control.requests(endpoint="get_corp_token", since_id=day["last_id"])
        for entry in entries:
            day["calls"][entry["corpid"]] += 1
            day["last_id"] = max(day["last_id"], entry["id"])
        return len(entries)

    collect()  # the installs' own calls count toward the day
    for tick in range(int(hours * 3600) // STEP):
        offset = rng.randint(1, STEP - 1)
        clock.shift(offset)
        if tick % 10 == 0:  # WeCom pushes a ticket every 10 minutes, to every suite
            for suite in (platform.suite, platform.template):
                control.push_ticket(suite.suite_id)
                newest = handle.state.tickets[suite.suite_id][-1]
                services.suite_ticket_store(
                    suite_id=suite.suite_id,
                    ticket=newest.ticket,
                    timestamp=int(newest.issued_at),
                )
        for authorization in rng.sample(tenants, min(reads, len(tenants))):
            token = credentials.token_get(authorization)
            day["served"] += 1
            day["expired"] += token.expires_at <= datetime.now(tz=UTC)
        clock.shift(STEP - offset)
        with metered() as meter:
            due = credentials.tokens_due(limit=budget)
        day["tick_queries"].append(meter.count)
        day["tick_sql_ms"].append(meter.seconds * 1000)
        if due:
            refresh(due, workers=4, background=background_calls, connection=connection)
        day["per_tick"].append(collect())
    return day


def refresh(keys: list[str], *, workers: int, background, connection) -> None:
    from tenants import credentials

    errors: list[BaseException] = []

    def work(chunk: list[str]) -> None:
        try:
            with background():
                for key in chunk:
                    credentials.token_refresh_scheduled(key)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(keys[i::workers],)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# --- phases 3 and 4: the create_auth burst and memory ---------------------------------------


def install_burst(control, suite_id: str, count: int, tag: str, timeout: float) -> dict:
    """Install ``count`` new corps (the simulator pushes create_auth for each); wait until
    every permanent code is stored; return ack → stored figures."""
    from tenants.models import Authorization

    corpids = [control.add_corp(name=f"Burst {tag} {i}")["corpid"] for i in range(count)]
    started = time.time()
    for corpid in corpids:
        control.install(suite_id, corpid)
    wanted = set(corpids)

    def stored() -> int:
        return Authorization.objects.filter(corp__corpid__in=wanted).count()

    deadline = time.monotonic() + timeout
    while stored() < count and time.monotonic() < deadline:
        time.sleep(1)
    pushes = {
        p["corpid"]: p
        for p in control.pushes(info_type="create_auth", suite_id=suite_id)
        if p["corpid"] in wanted
    }
    created = dict(
        Authorization.objects.filter(corp__corpid__in=wanted).values_list(
            "corp__corpid", "created_at"
        )
    )
    ack_to_stored, code_age = [], []
    for corpid, push in pushes.items():
        if corpid in created and push.get("answered_at"):
            at = created[corpid].timestamp()
            ack_to_stored.append(at - push["answered_at"])
            code_age.append(at - push["created_at"])
    return {
        "sent": count,
        "acked": sum(1 for p in pushes.values() if p["status"] == "delivered"),
        "stored": len(created),
        "ack_to_stored": ack_to_stored,
        "code_age": code_age,
        "seconds": time.time() - started,
    }


def rates(times: list[float]) -> tuple[int, int, int]:
    """(count, busiest whole second, busiest sliding 1 s window) of event times (s)."""
    times = sorted(times)
    if not times:
        return 0, 0, 0
    per_second = collections.Counter(int(t) for t in times)
    best, left = 0, 0
    for right, t in enumerate(times):
        while times[left] <= t - 1.0:
            left += 1
        best = max(best, right - left + 1)
    return len(times), max(per_second.values()), best


def call_rates(control, since: float) -> tuple[int, int, int]:
    """Calls at the simulator by arrival time (stamped in this process)."""
    return rates([e["arrived"] for e in control.requests() if e.get("arrived", 0) >= since])


LEDGER = "wcp:bench:grants"


def grant_rates(broker) -> dict:
    """The limiter's own grants (WECOM_RATE_LEDGER, Redis' clock): count, busiest whole
    second, busiest sliding 1 s window, and the sustained rate (grants / their span)."""
    times = [int(t) / 1_000_000 for t in broker.lrange(LEDGER, 0, -1)]
    count, busiest, sliding = rates(times)
    span = max(times) - min(times) if len(times) > 1 else 0.0
    return {
        "grants": count,
        "busiest": busiest,
        "sliding": sliding,
        "rate": (count - 1) / span if span else 0.0,
    }


def burst_and_memory(
    servers, env: dict[str, str], args, ceiling: int, *, memory: bool, priority_processes: int
) -> dict:
    import redis
    from django.test import override_settings

    from harness.platform import register_platform
    from sandbox import start_sandbox

    handle = start_sandbox(ticket_interval=0)
    env = {
        **env,
        "WECOM_API_BASE": handle.base_url,
        "WECOM_INSTALL_BASE": handle.base_url,
        "WECOM_MAX_CALLS_PER_SECOND": str(ceiling),
        "WECOM_RATE_LEDGER": LEDGER,
    }
    local = override_settings(WECOM_API_BASE=handle.base_url, WECOM_INSTALL_BASE=handle.base_url)
    local.enable()
    broker = redis.Redis.from_url(servers.redis_url)
    try:
        platform = register_platform(handle)
        control = platform.control
        suite_id = platform.suite.suite_id
        # As docker/compose.yaml and deploy/k8s/base run them: a worker on every queue
        # and one on the priority queue only, so auth codes never wait behind other work.
        with (
            gunicorn_server(env, workers=max(2, os.cpu_count() or 2), args=gunicorn_args()) as web,
            celery_worker(env=env, concurrency=args.celery_concurrency) as worker,
            celery_worker(
                env=env, queues="priority", concurrency=priority_processes, name="priority"
            ),
        ):
            control.settings(callback_base=web.url)
            control.add_fault(endpoint="*", latency_ms=args.latency_ms)
            control.clear_requests()
            broker.delete(LEDGER)
            since = handle.state.clock.now()
            burst = install_burst(control, suite_id, args.burst, "b", timeout=args.burst_timeout)
            # Only the exchanges' part of the ledger: the follow-ups run on afterwards.
            grants = grant_rates(broker)
            calls, busiest, sliding = call_rates(control, since)
            exchanges = len(control.requests(endpoint="get_permanent_code"))
            wait_until_quiet(broker, LEDGER, timeout=args.burst_timeout)
            web_rss = [rss_mb(web.process.pid)]
            worker_rss = [rss_mb(worker.pid)]
            for n in range(3 if memory else 0):
                install_burst(control, suite_id, args.memory_corps, f"m{n}", args.burst_timeout)
                wait_until_quiet(broker, LEDGER, timeout=args.burst_timeout)
                web_rss.append(rss_mb(web.process.pid))
                worker_rss.append(rss_mb(worker.pid))
            grants_all = grant_rates(broker)
    finally:
        broker.close()
        local.disable()
        handle.stop()
    return {
        **burst,
        "ceiling": ceiling,
        "priority_processes": priority_processes,
        "calls": calls,
        "exchanges": exchanges,
        "sim_busiest": busiest,
        "sim_sliding": sliding,
        "grants": grants,
        "grants_all": grants_all,
        "web_rss": web_rss,
        "worker_rss": worker_rss,
    }


# --- main ---------------------------------------------------------------------------------


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tick-sizes", default="1000,10000", help="tenants for the tick cost")
    parser.add_argument("--tick-due", type=int, default=100, help="due rows at each size")
    parser.add_argument("--tick-repeats", type=int, default=15)
    parser.add_argument("--corps", type=int, default=1000, help="authorizations in the day")
    parser.add_argument("--hours", type=float, default=24, help="simulated hours")
    parser.add_argument(
        "--mode", choices=["same_while_valid", "new_each_call"], default="new_each_call"
    )
    parser.add_argument("--product-reads", type=int, default=8, help="product reads per tick")
    parser.add_argument("--ceiling", type=int, default=10, help="WECOM_MAX_CALLS_PER_SECOND")
    parser.add_argument("--burst", type=int, default=1000, help="create_auth burst size")
    parser.add_argument("--burst-timeout", type=float, default=1200)
    parser.add_argument("--latency-ms", type=int, default=200, help="simulator API latency")
    parser.add_argument(
        "--celery-concurrency", type=int, default=4, help="processes of the worker on all queues"
    )
    parser.add_argument(
        "--priority-concurrency",
        type=int,
        default=2,
        help="processes of the worker on the priority queue only (compose: 2)",
    )
    parser.add_argument(
        "--also-priority-concurrency",
        type=int,
        default=6,
        help="priority-only worker processes for the --also-ceiling burst (each exchange "
        "waits --latency-ms on WeCom: N/s needs about N × latency processes)",
    )
    parser.add_argument(
        "--also-ceiling",
        type=int,
        default=0,
        help="repeat the burst with this WECOM_MAX_CALLS_PER_SECOND (0: don't)",
    )
    parser.add_argument("--memory-corps", type=int, default=100, help="installs per repeat")
    parser.add_argument("--skip", default="", help="phases to skip: tick,day,burst")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    skip = set(filter(None, args.skip.split(",")))
    sizes = [int(s) for s in args.tick_sizes.split(",")]

    print(
        f"scale: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; tick at "
        f"{sizes} tenants ({args.tick_due} due); day: {args.corps} corps × {args.hours:g} h "
        f"({args.mode}); burst {args.burst} create_auth at {args.latency_ms} ms latency, "
        f"ceiling {args.ceiling}/s, Celery {args.celery_concurrency} processes on every queue "
        f"+ {args.priority_concurrency} on the priority queue",
        flush=True,
    )
    with stores() as servers:
        settings_line = pg_settings_line(servers.database_url)
        print(settings_line, flush=True)
        env = platform_env(servers.database_url, servers.redis_url)
        env["WECOM_MAX_CALLS_PER_SECOND"] = str(args.ceiling)
        os.environ.update(env)
        import django

        django.setup()
        import redis
        from django.core.management import call_command

        import wecom_provider.celery  # noqa: F401  (the app publishes the tick's tasks)
        from tenants import tasks

        call_command("migrate", "--noinput", verbosity=0)
        broker = redis.Redis.from_url(servers.redis_url)
        budget = tasks.refreshes_per_tick()
        print(f"tick budget at {args.ceiling}/s: {budget} refreshes per 60 s tick", flush=True)
        ticks = day = burst = also = None
        if "tick" not in skip:
            ticks = tick_cost(sizes, args.tick_due, args.tick_repeats, broker)
            scale_report.tick_figures(args, ticks)
        if "day" not in skip:
            day = simulated_day(args.corps, args.hours, args.mode, budget, args.product_reads)
            scale_report.day_figures(args, day)
        if "burst" not in skip:
            burst = burst_and_memory(
                servers,
                env,
                args,
                args.ceiling,
                memory=True,
                priority_processes=args.priority_concurrency,
            )
            scale_report.burst_figures(burst)
            if args.also_ceiling:
                also = burst_and_memory(
                    servers,
                    env,
                    args,
                    args.also_ceiling,
                    memory=False,
                    priority_processes=args.also_priority_concurrency,
                )
                scale_report.burst_figures(also)
        broker.close()

    print(settings_line)
    return 0 if scale_report.targets(args, ticks, day, burst, also) else 1


if __name__ == "__main__":
    sys.exit(main())
