# Shared shell helpers for `make run`, `make test` and `.ci/run`. Source, don't execute.
# Everything the project needs is installed from here: a fresh Debian/Ubuntu machine with
# Python >= 3.11 (and root or sudo for OS packages) is enough.

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT_DIR/.venv}"
PY="$VENV/bin/python"

log() { printf '\033[1m[wecom-provider]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"; fi
}

APT_UPDATED=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these packages by hand: $*"
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "installing OS packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ensure_command COMMAND PACKAGE...: install PACKAGE(s) when COMMAND is missing.
ensure_command() {
  local cmd="$1"; shift
  command -v "$cmd" >/dev/null 2>&1 || apt_install "$@"
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $*"
}

python_bin() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return
    fi
  done
  die "Python >= 3.11 is required"
}

# ensure_venv REQUIREMENTS_FILE: create .venv and install requirements when they changed.
ensure_venv() {
  local requirements="$1" python stamp
  python="$(python_bin)"
  if [ ! -x "$PY" ]; then
    log "creating virtualenv in $VENV"
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
      # Debian splits venv/ensurepip into pythonX.Y-venv.
      rm -rf "$VENV"
      apt_install "$("$python" -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}-venv")')"
      "$python" -m venv "$VENV"
    fi
    "$PY" -m pip install -q --upgrade pip
  fi
  stamp="$VENV/.installed-$(basename "$requirements")"
  if [ ! -f "$stamp" ] || ! cmp -s <(cat "$ROOT_DIR"/requirements*.txt) "$stamp"; then
    log "installing $(basename "$requirements")"
    "$PY" -m pip install -q -r "$ROOT_DIR/$requirements"
    cat "$ROOT_DIR"/requirements*.txt >"$stamp"
  fi
}

free_port() {
  "$(python_bin)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

ensure_redis() { ensure_command redis-server redis-server; }

# pg_bindir: the directory holding initdb/pg_ctl of the newest installed PostgreSQL.
pg_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  return 1
}

ensure_postgres() {
  if ! pg_bindir >/dev/null; then
    apt_install postgresql
  fi
  pg_bindir >/dev/null || die "PostgreSQL server binaries not found after install"
}

# PgBouncer (tests/cluster run the hot paths and the multi-process test through it, in
# transaction pooling). Debian ships the binary in /usr/sbin.
ensure_pgbouncer() {
  if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    apt_install pgbouncer
  fi
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] ||
    die "pgbouncer still missing after installing it"
}

# PostgreSQL refuses to run as root: run its binaries as an unprivileged user then.
PG_USER=""
pg_run() {
  if [ "$(id -u)" = 0 ]; then
    if [ -z "$PG_USER" ]; then
      if id postgres >/dev/null 2>&1; then PG_USER=postgres
      else useradd --system --no-create-home wecom-pg 2>/dev/null || true; PG_USER=wecom-pg; fi
    fi
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

# start_postgres DATADIR PORT: a throwaway cluster listening on 127.0.0.1:PORT (trust auth).
start_postgres() {
  local datadir="$1" port="$2" bindir
  bindir="$(pg_bindir)"
  mkdir -p "$datadir"
  [ "$(id -u)" = 0 ] && { pg_run true; chown -R "$PG_USER" "$datadir"; chmod 700 "$datadir"; }
  pg_run "$bindir/initdb" -D "$datadir/data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
  # Durability off: this cluster lives for one test run.
  pg_run "$bindir/pg_ctl" -D "$datadir/data" -l "$datadir/postgres.log" -w -t 60 \
    -o "-p $port -k $datadir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null
}

stop_postgres() {
  local datadir="$1"
  [ -d "$datadir/data" ] || return 0
  pg_run "$(pg_bindir)/pg_ctl" -D "$datadir/data" -m immediate -w stop >/dev/null 2>&1 || true
}

# start_redis DIR PORT [EXTRA ARGS…]: a private redis-server, daemonised, data in DIR.
start_redis() {
  local dir="$1" port="$2"; shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "$@"
  for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "redis-server did not start on port $port (see $dir/redis.log)"
}

stop_redis() {
  local dir="$1"
  if [ -f "$dir/redis.pid" ]; then
    kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    rm -f "$dir/redis.pid"
  fi
}

# wait_http URL SECONDS: return 0 once URL answers 200 (no curl needed).
wait_http() {
  "$PY" - "$1" "$2" <<'PYCODE'
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen(url, timeout=2).status == 200:
            sys.exit(0)
    except OSError:
        time.sleep(0.3)
sys.exit(1)
PYCODE
}

random_key_b64() { "$(python_bin)" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'; }
