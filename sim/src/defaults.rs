//! Defaulting: the fields the real server fills in when a client leaves them out.
//!
//! Only defaults that clients and the simulator's own agents look at are applied; they follow
//! the upstream `SetDefaults_*` functions for the served versions.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::resource::ResourceType;
use super::schema::Shape;

fn object_mut<'a>(parent: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let map = parent.as_object_mut()?;
    let child = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    child.as_object_mut()
}

fn default_field(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

/// Removes empty maps and lists where typed objects omit them (`omitempty`): the metadata
/// collections of every object, and the declared map and list fields of built-in kinds.
fn drop_empty(value: &mut Value, shape: &Shape) {
    let Some(map) = value.as_object_mut() else {
        return;
    };
    map.retain(|key, child| {
        let child_shape = shape.field(key);
        let collection = matches!(child_shape, Shape::Map(_) | Shape::List(_));
        let empty = match child {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        !(collection && empty)
    });
    for (key, child) in map.iter_mut() {
        let child_shape = shape.field(key);
        match child {
            Value::Object(_) => drop_empty(child, &child_shape),
            Value::Array(items) => {
                let item_shape = child_shape.item();
                for item in items.iter_mut() {
                    drop_empty(item, &item_shape);
                }
            }
            _ => {}
        }
    }
}

/// What the server sets itself after recording field ownership (registry strategies and
/// admission plugins), and the struct fields typed objects always carry.
pub fn prepare(rt: &ResourceType, object: &mut Value) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => prepare_pod(object),
        ("", "Namespace") => prepare_namespace(object),
        _ => {}
    }
    if !rt.is_custom()
        && let (Some(map), Some(zero)) = (object.as_object_mut(), rt.zero.as_object())
    {
        for (key, value) in zero {
            if key != "metadata" && !map.contains_key(key) {
                map.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Applies the defaults of `rt`'s kind to `object`: what the real server's decoding does,
/// so these fields count as set by the writer.
pub fn apply(rt: &ResourceType, object: &mut Value) {
    super::object::drop_nulls(object);
    if rt.is_custom() {
        if let Some(meta) = object.get_mut("metadata") {
            drop_empty(meta, &super::schema::object_meta());
        }
    } else {
        drop_empty(object, &rt.shape);
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => pod(object),
        ("", "Service") => service(object),
        ("", "Namespace") => namespace(object),
        ("", "Secret") => secret(object),
        ("apps", "Deployment") => deployment(object),
        ("apps", "ReplicaSet") => {
            if let Some(spec) = object_mut(object, "spec") {
                default_field(spec, "replicas", json!(1));
            }
            template(object);
        }
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("batch", "Job") => job(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        ("admissionregistration.k8s.io", kind) => {
            webhooks(object, kind == "MutatingWebhookConfiguration")
        }
        _ => {}
    }
}

fn image_pull_policy(image: &str) -> &'static str {
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match name.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn containers(spec: &mut Map<String, Value>, key: &str) {
    let Some(Value::Array(list)) = spec.get_mut(key) else {
        return;
    };
    for container in list.iter_mut() {
        let Some(container) = container.as_object_mut() else {
            continue;
        };
        let image = container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        default_field(
            container,
            "imagePullPolicy",
            json!(image_pull_policy(&image)),
        );
        default_field(
            container,
            "terminationMessagePath",
            json!("/dev/termination-log"),
        );
        default_field(container, "terminationMessagePolicy", json!("File"));
        default_field(container, "resources", json!({}));
        if let Some(Value::Array(ports)) = container.get_mut("ports") {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                default_field(port, "protocol", json!("TCP"));
            }
        }
        if let Some(Value::Array(env)) = container.get_mut("env") {
            for var in env.iter_mut() {
                if let Some(field_ref) = var
                    .get_mut("valueFrom")
                    .and_then(|v| v.get_mut("fieldRef"))
                    .and_then(Value::as_object_mut)
                {
                    default_field(field_ref, "apiVersion", json!("v1"));
                }
            }
        }
    }
}

/// Defaults shared by Pods and pod templates.
fn pod_spec(spec: &mut Map<String, Value>) {
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    containers(spec, "containers");
    containers(spec, "initContainers");
    if let Some(Value::Array(volumes)) = spec.get_mut("volumes") {
        for volume in volumes.iter_mut().filter_map(Value::as_object_mut) {
            for source in ["configMap", "secret"] {
                if let Some(source) = volume.get_mut(source).and_then(Value::as_object_mut) {
                    default_field(source, "defaultMode", json!(420));
                }
            }
        }
    }
}

fn template(object: &mut Value) {
    if let Some(spec) = object
        .get_mut("spec")
        .and_then(|s| s.get_mut("template"))
        .and_then(|t| object_mut(t, "spec"))
    {
        pod_spec(spec);
    }
}

fn quality_of_service(spec: &Map<String, Value>) -> &'static str {
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut any_resources = false;
    let mut guaranteed = !containers.is_empty();
    for container in &containers {
        let resources = container.get("resources");
        let requests = resources
            .and_then(|r| r.get("requests"))
            .and_then(Value::as_object);
        let limits = resources
            .and_then(|r| r.get("limits"))
            .and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any_resources = true;
        }
        let full_limits = limits.is_some_and(|l| l.contains_key("cpu") && l.contains_key("memory"));
        let same = match (requests, limits) {
            (Some(r), Some(l)) => r.iter().all(|(k, v)| l.get(k) == Some(v)),
            (None, Some(_)) => true,
            _ => false,
        };
        guaranteed &= full_limits && same;
    }
    if !any_resources {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn pod(object: &mut Value) {
    let Some(spec) = object_mut(object, "spec") else {
        return;
    };
    pod_spec(spec);
    default_field(spec, "enableServiceLinks", json!(true));
}

/// What the pod registry and the default admission plugins set: the service account,
/// priority, the standard tolerations and the initial status.
fn prepare_pod(object: &mut Value) {
    let Some(spec) = object_mut(object, "spec") else {
        return;
    };
    default_field(spec, "serviceAccountName", json!("default"));
    let account = spec
        .get("serviceAccountName")
        .cloned()
        .unwrap_or(json!("default"));
    default_field(spec, "serviceAccount", account);
    default_field(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    default_field(spec, "priority", json!(0));
    let qos = quality_of_service(spec);
    let tolerations = spec
        .entry("tolerations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = tolerations.as_array_mut() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            if !list
                .iter()
                .any(|t| t.get("key").and_then(Value::as_str) == Some(key))
            {
                list.push(
                    json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                                 "tolerationSeconds": 300}),
                );
            }
        }
    }
    if let Some(status) = object_mut(object, "status") {
        default_field(status, "phase", json!("Pending"));
        default_field(status, "qosClass", json!(qos));
    }
}

fn service(object: &mut Value) {
    let Some(spec) = object_mut(object, "spec") else {
        return;
    };
    default_field(spec, "type", json!("ClusterIP"));
    default_field(spec, "sessionAffinity", json!("None"));
    let service_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if service_type != "ExternalName" {
        default_field(spec, "internalTrafficPolicy", json!("Cluster"));
        default_field(spec, "ipFamilies", json!(["IPv4"]));
        default_field(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    if service_type == "NodePort" || service_type == "LoadBalancer" {
        default_field(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "LoadBalancer" {
        default_field(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            default_field(port, "protocol", json!("TCP"));
            if let Some(number) = port.get("port").cloned() {
                default_field(port, "targetPort", number);
            }
        }
    }
    if let Some(status) = object_mut(object, "status") {
        default_field(status, "loadBalancer", json!({}));
    }
}

/// Namespace defaults, including the name label (set when decoding, so the writer owns it).
fn namespace(object: &mut Value) {
    let name = super::object::meta_str(object, "name").to_string();
    let meta = super::object::meta_mut(object);
    if let Some(labels) = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
    {
        labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
    }
    if let Some(status) = object_mut(object, "status") {
        default_field(status, "phase", json!("Active"));
    }
}

/// What the namespace registry sets itself: the `kubernetes` finalizer.
fn prepare_namespace(object: &mut Value) {
    if let Some(spec) = object_mut(object, "spec") {
        default_field(spec, "finalizers", json!(["kubernetes"]));
    }
}

fn secret(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    default_field(map, "type", json!("Opaque"));
    if let Some(Value::Object(string_data)) = map.shift_remove("stringData") {
        let data = map
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(data) = data.as_object_mut() {
            for (key, value) in string_data {
                let text = super::object::scalar_text(&value);
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                data.insert(key, Value::String(encoded));
            }
        }
    }
}

fn deployment(object: &mut Value) {
    if let Some(spec) = object_mut(object, "spec") {
        default_field(spec, "replicas", json!(1));
        default_field(spec, "revisionHistoryLimit", json!(10));
        default_field(spec, "progressDeadlineSeconds", json!(600));
        default_field(spec, "strategy", json!({}));
        if let Some(strategy) = spec.get_mut("strategy").and_then(Value::as_object_mut) {
            default_field(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                default_field(strategy, "rollingUpdate", json!({}));
                if let Some(rolling) = strategy
                    .get_mut("rollingUpdate")
                    .and_then(Value::as_object_mut)
                {
                    default_field(rolling, "maxUnavailable", json!("25%"));
                    default_field(rolling, "maxSurge", json!("25%"));
                }
            }
        }
    }
    template(object);
}

fn stateful_set(object: &mut Value) {
    if let Some(spec) = object_mut(object, "spec") {
        default_field(spec, "replicas", json!(1));
        default_field(spec, "podManagementPolicy", json!("OrderedReady"));
        default_field(spec, "revisionHistoryLimit", json!(10));
        default_field(
            spec,
            "updateStrategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
        );
        default_field(
            spec,
            "persistentVolumeClaimRetentionPolicy",
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
        );
    }
    template(object);
}

fn daemon_set(object: &mut Value) {
    if let Some(spec) = object_mut(object, "spec") {
        default_field(spec, "revisionHistoryLimit", json!(10));
        default_field(
            spec,
            "updateStrategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
        );
    }
    template(object);
}

fn job(object: &mut Value) {
    let uid = super::object::meta_str(object, "uid").to_string();
    let name = super::object::meta_str(object, "name").to_string();
    if let Some(spec) = object_mut(object, "spec") {
        default_field(spec, "parallelism", json!(1));
        default_field(spec, "completions", json!(1));
        default_field(spec, "backoffLimit", json!(6));
        default_field(spec, "completionMode", json!("NonIndexed"));
        default_field(spec, "suspend", json!(false));
        default_field(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
        let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
        if !manual && !uid.is_empty() {
            default_field(
                spec,
                "selector",
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
            );
            if let Some(labels) = spec
                .get_mut("template")
                .and_then(|t| object_mut(t, "metadata"))
                .and_then(|m| {
                    m.entry("labels")
                        .or_insert_with(|| Value::Object(Map::new()))
                        .as_object_mut()
                })
            {
                for (key, value) in [
                    ("batch.kubernetes.io/controller-uid", &uid),
                    ("batch.kubernetes.io/job-name", &name),
                    ("controller-uid", &uid),
                    ("job-name", &name),
                ] {
                    default_field(labels, key, Value::String(value.clone()));
                }
            }
        }
    }
    template(object);
}

fn crd(object: &mut Value) {
    if let Some(spec) = object_mut(object, "spec") {
        default_field(spec, "conversion", json!({"strategy": "None"}));
        if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
            let kind = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            default_field(names, "listKind", json!(format!("{kind}List")));
            default_field(names, "singular", json!(kind.to_lowercase()));
        }
    }
}

fn webhooks(object: &mut Value, mutating: bool) {
    let Some(Value::Array(hooks)) = object.get_mut("webhooks") else {
        return;
    };
    for hook in hooks.iter_mut().filter_map(Value::as_object_mut) {
        default_field(hook, "failurePolicy", json!("Fail"));
        default_field(hook, "matchPolicy", json!("Equivalent"));
        default_field(hook, "namespaceSelector", json!({}));
        default_field(hook, "objectSelector", json!({}));
        default_field(hook, "timeoutSeconds", json!(10));
        if mutating {
            default_field(hook, "reinvocationPolicy", json!("Never"));
        }
        if let Some(service) = hook
            .get_mut("clientConfig")
            .and_then(|c| c.get_mut("service"))
            .and_then(Value::as_object_mut)
        {
            default_field(service, "port", json!(443));
        }
        if let Some(Value::Array(rules)) = hook.get_mut("rules") {
            for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
                default_field(rule, "scope", json!("*"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn defaulted(group: &str, plural: &str, mut object: Value) -> Value {
        let rt = Registry::new()
            .by_path(group, "v1", plural)
            .expect("built-in type");
        apply(&rt, &mut object);
        prepare(&rt, &mut object);
        object
    }

    #[test]
    fn deployments_get_strategy_and_container_defaults() {
        let object = defaulted(
            "apps",
            "deployments",
            json!({
                "metadata": {"name": "web"},
                "spec": {"template": {"spec": {"containers": [
                    {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}
                ]}}}
            }),
        );
        assert_eq!(object["spec"]["replicas"], 1);
        assert_eq!(
            object["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
            "25%"
        );
        let container = &object["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["imagePullPolicy"], "IfNotPresent");
        assert_eq!(container["ports"][0]["protocol"], "TCP");
        assert_eq!(
            object["spec"]["template"]["spec"]["restartPolicy"],
            "Always"
        );
    }

    #[test]
    fn services_default_ports_and_families() {
        let object = defaulted(
            "",
            "services",
            json!({
                "metadata": {"name": "web"},
                "spec": {"ports": [{"port": 9080, "name": "http"}]}
            }),
        );
        assert_eq!(object["spec"]["type"], "ClusterIP");
        assert_eq!(object["spec"]["ports"][0]["targetPort"], 9080);
        assert_eq!(object["spec"]["ipFamilies"], json!(["IPv4"]));
    }

    #[test]
    fn secret_string_data_is_merged_into_data() {
        let object = defaulted(
            "",
            "secrets",
            json!({
                "metadata": {"name": "s"},
                "data": {"a": "YQ=="},
                "stringData": {"b": "b"}
            }),
        );
        assert_eq!(object["data"], json!({"a": "YQ==", "b": "Yg=="}));
        assert!(object.get("stringData").is_none());
        assert_eq!(object["type"], "Opaque");
    }

    #[test]
    fn pods_get_status_and_qos() {
        let object = defaulted(
            "",
            "pods",
            json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }),
        );
        assert_eq!(object["status"]["phase"], "Pending");
        assert_eq!(object["status"]["qosClass"], "BestEffort");
        assert_eq!(object["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(object["spec"]["serviceAccountName"], "default");
    }
}
