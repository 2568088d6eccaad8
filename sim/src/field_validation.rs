//! Unknown fields: what `fieldValidation=Strict|Warn|Ignore` decides about.
//!
//! A real server decodes built-in kinds into typed structs, which drops fields it does not
//! know, and prunes custom resources to their CRD's structural schema. With `Strict` (what
//! kubectl sends) such fields are an error, with `Warn` (the default) they are dropped with a
//! warning, with `Ignore` silently dropped. Built-in kinds are checked by decoding into the
//! k8s-openapi types and comparing what comes back; custom resources against the schema.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::resource::ResourceType;

/// The `fieldValidation` query parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop unknown fields and say so in `Warning` headers (the default).
    #[default]
    Warn,
    /// Refuse objects with unknown fields.
    Strict,
}

impl FieldValidation {
    /// Parses the parameter; `None` for values the server does not know.
    pub fn parse(value: Option<&str>) -> Option<FieldValidation> {
        match value {
            None | Some("") | Some("Warn") => Some(FieldValidation::Warn),
            Some("Strict") => Some(FieldValidation::Strict),
            Some("Ignore") => Some(FieldValidation::Ignore),
            _ => None,
        }
    }
}

/// One step of a field path.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// An object key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// The location of a field.
pub type FieldLocation = Vec<Step>;

/// A location as the real server prints it (`spec.containers[0].bogus`).
pub fn display(location: &[Step]) -> String {
    let mut out = String::new();
    for step in location {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn metadata_unknown(object: &Value, out: &mut Vec<FieldLocation>) {
    if let Some(meta) = object.get("metadata").and_then(Value::as_object) {
        for key in meta.keys() {
            if !OBJECT_META_FIELDS.contains(&key.as_str()) {
                out.push(vec![Step::Key("metadata".into()), Step::Key(key.clone())]);
            }
        }
    }
}

/// Fields of `object` the kind does not declare, or a decoding error (a field of the wrong
/// type) for built-in kinds. `crd_schema` is the custom resource version's OpenAPI schema.
pub fn unknown_fields(
    rt: &ResourceType,
    object: &Value,
    crd_schema: Option<&Value>,
) -> Result<Vec<FieldLocation>, String> {
    let mut unknown = Vec::new();
    metadata_unknown(object, &mut unknown);
    if rt.is_custom() {
        if let Some(schema) = crd_schema
            && let Some(map) = object.as_object()
        {
            for (key, value) in map {
                if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let mut location = vec![Step::Key(key.clone())];
                match property(schema, key) {
                    Some(sub) => walk_schema(sub, value, &mut location, &mut unknown),
                    None if preserves_unknown(schema) => {}
                    None => unknown.push(location),
                }
            }
        }
        return Ok(unknown);
    }
    let Some(typed) = typed_round_trip(rt, object)? else {
        return Ok(unknown);
    };
    let mut location = Vec::new();
    let mut empty = Vec::new();
    compare_round_trip(object, &typed, &mut location, &mut unknown, &mut empty);
    for location in empty {
        if !declares_empty(rt, object, &location) {
            unknown.push(location);
        }
    }
    Ok(unknown)
}

/// Whether the kind declares the field at `location`, whose empty value (`{}` or `[]`) typed
/// decoding dropped: the field holds a non-empty probe instead, and a declared field either
/// keeps it or fails to decode it, while an unknown one is dropped again. (Without the probe
/// a misspelled `dta: {}` passed as known.)
fn declares_empty(rt: &ResourceType, object: &Value, location: &[Step]) -> bool {
    let probe = match pointer(object, location) {
        Some(Value::Object(_)) => serde_json::json!({"probe": "probe"}),
        Some(Value::Array(_)) => serde_json::json!([{}]),
        _ => return true,
    };
    let mut probed = object.clone();
    if let Some(slot) = pointer_mut(&mut probed, location) {
        *slot = probe;
    }
    match typed_round_trip(rt, &probed) {
        Ok(Some(typed)) => pointer(&typed, location).is_some(),
        Ok(None) => true,
        Err(_) => true,
    }
}

fn pointer<'a>(value: &'a Value, location: &[Step]) -> Option<&'a Value> {
    location.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.get(key.as_str()),
        Step::Index(i) => node.get(*i),
    })
}

fn pointer_mut<'a>(value: &'a mut Value, location: &[Step]) -> Option<&'a mut Value> {
    location.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.get_mut(key.as_str()),
        Step::Index(i) => node.get_mut(*i),
    })
}

/// Removes the given fields from `object`.
pub fn prune(object: &mut Value, fields: &[FieldLocation]) {
    // Only object keys are removed, never list items, so indexes stay valid.
    for location in fields {
        remove(object, location);
    }
}

fn remove(value: &mut Value, location: &[Step]) {
    let Some((last, parents)) = location.split_last() else {
        return;
    };
    let mut node = value;
    for step in parents {
        let next = match step {
            Step::Key(key) => node.get_mut(key.as_str()),
            Step::Index(i) => node.get_mut(*i),
        };
        match next {
            Some(next) => node = next,
            None => return,
        }
    }
    if let (Step::Key(key), Some(map)) = (last, node.as_object_mut()) {
        map.shift_remove(key);
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

fn property<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(sub) = schema.get("properties").and_then(|p| p.get(key)) {
        return Some(sub);
    }
    match schema.get("additionalProperties") {
        Some(Value::Object(_)) => schema.get("additionalProperties"),
        Some(Value::Bool(true)) => Some(&Value::Null),
        _ => None,
    }
}

fn walk_schema(
    schema: &Value,
    value: &Value,
    location: &mut FieldLocation,
    unknown: &mut Vec<FieldLocation>,
) {
    if schema.is_null() || schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let embedded = schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
            let declares =
                schema.get("properties").is_some() || schema.get("additionalProperties").is_some();
            for (key, child) in map {
                if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                location.push(Step::Key(key.clone()));
                match property(schema, key) {
                    Some(sub) => walk_schema(sub, child, location, unknown),
                    None if preserves_unknown(schema)
                        || !declares && schema.get("type").is_none() => {}
                    None => unknown.push(location.clone()),
                }
                location.pop();
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    location.push(Step::Index(i));
                    walk_schema(item_schema, item, location, unknown);
                    location.pop();
                }
            }
        }
        _ => {}
    }
}

fn compare_round_trip(
    original: &Value,
    typed: &Value,
    location: &mut FieldLocation,
    unknown: &mut Vec<FieldLocation>,
    empty: &mut Vec<FieldLocation>,
) {
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, child) in a {
                if location.is_empty() && key == "metadata" {
                    continue;
                }
                location.push(Step::Key(key.clone()));
                match b.get(key) {
                    Some(other) => compare_round_trip(child, other, location, unknown, empty),
                    // Typed decoding drops nulls and empty optional values too: a key with
                    // content that disappeared was unknown, an empty one is probed.
                    None if !is_empty(child) => unknown.push(location.clone()),
                    None if !child.is_null() => empty.push(location.clone()),
                    None => {}
                }
                location.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                location.push(Step::Index(i));
                compare_round_trip(x, y, location, unknown, empty);
                location.pop();
            }
        }
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> Result<Option<Value>, String> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    Ok(serde_json::to_value(typed).ok())
}

/// Decodes into the k8s-openapi type of the kind and encodes again.
fn typed_round_trip(rt: &ResourceType, object: &Value) -> Result<Option<Value>, String> {
    use k8s_openapi::api;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => round_trip::<api::core::v1::Namespace>(object),
        ("", "Pod") => round_trip::<api::core::v1::Pod>(object),
        ("", "Service") => round_trip::<api::core::v1::Service>(object),
        ("", "Endpoints") => round_trip::<api::core::v1::Endpoints>(object),
        ("", "ConfigMap") => round_trip::<api::core::v1::ConfigMap>(object),
        ("", "Secret") => round_trip::<api::core::v1::Secret>(object),
        ("", "ServiceAccount") => round_trip::<api::core::v1::ServiceAccount>(object),
        ("", "Node") => round_trip::<api::core::v1::Node>(object),
        ("", "Event") => round_trip::<api::core::v1::Event>(object),
        ("", "PersistentVolumeClaim") => round_trip::<api::core::v1::PersistentVolumeClaim>(object),
        ("", "PersistentVolume") => round_trip::<api::core::v1::PersistentVolume>(object),
        ("", "ResourceQuota") => round_trip::<api::core::v1::ResourceQuota>(object),
        ("", "LimitRange") => round_trip::<api::core::v1::LimitRange>(object),
        ("apps", "Deployment") => round_trip::<api::apps::v1::Deployment>(object),
        ("apps", "ReplicaSet") => round_trip::<api::apps::v1::ReplicaSet>(object),
        ("apps", "StatefulSet") => round_trip::<api::apps::v1::StatefulSet>(object),
        ("apps", "DaemonSet") => round_trip::<api::apps::v1::DaemonSet>(object),
        ("batch", "Job") => round_trip::<api::batch::v1::Job>(object),
        ("batch", "CronJob") => round_trip::<api::batch::v1::CronJob>(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            round_trip::<apiextensions::CustomResourceDefinition>(object)
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            round_trip::<api::admissionregistration::v1::MutatingWebhookConfiguration>(object)
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            round_trip::<api::admissionregistration::v1::ValidatingWebhookConfiguration>(object)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            round_trip::<api::admissionregistration::v1::ValidatingAdmissionPolicy>(object)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            round_trip::<api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(object)
        }
        ("coordination.k8s.io", "Lease") => round_trip::<api::coordination::v1::Lease>(object),
        ("rbac.authorization.k8s.io", "Role") => round_trip::<api::rbac::v1::Role>(object),
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            round_trip::<api::rbac::v1::RoleBinding>(object)
        }
        ("rbac.authorization.k8s.io", "ClusterRole") => {
            round_trip::<api::rbac::v1::ClusterRole>(object)
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            round_trip::<api::rbac::v1::ClusterRoleBinding>(object)
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            round_trip::<api::autoscaling::v2::HorizontalPodAutoscaler>(object)
        }
        ("policy", "PodDisruptionBudget") => {
            round_trip::<api::policy::v1::PodDisruptionBudget>(object)
        }
        ("networking.k8s.io", "Ingress") => round_trip::<api::networking::v1::Ingress>(object),
        ("networking.k8s.io", "IngressClass") => {
            round_trip::<api::networking::v1::IngressClass>(object)
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            round_trip::<api::networking::v1::NetworkPolicy>(object)
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            round_trip::<api::discovery::v1::EndpointSlice>(object)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn built_in_kinds_report_unknown_fields_and_type_errors() {
        let rt = Registry::new()
            .by_path("apps", "v1", "deployments")
            .expect("built-in");
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "lables": {"a": "b"}},
            "spec": {"replicas": 1, "replica": 2, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x", "ports": []}]}}}
        });
        let unknown: Vec<String> = unknown_fields(&rt, &deployment, None)
            .expect("decodes")
            .iter()
            .map(|l| display(l))
            .collect();
        assert_eq!(
            unknown,
            [
                "metadata.lables",
                "spec.replica",
                "spec.template.spec.containers[0].imagePolicy"
            ]
        );
        let wrong = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
                           "spec": {"replicas": "3"}});
        assert!(unknown_fields(&rt, &wrong, None).is_err());
        let mut pruned = deployment.clone();
        prune(
            &mut pruned,
            &unknown_fields(&rt, &deployment, None).expect("decodes"),
        );
        assert!(pruned["spec"].get("replica").is_none());
        assert!(
            pruned["spec"]["template"]["spec"]["containers"][0]
                .get("imagePolicy")
                .is_none()
        );
    }

    #[test]
    fn custom_resources_follow_their_schema() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "hosts": {"type": "array", "items": {"type": "string"}},
                "http": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }}
        }});
        let crd: Value = json!({
            "metadata": {"name": "routes.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"kind": "Route", "plural": "routes"},
                     "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema.clone()}}]}
        });
        let rt = crate::crd::resource_type(&crd).expect("usable");
        let route = json!({"apiVersion": "example.com/v1", "kind": "Route", "metadata": {"name": "r"},
                           "spec": {"hosts": ["a"], "http": [{"name": "x", "nmae": "y"}],
                                    "labels": {"any": "thing"}, "raw": {"free": {"form": 1}}, "hostz": 1}});
        let unknown: Vec<String> = unknown_fields(&rt, &route, Some(&schema))
            .expect("checked")
            .iter()
            .map(|l| display(l))
            .collect();
        assert_eq!(unknown, ["spec.http[0].nmae", "spec.hostz"]);
    }

    #[test]
    fn the_parameter_defaults_to_warn() {
        assert_eq!(FieldValidation::parse(None), Some(FieldValidation::Warn));
        assert_eq!(
            FieldValidation::parse(Some("Strict")),
            Some(FieldValidation::Strict)
        );
        assert_eq!(FieldValidation::parse(Some("strict")), None);
    }
}
