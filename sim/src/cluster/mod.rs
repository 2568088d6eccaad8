//! The state of one simulated cluster and the API verbs on it.
//!
//! Every verb runs to completion under one lock, so writes are atomic: an error at any step
//! leaves nothing stored. The HTTP layer translates requests into these calls and their
//! results back into responses. Reads and the shared types live here; `write` holds
//! create/update/patch/apply, `delete` the deletes, `scale` the `/scale` subresource and
//! `lifecycle` what a real cluster's controllers would do after each write.

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use super::admission::{AdmissionHook, ClusterView};
use super::crd;
use super::field_validation::FieldValidation;
use super::managed::WriteContext;
use super::object::{StoredObject, get_path, meta_str};
use super::registry::Registry;
use super::resource::ResourceType;
use super::selector::{FieldSelector, LabelSelector, selectable_fields};
use super::status::ApiError;
use super::store::{ObjectKey, Store};

mod delete;
mod lifecycle;
pub(crate) mod scale;
mod write;

/// The subresource a request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subresource {
    /// The object itself.
    None,
    /// `/status`.
    Status,
    /// `/scale`.
    Scale,
    /// `/finalize` (namespaces).
    Finalize,
}

impl Subresource {
    fn name(&self) -> &'static str {
        match self {
            Subresource::None => "",
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Finalize => "finalize",
        }
    }
}

/// What a request is about: a resource type at a version, and optionally a namespace, a
/// name and a subresource.
#[derive(Clone, Debug)]
pub struct Target {
    /// The resource type.
    pub rt: Arc<ResourceType>,
    /// The version in the path.
    pub version: String,
    /// Namespace in the path (empty: cluster-scoped, or all namespaces).
    pub namespace: String,
    /// Name in the path (empty for collections).
    pub name: String,
    /// Subresource in the path.
    pub subresource: Subresource,
}

impl Target {
    /// `apiVersion` for this request's version.
    pub fn api_version(&self) -> String {
        self.rt.api_version(&self.version)
    }
}

/// Options shared by writes.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// The client's User-Agent (the default field manager is its first word).
    pub user_agent: String,
    /// `force=true` for server-side apply.
    pub force: bool,
    /// `fieldValidation`: what to do about unknown fields.
    pub field_validation: FieldValidation,
}

impl WriteOptions {
    fn manager(&self) -> String {
        match &self.field_manager {
            Some(manager) if !manager.is_empty() => manager.clone(),
            _ => {
                let prefix = self.user_agent.split('/').next().unwrap_or("").trim();
                if prefix.is_empty() {
                    "unknown".into()
                } else {
                    prefix.chars().take(128).collect()
                }
            }
        }
    }
}

/// Options of a delete.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `Foreground`, `Background` or `Orphan`.
    pub propagation: Option<String>,
    /// Deprecated `orphanDependents`.
    pub orphan_dependents: Option<bool>,
    /// Only delete if the uid matches.
    pub precondition_uid: Option<String>,
    /// Only delete if the resource version matches.
    pub precondition_resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// Options of a list.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0: no limit).
    pub limit: usize,
    /// `continue` token from a previous page.
    pub continue_token: Option<String>,
}

/// A successful answer: HTTP code, JSON body and warnings for the client.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub code: u16,
    /// Response body.
    pub body: Value,
    /// Messages for `Warning` headers.
    pub warnings: Vec<String>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Reply::new(200, body)
    }

    fn new(code: u16, body: Value) -> Self {
        Reply {
            code,
            body,
            warnings: Vec::new(),
        }
    }

    fn warned(mut self, warnings: Vec<String>) -> Self {
        self.warnings.extend(warnings);
        self
    }
}

/// One page of a list.
#[derive(Debug)]
pub struct ListPage {
    /// The resource version the list was taken at.
    pub revision: u64,
    /// The matching objects.
    pub items: Vec<Arc<StoredObject>>,
    /// Token for the next page.
    pub continue_token: Option<String>,
    /// Objects left after this page (only without selectors, as the real server does).
    pub remaining: Option<usize>,
}

/// Work for the garbage collector.
#[derive(Clone, Debug)]
enum GcWork {
    /// An object marked for deletion: run its finalizers.
    Finalize { storage_key: String, key: ObjectKey },
    /// An object was removed: collect its dependents.
    OwnerGone { uid: String },
}

/// The whole state of one cluster.
pub struct ClusterState {
    name: String,
    /// Served types.
    pub registry: Registry,
    /// Objects.
    pub store: Store,
    hooks: Vec<Arc<dyn AdmissionHook>>,
    next_service_ip: u32,
    next_node_port: u16,
    gc_queue: VecDeque<GcWork>,
    /// The CA published in every namespace's `kube-root-ca.crt`.
    ca_pem: String,
}

/// Namespaces every cluster starts with.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Cluster-creation settings of [`ClusterState::new`].
pub struct Bootstrap<'a> {
    /// Cluster name.
    pub name: &'a str,
    /// Kept changes for watches.
    pub watch_window: usize,
    /// UID of `kube-system` (random when `None`).
    pub kube_system_uid: Option<String>,
    /// CA certificate published in `kube-root-ca.crt` ConfigMaps.
    pub ca_pem: &'a str,
    /// Admission hooks.
    pub hooks: Vec<Arc<dyn AdmissionHook>>,
}

const FIRST_SERVICE_IP: u32 = (10 << 24) | (96 << 16) | 1;
/// The `kubernetes` Service's address: the first of the service range, as kube-apiserver
/// reserves it.
const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

impl ClusterState {
    /// A cluster with the system namespaces, their default ServiceAccounts and
    /// `kube-root-ca.crt` ConfigMaps, and the `kubernetes` Service.
    pub fn new(bootstrap: Bootstrap<'_>) -> ClusterState {
        let mut state = ClusterState {
            name: bootstrap.name.to_string(),
            registry: Registry::new(),
            store: Store::new(bootstrap.watch_window),
            hooks: Vec::new(),
            next_service_ip: FIRST_SERVICE_IP,
            next_node_port: 30000,
            gc_queue: VecDeque::new(),
            ca_pem: bootstrap.ca_pem.to_string(),
        };
        let system = WriteOptions {
            field_manager: Some("kube-apiserver".into()),
            ..WriteOptions::default()
        };
        for ns in SYSTEM_NAMESPACES {
            let mut namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if *ns == "kube-system"
                && let Some(uid) = &bootstrap.kube_system_uid
            {
                namespace["metadata"]["uid"] = json!(uid);
            }
            let _ = state.create_internal("", "namespaces", namespace, &system);
        }
        // As kube-apiserver's kubernetesservice controller writes it
        // (pkg/controlplane/controller/kubernetesservice): the first address of the service
        // range, the secure port as target port, `SingleStack`, all set by the controller and
        // so owned by "kube-apiserver" (operation Update, v1).
        let kubernetes = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                     "clusterIP": KUBERNETES_SERVICE_IP, "ipFamilyPolicy": "SingleStack",
                     "sessionAffinity": "None", "type": "ClusterIP"}
        });
        let _ = state.create_internal("", "services", kubernetes, &system);
        state.next_service_ip = state.next_service_ip.max(FIRST_SERVICE_IP + 1);
        state.hooks = bootstrap.hooks;
        state
    }

    /// Publishes the `kube-root-ca.crt` ConfigMap in `namespace`, as kube-controller-manager's
    /// root-ca-cert-publisher does for every namespace (field manager
    /// "kube-controller-manager", operation Update).
    pub(super) fn publish_root_ca(&mut self, namespace: &str) {
        let root_ca = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": namespace,
                         "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
            "data": {"ca.crt": self.ca_pem}
        });
        let controller = WriteOptions {
            field_manager: Some("kube-controller-manager".into()),
            ..WriteOptions::default()
        };
        let _ = self.create_internal("", "configmaps", root_ca, &controller);
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every stored object with its storage key (for snapshots).
    pub fn all_objects(&self) -> Vec<(String, Value)> {
        let mut objects = Vec::new();
        let mut keys = self.store.storage_keys();
        keys.sort();
        for key in keys {
            let Some(rt) = self.registry.by_storage_key(&key) else {
                continue;
            };
            for stored in self.store.list(&key, None, None) {
                objects.push((
                    key.clone(),
                    Self::value_of(&rt, &stored, rt.preferred_version()),
                ));
            }
        }
        objects
    }

    /// Replaces all objects (restoring a snapshot): CRDs are registered first, the
    /// resource-version counter continues from `revision`, and `kube-root-ca.crt` ConfigMaps
    /// get the current CA.
    pub fn replace_objects(&mut self, objects: Vec<(String, Value)>, revision: u64, ca_pem: &str) {
        self.ca_pem = ca_pem.to_string();
        let window = self.store.history_limit();
        self.store = Store::new(window);
        self.registry = Registry::new();
        let crd_key = "customresourcedefinitions.apiextensions.k8s.io";
        for (key, object) in objects.iter().filter(|(key, _)| key == crd_key) {
            self.store.restore(key, object, &[]);
            if let Some(resource) = crd::resource_type(object) {
                self.registry
                    .set_crd_type(meta_str(object, "name"), Some(resource));
            }
        }
        let mut highest_ip = FIRST_SERVICE_IP;
        for (key, object) in objects.iter().filter(|(key, _)| key != crd_key) {
            let Some(rt) = self.registry.by_storage_key(key) else {
                continue;
            };
            let mut object = object.clone();
            if key == "configmaps"
                && meta_str(&object, "name") == "kube-root-ca.crt"
                && let Some(data) = object.get_mut("data").and_then(Value::as_object_mut)
            {
                data.insert("ca.crt".into(), json!(ca_pem));
            }
            if key == "services"
                && let Some(ip) = get_path(&object, "spec.clusterIP").and_then(Value::as_str)
                && let Ok(parsed) = ip.parse::<std::net::Ipv4Addr>()
            {
                highest_ip = highest_ip.max(u32::from(parsed));
            }
            self.store.restore(key, &object, Self::selectable(&rt));
        }
        self.next_service_ip = highest_ip + 1;
        self.store.set_revision(revision.max(self.store.revision()));
    }

    /// Creates an object as the server itself would (bypassing the wire format checks).
    pub fn create_internal(
        &mut self,
        group: &str,
        plural: &str,
        object: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let rt = self
            .registry
            .types()
            .iter()
            .find(|t| t.group == group && t.plural == plural)
            .cloned()
            .ok_or_else(ApiError::unknown_resource)?;
        let target = Target {
            version: rt.preferred_version().to_string(),
            namespace: meta_str(&object, "namespace").to_string(),
            name: String::new(),
            subresource: Subresource::None,
            rt,
        };
        self.create(&target, object, options)
            .map(|reply| reply.body)
    }

    fn selectable(rt: &ResourceType) -> &'static [&'static str] {
        selectable_fields(&rt.group, &rt.kind).0
    }

    fn value_of(rt: &ResourceType, stored: &StoredObject, version: &str) -> Value {
        stored.to_value(&rt.api_version(version), &rt.kind)
    }

    fn zero_object(rt: &ResourceType) -> Value {
        rt.zero.clone()
    }

    fn key_of(target: &Target, name: &str) -> ObjectKey {
        let namespace = if target.rt.namespaced {
            target.namespace.as_str()
        } else {
            ""
        };
        ObjectKey::new(namespace, name)
    }

    fn write_context<'a>(
        rt: &'a ResourceType,
        api_version: &'a str,
        subresource: &'a Subresource,
        object: &Value,
        now: &'a str,
    ) -> WriteContext<'a> {
        let ignored = match subresource {
            Subresource::Status => object
                .as_object()
                .map(|m| {
                    m.keys()
                        .filter(|k| {
                            !matches!(k.as_str(), "status" | "metadata" | "apiVersion" | "kind")
                        })
                        .map(|k| vec![super::fieldset::PathElement::Field(k.clone())])
                        .collect()
                })
                .unwrap_or_default(),
            _ if rt.status_subresource => {
                vec![vec![super::fieldset::PathElement::Field("status".into())]]
            }
            _ => Vec::new(),
        };
        WriteContext {
            shape: &rt.shape,
            api_version,
            subresource: subresource.name(),
            ignored,
            now,
        }
    }

    /// One object.
    pub fn get(&self, target: &Target) -> Result<Value, ApiError> {
        let stored = self.get_stored(target)?;
        match target.subresource {
            Subresource::Scale => Ok(self.scale_of(target, &stored)),
            _ => Ok(Self::value_of(&target.rt, &stored, &target.version)),
        }
    }

    /// One stored object, without decoding it.
    pub fn get_stored(&self, target: &Target) -> Result<Arc<StoredObject>, ApiError> {
        self.store
            .get(
                &target.rt.storage_key(),
                &Self::key_of(target, &target.name),
            )
            .ok_or_else(|| ApiError::object_not_found(&target.rt, &target.name))
    }

    /// A page of objects matching the options.
    pub fn list(&self, target: &Target, options: &ListOptions) -> Result<ListPage, ApiError> {
        let namespace = (!target.namespace.is_empty() && target.rt.namespaced)
            .then_some(target.namespace.as_str());
        let after = match &options.continue_token {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let revision = self.store.revision();
        let candidates = self
            .store
            .list(&target.rt.storage_key(), namespace, after.as_ref());
        let filtered = options.labels.is_empty() && options.fields.is_empty();
        let mut items = Vec::new();
        let mut remaining = 0usize;
        let mut last_key = None;
        let mut more = false;
        for object in candidates {
            if !object_matches(&object, &options.labels, &options.fields) {
                continue;
            }
            if options.limit > 0 && items.len() >= options.limit {
                more = true;
                remaining += 1;
                if !filtered {
                    break;
                }
                continue;
            }
            last_key = Some(ObjectKey::new(&object.index.namespace, &object.index.name));
            items.push(object);
        }
        let continue_token = match (more, last_key) {
            (true, Some(key)) => Some(encode_continue(revision, &key)),
            _ => None,
        };
        Ok(ListPage {
            revision,
            items,
            remaining: (continue_token.is_some() && filtered).then_some(remaining),
            continue_token,
        })
    }
}

/// Whether a stored object passes label and field selectors (lists and watches).
pub fn object_matches(
    object: &StoredObject,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> bool {
    let index = &object.index;
    labels.matches(&index.labels)
        && fields.matches(|field| match field {
            "metadata.name" => index.name.clone(),
            "metadata.namespace" => index.namespace.clone(),
            other => index
                .fields
                .iter()
                .find(|(name, _)| name == other)
                .map(|(_, value)| value.clone())
                .unwrap_or_default(),
        })
}

fn encode_continue(revision: u64, after: &ObjectKey) -> String {
    let token = json!({
        "v": "meta.k8s.io/v1",
        "rv": revision,
        "start": format!("{}/{}", after.namespace, after.name),
    });
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<ObjectKey, ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(&e.to_string()))?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("missing start key"))?;
    let (namespace, name) = start
        .split_once('/')
        .ok_or_else(|| invalid("malformed start key"))?;
    Ok(ObjectKey::new(namespace, name))
}

impl ClusterView for ClusterState {
    fn cluster_name(&self) -> &str {
        &self.name
    }

    fn get(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let rt = self
            .registry
            .types()
            .iter()
            .find(|t| t.group == group && t.plural == plural)?
            .clone();
        let stored = self
            .store
            .get(&rt.storage_key(), &ObjectKey::new(namespace, name))?;
        Some(Self::value_of(&rt, &stored, rt.preferred_version()))
    }

    fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(rt) = self
            .registry
            .types()
            .iter()
            .find(|t| t.group == group && t.plural == plural)
            .cloned()
        else {
            return Vec::new();
        };
        self.store
            .list(&rt.storage_key(), namespace, None)
            .iter()
            .map(|stored| Self::value_of(&rt, stored, rt.preferred_version()))
            .collect()
    }
}
