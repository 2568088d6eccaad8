#!/bin/bash
# Start one loopback-only Kubernetes control plane (meshshift-control-plane:
# embedded etcd + kube-apiserver + kube-controller-manager in one process) in
# the background. Several planes can run at once: give each its own K8S_PORT
# (and K8S_DIR / ETCD_PORT).
#
# Env:
#   K8S_PORT        apiserver https port on 127.0.0.1 (default 6443)
#   K8S_DIR         state dir: pki, etcd data, log, pid file, kubeconfig
#                   (default ${XDG_CACHE_HOME:-$HOME/.cache}/meshshift-control-plane/state/$K8S_PORT)
#   ETCD_PORT       etcd client port (default 20000 + K8S_PORT % 20000, e.g. 26443)
#   ETCD_PEER_PORT  etcd peer port (default ETCD_PORT + 20000)
#   K8S_CONTEXT     kubeconfig context/cluster name (default "local"; user "<ctx>-admin", plus context "<ctx>-cert")
#   K8S_NO_CM=1     do not run kube-controller-manager
#   K8S_FRESH=1     stop this plane and wipe K8S_DIR first
#   K8S_APISERVER_ARGS / K8S_CM_ARGS   extra flags (word-split) for kube-apiserver / kube-controller-manager
#   K8S_CP_BIN      the binary (default: built or found by build.sh)
#   K8S_START_TIMEOUT  seconds to wait for readiness (default 300)
# Progress goes to stderr; the LAST line on stdout is the kubeconfig path.
# Log: $K8S_DIR/control-plane.log. If this plane is already running and ready,
# just prints the kubeconfig path. Stop with stop.sh (same env).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE_ROOT="${K8S_CP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshshift-control-plane}"
PORT="${K8S_PORT:-6443}"
D="${K8S_DIR:-$CACHE_ROOT/state/$PORT}"
EP="${ETCD_PORT:-$((20000 + PORT % 20000))}"
EPP="${ETCD_PEER_PORT:-$((EP + 20000))}"
say() { echo "[start.sh :$PORT] $*" >&2; }
die() { echo "[start.sh :$PORT] ERROR: $*" >&2; exit 1; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# alive: the recorded pid still runs our binary (guards against PID reuse)
alive() { [ -f "$D/control-plane.pid" ] && tr '\0' ' ' 2>/dev/null < "/proc/$(cat "$D/control-plane.pid")/cmdline" | grep -q meshshift-control-plane; }
ready() { [ -f "$D/control-plane.out" ] && [ "$(tail -1 "$D/control-plane.out")" = "$D/kubeconfig" ]; }

BIN="${K8S_CP_BIN:-$("$HERE/build.sh" | tail -1)}"
[ -x "$BIN" ] || die "no binary at $BIN"

if [ "${K8S_FRESH:-0}" = 1 ]; then
  K8S_DIR="$D" K8S_PORT="$PORT" "$HERE/stop.sh" >&2 || true
  rm -rf "$D"
fi
mkdir -p "$D"; D=$(cd "$D" && pwd)

if alive; then
  ready || die "pid $(cat "$D/control-plane.pid") is running but not ready; run stop.sh first"
  say "already running (pid $(cat "$D/control-plane.pid"))"; echo "$D/kubeconfig"; exit 0
fi
for p in "$PORT" "$EP" "$EPP"; do port_busy "$p" && die "127.0.0.1:$p already in use (pick other K8S_PORT/ETCD_PORT/ETCD_PEER_PORT)"; done

rm -f "$D/control-plane.out"
say "starting $BIN (state $D)"
# setsid: own session, so the plane survives the caller's terminal/process group.
K8S_PORT="$PORT" K8S_DIR="$D" ETCD_PORT="$EP" ETCD_PEER_PORT="$EPP" \
  setsid nohup "$BIN" > "$D/control-plane.out" 2> "$D/control-plane.log" < /dev/null &
echo $! > "$D/control-plane.pid"

start=$SECONDS
until ready; do
  # The process itself, not `alive`: until setsid/nohup have exec'd the binary its command
  # line does not name it yet, and a busy machine can be that slow.
  if ! kill -0 "$(cat "$D/control-plane.pid")" 2>/dev/null; then say "exited before ready; last log lines:"; tail -20 "$D/control-plane.log" >&2; exit 1; fi
  if (( SECONDS - start > ${K8S_START_TIMEOUT:-300} )); then
    say "not ready after ${K8S_START_TIMEOUT:-300}s; last log lines:"; tail -20 "$D/control-plane.log" >&2
    K8S_DIR="$D" K8S_PORT="$PORT" "$HERE/stop.sh" >&2 || true; exit 1
  fi
  sleep 0.2
done
say "ready after $((SECONDS - start))s (pid $(cat "$D/control-plane.pid")${K8S_NO_CM:+, K8S_NO_CM=$K8S_NO_CM})"
echo "$D/kubeconfig"
