//! Unified diffs of objects as YAML, with Secret values masked.

use serde_json::Value;
use similar::TextDiff;

use super::yaml::to_yaml;

/// A unified diff from `before` to `after` (any values: objects, arrays, maps holding
/// objects), empty when equal. Values under a Secret's `data` and `stringData`, wherever it is
/// nested, are replaced by `***`, or by `*** (before)` / `*** (after)` when they changed, its
/// last-applied annotation is masked, and every secret value the process has learnt is
/// replaced, so a diff never shows a secret.
pub fn diff(before: &Value, after: &Value, before_label: &str, after_label: &str) -> String {
    let (mut before, mut after) = mask_secret_pair(before, after);
    crate::redact::mask_in_place(&mut before);
    crate::redact::mask_in_place(&mut after);
    let before_text = render(&before);
    let after_text = render(&after);
    if before_text == after_text {
        return String::new();
    }
    crate::redact::text(
        &TextDiff::from_lines(&before_text, &after_text)
            .unified_diff()
            .context_radius(3)
            .header(before_label, after_label)
            .to_string(),
    )
}

fn render(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Array(items) => super::yaml::to_yaml_stream(items),
        other => to_yaml(other),
    }
}

/// Masks Secret values in both versions; a changed value stays visibly changed.
pub fn mask_secret_pair(before: &Value, after: &Value) -> (Value, Value) {
    match (before, after) {
        (Value::Array(a), Value::Array(b)) => {
            let mut left = Vec::new();
            let mut right = Vec::new();
            for index in 0..a.len().max(b.len()) {
                let (l, r) = mask_secret_pair(
                    a.get(index).unwrap_or(&Value::Null),
                    b.get(index).unwrap_or(&Value::Null),
                );
                if index < a.len() {
                    left.push(l);
                }
                if index < b.len() {
                    right.push(r);
                }
            }
            (Value::Array(left), Value::Array(right))
        }
        // Neither is a Secret: Secrets may be nested inside (a map of objects, a List).
        (Value::Object(a), Value::Object(b)) if !is_secret(before) && !is_secret(after) => {
            let mut left = serde_json::Map::new();
            let mut right = serde_json::Map::new();
            for (key, value) in a {
                let (l, _) = mask_secret_pair(value, b.get(key).unwrap_or(&Value::Null));
                left.insert(key.clone(), l);
            }
            for (key, value) in b {
                let (_, r) = mask_secret_pair(a.get(key).unwrap_or(&Value::Null), value);
                right.insert(key.clone(), r);
            }
            (Value::Object(left), Value::Object(right))
        }
        _ => {
            let mut left = before.clone();
            let mut right = after.clone();
            for field in ["data", "stringData"] {
                let old = if is_secret(before) {
                    before.get(field).cloned()
                } else {
                    None
                };
                let new = if is_secret(after) {
                    after.get(field).cloned()
                } else {
                    None
                };
                if is_secret(before) {
                    mask_field(&mut left, field, new.as_ref(), "before");
                }
                if is_secret(after) {
                    mask_field(&mut right, field, old.as_ref(), "after");
                }
            }
            (left, right)
        }
    }
}

/// Masks every Secret value in a value, however nested, with the last-applied annotation
/// that repeats them, and every learnt secret (for printing a single version).
pub fn mask_secrets(value: &Value) -> Value {
    crate::redact::value(value)
}

fn is_secret(value: &Value) -> bool {
    value["kind"] == "Secret"
}

fn mask_field(object: &mut Value, field: &str, other: Option<&Value>, side: &str) {
    let Some(Value::Object(entries)) = object.get_mut(field) else {
        return;
    };
    for (key, value) in entries.iter_mut() {
        let changed = other.and_then(|o| o.get(key)).is_some_and(|o| o != value);
        *value = Value::String(if changed {
            format!("*** ({side})")
        } else {
            "***".into()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_objects_have_no_diff() {
        let object = json!({"kind": "ConfigMap", "data": {"a": "1"}});
        assert_eq!(diff(&object, &object, "live", "planned"), "");
    }

    #[test]
    fn shows_changed_lines() {
        let before = json!({"kind": "ConfigMap", "data": {"a": "1", "b": "2"}});
        let after = json!({"kind": "ConfigMap", "data": {"a": "1", "b": "3"}});
        let text = diff(&before, &after, "live", "planned");
        assert!(text.starts_with("--- live\n+++ planned\n"), "{text}");
        assert!(text.contains("-  b: '2'\n+  b: '3'\n"), "{text}");
    }

    #[test]
    fn secrets_never_show_values() {
        let before =
            json!({"kind": "Secret", "data": {"password": "c2VjcmV0", "user": "YWRtaW4="}});
        let after = json!({"kind": "Secret", "data": {"password": "bmV3", "user": "YWRtaW4="}});
        let text = diff(&before, &after, "a", "b");
        assert!(
            !text.contains("c2VjcmV0") && !text.contains("bmV3") && !text.contains("YWRtaW4="),
            "{text}"
        );
        assert!(
            text.contains("-  password: '*** (before)'\n+  password: '*** (after)'"),
            "{text}"
        );
        assert!(text.contains("   user: '***'"), "{text}");
    }

    #[test]
    fn nested_secrets_and_their_last_applied_annotation_never_show_values() {
        let secret = |value: &str| {
            json!({"kind": "Secret", "metadata": {"name": "db", "annotations": {
                crate::redact::LAST_APPLIED: format!("{{\"data\":{{\"password\":\"{value}\"}}}}")}},
                "data": {"password": value}})
        };
        let before = json!({"old": secret("bmVzdGVkLW9sZA=="), "list": {"items": [secret("bmVzdGVkLW9sZA==")]}});
        let after = json!({"old": secret("bmVzdGVkLW5ldw=="), "list": {"items": [secret("bmVzdGVkLW5ldw==")]}});
        let text = diff(&before, &after, "a", "b");
        assert!(
            !text.contains("bmVzdGVkLW9sZA") && !text.contains("bmVzdGVkLW5ldw"),
            "{text}"
        );
        assert!(text.contains("password: '*** (after)'"), "{text}");
    }
}
