#!/usr/bin/env bash
# `make lint`: ruff, migrations in sync with models, Django's system checks, and mypy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT_DIR"
ensure_venv requirements-dev.txt
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
# Django needs a settings environment, but no running service, for these two.
export DJANGO_DEBUG=1 DATABASE_URL="sqlite:///$(mktemp -d)/lint.sqlite3"
"$PY" manage.py makemigrations --check --dry-run
"$PY" manage.py check
# Types: the protocol library and every services/selectors module (pyproject.toml).
"$VENV/bin/mypy"
log "lint ok"
