//! The agents of a simulated cluster: controllers that work through the Kubernetes API, as a
//! real cluster's do. Each follows the cluster through a shared [`informer::Cache`] (list and
//! watch over HTTPS with the cluster's kubeconfig) and writes with a kube-rs client:
//!
//! - [`workloads`]: Deployments → ReplicaSets → Pods (hashed names, surge rollouts, status and
//!   conditions), StatefulSets and DaemonSets on the single node;
//! - [`kubelet`]: pods become `Running` and `Ready` after a delay, with IPs and container
//!   statuses;
//! - [`load_balancer`]: LoadBalancer Services get a loopback address from the cluster's pool.

pub mod informer;
pub mod kubelet;
pub mod load_balancer;
pub mod workloads;

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::kubeconfig::{self, KubeconfigEntry};
use super::server::SimError;
use informer::Kind;

/// A kube-rs client for one cluster, from its kubeconfig entry.
pub async fn client(entry: &KubeconfigEntry) -> Result<kube::Client, SimError> {
    let text = kubeconfig::render(std::slice::from_ref(entry), &entry.name);
    let parsed = kube::config::Kubeconfig::from_yaml(&text)
        .map_err(|e| SimError::Config(format!("kubeconfig of {}: {e}", entry.name)))?;
    let options = kube::config::KubeConfigOptions {
        context: Some(entry.name.clone()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(parsed, &options)
        .await
        .map_err(|e| SimError::Config(format!("kubeconfig of {}: {e}", entry.name)))?;
    // The simulator's own requests are exempt from injected faults.
    config.headers.push((
        http::HeaderName::from_static(crate::fault::AGENT_HEADER),
        http::HeaderValue::from_static("1"),
    ));
    kube::Client::try_from(config)
        .map_err(|e| SimError::Config(format!("client for {}: {e}", entry.name)))
}

/// An API handle for `kind` in `namespace` (all namespaces when empty).
pub fn api(client: &kube::Client, kind: Kind, namespace: &str) -> Api<DynamicObject> {
    let resource: ApiResource = kind.api_resource();
    if namespace.is_empty() {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, &resource)
    }
}

/// A merge patch that turns status `old` into `new` (fields `new` lacks are removed).
pub fn status_patch(old: Option<&Value>, new: &Value) -> Value {
    let mut status = new.clone();
    if let (Some(old), Some(map)) = (old.and_then(Value::as_object), status.as_object_mut()) {
        for key in old.keys() {
            if !map.contains_key(key) {
                map.insert(key.clone(), Value::Null);
            }
        }
    }
    json!({"status": status})
}

/// Writes a status with a merge patch on the `/status` subresource, as `manager`.
pub async fn write_status(
    client: &kube::Client,
    kind: Kind,
    object: &Value,
    status: &Value,
    manager: &str,
) -> Result<(), kube::Error> {
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let params = PatchParams {
        field_manager: Some(manager.to_string()),
        ..PatchParams::default()
    };
    api(client, kind, namespace)
        .patch_status(
            name,
            &params,
            &Patch::Merge(status_patch(object.get("status"), status)),
        )
        .await
        .map(|_| ())
}

/// Runs `reconcile` after every change of the cache (batched), and again when it asks to be
/// woken after a delay, until `cancel`.
pub async fn run_loop<F, Fut>(
    cache: std::sync::Arc<informer::Cache>,
    cancel: CancellationToken,
    mut reconcile: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Duration>>,
{
    let mut changes = cache.subscribe();
    let mut wake: Option<Duration> = None;
    loop {
        let sleep = wake.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                // Let a burst of events land before looking.
                tokio::time::sleep(Duration::from_millis(2)).await;
                changes.borrow_and_update();
            }
            _ = tokio::time::sleep(sleep) => {}
        }
        if !cache.is_synced() {
            wake = Some(Duration::from_millis(20));
            continue;
        }
        wake = reconcile().await;
    }
}
