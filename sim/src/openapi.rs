//! OpenAPI documents, as far as clients need them.
//!
//! kubectl reads `/openapi/v3` to learn whether the server validates fields itself
//! (`fieldValidation`), in which case it skips client-side schema validation. Each
//! group-version document therefore lists, for every resource, a PATCH operation tagged
//! with its group/version/kind that accepts `fieldValidation`, plus the schemas CRDs carry
//! (so `kubectl explain` works for custom resources).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use super::registry::Registry;
use super::resource::ResourceType;

fn group_version_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn document_hash(registry: &Registry, group: &str, version: &str) -> String {
    let mut hasher = DefaultHasher::new();
    for rt in registry.in_group_version(group, version) {
        rt.plural.hash(&mut hasher);
        rt.kind.hash(&mut hasher);
        // kubectl caches documents by this hash: any schema change must change it.
        format!("{:?}", rt.shape).hash(&mut hasher);
        for (version, schema) in &rt.schemas {
            version.hash(&mut hasher);
            schema.to_string().hash(&mut hasher);
        }
    }
    format!("{:016X}", hasher.finish())
}

/// `/openapi/v3`: one entry per served group version.
pub fn v3_index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let key = group_version_key(&group, &version);
            let hash = document_hash(registry, &group, &version);
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

fn schema_name(rt: &ResourceType, version: &str) -> String {
    let group = if rt.group.is_empty() {
        "core"
    } else {
        rt.group.as_str()
    };
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{}", reversed.join("."), rt.kind)
}

fn gvk(rt: &ResourceType, version: &str) -> Value {
    json!([{"group": rt.group, "version": version, "kind": rt.kind}])
}

fn crd_schema(crd_schema: Option<&Value>) -> Value {
    let mut schema = crd_schema.cloned().unwrap_or(json!({"type": "object"}));
    if let Some(properties) = schema
        .as_object_mut()
        .map(|s| s.entry("properties").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        properties.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}),
        );
        properties.insert(
            "kind".into(),
            json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}),
        );
        properties.insert(
            "metadata".into(),
            json!({"type": "object", "description": "Standard object's metadata."}),
        );
    }
    schema
}

/// `/openapi/v3/<group-version>`, if served; a custom resource's schema is its CRD's.
pub fn v3_document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = registry.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for rt in &types {
        let item_path = if rt.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("{prefix}/{}/{{name}}", rt.plural)
        };
        let mut content = Map::new();
        // Strategic merge patch is left out on purpose: kubectl then computes its patches
        // from its compiled-in types, which know the merge keys, instead of from these
        // schema-less documents.
        for media in [
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
        ] {
            content.insert(media.into(), json!({"schema": {"type": "object"}}));
        }
        let name = schema_name(rt, version);
        paths.insert(
            item_path,
            json!({
                "patch": {
                    "description": format!("partially update the specified {}", rt.kind),
                    "operationId": format!("patch{}", rt.kind),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk(rt, version)[0],
                    "parameters": [
                        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                        {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}
                    ],
                    "requestBody": {"content": content, "required": true},
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}}}
                }
            }),
        );
        let mut schema = crd_schema(rt.schemas.get(version).map(|s| s.as_ref()));
        if let Some(map) = schema.as_object_mut() {
            map.insert("x-kubernetes-group-version-kind".into(), gvk(rt, version));
            map.entry("description").or_insert_with(|| {
                json!(format!(
                    "{} is served by the simulated API server.",
                    rt.kind
                ))
            });
        }
        schemas.insert(name, schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lists_group_versions_and_documents_declare_field_validation() {
        let registry = Registry::new();
        let index = v3_index(&registry);
        assert!(
            index["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .is_some_and(|u| u.starts_with("/openapi/v3/apis/apps/v1?hash="))
        );
        let apps = v3_document(&registry, "apps", "v1").expect("served");
        let patch =
            &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["name"] == "fieldValidation"))
        );
        assert!(apps["components"]["schemas"]["io.k8s.apps.v1.Deployment"].is_null());
        assert!(apps["components"]["schemas"]["apps.v1.Deployment"].is_object());
    }

    /// A CRD with one served version whose spec has one property of type `kind`.
    fn widget_crd(kind: &str) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                       "spec": {"type": "object", "properties": {
                                           "size": {"type": kind}}}}}}}]}
        })
    }

    #[test]
    fn a_changed_crd_schema_changes_the_document_and_its_hash() {
        let url = |registry: &Registry| {
            v3_index(registry)["paths"]["apis/example.com/v1"]["serverRelativeURL"].clone()
        };
        let mut registry = Registry::new();
        registry.set_crd_type(
            "widgets.example.com",
            crate::crd::resource_type(&widget_crd("string")),
        );
        let before = url(&registry);
        let document = v3_document(&registry, "example.com", "v1").expect("served");
        assert_eq!(
            document["components"]["schemas"]["com.example.v1.Widget"]["properties"]["spec"]["properties"]
                ["size"]["type"],
            "string"
        );
        // Same length, other type: kubectl must not keep its cached document.
        registry.set_crd_type(
            "widgets.example.com",
            crate::crd::resource_type(&widget_crd("number")),
        );
        assert_ne!(url(&registry), before);
    }
}
