"""Writes a realistic manifest set for benchmarks: manifests.py OUT COUNT [NAMESPACE]

COUNT objects in equal parts Deployments, Services, ConfigMaps and VirtualServices (about 1 KiB
each, like real ones: labels, annotations, probes, resources).
"""
import sys

out, count = sys.argv[1], int(sys.argv[2])
namespace = sys.argv[3] if len(sys.argv) > 3 else "bench"
notes = "".join(f"    example.com/note-{k}: \"annotation {k}, as tools and teams add them\"\n" for k in range(7))
docs = [f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n"] if len(sys.argv) > 3 else []
for i in range(count // 4):
    app = f"app-{i:04d}"
    docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  namespace: {namespace}
  labels: {{app: {app}, version: v1, team: mesh}}
  annotations:
{notes}spec:
  replicas: 2
  selector:
    matchLabels: {{app: {app}, version: v1}}
  template:
    metadata:
      labels: {{app: {app}, version: v1}}
    spec:
      containers:
      - name: {app}
        image: registry.example.com/team/{app}:1.{i % 10}.0
        ports:
        - {{containerPort: 9080, protocol: TCP}}
        env:
        - {{name: LOG_LEVEL, value: info}}
        - {{name: SERVICE_NAME, value: {app}}}
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
          limits: {{cpu: 500m, memory: 256Mi}}
        readinessProbe:
          httpGet: {{path: /health, port: 9080}}
""")
    docs.append(f"""apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: {namespace}
  labels: {{app: {app}, service: {app}}}
  annotations:
{notes}spec:
  ports:
  - {{port: 9080, name: http, protocol: TCP}}
  selector: {{app: {app}}}
""")
    docs.append(f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-config
  namespace: {namespace}
  annotations:
{notes}data:
  settings.yaml: |
    feature_flags:
      new_checkout: {str(i % 2 == 0).lower()}
    limits:
      requests_per_second: {100 + i}
  owner: "team-{i % 17}"
""")
    kind = "VirtualService" if len(sys.argv) <= 3 else "ConfigMap"
    if kind == "VirtualService":
        docs.append(f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {app}
  namespace: {namespace}
  annotations:
{notes}spec:
  hosts: [{app}]
  http:
  - match:
    - uri: {{prefix: /api/v1}}
    route:
    - destination: {{host: {app}, subset: v1, port: {{number: 9080}}}}
      weight: 90
    - destination: {{host: {app}, subset: v2, port: {{number: 9080}}}}
      weight: 10
    timeout: 5s
""")
    else:
        docs.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {app}-extra, namespace: {namespace}}}\ndata: {{index: '{i}'}}\n")
with open(out, "w") as f:
    f.write("---\n".join(docs))
