//! Deletes of one object or a collection.

use serde_json::{Value, json};

use super::lifecycle::Deletion;
use super::{ClusterState, DeleteOptions, ListOptions, Reply, Subresource, Target};
use crate::object::meta_str;
use crate::resource::ResourceType;
use crate::status::{ApiError, Cause, success_status};

impl ClusterState {
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

    pub(super) fn reversion(&self, rt: &ResourceType, mut object: Value, version: &str) -> Value {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), json!(rt.api_version(version)));
        }
        object
    }

    pub(super) fn deleted_reply(rt: &ResourceType, object: Value, uid: &str) -> Reply {
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
}

/// Removes `kind`/`apiVersion` from list items of built-in kinds, as typed lists do.
pub(super) fn strip_type_meta(mut object: Value, rt: &ResourceType) -> Value {
    if !rt.is_custom()
        && let Some(map) = object.as_object_mut()
    {
        map.shift_remove("kind");
        map.shift_remove("apiVersion");
    }
    object
}
