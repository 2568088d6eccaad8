//! Saving a cluster's objects to a JSON file and restoring them at the next start.

use std::path::Path;

use serde_json::{Value, json};

use super::cluster::ClusterState;
use super::server::SimError;

/// The saved objects of one cluster.
pub struct Snapshot {
    revision: u64,
    objects: Vec<(String, Value)>,
}

impl Snapshot {
    /// The saved uid of `kube-system`, which identifies the cluster.
    pub fn kube_system_uid(&self) -> Option<String> {
        self.objects
            .iter()
            .find(|(key, object)| {
                key == "namespaces" && super::object::meta_str(object, "name") == "kube-system"
            })
            .map(|(_, object)| super::object::meta_str(object, "uid").to_string())
            .filter(|uid| !uid.is_empty())
    }

    /// Replaces the cluster's objects with the saved ones.
    pub fn restore_into(self, state: &mut ClusterState, ca_pem: &str) {
        state.replace_objects(self.objects, self.revision, ca_pem);
    }
}

/// Writes every object of the cluster to `path` (atomically).
pub fn save(state: &ClusterState, path: &Path) -> Result<(), SimError> {
    let objects: Vec<Value> = state
        .all_objects()
        .into_iter()
        .map(|(key, object)| json!({"storageKey": key, "object": object}))
        .collect();
    let document = json!({
        "cluster": state.name(),
        "resourceVersion": state.store.revision(),
        "objects": objects,
    });
    // Snapshots hold every object, Secrets included: readable by their owner only.
    meshshift_support::files::write_atomic(path, document.to_string().as_bytes(), true)
        .map_err(|e| SimError::io(format!("failed to write {}", path.display()), e))
}

/// Reads a snapshot written by [`save`].
pub fn load(path: &Path) -> Result<Snapshot, SimError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SimError::io(format!("failed to read {}", path.display()), e))?;
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| SimError::Config(format!("{} is not a snapshot: {e}", path.display())))?;
    let revision = document
        .get("resourceVersion")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let objects = document
        .get("objects")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    Some((
                        item.get("storageKey")?.as_str()?.to_string(),
                        item.get("object")?.clone(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Snapshot { revision, objects })
}
