"""Real servers and processes for tests and benchmarks (no mocks).

Throwaway PostgreSQL, Redis and PgBouncer servers, gunicorn, Celery workers and beat,
and the small waiting helpers they need. Imports nothing of the platform.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float = 10.0, interval: float = 0.05, message: str = ""):
    """Return the first truthy value of ``predicate()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen
    directory: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def start(self) -> None:
        """Start the server again on the same port (after ``stop()``); data starts empty."""
        if self.process.poll() is None:
            return
        self.process = _spawn_redis(self.port, self.directory)
        _wait_redis(self.port)


def _spawn_redis(port: int, directory: str) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (make test installs it)"
    return subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_redis(port: int) -> None:
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    try:
        wait_until(lambda: _pings(client), message="redis-server to start")
    finally:
        client.close()


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Yield a private, throwaway redis-server (the binary `make test` installs)."""
    directory = tempfile.mkdtemp(prefix="wecom-redis-")
    port = free_port()
    server = RedisServer(port=port, process=_spawn_redis(port, directory), directory=directory)
    try:
        _wait_redis(port)
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def django_env(**overrides: str) -> dict[str, str]:
    """Return the environment for a child process running this project's Django code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["DJANGO_SETTINGS_MODULE"] = "wecom_provider.settings"
    env.update(overrides)
    return env


@contextlib.contextmanager
def celery_worker(
    *,
    env: dict[str, str],
    queues: str = "priority,default",
    concurrency: int = 1,
    loglevel: str = "warning",
    log_path: Path | None = None,
    name: str | None = None,
) -> Iterator[subprocess.Popen]:
    """Run a real Celery worker process for the duration of the block.

    Its output goes to ``log_path`` when given (tests that read the worker's logs),
    else nowhere: an unread pipe would block a chatty worker once it fills. ``name``:
    the node name (``name@host``), for a second worker on the same host.
    """
    log = open(log_path, "wb") if log_path else None  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "wecom_provider",
            "worker",
            "-Q",
            queues,
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "-l",
            loglevel,
            *(["-n", f"{name}@%h"] if name else []),
        ],
        cwd=ROOT,
        env=env,
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if log is not None:
            log.close()


def database_url(settings_dict: dict) -> str:
    """Return a ``postgres://`` URL for a Django connection's settings (e.g. the test DB)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(settings_dict['NAME'], safe='')}"


# --- PostgreSQL ---------------------------------------------------------------------------


def pg_bindir() -> str:
    """Return the directory holding initdb / pg_ctl (as scripts/lib.sh `pg_bindir`)."""
    given = os.environ.get("TEST_PG_BINDIR")
    if given and Path(given, "initdb").exists():
        return given
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")],
    )
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists():
            return str(candidate)
    found = shutil.which("initdb")
    assert found, "PostgreSQL server binaries not found (make test installs them)"
    return str(Path(found).parent)


def _pg_user() -> str | None:
    """The unprivileged user PostgreSQL runs as when we are root (it refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "wecom-pg"):
        if subprocess.run(["id", name], capture_output=True, check=False).returncode == 0:
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "wecom-pg"], check=False)
    return "wecom-pg"


# Tests trade durability for speed: a cluster that lives for one run needs no fsync.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster (trust auth) on 127.0.0.1.

    Durability is off (FAST_SETTINGS) unless ``settings`` says otherwise: benchmarks
    pass PostgreSQL's defaults (bench/support/servers.py).
    """

    port: int
    directory: str  # holds data/, the log and the socket
    bindir: str
    user: str | None  # run the binaries as this OS user (when we are root)
    settings: dict[str, str] | None = None  # -c name=value; None: FAST_SETTINGS

    @property
    def datadir(self) -> str:
        return os.path.join(self.directory, "data")

    @property
    def log_path(self) -> str:
        return os.path.join(self.directory, "postgres.log")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(
            command, cwd=self.directory, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr[-2000:]}")

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            self.datadir,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        )

    def start(self) -> None:
        settings = FAST_SETTINGS if self.settings is None else self.settings
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 " + " ".join(
            f"-c {name}={value}" for name, value in settings.items()
        )
        self._run(
            "pg_ctl",
            "-D",
            self.datadir,
            "-l",
            self.log_path,
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stop the cluster (``immediate``: like a crash, connections drop at once)."""
        self._run("pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop")

    def running(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0


@contextlib.contextmanager
def postgres_server(settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    """Yield a private PostgreSQL cluster in a temp dir on a free port; removed at exit.

    Never the suite's shared server: tests may stop and start this one at will.
    ``settings``: server settings instead of FAST_SETTINGS (see PostgresServer).
    """
    directory = tempfile.mkdtemp(prefix="wecom-pg-")
    user = _pg_user()
    if user:
        shutil.chown(directory, user=user)
    os.chmod(directory, 0o700)
    server = PostgresServer(
        port=free_port(), directory=directory, bindir=pg_bindir(), user=user, settings=settings
    )
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


# --- gunicorn -----------------------------------------------------------------------------


@dataclass
class GunicornServer:
    port: int
    process: subprocess.Popen
    log_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def gunicorn_server(
    env: dict[str, str], *, workers: int = 2, args: tuple[str, ...] = ()
) -> Iterator[GunicornServer]:
    """Run the platform under a real gunicorn (sync workers) on a free port.

    ``env`` is the child's environment (see ``django_env``); output goes to a log file,
    shown by ``log_tail()``. Ready once ``/healthz`` answers 200.
    """
    port = free_port()
    log_fd, log_path = tempfile.mkstemp(prefix="wecom-gunicorn-", suffix=".log")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "wecom_provider.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--timeout",
            "60",
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=log_fd,
        stderr=log_fd,
        start_new_session=True,
    )
    os.close(log_fd)
    server = GunicornServer(port=port, process=process, log_path=log_path)
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{server.log_tail()}")
            return _answers(f"{server.url}/healthz")

        wait_until(up, timeout=30, interval=0.1, message="gunicorn to answer /healthz")
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with contextlib.suppress(OSError):
            os.unlink(log_path)


# --- PgBouncer ----------------------------------------------------------------------------


def pgbouncer_bin() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    assert found, "pgbouncer is not installed (make test installs it: scripts/lib.sh)"
    return found


@dataclass
class PgBouncer:
    """A PgBouncer in transaction pooling in front of one PostgreSQL server."""

    port: int
    process: subprocess.Popen
    directory: str
    pool_size: int

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgres://{quote(user, safe='')}@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return Path(self.directory, "pgbouncer.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def show(self, what: str) -> list[dict]:
        """Rows of the admin console's ``SHOW <what>`` (pools, servers, clients…)."""
        import psycopg

        with (
            psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                dbname="pgbouncer",
                user="postgres",
                autocommit=True,
                prepare_threshold=None,
            ) as conn,
            conn.cursor() as cursor,
        ):
            cursor.execute(f"SHOW {what}")
            names = [c.name for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextlib.contextmanager
def pgbouncer_server(
    *, upstream_host: str, upstream_port: int, pool_size: int = 10, max_client_conn: int = 400
) -> Iterator[PgBouncer]:
    """Run PgBouncer (pool_mode=transaction, trust auth) in front of ``upstream``.

    Every database name passes through (``*``). ``pool_size`` server connections per
    database and user: small on purpose, so clients really share server connections.
    """
    directory = tempfile.mkdtemp(prefix="wecom-pgbouncer-")
    port = free_port()
    Path(directory, "userlist.txt").write_text('"postgres" ""\n')
    Path(directory, "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={upstream_host} port={upstream_port}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {directory}/userlist.txt\n"
        "admin_users = postgres\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        "min_pool_size = 0\n"
        "reserve_pool_size = 0\n"
        f"max_client_conn = {max_client_conn}\n"
        "server_lifetime = 3600\n"
        "ignore_startup_parameters = extra_float_digits\n"
        f"logfile = {directory}/pgbouncer.log\n"
        f"pidfile = {directory}/pgbouncer.pid\n"
    )
    command = [pgbouncer_bin(), os.path.join(directory, "pgbouncer.ini")]
    user = _pg_user()
    if user:  # pgbouncer refuses to run as root
        shutil.chown(directory, user=user)
        for name in os.listdir(directory):
            shutil.chown(os.path.join(directory, name), user=user)
        command = ["runuser", "-u", user, "--", *command]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    bouncer = PgBouncer(port=port, process=process, directory=directory, pool_size=pool_size)
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"pgbouncer exited:\n{bouncer.log_tail()}")
            with socket.socket() as sock:
                sock.settimeout(0.5)
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_until(up, timeout=20, interval=0.1, message="pgbouncer to listen")
        yield bouncer
    finally:
        _stop_group(process)
        shutil.rmtree(directory, ignore_errors=True)


def _stop_group(process: subprocess.Popen, timeout: float = 20) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- Celery beat --------------------------------------------------------------------------


@contextlib.contextmanager
def celery_beat(*, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """Run a real ``celery beat`` (the redbeat scheduler from settings) for the block.

    INFO level: the log shows "Acquired lock" and each "Sending due task" line.
    """
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "wecom_provider",
            "beat",
            "-l",
            "info",
            "--pidfile=",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        _stop_group(process)
        log.close()
