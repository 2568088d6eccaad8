//! Publishes a cluster's routing configuration to its gateways: after every change it builds
//! a [`MeshSnapshot`] and publishes it once the propagation delay has passed, as istiod's
//! pushes reach Envoys a moment after a change is written. Changes keep their order; a
//! burst of changes publishes only the last state that is due.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::proxies::Proxies;
use super::snapshot::{MeshObjects, MeshSnapshot};
use crate::agents::informer::{
    Cache, DESTINATION_RULES, GATEWAYS, Kind, NAMESPACES, PODS, SERVICE_ENTRIES, SERVICES,
    VIRTUAL_SERVICES,
};

/// Annotation on namespace `kube-system` that marks a cluster as deleted (`az aks delete`):
/// its gateways stop serving.
pub const DELETED_ANNOTATION: &str = "sim.meshshift.io/deleted";

fn values(cache: &Cache, kind: Kind) -> Vec<Value> {
    cache
        .list(kind)
        .iter()
        .map(|v| v.as_ref().clone())
        .collect()
}

/// Builds the current snapshot from the cache.
pub fn build(cache: &Cache, cluster: &str) -> MeshSnapshot {
    let deleted = cache
        .get(NAMESPACES, "", "kube-system")
        .and_then(|ns| {
            ns.pointer("/metadata/annotations")
                .and_then(|a| a.get(DELETED_ANNOTATION))
                .cloned()
        })
        .is_some_and(|v| v == "true");
    let objects = MeshObjects {
        services: values(cache, SERVICES),
        pods: values(cache, PODS),
        gateways: values(cache, GATEWAYS),
        virtual_services: values(cache, VIRTUAL_SERVICES),
        destination_rules: values(cache, DESTINATION_RULES),
        service_entries: values(cache, SERVICE_ENTRIES),
    };
    MeshSnapshot::build(cluster, deleted, &objects)
}

/// Publishes snapshots to `sender` until `cancel`: the first at once, later ones the
/// cluster's propagation delay (read from `proxies` at each change) after the change that
/// produced them. Every snapshot is recorded in `proxies` when it is built, so each gateway
/// pod can see it after its own delay.
pub async fn run(
    cache: Arc<Cache>,
    cluster: String,
    proxies: Arc<Proxies>,
    live_faults: super::faults::LiveFaults,
    sender: watch::Sender<Arc<MeshSnapshot>>,
    cancel: CancellationToken,
) {
    let mut changes = cache.subscribe();
    let mut pending: VecDeque<(Instant, Arc<MeshSnapshot>)> = VecDeque::new();
    let mut published_once = false;
    loop {
        let due = pending.front().map(|(at, _)| *at);
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                changes.borrow_and_update();
                if !cache.is_synced() {
                    continue;
                }
                let mut snapshot = build(&cache, &cluster);
                snapshot.live_faults = live_faults.clone();
                let snapshot = Arc::new(snapshot);
                proxies.record(snapshot.clone());
                if published_once {
                    pending.push_back((Instant::now() + proxies.delay(), snapshot));
                } else {
                    published_once = true;
                    sender.send_replace(snapshot);
                }
            }
            _ = async { if let Some(at) = due { tokio::time::sleep_until(at).await } else { std::future::pending::<()>().await } } => {
                let now = Instant::now();
                let mut latest = None;
                while pending.front().is_some_and(|(at, _)| *at <= now) {
                    latest = pending.pop_front().map(|(_, s)| s);
                }
                if let Some(snapshot) = latest {
                    sender.send_replace(snapshot);
                }
            }
        }
    }
}
