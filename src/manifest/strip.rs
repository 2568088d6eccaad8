//! Removes what the API server owns, so an object read from one cluster can be applied to
//! another (or compared with its manifest).

use serde_json::Value;

/// Metadata fields the server sets.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    // Owners are uids in the source cluster; they mean nothing elsewhere.
    "ownerReferences",
];

/// Annotations written by clients and controllers, not by the object's author.
const SERVER_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
];

/// Returns `object` without server-owned fields: `status`, metadata the server sets,
/// client bookkeeping annotations, a Service's allocated addresses and node ports, a
/// Namespace's finalizers, a ServiceAccount's generated token secrets, and the `null`
/// `creationTimestamp` kubectl leaves in pod templates.
/// Takes the object by value: callers that keep the original clone it themselves.
pub fn strip(mut object: Value) -> Value {
    strip_in_place(&mut object);
    object
}

/// [`strip`] of a value in place.
pub fn strip_in_place(object: &mut Value) {
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let Some(fields) = object.as_object_mut() else {
        return;
    };
    fields.remove("status");
    if let Some(Value::Object(metadata)) = fields.get_mut("metadata") {
        for key in SERVER_METADATA {
            metadata.remove(*key);
        }
        let now_empty = match metadata.get_mut("annotations") {
            Some(Value::Object(annotations)) => {
                for key in SERVER_ANNOTATIONS {
                    annotations.remove(*key);
                }
                annotations.is_empty()
            }
            Some(Value::Null) => true,
            _ => false,
        };
        if now_empty {
            metadata.remove("annotations");
        }
    }
    match kind.as_str() {
        "Service" => strip_service(fields),
        "Namespace" => {
            if let Some(Value::Object(spec)) = fields.get_mut("spec") {
                spec.remove("finalizers");
                if spec.is_empty() {
                    fields.remove("spec");
                }
            }
        }
        "ServiceAccount" => {
            fields.remove("secrets");
        }
        "Pod" => {
            if let Some(Value::Object(spec)) = fields.get_mut("spec") {
                spec.remove("nodeName");
            }
        }
        _ => {}
    }
    // Workload templates: kubectl writes `creationTimestamp: null` into them.
    if let Some(Value::Object(template_metadata)) = fields
        .get_mut("spec")
        .and_then(|spec| spec.get_mut("template"))
        .and_then(|template| template.get_mut("metadata"))
        && template_metadata.get("creationTimestamp") == Some(&Value::Null)
    {
        template_metadata.remove("creationTimestamp");
    }
}

fn strip_service(fields: &mut serde_json::Map<String, Value>) {
    let Some(Value::Object(spec)) = fields.get_mut("spec") else {
        return;
    };
    // Headless services keep `clusterIP: None`: that is the author's choice, not an allocation.
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    if !headless {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    spec.remove("healthCheckNodePort");
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for port in ports {
            if let Some(port) = port.as_object_mut() {
                port.remove("nodePort");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_a_live_service() {
        let live = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "productpage", "namespace": "bookinfo", "uid": "1", "resourceVersion": "42",
                "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [], "labels": {"app": "productpage"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "type": "LoadBalancer",
                "ports": [{"port": 9080, "nodePort": 31000, "name": "http"}]},
            "status": {"loadBalancer": {}}
        });
        assert_eq!(
            strip(live.clone()),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "productpage", "namespace": "bookinfo", "labels": {"app": "productpage"}},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 9080, "name": "http"}]}
            })
        );
    }

    #[test]
    fn keeps_headless_cluster_ip_and_author_annotations() {
        let live = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "db", "annotations": {"team": "a"}}, "spec": {"clusterIP": "None"}});
        assert_eq!(strip(live.clone()), live);
    }

    #[test]
    fn strips_template_null_timestamp_and_namespace_finalizers() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "generation": 3},
            "spec": {"template": {"metadata": {"creationTimestamp": null, "labels": {"app": "d"}}}}});
        assert_eq!(
            strip(deployment)["spec"]["template"]["metadata"],
            json!({"labels": {"app": "d"}})
        );
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]}});
        assert_eq!(
            strip(namespace),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}})
        );
    }
}
