//! The Deployment controller's decisions: one ReplicaSet per pod template (named after its
//! hash), scaled to the wanted replicas; older ReplicaSets scaled to zero once the new one's
//! pods are available (a surge rollout); and the Deployment's status and conditions.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::hash::template_hash;
use super::pod::controller_reference;
use super::{condition, desired_replicas, find_condition, generation};

/// Pods of one ReplicaSet that are not being deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodCounts {
    /// All of them.
    pub total: i64,
    /// Those that are Ready.
    pub ready: i64,
}

/// A write the Deployment controller wants.
#[derive(Clone, Debug, PartialEq)]
pub enum DeploymentAction {
    /// Create this ReplicaSet.
    CreateReplicaSet(Value),
    /// Set a ReplicaSet's `spec.replicas`.
    ScaleReplicaSet {
        /// ReplicaSet name.
        name: String,
        /// Wanted replicas.
        replicas: i64,
    },
    /// Replace the Deployment's status.
    Status(Value),
}

fn revision_of(set: &Value) -> i64 {
    set.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn uid_of(object: &Value) -> &str {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn hash_label(set: &Value) -> Option<&str> {
    set.pointer("/metadata/labels/pod-template-hash")
        .and_then(Value::as_str)
}

/// The ReplicaSet a Deployment needs for its current template.
pub fn new_replica_set(deployment: &Value, hash: &str, revision: i64, replicas: i64) -> Value {
    let name = format!("{}-{hash}", name_of(deployment));
    let mut template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = deployment
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let labels = template["metadata"]["labels"].clone();
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": deployment.pointer("/metadata/namespace").cloned().unwrap_or(Value::Null),
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": desired_replicas(deployment).to_string(),
                "deployment.kubernetes.io/max-replicas": (desired_replicas(deployment) + surge(deployment)).to_string(),
                "deployment.kubernetes.io/revision": revision.to_string(),
            },
            "ownerReferences": [controller_reference(deployment)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": deployment.pointer("/spec/minReadySeconds").cloned().unwrap_or(json!(0)),
            "selector": selector,
            "template": template,
        }
    })
}

/// `maxSurge` as a number of pods (default 25%, rounded up).
fn surge(deployment: &Value) -> i64 {
    let desired = desired_replicas(deployment);
    match deployment.pointer("/spec/strategy/rollingUpdate/maxSurge") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(1),
        Some(Value::String(percent)) => percent
            .trim_end_matches('%')
            .parse::<i64>()
            .map(|p| (desired * p + 99) / 100)
            .unwrap_or(1),
        _ => (desired * 25 + 99) / 100,
    }
}

/// `maxUnavailable` as a number of pods (default 25%, rounded down).
fn max_unavailable(deployment: &Value) -> i64 {
    let desired = desired_replicas(deployment);
    match deployment.pointer("/spec/strategy/rollingUpdate/maxUnavailable") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(percent)) => percent
            .trim_end_matches('%')
            .parse::<i64>()
            .map(|p| desired * p / 100)
            .unwrap_or(0),
        _ => desired * 25 / 100,
    }
}

/// Decides the writes for one Deployment, given the ReplicaSets it owns and the pod counts of
/// each (by ReplicaSet uid). `now` stamps changed conditions.
pub fn plan(
    deployment: &Value,
    owned_sets: &[&Value],
    counts: &HashMap<String, PodCounts>,
    now: &str,
) -> Vec<DeploymentAction> {
    let mut actions = Vec::new();
    let desired = desired_replicas(deployment);
    let template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let collisions = deployment
        .pointer("/status/collisionCount")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    let hash = template_hash(&template, collisions);
    let newest = owned_sets
        .iter()
        .find(|s| hash_label(s) == Some(hash.as_str()));
    let count = |set: &Value| counts.get(uid_of(set)).copied().unwrap_or_default();
    let old_sets: Vec<&&Value> = owned_sets
        .iter()
        .filter(|s| hash_label(s) != Some(hash.as_str()))
        .collect();
    let old_pods: i64 = old_sets.iter().map(|s| count(s).total).sum();
    let recreate = deployment
        .pointer("/spec/strategy/type")
        .and_then(Value::as_str)
        == Some("Recreate");
    let paused = deployment.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let mut created = false;
    if !paused {
        let wanted_new = if recreate && old_pods > 0 { 0 } else { desired };
        match newest {
            None => {
                let revision = owned_sets.iter().map(|s| revision_of(s)).max().unwrap_or(0) + 1;
                actions.push(DeploymentAction::CreateReplicaSet(new_replica_set(
                    deployment, &hash, revision, wanted_new,
                )));
                created = true;
            }
            Some(set) => {
                let current = set
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                if current != wanted_new {
                    actions.push(DeploymentAction::ScaleReplicaSet {
                        name: name_of(set).to_string(),
                        replicas: wanted_new,
                    });
                }
            }
        }
        let new_ready = newest.map(|s| count(s).ready).unwrap_or(0);
        if recreate || new_ready >= desired {
            for set in &old_sets {
                if set.pointer("/spec/replicas").and_then(Value::as_i64) != Some(0) {
                    actions.push(DeploymentAction::ScaleReplicaSet {
                        name: name_of(set).to_string(),
                        replicas: 0,
                    });
                }
            }
        }
    }
    let status = status(
        deployment,
        newest.copied(),
        &hash,
        owned_sets,
        counts,
        created,
        now,
    );
    if deployment.get("status") != Some(&status) {
        actions.push(DeploymentAction::Status(status));
    }
    actions
}

/// The status a Deployment reports for its ReplicaSets' pods.
/// `hash` is the pod-template hash of the current template (collisions counted).
fn status(
    deployment: &Value,
    newest: Option<&Value>,
    hash: &str,
    owned_sets: &[&Value],
    counts: &HashMap<String, PodCounts>,
    just_created: bool,
    now: &str,
) -> Value {
    let desired = desired_replicas(deployment);
    let count = |set: &Value| counts.get(uid_of(set)).copied().unwrap_or_default();
    let total: i64 = owned_sets.iter().map(|s| count(s).total).sum();
    let ready: i64 = owned_sets.iter().map(|s| count(s).ready).sum();
    let updated = newest.map(|s| count(s).total).unwrap_or(0);
    let previous = deployment.get("status");
    let available_ok = ready >= desired - max_unavailable(deployment);
    let available = condition(
        find_condition(previous, "Available"),
        "Available",
        available_ok,
        if available_ok {
            "MinimumReplicasAvailable"
        } else {
            "MinimumReplicasUnavailable"
        },
        if available_ok {
            "Deployment has minimum availability."
        } else {
            "Deployment does not have minimum availability."
        },
        now,
        true,
    );
    let new_name = newest.map(name_of).unwrap_or_default();
    let complete = newest.is_some() && updated == desired && total == updated && ready >= desired;
    let (reason, message) = if complete {
        (
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        )
    } else if just_created || newest.is_none() {
        let name = format!("{}-{hash}", name_of(deployment));
        (
            "NewReplicaSetCreated",
            format!("Created new replica set \"{name}\""),
        )
    } else {
        (
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{new_name}\" is progressing."),
        )
    };
    let progressing = condition(
        find_condition(previous, "Progressing"),
        "Progressing",
        true,
        reason,
        &message,
        now,
        true,
    );
    let mut status = json!({
        "observedGeneration": generation(deployment),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": [available, progressing],
    });
    if desired > ready {
        status["unavailableReplicas"] = json!(desired - ready);
    }
    if let Some(collisions) = previous.and_then(|s| s.get("collisionCount")) {
        status["collisionCount"] = collisions.clone();
    }
    // The API omits zero counts.
    if let Some(map) = status.as_object_mut() {
        map.retain(|_, v| v.as_i64() != Some(0) || v.is_array());
        map.insert("observedGeneration".into(), json!(generation(deployment)));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "reviews-v1", "namespace": "bookinfo", "uid": "d1", "generation": 2},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "reviews"}},
                        "template": {"metadata": {"labels": {"app": "reviews"}},
                                     "spec": {"containers": [{"name": "reviews", "image": image}]}}}})
    }

    fn with_uid(mut set: Value, uid: &str) -> Value {
        set["metadata"]["uid"] = json!(uid);
        set
    }

    #[test]
    fn creates_a_hashed_replica_set_then_reports_progress() {
        let d = deployment(2, "r:1");
        let actions = plan(&d, &[], &HashMap::new(), "t0");
        let DeploymentAction::CreateReplicaSet(set) = &actions[0] else {
            panic!("{actions:?}")
        };
        let hash = template_hash(&d["spec"]["template"], 0);
        assert_eq!(set["metadata"]["name"], format!("reviews-v1-{hash}"));
        assert_eq!(set["spec"]["replicas"], 2);
        assert_eq!(
            set["spec"]["selector"]["matchLabels"]["pod-template-hash"],
            hash.as_str()
        );
        assert_eq!(
            set["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "1"
        );
        let DeploymentAction::Status(status) = &actions[1] else {
            panic!()
        };
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(status["conditions"][0]["status"], "False");
    }

    #[test]
    fn a_ready_replica_set_completes_the_rollout_and_old_ones_scale_down() {
        let old = with_uid(
            new_replica_set(&deployment(2, "r:0"), "old", 1, 2),
            "rs-old",
        );
        let d = deployment(2, "r:1");
        let hash = template_hash(&d["spec"]["template"], 0);
        let new = with_uid(new_replica_set(&d, &hash, 2, 2), "rs-new");
        let mut counts = HashMap::new();
        counts.insert("rs-old".to_string(), PodCounts { total: 2, ready: 2 });
        counts.insert("rs-new".to_string(), PodCounts { total: 2, ready: 1 });
        let waiting = plan(&d, &[&old, &new], &counts, "t1");
        assert!(
            !waiting
                .iter()
                .any(|a| matches!(a, DeploymentAction::ScaleReplicaSet { .. })),
            "{waiting:?}"
        );
        counts.insert("rs-new".to_string(), PodCounts { total: 2, ready: 2 });
        let actions = plan(&d, &[&old, &new], &counts, "t2");
        assert!(
            actions.contains(&DeploymentAction::ScaleReplicaSet {
                name: old["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                replicas: 0
            })
        );
        counts.remove("rs-old");
        let mut done = d.clone();
        let DeploymentAction::Status(status) =
            plan(&d, &[&new], &counts, "t3").pop().expect("status")
        else {
            panic!()
        };
        assert_eq!(status["updatedReplicas"], 2);
        assert_eq!(status["availableReplicas"], 2);
        assert_eq!(status["conditions"][1]["reason"], "NewReplicaSetAvailable");
        done["status"] = status;
        assert!(
            plan(&done, &[&new], &counts, "t4").is_empty(),
            "an unchanged status is not rewritten"
        );
    }
}
