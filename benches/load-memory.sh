#!/usr/bin/env bash
# `load` of 5,000 objects (benches/manifests.py), as compare.sh measures it, for several builds
# side by side in one run: wall time (median of RUNS) and peak RSS (median of RUNS), runs
# interleaved so both binaries see the same machine. A second script also reads every object
# once (a name from each), which converts every compact object to a map.
#
#   benches/load-memory.sh OLD_BINARY NEW_BINARY [...]
#
# Prints a Markdown table. Nothing here is asserted: numbers go into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export NO_COLOR=1 MESHSHIFT_STATE_DIR="$WORK/state"

python3 benches/manifests.py "$WORK/objects.yaml" 5000
echo 'let o = load(param("FILE")); if o.len() != 5000 { fail("count"); }' > "$WORK/load.rhai"
echo 'let o = load(param("FILE")); let names = []; for x in o { names.push(x.metadata.name); } if names.len() != 5000 { fail("count"); }' > "$WORK/read.rhai"
SCRIPTS=(load read)

declare -A TIMES KBS
for _ in $(seq "$RUNS"); do
  for script in "${SCRIPTS[@]}"; do
    for binary in "$@"; do
      # %e: wall seconds, %M: peak resident KiB.
      read -r seconds kb < <(/usr/bin/time -f "%e %M" "$binary" run "$WORK/$script.rhai" --set FILE="$WORK/objects.yaml" 2>&1 >/dev/null | tail -1)
      TIMES[$script $binary]+="$seconds "
      KBS[$script $binary]+="$kb "
    done
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "load 5,000 objects ($(( $(stat -c %s "$WORK/objects.yaml") / 1024 )) KiB YAML), $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg), median of $RUNS"
echo
echo "| script | binary | time | peak RSS |"
echo "| --- | --- | --- | --- |"
for script in "${SCRIPTS[@]}"; do
  for binary in "$@"; do
    seconds=$(echo "${TIMES[$script $binary]}" | median)
    kb=$(echo "${KBS[$script $binary]}" | median)
    echo "| $script | $binary | $(python3 -c "print(round($seconds * 1000))") ms | $(python3 -c "print(f'{$kb / 1024:.1f}')") MiB |"
  done
done
