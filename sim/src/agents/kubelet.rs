//! The kubelet of the single node: a pod it has not seen Ready becomes `Running` and `Ready`
//! a configurable delay after it first saw it, with a pod IP and container statuses.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::informer::{Cache, PODS};
use super::{run_loop, write_status};
use crate::object::now_timestamp;
use crate::workload::pod::{Placement, is_ready, running_status};

/// Settings of the kubelet.
#[derive(Clone, Debug)]
pub struct KubeletSettings {
    /// Time from first seeing a pod to reporting it Ready.
    pub ready_delay: Duration,
    /// The node's IP.
    pub host_ip: String,
}

fn uid(pod: &Value) -> String {
    pod.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The first free pod IP in `10.244.0.0/16`, skipping those in use.
fn next_pod_ip(used: &HashSet<String>, counter: &mut u32) -> String {
    for _ in 0..65_000 {
        *counter = if *counter >= 65_000 { 2 } else { *counter + 1 };
        let ip = format!("10.244.{}.{}", *counter / 250, *counter % 250 + 2);
        if !used.contains(&ip) {
            return ip;
        }
    }
    "10.244.255.254".into()
}

/// Runs the kubelet until `cancel`.
pub async fn run(
    client: kube::Client,
    cache: Arc<Cache>,
    settings: KubeletSettings,
    cancel: CancellationToken,
) {
    let first_seen: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let counter = Arc::new(std::sync::Mutex::new(1u32));
    let loop_cache = cache.clone();
    run_loop(loop_cache, cancel, || {
        let client = client.clone();
        let cache = cache.clone();
        let settings = settings.clone();
        let first_seen = first_seen.clone();
        let counter = counter.clone();
        async move {
            let now = Instant::now();
            let pods = cache.list(PODS);
            let mut due = Vec::new();
            let mut next_wake: Option<Duration> = None;
            {
                let mut seen = first_seen.lock().unwrap_or_else(|e| e.into_inner());
                let live: HashSet<String> = pods.iter().map(|p| uid(p)).collect();
                seen.retain(|uid, _| live.contains(uid));
                for pod in &pods {
                    if is_ready(pod) || pod.pointer("/metadata/deletionTimestamp").is_some() {
                        continue;
                    }
                    let since = *seen.entry(uid(pod)).or_insert(now);
                    let ready_at = since + settings.ready_delay;
                    if ready_at <= now {
                        due.push(pod.clone());
                    } else {
                        let wait = ready_at - now;
                        next_wake = Some(next_wake.map_or(wait, |w: Duration| w.min(wait)));
                    }
                }
            }
            let mut used: HashSet<String> = pods
                .iter()
                .filter_map(|p| {
                    p.pointer("/status/podIP")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect();
            let started = now_timestamp();
            for pod in due {
                let host_network =
                    pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true);
                let pod_ip = match pod.pointer("/status/podIP").and_then(Value::as_str) {
                    Some(ip) => ip.to_string(),
                    None if host_network => settings.host_ip.clone(),
                    None => {
                        let mut counter = counter.lock().unwrap_or_else(|e| e.into_inner());
                        next_pod_ip(&used, &mut counter)
                    }
                };
                used.insert(pod_ip.clone());
                let status = running_status(
                    &pod,
                    &Placement {
                        pod_ip: &pod_ip,
                        host_ip: &settings.host_ip,
                        started: &started,
                    },
                );
                if let Err(error) = write_status(&client, PODS, &pod, &status, "kubelet").await {
                    tracing::debug!("pod status: {error}");
                    next_wake = Some(Duration::from_millis(100));
                }
            }
            next_wake
        }
    })
    .await;
}
