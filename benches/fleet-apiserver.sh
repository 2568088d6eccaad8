#!/bin/sh
# How many run-state writes per second the management cluster's kube-apiserver takes: N
# server-side applies of a 10 KB ConfigMap (a pair's journal is about that size) and Lease
# renewals, P in flight, from curl with the kubeconfig's token. Divided by a running pair's
# rate (benches/fleet.sh) it says how many pairs one API server can drive.
# Usage: eval "$(planes.sh up N)"; sh benches/fleet-apiserver.sh [N] [P]
set -eu
requests=${1:-2000}
parallel=${2:-32}
kubeconfig=${MESHSHIFT_REAL_KUBECONFIG%%:*}
server=$(kubectl --kubeconfig "$kubeconfig" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
token=$(kubectl --kubeconfig "$kubeconfig" config view --raw --minify -o jsonpath='{.users[0].user.token}')
work=$(mktemp -d)
trap 'rm -rf "$work"; kubectl --kubeconfig "$kubeconfig" delete namespace fleet-load --wait=false >/dev/null 2>&1 || true' EXIT
kubectl --kubeconfig "$kubeconfig" config view --raw --minify \
    -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$work/ca.crt"
kubectl --kubeconfig "$kubeconfig" create namespace fleet-load >/dev/null 2>&1 || true
printf 'Authorization: Bearer %s\n' "$token" >"$work/header"
chmod 600 "$work/header"
payload=$(head -c 7500 /dev/urandom | base64 -w0)
i=0
while [ $i -lt 100 ]; do
    printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"pair-%d-run"},"data":{"journal.json":"%s"}}' \
        "$i" "$payload" >"$work/body-$i"
    i=$((i + 1))
done
start=$(date +%s.%N)
seq 1 "$requests" | xargs -P "$parallel" -I{} sh -c '
    n=$(( {} % 100 ))
    curl -sS -o /dev/null -w "%{http_code}\n" --cacert "$0/ca.crt" -H @"$0/header" \
        -X PATCH -H "Content-Type: application/apply-patch+yaml" --data-binary @"$0/body-$n" \
        "$1/api/v1/namespaces/fleet-load/configmaps/pair-$n-run?fieldManager=meshshift-fleet&force=true"
' "$work" "$server" >"$work/codes"
end=$(date +%s.%N)
ok=$(grep -c '^200$' "$work/codes" || true)
echo "$requests ConfigMap applies (10 KB), $parallel in flight: $ok answered 200 in" \
    "$(echo "$end - $start" | bc) s, $(echo "$requests / ($end - $start)" | bc) per second"
