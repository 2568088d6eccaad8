#!/usr/bin/env bash
# The propagation gate and the evidence of each step, measured in one run with the release
# build on the simulator:
#  1. the main job (`run … --sim --yes`) with propagation delays of 0.3 s and 5 s, with the
#     gate and with today's fixed 2 s wait (PROPAGATION_GATE=false);
#  2. steps at 10, 25 and 50% decided by sampling (a fixed sample then a bigger one, and
#     sequentially) and by the gateway pods' counters under a steady background load, on a
#     detached simulator.
# Prints Markdown tables for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/meshshift}
RUNBOOK=runbooks/migrate-oss-istio-to-aks.rhai
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

main_job() { # delay_ms gate
    local dir="$WORK/main-$1-$2" start end out
    mkdir -p "$dir"
    start=$(date +%s.%N)
    if MESHSHIFT_SIM_PROPAGATION_MS=$1 "$BIN" --state-dir "$dir" run "$RUNBOOK" --sim --yes \
        --set PROPAGATION_GATE="$2" >"$dir/out" 2>&1; then out=passed; else out=failed; fi
    end=$(date +%s.%N)
    local waits
    waits=$(grep -o 'live after [0-9.]* s' "$dir/out" | awk '{print $3}' | paste -sd/ - || true)
    local rollbacks
    rollbacks=$(grep -c 'rolled back' "$dir/out" || true)
    printf '| %s s | %s | %.1f s | %s | %s |\n' "$(awk "BEGIN{print $1/1000}")" \
        "$([ "$2" = true ] && echo gate || echo 'fixed 2 s')" "$(echo "$end - $start" | bc)" \
        "${waits:-–}" "$out$([ "$rollbacks" != 0 ] && echo ", $rollbacks rollback(s)")"
}

echo "| propagation delay | wait after each weight change | main job wall time | pods live after (s, per step) | outcome |"
echo "| --- | --- | --- | --- | --- |"
for delay in 300 5000; do
    for gate in true false; do
        main_job "$delay" "$gate"
    done
done

# 2. Decisions per step, on a detached simulator with background load through the source's
# gateway.
STATE="$WORK/detached"
"$BIN" --state-dir "$STATE" sim up --detach --fresh >/dev/null
trap '"$BIN" --state-dir "$STATE" sim down >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
export KUBECONFIG="$STATE/sim/kubeconfig"
kubectl --context sim-source create namespace bookinfo >/dev/null
kubectl --context sim-source label namespace bookinfo istio-injection=enabled >/dev/null
for f in bookinfo.yaml destination-rule-all.yaml bookinfo-gateway.yaml; do
    kubectl --context sim-source apply -n bookinfo -f "runbooks/demo/$f" >/dev/null
done
kubectl --context sim-source wait --for=condition=Available deployment --all -n bookinfo --timeout=60s >/dev/null
"$BIN" --state-dir "$STATE" sim az aks mesh enable-ingress-gateway -g rg -n sim-target \
    --ingress-gateway-type external >/dev/null
GATEWAY=$(python3 -c '
import json,sys
s=json.load(open(sys.argv[1]))
print(next(l["bound"] for l in s["listeners"] if l["cluster"]=="sim-source" and l["service"]=="istio-ingressgateway" and l["address"].endswith(":80")))
' "$STATE/sim/state.json")
# The users: 4 clients, each a request every 10 ms.
python3 - "$GATEWAY" <<'EOF' &
import http.client, sys, threading, time
host, port = sys.argv[1].rsplit(":", 1)
def user():
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    while True:
        try:
            c.request("GET", "/productpage", headers={"Host": "bookinfo"})
            c.getresponse().read()
        except Exception:
            c = http.client.HTTPConnection(host, int(port), timeout=5)
        time.sleep(0.01)
for _ in range(4):
    threading.Thread(target=user, daemon=True).start()
while True:
    time.sleep(1)
EOF
LOAD=$!
trap 'kill $LOAD 2>/dev/null; "$BIN" --state-dir "$STATE" sim down >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

decide() { # label args...
    local label=$1
    shift
    "$BIN" --state-dir "$STATE" run "$RUNBOOK" --yes --set SOURCE_CLUSTER=sim-source \
        --set TARGET_CLUSTER=sim-target --set STEPS=10,25,50 --set SOAK_SECONDS=0 "$@" \
        >"$WORK/decide.out" 2>&1 || true
    local row
    row=$(grep -o 'evidence: .*' "$WORK/decide.out" | sed 's/evidence: //' | paste -sd'|' - || true)
    IFS='|' read -r s10 s25 s50 <<<"$row"
    echo "| $label | ${s10:-failed} | ${s25:-–} | ${s50:-–} |"
    # Back to the owner's routes for the next method.
    "$BIN" --state-dir "$STATE" run runbooks/rollback-traffic.rhai --yes \
        --set SOURCE_CLUSTER=sim-source >/dev/null 2>&1 || true
}

echo
echo "| evidence | 10% | 25% | 50% |"
echo "| --- | --- | --- | --- |"
decide "synthetic, fixed sample then a bigger one (today)"
decide "synthetic, sequential" --set SEQUENTIAL=true
decide "passive counters (background load, 4 clients)" --set EVIDENCE=passive --set PASSIVE_WINDOW=30s
