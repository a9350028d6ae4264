"""Throwaway PostgreSQL and Redis for benchmarks, or the ones named by the environment.

BENCH_DATABASE_URL / BENCH_REDIS_URL: use these servers (the bench writes inbox rows
there, so never point them at data you care about). Otherwise a private PostgreSQL
cluster and redis-server are started from the binaries `make test` installs and
removed at exit (tests/support.py does the work, as for the resilience tests).

Benchmarks run on production durability: the cluster started here keeps PostgreSQL's
defaults (fsync, synchronous_commit and full_page_writes on), unlike the test
cluster, plus any server settings docker/compose.yaml ships (PRODUCTION_SETTINGS).
BENCH_PG_SETTINGS="name=value,name=value" overrides or adds settings (experiments).
Every bench prints what it ran with (``pg_settings_line``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.processes import postgres_server  # noqa: E402
from harness.processes import redis_server  # noqa: E402


@dataclass
class Stores:
    database_url: str
    redis_url: str
    postmaster_pid: int | None = None  # None: not ours (BENCH_DATABASE_URL)
    redis_pid: int | None = None


# What docker/compose.yaml passes to its postgres service beyond PostgreSQL's defaults:
# nothing today, so benches run on the defaults. Group-commit settings (commit_delay,
# commit_siblings) were tried through BENCH_PG_SETTINGS but not shown to help on the
# shared 2-core machine (issue 17's note); add them here and in compose together.
PRODUCTION_SETTINGS: dict[str, str] = {}
# Printed by every bench: durability first, then what shapes commit cost.
REPORTED_SETTINGS = (
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_sync_method",
    "commit_delay",
    "commit_siblings",
    "shared_buffers",
    "max_connections",
)
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def bench_pg_settings() -> dict[str, str]:
    settings = dict(PRODUCTION_SETTINGS)
    for item in filter(None, os.environ.get("BENCH_PG_SETTINGS", "").split(",")):
        name, _, value = item.partition("=")
        settings[name.strip()] = value.strip()
    return settings


def pg_settings(database_url: str) -> dict[str, str]:
    """The server's effective values of REPORTED_SETTINGS."""
    import psycopg

    with psycopg.connect(database_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)",
            [list(REPORTED_SETTINGS)],
        ).fetchall()
    found = {
        name: f"{setting}{unit if unit and unit not in ('8kB',) else ''}"
        for name, setting, unit in rows
    }
    shared = [r for r in rows if r[0] == "shared_buffers"]
    if shared:  # counted in 8 kB pages
        found["shared_buffers"] = f"{int(shared[0][1]) * 8 // 1024}MB"
    return {name: found.get(name, "?") for name in REPORTED_SETTINGS}


def durable(settings: dict[str, str]) -> bool:
    return all(settings.get(name) == value for name, value in DURABLE.items())


def pg_settings_line(database_url: str) -> str:
    """One line naming the settings the bench ran with, and whether they are durable."""
    settings = pg_settings(database_url)
    verdict = "durable (production)" if durable(settings) else "NOT DURABLE: figures invalid"
    return "PostgreSQL: " + ", ".join(f"{k}={v}" for k, v in settings.items()) + f" [{verdict}]"


@contextlib.contextmanager
def stores() -> Iterator[Stores]:
    """Yield the database and Redis URLs (and the pids of servers we started)."""
    with contextlib.ExitStack() as stack:
        found = Stores(
            os.environ.get("BENCH_DATABASE_URL", ""), os.environ.get("BENCH_REDIS_URL", "")
        )
        if not found.database_url:
            pg = stack.enter_context(postgres_server(settings=bench_pg_settings()))
            found.database_url = pg.url()
            pid_file = Path(pg.datadir, "postmaster.pid").read_text()
            found.postmaster_pid = int(pid_file.split()[0])
        if not found.redis_url:
            redis = stack.enter_context(redis_server())
            found.redis_url, found.redis_pid = redis.url, redis.process.pid
        yield found


# --- CPU accounting (Linux /proc) ------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return [str(pid), "comm", *raw[raw.rindex(")") + 2 :].split()]


def family(root: int) -> list[int]:
    """Return ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            children.setdefault(int(fields[3]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(root: int | None) -> float:
    """CPU time (user + system) used so far by ``root`` and its descendants.

    A live process counts its own time plus that of its children that exited and were
    reaped (cutime, cstime): PostgreSQL backends and gunicorn workers come and go.
    """
    if root is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in family(root):
        if fields := _stat(pid):
            total += sum(int(f) for f in fields[13:17])
    return total / ticks


def rss_mb(root: int) -> float:
    """Resident memory (MB) of ``root``'s descendants, or of ``root`` if it has none:
    the worker processes of a gunicorn master or of a Celery prefork parent."""
    pids = family(root)
    pids = pids[1:] or pids
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# --- the web server as shipped --------------------------------------------------------------

# docker/Dockerfile and deploy/k8s/base run gunicorn with this file; the benches too, so
# what they measure is what ships. Command-line arguments (-b, -w) override it.
GUNICORN_CONFIG = ROOT / "docker" / "gunicorn.conf.py"


def gunicorn_args(*, threads: int | None = None) -> tuple[str, ...]:
    """gunicorn arguments for a bench server: the shipped config, ``threads`` if given."""
    args = ("-c", str(GUNICORN_CONFIG))
    return (*args, "--threads", str(threads)) if threads else args


def gunicorn_line(workers: int, threads: int | None = None) -> str:
    """One line naming the web server's settings (the shipped file, as overridden)."""
    import runpy

    shipped = runpy.run_path(str(GUNICORN_CONFIG))
    return (
        f"gunicorn: {GUNICORN_CONFIG.relative_to(ROOT)} ({shipped['worker_class']}), "
        f"{workers} workers × {threads or shipped['threads']} threads, "
        f"{os.cpu_count()} CPUs shared with PostgreSQL, Redis and the load generator"
    )
