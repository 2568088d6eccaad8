#!/usr/bin/env bash
# The copy step at scale: the main job on simulated clusters whose source holds N namespaces to
# move (bookinfo with its Gateway and VirtualService, and N-1 copies of bookinfo's Services,
# ServiceAccounts, Deployments and DestinationRules), printed as a Markdown table.
#
#   benches/copy-scale.sh                          # this tree's release build
#   benches/copy-scale.sh TREE BINARY              # and, side by side, an earlier version: its
#                                                  # source tree (for its runbook) and release binary
#   SIZES="6 21" benches/copy-scale.sh             # sizes (default 6 21 61 201; not NAMESPACES,
#                                                  # which the runbook reads as its parameter)
#
# For each size: a detached simulator (its own process, so the peak RSS is meshshift's alone),
# the app and its copies set up, then `run runbooks/migrate-oss-istio-to-aks.rhai --yes
# --set STEPS=100` timed as a whole, its copy step from the step's own "done in" line.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OTHER=${1:-}
OTHER_BINARY=${2:-}
SIZES=${SIZES:-6 21 61 201}
WORK=$(mktemp -d)
export NO_COLOR=1
cargo build --release --quiet
trap 'rm -rf "$WORK"' EXIT

# measure LABEL TREE BINARY N: prints "objects copy_s whole_s peak_mib copying_s rollouts_s"
# (the last two from the step's "objects copied in" line; "-" for a runbook without it).
measure() {
  local label=$1 tree=$2 binary=$3 n=$4
  export MESHSHIFT_STATE_DIR="$WORK/$label-$n"
  # A loaded machine can make the first start miss its 60 s: try once more.
  "$binary" sim up --detach >/dev/null 2>&1 || { "$binary" sim down >/dev/null 2>&1 || true; "$binary" sim up --detach >/dev/null; }
  export KUBECONFIG="$MESHSHIFT_STATE_DIR/sim/kubeconfig"
  "$binary" sim az aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external >/dev/null
  "$ROOT/target/release/meshshift" run "$ROOT/runbooks/setup-source-demo.rhai" --set SOURCE_CLUSTER=sim-source >/dev/null
  if [ "$n" -gt 1 ]; then
    "$ROOT/target/release/meshshift" run "$ROOT/benches/scale-setup.rhai" --set CONTEXT=sim-source \
      --set COPIES=$((n - 1)) --set DEMO="$ROOT/runbooks/demo" >/dev/null
  fi
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$binary" run "$tree/runbooks/migrate-oss-istio-to-aks.rhai" --yes \
    --set SOURCE_CLUSTER=sim-source --set TARGET_CLUSTER=sim-target --set STEPS=100 >"$WORK/out" 2>&1 || {
      cat "$WORK/out" >&2; "$binary" sim down >/dev/null; return 1; }
  "$binary" sim down >/dev/null
  python3 - "$WORK/out" "$WORK/time" <<'PY'
import re, sys
out = open(sys.argv[1]).read().splitlines()
objects = next(int(m.group(1)) for line in out if (m := re.search(r"(\d+) objects;", line)))
copy, inside = None, False
for line in out:
    if "==> [" in line:
        inside = "Copy workloads" in line
    elif inside and (m := re.search(r"done in (?:(\d+)m)?([0-9.]+)s", line)):
        copy = int(m.group(1) or 0) * 60 + float(m.group(2)); inside = False
copying = rollouts = "-"
for line in out:
    if m := re.search(r"objects copied in ([0-9.]+) s .*rolled out ([0-9.]+) s later", line):
        copying, rollouts = m.group(1), m.group(2)
whole, peak_kb = open(sys.argv[2]).read().split()
print(objects, copy, whole, int(peak_kb) // 1024, copying, rollouts)
PY
}

echo "| namespaces | objects | copy step | of it, copying | objects/s copied | of it, rollouts | whole run (STEPS=100) | peak RSS |$( [ -n "$OTHER" ] && echo " before: copy step | before: whole run | before: peak RSS | copy step, before/after |")"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |$( [ -n "$OTHER" ] && echo " --- | --- | --- | --- |")"
for n in $SIZES; do
  read -r objects copy whole peak copying rollouts < <(measure after "$ROOT" "$ROOT/target/release/meshshift" "$n")
  row="| $n | $objects | ${copy} s | ${copying} s | $(python3 -c "print(round($objects / $copying))") | ${rollouts} s | ${whole} s | ${peak} MiB |"
  if [ -n "$OTHER" ]; then
    read -r _ bcopy bwhole bpeak _ _ < <(measure before "$OTHER" "$OTHER_BINARY" "$n")
    row="$row ${bcopy} s | ${bwhole} s | ${bpeak} MiB | $(python3 -c "print(f'{$bcopy / $copy:.1f}x')") |"
  fi
  echo "$row"
done
