#!/usr/bin/env bash
# `make bench`: every benchmark under bench/, each printing its figures and ratios.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT_DIR"
ensure_venv requirements-dev.txt
# Each bench/*.py with a __main__ block is a benchmark; helpers live in bench/support/.
for bench in bench/*.py; do
  grep -q '__name__ == "__main__"' "$bench" || continue
  log "$bench"
  "$PY" "$bench"
done
