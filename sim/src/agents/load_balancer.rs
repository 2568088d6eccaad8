//! The cloud's load balancer controller: every LoadBalancer Service gets an address from
//! the cluster's loopback pool in `status.loadBalancer.ingress[0].ip`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::informer::{Cache, SERVICES};
use super::{run_loop, write_status};
use crate::addresses::LoadBalancerPool;

fn current_ip(service: &Value) -> Option<&str> {
    service
        .pointer("/status/loadBalancer/ingress/0/ip")
        .and_then(Value::as_str)
}

/// Runs the controller until `cancel`.
pub async fn run(
    client: kube::Client,
    cache: Arc<Cache>,
    pool: LoadBalancerPool,
    cancel: CancellationToken,
) {
    let loop_cache = cache.clone();
    run_loop(loop_cache, cancel, || {
        let client = client.clone();
        let cache = cache.clone();
        async move {
            let services = cache.list(SERVICES);
            let balanced: Vec<&Arc<Value>> = services
                .iter()
                .filter(|s| s.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer"))
                .collect();
            let mut used: Vec<String> = balanced
                .iter()
                .filter_map(|s| current_ip(s))
                .filter(|ip| pool.contains(ip))
                .map(str::to_string)
                .collect();
            let mut retry = None;
            for service in balanced {
                if current_ip(service).is_some_and(|ip| pool.contains(ip)) {
                    continue;
                }
                let requested = service
                    .pointer("/spec/loadBalancerIP")
                    .and_then(Value::as_str)
                    .filter(|ip| pool.contains(ip) && !used.iter().any(|u| u == ip))
                    .map(str::to_string);
                let Some(ip) = requested.or_else(|| pool.allocate(&used)) else {
                    tracing::warn!("load balancer pool exhausted");
                    continue;
                };
                let status = json!({"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}});
                match write_status(
                    &client,
                    SERVICES,
                    service,
                    &status,
                    "cloud-controller-manager",
                )
                .await
                {
                    Ok(()) => used.push(ip),
                    Err(error) => {
                        tracing::debug!("load balancer status: {error}");
                        retry = Some(Duration::from_millis(200));
                    }
                }
            }
            retry
        }
    })
    .await;
}
