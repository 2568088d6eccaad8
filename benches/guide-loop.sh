#!/usr/bin/env bash
# The AKS guide's split verification, as written there: 100 sequential requests to the source
# ingress, the reviews pod name taken from the line after "Reviews served by" with awk, then
# each distinct pod name looked up with kubectl in each cluster.
#   benches/guide-loop.sh GATEWAY_ADDRESS [COUNT]
set -uo pipefail
GATEWAY=$1
COUNT=${2:-100}
for i in $(seq 1 "$COUNT"); do
  curl -s "http://$GATEWAY/productpage" | awk '/Reviews served by/{getline; gsub(/<[^>]*>|[[:space:]]/, ""); print}'
done | sort | uniq -c | while read -r count pod; do
  for context in sim-source sim-target; do
    if kubectl --context "$context" get pod "$pod" -n bookinfo >/dev/null 2>&1; then
      echo "$context $count $pod"
    fi
  done
done
