#!/usr/bin/env bash
# The recorded fault matrix: every row of tests/fault_matrix.rs with several seeds.
# Usage: scripts/fault-matrix.sh [SEEDS]   (default "1 2 3 4 5"; CI runs one seed per row)
# Prints one line per run (row, seed, exit code, seconds) and the cargo test summary.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-1 2 3 4 5}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
MESHSHIFT_FAULT_SEEDS="$seeds" CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" \
    cargo test --test integration fault_matrix -- --test-threads=2 --nocapture >"$log" 2>&1 || status=$?
grep -E '^fault matrix:' "$log" | sort || true
grep -E '^test result:' "$log" || tail -n 40 "$log"
if [ "$status" -ne 0 ]; then
    grep -E -A 12 'panicked at' "$log" || true
fi
exit "$status"
