"""Benchmark: a simulated day of corp-token refreshes for N corps (default 10 000).

Run with `.venv/bin/python bench/token_day.py [--corps N] [--mode same_while_valid|new_each_call]`.
Not part of the test suite (the suite runs the same day at 1 000 corps).

It runs tests/tenants/test_token_day.py (the accelerated-clock day: beat every 60 s
with four refresh workers, products reading at random moments, against the simulator
over HTTP, on throwaway PostgreSQL and Redis started by scripts/test.sh) with
TOKEN_DAY_CORPS=N, and prints its figures for each simulator token behaviour:
get_corp_token calls per corp per day (max, median), the smallest gap between two
calls for one corp, and how many product reads were served. The run fails if a figure
breaks its limit (≤ 14 calls per corp per day, no gap under 60 s, no expired or dying
token served).

At 10 000 corps this takes a long time (installing the corps alone is minutes): run
it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/tenants/test_token_day.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corps", type=int, default=10_000)
    parser.add_argument(
        "--mode", choices=["same_while_valid", "new_each_call"], help="default: both"
    )
    args = parser.parse_args()
    selector = TEST + (
        f"::test_a_day_of_1000_tenants_needs_at_most_14_calls_each_and_never_a_dying_token[{args.mode}]"
        if args.mode
        else ""
    )
    env = {**os.environ, "TOKEN_DAY_CORPS": str(args.corps)}
    command = ["bash", "scripts/test.sh", selector, "-q", "-s", "-p", "no:randomly", "-x"]
    print(f"token day: {args.corps} corps, {args.mode or 'both behaviours'}", flush=True)
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    figures = [line for line in run.stdout.splitlines() if " corps, calls/corp/day " in line]
    for line in figures:
        print(line)
    if run.returncode != 0:
        print(run.stdout[-4000:], run.stderr[-2000:], sep="\n", file=sys.stderr)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
