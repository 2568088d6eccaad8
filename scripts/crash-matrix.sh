#!/bin/sh
# The crash matrix of the reliability work: the main job on a detached simulator, killed with
# SIGKILL at each point (step boundaries, offsets inside the copy and inside each traffic step),
# then `meshshift resume`; each end state is compared with an uninterrupted run's, and every
# accepted traffic weight must have a passed verification at that weight.
#
#   scripts/crash-matrix.sh [POINTS]    # default 50 (CI runs 10 in tests/crash_matrix.rs)
#
# Prints one line per point and a summary: points, passed, not reached, slowest recovery.
set -eu
points="${1:-50}"
cd "$(dirname "$0")/.."
cargo build --quiet
# The matrix runs on a copy of the binary: a build during the run does not change it.
binary="$(mktemp -d)/meshshift"
cp target/debug/meshshift "$binary"
MESHSHIFT_CRASH_BINARY="$binary" MESHSHIFT_CRASH_POINTS="$points" exec cargo test --test integration -- \
    crash_matrix::killed_at_any_point_and_resumed_ends_as_an_uninterrupted_run --exact --nocapture
