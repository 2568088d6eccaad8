//! Istio's sidecar injection as the API server and istiod apply it, as pure functions.
//!
//! Which pods are injected is decided the way a real cluster decides it: the injector's
//! MutatingWebhookConfigurations (`istio-sidecar-injector[-<revision>]`, with the namespace
//! and object selectors Istio's chart installs) select the webhook the API server calls,
//! then istiod's own checks run (never kube-system and friends, never hostNetwork pods, never
//! twice, and `sidecar.istio.io/inject` on the pod: the label before the annotation). So
//! `istio-injection` beats `istio.io/rev`, a pod opts in only in an unlabelled namespace, and a
//! control plane without a default revision (the AKS add-on) ignores `istio-injection=enabled`.
//! What is injected follows Istio's injection template in outline: the `istio-init` init
//! container, the `istio-proxy` container (or, as a native sidecar, an init container with
//! `restartPolicy: Always`), the labels and annotations Istio adds, and its volumes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::selector::LabelSelector;

/// Namespaces istiod never injects.
pub const IGNORED_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

/// Annotation that marks an injected pod (and lists what was injected).
pub const STATUS_ANNOTATION: &str = "sidecar.istio.io/status";

/// One injection webhook of a MutatingWebhookConfiguration.
#[derive(Clone, Debug)]
pub struct InjectionWebhook {
    /// Webhook name (`namespace.sidecar-injector.istio.io`).
    pub name: String,
    /// The revision of the configuration (`istio.io/rev` label; `default` when missing).
    pub revision: String,
    /// Namespace and name of the injector Service (istiod's).
    pub service: (String, String),
    namespace_selector: LabelSelector,
    object_selector: LabelSelector,
}

/// The injection webhooks of MutatingWebhookConfigurations, in order: those whose
/// `clientConfig.service.path` is `/inject` (what istiod serves).
pub fn webhooks(configurations: &[Value]) -> Vec<InjectionWebhook> {
    let mut configurations: Vec<&Value> = configurations.iter().collect();
    configurations.sort_by_key(|c| {
        c.pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let mut found = Vec::new();
    for configuration in configurations {
        let revision = configuration
            .pointer("/metadata/labels/istio.io~1rev")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let hooks = configuration.get("webhooks").and_then(Value::as_array);
        for hook in hooks.into_iter().flatten() {
            let service = hook.pointer("/clientConfig/service");
            let path = service.and_then(|s| s.get("path")).and_then(Value::as_str);
            if !path.is_some_and(|p| p.starts_with("/inject")) {
                continue;
            }
            let text =
                |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
            let selector = |field: &str| {
                hook.get(field)
                    .map(LabelSelector::from_object)
                    .unwrap_or(Ok(LabelSelector::default()))
            };
            let (Ok(namespace_selector), Ok(object_selector)) =
                (selector("namespaceSelector"), selector("objectSelector"))
            else {
                continue;
            };
            found.push(InjectionWebhook {
                name: text(hook.get("name")),
                revision: revision.clone(),
                service: (
                    text(service.and_then(|s| s.get("namespace"))),
                    text(service.and_then(|s| s.get("name"))),
                ),
                namespace_selector,
                object_selector,
            });
        }
    }
    found
}

/// The webhook the API server calls for a new pod in namespace `namespace` (whose labels are
/// `namespace_labels`; `kubernetes.io/metadata.name` is added as the API server does).
pub fn matching_webhook<'a>(
    webhooks: &'a [InjectionWebhook],
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    pod_labels: &BTreeMap<String, String>,
) -> Option<&'a InjectionWebhook> {
    let mut namespace_labels = namespace_labels.clone();
    namespace_labels.insert("kubernetes.io/metadata.name".into(), namespace.into());
    webhooks.iter().find(|w| {
        w.namespace_selector.matches(&namespace_labels) && w.object_selector.matches(pod_labels)
    })
}

/// istiod's own decision once its webhook is called (`injectRequired`).
pub fn inject_required(namespace: &str, pod: &Value) -> bool {
    if IGNORED_NAMESPACES.contains(&namespace) {
        return false;
    }
    if pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true) {
        return false;
    }
    let annotations = pod.pointer("/metadata/annotations");
    if annotations.and_then(|a| a.get(STATUS_ANNOTATION)).is_some() {
        return false;
    }
    let choice = pod
        .pointer("/metadata/labels/sidecar.istio.io~1inject")
        .or_else(|| annotations.and_then(|a| a.get("sidecar.istio.io/inject")))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    !matches!(choice.as_deref(), Some("n" | "no" | "false" | "off"))
}

/// The revision whose sidecar a new pod gets, or `None`: the webhook selection, then
/// istiod's checks.
pub fn injecting_revision(
    webhooks: &[InjectionWebhook],
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    pod: &Value,
) -> Option<String> {
    let pod_labels = super::object::labels(pod);
    let webhook = matching_webhook(webhooks, namespace, namespace_labels, &pod_labels)?;
    inject_required(namespace, pod).then(|| webhook.revision.clone())
}

fn requirement(key: &str, operator: &str, values: &[&str]) -> Value {
    if values.is_empty() {
        json!({"key": key, "operator": operator})
    } else {
        json!({"key": key, "operator": operator, "values": values})
    }
}

/// The MutatingWebhookConfiguration Istio's chart installs for `revision`: the two
/// revision-label webhooks, plus, for the default revision, the `istio-injection` and pod
/// opt-in webhooks. `service` is istiod's Service (`namespace`, `name`).
pub fn injector_configuration(
    revision: &str,
    default: bool,
    service: (&str, &str),
    ca_bundle: &str,
) -> Value {
    let name = if default {
        "istio-sidecar-injector".to_string()
    } else {
        format!("istio-sidecar-injector-{revision}")
    };
    let rule = json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"}]);
    let webhook = |name: &str, namespace_selector: Vec<Value>, object_selector: Vec<Value>| {
        json!({
            "name": name,
            "clientConfig": {
                "service": {"name": service.1, "namespace": service.0, "path": "/inject", "port": 443},
                "caBundle": ca_bundle,
            },
            "rules": rule,
            "sideEffects": "None",
            "reinvocationPolicy": "Never",
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "timeoutSeconds": 10,
            "admissionReviewVersions": ["v1"],
            "namespaceSelector": {"matchExpressions": namespace_selector},
            "objectSelector": {"matchExpressions": object_selector},
        })
    };
    let revision_value = if default { "default" } else { revision };
    let not_false = requirement("sidecar.istio.io/inject", "NotIn", &["false"]);
    let mut hooks = vec![
        webhook(
            "rev.namespace.sidecar-injector.istio.io",
            vec![
                requirement("istio.io/rev", "In", &[revision_value]),
                requirement("istio-injection", "DoesNotExist", &[]),
            ],
            vec![not_false.clone()],
        ),
        webhook(
            "rev.object.sidecar-injector.istio.io",
            vec![
                requirement("istio.io/rev", "DoesNotExist", &[]),
                requirement("istio-injection", "DoesNotExist", &[]),
            ],
            vec![
                not_false.clone(),
                requirement("istio.io/rev", "In", &[revision_value]),
            ],
        ),
    ];
    if default {
        hooks.push(webhook(
            "namespace.sidecar-injector.istio.io",
            vec![requirement("istio-injection", "In", &["enabled"])],
            vec![not_false],
        ));
        hooks.push(webhook(
            "object.sidecar-injector.istio.io",
            vec![
                requirement("istio-injection", "DoesNotExist", &[]),
                requirement("istio.io/rev", "DoesNotExist", &[]),
            ],
            vec![
                requirement("sidecar.istio.io/inject", "In", &["true"]),
                requirement("istio.io/rev", "DoesNotExist", &[]),
            ],
        ));
    }
    if ca_bundle.is_empty() {
        for hook in &mut hooks {
            if let Some(config) = hook.get_mut("clientConfig").and_then(Value::as_object_mut) {
                config.remove("caBundle");
            }
        }
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": name,
            "labels": {"app": "sidecar-injector", "istio.io/rev": revision_value, "install.operator.istio.io/owning-resource": "unknown"},
        },
        "webhooks": hooks,
    })
}

/// What to inject.
#[derive(Clone, Debug)]
pub struct Sidecar<'a> {
    /// The injecting revision (`default`, `asm-1-30`).
    pub revision: &'a str,
    /// The proxy image (`docker.io/istio/proxyv2:1.30.2`).
    pub proxy_image: &'a str,
    /// Inject `istio-proxy` as a native sidecar unless the pod's
    /// `sidecar.istio.io/nativeSidecar` annotation says otherwise.
    pub native_by_default: bool,
}

/// `docker.io/istio/proxyv2:1.30.2` from istiod's `docker.io/istio/pilot:1.30.2`.
pub fn proxy_image(pilot_image: &str) -> String {
    match pilot_image.rsplit_once("/pilot:") {
        Some((registry, tag)) => format!("{registry}/proxyv2:{tag}"),
        None => pilot_image.replace("pilot", "proxyv2"),
    }
}

fn proxy_container(sidecar: &Sidecar<'_>, native: bool) -> Value {
    let mut container = json!({
        "name": "istio-proxy",
        "image": sidecar.proxy_image,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
        "env": [
            {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
            {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
        ],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
                           "periodSeconds": 15, "timeoutSeconds": 3, "failureThreshold": 4},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        "securityContext": {"allowPrivilegeEscalation": false, "privileged": false, "readOnlyRootFilesystem": true,
                            "runAsGroup": 1337, "runAsNonRoot": true, "runAsUser": 1337,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [
            {"mountPath": "/var/run/secrets/workload-spiffe-uds", "name": "workload-socket"},
            {"mountPath": "/var/run/secrets/credential-uds", "name": "credential-socket"},
            {"mountPath": "/var/run/secrets/workload-spiffe-credentials", "name": "workload-certs"},
            {"mountPath": "/var/run/secrets/istio", "name": "istiod-ca-cert"},
            {"mountPath": "/var/lib/istio/data", "name": "istio-data"},
            {"mountPath": "/etc/istio/proxy", "name": "istio-envoy"},
            {"mountPath": "/var/run/secrets/tokens", "name": "istio-token"},
            {"mountPath": "/etc/istio/pod", "name": "istio-podinfo"},
        ],
    });
    if native {
        container["restartPolicy"] = json!("Always");
        container["startupProbe"] = json!({"httpGet": {"path": "/healthz/ready", "port": 15021}, "periodSeconds": 1, "failureThreshold": 600});
    }
    container
}

fn init_container(sidecar: &Sidecar<'_>) -> Value {
    json!({
        "name": "istio-init",
        "image": sidecar.proxy_image,
        "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                 "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        "securityContext": {"allowPrivilegeEscalation": false, "privileged": false, "readOnlyRootFilesystem": false,
                            "runAsGroup": 0, "runAsNonRoot": false, "runAsUser": 0,
                            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}},
    })
}

fn volumes() -> Vec<Value> {
    vec![
        json!({"name": "workload-socket", "emptyDir": {}}),
        json!({"name": "credential-socket", "emptyDir": {}}),
        json!({"name": "workload-certs", "emptyDir": {}}),
        json!({"name": "istio-envoy", "emptyDir": {"medium": "Memory"}}),
        json!({"name": "istio-data", "emptyDir": {}}),
        json!({"name": "istio-podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}}),
        json!({"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}}),
        json!({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}),
    ]
}

/// Whether the pod gets a native sidecar: its `sidecar.istio.io/nativeSidecar` annotation,
/// else the default.
pub fn wants_native(pod: &Value, default: bool) -> bool {
    match pod
        .pointer("/metadata/annotations/sidecar.istio.io~1nativeSidecar")
        .and_then(Value::as_str)
    {
        Some("true") => true,
        Some("false") => false,
        _ => default,
    }
}

fn canonical(labels: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| labels.get(*k).and_then(Value::as_str))
        .map(str::to_string)
}

/// Adds the sidecar to `pod`: containers, volumes, labels and annotations.
pub fn inject(pod: &mut Value, sidecar: &Sidecar<'_>) {
    let native = wants_native(pod, sidecar.native_by_default);
    let generated = pod
        .pointer("/metadata/generateName")
        .and_then(Value::as_str)
        .map(|g| g.trim_end_matches('-').to_string());
    let Some(object) = pod.as_object_mut() else {
        return;
    };
    let metadata = object.entry("metadata").or_insert_with(|| json!({}));
    let labels = metadata
        .as_object_mut()
        .map(|m| m.entry("labels").or_insert_with(|| json!({})).clone())
        .unwrap_or_else(|| json!({}));
    let label_map = labels.as_object().cloned().unwrap_or_default();
    let workload = generated.unwrap_or_else(|| {
        metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string()
    });
    let canonical_name = canonical(
        &label_map,
        &[
            "service.istio.io/canonical-name",
            "app.kubernetes.io/name",
            "app",
        ],
    )
    .unwrap_or(workload);
    let canonical_revision = canonical(
        &label_map,
        &[
            "service.istio.io/canonical-revision",
            "app.kubernetes.io/version",
            "version",
        ],
    )
    .unwrap_or_else(|| "latest".into());
    let mut first_container = String::new();
    if let Some(spec) = object.get("spec") {
        first_container = spec
            .pointer("/containers/0/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
    }
    let init_names: Vec<&str> = if native {
        vec!["istio-init", "istio-proxy"]
    } else {
        vec!["istio-init"]
    };
    let status = json!({
        "initContainers": init_names,
        "containers": if native { json!([]) } else { json!(["istio-proxy"]) },
        "volumes": ["workload-socket", "credential-socket", "workload-certs", "istio-envoy",
                    "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert"],
        "imagePullSecrets": null,
        "revision": sidecar.revision,
    });
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = metadata.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("security.istio.io/tlsMode".into(), json!("istio"));
            labels.insert(
                "service.istio.io/canonical-name".into(),
                json!(canonical_name),
            );
            labels.insert(
                "service.istio.io/canonical-revision".into(),
                json!(canonical_revision),
            );
        }
        let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert("istio.io/rev".into(), json!(sidecar.revision));
            if !first_container.is_empty() {
                annotations.insert(
                    "kubectl.kubernetes.io/default-container".into(),
                    json!(first_container),
                );
                annotations.insert(
                    "kubectl.kubernetes.io/default-logs-container".into(),
                    json!(first_container),
                );
            }
            annotations.insert("prometheus.io/path".into(), json!("/stats/prometheus"));
            annotations.insert("prometheus.io/port".into(), json!("15020"));
            annotations.insert("prometheus.io/scrape".into(), json!("true"));
            annotations.insert(STATUS_ANNOTATION.into(), json!(status.to_string()));
        }
    }
    let spec = object.entry("spec").or_insert_with(|| json!({}));
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let init = spec.entry("initContainers").or_insert_with(|| json!([]));
    if let Some(init) = init.as_array_mut() {
        init.insert(0, init_container(sidecar));
        if native {
            init.insert(1, proxy_container(sidecar, true));
        }
    }
    if !native
        && let Some(containers) = spec
            .entry("containers")
            .or_insert_with(|| json!([]))
            .as_array_mut()
    {
        containers.push(proxy_container(sidecar, false));
    }
    if let Some(list) = spec
        .entry("volumes")
        .or_insert_with(|| json!([]))
        .as_array_mut()
    {
        list.extend(volumes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pod(pairs: &[(&str, &str)]) -> Value {
        json!({"metadata": {"labels": labels(pairs)}, "spec": {"containers": [{"name": "app"}]}})
    }

    fn source_hooks() -> Vec<InjectionWebhook> {
        webhooks(&[injector_configuration(
            "default",
            true,
            ("istio-system", "istiod"),
            "",
        )])
    }

    fn addon_hooks() -> Vec<InjectionWebhook> {
        webhooks(&[injector_configuration(
            "asm-1-30",
            false,
            ("aks-istio-system", "istiod-asm-1-30"),
            "",
        )])
    }

    #[test]
    fn open_source_rules() {
        let hooks = source_hooks();
        assert_eq!(hooks.len(), 4);
        let decide = |ns: &[(&str, &str)], p: &[(&str, &str)]| {
            injecting_revision(&hooks, "bookinfo", &labels(ns), &pod(p))
        };
        assert_eq!(
            decide(&[("istio-injection", "enabled")], &[]).as_deref(),
            Some("default")
        );
        assert_eq!(
            decide(&[("istio.io/rev", "default")], &[]).as_deref(),
            Some("default")
        );
        assert_eq!(
            decide(
                &[("istio-injection", "enabled"), ("istio.io/rev", "canary")],
                &[]
            )
            .as_deref(),
            Some("default")
        );
        assert_eq!(
            decide(
                &[("istio-injection", "disabled")],
                &[("sidecar.istio.io/inject", "true")]
            ),
            None
        );
        assert_eq!(
            decide(
                &[("istio-injection", "enabled")],
                &[("sidecar.istio.io/inject", "false")]
            ),
            None
        );
        assert_eq!(
            decide(&[], &[("sidecar.istio.io/inject", "true")]).as_deref(),
            Some("default")
        );
        assert_eq!(
            decide(&[], &[("istio.io/rev", "default")]).as_deref(),
            Some("default")
        );
        assert_eq!(decide(&[], &[]), None);
        assert_eq!(
            decide(&[("istio.io/rev", "canary")], &[]),
            None,
            "no canary revision installed"
        );
        let mut system = pod(&[]);
        system["spec"]["hostNetwork"] = json!(true);
        assert_eq!(
            injecting_revision(
                &hooks,
                "bookinfo",
                &labels(&[("istio-injection", "enabled")]),
                &system
            ),
            None
        );
        assert_eq!(
            injecting_revision(
                &hooks,
                "kube-system",
                &labels(&[("istio-injection", "enabled")]),
                &pod(&[])
            ),
            None
        );
        let mut annotated = pod(&[]);
        annotated["metadata"]["annotations"] = json!({"sidecar.istio.io/inject": "false"});
        assert_eq!(
            injecting_revision(
                &hooks,
                "bookinfo",
                &labels(&[("istio-injection", "enabled")]),
                &annotated
            ),
            None
        );
    }

    #[test]
    fn the_addon_has_no_default_revision() {
        let hooks = addon_hooks();
        assert_eq!(hooks.len(), 2);
        let decide = |ns: &[(&str, &str)], p: &[(&str, &str)]| {
            injecting_revision(&hooks, "bookinfo", &labels(ns), &pod(p))
        };
        assert_eq!(
            decide(&[("istio.io/rev", "asm-1-30")], &[]).as_deref(),
            Some("asm-1-30")
        );
        assert_eq!(decide(&[("istio-injection", "enabled")], &[]), None);
        assert_eq!(
            decide(
                &[("istio-injection", "enabled"), ("istio.io/rev", "asm-1-30")],
                &[]
            ),
            None
        );
        assert_eq!(
            decide(&[], &[("istio.io/rev", "asm-1-30")]).as_deref(),
            Some("asm-1-30")
        );
        assert_eq!(decide(&[], &[("sidecar.istio.io/inject", "true")]), None);
    }

    #[test]
    fn injects_containers_labels_and_annotations() {
        let mut p = json!({"metadata": {"generateName": "reviews-v2-5c7d8f9b6-", "labels": {"app": "reviews", "version": "v2"}},
                           "spec": {"containers": [{"name": "reviews", "image": "r"}]}});
        let sidecar = Sidecar {
            revision: "default",
            proxy_image: &proxy_image("docker.io/istio/pilot:1.30.2"),
            native_by_default: false,
        };
        inject(&mut p, &sidecar);
        assert_eq!(p["spec"]["containers"][1]["name"], "istio-proxy");
        assert_eq!(
            p["spec"]["containers"][1]["image"],
            "docker.io/istio/proxyv2:1.30.2"
        );
        assert_eq!(p["spec"]["initContainers"][0]["name"], "istio-init");
        assert_eq!(
            p["metadata"]["labels"]["service.istio.io/canonical-name"],
            "reviews"
        );
        assert_eq!(
            p["metadata"]["labels"]["service.istio.io/canonical-revision"],
            "v2"
        );
        assert_eq!(
            p["metadata"]["labels"]["security.istio.io/tlsMode"],
            "istio"
        );
        assert_eq!(
            p["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
            "reviews"
        );
        assert!(
            p["metadata"]["annotations"][STATUS_ANNOTATION]
                .as_str()
                .unwrap_or_default()
                .contains("istio-proxy")
        );
        assert!(!inject_required("bookinfo", &p), "never twice");

        let mut native = json!({"metadata": {"annotations": {"sidecar.istio.io/nativeSidecar": "true"}},
                                "spec": {"containers": [{"name": "app"}]}});
        inject(&mut native, &sidecar);
        assert_eq!(
            native["spec"]["containers"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(native["spec"]["initContainers"][1]["name"], "istio-proxy");
        assert_eq!(
            native["spec"]["initContainers"][1]["restartPolicy"],
            "Always"
        );
        assert_eq!(
            proxy_image("mcr.microsoft.com/oss/istio/pilot:v1.30.2-distroless"),
            "mcr.microsoft.com/oss/istio/proxyv2:v1.30.2-distroless"
        );
    }
}
