#!/bin/bash
# Stop one plane started by start.sh, by the PID recorded in its state dir (never by name).
# Env: same K8S_DIR / K8S_PORT as given to start.sh (K8S_DIR default derives from K8S_PORT);
#      K8S_WIPE=1 also deletes the state dir (PKI, etcd data, log, kubeconfig).
set -uo pipefail
CACHE_ROOT="${K8S_CP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshshift-control-plane}"
PORT="${K8S_PORT:-6443}"
D="${K8S_DIR:-$CACHE_ROOT/state/$PORT}"
f="$D/control-plane.pid"
if [ -f "$f" ]; then
  p=$(cat "$f")
  # only signal the PID if it still is the process we started (guards against PID reuse)
  if kill -0 "$p" 2>/dev/null && tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline" | grep -q meshshift-control-plane; then
    kill "$p"   # SIGTERM: graceful apiserver shutdown, then etcd closes
    for _ in $(seq 160); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p"
    echo "[stop.sh] stopped meshshift-control-plane (pid $p)"
  fi
  rm -f "$f" "$D/control-plane.out"
fi
if [ "${K8S_WIPE:-0}" = 1 ] && [ -d "$D" ]; then rm -rf "$D"; echo "[stop.sh] wiped $D"; fi
exit 0
