"""Strips what the API server added (status, uid, resourceVersion, managedFields, cluster IPs)
from `kubectl get -o json` output and moves the objects to namespace ARGV[1], as a shell
migration would before `kubectl apply`."""
import json, sys
into = sys.argv[1]
data = json.load(sys.stdin)
for o in data["items"]:
    m = o["metadata"]
    for k in ["resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "selfLink"]:
        m.pop(k, None)
    m.get("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    m["namespace"] = into
    o.pop("status", None)
    if o["kind"] == "Service":
        o["spec"].pop("clusterIP", None); o["spec"].pop("clusterIPs", None)
json.dump(data, sys.stdout)
