//! In-memory object storage with one resource-version counter and a window of recent changes
//! that watches replay from.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

use super::object::{StoredObject, meta_mut};

/// Namespace and name of an object (empty namespace for cluster-scoped objects); ordered like
/// etcd keys, so lists come out sorted by namespace then name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// A key from namespace and name.
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed.
    Deleted,
}

impl ChangeKind {
    /// The watch event type.
    pub fn event_type(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug)]
pub struct Change {
    /// Resource version of the change.
    pub revision: u64,
    /// Storage key of the resource type.
    pub storage_key: Arc<str>,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after the change (for deletes: the last state, at `revision`).
    pub object: Arc<StoredObject>,
    /// The object before the change, for updates.
    pub previous: Option<Arc<StoredObject>>,
}

/// Where a uid lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Storage key of the resource type.
    pub storage_key: String,
    /// Namespace and name.
    pub key: ObjectKey,
}

/// Result of asking for changes after a resource version.
#[derive(Debug)]
pub enum ChangesSince {
    /// The changes, oldest first.
    Changes(Vec<Arc<Change>>),
    /// Changes after that version are no longer kept; `oldest` is the oldest version a watch
    /// can start from.
    Expired {
        /// The oldest resource version still available.
        oldest: u64,
    },
}

/// All objects of one cluster.
#[derive(Debug)]
pub struct Store {
    revision: u64,
    collections: HashMap<String, BTreeMap<ObjectKey, Arc<StoredObject>>>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Highest revision whose change was dropped from the history.
    dropped_through: u64,
    by_uid: HashMap<String, Location>,
    dependents: HashMap<String, BTreeSet<Location>>,
    notify: watch::Sender<u64>,
}

impl Store {
    /// An empty store keeping the last `history_limit` changes for watches.
    pub fn new(history_limit: usize) -> Self {
        let (notify, _) = watch::channel(0);
        Store {
            revision: 0,
            collections: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            dropped_through: 0,
            by_uid: HashMap::new(),
            dependents: HashMap::new(),
            notify,
        }
    }

    /// How many changes are kept for watches.
    pub fn history_limit(&self) -> usize {
        self.history_limit
    }

    /// The current resource version.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Restarts the counter (used when restoring a snapshot).
    pub fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
        self.dropped_through = revision;
        self.notify.send_replace(revision);
    }

    /// A receiver that sees the revision move on every commit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    /// One object.
    pub fn get(&self, storage_key: &str, key: &ObjectKey) -> Option<Arc<StoredObject>> {
        self.collections.get(storage_key)?.get(key).cloned()
    }

    /// Objects of a type, in a namespace or everywhere, sorted by namespace and name,
    /// starting after `after` (for paging).
    pub fn list(
        &self,
        storage_key: &str,
        namespace: Option<&str>,
        after: Option<&ObjectKey>,
    ) -> Vec<Arc<StoredObject>> {
        let Some(collection) = self.collections.get(storage_key) else {
            return Vec::new();
        };
        use std::ops::Bound;
        let lower = match (after, namespace) {
            (Some(after), _) => Bound::Excluded(after.clone()),
            (None, Some(ns)) => Bound::Included(ObjectKey::new(ns, "")),
            (None, None) => Bound::Unbounded,
        };
        collection
            .range((lower, Bound::Unbounded))
            .take_while(|(key, _)| namespace.is_none_or(|ns| key.namespace == ns))
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Number of objects of a type.
    pub fn count(&self, storage_key: &str) -> usize {
        self.collections.get(storage_key).map_or(0, BTreeMap::len)
    }

    /// Storage keys that hold objects.
    pub fn storage_keys(&self) -> Vec<String> {
        self.collections
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Where the object with `uid` lives.
    pub fn locate_uid(&self, uid: &str) -> Option<&Location> {
        self.by_uid.get(uid)
    }

    /// Objects whose ownerReferences name `owner_uid`.
    pub fn dependents_of(&self, owner_uid: &str) -> Vec<Location> {
        self.dependents
            .get(owner_uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Stores `object` as a creation or an update, at the next resource version, which is
    /// written into the object; returns the stored form.
    pub fn commit_put(
        &mut self,
        storage_key: &str,
        mut object: Value,
        selectable: &[&str],
    ) -> Arc<StoredObject> {
        self.revision += 1;
        meta_mut(&mut object).insert(
            "resourceVersion".into(),
            Value::String(self.revision.to_string()),
        );
        let stored = Arc::new(StoredObject::encode(&object, selectable));
        let key = ObjectKey::new(&stored.index.namespace, &stored.index.name);
        let previous = self
            .collections
            .entry(storage_key.to_string())
            .or_default()
            .insert(key.clone(), stored.clone());
        let location = Location {
            storage_key: storage_key.to_string(),
            key,
        };
        if let Some(previous) = &previous {
            self.unindex(previous, &location);
        }
        self.index(&stored, &location);
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.record(storage_key, kind, stored.clone(), previous);
        stored
    }

    /// Removes an object; the DELETED change carries `last_state` at the new resource version.
    pub fn commit_delete(
        &mut self,
        storage_key: &str,
        key: &ObjectKey,
        mut last_state: Value,
        selectable: &[&str],
    ) -> Option<Arc<StoredObject>> {
        let previous = self.collections.get_mut(storage_key)?.remove(key)?;
        let location = Location {
            storage_key: storage_key.to_string(),
            key: key.clone(),
        };
        self.unindex(&previous, &location);
        self.revision += 1;
        meta_mut(&mut last_state).insert(
            "resourceVersion".into(),
            Value::String(self.revision.to_string()),
        );
        let stored = Arc::new(StoredObject::encode(&last_state, selectable));
        self.record(
            storage_key,
            ChangeKind::Deleted,
            stored.clone(),
            Some(previous),
        );
        Some(stored)
    }

    /// Inserts an object exactly as given, without a change event (restoring a snapshot).
    pub fn restore(&mut self, storage_key: &str, object: &Value, selectable: &[&str]) {
        let stored = Arc::new(StoredObject::encode(object, selectable));
        let key = ObjectKey::new(&stored.index.namespace, &stored.index.name);
        let location = Location {
            storage_key: storage_key.to_string(),
            key: key.clone(),
        };
        self.index(&stored, &location);
        self.collections
            .entry(storage_key.to_string())
            .or_default()
            .insert(key, stored);
    }

    /// Changes with a revision above `after`, or `Expired` when some were dropped.
    pub fn changes_since(&self, after: u64) -> ChangesSince {
        if after < self.dropped_through {
            return ChangesSince::Expired {
                oldest: self.dropped_through,
            };
        }
        let start = self.history.partition_point(|c| c.revision <= after);
        ChangesSince::Changes(self.history.range(start..).cloned().collect())
    }

    fn record(
        &mut self,
        storage_key: &str,
        kind: ChangeKind,
        object: Arc<StoredObject>,
        previous: Option<Arc<StoredObject>>,
    ) {
        self.history.push_back(Arc::new(Change {
            revision: self.revision,
            storage_key: Arc::from(storage_key),
            kind,
            object,
            previous,
        }));
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.dropped_through = dropped.revision;
            }
        }
        self.notify.send_replace(self.revision);
    }

    fn index(&mut self, stored: &StoredObject, location: &Location) {
        if !stored.index.uid.is_empty() {
            self.by_uid
                .insert(stored.index.uid.clone(), location.clone());
        }
        for owner in &stored.index.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(location.clone());
        }
    }

    fn unindex(&mut self, stored: &StoredObject, location: &Location) {
        if self.by_uid.get(&stored.index.uid) == Some(location) {
            self.by_uid.remove(&stored.index.uid);
        }
        for owner in &stored.index.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(location);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(ns: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}")}})
    }

    #[test]
    fn commits_bump_one_counter_and_lists_are_sorted() {
        let mut store = Store::new(100);
        store.commit_put("configmaps", cm("b", "x"), &[]);
        store.commit_put("configmaps", cm("a", "y"), &[]);
        let stored = store.commit_put("configmaps", cm("a", "x"), &[]);
        assert_eq!(stored.index.resource_version, 3);
        let names: Vec<String> = store
            .list("configmaps", None, None)
            .iter()
            .map(|o| format!("{}/{}", o.index.namespace, o.index.name))
            .collect();
        assert_eq!(names, ["a/x", "a/y", "b/x"]);
        assert_eq!(store.list("configmaps", Some("a"), None).len(), 2);
        let after = ObjectKey::new("a", "y");
        assert_eq!(store.list("configmaps", None, Some(&after)).len(), 1);
    }

    #[test]
    fn history_window_expires_old_versions() {
        let mut store = Store::new(2);
        for name in ["a", "b", "c", "d"] {
            store.commit_put("configmaps", cm("ns", name), &[]);
        }
        match store.changes_since(2) {
            ChangesSince::Changes(changes) => assert_eq!(changes.len(), 2),
            ChangesSince::Expired { .. } => panic!("version 2 is still in the window"),
        }
        assert!(matches!(
            store.changes_since(1),
            ChangesSince::Expired { oldest: 2 }
        ));
    }

    #[test]
    fn deletes_record_the_last_state_and_unindex_owners() {
        let mut store = Store::new(10);
        let mut child = cm("ns", "child");
        child["metadata"]["ownerReferences"] = json!([{"uid": "owner-1"}]);
        store.commit_put("configmaps", child.clone(), &[]);
        assert_eq!(store.dependents_of("owner-1").len(), 1);
        let deleted = store
            .commit_delete("configmaps", &ObjectKey::new("ns", "child"), child, &[])
            .expect("object existed");
        assert_eq!(deleted.index.resource_version, 2);
        assert!(store.dependents_of("owner-1").is_empty());
        assert!(store.locate_uid("uid-ns-child").is_none());
    }
}
