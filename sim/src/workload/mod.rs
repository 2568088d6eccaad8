//! What a cluster's workload controllers and kubelet decide, as pure functions: which
//! ReplicaSets and Pods a workload needs, which to scale or delete, and the status each object
//! reports. The agents in [`crate::agents`] read the cluster, call these and write the
//! results back through the API.

pub mod deployment;
pub mod hash;
pub mod pod;
pub mod replica_set;
pub mod stateful;

use serde_json::Value;

/// A pod as the controllers see it.
#[derive(Clone, Debug, PartialEq)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// `Ready` condition is `True`.
    pub ready: bool,
    /// `metadata.creationTimestamp`, for choosing the newest pods to remove first.
    pub created: String,
    /// Labels, for revision hashes.
    pub labels: std::collections::BTreeMap<String, String>,
}

impl PodView {
    /// Reads a pod object; `None` for pods being deleted (they no longer count).
    pub fn of(pod: &Value) -> Option<PodView> {
        let metadata = pod.get("metadata")?;
        if metadata.get("deletionTimestamp").is_some() {
            return None;
        }
        Some(PodView {
            name: metadata.get("name")?.as_str()?.to_string(),
            ready: pod::is_ready(pod),
            created: metadata
                .get("creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            labels: crate::object::labels(pod),
        })
    }
}

/// `spec.replicas`, defaulting to 1 as the API server does.
pub fn desired_replicas(workload: &Value) -> i64 {
    workload
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0)
}

/// `metadata.generation` (0 when missing).
pub fn generation(object: &Value) -> i64 {
    object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// A condition in the form the API uses, keeping the old transition time when the status did
/// not change (so recomputing an unchanged status yields an identical document).
pub fn condition(
    previous: Option<&Value>,
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &str,
    with_update_time: bool,
) -> Value {
    let status_text = if status { "True" } else { "False" };
    let same_status = previous
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some(status_text);
    let same_reason = previous
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
        == Some(reason)
        && previous
            .and_then(|c| c.get("message"))
            .and_then(Value::as_str)
            == Some(message);
    let keep = |field: &str, keep: bool| -> Value {
        match previous.and_then(|c| c.get(field)) {
            Some(time) if keep => time.clone(),
            _ => Value::String(now.to_string()),
        }
    };
    let mut condition = serde_json::json!({
        "type": kind,
        "status": status_text,
        "lastTransitionTime": keep("lastTransitionTime", same_status),
        "reason": reason,
        "message": message,
    });
    if with_update_time {
        condition["lastUpdateTime"] = keep("lastUpdateTime", same_status && same_reason);
    }
    condition
}

/// The condition of `kind` in a status.
pub fn find_condition<'a>(status: Option<&'a Value>, kind: &str) -> Option<&'a Value> {
    status?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}
