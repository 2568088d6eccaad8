//! Pods made from templates, and the status the kubelet reports once they run.

use serde_json::{Value, json};

use super::hash::fnv32a;

/// Whether a pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// An owner reference marking `owner` as the controller of what carries it.
pub fn controller_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": owner.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "uid": owner.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// A pod for `owner` from its pod `template`, on `node`: named `name` or, when `name` is
/// `None`, generated from `generate_prefix` by the API server. `extra_labels` are added to the
/// template's labels (revision hashes, pod names).
pub fn from_template(
    owner: &Value,
    template: &Value,
    node: &str,
    name: Option<&str>,
    generate_prefix: &str,
    extra_labels: &[(&str, &str)],
) -> Value {
    let namespace = owner
        .pointer("/metadata/namespace")
        .cloned()
        .unwrap_or(Value::Null);
    let mut metadata = json!({
        "namespace": namespace,
        "labels": template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
        "ownerReferences": [controller_reference(owner)],
    });
    if let Some(annotations) = template.pointer("/metadata/annotations") {
        metadata["annotations"] = annotations.clone();
    }
    match name {
        Some(name) => metadata["name"] = json!(name),
        None => metadata["generateName"] = json!(generate_prefix),
    }
    if let Some(labels) = metadata["labels"].as_object_mut() {
        for (key, value) in extra_labels {
            labels.insert((*key).to_string(), json!(value));
        }
    }
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(spec) = spec.as_object_mut() {
        spec.insert("nodeName".into(), json!(node));
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// Where a running pod is: its IP, the node's IP, and the time it started.
#[derive(Clone, Debug)]
pub struct Placement<'a> {
    /// The pod's IP.
    pub pod_ip: &'a str,
    /// The node's IP.
    pub host_ip: &'a str,
    /// RFC 3339 start time.
    pub started: &'a str,
}

fn container_id(pod_name: &str, container: &str) -> String {
    let seed = format!("{pod_name}/{container}");
    let a = fnv32a(seed.as_bytes());
    let b = fnv32a(format!("{seed}#").as_bytes());
    format!(
        "containerd://{a:08x}{b:08x}{:08x}{:08x}",
        a ^ b,
        a.rotate_left(7)
    )
}

fn image_id(image: &str) -> String {
    let repository =
        image.rsplit_once(':').map_or(
            image,
            |(repo, tag)| {
                if tag.contains('/') { image } else { repo }
            },
        );
    let a = fnv32a(image.as_bytes());
    format!(
        "{repository}@sha256:{a:08x}{:056x}",
        u128::from(a) * 0x9e37_79b9
    )
}

/// The status of a pod whose containers all run and are ready: phase `Running`, the four
/// conditions, IPs and container statuses (init containers that run to completion show as
/// terminated, native sidecars as running).
pub fn running_status(pod: &Value, placement: &Placement<'_>) -> Value {
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let started = placement.started;
    let running = |container: &Value| {
        let name = container
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let image = container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        json!({
            "name": name,
            "image": image,
            "imageID": image_id(image),
            "containerID": container_id(pod_name, name),
            "ready": true,
            "started": true,
            "restartCount": 0,
            "state": {"running": {"startedAt": started}},
        })
    };
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|list| list.iter().map(running).collect())
        .unwrap_or_default();
    let init_containers: Vec<Value> = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|container| {
                    if container.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
                        return running(container);
                    }
                    let mut status = running(container);
                    status["ready"] = json!(true);
                    status["started"] = json!(false);
                    status["state"] = json!({"terminated": {
                        "exitCode": 0, "reason": "Completed",
                        "startedAt": started, "finishedAt": started,
                        "containerID": status["containerID"].clone(),
                    }});
                    status
                })
                .collect()
        })
        .unwrap_or_default();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": started});
    let mut status = json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers"),
            condition("Initialized"),
            condition("Ready"),
            condition("ContainersReady"),
            condition("PodScheduled"),
        ],
        "hostIP": placement.host_ip,
        "hostIPs": [{"ip": placement.host_ip}],
        "podIP": placement.pod_ip,
        "podIPs": [{"ip": placement.pod_ip}],
        "startTime": started,
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    });
    if !init_containers.is_empty() {
        status["initContainerStatuses"] = json!(init_containers);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_from_templates_carry_owner_labels_and_node() {
        let owner = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                           "metadata": {"name": "reviews-v1-abc", "namespace": "bookinfo", "uid": "u1"}});
        let template = json!({"metadata": {"labels": {"app": "reviews"}},
                              "spec": {"containers": [{"name": "reviews", "image": "r:1"}]}});
        let pod = from_template(
            &owner,
            &template,
            "node-0",
            None,
            "reviews-v1-abc-",
            &[("pod-template-hash", "abc")],
        );
        assert_eq!(pod["metadata"]["generateName"], "reviews-v1-abc-");
        assert_eq!(pod["metadata"]["namespace"], "bookinfo");
        assert_eq!(pod["metadata"]["labels"]["pod-template-hash"], "abc");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(pod["spec"]["nodeName"], "node-0");
    }

    #[test]
    fn running_status_marks_everything_ready() {
        let pod = json!({"metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "app", "image": "a:1"}],
                                  "initContainers": [{"name": "istio-init", "image": "p:1"},
                                                     {"name": "istio-proxy", "image": "p:1", "restartPolicy": "Always"}]}});
        assert!(!is_ready(&pod));
        let status = running_status(
            &pod,
            &Placement {
                pod_ip: "10.244.0.5",
                host_ip: "10.224.0.4",
                started: "2026-01-01T00:00:00Z",
            },
        );
        let with_status = json!({"status": status});
        assert!(is_ready(&with_status));
        assert_eq!(status["podIP"], "10.244.0.5");
        assert_eq!(status["containerStatuses"][0]["ready"], true);
        assert_eq!(
            status["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert!(status["initContainerStatuses"][1]["state"]["running"].is_object());
        assert!(
            image_id("docker.io/istio/proxyv2:1.30.1")
                .starts_with("docker.io/istio/proxyv2@sha256:")
        );
    }
}
