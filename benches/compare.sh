#!/usr/bin/env bash
# Side-by-side measurements of meshshift against the tools a user would otherwise use
# (kubectl, the AKS guide's shell loop), all in one run, printed as Markdown tables.
#
#   benches/compare.sh                 # everything that can run here
#   RUNS=5 benches/compare.sh          # repetitions per measurement (median reported; default 3)
#
# Needs: a release build (built here), kubectl, curl, python3. Real kube-apiserver rows need
# MESHSHIFT_KUBE_APISERVER (the shared tool that builds and starts one); they are skipped
# otherwise. Nothing here is asserted: numbers go into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-3}
WORK=$(mktemp -d)
MESHSHIFT="$ROOT/target/release/meshshift"
export NO_COLOR=1 MESHSHIFT_STATE_DIR="$WORK/state"

cleanup() {
  "$MESHSHIFT" sim down >/dev/null 2>&1 || true
  if [ -n "${PLANES:-}" ]; then
    for plane in src tgt; do K8S_DIR="$PLANES/$plane" "$MESHSHIFT_KUBE_APISERVER/stop.sh" >/dev/null 2>&1 || true; done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet

# median_ms CMD...: runs the command RUNS times, prints the median wall time in ms.
median_ms() {
  python3 - "$RUNS" "$@" <<'EOF'
import subprocess, sys, time, statistics
runs = int(sys.argv[1]); command = sys.argv[2:]
times = []
for _ in range(runs):
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    times.append((time.perf_counter() - start) * 1000)
print(f"{statistics.median(times):.0f}")
EOF
}

# peak_kb CMD...: peak resident memory of one run, in KiB.
peak_kb() {
  { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null || true; } | tail -1
}

ratio() { python3 -c "print(f'{$1 / $2:.2f}x' if $2 else 'n/a')"; }

echo "# meshshift benchmarks ($(date -u +%Y-%m-%d), $(nproc) cores, median of $RUNS)"
echo

# --- Two real control planes (v1.20), when the shared tool is available -----------------------
KUBECONFIG_PLANES=""
if [ -n "${MESHSHIFT_KUBE_APISERVER:-}" ]; then
  "$MESHSHIFT_KUBE_APISERVER/build.sh" >/dev/null 2>&1
  PLANES="$WORK/planes"
  SRC=$(K8S_DIR="$PLANES/src" K8S_PORT=18443 ETCD_PORT=28443 K8S_CONTEXT=bench-source K8S_NO_CM=1 "$MESHSHIFT_KUBE_APISERVER/start.sh" 2>/dev/null | tail -1)
  TGT=$(K8S_DIR="$PLANES/tgt" K8S_PORT=18543 ETCD_PORT=28543 K8S_CONTEXT=bench-target K8S_NO_CM=1 "$MESHSHIFT_KUBE_APISERVER/start.sh" 2>/dev/null | tail -1)
  KUBECONFIG_PLANES="$SRC:$TGT"
  KUBECONFIG="$KUBECONFIG_PLANES" "$MESHSHIFT" run "$ROOT/benches/apply-crds.rhai" --set CONTEXT=bench-source --set CRDS="$ROOT/sim/src/assets/istio-crds.yaml" >/dev/null
fi

# --- Manifests -----------------------------------------------------------------------------
python3 "$ROOT/benches/manifests.py" "$WORK/objects.yaml" 5000
SIZE_KB=$(( $(stat -c %s "$WORK/objects.yaml") / 1024 ))
echo 'let o = load(param("FILE")); if o.len() != 5000 { fail("count"); }' > "$WORK/load.rhai"
LOAD_MS=$(median_ms "$MESHSHIFT" run "$WORK/load.rhai" --set FILE="$WORK/objects.yaml")
LOAD_KB=$(peak_kb "$MESHSHIFT" run "$WORK/load.rhai" --set FILE="$WORK/objects.yaml")
if [ -n "$KUBECONFIG_PLANES" ]; then
  # kubectl's client-side dry run still asks a server for discovery: give it the real one.
  KUBECTL_MS=$(KUBECONFIG="$KUBECONFIG_PLANES" RUNS=1 median_ms kubectl --context bench-source apply --dry-run=client -f "$WORK/objects.yaml" -o name)
  KUBECTL_KB=$(KUBECONFIG="$KUBECONFIG_PLANES" peak_kb kubectl --context bench-source apply --dry-run=client -f "$WORK/objects.yaml" -o name)
else
  KUBECTL_MS=0; KUBECTL_KB=0
fi
CHECK_MS=$(median_ms "$MESHSHIFT" check runbooks/*.rhai)
echo "## Runbooks and manifests"
echo
echo "| measurement | meshshift | compared with | ratio |"
echo "| --- | --- | --- | --- |"
echo "| \`check\` of every shipped runbook and its imports | $CHECK_MS ms | target < 50 ms | |"
echo "| load 5,000 objects (${SIZE_KB} KiB YAML) | $LOAD_MS ms, peak $((LOAD_KB / 1024)) MiB | \`kubectl apply --dry-run=client\`: $KUBECTL_MS ms, peak $((KUBECTL_KB / 1024)) MiB | $(ratio "$KUBECTL_MS" "$LOAD_MS") faster |"
echo

# --- Real kube-apiserver -------------------------------------------------------------------
if [ -n "${KUBECONFIG_PLANES:-}" ]; then
  export KUBECONFIG="$KUBECONFIG_PLANES"
  DEMO=(-f runbooks/demo/bookinfo.yaml -f runbooks/demo/destination-rule-all.yaml -f runbooks/demo/bookinfo-gateway.yaml)
  M_TIMES=(); K_TIMES=()
  for i in $(seq "$RUNS"); do
    M_TIMES+=("$(RUNS=1 median_ms "$MESHSHIFT" run "$ROOT/benches/apply-demo.rhai" --set CONTEXT=bench-source --set NS="ms-$i" --set DEMO="$ROOT/runbooks/demo")")
    kubectl --context bench-source create namespace "kc-$i" >/dev/null
    K_TIMES+=("$(RUNS=1 median_ms kubectl --context bench-source apply --server-side -n "kc-$i" "${DEMO[@]}")")
  done
  M_MS=$(printf '%s\n' "${M_TIMES[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  K_MS=$(printf '%s\n' "${K_TIMES[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  M2_MS=$(median_ms "$MESHSHIFT" run "$ROOT/benches/apply-demo.rhai" --set CONTEXT=bench-source --set NS=ms-1 --set DEMO="$ROOT/runbooks/demo")
  K2_MS=$(median_ms kubectl --context bench-source apply --server-side -n kc-1 "${DEMO[@]}")
  python3 "$ROOT/benches/manifests.py" "$WORK/bulk.yaml" 2000 bulk
  "$MESHSHIFT" run "$ROOT/benches/apply-file.rhai" --set CONTEXT=bench-source --set FILE="$WORK/bulk.yaml" >/dev/null
  COPY_TIMES=()
  for i in $(seq "$RUNS"); do
    COPY_TIMES+=("$(RUNS=1 median_ms "$MESHSHIFT" run "$ROOT/benches/copy-namespace.rhai" --set FROM=bench-source --set TO=bench-target --set NS=bulk --set INTO="bulk-$i")")
  done
  COPY_MS=$(printf '%s\n' "${COPY_TIMES[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  KCOPY_TIMES=()
  for i in $(seq "$RUNS"); do
    KCOPY_TIMES+=("$(RUNS=1 median_ms "$ROOT/benches/kubectl-copy.sh" bench-source bench-target bulk "kc-bulk-$i")")
  done
  KCOPY_MS=$(printf '%s\n' "${KCOPY_TIMES[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  echo "## Cluster primitives on a real kube-apiserver (v1.20)"
  echo
  echo "| measurement | meshshift | kubectl | ratio |"
  echo "| --- | --- | --- | --- |"
  echo "| apply the demo app and its Istio config (21 objects, created) | $M_MS ms | \`apply --server-side\`: $K_MS ms | $(ratio "$M_MS" "$K_MS") of kubectl's time |"
  echo "| the same again (all unchanged) | $M2_MS ms | $K2_MS ms | $(ratio "$M2_MS" "$K2_MS") of kubectl's time |"
  echo "| export 2,000 objects from one control plane and apply them to the other (created) | $COPY_MS ms | \`get -o json\` \\| strip \\| \`apply --server-side\`: $KCOPY_MS ms | $(ratio "$COPY_MS" "$KCOPY_MS") of kubectl's time (target < 5,000 ms) |"
  echo
  unset KUBECONFIG
else
  echo "(real kube-apiserver rows skipped: MESHSHIFT_KUBE_APISERVER is not set)"
  echo
fi

# --- REPL ------------------------------------------------------------------------------------
eval "$(python3 "$ROOT/benches/repl_latency.py" "$MESHSHIFT" "$RUNS" | sed 's/^/REPL_/')"
echo "## REPL (pseudo-terminal, median of $((RUNS * 3)))"
echo
echo "| measurement | meshshift | target |"
echo "| --- | --- | --- |"
echo "| start-up to the first prompt (no \`--sim\`) | $REPL_startup_ms ms | < 150 ms |"
echo "| Tab to completed function name | $REPL_complete_function_ms ms | < 20 ms |"
echo "| Tab to completed namespace, from the cache (simulated cluster) | $REPL_complete_namespace_ms ms | < 20 ms |"
echo

# --- Simulated clusters: the AKS guide's verification loop and the main job ------------------
"$MESHSHIFT" sim up --detach >/dev/null
export KUBECONFIG="$MESHSHIFT_STATE_DIR/sim/kubeconfig"
kubectl --context sim-source create namespace bookinfo >/dev/null
kubectl --context sim-source label namespace bookinfo istio-injection=enabled >/dev/null
kubectl --context sim-source apply -n bookinfo -f runbooks/demo/bookinfo.yaml -f runbooks/demo/destination-rule-all.yaml -f runbooks/demo/bookinfo-gateway.yaml >/dev/null
kubectl --context sim-source wait --for=condition=Available deployment --all -n bookinfo --timeout=60s >/dev/null
"$MESHSHIFT" sim az aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external >/dev/null
# The migration runbook up to its first step leaves the guide's 90/10 routing in place.
"$MESHSHIFT" run runbooks/migrate-oss-istio-to-aks.rhai --yes --set SOURCE_CLUSTER=sim-source --set TARGET_CLUSTER=sim-target \
  --set STEPS=10 --set SOAK_SECONDS=0 --set PROPAGATION=1s >/dev/null
GATEWAY=$(kubectl --context sim-source get service istio-ingressgateway -n istio-system \
  -o jsonpath='{.status.loadBalancer.ingress[0].ip}:{.spec.ports[?(@.name=="http2")].port}')
LOOP_MS=$(median_ms "$ROOT/benches/guide-loop.sh" "$GATEWAY" 100)
SAMPLE_MS=$(median_ms "$MESHSHIFT" run "$ROOT/benches/sample-attribute.rhai" --set GATEWAY="$GATEWAY" --set COUNT=100)
SAMPLE_1000_MS=$(median_ms "$MESHSHIFT" run "$ROOT/benches/sample-attribute.rhai" --set GATEWAY="$GATEWAY" --set COUNT=1000)
SAMPLE_1000_INNER=$("$MESHSHIFT" run "$ROOT/benches/sample-attribute.rhai" --set GATEWAY="$GATEWAY" --set COUNT=1000 | sed -n 's/.* in \([0-9.]*\) ms.*/\1/p')
"$MESHSHIFT" sim down >/dev/null
unset KUBECONFIG
MAIN_MS=$(RUNS=1 median_ms "$MESHSHIFT" run runbooks/migrate-oss-istio-to-aks.rhai --sim --yes)
echo "## Traffic checks and the main job on the simulated clusters"
echo
echo "| measurement | meshshift | compared with | ratio |"
echo "| --- | --- | --- | --- |"
echo "| 100 requests through the source gateway, attributed to clusters | \`sample\` + \`attribute\`: $SAMPLE_MS ms | the AKS guide's curl + awk + kubectl loop: $LOOP_MS ms | $(ratio "$LOOP_MS" "$SAMPLE_MS") faster |"
echo "| \`sample\` of 1,000 requests (16 connections) | ${SAMPLE_1000_INNER} ms inside the run, $SAMPLE_1000_MS ms for the whole process | target < 1,000 ms | |"
echo "| the main job: \`run runbooks/migrate-oss-istio-to-aks.rhai --sim --yes\` (one run) | $MAIN_MS ms | target < 30,000 ms | |"
echo
