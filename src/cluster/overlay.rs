//! Plan mode's overlay: what the dry-run writes through a handle would have stored. Every
//! dry run made in plan mode records the object the server returned (a delete records a
//! tombstone), and every later read through the same handle sees the live state with the
//! overlay on top, so a rehearsal's later steps see what its earlier steps would have
//! written. Objects are keyed by group, resource, namespace and name, so a read through
//! another version of the same resource sees them too.
//!
//! An object whose namespace exists only in the overlay (or in its own batch) cannot be
//! dry-run by the server where it belongs (it answers "namespace not found"): it is dry-run
//! in `default` instead and recorded as applied, marked [`VALIDATED_IN_DEFAULT`], or, when
//! that is not possible (no `default` namespace, no permission), [`NOT_VALIDATED`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use super::discovery::Resource;
use crate::manifest::selector::Selector;

/// The note on planned changes the server could not validate.
pub const NOT_VALIDATED: &str = "not validated: namespace planned";

/// The note on planned changes validated by a dry run in the `default` namespace, because
/// their own namespace is only planned.
pub const VALIDATED_IN_DEFAULT: &str = "validated in namespace default: namespace planned";

/// Where an object lives: group, resource (plural), namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub group: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl Key {
    pub fn new(resource: &Resource, namespace: Option<&str>, name: &str) -> Key {
        Key {
            group: resource.group.clone(),
            plural: resource.plural.clone(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }
}

/// What the overlay knows about one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// The object as the dry run returned it; `validated` is false when the server could not
    /// check it (its namespace is planned).
    Present { object: Value, validated: bool },
    /// Deleted by a planned delete.
    Deleted,
}

/// The planned writes of one cluster handle.
#[derive(Debug, Default)]
pub struct Overlay {
    entries: Mutex<BTreeMap<Key, Entry>>,
}

impl Overlay {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Records the object a planned write would store.
    pub fn record(&self, key: Key, object: Value, validated: bool) {
        self.lock()
            .insert(key, Entry::Present { object, validated });
    }

    /// Records a planned delete.
    pub fn tombstone(&self, key: Key) {
        self.lock().insert(key, Entry::Deleted);
    }

    pub fn lookup(&self, key: &Key) -> Option<Entry> {
        self.lock().get(key).cloned()
    }

    /// Forgets every planned write (plan mode switched off).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// A live object read through `resource`, with the overlay on top: `None` when it is
    /// planned to be deleted (or absent and not planned).
    pub fn read(&self, resource: &Resource, key: &Key, live: Option<Value>) -> Option<Value> {
        match self.lookup(key) {
            Some(Entry::Present { object, .. }) => Some(as_version(object, resource)),
            Some(Entry::Deleted) => None,
            None => live,
        }
    }

    /// A live list of `resource` (in `namespace`, or all) with the overlay on top: planned
    /// objects replace their live versions or are added (when they match the selectors),
    /// deleted ones are dropped. Field selectors other than `metadata.name` and
    /// `metadata.namespace` are not evaluated on planned objects.
    pub fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        labels: Option<&str>,
        fields: Option<&str>,
        live: Vec<Value>,
    ) -> Vec<Value> {
        let entries = self.lock();
        let in_scope = |key: &Key| {
            key.group == resource.group
                && key.plural == resource.plural
                && namespace.is_none_or(|n| key.namespace.as_deref() == Some(n))
        };
        if !entries.keys().any(in_scope) {
            return live;
        }
        let selector = labels.and_then(|l| Selector::parse(l).ok());
        let selected = |object: &Value| {
            let labels: BTreeMap<String, String> = object["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            selector.as_ref().is_none_or(|s| s.matches(&labels))
                && fields.is_none_or(|f| fields_match(f, object))
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut items = Vec::new();
        for item in live {
            let key = Key {
                group: resource.group.clone(),
                plural: resource.plural.clone(),
                namespace: item["metadata"]["namespace"].as_str().map(str::to_string),
                name: item["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            };
            match entries.get(&key) {
                Some(Entry::Present { object, .. }) => {
                    if selected(object) {
                        items.push(as_version(object.clone(), resource));
                    }
                }
                Some(Entry::Deleted) => {}
                None => items.push(item),
            }
            seen.insert(key);
        }
        for (key, entry) in entries.iter() {
            if let Entry::Present { object, .. } = entry
                && in_scope(key)
                && !seen.contains(key)
                && selected(object)
            {
                items.push(as_version(object.clone(), resource));
            }
        }
        items
    }
}

/// The address of planned load balancers: TEST-NET-1 (RFC 5737), reserved for documentation
/// and never routed, so nothing can reach a real host through it; valid wherever an IP is
/// expected (a ServiceEntry's endpoint).
pub const PLANNED_ADDRESS: &str = "192.0.2.1";

/// What `service_address` gives in plan mode for a load balancer without an address yet:
/// [`PLANNED_ADDRESS`] with the Service's port, or port 80 when the Service does not exist yet
/// (a planned command may create it).
pub fn planned_address(port: Option<i64>) -> String {
    format!("{PLANNED_ADDRESS}:{}", port.unwrap_or(80))
}

/// A planned object read through `resource`: its apiVersion and kind as that resource says.
fn as_version(mut object: Value, resource: &Resource) -> Value {
    object["apiVersion"] = Value::String(resource.api_version());
    object["kind"] = Value::String(resource.kind.clone());
    object
}

/// `metadata.name=x,metadata.namespace!=y`; other fields count as matching.
fn fields_match(selector: &str, object: &Value) -> bool {
    selector.split(',').all(|part| {
        let (field, expected, equal) = if let Some((f, v)) = part.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            (f, v, true)
        } else {
            return true;
        };
        let actual = match field.trim() {
            "metadata.name" => &object["metadata"]["name"],
            "metadata.namespace" => &object["metadata"]["namespace"],
            _ => return true,
        };
        (actual.as_str() == Some(expected.trim())) == equal
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployments() -> Resource {
        Resource {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
            singular: "deployment".into(),
            namespaced: true,
            verbs: vec![],
            short_names: vec![],
            preferred: true,
        }
    }

    fn deployment(name: &str, app: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}}})
    }

    #[test]
    fn reads_see_planned_objects_over_live_ones() {
        let overlay = Overlay::default();
        let resource = deployments();
        let key = |name: &str| Key::new(&resource, Some("shop"), name);
        let mut changed = deployment("web", "web");
        changed["spec"] = json!({"replicas": 3});
        overlay.record(key("web"), changed.clone(), true);
        overlay.record(key("new"), deployment("new", "api"), false);
        overlay.tombstone(key("old"));
        assert_eq!(
            overlay.read(&resource, &key("web"), Some(deployment("web", "web"))),
            Some(changed.clone())
        );
        assert_eq!(
            overlay.read(&resource, &key("old"), Some(deployment("old", "x"))),
            None
        );
        let live = vec![deployment("web", "web"), deployment("old", "x")];
        let all = overlay.list(&resource, Some("shop"), None, None, live.clone());
        let names: Vec<&str> = all
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["web", "new"]);
        assert_eq!(all[0], changed);
        let api = overlay.list(&resource, None, Some("app=api"), None, live.clone());
        assert_eq!(api.len(), 1);
        let named = overlay.list(&resource, None, None, Some("metadata.name=web"), live);
        assert_eq!(named.len(), 1);
        assert!(
            overlay
                .list(&resource, Some("other"), None, None, vec![])
                .is_empty()
        );
    }
}
