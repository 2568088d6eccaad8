#!/usr/bin/env bash
# Where the time of a 2,000-object copy between two real kube-apiservers goes: binding, export,
# the apply's validating dry runs and its writes (from the cluster layer's debug timings), and
# the CPU seconds the target's control plane (kube-apiserver with its etcd) spent meanwhile.
#
#   KUBECONFIG=<source and target> benches/copy-breakdown.sh BINARY TARGET_PID [RUNS]
#
# Contexts `real-source` and `real-target`; TARGET_PID is the target control plane's process.
# Prints one line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
BINARY=$1 PID=$2 RUNS=${3:-3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
NS=bulk-$$
python3 benches/manifests.py "$WORK/bulk.yaml" 2000 "$NS"
"$BINARY" run benches/apply-file.rhai --set CONTEXT=real-source --set FILE="$WORK/bulk.yaml" >/dev/null
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
for i in $(seq "$RUNS"); do
  before=$(cpu); start=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$WORK/client" env RUST_LOG=meshshift::cluster::effects=debug "$BINARY" run benches/copy-breakdown.rhai \
    --set FROM=real-source --set TO=real-target --set NS="$NS" --set INTO="$NS-$i" >"$WORK/out" 2>"$WORK/err"
  end=$(date +%s.%N); after=$(cpu)
  python3 - "$WORK/out" "$WORK/err" "$start" "$end" "$before" "$after" "$(getconf CLK_TCK)" "$WORK/client" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
err = re.sub(r"\x1b\[[0-9;]*m", "", open(sys.argv[2]).read())
start, end, before, after, tick = map(float, sys.argv[3:8])
client = sum(map(float, open(sys.argv[8]).read().split()[-2:]))
parts = dict(re.findall(r"(\w+)=([0-9.]+)", out))
marks = {}
for line in err.splitlines():
    m = re.search(r"effects: (.*?) elapsed=([0-9.]+)(ms|s|µs)", line)
    if m:
        v = float(m.group(2)); v = v / 1000 if m.group(3) == "ms" else v / 1e6 if m.group(3) == "µs" else v
        marks[m.group(1)] = v
first = marks.get("validated", 0.0)
namespaces = marks.get("namespaces applied", first)
late = marks.get("late objects validated", namespaces)
done = marks.get("applied", late)
print(f"process {end - start:.2f} s | bind {float(parts['bind']):.2f} s | export {float(parts['export']):.2f} s | "
      f"apply {float(parts['apply']):.2f} s: dry runs {first + late - namespaces:.2f} s, writes {namespaces - first + done - late:.2f} s | "
      f"CPU: target control plane {(after - before) / tick:.1f} s, meshshift {client:.1f} s | load {open('/proc/loadavg').read().split()[0]}")
PY
done
