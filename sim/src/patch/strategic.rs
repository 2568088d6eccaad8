//! Strategic merge patch, as kubectl sends it for built-in kinds.
//!
//! Lists declared with a merge key (containers by `name`, volumeMounts by `mountPath`, ...)
//! are merged item by item; other lists are replaced. The directives kubectl emits are
//! honoured: `$patch: replace|delete|merge`, `$retainKeys`, `$setElementOrder/<field>` and
//! `$deleteFromPrimitiveList/<field>`.

use serde_json::{Map, Value};

use crate::schema::{ListKind, Shape};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER_PREFIX: &str = "$setElementOrder/";
const DELETE_PRIMITIVE_PREFIX: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `original`.
pub fn apply(original: &Value, patch: &Value, shape: &Shape) -> Result<Value, String> {
    match (original, patch) {
        (Value::Object(original), Value::Object(patch)) => {
            merge_map(original.clone(), patch, shape).map(Value::Object)
        }
        (_, Value::Object(patch)) => merge_map(Map::new(), patch, shape).map(Value::Object),
        _ => Err("a strategic merge patch must be a JSON object".into()),
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    shape: &Shape,
) -> Result<Map<String, Value>, String> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        match directive.as_str() {
            Some("replace") => {
                let mut replaced = patch.clone();
                replaced.remove(DIRECTIVE);
                return merge_map(Map::new(), &replaced, shape);
            }
            Some("delete") => return Ok(Map::new()),
            Some("merge") => {}
            _ => return Err(format!("unknown patch type: {directive}")),
        }
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keep: Vec<&str> = retain
            .as_array()
            .ok_or("$retainKeys must be a list")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        original.retain(|key, _| keep.contains(&key.as_str()));
    }
    for (key, values) in patch {
        if let Some(field) = key.strip_prefix(DELETE_PRIMITIVE_PREFIX) {
            let doomed = values
                .as_array()
                .ok_or("$deleteFromPrimitiveList must be a list")?;
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|item| !doomed.contains(item));
            }
        }
    }
    for (key, patch_value) in patch {
        if key == DIRECTIVE || key == RETAIN_KEYS || key.starts_with(DELETE_PRIMITIVE_PREFIX) {
            continue;
        }
        if let Some(field) = key.strip_prefix(SET_ORDER_PREFIX) {
            // Lists present in the patch are ordered when they are merged below.
            if !patch.contains_key(field)
                && let (Some(Value::Array(items)), Some(order)) =
                    (original.get(field), patch_value.as_array())
            {
                let field_shape = shape.field(field);
                let key_name = field_shape.merge_key();
                let reordered = order_items(items.clone(), order, items, key_name.as_deref());
                original.insert(field.to_string(), Value::Array(reordered));
            }
            continue;
        }
        if patch_value.is_null() {
            original.shift_remove(key);
            continue;
        }
        let field_shape = shape.field(key);
        let merged = match (original.get(key), patch_value) {
            (Some(Value::Object(existing)), Value::Object(sub_patch)) => {
                if field_shape.is_atomic() && !matches!(field_shape, Shape::Untyped) {
                    Value::Object(merge_map(Map::new(), sub_patch, &field_shape)?)
                } else {
                    Value::Object(merge_map(existing.clone(), sub_patch, &field_shape)?)
                }
            }
            (Some(Value::Array(existing)), Value::Array(sub_patch)) => {
                let order = patch
                    .get(&format!("{SET_ORDER_PREFIX}{key}"))
                    .and_then(Value::as_array);
                Value::Array(merge_list(existing, sub_patch, order, &field_shape)?)
            }
            (None, Value::Object(sub_patch)) => {
                Value::Object(merge_map(Map::new(), sub_patch, &field_shape)?)
            }
            (None, Value::Array(sub_patch)) => {
                Value::Array(merge_list(&[], sub_patch, None, &field_shape)?)
            }
            _ => patch_value.clone(),
        };
        original.insert(key.clone(), merged);
    }
    Ok(original)
}

fn directive_of(item: &Value) -> Option<&str> {
    item.get(DIRECTIVE).and_then(Value::as_str)
}

fn merge_list(
    original: &[Value],
    patch: &[Value],
    order: Option<&Vec<Value>>,
    shape: &Shape,
) -> Result<Vec<Value>, String> {
    if patch
        .iter()
        .any(|item| directive_of(item) == Some("replace"))
    {
        let kept: Vec<Value> = patch
            .iter()
            .filter(|item| directive_of(item) != Some("replace"))
            .cloned()
            .collect();
        return clean_items(&kept, shape);
    }
    match shape.list_kind() {
        ListKind::Set => {
            let mut merged: Vec<Value> = original.to_vec();
            for item in patch {
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            let order = order.map(Vec::as_slice).unwrap_or(patch);
            Ok(order_items(merged, order, original, None))
        }
        ListKind::Map(_) => {
            let key = shape.merge_key().unwrap_or_default();
            let item_shape = shape.item();
            let mut merged: Vec<Value> = original.to_vec();
            for item in patch {
                let identity = item.get(&key);
                let position = identity.and_then(|id| {
                    merged
                        .iter()
                        .position(|existing| existing.get(&key) == Some(id))
                });
                match directive_of(item) {
                    Some("delete") => {
                        if let Some(i) = position {
                            merged.remove(i);
                        }
                        continue;
                    }
                    Some("merge") | None => {}
                    Some(other) => return Err(format!("unknown patch type: {other}")),
                }
                let Value::Object(item_patch) = item else {
                    return Err(format!(
                        "expected a map in a list merged by {key:?}, got {item}"
                    ));
                };
                match position {
                    Some(i) => {
                        let base = merged[i].as_object().cloned().unwrap_or_default();
                        merged[i] = Value::Object(merge_map(base, item_patch, &item_shape)?);
                    }
                    None => merged.push(Value::Object(merge_map(
                        Map::new(),
                        item_patch,
                        &item_shape,
                    )?)),
                }
            }
            let patch_order: Vec<Value> = patch
                .iter()
                .filter(|item| directive_of(item) != Some("delete"))
                .cloned()
                .collect();
            let order = order.map(Vec::as_slice).unwrap_or(&patch_order);
            Ok(order_items(merged, order, original, Some(&key)))
        }
        ListKind::Atomic => clean_items(patch, shape),
    }
}

/// Removes directives from items of a list taken from the patch.
fn clean_items(items: &[Value], shape: &Shape) -> Result<Vec<Value>, String> {
    let item_shape = shape.item();
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => merge_map(Map::new(), map, &item_shape).map(Value::Object),
            other => Ok(other.clone()),
        })
        .collect()
}

fn identity<'a>(item: &'a Value, key: Option<&str>) -> &'a Value {
    match key {
        Some(key) => item.get(key).unwrap_or(&Value::Null),
        None => item,
    }
}

fn position_in(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let id = identity(item, key);
    list.iter()
        .position(|candidate| identity(candidate, key) == id)
}

/// Orders `merged`: items named in `order` follow it; other items keep their relative order
/// from `server` and are interleaved where the server order puts them.
fn order_items(
    merged: Vec<Value>,
    order: &[Value],
    server: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let (mut ordered, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| position_in(order, item, key).is_some());
    ordered.sort_by_key(|item| position_in(order, item, key));
    server_only.sort_by_key(|item| position_in(server, item, key));
    let mut out = Vec::with_capacity(ordered.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        ordered.into_iter().peekable(),
    );
    loop {
        match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => {
                let before = match (position_in(server, l, key), position_in(server, r, key)) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                };
                let next = if before { left.next() } else { right.next() };
                out.extend(next);
            }
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a"]},
            "spec": {"template": {"spec": {
                "containers": [
                    {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "proxy", "image": "envoy"}
                ],
                "volumes": [{"name": "data", "emptyDir": {}}]
            }}}
        })
    }

    // New items go first, as with the real server's ordering rules.
    #[test]
    fn containers_merge_by_name() {
        let shape = schema::builtin("Deployment");
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]}
        ]}}}});
        let result = apply(&deployment(), &patch, &shape).expect("patch applies");
        let containers = &result["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], "nginx:2");
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
        );
        assert_eq!(containers[1]["name"], "proxy");
    }

    #[test]
    fn delete_and_replace_directives() {
        let shape = schema::builtin("Deployment");
        let patch = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "proxy", "$patch": "delete"}],
            "volumes": [{"name": "cfg", "configMap": {"name": "x"}}, {"$patch": "replace"}]
        }}}});
        let result = apply(&deployment(), &patch, &shape).expect("patch applies");
        let spec = &result["spec"]["template"]["spec"];
        assert_eq!(spec["containers"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            spec["volumes"],
            json!([{"name": "cfg", "configMap": {"name": "x"}}])
        );
    }

    #[test]
    fn kubectl_apply_style_patch_with_order_and_retain_keys() {
        let shape = schema::builtin("Deployment");
        let patch = json!({
            "metadata": {"labels": {"tier": "front"}, "$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "proxy"}, {"name": "web"}],
                "containers": [{"name": "web", "image": "nginx:3"}],
                "volumes": [{"name": "data", "$retainKeys": ["configMap", "name"], "configMap": {"name": "c"}}]
            }}}
        });
        let result = apply(&deployment(), &patch, &shape).expect("patch applies");
        let spec = &result["spec"]["template"]["spec"];
        assert_eq!(spec["containers"][0]["name"], "proxy");
        assert_eq!(spec["containers"][1]["image"], "nginx:3");
        assert_eq!(
            spec["volumes"][0],
            json!({"name": "data", "configMap": {"name": "c"}})
        );
        assert_eq!(result["metadata"]["finalizers"], json!([]));
        assert_eq!(
            result["metadata"]["labels"],
            json!({"app": "web", "tier": "front"})
        );
    }

    #[test]
    fn nulls_delete_and_unkeyed_lists_replace() {
        let shape = schema::builtin("Deployment");
        let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
                              "spec": {"template": {"spec": {"tolerations": [{"key": "x"}]}}}});
        let patch = json!({"metadata": {"labels": {"a": null}},
                           "spec": {"template": {"spec": {"tolerations": [{"key": "y"}]}}}});
        let result = apply(&original, &patch, &shape).expect("patch applies");
        assert_eq!(result["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(
            result["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "y"}])
        );
    }
}
