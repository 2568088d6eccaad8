//! `select(objects, filter)`: pick objects by kind, apiVersion, name, namespace and labels.

use std::collections::BTreeMap;

use serde_json::Value;

use super::selector::Selector;

/// The fields an object is selected by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl Identity {
    /// Reads the identity fields of a JSON object.
    pub fn of(object: &Value) -> Identity {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let labels = object["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Identity {
            api_version: text(&object["apiVersion"]),
            kind: text(&object["kind"]),
            name: text(&object["metadata"]["name"]),
            namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
            labels,
        }
    }

    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(group, _)| group)
            .unwrap_or("")
    }
}

/// What `select` matches on. Every given field must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Case-insensitive kind names.
    pub kinds: Vec<String>,
    pub api_version: Option<String>,
    pub group: Option<String>,
    /// Exact name, or a pattern with `*`.
    pub name: Option<String>,
    pub namespaces: Vec<String>,
    pub labels: Option<Selector>,
}

/// The keys a filter map may have.
pub const FILTER_KEYS: &[&str] = &["kind", "apiVersion", "group", "name", "namespace", "labels"];

impl Filter {
    /// Builds a filter from a JSON map such as `{"kind": ["Deployment", "Service"], "labels": "app=x"}`.
    pub fn from_json(filter: &Value) -> Result<Filter, String> {
        let Some(fields) = filter.as_object() else {
            return Err("the filter must be a map like #{kind: \"Service\"}".into());
        };
        let mut result = Filter::default();
        for (key, value) in fields {
            match key.as_str() {
                "kind" => result.kinds = strings(key, value)?,
                "apiVersion" => result.api_version = Some(string(key, value)?),
                "group" => result.group = Some(string(key, value)?),
                "name" => result.name = Some(string(key, value)?),
                "namespace" => result.namespaces = strings(key, value)?,
                "labels" => {
                    result.labels = Some(match value {
                        Value::String(text) => Selector::parse(text)?,
                        Value::Object(pairs) => {
                            let mut pairs_text = Vec::new();
                            for (k, v) in pairs {
                                pairs_text.push((
                                    k.as_str(),
                                    v.as_str()
                                        .ok_or_else(|| format!("label `{k}` must be a string"))?,
                                ));
                            }
                            Selector::from_pairs(pairs_text)
                        }
                        _ => return Err("`labels` must be a selector string or a map".into()),
                    })
                }
                other => {
                    let suggestion =
                        crate::suggestion::did_you_mean(other, FILTER_KEYS.iter().copied())
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default();
                    return Err(format!(
                        "unknown filter key `{other}`{suggestion}; use {}",
                        FILTER_KEYS
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        Ok(result)
    }

    /// Does an object with this identity pass?
    pub fn matches(&self, identity: &Identity) -> bool {
        (self.kinds.is_empty()
            || self
                .kinds
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&identity.kind)))
            && self
                .api_version
                .as_ref()
                .is_none_or(|v| *v == identity.api_version)
            && self.group.as_ref().is_none_or(|g| g == identity.group())
            && self
                .name
                .as_ref()
                .is_none_or(|pattern| glob_match(pattern, &identity.name))
            && (self.namespaces.is_empty()
                || identity
                    .namespace
                    .as_ref()
                    .is_some_and(|ns| self.namespaces.contains(ns)))
            && self
                .labels
                .as_ref()
                .is_none_or(|s| s.matches(&identity.labels))
    }
}

fn string(key: &str, value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("`{key}` must be a string"))
}

fn strings(key: &str, value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|item| string(key, item)).collect(),
        _ => Err(format!("`{key}` must be a string or an array of strings")),
    }
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (index, part) in parts.iter().enumerate() {
        if index == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else if index == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(found) = rest.find(part) else {
                return false;
            };
            rest = &rest[found + part.len()..];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reviews() -> Identity {
        Identity::of(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "reviews-v2", "namespace": "bookinfo", "labels": {"app": "reviews", "version": "v2"}}}))
    }

    #[test]
    fn matches_every_given_field() {
        let filter = Filter::from_json(
            &json!({"kind": ["deployment", "Service"], "name": "reviews-*",
            "namespace": "bookinfo", "labels": "version in (v1,v2)", "group": "apps"}),
        )
        .unwrap();
        assert!(filter.matches(&reviews()));
        let other = Filter::from_json(&json!({"labels": {"app": "ratings"}})).unwrap();
        assert!(!other.matches(&reviews()));
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let error = Filter::from_json(&json!({"knid": "Pod"})).unwrap_err();
        assert!(
            error.starts_with("unknown filter key `knid` (did you mean `kind`?)"),
            "{error}"
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("reviews-*", "reviews-v1"));
        assert!(glob_match("*-v*", "reviews-v1"));
        assert!(!glob_match("ratings*", "reviews-v1"));
        assert!(glob_match("exact", "exact"));
    }
}
