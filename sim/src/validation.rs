//! The validation users notice: names, labels, required fields, immutable fields.
//!
//! Messages copy the real server's wording so that kubectl output looks the same.

use serde_json::{Value, json};

use super::resource::ResourceType;
use super::status::Cause;

const SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MESSAGE: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME_MESSAGE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const CONFIG_KEY_MESSAGE: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn is_label_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label_segment)
}

/// An RFC 1123 label: at most 63 lower-case alphanumerics and dashes.
pub fn is_dns1123_label(s: &str) -> bool {
    is_label_segment(s)
}

/// An RFC 1035 label: an RFC 1123 label starting with a letter.
pub fn is_dns1035_label(s: &str) -> bool {
    is_label_segment(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_`, `.` starting and ending
/// alphanumeric.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_qualified_name_part(s)
}

fn is_qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Whether `key` is a valid label or annotation key (`[prefix/]name`).
pub fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_qualified_name_part(name),
        None => is_qualified_name_part(key),
    }
}

/// How names of a kind are validated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most kinds).
    Subdomain,
    /// RFC 1123 label (Namespaces).
    Label,
    /// RFC 1035 label (Services).
    Dns1035,
    /// Any path segment (RBAC kinds).
    PathSegment,
}

/// The name rule of a kind.
pub fn name_rule(rt: &ResourceType) -> NameRule {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => NameRule::Label,
        ("", "Service") => NameRule::Dns1035,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// Checks a name against a rule; returns the failure detail.
pub fn check_name(name: &str, rule: NameRule) -> Option<String> {
    match rule {
        NameRule::Subdomain if name.len() > 253 => {
            Some("must be no more than 253 characters".into())
        }
        NameRule::Subdomain if !is_dns1123_subdomain(name) => Some(SUBDOMAIN_MESSAGE.into()),
        NameRule::Label | NameRule::Dns1035 if name.len() > 63 => {
            Some("must be no more than 63 characters".into())
        }
        NameRule::Label if !is_dns1123_label(name) => Some(LABEL_MESSAGE.into()),
        NameRule::Dns1035 if !is_dns1035_label(name) => Some(DNS1035_MESSAGE.into()),
        NameRule::PathSegment if name == "." || name == ".." => {
            Some(format!("may not be '{name}'"))
        }
        NameRule::PathSegment if name.contains('/') => Some("may not contain '/'".into()),
        NameRule::PathSegment if name.contains('%') => Some("may not contain '%'".into()),
        _ => None,
    }
}

fn check_metadata(rt: &ResourceType, object: &Value, causes: &mut Vec<Cause>) {
    let meta = object.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() {
        causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if let Some(detail) = check_name(name, name_rule(rt)) {
        causes.push(Cause::invalid("metadata.name", &json!(name), &detail));
    }
    for (field, values_checked) in [("labels", true), ("annotations", false)] {
        let Some(map) = meta.and_then(|m| m.get(field)).and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in map {
            if !is_qualified_name(key) {
                causes.push(Cause::invalid(
                    &format!("metadata.{field}"),
                    &json!(key),
                    QUALIFIED_NAME_MESSAGE,
                ));
            }
            match value.as_str() {
                Some(text) if values_checked && !is_label_value(text) => {
                    causes.push(Cause::invalid(
                        &format!("metadata.{field}"),
                        value,
                        LABEL_VALUE_MESSAGE,
                    ));
                }
                Some(_) => {}
                None => causes.push(Cause::invalid(
                    &format!("metadata.{field}"),
                    value,
                    "must be a string",
                )),
            }
        }
    }
}

fn check_config_keys(object: &Value, causes: &mut Vec<Cause>) {
    for field in ["data", "binaryData"] {
        if let Some(map) = object.get(field).and_then(Value::as_object) {
            for key in map.keys() {
                let ok = !key.is_empty()
                    && key.len() <= 253
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !ok {
                    causes.push(Cause::invalid(
                        &format!("{field}[{key}]"),
                        &json!(key),
                        CONFIG_KEY_MESSAGE,
                    ));
                }
            }
        }
    }
}

fn check_pod_spec(spec: Option<&Value>, path: &str, causes: &mut Vec<Cause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(Cause::required(&format!("{path}.containers"), "")),
        Some(list) if list.is_empty() => {
            causes.push(Cause::required(&format!("{path}.containers"), ""))
        }
        Some(list) => {
            for (i, container) in list.iter().enumerate() {
                let name = container.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    causes.push(Cause::required(&format!("{path}.containers[{i}].name"), ""));
                } else if !is_dns1123_label(name) {
                    causes.push(Cause::invalid(
                        &format!("{path}.containers[{i}].name"),
                        &json!(name),
                        LABEL_MESSAGE,
                    ));
                }
                if container
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    causes.push(Cause::required(
                        &format!("{path}.containers[{i}].image"),
                        "",
                    ));
                }
            }
        }
    }
}

fn selector_matches_template(spec: &Value) -> bool {
    let labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object);
    let Some(match_labels) = spec
        .get("selector")
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
    else {
        return true;
    };
    match_labels
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

fn check_workload(object: &Value, causes: &mut Vec<Cause>, needs_selector: bool) {
    let spec = object.get("spec");
    let selector = spec.and_then(|s| s.get("selector"));
    if needs_selector && selector.is_none() {
        causes.push(Cause::required("spec.selector", ""));
    }
    if let Some(spec) = spec {
        // apps and batch validation (ValidateNonnegativeField): counts are never negative.
        for field in ["replicas", "parallelism", "completions", "backoffLimit"] {
            if let Some(count) = spec.get(field).and_then(Value::as_i64).filter(|n| *n < 0) {
                causes.push(Cause::invalid(
                    &format!("spec.{field}"),
                    &json!(count),
                    "must be greater than or equal to 0",
                ));
            }
        }
        if selector.is_some() && !selector_matches_template(spec) {
            let labels = spec
                .get("template")
                .and_then(|t| t.get("metadata"))
                .and_then(|m| m.get("labels"))
                .cloned()
                .unwrap_or(Value::Null);
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!(
                    "Invalid value: {}: `selector` does not match template `labels`",
                    go_map(&labels)
                ),
                "spec.template.metadata.labels",
            ));
        }
        check_pod_spec(
            spec.get("template").and_then(|t| t.get("spec")),
            "spec.template.spec",
            causes,
        );
    }
}

/// Renders a string map as kube-apiserver v1.37 prints an invalid value: compact JSON with
/// sorted keys (`{"app":"b"}`; v1.20 printed Go's `map[string]string{"app":"b"}`).
fn go_map(value: &Value) -> String {
    let sorted: std::collections::BTreeMap<&str, &Value> = value
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default();
    serde_json::to_string(&sorted).unwrap_or_default()
}

fn check_service(object: &Value, causes: &mut Vec<Cause>) {
    let spec = object.get("spec");
    let service_type = spec
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let headless = spec
        .and_then(|s| s.get("clusterIP"))
        .and_then(Value::as_str)
        == Some("None");
    let ports = spec.and_then(|s| s.get("ports")).and_then(Value::as_array);
    if service_type != "ExternalName" && !headless && ports.is_none_or(Vec::is_empty) {
        causes.push(Cause::required("spec.ports", ""));
    }
    for (i, port) in ports.into_iter().flatten().enumerate() {
        match port.get("port").and_then(Value::as_i64) {
            Some(p) if (1..=65535).contains(&p) => {}
            Some(p) => causes.push(Cause::invalid(
                &format!("spec.ports[{i}].port"),
                &json!(p),
                "must be between 1 and 65535, inclusive",
            )),
            None => causes.push(Cause::required(&format!("spec.ports[{i}].port"), "")),
        }
        if let Some(target) = port.get("targetPort").and_then(Value::as_i64)
            && !(1..=65535).contains(&target)
        {
            causes.push(Cause::invalid(
                &format!("spec.ports[{i}].targetPort"),
                &json!(target),
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    // Simulated clusters are single-stack IPv4, like most real ones.
    if spec
        .and_then(|s| s.get("ipFamilyPolicy"))
        .and_then(Value::as_str)
        == Some("RequireDualStack")
    {
        causes.push(Cause::invalid(
            "spec.ipFamilyPolicy",
            &json!("RequireDualStack"),
            "this cluster is not configured for dual-stack services",
        ));
    }
    let families = spec
        .and_then(|s| s.get("ipFamilies"))
        .and_then(Value::as_array);
    for (i, family) in families.into_iter().flatten().enumerate() {
        if family != "IPv4" {
            causes.push(Cause::invalid(
                &format!("spec.ipFamilies[{i}]"),
                family,
                "not configured on this cluster",
            ));
        }
    }
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&service_type) {
        causes.push(Cause::unsupported(
            "spec.type",
            &json!(service_type),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
}

fn check_crd(object: &Value, causes: &mut Vec<Cause>) {
    let spec = object.get("spec");
    let text = |path: &str| {
        super::object::get_path(object, path)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let group = text("spec.group");
    let plural = text("spec.names.plural");
    if group.is_empty() {
        causes.push(Cause::required("spec.group", ""));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural", ""));
    }
    if text("spec.names.kind").is_empty() {
        causes.push(Cause::required("spec.names.kind", ""));
    }
    let name = super::object::meta_str(object, "name");
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = text("spec.scope");
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(Cause::unsupported(
            "spec.scope",
            &json!(scope),
            &["Cluster", "Namespaced"],
        ));
    }
    let versions = spec
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array);
    match versions {
        Some(list) if !list.is_empty() => {
            let storage = list
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .count();
            if storage != 1 {
                causes.push(Cause::invalid(
                    "spec.versions",
                    &Value::Array(list.clone()),
                    "must have exactly one version marked as storage version",
                ));
            }
        }
        _ => causes.push(Cause::required("spec.versions", "")),
    }
}

/// Validates an object about to be stored; `old` is the stored object on updates.
pub fn validate(rt: &ResourceType, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    check_metadata(rt, object, &mut causes);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "ConfigMap") | ("", "Secret") => check_config_keys(object, &mut causes),
        ("", "Pod") => check_pod_spec(object.get("spec"), "spec", &mut causes),
        ("", "Service") => check_service(object, &mut causes),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            check_workload(object, &mut causes, true)
        }
        ("batch", "Job") => check_workload(object, &mut causes, false),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => check_crd(object, &mut causes),
        _ => {}
    }
    if let Some(old) = old {
        check_immutable(rt, object, old, &mut causes);
    }
    causes
}

fn check_immutable(rt: &ResourceType, new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let immutable_paths: &[&str] = match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => &["spec.selector"],
        ("batch", "Job") => &["spec.selector", "spec.template"],
        ("", "Secret") => &["type"],
        ("", "Service") => &["spec.clusterIP"],
        ("apiextensions.k8s.io", "CustomResourceDefinition") => &["spec.scope"],
        _ => &[],
    };
    for path in immutable_paths {
        let before = super::object::get_path(old, path);
        let after = super::object::get_path(new, path);
        // Service clusterIP may be left out on update; defaulting copies it back.
        if before.is_some() && before != after {
            causes.push(Cause::invalid(
                path,
                after.unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
    if matches!(rt.kind.as_str(), "ConfigMap" | "Secret") && rt.group.is_empty() {
        let was_immutable = old.get("immutable").and_then(Value::as_bool) == Some(true);
        if was_immutable
            && (old.get("data") != new.get("data")
                || old.get("binaryData") != new.get("binaryData"))
        {
            causes.push(Cause::forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
    }
    if rt.group.is_empty() && rt.kind == "Pod" && !pod_spec_update_allowed(old, new) {
        causes.push(Cause::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
}

fn pod_spec_update_allowed(old: &Value, new: &Value) -> bool {
    let normalize = |object: &Value| {
        let mut spec = object.get("spec").cloned().unwrap_or(Value::Null);
        for list in ["containers", "initContainers"] {
            if let Some(items) = spec.get_mut(list).and_then(Value::as_array_mut) {
                for item in items {
                    if let Some(map) = item.as_object_mut() {
                        map.remove("image");
                    }
                }
            }
        }
        if let Some(map) = spec.as_object_mut() {
            map.remove("activeDeadlineSeconds");
            map.remove("tolerations");
            map.remove("terminationGracePeriodSeconds");
        }
        spec
    };
    normalize(old) == normalize(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn rt(group: &str, plural: &str) -> std::sync::Arc<ResourceType> {
        Registry::new()
            .by_path(group, "v1", plural)
            .expect("built-in type")
    }

    #[test]
    fn names_follow_the_kind_rule() {
        assert!(is_dns1123_subdomain("reviews.bookinfo.svc"));
        assert!(!is_dns1123_subdomain("Bad_Name"));
        assert!(is_dns1035_label("reviews"));
        assert!(!is_dns1035_label("1reviews"));
        let causes = validate(
            &rt("", "services"),
            &json!({"metadata": {"name": "a.b"}, "spec": {"ports": [{"port": 80}]}}),
            None,
        );
        assert_eq!(causes.len(), 1);
        assert!(
            causes[0]
                .message
                .starts_with("Invalid value: \"a.b\": a DNS-1035 label")
        );
    }

    #[test]
    fn services_cannot_require_dual_stack() {
        let service = json!({
            "metadata": {"name": "details"},
            "spec": {"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6", "IPv4"],
                     "ports": [{"port": 9080}]}
        });
        let causes = validate(&rt("", "services"), &service, None);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.ipFamilyPolicy", "spec.ipFamilies[0]"]);
    }

    #[test]
    fn deployment_selector_must_match_template_labels() {
        let deployment = json!({
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "other"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
            }
        });
        let causes = validate(&rt("apps", "deployments"), &deployment, None);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
    }

    #[test]
    fn pod_spec_is_immutable_except_images() {
        let old = json!({"metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "c", "image": "a"}]}});
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("b");
        assert!(validate(&rt("", "pods"), &new, Some(&old)).is_empty());
        new["spec"]["containers"][0]["name"] = json!("d");
        assert_eq!(validate(&rt("", "pods"), &new, Some(&old))[0].field, "spec");
    }

    #[test]
    fn labels_are_checked() {
        let causes = validate(
            &rt("", "configmaps"),
            &json!({"metadata": {"name": "c", "labels": {"bad key": "x", "ok": "no way"}}}),
            None,
        );
        assert_eq!(causes.len(), 2);
    }
}
