//! Helpers on JSON objects, and the compact form objects are stored in.
//!
//! Stored objects keep their JSON bytes (without `kind`/`apiVersion`, which depend on the
//! version a client asks for) plus a small index of the metadata that selectors, garbage
//! collection and tables need. Keeping bytes rather than parsed trees keeps memory low and
//! makes reads a copy.

use std::collections::BTreeMap;

use bytes::Bytes;
use rand::Rng;
use serde_json::{Map, Value};

/// An owner reference, as far as garbage collection cares.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerRef {
    /// UID of the owner.
    pub uid: String,
    /// Whether the owner's foreground deletion waits for this dependent.
    pub block_owner_deletion: bool,
}

/// Metadata of a stored object that is needed without parsing it.
#[derive(Clone, Debug, Default)]
pub struct ObjectIndex {
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Resource version.
    pub resource_version: u64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Values of selectable fields other than name and namespace (`status.phase`).
    pub fields: Vec<(String, String)>,
    /// `metadata.creationTimestamp`.
    pub creation_timestamp: String,
    /// `metadata.deletionTimestamp`, when set.
    pub deletion_timestamp: Option<String>,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
    /// `metadata.ownerReferences`.
    pub owners: Vec<OwnerRef>,
}

/// An object as kept by the store.
#[derive(Debug)]
pub struct StoredObject {
    body: Bytes,
    /// The indexed metadata.
    pub index: ObjectIndex,
}

impl StoredObject {
    /// Encodes `object` (a JSON object), indexing `selectable` field paths.
    pub fn encode(object: &Value, selectable: &[&str]) -> StoredObject {
        let mut body_map = Map::new();
        if let Some(map) = object.as_object() {
            for (key, value) in map {
                if key != "kind" && key != "apiVersion" {
                    body_map.insert(key.clone(), value.clone());
                }
            }
        }
        let body = serde_json::to_vec(&Value::Object(body_map)).unwrap_or_else(|_| b"{}".to_vec());
        StoredObject {
            body: Bytes::from(body),
            index: index_of(object, selectable),
        }
    }

    /// The object as JSON with `kind` and `apiVersion` first.
    pub fn to_value(&self, api_version: &str, kind: &str) -> Value {
        let mut object = Map::new();
        object.insert("kind".into(), Value::String(kind.to_string()));
        object.insert("apiVersion".into(), Value::String(api_version.to_string()));
        if let Ok(Value::Object(rest)) = serde_json::from_slice::<Value>(&self.body) {
            object.extend(rest);
        }
        Value::Object(object)
    }

    /// Appends the object's JSON; with `type_meta` it starts with that kind and apiVersion.
    pub fn write_json(&self, out: &mut Vec<u8>, type_meta: Option<(&str, &str)>) {
        match type_meta {
            Some((api_version, kind)) => {
                out.extend_from_slice(b"{\"kind\":");
                push_json_string(out, kind);
                out.extend_from_slice(b",\"apiVersion\":");
                push_json_string(out, api_version);
                if self.body.len() > 2 {
                    out.push(b',');
                    out.extend_from_slice(&self.body[1..]);
                } else {
                    out.push(b'}');
                }
            }
            None => out.extend_from_slice(&self.body),
        }
    }

    /// Size of the stored JSON.
    pub fn encoded_len(&self) -> usize {
        self.body.len()
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn index_of(object: &Value, selectable: &[&str]) -> ObjectIndex {
    let meta = object.get("metadata");
    let text = |key: &str| {
        meta.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let labels = meta
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let finalizers = meta
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let owners = meta
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| {
                    Some(OwnerRef {
                        uid: r.get("uid")?.as_str()?.to_string(),
                        block_owner_deletion: r
                            .get("blockOwnerDeletion")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let fields = selectable
        .iter()
        .map(|path| {
            let value = get_path(object, path).map(scalar_text).unwrap_or_default();
            (path.to_string(), value)
        })
        .collect();
    ObjectIndex {
        namespace: text("namespace"),
        name: text("name"),
        uid: text("uid"),
        resource_version: text("resourceVersion").parse().unwrap_or(0),
        labels,
        fields,
        creation_timestamp: text("creationTimestamp"),
        deletion_timestamp: meta
            .and_then(|m| m.get("deletionTimestamp"))
            .and_then(Value::as_str)
            .map(str::to_string),
        finalizers,
        owners,
    }
}

/// Text of a scalar as field selectors compare it.
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The value at a dotted path (`spec.template.spec`), if every step exists.
pub fn get_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|step| !step.is_empty())
        .try_fold(object, |value, step| value.get(step))
}

/// Sets the value at a dotted path, creating objects on the way.
pub fn set_path(object: &mut Value, path: &str, value: Value) {
    let steps: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut node = object;
    for step in parents {
        if !node.get(*step).is_some_and(Value::is_object) {
            if let Some(map) = node.as_object_mut() {
                map.insert(step.to_string(), Value::Object(Map::new()));
            } else {
                return;
            }
        }
        match node.get_mut(*step) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.insert(last.to_string(), value);
    }
}

/// Removes the value at a dotted path; returns it if it was there.
pub fn remove_path(object: &mut Value, path: &str) -> Option<Value> {
    let steps: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
    let (last, parents) = steps.split_last()?;
    let mut node = object;
    for step in parents {
        node = node.get_mut(*step)?;
    }
    node.as_object_mut()?.remove(*last)
}

/// `metadata.<key>` as a string, empty when missing.
pub fn meta_str<'a>(object: &'a Value, key: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The `metadata` map, created when missing (and replacing a non-object).
pub fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    let map = match object.as_object_mut() {
        Some(map) => map,
        None => unreachable!("object was just made a map"),
    };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    match meta.as_object_mut() {
        Some(meta) => meta,
        None => unreachable!("metadata was just made a map"),
    }
}

/// Labels of an object.
pub fn labels(object: &Value) -> BTreeMap<String, String> {
    object
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), scalar_text(v)))
                .collect()
        })
        .unwrap_or_default()
}

/// The current time as Kubernetes writes timestamps (`2024-01-02T03:04:05Z`).
pub fn now_timestamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A random RFC 4122 version-4 UUID.
pub fn new_uid() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A random 5-character suffix from the alphabet Kubernetes uses for generated names.
pub fn random_suffix() -> String {
    use super::workload::hash::NAME_ALPHABET;
    let mut rng = rand::rng();
    (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect()
}

/// Removes `null` values from objects, recursively (typed decoding drops them).
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            for v in map.values_mut() {
                drop_nulls(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_objects_round_trip_with_any_type_meta() {
        let object = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "7",
                          "labels": {"app": "web"}, "finalizers": ["x"],
                          "ownerReferences": [{"uid": "u1", "blockOwnerDeletion": true}]},
            "status": {"phase": "Running"}
        });
        let stored = StoredObject::encode(&object, &["status.phase"]);
        assert_eq!(stored.index.resource_version, 7);
        assert_eq!(stored.index.labels["app"], "web");
        assert_eq!(
            stored.index.fields,
            [("status.phase".to_string(), "Running".to_string())]
        );
        assert!(stored.index.owners[0].block_owner_deletion);
        assert_eq!(stored.to_value("v1", "Pod"), object);
        let mut out = Vec::new();
        stored.write_json(&mut out, None);
        let bare: Value = serde_json::from_slice(&out).expect("valid json");
        assert!(bare.get("kind").is_none());
        out.clear();
        stored.write_json(&mut out, Some(("v1", "Pod")));
        assert_eq!(
            serde_json::from_slice::<Value>(&out).expect("valid json"),
            object
        );
    }

    #[test]
    fn paths_are_set_and_removed() {
        let mut object = json!({"spec": {"replicas": 1}});
        set_path(&mut object, "spec.template.metadata.name", json!("x"));
        assert_eq!(object["spec"]["template"]["metadata"]["name"], "x");
        assert_eq!(remove_path(&mut object, "spec.replicas"), Some(json!(1)));
        assert_eq!(get_path(&object, "spec.replicas"), None);
    }

    #[test]
    fn uids_look_like_uuids() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
        assert_eq!(random_suffix().len(), 5);
    }
}
