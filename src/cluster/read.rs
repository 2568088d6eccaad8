//! Reading clusters: objects, lists, pods, the Istio control plane, injection, load balancer
//! addresses, and exports ready to apply elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::{Value, json};

use super::Cluster;
use super::discovery::Resource;
use super::mesh::{self, ControlPlane, InjectionContext};
use super::overlay::Key;
use crate::error::Result;
use crate::manifest::strip::strip;

/// What `list` selects.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    pub labels: Option<String>,
    pub fields: Option<String>,
    /// Objects per page (`limit`); the server's `continue` token fetches the next page.
    pub page_size: Option<usize>,
}

/// Objects per list page unless asked otherwise: large kinds come in pages the server can
/// serve from its watch cache without holding a whole list in memory.
pub const DEFAULT_PAGE_SIZE: usize = 500;

/// What `export` copies.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Namespaces to export (required: exports are deliberate).
    pub namespaces: Vec<String>,
    /// Kinds to export; empty means the default set (workloads, services, config, Istio kinds).
    pub kinds: Vec<String>,
    /// Kinds (`ConfigMap`) or objects (`ConfigMap/settings`) to leave out.
    pub exclude: Vec<String>,
    /// Include Secrets (off by default; they are masked in every printout).
    pub secrets: bool,
    /// Objects per list page (default [`DEFAULT_PAGE_SIZE`]).
    pub page_size: Option<usize>,
}

/// Kinds exported by default besides every namespaced Istio kind.
pub const DEFAULT_EXPORT_KINDS: &[&str] = &[
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "CronJob",
    "PersistentVolumeClaim",
    "Role",
    "RoleBinding",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
];

/// The label meshshift puts on the objects it creates for a migration (the ServiceEntry to the
/// target, …): they are its own, and never exported.
pub const CREATED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "meshshift");

/// Objects that are not the user's to copy: what every namespace gets from the system (the
/// default ServiceAccount unless the user gave it something, root CA ConfigMaps, token
/// Secrets, `default/kubernetes`, which the API server manages), what a controller owns
/// (ReplicaSets, Pods, Endpoints), and what meshshift created itself.
fn is_system_generated(object: &Value) -> bool {
    let kind = object["kind"].as_str().unwrap_or_default();
    let metadata = &object["metadata"];
    let name = metadata["name"].as_str().unwrap_or_default();
    let namespace = metadata["namespace"].as_str().unwrap_or_default();
    (kind == "ServiceAccount" && name == "default" && !has_user_content(object))
        || (kind == "ConfigMap" && (name == "kube-root-ca.crt" || name == "istio-ca-root-cert"))
        || (kind == "Secret" && object["type"] == "kubernetes.io/service-account-token")
        || (kind == "Service" && namespace == "default" && name == "kubernetes")
        || kind == "Endpoints"
        || kind == "EndpointSlice"
        || metadata["labels"][CREATED_BY_LABEL.0] == CREATED_BY_LABEL.1
        || metadata["ownerReferences"]
            .as_array()
            .is_some_and(|owners| owners.iter().any(|o| o["controller"] != false))
}

/// Whether a default ServiceAccount carries something a user set: image pull secrets, a token
/// automount setting, labels or annotations (its token `secrets` are generated).
fn has_user_content(account: &Value) -> bool {
    let non_empty = |v: &Value| match v {
        Value::Null => false,
        Value::Object(map) => !map.is_empty(),
        Value::Array(list) => !list.is_empty(),
        _ => true,
    };
    non_empty(&account["imagePullSecrets"])
        || !account["automountServiceAccountToken"].is_null()
        || non_empty(&account["metadata"]["labels"])
        || account["metadata"]["annotations"]
            .as_object()
            .is_some_and(|a| a.keys().any(|k| !k.starts_with("kubectl.kubernetes.io/")))
}

impl Cluster {
    /// One object, or `None` when it does not exist.
    pub async fn get(
        &self,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<Option<Value>> {
        let resource = self.resolve(kind).await?;
        let namespace = self.namespace_for(&resource, namespace);
        resource
            .check_name(namespace.as_deref(), name)
            .map_err(|m| self.error(m, vec![]))?;
        let path = resource.object_path(namespace.as_deref(), name);
        let live = match self.rest().get(&path).await {
            Ok(response) => Some(response.body),
            Err(e) if e.status_code() == Some(404) => None,
            Err(e) => {
                return Err(
                    self.request_error(&format!("cannot get {} `{name}`", resource.kind), &e)
                );
            }
        };
        if self.overlay().is_empty() {
            return Ok(live);
        }
        let key = Key::new(&resource, namespace.as_deref(), name);
        Ok(self.overlay().read(&resource, &key, live))
    }

    /// The namespace a request about `resource` goes to: `namespace`, else the context's; none
    /// for cluster-scoped kinds.
    pub(super) fn namespace_for(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
    ) -> Option<String> {
        resource
            .namespaced
            .then(|| namespace.unwrap_or(self.namespace()).to_string())
    }

    /// Objects of a kind, following `continue` tokens (500 per page).
    pub async fn list(&self, kind: &str, query: &ListQuery) -> Result<Vec<Value>> {
        let resource = self.resolve(kind).await?;
        if let Some(namespace) = query.namespace.as_deref().filter(|_| resource.namespaced) {
            super::names::check_namespace(namespace).map_err(|m| self.error(m, vec![]))?;
        }
        self.list_resource(&resource, query).await
    }

    async fn list_resource(&self, resource: &Resource, query: &ListQuery) -> Result<Vec<Value>> {
        let base = resource.collection_path(query.namespace.as_deref());
        let limit = query.page_size.unwrap_or(DEFAULT_PAGE_SIZE).max(1);
        let mut parameters = vec![format!("limit={limit}")];
        if let Some(labels) = &query.labels {
            parameters.push(format!("labelSelector={}", encode(labels)));
        }
        if let Some(fields) = &query.fields {
            parameters.push(format!("fieldSelector={}", encode(fields)));
        }
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{base}?{}", parameters.join("&"));
            if let Some(token) = &token {
                url.push_str(&format!("&continue={}", encode(token)));
            }
            let response = self.rest().get(&url).await.map_err(|e| {
                self.request_error(&format!("cannot list {}", resource.qualified_name()), &e)
            })?;
            let mut body = response.body;
            // List items carry no apiVersion/kind; scripts expect whole objects.
            if let Some(Value::Array(page)) = body.get_mut("items").map(Value::take) {
                for mut item in page {
                    item["apiVersion"] = Value::String(resource.api_version());
                    item["kind"] = Value::String(resource.kind.clone());
                    items.push(item);
                }
            }
            token = body["metadata"]["continue"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(self.overlay().list(
                    resource,
                    query.namespace.as_deref(),
                    query.labels.as_deref(),
                    query.fields.as_deref(),
                    items,
                ));
            }
        }
    }

    /// Pods of a namespace (optionally by label selector).
    pub async fn pods(&self, namespace: &str, selector: Option<&str>) -> Result<Vec<Value>> {
        let query = ListQuery {
            namespace: Some(namespace.to_string()),
            labels: selector.map(str::to_string),
            ..Default::default()
        };
        self.list("Pod", &query).await
    }

    /// Istio control planes (istiod Deployments in any namespace).
    pub async fn control_planes(&self) -> Result<Vec<ControlPlane>> {
        let deployments = self
            .list(
                "Deployment",
                &ListQuery {
                    labels: Some("app=istiod".into()),
                    ..Default::default()
                },
            )
            .await?;
        Ok(mesh::control_planes(&deployments))
    }

    /// The detected Istio control plane: version, revision, namespace, mesh config, and every
    /// plane found. `None` when no istiod runs.
    pub async fn istio(&self) -> Result<Option<Value>> {
        let planes = self.control_planes().await?;
        let Some(primary) = planes
            .iter()
            .find(|p| p.is_default())
            .or_else(|| planes.first())
            .cloned()
        else {
            return Ok(None);
        };
        let configmap_names: Vec<String> = if primary.addon {
            vec![
                format!("istio-shared-configmap-{}", primary.revision),
                format!("istio-{}", primary.revision),
            ]
        } else if primary.revision == "default" {
            vec!["istio".to_string()]
        } else {
            vec![format!("istio-{}", primary.revision), "istio".to_string()]
        };
        let mut mesh_config = Value::Null;
        let mut mesh_source = Value::Null;
        for name in configmap_names {
            if let Some(configmap) = self
                .get("ConfigMap", &name, Some(&primary.namespace))
                .await?
            {
                let text = configmap["data"]["mesh"].as_str().unwrap_or_default();
                mesh_config = crate::manifest::yaml::parse_documents(&name, text)
                    .ok()
                    .and_then(|mut docs| (!docs.is_empty()).then(|| docs.remove(0).value))
                    .unwrap_or_else(|| json!({}));
                mesh_source = json!(format!("{}/{name}", primary.namespace));
                break;
            }
        }
        let plane_json = |p: &ControlPlane| {
            json!({"namespace": p.namespace, "deployment": p.deployment, "revision": p.revision,
                   "version": p.version, "minor": p.minor_version(), "addon": p.addon, "image": p.image})
        };
        Ok(Some(json!({
            "version": primary.version,
            "minor": primary.minor_version(),
            "revision": primary.revision,
            "namespace": primary.namespace,
            "addon": primary.addon,
            "mesh": mesh_config,
            "mesh_configmap": mesh_source,
            "revisions": planes.iter().map(|p| p.revision.clone()).collect::<Vec<_>>(),
            "control_planes": planes.iter().map(plane_json).collect::<Vec<_>>(),
        })))
    }

    /// Pods of a namespace without `istio-proxy`, each with the reason; pods that opt out
    /// (`sidecar.istio.io/inject=false`) are listed apart, as they run as their owner wants.
    pub async fn injection_report(&self, namespace: &str) -> Result<Value> {
        let namespace_object = self
            .get("Namespace", namespace, None)
            .await?
            .ok_or_else(|| self.error(format!("namespace `{namespace}` does not exist"), vec![]))?;
        let planes = self.control_planes().await?;
        let pods = self.pods(namespace, None).await?;
        let namespace_labels = mesh::string_map(&namespace_object["metadata"]["labels"]);
        let context_for = |pod: &Value| InjectionContext {
            namespace,
            namespace_labels: namespace_labels.clone(),
            pod_labels: mesh::string_map(&pod["metadata"]["labels"]),
            pod_annotations: mesh::string_map(&pod["metadata"]["annotations"]),
            host_network: pod["spec"]["hostNetwork"] == true,
        };
        let mut missing = Vec::new();
        let mut opted_out = Vec::new();
        let mut injected = 0;
        for pod in pods
            .iter()
            .filter(|p| p["status"]["phase"] != "Succeeded" && p["status"]["phase"] != "Failed")
        {
            let context = context_for(pod);
            let opts_out = context
                .pod_labels
                .get("sidecar.istio.io/inject")
                .or_else(|| context.pod_annotations.get("sidecar.istio.io/inject"))
                .is_some_and(|v| v == "false");
            if mesh::has_sidecar(pod) {
                injected += 1;
            } else if opts_out {
                opted_out.push(pod["metadata"]["name"].clone());
            } else {
                missing.push(json!({
                    "pod": pod["metadata"]["name"],
                    "reason": mesh::explain_missing_sidecar(&context_for(pod), &planes),
                }));
            }
        }
        let new_pods = mesh::injecting_revision(&context_for(&json!({})), &planes);
        Ok(json!({
            "namespace": namespace,
            "labels": namespace_object["metadata"]["labels"],
            "pods": injected + missing.len() + opted_out.len(),
            "injected": injected,
            "missing": missing,
            "opted_out": opted_out,
            "new_pods_revision": new_pods.as_ref().ok(),
            "new_pods_reason": new_pods.err(),
        }))
    }

    /// `ip:port` of a LoadBalancer Service's port named `port_name`, waiting until an address
    /// is assigned.
    pub async fn service_address(
        &self,
        namespace: &str,
        name: &str,
        port_name: &str,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (port, address, kind) = self
                .load_balancer_address(namespace, name, port_name)
                .await?;
            if let Some(address) = address {
                return Ok(format!("{address}:{port}"));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(self.error(
                    format!(
                        "Service `{namespace}/{name}` got no load balancer address within {}s (type {kind})",
                        timeout.as_secs(),
                    ),
                    vec![],
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A Service's port named `port_name`, its load balancer address if it has one yet, and
    /// the Service's type. Fails when the Service or the port does not exist.
    pub async fn load_balancer_address(
        &self,
        namespace: &str,
        name: &str,
        port_name: &str,
    ) -> Result<(i64, Option<String>, String)> {
        let service = self
            .get("Service", name, Some(namespace))
            .await?
            .ok_or_else(|| {
                self.error(
                    format!("Service `{namespace}/{name}` does not exist"),
                    vec![],
                )
            })?;
        let ports = service["spec"]["ports"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(port) = ports
            .iter()
            .find(|p| p["name"] == port_name)
            .and_then(|p| p["port"].as_i64())
        else {
            let names: Vec<&str> = ports.iter().filter_map(|p| p["name"].as_str()).collect();
            return Err(self.error(
                format!(
                    "Service `{namespace}/{name}` has no port named `{port_name}` (ports: {})",
                    names.join(", ")
                ),
                vec![],
            ));
        };
        let ingress = &service["status"]["loadBalancer"]["ingress"][0];
        let address = ingress["ip"]
            .as_str()
            .or_else(|| ingress["hostname"].as_str())
            .map(str::to_string);
        let kind = service["spec"]["type"]
            .as_str()
            .unwrap_or("ClusterIP")
            .to_string();
        Ok((port, address, kind))
    }

    /// Objects of the given namespaces, stripped of server-owned fields and ready to apply to
    /// another cluster: the Namespaces first, then the default kinds (or `filter.kinds`) and
    /// every namespaced Istio kind the server knows. Owned objects (ReplicaSets, Pods) and
    /// what the system generates (default ServiceAccount, root CA ConfigMaps, token Secrets) are
    /// left out.
    pub async fn export(&self, filter: &ExportFilter) -> Result<Vec<Value>> {
        if filter.namespaces.is_empty() {
            return Err(self.error(
                "export needs `namespaces`: say which namespaces to copy",
                vec![],
            ));
        }
        let discovery = self.discovery().await?;
        let mut resources: Vec<Resource> = Vec::new();
        let mut wanted: Vec<String> = if filter.kinds.is_empty() {
            DEFAULT_EXPORT_KINDS.iter().map(|k| k.to_string()).collect()
        } else {
            filter.kinds.clone()
        };
        if filter.kinds.is_empty() {
            // Sorted: servers list kinds in the order their CRDs arrived, which differs.
            let mut istio: Vec<String> = discovery
                .resources
                .iter()
                .filter(|r| r.preferred && r.namespaced && r.group.ends_with("istio.io"))
                .map(|r| r.qualified_name())
                .collect();
            istio.sort();
            wanted.extend(istio);
            if filter.secrets {
                wanted.push("Secret".into());
            }
        }
        let mut seen = BTreeSet::new();
        for kind in &wanted {
            let resource = match discovery.resolve(kind) {
                Some(resource) => resource.clone(),
                // Default kinds a server lacks are skipped; kinds the user named must exist.
                None if filter.kinds.is_empty() => continue,
                None => self.resolve(kind).await?,
            };
            if !filter.secrets && resource.kind == "Secret" && resource.group.is_empty() {
                return Err(self.error("exporting Secrets needs `secrets: true`", vec![]));
            }
            if seen.insert(resource.qualified_name()) && resource.supports("list") {
                resources.push(resource);
            }
        }
        let excluded = |object: &Value| {
            let kind = object["kind"].as_str().unwrap_or_default();
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            filter
                .exclude
                .iter()
                .any(|e| e.eq_ignore_ascii_case(kind) || *e == format!("{kind}/{name}"))
        };
        let asked: BTreeSet<&str> = filter.namespaces.iter().map(String::as_str).collect();
        let (namespace_objects, cluster_namespaces) =
            self.namespaces_of(&filter.namespaces).await?;
        let mut objects: Vec<Value> = namespace_objects
            .into_iter()
            .filter(|o| !excluded(o))
            .map(strip)
            .collect();
        // One list per kind across the cluster when the namespaces asked for are most of it
        // (the server has no "namespace in (…)" selector); else one list per kind and namespace.
        let wide = asked.len() > 1 && asked.len() * 2 >= cluster_namespaces;
        let order: BTreeMap<&str, usize> = filter
            .namespaces
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let asked = &asked;
        let resources = &resources;
        let lists: Vec<Vec<Value>> = stream::iter(0..resources.len())
            .map(|index| self.list_in(&resources[index], filter, asked, wide))
            .buffered(KINDS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        for mut items in lists {
            // Per namespace in the order asked, as the server's order within each.
            items.sort_by_key(|o| {
                order
                    .get(o["metadata"]["namespace"].as_str().unwrap_or_default())
                    .copied()
            });
            objects.extend(
                items
                    .into_iter()
                    .filter(|o| !is_system_generated(o) && !excluded(o))
                    .map(strip),
            );
        }
        Ok(objects)
    }
}

/// How many kinds an export lists at once (each list may page; requests are bounded per
/// cluster in [`super::rest`]).
const KINDS_IN_FLIGHT: usize = 8;

impl Cluster {
    /// The Namespace objects asked for (failing on one that does not exist) and how many
    /// namespaces the cluster has (0 when it cannot be listed).
    async fn namespaces_of(&self, names: &[String]) -> Result<(Vec<Value>, usize)> {
        let all = self
            .list("Namespace", &ListQuery::default())
            .await
            .ok()
            .filter(|all| all.len() >= names.len());
        let found: Vec<Option<Value>> = match &all {
            Some(all) => names
                .iter()
                .map(|name| {
                    all.iter()
                        .find(|n| n["metadata"]["name"] == name.as_str())
                        .cloned()
                })
                .collect(),
            None => stream::iter(0..names.len())
                .map(|index| self.get("Namespace", &names[index], None))
                .buffered(KINDS_IN_FLIGHT)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_>>()?,
        };
        let mut objects = Vec::new();
        for (name, object) in names.iter().zip(found) {
            objects.push(
                object.ok_or_else(|| {
                    self.error(format!("namespace `{name}` does not exist"), vec![])
                })?,
            );
        }
        Ok((objects, all.map(|a| a.len()).unwrap_or(0)))
    }

    /// Objects of one kind in the namespaces asked for: one list across the cluster filtered
    /// here when `wide` (falling back to one list per namespace when the cluster-wide list is
    /// forbidden), else one list per namespace.
    async fn list_in(
        &self,
        resource: &Resource,
        filter: &ExportFilter,
        asked: &BTreeSet<&str>,
        wide: bool,
    ) -> Result<Vec<Value>> {
        let everywhere = ListQuery {
            page_size: filter.page_size,
            ..Default::default()
        };
        if wide {
            match self.list_resource(resource, &everywhere).await {
                Ok(items) => {
                    return Ok(items
                        .into_iter()
                        .filter(|o| {
                            asked.contains(o["metadata"]["namespace"].as_str().unwrap_or_default())
                        })
                        .collect());
                }
                Err(crate::error::Error::Cluster { message, .. })
                    if message.contains("forbidden") => {}
                Err(error) => return Err(error),
            }
        }
        let per_namespace: Vec<Vec<Value>> = stream::iter(filter.namespaces.clone())
            .map(|namespace| {
                let query = ListQuery {
                    namespace: Some(namespace),
                    ..everywhere.clone()
                };
                async move { self.list_resource(resource, &query).await }
            })
            .buffered(KINDS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        Ok(per_namespace.into_iter().flatten().collect())
    }
}

/// Percent-encodes a query parameter value.
fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_objects_are_not_exported() {
        assert!(is_system_generated(
            &json!({"kind": "ServiceAccount", "metadata": {"name": "default"}})
        ));
        assert!(is_system_generated(
            &json!({"kind": "ConfigMap", "metadata": {"name": "istio-ca-root-cert"}})
        ));
        assert!(is_system_generated(
            &json!({"kind": "Secret", "type": "kubernetes.io/service-account-token", "metadata": {"name": "t"}})
        ));
        assert!(is_system_generated(
            &json!({"kind": "ReplicaSet", "metadata": {"name": "r", "ownerReferences": [{"kind": "Deployment"}]}})
        ));
        assert!(!is_system_generated(
            &json!({"kind": "ServiceAccount", "metadata": {"name": "bookinfo-reviews"}})
        ));
        assert!(is_system_generated(
            &json!({"kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"}})
        ));
        assert!(!is_system_generated(
            &json!({"kind": "Service", "metadata": {"name": "kubernetes", "namespace": "shop"}})
        ));
        assert!(is_system_generated(
            &json!({"kind": "ServiceEntry", "metadata": {"name": "target-cluster-http",
                    "labels": {"app.kubernetes.io/managed-by": "meshshift"}}})
        ));
        assert!(!is_system_generated(
            &json!({"kind": "ServiceAccount", "metadata": {"name": "default"},
                    "imagePullSecrets": [{"name": "registry"}], "secrets": [{"name": "default-token-x"}]})
        ));
        assert!(!is_system_generated(
            &json!({"kind": "ConfigMap", "metadata": {"name": "c", "ownerReferences": [{"kind": "Thing", "controller": false}]}})
        ));
    }

    #[test]
    fn selectors_are_encoded() {
        assert_eq!(
            encode("app=reviews,version in (v1,v2)"),
            "app%3Dreviews%2Cversion%20in%20%28v1%2Cv2%29"
        );
    }
}
