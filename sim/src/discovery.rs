//! Discovery documents: `/api`, `/apis`, group and resource lists, legacy and aggregated.

use serde_json::{Value, json};

use super::registry::Registry;
use super::resource::{RESOURCE_VERBS, ResourceType};

const SUBRESOURCE_VERBS: &[&str] = &["get", "patch", "update"];

/// `/api`: the core group's versions.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_versions(group: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(json!({})),
    })
}

/// `/apis`: every named group.
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(group, _)| !group.is_empty())
        .map(|(group, versions)| group_versions(&group, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, if the group is served.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let (group, versions) = registry
        .groups()
        .into_iter()
        .find(|(g, _)| g == name && !g.is_empty())?;
    let mut document = group_versions(&group, &versions);
    if let Some(map) = document.as_object_mut() {
        let mut ordered = serde_json::Map::new();
        ordered.insert("kind".into(), json!("APIGroup"));
        ordered.insert("apiVersion".into(), json!("v1"));
        ordered.extend(std::mem::take(map));
        *map = ordered;
    }
    Some(document)
}

fn legacy_entries(rt: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": RESOURCE_VERBS,
    });
    if !rt.short_names.is_empty() {
        main["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        main["categories"] = json!(rt.categories);
    }
    let mut entries = vec![main];
    if rt.group.is_empty() && rt.kind == "Namespace" {
        entries.push(
            json!({"name": "namespaces/finalize", "singularName": "", "namespaced": false,
                            "kind": "Namespace", "verbs": ["update"]}),
        );
    }
    if rt.scale.is_some() {
        entries.push(
            json!({"name": format!("{}/scale", rt.plural), "singularName": "",
                            "namespaced": rt.namespaced, "group": "autoscaling", "version": "v1",
                            "kind": "Scale", "verbs": SUBRESOURCE_VERBS}),
        );
    }
    if rt.status_subresource {
        entries.push(json!({"name": format!("{}/status", rt.plural), "singularName": "",
                            "namespaced": rt.namespaced, "kind": rt.kind, "verbs": SUBRESOURCE_VERBS}));
    }
    entries
}

/// `/api/v1` or `/apis/<group>/<version>`: the resources of one group version.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = registry.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = types.iter().flat_map(|rt| legacy_entries(rt)).collect();
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

fn aggregated_resource(rt: &ResourceType, version: &str) -> Value {
    let scope = if rt.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    };
    let mut resource = json!({
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": version, "kind": rt.kind},
        "scope": scope,
        "singularResource": rt.singular,
        "verbs": RESOURCE_VERBS,
    });
    if !rt.short_names.is_empty() {
        resource["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        resource["categories"] = json!(rt.categories);
    }
    let mut subresources = Vec::new();
    if rt.group.is_empty() && rt.kind == "Namespace" {
        subresources.push(json!({"subresource": "finalize",
            "responseKind": {"group": "", "version": "v1", "kind": "Namespace"}, "verbs": ["update"]}));
    }
    if rt.scale.is_some() {
        subresources.push(json!({"subresource": "scale",
            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": SUBRESOURCE_VERBS}));
    }
    if rt.status_subresource {
        subresources.push(json!({"subresource": "status",
            "responseKind": {"group": rt.group, "version": version, "kind": rt.kind},
            "verbs": SUBRESOURCE_VERBS}));
    }
    if !subresources.is_empty() {
        resource["subresources"] = json!(subresources);
    }
    resource
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2`) for the core group (`core`) or all named
/// groups.
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(group, _)| group.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = registry
                        .in_group_version(&group, version)
                        .iter()
                        .map(|rt| aggregated_resource(rt, version))
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if group.is_empty() {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": group, "creationTimestamp": null})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_include_subresources() {
        let registry = Registry::new();
        let apps = resource_list(&registry, "apps", "v1").expect("apps/v1 served");
        let names: Vec<&str> = apps["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"deployments/scale"));
        assert!(names.contains(&"deployments/status"));
        assert!(resource_list(&registry, "apps", "v2").is_none());
    }

    #[test]
    fn group_list_has_preferred_versions() {
        let registry = Registry::new();
        let groups = group_list(&registry);
        let apps = groups["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["name"] == "apps")
            .expect("apps group");
        assert_eq!(apps["preferredVersion"]["groupVersion"], "apps/v1");
        assert_eq!(
            group(&registry, "apps").expect("served")["kind"],
            "APIGroup"
        );
        let core = aggregated(&registry, true);
        assert_eq!(core["items"][0]["versions"][0]["version"], "v1");
    }
}
