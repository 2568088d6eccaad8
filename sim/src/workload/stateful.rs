//! StatefulSets and DaemonSets on a single-node cluster: StatefulSet pods `<name>-<ordinal>`,
//! one DaemonSet pod, both replaced when the template changes; and their status.

use serde_json::{Value, json};

use super::hash::template_hash;
use super::{PodView, desired_replicas, generation};

/// Label naming the template revision a StatefulSet or DaemonSet pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// A write the StatefulSet or DaemonSet controller wants.
#[derive(Clone, Debug, PartialEq)]
pub enum SetAction {
    /// Create a pod: its name (`None`: generated), with these extra labels.
    CreatePod {
        /// The pod name, or `None` for a generated one.
        name: Option<String>,
        /// Labels added to the template's.
        labels: Vec<(String, String)>,
    },
    /// Delete this pod.
    DeletePod(String),
    /// Replace the workload's status.
    Status(Value),
}

/// The revision name of a workload's current template (`<name>-<hash>`).
pub fn revision(workload: &Value) -> String {
    let name = workload
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let template = workload.pointer("/spec/template").unwrap_or(&Value::Null);
    format!("{name}-{}", template_hash(template, 0))
}

fn pod_revision(pod: &PodView) -> Option<&str> {
    pod.labels.get(REVISION_LABEL).map(String::as_str)
}

/// Decides the writes for a StatefulSet: pods `<name>-0 … <name>-(n-1)` at the current
/// revision, extra ordinals removed.
pub fn plan_stateful_set(set: &Value, pods: &[PodView]) -> Vec<SetAction> {
    let name = set
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let desired = desired_replicas(set);
    let revision = revision(set);
    let mut actions = Vec::new();
    for ordinal in 0..desired {
        let pod_name = format!("{name}-{ordinal}");
        match pods.iter().find(|p| p.name == pod_name) {
            None => actions.push(SetAction::CreatePod {
                name: Some(pod_name.clone()),
                labels: vec![
                    (REVISION_LABEL.into(), revision.clone()),
                    (
                        "statefulset.kubernetes.io/pod-name".into(),
                        pod_name.clone(),
                    ),
                    ("apps.kubernetes.io/pod-index".into(), ordinal.to_string()),
                ],
            }),
            Some(pod) if pod_revision(pod) != Some(revision.as_str()) => {
                actions.push(SetAction::DeletePod(pod.name.clone()));
            }
            Some(_) => {}
        }
    }
    for pod in pods {
        let ordinal = pod
            .name
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|n| n.parse::<i64>().ok());
        if ordinal.is_none_or(|n| n >= desired) {
            actions.push(SetAction::DeletePod(pod.name.clone()));
        }
    }
    let updated = pods
        .iter()
        .filter(|p| pod_revision(p) == Some(revision.as_str()))
        .count();
    let ready = pods.iter().filter(|p| p.ready).count();
    let done = i64::try_from(updated).unwrap_or(0) == desired && pods.len() == updated;
    let current_revision = if done {
        revision.clone()
    } else {
        set.pointer("/status/currentRevision")
            .and_then(Value::as_str)
            .unwrap_or(&revision)
            .to_string()
    };
    let status = json!({
        "observedGeneration": generation(set),
        "replicas": pods.len(),
        "readyReplicas": ready,
        "currentReplicas": if done { updated } else { pods.len() - updated },
        "updatedReplicas": updated,
        "availableReplicas": ready,
        "currentRevision": current_revision,
        "updateRevision": revision,
        "collisionCount": 0,
    });
    if set.get("status") != Some(&status) {
        actions.push(SetAction::Status(status));
    }
    actions
}

/// Decides the writes for a DaemonSet on a one-node cluster: one pod at the current revision.
pub fn plan_daemon_set(set: &Value, pods: &[PodView]) -> Vec<SetAction> {
    let revision = revision(set);
    let mut actions = Vec::new();
    let current: Vec<&PodView> = pods
        .iter()
        .filter(|p| pod_revision(p) == Some(revision.as_str()))
        .collect();
    for pod in pods
        .iter()
        .filter(|p| pod_revision(p) != Some(revision.as_str()))
    {
        actions.push(SetAction::DeletePod(pod.name.clone()));
    }
    for extra in current.iter().skip(1) {
        actions.push(SetAction::DeletePod(extra.name.clone()));
    }
    if current.is_empty() {
        actions.push(SetAction::CreatePod {
            name: None,
            labels: vec![
                (REVISION_LABEL.into(), revision.clone()),
                (
                    "pod-template-generation".into(),
                    generation(set).to_string(),
                ),
            ],
        });
    }
    let scheduled = pods.len().min(1);
    let ready = current.iter().take(1).filter(|p| p.ready).count();
    let status = json!({
        "observedGeneration": generation(set),
        "desiredNumberScheduled": 1,
        "currentNumberScheduled": scheduled,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "updatedNumberScheduled": current.len().min(1),
        "numberAvailable": ready,
    });
    if set.get("status") != Some(&status) {
        actions.push(SetAction::Status(status));
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, revision: &str, ready: bool) -> PodView {
        PodView {
            name: name.into(),
            ready,
            created: String::new(),
            labels: [(REVISION_LABEL.to_string(), revision.to_string())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn stateful_sets_make_ordinal_pods_and_replace_old_revisions() {
        let set = json!({"metadata": {"name": "db", "generation": 1}, "spec": {"replicas": 2, "template": {"spec": {}}}});
        let revision = revision(&set);
        let actions = plan_stateful_set(
            &set,
            &[view("db-0", &revision, true), view("db-2", &revision, true)],
        );
        assert!(matches!(&actions[0], SetAction::CreatePod { name: Some(n), .. } if n == "db-1"));
        assert_eq!(actions[1], SetAction::DeletePod("db-2".into()));
        let old = plan_stateful_set(
            &set,
            &[view("db-0", "db-old", true), view("db-1", &revision, true)],
        );
        assert_eq!(old[0], SetAction::DeletePod("db-0".into()));
    }

    #[test]
    fn daemon_sets_keep_one_current_pod() {
        let set = json!({"metadata": {"name": "cni", "generation": 3}, "spec": {"template": {"spec": {}}}});
        let revision = revision(&set);
        let actions = plan_daemon_set(&set, &[view("cni-abcde", "cni-old", true)]);
        assert_eq!(actions[0], SetAction::DeletePod("cni-abcde".into()));
        assert!(matches!(
            &actions[1],
            SetAction::CreatePod { name: None, .. }
        ));
        let SetAction::Status(status) = plan_daemon_set(&set, &[view("cni-x", &revision, true)])
            .pop()
            .expect("status")
        else {
            panic!()
        };
        assert_eq!(status["numberAvailable"], 1);
        assert_eq!(status["updatedNumberScheduled"], 1);
    }
}
