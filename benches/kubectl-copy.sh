#!/usr/bin/env bash
# The shell way to copy a namespace between clusters: kubectl get, strip server fields, apply.
#   benches/kubectl-copy.sh FROM_CONTEXT TO_CONTEXT NAMESPACE INTO
set -euo pipefail
FROM=$1 TO=$2 NS=$3 INTO=$4
kubectl --context "$TO" create namespace "$INTO" >/dev/null
kubectl --context "$FROM" get deployments,services,configmaps -n "$NS" -o json \
  | python3 "$(dirname "$0")/kubectl-neat.py" "$INTO" \
  | kubectl --context "$TO" apply --server-side -f - >/dev/null
