#!/usr/bin/env bash
# `make bench`: every benchmark under bench/, each printing its figures and ratios.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT_DIR"
ensure_venv requirements-dev.txt
for bench in bench/*.py; do
  log "$bench"
  "$PY" "$bench"
done
