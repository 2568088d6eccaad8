//! The state of one simulated cluster and the API verbs on it.
//!
//! Every verb runs to completion under one lock, so writes are atomic: an error at any step
//! leaves nothing stored. The HTTP layer translates requests into these calls and their
//! results back into responses.

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::admission::{AdmissionHook, AdmissionOperation, AdmissionRequest, ClusterView};
use super::crd;
use super::defaults;
use super::field_validation::{self, FieldValidation};
use super::managed::{self, WriteContext};
use super::object::{
    StoredObject, get_path, meta_mut, meta_str, new_uid, now_timestamp, random_suffix, set_path,
};
use super::patch::{self, PatchType, strategic};
use super::registry::Registry;
use super::resource::ResourceType;
use super::selector::{FieldSelector, LabelSelector, selectable_fields};
use super::status::{ApiError, Cause, success_status};
use super::store::{ObjectKey, Store};
use super::validation;

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
        for ns in SYSTEM_NAMESPACES {
            let root_ca = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                             "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                "data": {"ca.crt": bootstrap.ca_pem}
            });
            let _ = state.create_internal("", "configmaps", root_ca, &system);
        }
        let kubernetes = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}
        });
        let _ = state.create_internal("", "services", kubernetes, &system);
        state.hooks = bootstrap.hooks;
        state
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OpenAPI schema a CRD declares for one version of its custom resource.
    pub fn crd_schema(&self, rt: &ResourceType, version: &str) -> Option<Value> {
        let super::resource::Origin::Crd(crd_name) = &rt.origin else {
            return None;
        };
        let stored = self.store.get(
            "customresourcedefinitions.apiextensions.k8s.io",
            &ObjectKey::new("", crd_name),
        )?;
        let crd = stored.to_value("apiextensions.k8s.io/v1", "CustomResourceDefinition");
        crd.get("spec")?
            .get("versions")?
            .as_array()?
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(version))?
            .get("schema")?
            .get("openAPIV3Schema")
            .cloned()
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

    // ----- reads -----

    /// One object.
    pub fn get(&self, target: &Target) -> Result<Value, ApiError> {
        let stored = self
            .store
            .get(
                &target.rt.storage_key(),
                &Self::key_of(target, &target.name),
            )
            .ok_or_else(|| ApiError::object_not_found(&target.rt, &target.name))?;
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
            if !matches(&object, options) {
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

    // ----- writes -----

    fn check_type_meta(target: &Target, object: &Value) -> Result<(), ApiError> {
        let rt = &target.rt;
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let body_version = if api_version.is_empty() {
            target.version.clone()
        } else {
            api_version.rsplit('/').next().unwrap_or("").to_string()
        };
        if !kind.is_empty() && kind != rt.kind {
            return Err(ApiError::bad_request(format!(
                "{kind} in version {body_version:?} cannot be handled as a {}: the kind of the provided object does not match the kind served at this path",
                rt.kind
            )));
        }
        if !api_version.is_empty() {
            let (group, version) = match api_version.rsplit_once('/') {
                Some((group, version)) => (group, version),
                None => ("", api_version),
            };
            if group != rt.group || !rt.serves(version) {
                let kind = if kind.is_empty() {
                    rt.kind.as_str()
                } else {
                    kind
                };
                return Err(ApiError::bad_request(format!(
                    "{kind} in version {body_version:?} cannot be handled as a {}: no kind {kind:?} is registered for version {api_version:?}",
                    rt.kind
                )));
            }
        }
        Ok(())
    }

    /// Applies `fieldValidation` to a client's object: refuses unknown fields (`Strict`) or
    /// drops them, returning the warnings to send (`Warn`).
    fn check_fields(
        target: &Target,
        object: &mut Value,
        validation: FieldValidation,
        in_apply: bool,
    ) -> Result<Vec<String>, ApiError> {
        let rt = &target.rt;
        let schema = rt.schemas.get(&target.version).cloned();
        let cannot_handle = |detail: String| {
            ApiError::bad_request(format!(
                "{kind} in version {version:?} cannot be handled as a {kind}: {detail}",
                kind = rt.kind,
                version = target.version
            ))
        };
        let unknown = field_validation::unknown_fields(rt, object, schema.as_deref())
            .map_err(cannot_handle)?;
        if unknown.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = unknown
            .iter()
            .map(|l| field_validation::display(l))
            .collect();
        if validation == FieldValidation::Strict {
            if in_apply {
                return Err(ApiError::bad_request(format!(
                    "failed to create typed patch object ({}, Kind={}) {}: {}",
                    target.api_version(),
                    rt.kind,
                    target.name,
                    names
                        .iter()
                        .map(|n| format!(".{n}: field not declared in schema"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            return Err(cannot_handle(format!(
                "strict decoding error: {}",
                names
                    .iter()
                    .map(|n| format!("unknown field {n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        field_validation::prune(object, &unknown);
        Ok(match validation {
            FieldValidation::Warn => names
                .iter()
                .map(|n| format!("unknown field {n:?}"))
                .collect(),
            _ => Vec::new(),
        })
    }

    fn check_namespace_field(target: &Target, object: &mut Value) -> Result<(), ApiError> {
        let rt = &target.rt;
        let body_namespace = meta_str(object, "namespace").to_string();
        if rt.namespaced {
            if target.namespace.is_empty() {
                return Err(ApiError::bad_request(
                    "the namespace of the object must be set in the request path",
                ));
            }
            if !body_namespace.is_empty() && body_namespace != target.namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta_mut(object).insert("namespace".into(), json!(target.namespace));
        } else {
            meta_mut(object).remove("namespace");
        }
        Ok(())
    }

    fn check_namespace_exists(
        &self,
        target: &Target,
        name: &str,
        creating: bool,
    ) -> Result<(), ApiError> {
        if !target.rt.namespaced {
            return Ok(());
        }
        let namespace = self
            .store
            .get("namespaces", &ObjectKey::new("", &target.namespace))
            .ok_or_else(|| ApiError::namespace_not_found(&target.namespace))?;
        if creating && namespace.index.deletion_timestamp.is_some() {
            return Err(ApiError::forbidden(
                &target.rt,
                name,
                &format!(
                    "unable to create new content in namespace {} because it is being terminated",
                    target.namespace
                ),
            ));
        }
        Ok(())
    }

    fn check_crd_active(&self, target: &Target) -> Result<(), ApiError> {
        if let super::resource::Origin::Crd(crd_name) = &target.rt.origin {
            let crd = self.store.get(
                "customresourcedefinitions.apiextensions.k8s.io",
                &ObjectKey::new("", crd_name),
            );
            if crd.is_some_and(|c| c.index.deletion_timestamp.is_some()) {
                return Err(ApiError::new(
                    405,
                    "MethodNotAllowed",
                    "create not allowed while custom resource definition is terminating",
                ));
            }
        }
        Ok(())
    }

    fn admit(
        &self,
        target: &Target,
        operation: AdmissionOperation,
        old: Option<&Value>,
        object: &mut Value,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        if self.hooks.is_empty() {
            return Ok(());
        }
        let namespace = meta_str(object, "namespace").to_string();
        let name = meta_str(object, "name").to_string();
        let hooks = self.hooks.clone();
        for hook in hooks {
            let request = AdmissionRequest {
                operation,
                group: &target.rt.group,
                version: &target.version,
                kind: &target.rt.kind,
                resource: &target.rt.plural,
                subresource: target.subresource.name(),
                namespace: &namespace,
                name: &name,
                old_object: old,
                dry_run,
                cluster: self,
            };
            hook.admit(&request, object)?;
        }
        defaults::apply(&target.rt, object);
        defaults::prepare(&target.rt, object);
        Ok(())
    }

    fn allocate_service_addresses(&mut self, object: &mut Value, old: Option<&Value>) {
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let old_spec = old.and_then(|o| o.get("spec"));
        for field in ["clusterIP", "clusterIPs"] {
            if spec.get(field).is_none()
                && let Some(previous) = old_spec.and_then(|s| s.get(field))
            {
                spec.insert(field.into(), previous.clone());
            }
        }
        let service_type = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if service_type != "ExternalName" {
            let ip = match spec.get("clusterIP").and_then(Value::as_str) {
                Some(ip) if !ip.is_empty() => ip.to_string(),
                _ => {
                    let n = self.next_service_ip;
                    self.next_service_ip += 1;
                    let ip = format!(
                        "{}.{}.{}.{}",
                        n >> 24,
                        (n >> 16) & 255,
                        (n >> 8) & 255,
                        n & 255
                    );
                    spec.insert("clusterIP".into(), json!(ip));
                    ip
                }
            };
            if spec.get("clusterIPs").is_none() {
                spec.insert("clusterIPs".into(), json!([ip]));
            }
        }
        if service_type == "NodePort" || service_type == "LoadBalancer" {
            let old_ports = old_spec
                .and_then(|s| s.get("ports"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                    if port.get("nodePort").is_some() {
                        continue;
                    }
                    let previous = old_ports
                        .iter()
                        .find(|p| p.get("port") == port.get("port"))
                        .and_then(|p| p.get("nodePort"))
                        .cloned();
                    let node_port = previous.unwrap_or_else(|| {
                        let n = self.next_node_port;
                        self.next_node_port = if n >= 32767 { 30000 } else { n + 1 };
                        json!(n)
                    });
                    port.insert("nodePort".into(), node_port);
                }
            }
        }
    }

    /// POST: creates an object.
    pub fn create(
        &mut self,
        target: &Target,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): expected a JSON object",
                target.rt.kind
            )));
        }
        Self::check_type_meta(target, &body)?;
        let mut object = body;
        let warnings = Self::check_fields(target, &mut object, options.field_validation, false)?;
        Self::check_namespace_field(target, &mut object)?;
        let now = now_timestamp();
        let zero = Self::zero_object(&target.rt);
        let manager = options.manager();
        let api_version = target.api_version();
        // Defaults are applied when the body is decoded, so their fields belong to the
        // writer, as on the real server.
        defaults::apply(&target.rt, &mut object);
        let context =
            Self::write_context(&target.rt, &api_version, &target.subresource, &object, &now);
        managed::record_update(None, &zero, &mut object, &context, &manager)?;
        self.create_prepared(target, object, options, &now)
            .map(|reply| reply.warned(warnings))
    }

    /// The common tail of POST and of server-side apply creating an object: managed fields
    /// are already recorded in `object`.
    fn create_prepared(
        &mut self,
        target: &Target,
        mut object: Value,
        options: &WriteOptions,
        now: &str,
    ) -> Result<Reply, ApiError> {
        let rt = target.rt.clone();
        self.check_crd_active(target)?;
        let generate_name = meta_str(&object, "generateName").to_string();
        let mut name = meta_str(&object, "name").to_string();
        if name.is_empty() && !generate_name.is_empty() {
            let storage_key = rt.storage_key();
            for _ in 0..16 {
                let candidate = format!("{generate_name}{}", random_suffix());
                if self
                    .store
                    .get(&storage_key, &Self::key_of(target, &candidate))
                    .is_none()
                {
                    name = candidate;
                    break;
                }
            }
            meta_mut(&mut object).insert("name".into(), json!(name));
        }
        self.check_namespace_exists(target, &name, true)?;
        if !meta_str(&object, "resourceVersion").is_empty() {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        {
            let meta = meta_mut(&mut object);
            if meta
                .get("uid")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                meta.insert("uid".into(), json!(new_uid()));
            }
            meta.insert("creationTimestamp".into(), json!(now));
            meta.remove("deletionTimestamp");
            meta.remove("deletionGracePeriodSeconds");
            meta.remove("selfLink");
            if rt.has_generation {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        if rt.status_subresource
            && !(rt.group.is_empty() && rt.kind == "Node")
            && let Some(map) = object.as_object_mut()
        {
            map.shift_remove("status");
        }
        defaults::apply(&rt, &mut object);
        defaults::prepare(&rt, &mut object);
        if rt.group.is_empty() && rt.kind == "Service" {
            self.allocate_service_addresses(&mut object, None);
        }
        self.admit(
            target,
            AdmissionOperation::Create,
            None,
            &mut object,
            options.dry_run,
        )?;
        let causes = validation::validate(&rt, &object, None);
        if !causes.is_empty() {
            return Err(ApiError::invalid_object(&rt, &name, causes));
        }
        if self
            .store
            .get(&rt.storage_key(), &Self::key_of(target, &name))
            .is_some()
        {
            return Err(ApiError::already_exists(&rt, &name));
        }
        let object = order_fields(object);
        if options.dry_run {
            return Ok(Reply::new(201, object));
        }
        let stored = self.put(&rt, object);
        Ok(Reply::new(
            201,
            Self::value_of(&rt, &stored, &target.version),
        ))
    }

    /// PUT: replaces an object (or its status, or its scale).
    pub fn update(
        &mut self,
        target: &Target,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        if target.subresource == Subresource::Scale {
            return self.update_scale(target, body, options, None);
        }
        if !body.is_object() {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): expected a JSON object",
                target.rt.kind
            )));
        }
        Self::check_type_meta(target, &body)?;
        let mut body = body;
        let warnings = Self::check_fields(target, &mut body, options.field_validation, false)?;
        let stored = self.get_stored(target)?;
        let old = Self::value_of(&target.rt, &stored, &target.version);
        self.write_existing(target, &old, body, options, false)
            .map(|reply| reply.warned(warnings))
    }

    /// PATCH in any of the four formats.
    pub fn patch(
        &mut self,
        target: &Target,
        patch_type: PatchType,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        if target.subresource == Subresource::Scale {
            return self.patch_scale(target, patch_type, body, options);
        }
        let rt = target.rt.clone();
        if patch_type == PatchType::Apply {
            return self.apply(target, body, options);
        }
        if patch_type == PatchType::Strategic && rt.is_custom() {
            return Err(ApiError::unsupported_media_type(&[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ]));
        }
        let stored = self.get_stored(target)?;
        let old = Self::value_of(&rt, &stored, &target.version);
        let patched = match patch_type {
            PatchType::Json => patch::apply_json_patch(&old, body)?,
            PatchType::Merge => patch::apply_merge_patch(&old, body)?,
            PatchType::Strategic => {
                let patch_value: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                strategic::apply(&old, &patch_value, &rt.shape)
                    .map_err(|_| ApiError::unprocessable())?
            }
            PatchType::Apply => unreachable!("handled above"),
        };
        let mut patched = patched;
        let warnings = Self::check_fields(target, &mut patched, options.field_validation, false)?;
        self.write_existing(target, &old, patched, options, false)
            .map(|reply| reply.warned(warnings))
    }

    fn apply(
        &mut self,
        target: &Target,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        let rt = target.rt.clone();
        let manager = match &options.field_manager {
            Some(m) if !m.is_empty() => m.clone(),
            _ => {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    vec![Cause::required(
                        "fieldManager",
                        "is required for apply patch",
                    )],
                ));
            }
        };
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        let config: Value = serde_yaml::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "error decoding YAML: the applied configuration must be an object",
            ));
        }
        let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = config
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if kind.is_empty() || api_version.is_empty() {
            return Err(ApiError::bad_request(
                "invalid object type: apply patches must specify apiVersion and kind",
            ));
        }
        Self::check_type_meta(target, &config)?;
        let mut config = config;
        let warnings = Self::check_fields(target, &mut config, options.field_validation, true)?;
        let config_name = meta_str(&config, "name").to_string();
        if !config_name.is_empty() && config_name != target.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({config_name}) does not match the name on the URL ({})",
                target.name
            )));
        }
        meta_mut(&mut config).insert("name".into(), json!(target.name));
        if target.rt.namespaced {
            Self::check_namespace_field(target, &mut config)?;
        } else {
            meta_mut(&mut config).remove("namespace");
        }
        let now = now_timestamp();
        let api_version = target.api_version();
        let existing = self
            .store
            .get(&rt.storage_key(), &Self::key_of(target, &target.name));
        match existing {
            None => {
                if target.subresource != Subresource::None {
                    return Err(ApiError::object_not_found(&rt, &target.name));
                }
                let zero = Self::zero_object(&rt);
                let context =
                    Self::write_context(&rt, &api_version, &target.subresource, &config, &now);
                let mut merged = managed::apply(&zero, &config, &context, &manager, options.force)
                    .map_err(|conflicts| conflicts.to_error())?;
                if let Some(map) = merged.as_object_mut() {
                    map.insert("apiVersion".into(), json!(api_version));
                    map.insert("kind".into(), json!(rt.kind));
                }
                self.create_prepared(target, merged, options, &now)
                    .map(|reply| reply.warned(warnings))
            }
            Some(stored) => {
                let old = Self::value_of(&rt, &stored, &target.version);
                let context =
                    Self::write_context(&rt, &api_version, &target.subresource, &old, &now);
                let mut merged =
                    match managed::apply(&old, &config, &context, &manager, options.force) {
                        Ok(merged) => merged,
                        Err(conflicts) => {
                            let allowed = (manager == "kubectl")
                                .then(|| managed::last_applied_takeover(&old, &rt.shape))
                                .flatten();
                            match allowed {
                                Some(allowed)
                                    if conflicts
                                        .fields
                                        .iter()
                                        .all(|(_, path)| allowed.contains(path)) =>
                                {
                                    managed::apply(&old, &config, &context, &manager, true)
                                        .map_err(|conflicts| conflicts.to_error())?
                                }
                                _ => return Err(conflicts.to_error()),
                            }
                        }
                    };
                if manager == "kubectl" {
                    sync_last_applied(&old, &config, &mut merged);
                }
                self.write_existing(target, &old, merged, options, true)
                    .map(|reply| reply.warned(warnings))
            }
        }
    }

    /// The common tail of PUT and PATCH: `new` replaces `old`.
    fn write_existing(
        &mut self,
        target: &Target,
        old: &Value,
        mut new: Value,
        options: &WriteOptions,
        managed_done: bool,
    ) -> Result<Reply, ApiError> {
        let rt = target.rt.clone();
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the patched object must be a JSON object",
            ));
        }
        let name = meta_str(&new, "name").to_string();
        if name != target.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                target.name
            )));
        }
        Self::check_namespace_field(target, &mut new)?;
        self.check_namespace_exists(target, &name, false)?;
        let old_version = meta_str(old, "resourceVersion").to_string();
        let new_version = meta_str(&new, "resourceVersion").to_string();
        if !new_version.is_empty() && new_version != old_version {
            return Err(ApiError::stale_resource_version(&rt, &name));
        }
        let now = now_timestamp();
        // The server owns these, whatever the client sends.
        {
            let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
            let meta = meta_mut(&mut new);
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
            ] {
                match old_meta.get(key) {
                    Some(value) => meta.insert(key.into(), value.clone()),
                    None => meta.remove(key),
                };
            }
            meta.remove("selfLink");
        }
        match target.subresource {
            Subresource::Status => {
                let mut merged = old.clone();
                if let Some(map) = merged.as_object_mut() {
                    match new.get("status") {
                        Some(status) => map.insert("status".into(), status.clone()),
                        None => map.shift_remove("status"),
                    };
                }
                if let Some(fields) = new.get("metadata").and_then(|m| m.get("managedFields")) {
                    meta_mut(&mut merged).insert("managedFields".into(), fields.clone());
                }
                new = merged;
            }
            Subresource::Finalize => {
                let mut merged = old.clone();
                set_path(
                    &mut merged,
                    "spec.finalizers",
                    get_path(&new, "spec.finalizers")
                        .cloned()
                        .unwrap_or(json!([])),
                );
                new = merged;
            }
            _ if rt.status_subresource => {
                if let Some(map) = new.as_object_mut() {
                    match old.get("status") {
                        Some(status) => map.insert("status".into(), status.clone()),
                        None => map.shift_remove("status"),
                    };
                }
            }
            _ => {}
        }
        if old
            .get("metadata")
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some()
        {
            let before: Vec<&Value> = get_path(old, "metadata.finalizers")
                .and_then(Value::as_array)
                .map(|l| l.iter().collect())
                .unwrap_or_default();
            let added: Vec<String> = get_path(&new, "metadata.finalizers")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter(|f| !before.contains(f))
                        .filter_map(Value::as_str)
                        .map(|s| format!("{s:?}"))
                        .collect()
                })
                .unwrap_or_default();
            if !added.is_empty() {
                return Err(ApiError::invalid_object(
                    &rt,
                    &name,
                    vec![Cause::forbidden(
                        "metadata.finalizers",
                        &format!(
                            "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                            added.join(", ")
                        ),
                    )],
                ));
            }
        }
        defaults::apply(&rt, &mut new);
        if !managed_done {
            let api_version = target.api_version();
            let context = Self::write_context(&rt, &api_version, &target.subresource, old, &now);
            let zero = Self::zero_object(&rt);
            managed::record_update(Some(old), &zero, &mut new, &context, &options.manager())?;
        }
        defaults::prepare(&rt, &mut new);
        if rt.group.is_empty() && rt.kind == "Service" {
            self.allocate_service_addresses(&mut new, Some(old));
        }
        self.admit(
            target,
            AdmissionOperation::Update,
            Some(old),
            &mut new,
            options.dry_run,
        )?;
        let causes = validation::validate(&rt, &new, Some(old));
        if !causes.is_empty() {
            return Err(ApiError::invalid_object(&rt, &name, causes));
        }
        if rt.has_generation && spec_changed(&rt, old, &new) {
            let generation = get_path(old, "metadata.generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        if rt.is_custom() || rt.kind == "CustomResourceDefinition" {
            // Unstructured kinds keep field order as sent; typed kinds serialize in a fixed
            // order, which `order_fields` approximates.
        }
        let new = order_fields(new);
        if new == *old {
            return Ok(Reply::ok(new));
        }
        if options.dry_run {
            return Ok(Reply::ok(new));
        }
        let stored = self.put(&rt, new);
        Ok(Reply::ok(Self::value_of(&rt, &stored, &target.version)))
    }

    // ----- scale -----

    fn scale_of(&self, target: &Target, stored: &StoredObject) -> Value {
        let rt = &target.rt;
        let object = stored.to_value(&rt.api_version(rt.preferred_version()), &rt.kind);
        let paths = rt.scale.clone().unwrap_or(super::resource::ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        });
        let spec_replicas = get_path(&object, &paths.spec_replicas)
            .cloned()
            .unwrap_or(json!(0));
        let status_replicas = get_path(&object, &paths.status_replicas)
            .cloned()
            .unwrap_or(json!(0));
        let selector = match paths.label_selector.as_deref() {
            Some(".spec.selector") if !rt.is_custom() => {
                get_path(&object, "spec.selector").map(selector_string)
            }
            Some(path) => get_path(&object, path)
                .and_then(Value::as_str)
                .map(str::to_string),
            None => None,
        };
        let mut status = json!({"replicas": status_replicas});
        if let Some(selector) = selector {
            status["selector"] = json!(selector);
        }
        let meta = object.get("metadata").cloned().unwrap_or(json!({}));
        let mut scale_meta = Map::new();
        for key in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(value) = meta.get(key) {
                scale_meta.insert(key.into(), value.clone());
            }
        }
        json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": scale_meta,
            "spec": {"replicas": spec_replicas},
            "status": status,
        })
    }

    fn patch_scale(
        &mut self,
        target: &Target,
        patch_type: PatchType,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        let stored = self.get_stored(target)?;
        let scale = self.scale_of(target, &stored);
        let patched = match patch_type {
            PatchType::Json => patch::apply_json_patch(&scale, body)?,
            PatchType::Merge => patch::apply_merge_patch(&scale, body)?,
            PatchType::Strategic => {
                let patch_value: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                strategic::apply(&scale, &patch_value, &super::schema::Shape::Untyped)
                    .map_err(|_| ApiError::unprocessable())?
            }
            PatchType::Apply => {
                let config: Value = serde_yaml::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
                patch::apply_merge_patch(&scale, config.to_string().as_bytes())?
            }
        };
        self.update_scale(target, patched, options, Some(scale))
    }

    fn update_scale(
        &mut self,
        target: &Target,
        scale: Value,
        options: &WriteOptions,
        current: Option<Value>,
    ) -> Result<Reply, ApiError> {
        let rt = target.rt.clone();
        let stored = self.get_stored(target)?;
        let current = match current {
            Some(current) => current,
            None => self.scale_of(target, &stored),
        };
        let replicas = match get_path(&scale, "spec.replicas") {
            Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n >= 0) => n.as_i64().unwrap_or(0),
            Some(other) => {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    &target.name,
                    vec![Cause::invalid(
                        "spec.replicas",
                        other,
                        "must be greater than or equal to 0",
                    )],
                ));
            }
            None => 0,
        };
        let wanted_version = meta_str(&scale, "resourceVersion");
        if !wanted_version.is_empty() && wanted_version != meta_str(&current, "resourceVersion") {
            return Err(ApiError::stale_resource_version(&rt, &target.name));
        }
        let old = Self::value_of(&rt, &stored, rt.preferred_version());
        let mut new = old.clone();
        let path = rt
            .scale
            .as_ref()
            .map(|s| s.spec_replicas.clone())
            .unwrap_or(".spec.replicas".into());
        set_path(&mut new, &path, json!(replicas));
        let main = Target {
            subresource: Subresource::Scale,
            version: rt.preferred_version().to_string(),
            ..target.clone()
        };
        let reply = self.write_existing(&main, &old, new, options, false)?;
        let _ = reply;
        let stored = self.get_stored(target)?;
        let mut answer = self.scale_of(target, &stored);
        if options.dry_run {
            answer["spec"]["replicas"] = json!(replicas);
        }
        Ok(Reply::ok(answer))
    }

    // ----- deletes -----

    /// DELETE of one object.
    pub fn delete(&mut self, target: &Target, options: &DeleteOptions) -> Result<Reply, ApiError> {
        let rt = target.rt.clone();
        let stored = self.get_stored(target)?;
        if let Some(uid) = &options.precondition_uid
            && *uid != stored.index.uid
        {
            return Err(ApiError::conflict(
                &rt,
                &target.name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    stored.index.uid
                ),
            ));
        }
        if let Some(version) = &options.precondition_resource_version
            && *version != stored.index.resource_version.to_string()
        {
            return Err(ApiError::conflict(
                &rt,
                &target.name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {version}, ResourceVersion in object meta: {}",
                    stored.index.resource_version
                ),
            ));
        }
        if rt.group.is_empty()
            && rt.kind == "Namespace"
            && ["default", "kube-system", "kube-public"].contains(&target.name.as_str())
        {
            return Err(ApiError::forbidden(
                &rt,
                &target.name,
                "this namespace may not be deleted",
            ));
        }
        let propagation = match (&options.propagation, options.orphan_dependents) {
            (Some(policy), _) => policy.clone(),
            (None, Some(true)) => "Orphan".into(),
            _ => "Background".into(),
        };
        if !["Foreground", "Background", "Orphan"].contains(&propagation.as_str()) {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                vec![Cause::unsupported(
                    "propagationPolicy",
                    &json!(propagation),
                    &["Foreground", "Background", "Orphan"],
                )],
            ));
        }
        let object = Self::value_of(&rt, &stored, &target.version);
        if options.dry_run {
            return Ok(Self::deleted_reply(&rt, object, &stored.index.uid));
        }
        let outcome = self.delete_object(&rt, &object, &propagation);
        self.run_gc();
        match outcome {
            Deletion::Removed(last) => {
                let uid = meta_str(&last, "uid").to_string();
                let last = self.reversion(&rt, last, &target.version);
                Ok(Self::deleted_reply(&rt, last, &uid))
            }
            Deletion::Pending => {
                // Finalization may already have completed synchronously.
                match self
                    .store
                    .get(&rt.storage_key(), &Self::key_of(target, &target.name))
                {
                    Some(current) => Ok(Reply::ok(Self::value_of(&rt, &current, &target.version))),
                    None => Ok(Self::deleted_reply(&rt, object, &stored.index.uid)),
                }
            }
        }
    }

    fn reversion(&self, rt: &ResourceType, mut object: Value, version: &str) -> Value {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), json!(rt.api_version(version)));
        }
        object
    }

    fn deleted_reply(rt: &ResourceType, object: Value, uid: &str) -> Reply {
        if rt.returns_deleted_object {
            Reply::ok(object)
        } else {
            let name = meta_str(&object, "name").to_string();
            Reply::ok(success_status(&rt.group, &rt.plural, &name, uid))
        }
    }

    /// DELETE of a collection: deletes every matching object; answers with the list.
    pub fn delete_collection(
        &mut self,
        target: &Target,
        list: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<Reply, ApiError> {
        let rt = target.rt.clone();
        let page = self.list(
            target,
            &ListOptions {
                limit: 0,
                continue_token: None,
                ..list.clone()
            },
        )?;
        let mut items = Vec::new();
        for stored in page.items {
            let item_target = Target {
                namespace: stored.index.namespace.clone(),
                name: stored.index.name.clone(),
                subresource: Subresource::None,
                ..target.clone()
            };
            match self.delete(&item_target, options) {
                Ok(reply)
                    if reply.body.get("kind").and_then(Value::as_str) == Some(rt.kind.as_str()) =>
                {
                    items.push(strip_type_meta(reply.body, &rt))
                }
                Ok(_) => items.push(strip_type_meta(
                    Self::value_of(&rt, &stored, &target.version),
                    &rt,
                )),
                Err(error) if error.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        Ok(Reply::ok(json!({
            "kind": rt.list_kind,
            "apiVersion": target.api_version(),
            "metadata": {"resourceVersion": self.store.revision().to_string()},
            "items": items,
        })))
    }

    /// Starts deleting `object`: removes it now, or marks it and lets finalizers run.
    fn delete_object(
        &mut self,
        rt: &Arc<ResourceType>,
        object: &Value,
        propagation: &str,
    ) -> Deletion {
        let storage_key = rt.storage_key();
        let key = ObjectKey::new(meta_str(object, "namespace"), meta_str(object, "name"));
        let mut marked = object.clone();
        let already_deleting = get_path(object, "metadata.deletionTimestamp").is_some();
        let mut finalizers: Vec<Value> = get_path(object, "metadata.finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let is_namespace = rt.group.is_empty() && rt.kind == "Namespace";
        let is_crd = rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io";
        let policy_finalizer = match propagation {
            "Orphan" => Some("orphan"),
            "Foreground" => Some("foregroundDeletion"),
            _ => None,
        };
        if let Some(finalizer) = policy_finalizer
            && !finalizers.iter().any(|f| f == finalizer)
        {
            let has_dependents = !self.store.dependents_of(&key_uid(object)).is_empty();
            if has_dependents || propagation == "Orphan" {
                finalizers.push(json!(finalizer));
            }
        }
        if is_crd {
            let has_instances = crd::resource_type(object)
                .map(|t| self.store.count(&t.storage_key()) > 0)
                .unwrap_or(false);
            if has_instances && !finalizers.iter().any(|f| f == crd::CLEANUP_FINALIZER) {
                finalizers.push(json!(crd::CLEANUP_FINALIZER));
            }
        }
        let waits_for_content = is_namespace;
        if finalizers.is_empty() && !waits_for_content {
            let last = self.remove(rt, &key, object.clone());
            return Deletion::Removed(last);
        }
        if !already_deleting
            || get_path(object, "metadata.finalizers")
                .and_then(Value::as_array)
                .map(Vec::len)
                != Some(finalizers.len())
        {
            let meta = meta_mut(&mut marked);
            if !already_deleting {
                meta.insert("deletionTimestamp".into(), json!(now_timestamp()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            if finalizers.is_empty() {
                meta.remove("finalizers");
            } else {
                meta.insert("finalizers".into(), Value::Array(finalizers));
            }
            if is_namespace {
                set_path(&mut marked, "status.phase", json!("Terminating"));
            }
            if is_crd {
                let status = crd::status(&marked, None, &now_timestamp());
                if let Some(map) = marked.as_object_mut() {
                    map.insert("status".into(), status);
                }
            }
            self.put(rt, marked);
        }
        self.gc_queue
            .push_back(GcWork::Finalize { storage_key, key });
        Deletion::Pending
    }

    /// Stores an object (create or update), then performs what the controllers of a real
    /// cluster would do in reaction: CRD registration, default ServiceAccounts, removal of
    /// finalized objects.
    fn put(&mut self, rt: &Arc<ResourceType>, object: Value) -> Arc<StoredObject> {
        let storage_key = rt.storage_key();
        let selectable = Self::selectable(rt);
        let deleting = get_path(&object, "metadata.deletionTimestamp").is_some();
        let no_finalizers = get_path(&object, "metadata.finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        let is_namespace = rt.group.is_empty() && rt.kind == "Namespace";
        let spec_finalizers_done = get_path(&object, "spec.finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if deleting && no_finalizers && (!is_namespace || spec_finalizers_done) {
            let key = ObjectKey::new(meta_str(&object, "namespace"), meta_str(&object, "name"));
            if self.store.get(&storage_key, &key).is_some() {
                self.remove(rt, &key, object.clone());
                self.run_gc();
                return Arc::new(StoredObject::encode(&object, selectable));
            }
        }
        let created = self
            .store
            .get(
                &storage_key,
                &ObjectKey::new(meta_str(&object, "namespace"), meta_str(&object, "name")),
            )
            .is_none();
        let stored = self.store.commit_put(&storage_key, object, selectable);
        if rt.group.is_empty() && rt.kind == "Namespace" && created {
            let namespace = stored.index.name.clone();
            let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                                 "metadata": {"name": "default", "namespace": namespace}});
            let controller = WriteOptions {
                field_manager: Some("kube-controller-manager".into()),
                ..WriteOptions::default()
            };
            let _ = self.create_internal("", "serviceaccounts", account, &controller);
        }
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            let crd_object = stored.to_value(&rt.api_version("v1"), &rt.kind);
            self.reconcile_crd(&crd_object);
        }
        if deleting {
            self.gc_queue.push_back(GcWork::Finalize {
                storage_key: storage_key.clone(),
                key: ObjectKey::new(&stored.index.namespace, &stored.index.name),
            });
            self.run_gc();
        }
        stored
    }

    /// Removes an object for good, returning its last state at the deletion's version.
    fn remove(&mut self, rt: &Arc<ResourceType>, key: &ObjectKey, last_state: Value) -> Value {
        let storage_key = rt.storage_key();
        let Some(removed) =
            self.store
                .commit_delete(&storage_key, key, last_state, Self::selectable(rt))
        else {
            return Value::Null;
        };
        let last = removed.to_value(&rt.api_version(rt.preferred_version()), &rt.kind);
        self.gc_queue.push_back(GcWork::OwnerGone {
            uid: removed.index.uid.clone(),
        });
        if rt.namespaced && !key.namespace.is_empty() {
            self.gc_queue.push_back(GcWork::Finalize {
                storage_key: "namespaces".into(),
                key: ObjectKey::new("", &key.namespace),
            });
        }
        for owner in &removed.index.owners {
            if let Some(location) = self.store.locate_uid(&owner.uid).cloned() {
                self.gc_queue.push_back(GcWork::Finalize {
                    storage_key: location.storage_key,
                    key: location.key,
                });
            }
        }
        if let super::resource::Origin::Crd(crd_name) = &rt.origin {
            self.gc_queue.push_back(GcWork::Finalize {
                storage_key: "customresourcedefinitions.apiextensions.k8s.io".into(),
                key: ObjectKey::new("", crd_name),
            });
        }
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            self.registry.set_crd_type(&key.name, None);
        }
        last
    }

    /// Registers (or re-registers) the type a CRD defines and writes its status.
    fn reconcile_crd(&mut self, crd_object: &Value) {
        let name = meta_str(crd_object, "name").to_string();
        let deleting = get_path(crd_object, "metadata.deletionTimestamp").is_some();
        let resource = crd::resource_type(crd_object);
        let conflict = resource
            .as_ref()
            .and_then(|r| crd::name_conflict(&self.registry, r));
        if conflict.is_none() && !deleting {
            self.registry.set_crd_type(&name, resource);
        } else if conflict.is_some() {
            self.registry.set_crd_type(&name, None);
        }
        let status = crd::status(crd_object, conflict.as_deref(), &now_timestamp());
        if crd_object.get("status") != Some(&status) {
            let mut updated = crd_object.clone();
            if let Some(map) = updated.as_object_mut() {
                map.insert("status".into(), status);
            }
            if let Ok(mut entries) = managed::decode(&updated) {
                let fields = super::patch::structured::to_field_set(
                    &json!({"status": {"acceptedNames": {}, "conditions": {}}}),
                    &super::schema::Shape::Untyped,
                );
                if !entries
                    .iter()
                    .any(|e| e.manager == "kube-apiserver" && e.subresource == "status")
                {
                    entries.push(managed::ManagedEntry {
                        manager: "kube-apiserver".into(),
                        operation: managed::Operation::Update,
                        api_version: "apiextensions.k8s.io/v1".into(),
                        time: Some(now_timestamp()),
                        subresource: "status".into(),
                        fields,
                    });
                }
                managed::store(&mut updated, &mut entries);
            }
            let storage_key = "customresourcedefinitions.apiextensions.k8s.io";
            if let Some(rt) = self.registry.by_storage_key(storage_key) {
                self.store
                    .commit_put(storage_key, updated, Self::selectable(&rt));
            }
        }
    }

    /// Runs queued garbage-collection work until none is left.
    fn run_gc(&mut self) {
        let mut budget = 1_000_000usize;
        while let Some(work) = self.gc_queue.pop_front() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                self.gc_queue.clear();
                break;
            }
            match work {
                GcWork::OwnerGone { uid } => self.collect_dependents(&uid),
                GcWork::Finalize { storage_key, key } => self.finalize(&storage_key, &key),
            }
        }
    }

    fn collect_dependents(&mut self, owner_uid: &str) {
        if owner_uid.is_empty() {
            return;
        }
        for location in self.store.dependents_of(owner_uid) {
            let Some(rt) = self.registry.by_storage_key(&location.storage_key) else {
                continue;
            };
            let Some(stored) = self.store.get(&location.storage_key, &location.key) else {
                continue;
            };
            let object = Self::value_of(&rt, &stored, rt.preferred_version());
            let live_owners = stored
                .index
                .owners
                .iter()
                .filter(|o| o.uid != owner_uid && self.store.locate_uid(&o.uid).is_some())
                .count();
            if live_owners == 0 {
                if stored.index.deletion_timestamp.is_none() {
                    self.delete_object(&rt, &object, "Background");
                }
            } else {
                let mut updated = object.clone();
                drop_owner_reference(&mut updated, owner_uid);
                self.put(&rt, updated);
            }
        }
    }

    fn finalize(&mut self, storage_key: &str, key: &ObjectKey) {
        let Some(rt) = self.registry.by_storage_key(storage_key) else {
            return;
        };
        let Some(stored) = self.store.get(storage_key, key) else {
            return;
        };
        if stored.index.deletion_timestamp.is_none() {
            return;
        }
        let object = Self::value_of(&rt, &stored, rt.preferred_version());
        let uid = stored.index.uid.clone();
        let mut finalizers = stored.index.finalizers.clone();
        let mut updated = object.clone();
        if finalizers.iter().any(|f| f == "orphan") {
            for location in self.store.dependents_of(&uid) {
                if let (Some(dep_rt), Some(dep)) = (
                    self.registry.by_storage_key(&location.storage_key),
                    self.store.get(&location.storage_key, &location.key),
                ) {
                    let mut dependent = Self::value_of(&dep_rt, &dep, dep_rt.preferred_version());
                    drop_owner_reference(&mut dependent, &uid);
                    self.put(&dep_rt, dependent);
                }
            }
            finalizers.retain(|f| f != "orphan");
        }
        if finalizers.iter().any(|f| f == "foregroundDeletion") {
            let dependents = self.store.dependents_of(&uid);
            for location in &dependents {
                if let (Some(dep_rt), Some(dep)) = (
                    self.registry.by_storage_key(&location.storage_key),
                    self.store.get(&location.storage_key, &location.key),
                ) && dep.index.deletion_timestamp.is_none()
                {
                    let dependent = Self::value_of(&dep_rt, &dep, dep_rt.preferred_version());
                    self.delete_object(&dep_rt, &dependent, "Foreground");
                }
            }
            if self.store.dependents_of(&uid).is_empty() {
                finalizers.retain(|f| f != "foregroundDeletion");
            }
        }
        let is_crd = rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition";
        if is_crd && finalizers.iter().any(|f| f == crd::CLEANUP_FINALIZER) {
            if let Some(instances) = self
                .registry
                .types()
                .iter()
                .find(|t| t.origin == super::resource::Origin::Crd(key.name.clone()))
                .cloned()
                .or_else(|| crd::resource_type(&object).map(Arc::new))
            {
                for instance in self.store.list(&instances.storage_key(), None, None) {
                    if instance.index.deletion_timestamp.is_none() {
                        let value =
                            Self::value_of(&instances, &instance, instances.preferred_version());
                        self.delete_object(&instances, &value, "Background");
                    }
                }
                if self.store.count(&instances.storage_key()) == 0 {
                    finalizers.retain(|f| f != crd::CLEANUP_FINALIZER);
                }
            } else {
                finalizers.retain(|f| f != crd::CLEANUP_FINALIZER);
            }
        }
        let is_namespace = rt.group.is_empty() && rt.kind == "Namespace";
        if is_namespace {
            let namespace = key.name.clone();
            let namespaced: Vec<Arc<ResourceType>> = self
                .registry
                .types()
                .iter()
                .filter(|t| t.namespaced)
                .cloned()
                .collect();
            let mut remaining = 0;
            for t in &namespaced {
                for item in self.store.list(&t.storage_key(), Some(&namespace), None) {
                    if item.index.deletion_timestamp.is_none() {
                        let value = Self::value_of(t, &item, t.preferred_version());
                        self.delete_object(t, &value, "Background");
                    }
                }
                remaining += self
                    .store
                    .list(&t.storage_key(), Some(&namespace), None)
                    .len();
            }
            if remaining == 0 {
                set_path(&mut updated, "spec.finalizers", json!([]));
            }
        }
        let finalizer_values: Vec<Value> = finalizers.iter().map(|f| json!(f)).collect();
        let current_finalizers: Vec<Value> =
            stored.index.finalizers.iter().map(|f| json!(f)).collect();
        if finalizer_values != current_finalizers {
            if finalizer_values.is_empty() {
                meta_mut(&mut updated).remove("finalizers");
            } else {
                meta_mut(&mut updated).insert("finalizers".into(), Value::Array(finalizer_values));
            }
        }
        if updated != object {
            self.put(&rt, updated);
        }
    }
}

enum Deletion {
    Removed(Value),
    Pending,
}

fn key_uid(object: &Value) -> String {
    meta_str(object, "uid").to_string()
}

fn drop_owner_reference(object: &mut Value, owner_uid: &str) {
    let meta = meta_mut(object);
    if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
        if refs.is_empty() {
            meta.remove("ownerReferences");
        }
    }
}

/// Whether anything outside metadata (and status, for kinds with a status subresource)
/// differs: what bumps `metadata.generation`.
fn spec_changed(rt: &ResourceType, old: &Value, new: &Value) -> bool {
    let strip = |object: &Value| -> Value {
        let mut copy = object.clone();
        if let Some(map) = copy.as_object_mut() {
            map.remove("metadata");
            if rt.status_subresource {
                map.remove("status");
            }
        }
        copy
    };
    strip(old) != strip(new)
}

/// Puts `kind`, `apiVersion`, `metadata` first, the way the real server serializes, with
/// `status` last.
fn order_fields(object: Value) -> Value {
    let Value::Object(map) = object else {
        return object;
    };
    let mut ordered = Map::new();
    let mut rest = map;
    for key in ["kind", "apiVersion", "metadata"] {
        if let Some(value) = rest.shift_remove(key) {
            ordered.insert(key.into(), value);
        }
    }
    let status = rest.shift_remove("status");
    ordered.extend(rest);
    if let Some(status) = status {
        ordered.insert("status".into(), status);
    }
    if let Some(meta) = ordered.get_mut("metadata").and_then(Value::as_object_mut) {
        let mut meta_ordered = Map::new();
        for key in [
            "name",
            "generateName",
            "namespace",
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
        ] {
            if let Some(value) = meta.shift_remove(key) {
                meta_ordered.insert(key.into(), value);
            }
        }
        meta_ordered.extend(std::mem::take(meta));
        *meta = meta_ordered;
    }
    Value::Object(ordered)
}

/// Removes `kind`/`apiVersion` from list items of built-in kinds, as typed lists do.
fn strip_type_meta(mut object: Value, rt: &ResourceType) -> Value {
    if !rt.is_custom()
        && let Some(map) = object.as_object_mut()
    {
        map.shift_remove("kind");
        map.shift_remove("apiVersion");
    }
    object
}

/// Keeps `kubectl.kubernetes.io/last-applied-configuration` in step when kubectl moves an
/// object from client-side to server-side apply, as the real server does.
fn sync_last_applied(old: &Value, config: &Value, merged: &mut Value) {
    const KEY: &str = "kubectl.kubernetes.io/last-applied-configuration";
    let had = get_path(old, "metadata.annotations")
        .and_then(|a| a.get(KEY))
        .is_some();
    if !had {
        return;
    }
    let mut applied = config.clone();
    if let Some(annotations) = applied
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.remove(KEY);
        if annotations.is_empty()
            && let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("annotations");
        }
    }
    let meta = meta_mut(merged);
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(KEY.into(), Value::String(applied.to_string()));
    }
}

/// The label selector of a workload as the Scale subresource shows it (`app=web`).
fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(expressions) = selector.get("matchExpressions").and_then(Value::as_array) {
        for expression in expressions {
            let key = expression.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = expression
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match expression.get("operator").and_then(Value::as_str) {
                Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
                Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
                Some("Exists") => parts.push(key.to_string()),
                Some("DoesNotExist") => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.sort();
    parts.join(",")
}

fn matches(object: &StoredObject, options: &ListOptions) -> bool {
    let index = &object.index;
    options.labels.matches(&index.labels)
        && options.fields.matches(|field| match field {
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

/// Whether a stored object passes label and field selectors.
pub fn object_matches(
    object: &StoredObject,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> bool {
    matches(
        object,
        &ListOptions {
            labels: labels.clone(),
            fields: fields.clone(),
            ..ListOptions::default()
        },
    )
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
