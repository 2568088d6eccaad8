//! Which resources a cluster serves: kinds, plurals, short names, scope, verbs. Fetched once per
//! handle (all group versions concurrently) and fetched again when a kind is not found, so
//! kinds from newly applied CRDs resolve.

use futures::future::join_all;
use serde_json::Value;

use super::names::segment;
use super::rest::{Rest, RestError};

/// One served resource in one group version.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    /// This version is the group's preferred one.
    pub preferred: bool,
}

impl Resource {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps` (kubectl's fully qualified name).
    pub fn qualified_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The collection path, in a namespace when given; every segment percent-encoded.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let prefix = if self.group.is_empty() {
            format!("/api/{}", segment(&self.version))
        } else {
            format!("/apis/{}/{}", segment(&self.group), segment(&self.version))
        };
        let plural = segment(&self.plural);
        match namespace.filter(|_| self.namespaced) {
            Some(namespace) => format!("{prefix}/namespaces/{}/{plural}", segment(namespace)),
            None => format!("{prefix}/{plural}"),
        }
    }

    /// The path of one object; every segment percent-encoded. Names are checked against
    /// their kind's rules ([`Resource::check_name`]) before a request is sent.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{}", self.collection_path(namespace), segment(name))
    }

    /// Checks an object name, and its namespace when this resource is namespaced, as the API
    /// server would.
    pub fn check_name(&self, namespace: Option<&str>, name: &str) -> Result<(), String> {
        if let Some(namespace) = namespace.filter(|_| self.namespaced) {
            super::names::check_namespace(namespace)?;
        }
        super::names::check_name(&self.group, &self.kind, name)
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// Groups searched first when a bare kind exists in several groups (`Gateway` is both Istio's
/// and Gateway API's; runbooks here mean Istio's unless they qualify it).
const GROUP_PRIORITY: &[&str] = &[
    "",
    "apps",
    "batch",
    "networking.istio.io",
    "security.istio.io",
    "telemetry.istio.io",
    "extensions.istio.io",
    "apiextensions.k8s.io",
    "rbac.authorization.k8s.io",
    "admissionregistration.k8s.io",
    "coordination.k8s.io",
    "networking.k8s.io",
    "policy",
    "autoscaling",
];

fn group_rank(group: &str) -> usize {
    GROUP_PRIORITY
        .iter()
        .position(|g| *g == group)
        .unwrap_or(GROUP_PRIORITY.len())
}

/// Everything a cluster serves.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub resources: Vec<Resource>,
}

impl Discovery {
    /// Fetches `/api`, `/apis` and every group version (concurrently).
    pub async fn fetch(rest: &Rest) -> Result<Discovery, RestError> {
        let mut versions: Vec<(String, String, bool)> = Vec::new();
        let core = rest.get("/api").await?;
        // A proxy's login page or a redirect is not an API server: say so rather than
        // report every kind missing.
        if core.body["kind"] != "APIVersions" {
            return Err(RestError::Transport(format!(
                "GET /api answered {} without the API's version list: is this a Kubernetes API server (not a proxy, login page or redirect)?",
                core.status
            )));
        }
        for version in core.body["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            versions.push((String::new(), version.to_string(), version == "v1"));
        }
        let groups = rest.get("/apis").await?;
        for group in groups.body["groups"].as_array().into_iter().flatten() {
            let name = group["name"].as_str().unwrap_or_default().to_string();
            let preferred = group["preferredVersion"]["version"]
                .as_str()
                .unwrap_or_default();
            for version in group["versions"].as_array().into_iter().flatten() {
                let version = version["version"].as_str().unwrap_or_default();
                versions.push((name.clone(), version.to_string(), version == preferred));
            }
        }
        let lists = join_all(versions.iter().map(|(group, version, _)| {
            let path = if group.is_empty() {
                format!("/api/{version}")
            } else {
                format!("/apis/{group}/{version}")
            };
            async move { rest.get(&path).await }
        }))
        .await;
        let mut resources = Vec::new();
        for ((group, version, preferred), list) in versions.into_iter().zip(lists) {
            // A group version that vanished between the two calls (a CRD being deleted) is skipped.
            let Ok(list) = list else { continue };
            resources.extend(parse_resource_list(&group, &version, preferred, &list.body));
        }
        resources.sort_by_key(|r| (group_rank(&r.group), !r.preferred, r.group.clone()));
        Ok(Discovery { resources })
    }

    /// Resolves what users type: `Deployment`, `deployment`, `deployments`, `deploy`,
    /// `deployments.apps`, `Deployment.apps`, `virtualservices.networking.istio.io`, `vs`.
    /// The preferred version of the highest-priority group wins.
    pub fn resolve(&self, query: &str) -> Option<&Resource> {
        let query = query.trim();
        let (name, group) = match query.split_once('.') {
            Some((name, group)) => (name, Some(group)),
            None => (query, None),
        };
        let lower = name.to_lowercase();
        self.resources.iter().filter(|r| r.preferred).find(|r| {
            group.is_none_or(|g| g == r.group)
                && (r.kind.eq_ignore_ascii_case(name)
                    || r.plural == lower
                    || r.singular == lower
                    || r.short_names.contains(&lower))
        })
    }

    /// Every name a user could type, for "did you mean" and completion.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .resources
            .iter()
            .filter(|r| r.preferred)
            .flat_map(|r| {
                [r.kind.clone(), r.plural.clone()]
                    .into_iter()
                    .chain(r.short_names.clone())
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Resources of one `APIResourceList`; subresources (`pods/status`) are left out.
pub fn parse_resource_list(
    group: &str,
    version: &str,
    preferred: bool,
    list: &Value,
) -> Vec<Resource> {
    let entries: Vec<&Value> = list["resources"].as_array().into_iter().flatten().collect();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let resources: Vec<Resource> = entries
        .iter()
        .filter(|e| e["name"].as_str().is_some_and(|n| !n.contains('/')))
        .map(|e| {
            let plural = e["name"].as_str().unwrap_or_default().to_string();
            let kind = e["kind"].as_str().unwrap_or_default().to_string();
            let singular = e["singularName"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| kind.to_lowercase());
            Resource {
                group: group.to_string(),
                version: version.to_string(),
                kind,
                plural,
                singular,
                namespaced: e["namespaced"].as_bool().unwrap_or(false),
                verbs: strings(&e["verbs"]),
                short_names: strings(&e["shortNames"]),
                preferred,
            }
        })
        .collect();
    resources
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn discovery() -> Discovery {
        let apps = json!({"resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["deploy"]},
            {"name": "deployments/status", "namespaced": true, "kind": "Deployment", "verbs": ["get", "patch"]},
            {"name": "deployments/scale", "namespaced": true, "kind": "Scale", "verbs": ["get"]}]});
        let istio = json!({"resources": [{"name": "gateways", "singularName": "gateway", "namespaced": true, "kind": "Gateway", "verbs": ["get"], "shortNames": ["gw"]},
            {"name": "virtualservices", "singularName": "virtualservice", "namespaced": true, "kind": "VirtualService", "verbs": ["get"], "shortNames": ["vs"]}]});
        let gateway_api = json!({"resources": [{"name": "gateways", "singularName": "gateway", "namespaced": true, "kind": "Gateway", "verbs": ["get"], "shortNames": ["gtw"]}]});
        let mut resources = parse_resource_list("apps", "v1", true, &apps);
        resources.extend(parse_resource_list(
            "gateway.networking.k8s.io",
            "v1",
            true,
            &gateway_api,
        ));
        resources.extend(parse_resource_list(
            "networking.istio.io",
            "v1",
            true,
            &istio,
        ));
        resources.extend(parse_resource_list(
            "networking.istio.io",
            "v1beta1",
            false,
            &istio,
        ));
        resources.sort_by_key(|r| (group_rank(&r.group), !r.preferred, r.group.clone()));
        Discovery { resources }
    }

    #[test]
    fn resolves_what_users_type() {
        let d = discovery();
        for query in [
            "Deployment",
            "deployment",
            "deployments",
            "deploy",
            "deployments.apps",
            "Deployment.apps",
        ] {
            assert_eq!(
                d.resolve(query).map(|r| r.api_version()),
                Some("apps/v1".into()),
                "{query}"
            );
        }
        assert_eq!(
            d.resolve("vs").map(|r| r.qualified_name()),
            Some("virtualservices.networking.istio.io".into())
        );
        assert_eq!(
            d.resolve("Gateway").map(|r| r.group.as_str()),
            Some("networking.istio.io")
        );
        assert_eq!(
            d.resolve("gateways.gateway.networking.k8s.io")
                .map(|r| r.group.as_str()),
            Some("gateway.networking.k8s.io")
        );
        assert!(d.resolve("Deploymnt").is_none());
    }

    #[test]
    fn subresources_are_not_resources_and_paths_are_built() {
        let d = discovery();
        assert!(d.resolve("deployments/scale").is_none());
        let deployment = d.resolve("deploy").unwrap();
        assert_eq!(
            deployment.object_path(Some("bookinfo"), "reviews"),
            "/apis/apps/v1/namespaces/bookinfo/deployments/reviews"
        );
        assert_eq!(
            deployment.object_path(Some("bookinfo"), "victim#x?dryRun=All"),
            "/apis/apps/v1/namespaces/bookinfo/deployments/victim%23x%3FdryRun%3DAll"
        );
        assert!(deployment.check_name(Some("bookinfo"), "victim#x").is_err());
        assert!(deployment.check_name(Some("book/info"), "victim").is_err());
    }
}
