#!/usr/bin/env bash
# `make run`: the whole platform in the foreground, on SQLite and a private Redis, against
# the WeCom simulator. web (:8000), two Celery workers (the webhooks queue has its own),
# beat and the simulator (:9800) run until Ctrl-C; data lives under var/ (the
# simulator's state in var/sandbox.json).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT_DIR"

WEB_PORT="${WEB_PORT:-8000}"
REDIS_PORT="${REDIS_PORT:-6390}"
SANDBOX_PORT="${SANDBOX_PORT:-9800}"
# Tickets every minute (WeCom: 10 minutes) so a newcomer sees them arrive.
TICKET_INTERVAL="${TICKET_INTERVAL:-60}"

ensure_venv requirements.txt
ensure_redis
mkdir -p var

# Development secrets: generated once, kept in var/dev.env (git-ignored), never committed.
if [ ! -f var/dev.env ]; then
  log "generating development secrets in var/dev.env"
  umask 077
  {
    echo "DJANGO_SECRET_KEY=dev-$(random_key_b64)"
    echo "FIELD_ENCRYPTION_KEYS=dev1:$(random_key_b64)"
    echo "ADMIN_PASSWORD=$("$(python_bin)" -c 'import secrets; print(secrets.token_urlsafe(12))')"
  } >var/dev.env
  umask 022
fi
set -a
# shellcheck disable=SC1091
source var/dev.env
set +a
export DJANGO_DEBUG=1
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:$WEB_PORT}"
export WECOM_API_BASE="${WECOM_API_BASE:-http://127.0.0.1:$SANDBOX_PORT}"
export WECOM_INSTALL_BASE="${WECOM_INSTALL_BASE:-http://127.0.0.1:$SANDBOX_PORT}"

PIDS=()
BOOTSTRAP_PID=""
cleanup() {
  trap - INT TERM EXIT
  log "stopping"
  for pid in "${PIDS[@]}" $BOOTSTRAP_PID; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_redis "$ROOT_DIR/var/redis"
}
trap cleanup INT TERM EXIT

if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  log "starting private Redis on 127.0.0.1:$REDIS_PORT (data in var/redis)"
  start_redis "$ROOT_DIR/var/redis" "$REDIS_PORT" --appendonly yes --maxmemory-policy noeviction
fi

"$PY" manage.py migrate --noinput
"$PY" manage.py ensure_admin --username admin --password-env ADMIN_PASSWORD

"$PY" manage.py runserver "127.0.0.1:$WEB_PORT" & PIDS+=($!)
# The simulator pushes callbacks as soon as it starts, and WeCom-like delivery gives up
# after its retries: start it only once the web process answers.
wait_http "$PUBLIC_BASE_URL/healthz" 60 || die "the web process did not start"
"$PY" -m celery -A wecom_provider worker -Q priority,default --concurrency 2 -l info & PIDS+=($!)
# Webhook attempts on a worker of their own, as in docker/ and deploy/ (runbook §8).
"$PY" -m celery -A wecom_provider worker -Q webhooks --concurrency 1 -n webhooks@%h -l info & PIDS+=($!)
# redbeat (settings): the schedule and the leader lock live in Redis, no schedule file.
"$PY" -m celery -A wecom_provider beat -l info & PIDS+=($!)
"$PY" manage.py wecom_sandbox --port "$SANDBOX_PORT" --callback-base "$PUBLIC_BASE_URL" \
  --ticket-interval "$TICKET_INTERVAL" --snapshot var/sandbox.json & PIDS+=($!)

# Register the simulator's provider and suites, then (first run only) install its corps
# and pay a license order, all through the real callback path.
# Not in PIDS: it exits when done, which must not stop the platform.
"$PY" manage.py sandbox_bootstrap --sandbox "$WECOM_API_BASE" --demo & BOOTSTRAP_PID=$!

sleep 3
cat >&2 <<MSG

  wecom-provider is running.
    admin:     $PUBLIC_BASE_URL/admin/
    login:     admin / $ADMIN_PASSWORD
    health:    $PUBLIC_BASE_URL/healthz  ·  $PUBLIC_BASE_URL/readyz
    simulator: $WECOM_API_BASE/sandbox/config (WeCom stand-in; control API under /sandbox/)
  Ctrl-C stops everything.

MSG
# Stop everything as soon as any one process dies: a half-running platform misleads.
wait -n "${PIDS[@]}"
log "a process exited; shutting down"
