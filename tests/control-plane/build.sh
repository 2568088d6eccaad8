#!/bin/bash
# Build meshshift-control-plane into a cache dir keyed by a hash of the sources
# (go.mod, go.sum, *.go, this script and the Go version). A no-op when that
# binary exists. Progress goes to stderr; the LAST stdout line is the binary path.
#
# Env:
#   GO              go command (default: go on PATH, else /usr/local/go/bin/go)
#   K8S_CP_CACHE    cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/meshshift-control-plane)
#   K8S_CP_FORCE=1  rebuild even if the cached binary exists
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[ -x "$GO" ] || { echo "[build.sh] ERROR: Go not found (set GO or put go on PATH)" >&2; exit 1; }
CACHE="${K8S_CP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshshift-control-plane}"

cd "$HERE"
HASH=$( { "$GO" env GOVERSION GOOS GOARCH; cat go.mod go.sum build.sh ./*.go; } | sha256sum | cut -c1-16)
OUT="$CACHE/$HASH/bin/meshshift-control-plane"
if [ -x "$OUT" ] && [ "${K8S_CP_FORCE:-0}" != 1 ]; then echo "$OUT"; exit 0; fi

# Stamp the upstream release into /version (kubectl and kube-rs read it), the
# way the upstream build (hack/lib/version.sh) does.
IFS='|' read -r KVER KTIME < <("$GO" list -m -f '{{.Version}}|{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
MAJOR=${KVER#v}; MAJOR=${MAJOR%%.*}
MINOR=${KVER#v*.}; MINOR=${MINOR%%.*}
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$KVER -X $pkg.gitMajor=$MAJOR -X $pkg.gitMinor=$MINOR"
  LDFLAGS+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=clean -X $pkg.buildDate=$KTIME"
done

echo "[build.sh] building meshshift-control-plane (kubernetes $KVER) into $(dirname "$OUT")" >&2
mkdir -p "$(dirname "$OUT")"
start=$(date +%s)
# CGO off: no C toolchain needed (upstream builds kube-apiserver the same way).
# Private temp name: concurrent builds of the same sources must not clobber each other.
CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -ldflags "$LDFLAGS" -o "$OUT.tmp.$$" .
mv -f "$OUT.tmp.$$" "$OUT"
echo "[build.sh] built in $(( $(date +%s) - start ))s" >&2
echo "$OUT"
