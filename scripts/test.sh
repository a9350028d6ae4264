#!/usr/bin/env bash
# `make test`: the whole suite on real PostgreSQL and Redis.
# Uses TEST_DATABASE_URL / TEST_REDIS_URL when given; otherwise installs the servers if
# missing and starts throwaway instances (own data dirs and ports), stopped at exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT_DIR"

ensure_venv requirements-dev.txt
ensure_redis  # redis-server is also needed by tests that start and stop their own Redis
ensure_postgres
ensure_pgbouncer  # tests/cluster: hot paths, locks and the multi-process test behind it
ensure_command chromedriver chromium chromium-driver  # browser tests (tests/browser)

RUN_DIR="$(mktemp -d /tmp/wecom-test.XXXXXX)"
chmod 755 "$RUN_DIR"
cleanup() {
  stop_postgres "$RUN_DIR/pg"
  stop_redis "$RUN_DIR/redis"
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  pg_port="$(free_port)"
  log "starting throwaway PostgreSQL on 127.0.0.1:$pg_port"
  start_postgres "$RUN_DIR/pg" "$pg_port"
  TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/wecom"
  export TEST_PG_DATADIR="$RUN_DIR/pg/data" TEST_PG_BINDIR="$(pg_bindir)" TEST_PG_PORT="$pg_port"
fi
if [ -z "${TEST_REDIS_URL:-}" ]; then
  redis_port="$(free_port)"
  log "starting throwaway Redis on 127.0.0.1:$redis_port"
  start_redis "$RUN_DIR/redis" "$redis_port" --save "" --appendonly no
  TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
fi

export DATABASE_URL="$TEST_DATABASE_URL" REDIS_URL="$TEST_REDIS_URL"
export DJANGO_DEBUG=0 DJANGO_SECRET_KEY="test-$(random_key_b64)"
export FIELD_ENCRYPTION_KEYS="test1:$(random_key_b64)"
export PUBLIC_BASE_URL="http://testserver" DJANGO_ALLOWED_HOSTS="testserver,localhost,127.0.0.1"
export PYTHONDONTWRITEBYTECODE=1
# The suite makes thousands of simulator calls (a day of 1 000 tenants): the outbound
# ceiling would make it hours long. Tests of the ceiling set their own
# (tests/wecom/test_rate_limit.py, tests/tenants/test_tick_scale.py).
export WECOM_MAX_CALLS_PER_SECOND="${WECOM_MAX_CALLS_PER_SECOND:-100000}"

set +e
"$PY" -m pytest "$@"
status=$?
set -e
# pytest exits 5 when it collected nothing: treat as failure, a suite that tests nothing is broken.
exit "$status"
