//! Writes: create, update, patch and server-side apply, and their shared checks.

use serde_json::{Map, Value, json};

use super::{ClusterState, Reply, Subresource, Target, WriteOptions};
use crate::admission::{AdmissionOperation, AdmissionRequest};
use crate::defaults;
use crate::field_validation::{self, FieldValidation};
use crate::managed;
use crate::object::{
    get_path, meta_mut, meta_str, new_uid, now_timestamp, random_suffix, set_path,
};
use crate::patch::{self, PatchType, strategic};
use crate::resource::ResourceType;
use crate::status::{ApiError, Cause};
use crate::store::ObjectKey;
use crate::validation;

impl ClusterState {
    pub(super) fn check_type_meta(target: &Target, object: &Value) -> Result<(), ApiError> {
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
    pub(super) fn check_fields(
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
        if in_apply {
            // Server-side apply builds a typed object from the applied configuration, and that
            // fails on a field the schema does not declare whatever `fieldValidation` says:
            // kube-apiserver v1.37 answers 500 (an error that is no API status: reason unknown)
            // naming the first such field.
            let group_version = match target.api_version().split_once('/') {
                Some(_) => target.api_version(),
                None => format!("/{}", target.api_version()),
            };
            return Err(ApiError::new(
                500,
                "",
                format!(
                    "failed to create typed patch object ({}/{}; {group_version}, Kind={}): .{}: field not declared in schema",
                    target.namespace, target.name, rt.kind, names[0]
                ),
            ));
        }
        if validation == FieldValidation::Strict {
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

    pub(super) fn check_namespace_field(
        target: &Target,
        object: &mut Value,
    ) -> Result<(), ApiError> {
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

    pub(super) fn check_namespace_exists(
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

    pub(super) fn check_crd_active(&self, target: &Target) -> Result<(), ApiError> {
        if let crate::resource::Origin::Crd(crd_name) = &target.rt.origin {
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

    pub(super) fn admit(
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

    pub(super) fn allocate_service_addresses(&mut self, object: &mut Value, old: Option<&Value>) {
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
    pub(super) fn create_prepared(
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
        if patch_type == PatchType::Strategic && rt.is_custom() {
            return Err(ApiError::unsupported_media_type(&[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ]));
        }
        if patch_type == PatchType::Apply {
            return self.apply(target, body, options);
        }
        let stored = self.get_stored(target)?;
        let old = Self::value_of(&rt, &stored, &target.version);
        let mut patched = match patch_type {
            PatchType::Json => patch::apply_json_patch(&old, body)?,
            PatchType::Merge => patch::apply_merge_patch(&old, body)?,
            PatchType::Strategic => {
                let patch_value: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                strategic::apply(&old, &patch_value, &rt.shape)
                    .map_err(|_| ApiError::unprocessable())?
            }
            PatchType::Apply => return self.apply(target, body, options),
        };
        let warnings = Self::check_fields(target, &mut patched, options.field_validation, false)?;
        self.write_existing(target, &old, patched, options, false)
            .map(|reply| reply.warned(warnings))
    }

    pub(super) fn apply(
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
        let config: Value = meshshift_support::yaml::from_str(text)
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
        Self::check_namespace_field(target, &mut config)?;
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
    pub(super) fn write_existing(
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
}

/// Whether anything outside metadata (and status, for kinds with a status subresource)
/// differs: what bumps `metadata.generation`.
pub(super) fn spec_changed(rt: &ResourceType, old: &Value, new: &Value) -> bool {
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
pub(super) fn order_fields(object: Value) -> Value {
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

/// Keeps `kubectl.kubernetes.io/last-applied-configuration` in step when kubectl moves an
/// object from client-side to server-side apply, as the real server does.
pub(super) fn sync_last_applied(old: &Value, config: &Value, merged: &mut Value) {
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
