//! Sets of field paths, the content of `metadata.managedFields[].fieldsV1`.
//!
//! A path is a list of elements: a field name (`f:spec`), a list item identified by its key
//! fields (`k:{"name":"web"}`), a set member (`v:"a"`) or an index (`i:0`). The JSON form
//! nests paths into a tree where `.` marks that the node itself belongs to the set.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A named field or map key.
    Field(String),
    /// A list item identified by key fields: name and the value as compact JSON, sorted by
    /// name.
    Key(Vec<(String, String)>),
    /// A member of a set, as compact JSON.
    Value(String),
    /// A list item by position.
    Index(usize),
}

impl PathElement {
    /// The key used in `fieldsV1` (`f:name`, `k:{...}`, `v:...`, `i:0`).
    pub fn fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let body: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{}:{value}", json_string(name)))
                    .collect();
                format!("k:{{{}}}", body.join(","))
            }
            PathElement::Value(value) => format!("v:{value}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `fieldsV1` key.
    pub fn from_fields_v1_key(key: &str) -> Result<PathElement, String> {
        if let Some(name) = key.strip_prefix("f:") {
            return Ok(PathElement::Field(name.to_string()));
        }
        if let Some(json) = key.strip_prefix("k:") {
            let parsed: Value =
                serde_json::from_str(json).map_err(|e| format!("invalid key {key:?}: {e}"))?;
            let map = parsed
                .as_object()
                .ok_or_else(|| format!("invalid key {key:?}: not an object"))?;
            let mut fields: Vec<(String, String)> = map
                .iter()
                .map(|(name, value)| (name.clone(), value.to_string()))
                .collect();
            fields.sort();
            return Ok(PathElement::Key(fields));
        }
        if let Some(json) = key.strip_prefix("v:") {
            let parsed: Value =
                serde_json::from_str(json).map_err(|e| format!("invalid value {key:?}: {e}"))?;
            return Ok(PathElement::Value(parsed.to_string()));
        }
        if let Some(index) = key.strip_prefix("i:") {
            return index
                .parse()
                .map(PathElement::Index)
                .map_err(|e| format!("invalid index {key:?}: {e}"));
        }
        Err(format!("unknown path element {key:?}"))
    }

    /// The element as printed in conflict messages (`.name`, `[name="web"]`).
    pub fn display(&self) -> String {
        match self {
            PathElement::Field(name) => format!(".{name}"),
            PathElement::Key(fields) => {
                let body: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                format!("[{}]", body.join(","))
            }
            PathElement::Value(value) => format!("[={value}]"),
            PathElement::Index(i) => format!("[{i}]"),
        }
    }
}

fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A field path.
pub type FieldPath = Vec<PathElement>;

/// Renders a path the way conflict messages show it (`.spec.containers[name="web"].image`).
pub fn display_path(path: &[PathElement]) -> String {
    path.iter().map(PathElement::display).collect()
}

/// A set of field paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    paths: BTreeSet<FieldPath>,
}

#[derive(Default)]
struct Node {
    member: bool,
    children: BTreeMap<PathElement, Node>,
}

impl Node {
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            map.insert(element.fields_v1_key(), child.to_json());
        }
        Value::Object(map)
    }
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        FieldSet::default()
    }

    /// Adds a path.
    pub fn insert(&mut self, path: FieldPath) {
        if !path.is_empty() {
            self.paths.insert(path);
        }
    }

    /// Whether `path` is in the set.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.paths.contains(path)
    }

    /// Whether the set has a path strictly below `path`.
    pub fn has_descendant(&self, path: &[PathElement]) -> bool {
        use std::ops::Bound;
        self.paths
            .range::<[PathElement], _>((Bound::Excluded(path), Bound::Unbounded))
            .next()
            .is_some_and(|p| p.len() > path.len() && p.starts_with(path))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// The paths, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &FieldPath> {
        self.paths.iter()
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            paths: self.paths.union(&other.paths).cloned().collect(),
        }
    }

    /// Paths in this set but not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            paths: self.paths.difference(&other.paths).cloned().collect(),
        }
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            paths: self.paths.intersection(&other.paths).cloned().collect(),
        }
    }

    /// Paths that neither are in `prefixes` nor lie below one of them.
    pub fn without_prefixes(&self, prefixes: &[FieldPath]) -> FieldSet {
        FieldSet {
            paths: self
                .paths
                .iter()
                .filter(|p| !prefixes.iter().any(|prefix| p.starts_with(prefix)))
                .cloned()
                .collect(),
        }
    }

    /// The `fieldsV1` JSON tree.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Node::default();
        for path in &self.paths {
            let mut node = &mut root;
            for element in path {
                node = node.children.entry(element.clone()).or_default();
            }
            node.member = true;
        }
        root.to_json()
    }

    /// Parses a `fieldsV1` JSON tree.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        let mut set = FieldSet::new();
        let mut prefix = Vec::new();
        collect(value, &mut prefix, &mut set)?;
        Ok(set)
    }
}

fn collect(value: &Value, prefix: &mut FieldPath, set: &mut FieldSet) -> Result<(), String> {
    let map = value
        .as_object()
        .ok_or_else(|| "fieldsV1 nodes must be objects".to_string())?;
    for (key, child) in map {
        if key == "." {
            set.insert(prefix.clone());
            continue;
        }
        prefix.push(PathElement::from_fields_v1_key(key)?);
        let is_leaf = child.as_object().is_some_and(Map::is_empty);
        if is_leaf {
            set.insert(prefix.clone());
        } else {
            collect(child, prefix, set)?;
        }
        prefix.pop();
    }
    Ok(())
}

/// Shorthand for a path of field names.
pub fn field_path(names: &[&str]) -> FieldPath {
    names
        .iter()
        .map(|name| PathElement::Field(name.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_with_member_markers() {
        let fields = json!({
            "f:data": {".": {}, "f:k": {}},
            "f:metadata": {"f:labels": {".": {}, "f:x": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}
        });
        let set = FieldSet::from_fields_v1(&fields).expect("valid fieldsV1");
        assert!(set.contains(&field_path(&["data"])));
        assert!(set.contains(&field_path(&["data", "k"])));
        assert!(!set.contains(&field_path(&["metadata"])));
        assert_eq!(set.len(), 6);
        assert_eq!(set.to_fields_v1(), fields);
    }

    #[test]
    fn keys_print_like_the_real_server() {
        let element =
            PathElement::from_fields_v1_key("k:{\"protocol\":\"TCP\",\"containerPort\":80}")
                .expect("valid key");
        assert_eq!(element.display(), "[containerPort=80,protocol=\"TCP\"]");
        assert_eq!(
            element.fields_v1_key(),
            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"
        );
        let path = vec![
            PathElement::Field("data".into()),
            PathElement::Field("k".into()),
        ];
        assert_eq!(display_path(&path), ".data.k");
    }

    #[test]
    fn descendants_and_prefix_removal() {
        let mut set = FieldSet::new();
        set.insert(field_path(&["spec", "replicas"]));
        set.insert(field_path(&["status", "phase"]));
        assert!(set.has_descendant(&field_path(&["spec"])));
        assert!(!set.has_descendant(&field_path(&["spec", "replicas"])));
        let trimmed = set.without_prefixes(&[field_path(&["status"])]);
        assert_eq!(trimmed.len(), 1);
    }
}
