#!/bin/sh
# The 20-pair fleet rehearsal (tests/fleet.rs) at concurrency 1, 5 and 10 against the real
# kube-apiserver v1.37 of MESHSHIFT_REAL_KUBECONFIG: wall time, the peak summed RSS of the pod
# processes and the simulator, and the management cluster's requests (apiserver_request_total).
# Usage: eval "$(planes.sh up N)"; sh benches/fleet.sh
set -eu
management=${MESHSHIFT_REAL_KUBECONFIG%%:*}
# Only this checkout's processes count (other simulators may run on the machine).
binary="$(pwd)/target/debug/meshshift"
requests() {
    kubectl --kubeconfig "$management" get --raw /metrics |
        awk -v what="$1" '/^apiserver_request_total/ && $0 ~ what { sum += $NF } END { printf "%d\n", sum }'
}
cargo test --test integration --no-run >/dev/null 2>&1
for concurrency in ${CONCURRENCIES:-1 5 10}; do
    peak_file=$(mktemp)
    echo 0 >"$peak_file"
    (
        peak=0
        while :; do
            total=0
            for pid in $(pgrep -f "$binary (fleet pod|.*sim up)" || true); do
                rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
                total=$((total + ${rss:-0}))
            done
            if [ "$total" -gt "$peak" ]; then peak=$total; echo "$peak" >"$peak_file"; fi
            sleep 0.5
        done
    ) &
    sampler=$!
    before_all=$(requests .)
    before_state=$(requests 'resource="(configmaps|leases)"')
    output=$(MESHSHIFT_FLEET_CONCURRENCY=$concurrency cargo test --test integration \
        fleet::twenty -- --include-ignored --nocapture 2>&1) || true
    after_all=$(requests .)
    after_state=$(requests 'resource="(configmaps|leases)"')
    kill "$sampler"
    wall=$(echo "$output" | sed -n 's/.*fleet of 20 pairs at concurrency [0-9]*: \([0-9.]*\) s.*/\1/p')
    echo "$output" | grep -q '1 passed' || { echo "$output" | tail -40; exit 1; }
    echo "concurrency $concurrency: wall ${wall} s, peak RSS $(( $(cat "$peak_file") / 1024 )) MiB," \
        "management requests: all $((after_all - before_all)), ConfigMaps+Leases $((after_state - before_state))"
    rm -f "$peak_file"
done
