//! The one redaction layer: everything that leaves the process (terminal output, errors,
//! diffs, the journal, reports, `exec` command lines) passes through here.
//!
//! Two nets:
//! - by shape: wherever a Kubernetes Secret appears, however deeply nested, its `data` and
//!   `stringData` values and its `kubectl.kubernetes.io/last-applied-configuration`
//!   annotation (which repeats the data) are masked;
//! - by value: secret strings the process has learnt — the values of every Secret that
//!   crossed into a script (as stored and base64-decoded), parameters marked secret, kubeconfig
//!   credentials — are replaced wherever they appear in text.
//!
//! The learnt values are process-wide: masking more never harms. Values shorter than
//! [`MIN_LEARNT`] characters are masked by shape only (masking `true` or `1234` in all text
//! would make output unreadable).

use std::sync::RwLock;

use base64::Engine as _;
use serde_json::Value;

/// What a masked value is replaced by.
pub const MASK: &str = "***";

/// The annotation `kubectl apply` keeps the whole applied object in (Secret data included).
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Learnt values shorter than this are not masked in free text.
pub const MIN_LEARNT: usize = 6;

/// Learnt secret strings, longest first (so a value is masked before a part of it).
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Parameter names secret by default: they contain one of these words.
const SECRET_WORDS: &[&str] = &["TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "CREDENTIAL"];

/// A parameter whose value is secret by its name (`API_TOKEN`, `db_password`, `SSH_KEY`).
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| upper.contains(word))
}

/// Learns a secret string: from now on it is masked wherever it appears in text, as is its
/// base64 form.
pub fn remember(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_LEARNT {
        return;
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(secret);
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    for value in [secret.to_string(), encoded] {
        if !known.contains(&value) {
            known.push(value);
        }
    }
    known.sort_by_key(|v| std::cmp::Reverse(v.len()));
}

/// Learns the values of every Secret inside `value` (data as stored and decoded, stringData,
/// and what their last-applied annotation holds).
pub fn learn(value: &Value) {
    match value {
        Value::Object(fields) => {
            if is_secret(value) {
                for field in ["data", "stringData"] {
                    for item in fields
                        .get(field)
                        .and_then(Value::as_object)
                        .into_iter()
                        .flat_map(|m| m.values())
                    {
                        if let Some(text) = item.as_str() {
                            remember(text);
                            if field == "data"
                                && let Ok(bytes) =
                                    base64::engine::general_purpose::STANDARD.decode(text)
                                && let Ok(decoded) = String::from_utf8(bytes)
                            {
                                remember(&decoded);
                            }
                        }
                    }
                }
                if let Some(applied) = value["metadata"]["annotations"][LAST_APPLIED].as_str()
                    && let Ok(inner) = serde_json::from_str::<Value>(applied)
                {
                    learn(&inner);
                }
            }
            fields.values().for_each(learn);
        }
        Value::Array(items) => items.iter().for_each(learn),
        _ => {}
    }
}

/// Text with every learnt secret replaced by [`MASK`].
pub fn text(input: &str) -> String {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut output = None::<String>;
    for secret in known.iter() {
        let current = output.as_deref().unwrap_or(input);
        if current.contains(secret.as_str()) {
            output = Some(current.replace(secret.as_str(), MASK));
        }
    }
    output.unwrap_or_else(|| input.to_string())
}

/// A copy of `value` with every Secret masked by shape, wherever it is nested, and every
/// learnt secret masked in its strings.
pub fn value(value: &Value) -> Value {
    let mut copy = value.clone();
    mask_in_place(&mut copy);
    copy
}

/// [`value`], in place.
pub fn mask_in_place(value: &mut Value) {
    match value {
        Value::Object(_) if is_secret(value) => {
            mask_secret_fields(value);
            if let Value::Object(fields) = value {
                for (key, item) in fields.iter_mut() {
                    if key != "data" && key != "stringData" {
                        mask_in_place(item);
                    }
                }
            }
        }
        Value::Object(fields) => fields.values_mut().for_each(mask_in_place),
        Value::Array(items) => items.iter_mut().for_each(mask_in_place),
        Value::String(text) => {
            let masked = self::text(text);
            if masked != *text {
                *text = masked;
            }
        }
        _ => {}
    }
}

/// A Kubernetes Secret (by its `kind`).
pub fn is_secret(value: &Value) -> bool {
    value["kind"] == "Secret"
}

/// Masks a Secret's `data` and `stringData` values and its last-applied annotation.
fn mask_secret_fields(secret: &mut Value) {
    for field in ["data", "stringData"] {
        if let Some(Value::Object(entries)) = secret.get_mut(field) {
            // Already masked values keep their marks (`*** (before)` in diffs).
            for item in entries
                .values_mut()
                .filter(|v| !v.as_str().is_some_and(|t| t.starts_with(MASK)))
            {
                *item = Value::String(MASK.into());
            }
        }
    }
    if let Some(Value::Object(annotations)) = secret.pointer_mut("/metadata/annotations")
        && let Some(applied) = annotations.get_mut(LAST_APPLIED)
    {
        *applied = Value::String(MASK.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_wherever_they_are_nested() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "annotations": {LAST_APPLIED: "{\"data\":{\"p\":\"c2VjcmV0LXZhbHVl\"}}", "team": "a"}},
            "data": {"p": "c2VjcmV0LXZhbHVl"}, "stringData": {"q": "plain-secret"}});
        let wrapped = json!({"result": {"objects": [secret.clone()], "old": secret}});
        let masked = value(&wrapped);
        let text = masked.to_string();
        assert!(
            !text.contains("c2VjcmV0LXZhbHVl") && !text.contains("plain-secret"),
            "{text}"
        );
        let first = &masked["result"]["objects"][0];
        assert_eq!(first["data"]["p"], MASK);
        assert_eq!(first["metadata"]["annotations"][LAST_APPLIED], MASK);
        assert_eq!(first["metadata"]["annotations"]["team"], "a");
    }

    #[test]
    fn learnt_values_are_masked_in_text_with_their_base64_form() {
        learn(&json!([{"kind": "Secret", "data": {"k": "bGVhcm50LWJ5LXNoYXBl"}}]));
        assert_eq!(text("token=learnt-by-shape;"), "token=***;");
        assert_eq!(text("raw bGVhcm50LWJ5LXNoYXBl"), "raw ***");
        remember("abc");
        assert_eq!(text("abc"), "abc", "short values are masked by shape only");
        remember("s3cr3t-token-value");
        assert_eq!(
            value(&json!({"a": ["x s3cr3t-token-value y"]})),
            json!({"a": ["x *** y"]})
        );
    }

    #[test]
    fn parameter_names_say_what_is_secret() {
        for name in ["API_TOKEN", "db_password", "SSH_KEY", "CLIENT_SECRET"] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["NAMESPACES", "STEPS", "TARGET_CLUSTER"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
