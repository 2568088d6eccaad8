//! The ReplicaSet controller's decisions: create or delete pods to match `spec.replicas`,
//! and the status that results.

use serde_json::{Value, json};

use super::{PodView, desired_replicas, generation};

/// A write the ReplicaSet controller wants.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplicaSetAction {
    /// Create this many pods from the template.
    CreatePods(i64),
    /// Delete these pods.
    DeletePods(Vec<String>),
    /// Replace the ReplicaSet's status.
    Status(Value),
}

/// Decides the writes for one ReplicaSet given its live pods. Pods to remove are chosen
/// as Kubernetes does: not-ready ones first, then the newest.
pub fn plan(set: &Value, pods: &[PodView]) -> Vec<ReplicaSetAction> {
    let desired = desired_replicas(set);
    let have = i64::try_from(pods.len()).unwrap_or(i64::MAX);
    let mut actions = Vec::new();
    if have < desired {
        actions.push(ReplicaSetAction::CreatePods(desired - have));
    } else if have > desired {
        let mut ordered: Vec<&PodView> = pods.iter().collect();
        ordered.sort_by(|a, b| {
            a.ready
                .cmp(&b.ready)
                .then(b.created.cmp(&a.created))
                .then(b.name.cmp(&a.name))
        });
        let surplus = usize::try_from(have - desired).unwrap_or(0);
        actions.push(ReplicaSetAction::DeletePods(
            ordered
                .iter()
                .take(surplus)
                .map(|p| p.name.clone())
                .collect(),
        ));
    }
    let ready = pods.iter().filter(|p| p.ready).count();
    let mut status = json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": generation(set),
    });
    if let Some(map) = status.as_object_mut() {
        map.retain(|key, v| {
            key == "replicas" || key == "observedGeneration" || v.as_i64() != Some(0)
        });
    }
    if set.get("status") != Some(&status) {
        actions.push(ReplicaSetAction::Status(status));
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool, created: &str) -> PodView {
        PodView {
            name: name.into(),
            ready,
            created: created.into(),
            labels: Default::default(),
        }
    }

    #[test]
    fn scales_up_and_down() {
        let set = json!({"metadata": {"generation": 1}, "spec": {"replicas": 3}});
        assert_eq!(
            plan(&set, &[pod("a", true, "1")])[0],
            ReplicaSetAction::CreatePods(2)
        );
        let down = json!({"metadata": {"generation": 2}, "spec": {"replicas": 1}});
        let pods = [
            pod("a", true, "1"),
            pod("b", true, "2"),
            pod("c", false, "0"),
        ];
        assert_eq!(
            plan(&down, &pods)[0],
            ReplicaSetAction::DeletePods(vec!["c".into(), "b".into()])
        );
        let ReplicaSetAction::Status(status) = &plan(&down, &pods)[1] else {
            panic!()
        };
        assert_eq!(status["replicas"], 3);
        assert_eq!(status["readyReplicas"], 2);
    }
}
