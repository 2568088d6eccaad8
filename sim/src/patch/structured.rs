//! Structured merge: the object algebra behind server-side apply.
//!
//! Given a [`Shape`], this module turns an object into the set of fields it sets, merges an
//! applied configuration into a live object, compares two objects field by field, and
//! removes fields. List items are identified by their keys, so that "the container named
//! web" is one field no matter where it sits in the list.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::fieldset::{FieldPath, FieldSet, PathElement};
use crate::schema::{ListKind, Shape};

/// Key fields that have a default, so items may omit them (container and service ports).
fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| Value::String("TCP".into()))
}

/// The element identifying `item` in a list of kind `kind`, if it can be identified.
fn item_element(kind: &ListKind, item: &Value) -> Option<PathElement> {
    match kind {
        ListKind::Atomic => None,
        ListKind::Set => match item {
            Value::Object(_) | Value::Array(_) => None,
            scalar => Some(PathElement::Value(scalar.to_string())),
        },
        ListKind::Map(keys) => {
            let map = item.as_object()?;
            let mut fields = Vec::new();
            for key in keys {
                let value = match map.get(key) {
                    Some(value) if !value.is_null() => value.clone(),
                    _ => key_default(key)?,
                };
                fields.push((key.clone(), value.to_string()));
            }
            if fields.is_empty() {
                return None;
            }
            fields.sort();
            Some(PathElement::Key(fields))
        }
    }
}

/// Elements of every item, or `None` when the list cannot be treated granularly (missing or
/// duplicate keys): it is then atomic.
fn item_elements(kind: &ListKind, items: &[Value]) -> Option<Vec<PathElement>> {
    if *kind == ListKind::Atomic {
        return None;
    }
    let mut elements = Vec::with_capacity(items.len());
    for item in items {
        let element = item_element(kind, item)?;
        if elements.contains(&element) {
            return None;
        }
        elements.push(element);
    }
    Some(elements)
}

/// The fields `value` sets, as server-side apply records them for the applier.
pub fn to_field_set(value: &Value, shape: &Shape) -> FieldSet {
    let mut set = FieldSet::new();
    let mut path = Vec::new();
    walk_fields(value, shape, &mut path, &mut set);
    set
}

fn walk_fields(value: &Value, shape: &Shape, path: &mut FieldPath, set: &mut FieldSet) {
    match value {
        Value::Object(map) if !shape.is_atomic() => {
            for (key, child) in map {
                path.push(PathElement::Field(key.clone()));
                walk_fields(child, &shape.field(key), path, set);
                let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                if empty || shape.is_map() {
                    set.insert(path.clone());
                }
                path.pop();
            }
        }
        Value::Array(items) => match item_elements(&shape.list_kind(), items) {
            Some(elements) => {
                let item_shape = shape.item();
                for (element, item) in elements.into_iter().zip(items) {
                    path.push(element);
                    if matches!(item, Value::Object(_)) {
                        walk_fields(item, &item_shape, path, set);
                    }
                    set.insert(path.clone());
                    path.pop();
                }
            }
            None => set.insert(path.clone()),
        },
        _ => set.insert(path.clone()),
    }
}

/// Merges an applied configuration into a live object.
pub fn merge(live: &Value, config: &Value, shape: &Shape) -> Value {
    match (live, config) {
        (Value::Object(lhs), Value::Object(rhs)) if !shape.is_atomic() => {
            let mut out = lhs.clone();
            for (key, value) in rhs {
                let merged = match lhs.get(key) {
                    Some(existing) => merge(existing, value, &shape.field(key)),
                    None => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(lhs), Value::Array(rhs)) => {
            let kind = shape.list_kind();
            match (item_elements(&kind, lhs), item_elements(&kind, rhs)) {
                (Some(lhs_keys), Some(rhs_keys)) => {
                    Value::Array(merge_lists(lhs, &lhs_keys, rhs, &rhs_keys, &shape.item()))
                }
                _ => config.clone(),
            }
        }
        _ => config.clone(),
    }
}

/// Merges keyed lists the way structured-merge-diff orders them: items only in the live list
/// keep their place, shared items follow the applied order, new items go where the applied
/// configuration puts them.
fn merge_lists(
    lhs: &[Value],
    lhs_keys: &[PathElement],
    rhs: &[Value],
    rhs_keys: &[PathElement],
    item_shape: &Shape,
) -> Vec<Value> {
    let lhs_index: HashMap<&PathElement, usize> =
        lhs_keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let rhs_index: HashMap<&PathElement, usize> =
        rhs_keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut shared: std::collections::VecDeque<&PathElement> = rhs_keys
        .iter()
        .filter(|k| lhs_index.contains_key(k))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let merge_item = |key: &PathElement| -> Value {
        let l = lhs_index.get(key).map(|&i| &lhs[i]);
        let r = rhs_index.get(key).map(|&i| &rhs[i]);
        match (l, r) {
            (Some(l), Some(r)) => merge(l, r, item_shape),
            (Some(l), None) => l.clone(),
            (None, Some(r)) => r.clone(),
            (None, None) => Value::Null,
        }
    };
    let (mut li, mut ri) = (0, 0);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let key = &lhs_keys[li];
            if *key == rhs_keys[ri] {
                merged_rhs.insert(key);
                out.push(merge_item(key));
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if rhs_index.contains_key(key) && next_shared.is_some_and(|n| n != key) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            let key = &lhs_keys[li];
            if !rhs_index.contains_key(key) {
                out.push(lhs[li].clone());
                li += 1;
                continue;
            } else if merged_rhs.contains(key) {
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let key = &rhs_keys[ri];
            merged_rhs.insert(key);
            out.push(merge_item(key));
            ri += 1;
            if next_shared == Some(key) {
                next_shared = shared.pop_front();
            }
        }
    }
    out
}

/// Field-level differences between two objects.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Fields only in the new object.
    pub added: FieldSet,
    /// Leaf fields whose value changed.
    pub modified: FieldSet,
    /// Fields only in the old object.
    pub removed: FieldSet,
}

impl Comparison {
    /// Whether nothing differs.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Compares `old` with `new` field by field.
pub fn compare(old: &Value, new: &Value, shape: &Shape) -> Comparison {
    let mut comparison = Comparison::default();
    let mut path = Vec::new();
    compare_node(Some(old), Some(new), shape, &mut path, &mut comparison);
    comparison
}

fn compare_node(
    old: Option<&Value>,
    new: Option<&Value>,
    shape: &Shape,
    path: &mut FieldPath,
    out: &mut Comparison,
) {
    // A null counts as an empty map or list present on that side (Go serializes unset
    // non-omitempty slices as null), so its parent is not reported as added.
    let granular_map =
        |v: Option<&Value>| v.is_none_or(|v| v.is_object() || v.is_null()) && !shape.is_atomic();
    let kind = shape.list_kind();
    let granular_list = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => item_elements(&kind, items).is_some(),
        Some(_) => false,
    };
    let both_maps = granular_map(old)
        && granular_map(new)
        && (old.is_some_and(Value::is_object) || new.is_some_and(Value::is_object));
    let both_lists = granular_list(old)
        && granular_list(new)
        && (old.is_some_and(Value::is_array) || new.is_some_and(Value::is_array));
    if both_maps {
        let empty = Map::new();
        let old_map = old.and_then(Value::as_object).unwrap_or(&empty);
        let new_map = new.and_then(Value::as_object).unwrap_or(&empty);
        for (key, value) in old_map {
            path.push(PathElement::Field(key.clone()));
            compare_node(Some(value), new_map.get(key), &shape.field(key), path, out);
            path.pop();
        }
        for (key, value) in new_map {
            if !old_map.contains_key(key) {
                path.push(PathElement::Field(key.clone()));
                compare_node(None, Some(value), &shape.field(key), path, out);
                path.pop();
            }
        }
    } else if both_lists {
        let empty = Vec::new();
        let old_items = old.and_then(Value::as_array).unwrap_or(&empty);
        let new_items = new.and_then(Value::as_array).unwrap_or(&empty);
        let old_keys = item_elements(&kind, old_items).unwrap_or_default();
        let new_keys = item_elements(&kind, new_items).unwrap_or_default();
        let item_shape = shape.item();
        for (key, item) in old_keys.iter().zip(old_items) {
            let other = new_keys
                .iter()
                .position(|k| k == key)
                .map(|i| &new_items[i]);
            path.push(key.clone());
            compare_node(Some(item), other, &item_shape, path, out);
            path.pop();
        }
        for (key, item) in new_keys.iter().zip(new_items) {
            if !old_keys.contains(key) {
                path.push(key.clone());
                compare_node(None, Some(item), &item_shape, path, out);
                path.pop();
            }
        }
    } else {
        match (old, new) {
            (None, Some(_)) => out.added.insert(path.clone()),
            (Some(_), None) => out.removed.insert(path.clone()),
            (Some(a), Some(b)) if a != b => out.modified.insert(path.clone()),
            _ => {}
        }
        return;
    }
    match (old, new) {
        (None, Some(_)) => out.added.insert(path.clone()),
        (Some(_), None) => out.removed.insert(path.clone()),
        _ => {}
    }
}

/// Removes the field at `path` from `value`; returns whether something was removed.
pub fn remove_field(value: &mut Value, path: &[PathElement], shape: &Shape) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    match (first, value) {
        (PathElement::Field(name), Value::Object(map)) => {
            if rest.is_empty() {
                map.shift_remove(name).is_some()
            } else {
                let child_shape = shape.field(name);
                map.get_mut(name)
                    .is_some_and(|child| remove_field(child, rest, &child_shape))
            }
        }
        (element @ (PathElement::Key(_) | PathElement::Value(_)), Value::Array(items)) => {
            let kind = shape.list_kind();
            let Some(position) = items
                .iter()
                .position(|item| item_element(&kind, item).as_ref() == Some(element))
            else {
                return false;
            };
            if rest.is_empty() {
                items.remove(position);
                true
            } else {
                remove_field(&mut items[position], rest, &shape.item())
            }
        }
        (PathElement::Index(i), Value::Array(items)) if *i < items.len() => {
            if rest.is_empty() {
                items.remove(*i);
                true
            } else {
                remove_field(&mut items[*i], rest, &shape.item())
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldset::field_path;
    use crate::schema;
    use serde_json::json;

    fn deployment(containers: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": containers}}}
        })
    }

    #[test]
    fn field_sets_mark_list_items_and_map_keys() {
        let shape = schema::builtin("Deployment");
        let object = deployment(json!([{"name": "web", "image": "nginx",
                                         "ports": [{"containerPort": 80}]}]));
        let set = to_field_set(&object, &shape);
        let fields = set.to_fields_v1();
        assert_eq!(fields["f:spec"]["f:selector"], json!({}));
        let container =
            &fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(container["."], json!({}));
        assert_eq!(
            container["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]["f:containerPort"],
            json!({})
        );
        assert_eq!(fields["f:metadata"]["f:labels"], json!({"f:app": {}}));
    }

    #[test]
    fn merge_keeps_live_items_and_merges_by_key() {
        let shape = schema::builtin("Deployment");
        let live = deployment(json!([{"name": "web", "image": "nginx:1", "tty": true},
                                     {"name": "sidecar", "image": "proxy"}]));
        let config = deployment(json!([{"name": "web", "image": "nginx:2"}]));
        let merged = merge(&live, &config, &shape);
        let containers = &merged["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers[0],
            json!({"name": "web", "image": "nginx:2", "tty": true})
        );
        assert_eq!(containers[1]["name"], "sidecar");
    }

    #[test]
    fn merge_puts_new_items_where_the_config_has_them() {
        let shape = schema::builtin("Deployment");
        let live = deployment(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]));
        let config = deployment(json!([{"name": "c", "image": "x"}, {"name": "a", "image": "y"}]));
        let merged = merge(&live, &config, &shape);
        let names: Vec<&str> = merged["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["c", "a", "b"]);
    }

    #[test]
    fn compare_reports_added_modified_removed() {
        let shape = schema::builtin("ConfigMap");
        let old = json!({"data": {"a": "1", "b": "2"}});
        let new =
            json!({"data": {"a": "1", "b": "3", "c": "4"}, "metadata": {"labels": {"x": "y"}}});
        let comparison = compare(&old, &new, &shape);
        assert!(comparison.modified.contains(&field_path(&["data", "b"])));
        assert!(comparison.added.contains(&field_path(&["data", "c"])));
        assert!(
            comparison
                .added
                .contains(&field_path(&["metadata", "labels"]))
        );
        assert!(comparison.removed.is_empty());
        let back = compare(&new, &old, &shape);
        assert!(back.removed.contains(&field_path(&["data", "c"])));
    }

    #[test]
    fn a_null_list_is_present_but_empty() {
        let shape = schema::builtin("Pod");
        let old = json!({"spec": {"containers": null}});
        let new = json!({"spec": {"containers": [{"name": "c", "image": "i"}]}});
        let comparison = compare(&old, &new, &shape);
        assert!(
            !comparison
                .added
                .contains(&field_path(&["spec", "containers"]))
        );
        let mut item = field_path(&["spec", "containers"]);
        item.push(PathElement::Key(vec![("name".into(), "\"c\"".into())]));
        assert!(comparison.added.contains(&item));
    }

    #[test]
    fn fields_are_removed_by_key() {
        let shape = schema::builtin("Deployment");
        let mut object =
            deployment(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]));
        let mut path = field_path(&["spec", "template", "spec", "containers"]);
        path.push(PathElement::Key(vec![("name".into(), "\"b\"".into())]));
        assert!(remove_field(&mut object, &path, &shape));
        assert_eq!(
            object["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }
}
