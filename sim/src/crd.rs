//! CustomResourceDefinitions: turning a stored CRD into a served resource type, and the
//! status the real API server's controllers would write.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::registry::{Registry, sort_versions};
use super::resource::{Origin, PrinterColumn, ResourceType, ScalePaths};
use super::schema;

/// Finalizer the server puts on a CRD while it deletes the CRD's objects.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn text(value: &Value, path: &str) -> String {
    super::object::get_path(value, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The resource type a CRD defines, if its spec is usable.
pub fn resource_type(crd: &Value) -> Option<ResourceType> {
    let name = super::object::meta_str(crd, "name").to_string();
    let group = text(crd, "spec.group");
    let kind = text(crd, "spec.names.kind");
    let plural = text(crd, "spec.names.plural");
    if group.is_empty() || kind.is_empty() || plural.is_empty() {
        return None;
    }
    let versions = crd
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)?;
    let served: Vec<&Value> = versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .collect();
    if served.is_empty() {
        return None;
    }
    let storage = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .or(served.first().copied())?;
    let mut version_names: Vec<String> = served
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    sort_versions(&mut version_names);
    let subresources = storage.get("subresources");
    let scale = subresources
        .and_then(|s| s.get("scale"))
        .map(|scale| ScalePaths {
            spec_replicas: text(scale, "specReplicasPath"),
            status_replicas: text(scale, "statusReplicasPath"),
            label_selector: scale
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    let mut printer_columns = BTreeMap::new();
    let mut schemas = BTreeMap::new();
    for version in &served {
        if let Some(schema) = version.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            schemas.insert(text(version, "name"), std::sync::Arc::new(schema.clone()));
        }
        let version_name = text(version, "name");
        let columns: Vec<PrinterColumn> = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|columns| {
                columns
                    .iter()
                    .map(|c| PrinterColumn {
                        name: text(c, "name"),
                        type_name: text(c, "type"),
                        json_path: text(c, "jsonPath"),
                        description: text(c, "description"),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        printer_columns.insert(version_name, columns);
    }
    let singular = match text(crd, "spec.names.singular") {
        s if s.is_empty() => kind.to_lowercase(),
        s => s,
    };
    let list_kind = match text(crd, "spec.names.listKind") {
        s if s.is_empty() => format!("{kind}List"),
        s => s,
    };
    Some(ResourceType {
        group,
        versions: version_names,
        kind,
        list_kind,
        plural,
        singular,
        namespaced: text(crd, "spec.scope") == "Namespaced",
        short_names: strings(super::object::get_path(crd, "spec.names.shortNames")),
        categories: strings(super::object::get_path(crd, "spec.names.categories")),
        status_subresource: subresources.and_then(|s| s.get("status")).is_some(),
        scale,
        has_generation: true,
        returns_deleted_object: false,
        zero: serde_json::json!({}),
        shape: schema::from_crd_schema(
            storage.get("schema").and_then(|s| s.get("openAPIV3Schema")),
        ),
        origin: Origin::Crd(name),
        printer_columns,
        schemas,
    })
}

/// Why a CRD's names cannot be served, if another type already uses them.
pub fn name_conflict(registry: &Registry, resource: &ResourceType) -> Option<String> {
    let own = &resource.origin;
    registry
        .types()
        .iter()
        .filter(|t| t.group == resource.group && t.origin != *own)
        .find_map(|t| {
            if t.plural == resource.plural {
                Some(format!("{:?} is already in use", resource.plural))
            } else if t.kind == resource.kind {
                Some(format!("{:?} is already in use", resource.kind))
            } else {
                None
            }
        })
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind,
        "status": status,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

/// The status the apiextensions controllers give a CRD: accepted names and the
/// `NamesAccepted`/`Established` conditions (or why not).
pub fn status(crd: &Value, conflict: Option<&str>, now: &str) -> Value {
    let previous: Vec<Value> = super::object::get_path(crd, "status.conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let keep_time = |kind: &str, status: &str, fresh: Value| -> Value {
        match previous
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        {
            Some(old) if old.get("status").and_then(Value::as_str) == Some(status) => {
                let mut kept = fresh;
                kept["lastTransitionTime"] = old
                    .get("lastTransitionTime")
                    .cloned()
                    .unwrap_or(Value::String(now.to_string()));
                kept
            }
            _ => fresh,
        }
    };
    let stored_versions: Vec<String> = {
        let mut versions = strings(super::object::get_path(crd, "status.storedVersions"));
        let storage = crd
            .get("spec")
            .and_then(|s| s.get("versions"))
            .and_then(Value::as_array)
            .and_then(|vs| {
                vs.iter()
                    .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            })
            .and_then(|v| v.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(storage) = storage
            && !versions.contains(&storage)
        {
            versions.push(storage);
        }
        versions
    };
    let mut conditions = Vec::new();
    match conflict {
        None => {
            conditions.push(keep_time(
                "NamesAccepted",
                "True",
                condition(
                    "NamesAccepted",
                    "True",
                    "NoConflicts",
                    "no conflicts found",
                    now,
                ),
            ));
            conditions.push(keep_time(
                "Established",
                "True",
                condition(
                    "Established",
                    "True",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                    now,
                ),
            ));
        }
        Some(why) => {
            conditions.push(keep_time(
                "NamesAccepted",
                "False",
                condition("NamesAccepted", "False", "PluralConflict", why, now),
            ));
            conditions.push(keep_time(
                "Established",
                "False",
                condition(
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                    now,
                ),
            ));
        }
    }
    if super::object::get_path(crd, "metadata.deletionTimestamp").is_some() {
        conditions.push(condition(
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            now,
        ));
    }
    let names = crd
        .get("spec")
        .and_then(|s| s.get("names"))
        .cloned()
        .unwrap_or(json!({}));
    let accepted = if conflict.is_none() {
        names
    } else {
        super::object::get_path(crd, "status.acceptedNames")
            .cloned()
            .unwrap_or(json!({"plural": "", "kind": ""}))
    };
    json!({
        "conditions": conditions,
        "acceptedNames": accepted,
        "storedVersions": stored_versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn virtual_service_crd() -> Value {
        serde_yaml::from_str(
            r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: virtualservices.networking.istio.io
spec:
  group: networking.istio.io
  names:
    categories: [istio-io, networking-istio-io]
    kind: VirtualService
    listKind: VirtualServiceList
    plural: virtualservices
    shortNames: [vs]
    singular: virtualservice
  scope: Namespaced
  versions:
  - name: v1alpha3
    served: true
    storage: false
    additionalPrinterColumns:
    - {name: Gateways, type: string, jsonPath: .spec.gateways}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    subresources: {status: {}}
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {hosts: {type: array, items: {type: string}}}}
    subresources: {status: {}}
  - name: v1beta1
    served: false
    storage: false
"#,
        )
        .expect("valid yaml")
    }

    #[test]
    fn served_versions_become_one_type() {
        let rt = resource_type(&virtual_service_crd()).expect("usable CRD");
        assert_eq!(rt.versions, ["v1", "v1alpha3"]);
        assert_eq!(rt.short_names, ["vs"]);
        assert!(rt.namespaced && rt.status_subresource);
        assert_eq!(
            rt.printer_columns["v1alpha3"][0].json_path,
            ".spec.gateways"
        );
        assert_eq!(
            rt.origin,
            Origin::Crd("virtualservices.networking.istio.io".into())
        );
    }

    #[test]
    fn status_reports_established_and_accepted_names() {
        let status = status(&virtual_service_crd(), None, "2024-01-01T00:00:00Z");
        let types: Vec<&str> = status["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .filter_map(|c| c["type"].as_str())
            .collect();
        assert_eq!(types, ["NamesAccepted", "Established"]);
        assert_eq!(status["acceptedNames"]["kind"], "VirtualService");
        assert_eq!(status["storedVersions"], json!(["v1"]));
    }

    #[test]
    fn conflicting_names_are_not_established() {
        let mut registry = Registry::new();
        let rt = resource_type(&virtual_service_crd()).expect("usable CRD");
        registry.set_crd_type(
            "other.networking.istio.io",
            Some(ResourceType {
                origin: Origin::Crd("other.networking.istio.io".into()),
                ..rt.clone()
            }),
        );
        assert_eq!(
            name_conflict(&registry, &rt).as_deref(),
            Some("\"virtualservices\" is already in use")
        );
    }
}
