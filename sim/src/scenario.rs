//! The clusters as they start: `sim-source` runs open-source Istio, `sim-target` is an "AKS"
//! cluster with the Istio add-on at the matching revision. Pure builders of the objects; the
//! environment installs them through the API.
//!
//! `sim-source`, as upstream's charts render a default install (see [`source_objects`]):
//! namespace `istio-system` with Deployment and Service `istiod` (the chart's labels:
//! `app=istiod`, `istio=pilot`, `istio.io/rev=default`, `app.kubernetes.io/*`, …, container
//! `discovery` running `docker.io/istio/pilot:<version>`), ConfigMap `istio` (MeshConfig in
//! `data.mesh`, by default the stock [`DEFAULT_MESH_CONFIG`]), the `istio-ingressgateway` Deployment (labels
//! `app=istio-ingressgateway`, `istio=ingressgateway`) and LoadBalancer Service (ports
//! `status-port` 15021, `http2` 80→8080, `https` 443→8443), the Istio CRDs and the
//! `istio-sidecar-injector` MutatingWebhookConfiguration.
//!
//! `sim-target`: namespace `aks-istio-system` with Deployment and Service `istiod-asm-1-NN`
//! (image `mcr.microsoft.com/oss/istio/pilot:v<version>-distroless`), ConfigMap
//! `istio-asm-1-NN`, the CRDs, the `istio-sidecar-injector-asm-1-NN` webhook configuration
//! (revision webhooks only: the add-on has no default revision), and an empty
//! `aks-istio-ingress` namespace: the ingress gateway comes with
//! `az aks mesh enable-ingress-gateway` ([`addon_ingress_gateway`]).
//!
//! Each cluster has one Node. The demo app is not installed.

use serde_json::{Value, json};

use super::injection::injector_configuration;

/// The Istio version both clusters run unless configured otherwise.
pub const DEFAULT_ISTIO_VERSION: &str = "1.30.2";

/// The source's MeshConfig: the `mesh` of ConfigMap `istio` exactly as Istio's istiod chart
/// renders it for a default install in `istio-system` (upstream golden
/// `operator/cmd/mesh/testdata/manifest-generate/output/pilot_default.golden.yaml`, template
/// `manifests/charts/istio-control/istio-discovery/templates/configmap.yaml`). The golden's
/// input sets `meshConfig.rootNamespace: istio-control`; without it the chart renders
/// `global.istioNamespace`, `istio-system`, as here. `rootNamespace` and
/// `defaultConfig.discoveryAddress` are fields the add-on does not let a shared MeshConfig
/// set, as in every real source mesh; add e.g. `enableAutoMtls: true` for a precheck
/// blocker.
pub const DEFAULT_MESH_CONFIG: &str = "\
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
defaultProviders:
  metrics:
  - prometheus
enablePrometheusMerge: true
rootNamespace: istio-system
trustDomain: cluster.local
";

/// How the clusters start.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Istio version (`1.30.2`) of both control planes.
    pub istio_version: String,
    /// The source's MeshConfig (`data.mesh` of ConfigMap `istio-system/istio`).
    pub mesh_config: String,
    /// Whether istiod injects native sidecars (reflected in its `ENABLE_NATIVE_SIDECARS`).
    pub native_sidecars: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            istio_version: DEFAULT_ISTIO_VERSION.into(),
            mesh_config: DEFAULT_MESH_CONFIG.into(),
            native_sidecars: false,
        }
    }
}

/// The add-on revision of an Istio version: `1.30.2` → `asm-1-30`.
pub fn revision_for(version: &str) -> String {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    format!("asm-{major}-{minor}")
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// The Istio CRDs served by both clusters.
pub fn crds() -> Vec<Value> {
    let text = include_str!("assets/istio-crds.yaml");
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|document| serde::Deserialize::deserialize(document).ok())
        .filter(|value: &Value| value.is_object())
        .collect()
}

/// The labels Istio's istiod chart puts on everything it renders for the default revision
/// (the golden `pilot_default.golden.yaml`, with the chart version of the release).
fn istiod_chart_labels(version: &str) -> serde_json::Map<String, Value> {
    let labels = json!({
        "app.kubernetes.io/instance": "istio",
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/name": "istiod",
        "app.kubernetes.io/part-of": "istio",
        "app.kubernetes.io/version": version,
        "helm.sh/chart": format!("istiod-{version}"),
        "install.operator.istio.io/owning-resource": "unknown",
        "istio.io/rev": "default",
        "operator.istio.io/component": "Pilot",
        "release": "istio",
    });
    labels.as_object().cloned().unwrap_or_default()
}

fn with_labels(mut labels: serde_json::Map<String, Value>, extra: Value) -> Value {
    if let Value::Object(extra) = extra {
        labels.extend(extra);
    }
    Value::Object(labels)
}

/// The source's istiod: Deployment, Service and ServiceAccount as the istiod chart renders
/// them for a default install (Deployment from the golden `pilot_default.golden.yaml`,
/// Service from `manifests/charts/istio-control/istio-discovery/templates/service.yaml`);
/// volumes, resources and security contexts, which the simulator does not use, are left out.
fn source_istiod(version: &str, image: &str, native: bool) -> Vec<Value> {
    let chart = istiod_chart_labels(version);
    let labels = with_labels(chart.clone(), json!({"app": "istiod", "istio": "pilot"}));
    let mut pod_labels = with_labels(
        chart.clone(),
        json!({"app": "istiod", "istio": "pilot", "istio.io/dataplane-mode": "none",
               "sidecar.istio.io/inject": "false"}),
    );
    if let Some(labels) = pod_labels.as_object_mut() {
        labels.remove("release");
    }
    let field = |path: &str| json!({"fieldRef": {"apiVersion": "v1", "fieldPath": path}});
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istiod", "namespace": "istio-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"istio": "pilot"}},
            "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": pod_labels,
                             "annotations": {"prometheus.io/port": "15014", "prometheus.io/scrape": "true",
                                             "sidecar.istio.io/inject": "false"}},
                "spec": {
                    "serviceAccountName": "istiod",
                    "containers": [{
                        "name": "discovery",
                        "image": image,
                        "args": ["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info",
                                 "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"],
                        "ports": [{"containerPort": 8080, "name": "http-debug", "protocol": "TCP"},
                                  {"containerPort": 15010, "name": "grpc-xds", "protocol": "TCP"},
                                  {"containerPort": 15012, "name": "tls-xds", "protocol": "TCP"},
                                  {"containerPort": 15017, "name": "https-webhooks", "protocol": "TCP"},
                                  {"containerPort": 15014, "name": "http-monitoring", "protocol": "TCP"}],
                        "env": [{"name": "REVISION", "value": "default"},
                                {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
                                {"name": "POD_NAME", "valueFrom": field("metadata.name")},
                                {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
                                {"name": "SERVICE_ACCOUNT", "valueFrom": field("spec.serviceAccountName")},
                                {"name": "KUBECONFIG", "value": "/var/run/secrets/remote/config"},
                                {"name": "CA_TRUSTED_NODE_ACCOUNTS", "value": "istio-system/ztunnel"},
                                {"name": "PILOT_TRACE_SAMPLING", "value": "1"},
                                {"name": "PILOT_ENABLE_ANALYSIS", "value": "false"},
                                {"name": "CLUSTER_ID", "value": "Kubernetes"},
                                {"name": "PLATFORM", "value": ""},
                                // The simulator's `--native-sidecars` option, as set with
                                // `--set values.pilot.env.ENABLE_NATIVE_SIDECARS=...`.
                                {"name": "ENABLE_NATIVE_SIDECARS", "value": if native { "true" } else { "false" }}],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080},
                                           "initialDelaySeconds": 1, "periodSeconds": 3, "timeoutSeconds": 5},
                    }],
                    "tolerations": [{"key": "cni.istio.io/not-ready", "operator": "Exists"}],
                },
            },
        },
    });
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "istiod", "namespace": "istio-system",
                     "labels": with_labels(chart.clone(), json!({"app": "istiod", "istio": "pilot"}))},
        "spec": {
            "selector": {"app": "istiod", "istio": "pilot"},
            "ports": [
                {"name": "grpc-xds", "port": 15010, "protocol": "TCP"},
                {"name": "https-dns", "port": 15012, "protocol": "TCP"},
                {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
                {"name": "http-monitoring", "port": 15014, "protocol": "TCP"},
            ],
        },
    });
    let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "istiod", "namespace": "istio-system",
                                      "labels": with_labels(chart, json!({"app": "istiod"}))}});
    vec![account, deployment, service]
}

fn istiod(namespace: &str, name: &str, revision: &str, image: &str, native: bool) -> Vec<Value> {
    let labels = json!({"app": "istiod", "istio": "pilot", "istio.io/rev": revision,
                        "operator.istio.io/component": "Pilot", "release": "istio"});
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"istio": "pilot", "istio.io/rev": revision}},
            "template": {
                "metadata": {"labels": {"app": "istiod", "istio": "pilot", "istio.io/rev": revision,
                                        "sidecar.istio.io/inject": "false"},
                             "annotations": {"prometheus.io/port": "15014", "prometheus.io/scrape": "true"}},
                "spec": {
                    "serviceAccountName": "istiod",
                    "containers": [{
                        "name": "discovery",
                        "image": image,
                        "args": ["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info",
                                 "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"],
                        "ports": [{"containerPort": 8080, "protocol": "TCP"},
                                  {"containerPort": 15010, "protocol": "TCP"},
                                  {"containerPort": 15017, "protocol": "TCP"}],
                        "env": [{"name": "REVISION", "value": revision},
                                {"name": "PILOT_ENABLE_GATEWAY_API", "value": "true"},
                                {"name": "ENABLE_NATIVE_SIDECARS", "value": if native { "true" } else { "false" }}],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                    }],
                },
            },
        },
    });
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "istiod", "istio": "pilot", "istio.io/rev": revision}},
        "spec": {
            "selector": {"app": "istiod", "istio.io/rev": revision},
            "ports": [
                {"name": "grpc-xds", "port": 15010, "protocol": "TCP"},
                {"name": "https-dns", "port": 15012, "protocol": "TCP"},
                {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
                {"name": "http-monitoring", "port": 15014, "protocol": "TCP"},
            ],
        },
    });
    let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "istiod", "namespace": namespace}});
    vec![account, deployment, service]
}

/// An ingress gateway: Deployment `deployment` and LoadBalancer Service `service` in
/// `namespace`, pods labelled `app=<app>`, `istio=<istio_label>`, ports 15021, 80→8080 and
/// 443→8443.
fn ingress_gateway(
    namespace: &str,
    deployment: &str,
    service: &str,
    app: &str,
    istio_label: &str,
    revision: &str,
    proxy_image: &str,
) -> Vec<Value> {
    let pod_labels = json!({"app": app, "istio": istio_label, "istio.io/rev": revision,
                            "sidecar.istio.io/inject": "false",
                            "service.istio.io/canonical-name": app,
                            "service.istio.io/canonical-revision": "latest"});
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": deployment, "namespace": namespace,
                     "labels": {"app": app, "istio": istio_label, "istio.io/rev": revision}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": app, "istio": istio_label}},
            "template": {
                "metadata": {"labels": pod_labels,
                             "annotations": {"prometheus.io/path": "/stats/prometheus", "prometheus.io/port": "15020",
                                             "prometheus.io/scrape": "true"}},
                "spec": {"containers": [{
                    "name": "istio-proxy",
                    "image": proxy_image,
                    "args": ["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                             "--proxyLogLevel=warning", "--log_output_level=default:info"],
                    "ports": [{"containerPort": 15021, "name": "status-port", "protocol": "TCP"},
                              {"containerPort": 8080, "name": "http2", "protocol": "TCP"},
                              {"containerPort": 8443, "name": "https", "protocol": "TCP"},
                              {"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
                    "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}},
                }]},
            },
        },
    });
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service, "namespace": namespace, "labels": {"app": app, "istio": istio_label}},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": app, "istio": istio_label},
            "ports": [
                {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
                {"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
            ],
        },
    });
    vec![deployment, service]
}

/// The node of a cluster (one per cluster); its status is written separately.
pub fn node(cluster: &str) -> (Value, Value) {
    let name = node_name(cluster);
    let aks = cluster.ends_with("target");
    let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "sim",
                            "topology.kubernetes.io/zone": "0"});
    if aks {
        labels["kubernetes.azure.com/mode"] = json!("system");
        labels["agentpool"] = json!("nodepool1");
    }
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
                      "spec": {"podCIDR": "10.244.0.0/24"}});
    let status = json!({
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status"}],
        "addresses": [{"type": "InternalIP", "address": node_ip(cluster)}, {"type": "Hostname", "address": name}],
        "capacity": {"cpu": "8", "memory": "32Gi", "pods": "250"},
        "allocatable": {"cpu": "7800m", "memory": "28Gi", "pods": "250"},
        "nodeInfo": {"kubeletVersion": "v1.33.2", "kubeProxyVersion": "v1.33.2", "containerRuntimeVersion": "containerd://2.0.5",
                     "operatingSystem": "linux", "architecture": "amd64", "osImage": "Ubuntu 24.04 LTS",
                     "kernelVersion": "6.8.0", "machineID": "", "systemUUID": "", "bootID": ""},
    });
    (node, status)
}

/// The name of a cluster's node.
pub fn node_name(cluster: &str) -> String {
    if cluster.ends_with("target") {
        "aks-nodepool1-31867405-vmss000000".into()
    } else {
        format!("{cluster}-worker")
    }
}

/// The (fictitious, never contacted) address of a cluster's node.
pub fn node_ip(cluster: &str) -> &'static str {
    if cluster.ends_with("target") {
        "10.224.0.4"
    } else {
        "172.18.0.2"
    }
}

/// The objects `sim-source` starts with (CRDs first).
pub fn source_objects(scenario: &Scenario) -> Vec<Value> {
    let version = &scenario.istio_version;
    let chart = istiod_chart_labels(version);
    let mut objects = crds();
    objects.push(namespace("istio-system", json!({})));
    objects.extend(source_istiod(
        version,
        &format!("docker.io/istio/pilot:{version}"),
        scenario.native_sidecars,
    ));
    objects.push(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": "istio-system", "labels": chart.clone()},
        "data": {"mesh": scenario.mesh_config, "meshNetworks": "networks: {}"},
    }));
    let mut injector = injector_configuration("default", true, ("istio-system", "istiod"), "");
    injector["metadata"]["labels"] = with_labels(chart, json!({"app": "sidecar-injector"}));
    objects.push(injector);
    let mut gateway = ingress_gateway(
        "istio-system",
        "istio-ingressgateway",
        "istio-ingressgateway",
        "istio-ingressgateway",
        "ingressgateway",
        "default",
        &format!("docker.io/istio/proxyv2:{version}"),
    );
    // The labels of the istio-ingress chart
    // (`manifests/charts/gateways/istio-ingress/templates/{deployment,service}.yaml`).
    let installed = json!({"release": "istio", "istio.io/rev": "default",
                           "install.operator.istio.io/owning-resource": "unknown",
                           "operator.istio.io/component": "IngressGateways"});
    for object in &mut gateway {
        if let (Some(labels), Some(extra)) = (
            object
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut),
            installed.as_object(),
        ) {
            labels.extend(extra.clone());
        }
    }
    if let Some(labels) = gateway[0]
        .pointer_mut("/spec/template/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.extend(
            json!({"chart": "gateways", "heritage": "Tiller", "release": "istio",
                   "install.operator.istio.io/owning-resource": "unknown",
                   "operator.istio.io/component": "IngressGateways"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        );
    }
    objects.extend(gateway);
    objects
}

/// The add-on's default MeshConfig for a revision (ConfigMap `istio-<revision>`).
fn addon_mesh_config(revision: &str) -> String {
    format!(
        "defaultConfig:\n  discoveryAddress: istiod-{revision}.aks-istio-system.svc:15012\n  gatewayTopology:\n    numTrustedProxies: 1\n  image:\n    imageType: distroless\ndefaultProviders:\n  metrics:\n  - prometheus\nenablePrometheusMerge: true\nrootNamespace: aks-istio-system\ntrustDomain: cluster.local\n"
    )
}

/// The objects `sim-target` starts with (CRDs first).
pub fn target_objects(scenario: &Scenario) -> Vec<Value> {
    let version = &scenario.istio_version;
    let revision = revision_for(version);
    let istiod_name = format!("istiod-{revision}");
    let mut objects = crds();
    objects.push(namespace("aks-istio-system", json!({})));
    objects.push(namespace("aks-istio-ingress", json!({})));
    objects.extend(istiod(
        "aks-istio-system",
        &istiod_name,
        &revision,
        &format!("mcr.microsoft.com/oss/istio/pilot:v{version}-distroless"),
        scenario.native_sidecars,
    ));
    objects.push(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("istio-{revision}"), "namespace": "aks-istio-system",
                     "labels": {"istio.io/rev": revision, "operator.istio.io/component": "Pilot"}},
        "data": {"mesh": addon_mesh_config(&revision), "meshNetworks": "networks: {}"},
    }));
    objects.push(injector_configuration(
        &revision,
        false,
        ("aks-istio-system", &istiod_name),
        "",
    ));
    objects
}

/// What `az aks mesh enable-ingress-gateway --ingress-gateway-type <kind>` creates on the
/// target: Deployment `aks-istio-ingressgateway-<kind>-<revision>` and LoadBalancer Service
/// `aks-istio-ingressgateway-<kind>` in `aks-istio-ingress`, pods labelled
/// `istio=aks-istio-ingressgateway-<kind>`.
pub fn addon_ingress_gateway(version: &str, kind: &str) -> Vec<Value> {
    let revision = revision_for(version);
    let app = format!("aks-istio-ingressgateway-{kind}");
    let mut objects = ingress_gateway(
        "aks-istio-ingress",
        &format!("{app}-{revision}"),
        &app,
        &app,
        &app,
        &revision,
        &format!("mcr.microsoft.com/oss/istio/proxyv2:v{version}-distroless"),
    );
    if kind == "internal"
        && let Some(service) = objects.get_mut(1)
    {
        service["metadata"]["annotations"] =
            json!({"service.beta.kubernetes.io/azure-load-balancer-internal": "true"});
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_objects() {
        assert_eq!(revision_for("1.30.2"), "asm-1-30");
        let crds = crds();
        assert_eq!(crds.len(), 15);
        let source = source_objects(&Scenario::default());
        let istiod = source
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "istiod")
            .expect("istiod");
        assert_eq!(
            istiod["spec"]["template"]["spec"]["containers"][0]["image"],
            "docker.io/istio/pilot:1.30.2"
        );
        let target = target_objects(&Scenario::default());
        assert!(
            target
                .iter()
                .any(|o| o["metadata"]["name"] == "istiod-asm-1-30")
        );
        assert!(
            !target
                .iter()
                .any(|o| o["kind"] == "Service" && o["spec"]["type"] == "LoadBalancer")
        );
        let gateway = addon_ingress_gateway("1.30.2", "external");
        assert_eq!(
            gateway[0]["metadata"]["name"],
            "aks-istio-ingressgateway-external-asm-1-30"
        );
        assert_eq!(gateway[1]["spec"]["ports"][1]["targetPort"], 8080);
        assert_eq!(
            gateway[1]["spec"]["selector"]["istio"],
            "aks-istio-ingressgateway-external"
        );
    }
}
