"""What bench/scale.py prints: each phase's figures, then every target with PASS or FAIL."""

from __future__ import annotations

import argparse

CODE_LIFE = 600  # an auth code lives 10 minutes (protocol doc)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def tick_figures(args: argparse.Namespace, ticks: list[dict]) -> None:
    for t in ticks:
        print(
            f"  tick at {t['tenants']:>6} tenants: {t['queries']} SQL statement(s), "
            f"{t['sql_ms']:.2f} ms round trips (median of {args.tick_repeats}), "
            f"PostgreSQL execution {t['pg_ms']:.3f} ms, index {t['index']} read "
            f"{t['index_rows']} entries, seq scan {t['seq_scan']}, "
            f"{t['started']} refreshes enqueued",
            flush=True,
        )


def day_figures(args: argparse.Namespace, day: dict) -> None:
    print(
        f"  day: {day['corps']} corps installed in {day['setup_s']:.0f} s, "
        f"{args.hours:g} simulated h in {day['day_s']:.0f} s; {day['served']} product "
        f"reads ({day['expired']} expired); tick SQL statements "
        f"{day['tick_queries'][0]}–{day['tick_queries'][1]}, SQL time per tick median "
        f"{day['tick_sql_ms'][0]:.2f} ms max {day['tick_sql_ms'][1]:.2f} ms",
        flush=True,
    )


def burst_figures(burst: dict) -> None:
    print(
        f"  burst at {burst['ceiling']}/s ({burst['priority_processes']} priority-only worker "
        f"processes): {burst['sent']} create_auth sent, {burst['acked']} "
        f"acknowledged, {burst['stored']} permanent codes stored in {burst['seconds']:.0f} s; "
        f"{burst['calls']} WeCom calls by then ({burst['exchanges']} get_permanent_code), "
        f"{burst['grants_all']['grants']} granted by the end of the run",
        flush=True,
    )


def targets(args: argparse.Namespace, ticks, day, burst, also=None) -> bool:
    """Print every target of the phases that ran; return whether all passed. ``also``:
    the burst repeated at a higher ceiling, to show where the limit is (informational)."""
    ok = True
    if ticks:
        ok &= _tick_targets(args, ticks)
    if day:
        ok &= _day_targets(args, day)
    if burst:
        ok &= _burst_targets(burst)
        ok &= _memory_targets(burst)
        if also:
            print(f"(the same burst at {also['ceiling']}/s, to show where the limit is:)")
            _burst_targets(also)
            _memory_targets(also)
    return ok


def _tick_targets(args: argparse.Namespace, ticks: list[dict]) -> bool:
    same = len({t["queries"] for t in ticks} | {t["queries_min"] for t in ticks}) == 1
    due_only = all(t["index_rows"] <= args.tick_due and not t["seq_scan"] for t in ticks)
    figures = ", ".join(
        f"{t['tenants']}: {t['queries']} statement(s), {t['index_rows']} rows read, "
        f"{t['pg_ms']:.3f} ms in PostgreSQL"
        for t in ticks
    )
    print(
        f"TARGET queries per tick independent of tenants, only due rows read: {figures} "
        f"(baseline: the smallest size) {verdict(same and due_only)}"
    )
    return same and due_only


def _day_targets(args: argparse.Namespace, day: dict) -> bool:
    scaled = (
        f" (a {args.hours:g} h day: counts scaled ×{day['scale']:g})" if day["scale"] != 1 else ""
    )
    worst = day["max"] * day["scale"]
    print(
        f"TARGET WeCom calls per corp per day ≤ 14 ({day['corps']} corps, {args.mode}): "
        f"max {day['max']} p50 {day['p50']}{scaled}; {day['corps_called']} corps called "
        f"{verdict(worst <= 14 and day['corps_called'] == day['corps'] and not day['expired'])}"
    )
    print(
        f"TARGET ceiling carries the day: busiest tick needs {day['peak_rate']:.2f} calls/s "
        f"(calls in one simulated minute / 60) ≤ ceiling {args.ceiling}/s "
        f"{verdict(day['peak_rate'] <= args.ceiling)}"
    )
    return worst <= 14 and day["peak_rate"] <= args.ceiling and not day["expired"]


def _burst_targets(burst: dict) -> bool:
    ceiling = burst["ceiling"]
    p99 = percentile(burst["ack_to_stored"], 0.99)
    p50 = percentile(burst["ack_to_stored"], 0.50)
    oldest = max(burst["code_age"], default=float("nan"))
    grants = burst["grants"]
    # The ceiling's floor: the k-th code cannot be exchanged before k / rate seconds
    # after the burst starts (one get_permanent_code each, at most `rate` per second).
    # Computed at the configured ceiling and at the rate the limiter actually granted.
    floor = 0.99 * burst["sent"] / ceiling
    measured = min(grants["rate"], grants["sliding"]) or ceiling
    measured_floor = 0.99 * burst["sent"] / measured
    all_stored = burst["stored"] == burst["sent"]
    print(
        f"TARGET every permanent code stored: {burst['stored']} of {burst['sent']} "
        f"{verdict(all_stored)}"
    )
    print(
        f"TARGET p99 ack → stored ≤ 60 s: {p99:.1f} s (p50 {p50:.1f} s; floor set by the "
        f"ceiling: the 99th percentile code is exchanged ≥ {floor:.0f} s after the first at "
        f"{ceiling}/s, ≥ {measured_floor:.0f} s at the {grants['rate']:.1f} grants/s the "
        f"limiter sustained; {burst['calls'] / max(1, burst['sent']):.1f} calls per install "
        f"by the last code, the rest deferred) {verdict(p99 <= 60)}"
    )
    print(
        f"TARGET none past the auth code's 10-minute life: oldest code stored at "
        f"{oldest:.0f} s {verdict(all_stored and oldest <= CODE_LIFE)}"
    )
    print(
        f"TARGET peak WeCom call rate ≤ ceiling {ceiling}/s, counted at the limiter (its "
        f"grants on Redis' clock): busiest second {grants['busiest']}, busiest sliding 1 s "
        f"window {grants['sliding']} ({grants['grants']} grants; at the simulator, stamped "
        f"in this process: busiest second {burst['sim_busiest']}, sliding "
        f"{burst['sim_sliding']}) {verdict(grants['sliding'] <= ceiling)}"
    )
    return all_stored and p99 <= 60 and oldest <= CODE_LIFE and grants["sliding"] <= ceiling


def _memory_targets(burst: dict) -> bool:
    ok = True
    for label, series in (
        ("web workers", burst["web_rss"]),
        ("Celery worker", burst["worker_rss"]),
    ):
        repeats = series[1:]
        if not repeats:
            continue  # a burst run without the memory repeats
        growth = repeats[-1] / repeats[0] - 1 if repeats[0] else float("nan")
        print(
            f"TARGET memory, {label} RSS growth ≤ 10 % over 3 repeats: {growth * 100:+.1f} % "
            f"(after the burst {series[0]:.1f} MB; repeats "
            + ", ".join(f"{mb:.1f}" for mb in repeats)
            + f" MB) {verdict(growth <= 0.10)}"
        )
        ok &= growth <= 0.10
    return ok
