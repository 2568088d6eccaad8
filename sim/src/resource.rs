//! Resource types: what the server serves, under which names.

use std::collections::BTreeMap;

use super::schema::Shape;

/// A served resource (one group/plural; possibly several versions of it).
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// API group, empty for the core group.
    pub group: String,
    /// Served versions, the preferred (storage) version first.
    pub versions: Vec<String>,
    /// `Kind` of one object.
    pub kind: String,
    /// `Kind` of a list (`PodList`).
    pub list_kind: String,
    /// Plural resource name used in paths.
    pub plural: String,
    /// Singular name (`pod`).
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`po`, `deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Whether a `/status` subresource exists (main writes then ignore status).
    pub status_subresource: bool,
    /// The `/scale` subresource, when served.
    pub scale: Option<ScalePaths>,
    /// Whether `metadata.generation` is maintained.
    pub has_generation: bool,
    /// Whether deletes answer with the object rather than a Status.
    pub returns_deleted_object: bool,
    /// The typed zero value of the kind (struct fields that are always serialized, such as
    /// `spec` and `status`): the "before" of a create, as field ownership sees it.
    pub zero: serde_json::Value,
    /// Merge semantics of the fields.
    pub shape: Shape,
    /// Where the type comes from.
    pub origin: Origin,
    /// Extra `kubectl get` columns per version (custom resources).
    pub printer_columns: BTreeMap<String, Vec<PrinterColumn>>,
    /// OpenAPI schema per version (custom resources).
    pub schemas: BTreeMap<String, std::sync::Arc<serde_json::Value>>,
}

/// Where a resource type comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// Compiled into the server.
    Builtin,
    /// Defined by the named CustomResourceDefinition.
    Crd(String),
}

/// JSON paths of the `/scale` subresource.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalePaths {
    /// Path of the desired replicas (`.spec.replicas`).
    pub spec_replicas: String,
    /// Path of the observed replicas (`.status.replicas`).
    pub status_replicas: String,
    /// Path of the label selector string, if any.
    pub label_selector: Option<String>,
}

/// One `additionalPrinterColumns` entry of a CRD version.
#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `date`, ...).
    pub type_name: String,
    /// Simple JSON path (`.spec.replicas`).
    pub json_path: String,
    /// Description shown by `kubectl explain`-like tools.
    pub description: String,
    /// 0 shows by default, higher only with `-o wide`.
    pub priority: i64,
}

impl ResourceType {
    /// `pods` or `deployments.apps`.
    pub fn qualified(&self) -> String {
        super::status::qualified_resource(&self.group, &self.plural)
    }

    /// `v1` or `apps/v1` for the given version.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The storage version.
    pub fn preferred_version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }

    /// Whether `version` is served.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    /// Storage key shared by all versions: `pods`, `deployments.apps`.
    pub fn storage_key(&self) -> String {
        self.qualified()
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        matches!(self.origin, Origin::Crd(_))
    }
}

/// The standard verbs of a resource.
pub const RESOURCE_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
    zero_fields: &'static [&'static str],
}

const NS: bool = true;
const CLUSTER: bool = false;

#[rustfmt::skip]
const BUILTINS: &[Builtin] = &[
    Builtin { group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: CLUSTER, short_names: &["ns"], categories: &[], status: true, scale: false, generation: false, zero_fields: &["spec", "status"] },
    Builtin { group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: NS, short_names: &["po"], categories: &["all"], status: true, scale: false, generation: false, zero_fields: &["spec", "status"] },
    Builtin { group: "", version: "v1", kind: "Service", plural: "services", namespaced: NS, short_names: &["svc"], categories: &["all"], status: true, scale: false, generation: false, zero_fields: &["spec", "status"] },
    Builtin { group: "", version: "v1", kind: "Endpoints", plural: "endpoints", namespaced: NS, short_names: &["ep"], categories: &[], status: false, scale: false, generation: false, zero_fields: &[] },
    Builtin { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: NS, short_names: &["cm"], categories: &[], status: false, scale: false, generation: false, zero_fields: &[] },
    Builtin { group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: NS, short_names: &[], categories: &[], status: false, scale: false, generation: false, zero_fields: &[] },
    Builtin { group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: NS, short_names: &["sa"], categories: &[], status: false, scale: false, generation: false, zero_fields: &[] },
    Builtin { group: "", version: "v1", kind: "Node", plural: "nodes", namespaced: CLUSTER, short_names: &["no"], categories: &[], status: true, scale: false, generation: false, zero_fields: &["spec", "status"] },
    Builtin { group: "", version: "v1", kind: "Event", plural: "events", namespaced: NS, short_names: &["ev"], categories: &[], status: false, scale: false, generation: false, zero_fields: &["involvedObject", "source"] },
    Builtin { group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: NS, short_names: &["deploy"], categories: &["all"], status: true, scale: true, generation: true, zero_fields: &["spec", "status"] },
    Builtin { group: "apps", version: "v1", kind: "ReplicaSet", plural: "replicasets", namespaced: NS, short_names: &["rs"], categories: &["all"], status: true, scale: true, generation: true, zero_fields: &["spec", "status"] },
    Builtin { group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: NS, short_names: &["sts"], categories: &["all"], status: true, scale: true, generation: true, zero_fields: &["spec", "status"] },
    Builtin { group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets", namespaced: NS, short_names: &["ds"], categories: &["all"], status: true, scale: false, generation: true, zero_fields: &["spec", "status"] },
    Builtin { group: "batch", version: "v1", kind: "Job", plural: "jobs", namespaced: NS, short_names: &[], categories: &["all"], status: true, scale: false, generation: true, zero_fields: &["spec", "status"] },
    Builtin { group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions", namespaced: CLUSTER, short_names: &["crd", "crds"], categories: &["api-extensions"], status: true, scale: false, generation: true, zero_fields: &["spec", "status"] },
    Builtin { group: "admissionregistration.k8s.io", version: "v1", kind: "MutatingWebhookConfiguration", plural: "mutatingwebhookconfigurations", namespaced: CLUSTER, short_names: &[], categories: &["api-extensions"], status: false, scale: false, generation: true, zero_fields: &[] },
    Builtin { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingWebhookConfiguration", plural: "validatingwebhookconfigurations", namespaced: CLUSTER, short_names: &[], categories: &["api-extensions"], status: false, scale: false, generation: true, zero_fields: &[] },
    Builtin { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: NS, short_names: &[], categories: &[], status: false, scale: false, generation: false, zero_fields: &["spec"] },
    Builtin { group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles", namespaced: NS, short_names: &[], categories: &[], status: false, scale: false, generation: false, zero_fields: &[] },
    Builtin { group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings", namespaced: NS, short_names: &[], categories: &[], status: false, scale: false, generation: false, zero_fields: &["roleRef"] },
    Builtin { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles", namespaced: CLUSTER, short_names: &[], categories: &[], status: false, scale: false, generation: false, zero_fields: &[] },
    Builtin { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings", namespaced: CLUSTER, short_names: &[], categories: &[], status: false, scale: false, generation: false, zero_fields: &["roleRef"] },
    Builtin { group: "", version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims", namespaced: NS, short_names: &["pvc"], categories: &[], status: true, scale: false, generation: false, zero_fields: &["spec", "status"] },
    Builtin { group: "", version: "v1", kind: "PersistentVolume", plural: "persistentvolumes", namespaced: CLUSTER, short_names: &["pv"], categories: &[], status: true, scale: false, generation: false, zero_fields: &["spec", "status"] },
    Builtin { group: "", version: "v1", kind: "ResourceQuota", plural: "resourcequotas", namespaced: NS, short_names: &["quota"], categories: &[], status: true, scale: false, generation: false, zero_fields: &["spec", "status"] },
    Builtin { group: "", version: "v1", kind: "LimitRange", plural: "limitranges", namespaced: NS, short_names: &["limits"], categories: &[], status: false, scale: false, generation: false, zero_fields: &["spec"] },
    Builtin { group: "batch", version: "v1", kind: "CronJob", plural: "cronjobs", namespaced: NS, short_names: &["cj"], categories: &["all"], status: true, scale: false, generation: true, zero_fields: &["spec", "status"] },
    Builtin { group: "autoscaling", version: "v2", kind: "HorizontalPodAutoscaler", plural: "horizontalpodautoscalers", namespaced: NS, short_names: &["hpa"], categories: &["all"], status: true, scale: false, generation: false, zero_fields: &["spec", "status"] },
    Builtin { group: "policy", version: "v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets", namespaced: NS, short_names: &["pdb"], categories: &[], status: true, scale: false, generation: true, zero_fields: &["spec", "status"] },
    Builtin { group: "networking.k8s.io", version: "v1", kind: "Ingress", plural: "ingresses", namespaced: NS, short_names: &["ing"], categories: &[], status: true, scale: false, generation: true, zero_fields: &["spec", "status"] },
    Builtin { group: "networking.k8s.io", version: "v1", kind: "IngressClass", plural: "ingressclasses", namespaced: CLUSTER, short_names: &[], categories: &[], status: false, scale: false, generation: true, zero_fields: &["spec"] },
    Builtin { group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", plural: "networkpolicies", namespaced: NS, short_names: &["netpol"], categories: &[], status: false, scale: false, generation: true, zero_fields: &["spec"] },
    Builtin { group: "discovery.k8s.io", version: "v1", kind: "EndpointSlice", plural: "endpointslices", namespaced: NS, short_names: &[], categories: &[], status: false, scale: false, generation: false, zero_fields: &[] },
    Builtin { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingAdmissionPolicy", plural: "validatingadmissionpolicies", namespaced: CLUSTER, short_names: &[], categories: &["api-extensions"], status: true, scale: false, generation: true, zero_fields: &["spec", "status"] },
    Builtin { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingAdmissionPolicyBinding", plural: "validatingadmissionpolicybindings", namespaced: CLUSTER, short_names: &[], categories: &["api-extensions"], status: false, scale: false, generation: true, zero_fields: &["spec"] },
];

/// The typed zero value of a built-in kind: its always-serialized struct fields.
fn zero_value(kind: &str, top_level: &[&str]) -> serde_json::Value {
    use serde_json::json;
    let mut zero = json!({"metadata": {}});
    for field in top_level {
        zero[*field] = json!({});
    }
    // `containers` has no omitempty: a zero PodSpec carries it as null.
    let template = json!({"metadata": {}, "spec": {"containers": null}});
    match kind {
        "Pod" => zero["spec"] = json!({"containers": null}),
        "Deployment" => zero["spec"] = json!({"template": template, "strategy": {}}),
        "StatefulSet" | "DaemonSet" => {
            zero["spec"] = json!({"template": template, "updateStrategy": {}})
        }
        "ReplicaSet" | "Job" => zero["spec"] = json!({"template": template}),
        "CronJob" => {
            zero["spec"] = json!({"jobTemplate": {"metadata": {}, "spec": {"template": template}}})
        }
        "Service" | "Ingress" => zero["status"] = json!({"loadBalancer": {}}),
        "CustomResourceDefinition" => {
            zero["spec"] = json!({"names": {}});
            zero["status"] = json!({"acceptedNames": {}});
        }
        _ => {}
    }
    zero
}

/// The built-in resource types, in discovery order.
pub fn builtin_types() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(|b| ResourceType {
            group: b.group.to_string(),
            versions: vec![b.version.to_string()],
            kind: b.kind.to_string(),
            list_kind: format!("{}List", b.kind),
            plural: b.plural.to_string(),
            singular: b.kind.to_lowercase(),
            namespaced: b.namespaced,
            short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
            categories: b.categories.iter().map(|s| s.to_string()).collect(),
            status_subresource: b.status,
            scale: b.scale.then(|| ScalePaths {
                spec_replicas: ".spec.replicas".into(),
                status_replicas: ".status.replicas".into(),
                label_selector: Some(".spec.selector".into()),
            }),
            has_generation: b.generation,
            returns_deleted_object: matches!(
                b.kind,
                "Pod" | "Namespace" | "Service" | "CustomResourceDefinition"
            ),
            zero: zero_value(b.kind, b.zero_fields),
            shape: super::schema::builtin(b.kind),
            origin: Origin::Builtin,
            printer_columns: BTreeMap::new(),
            schemas: BTreeMap::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_have_unique_storage_keys() {
        let types = builtin_types();
        let mut keys: Vec<String> = types.iter().map(ResourceType::storage_key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), types.len());
        let deploy = types
            .iter()
            .find(|t| t.kind == "Deployment")
            .map(|t| t.qualified());
        assert_eq!(deploy.as_deref(), Some("deployments.apps"));
    }
}
