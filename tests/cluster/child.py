"""Child processes of tests/cluster/test_pgbouncer.py: ``python -m tests.cluster.child MODE …``.

Each runs Django set up from its environment (DATABASE_URL through PgBouncer), waits at
a Redis barrier so that all children start together, then does its part:

- ``lock KEY ROUNDS locked|unlocked``: read-modify-write a Redis counter ROUNDS times,
  under tenants.credentials' database lock (or, for the control, without it);
- ``sweep``: run callbacks.services.inbox_sweep once and print its count.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time


def _barrier(client, name: str, parties: int) -> None:
    client.incr(f"barrier:{name}")
    deadline = time.monotonic() + 120
    while int(client.get(f"barrier:{name}") or 0) < parties:
        if time.monotonic() > deadline:
            raise SystemExit("barrier timed out")
        time.sleep(0.01)


def main(argv: list[str]) -> None:
    import django

    django.setup()
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    mode, parties = argv[0], int(argv[1])
    if mode == "lock":
        from tenants import fetching

        key, rounds, how = argv[2], int(argv[3]), argv[4]
        _barrier(client, key, parties)
        for _ in range(rounds):
            guard = fetching._database_lock(key) if how == "locked" else contextlib.nullcontext()
            with guard:
                # The race the lock must close: read, wait, write back.
                value = int(client.get(f"counter:{key}") or 0)
                time.sleep(0.01)
                client.set(f"counter:{key}", value + 1)
    elif mode == "sweep":
        from callbacks import services

        _barrier(client, "sweep", parties)
        print(services.inbox_sweep(limit=10_000))  # noqa: T201 - read by the test
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
