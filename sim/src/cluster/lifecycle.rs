//! What a real cluster's controllers do, done synchronously after each write: removal
//! of finalized objects, garbage collection through owner references, namespace and CRD
//! cleanup, CRD registration and default ServiceAccounts.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{ClusterState, GcWork, WriteOptions};
use crate::crd;
use crate::managed;
use crate::object::{StoredObject, get_path, meta_mut, meta_str, now_timestamp, set_path};
use crate::resource::ResourceType;
use crate::store::ObjectKey;

impl ClusterState {
    /// Starts deleting `object`: removes it now, or marks it and lets finalizers run.
    pub(super) fn delete_object(
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
    pub(super) fn put(&mut self, rt: &Arc<ResourceType>, object: Value) -> Arc<StoredObject> {
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
            self.publish_root_ca(&namespace);
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
    pub(super) fn remove(
        &mut self,
        rt: &Arc<ResourceType>,
        key: &ObjectKey,
        last_state: Value,
    ) -> Value {
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
        if let crate::resource::Origin::Crd(crd_name) = &rt.origin {
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
    pub(super) fn reconcile_crd(&mut self, crd_object: &Value) {
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
                let fields = crate::patch::structured::to_field_set(
                    &json!({"status": {"acceptedNames": {}, "conditions": {}}}),
                    &crate::schema::Shape::Untyped,
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
    pub(super) fn run_gc(&mut self) {
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

    pub(super) fn collect_dependents(&mut self, owner_uid: &str) {
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

    pub(super) fn finalize(&mut self, storage_key: &str, key: &ObjectKey) {
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
                .find(|t| t.origin == crate::resource::Origin::Crd(key.name.clone()))
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

pub(super) enum Deletion {
    Removed(Value),
    Pending,
}

pub(super) fn key_uid(object: &Value) -> String {
    meta_str(object, "uid").to_string()
}

pub(super) fn drop_owner_reference(object: &mut Value, owner_uid: &str) {
    let meta = meta_mut(object);
    if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
        if refs.is_empty() {
            meta.remove("ownerReferences");
        }
    }
}
