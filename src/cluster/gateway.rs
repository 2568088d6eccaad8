//! Reading a gateway pod's Envoy through the Kubernetes API, as istioctl does: its admin
//! interface (`/config_dump` on port 15000, which listens on the pod's localhost) through the
//! `pods/portforward` subresource over WebSocket, and its Prometheus statistics (port 15090,
//! on the pod IP) through the `pods/proxy` subresource. [`wait_propagation`] polls every
//! gateway pod until each serves a VirtualService as written.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::Cluster;
use super::rest::RestError;
use crate::traffic::propagation::{self, ExpectedCluster};

/// Envoy's admin port.
pub const ADMIN_PORT: u16 = 15000;
/// Istio's Prometheus port.
pub const STATS_PORT: u16 = 15090;
/// Largest config dump read (a big mesh's routes run to megabytes).
const MAX_DUMP_BYTES: usize = 64 * 1024 * 1024;

/// Why a pod's Envoy could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The API server refused the subresource (403, 404, no upgrade): the reason.
    Refused(String),
    /// It was allowed but did not work this time: the reason.
    Failed(String),
}

impl ReadError {
    /// The reason, for messages.
    pub fn message(&self) -> &str {
        match self {
            ReadError::Refused(m) | ReadError::Failed(m) => m,
        }
    }
}

fn kube_error(what: &str, error: kube::Error) -> ReadError {
    use kube::client::UpgradeConnectionError;
    match error {
        kube::Error::Api(status) if [401, 403, 404, 405].contains(&status.code) => {
            ReadError::Refused(format!("{what}: {} ({})", status.message, status.code))
        }
        kube::Error::UpgradeConnection(UpgradeConnectionError::ProtocolSwitch(code)) => {
            ReadError::Refused(format!(
                "{what}: the server did not upgrade the connection ({code})"
            ))
        }
        kube::Error::UpgradeConnection(other) => {
            ReadError::Refused(format!("{what}: the WebSocket upgrade failed: {other}"))
        }
        other => ReadError::Failed(format!("{what}: {other}")),
    }
}

/// `GET /config_dump` from pod `namespace/pod`'s Envoy admin port, through `pods/portforward`.
pub async fn config_dump(
    client: kube::Client,
    namespace: &str,
    pod: &str,
) -> Result<Value, ReadError> {
    let what = format!("pods/portforward of {namespace}/{pod}");
    let api: kube::Api<Pod> = kube::Api::namespaced(client, namespace);
    let mut forwarder = api
        .portforward(pod, &[ADMIN_PORT])
        .await
        .map_err(|e| kube_error(&what, e))?;
    let stream = forwarder
        .take_stream(ADMIN_PORT)
        .ok_or_else(|| ReadError::Failed(format!("{what}: no stream for port {ADMIN_PORT}")))?;
    let port_error = forwarder.take_error(ADMIN_PORT);
    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ReadError::Failed(format!("{what}: {e}")))?;
        let driver = tokio::spawn(connection);
        let request = http::Request::get("/config_dump")
            .header("host", "localhost")
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| ReadError::Failed(format!("{what}: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| ReadError::Failed(format!("{what}: {e}")))?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_DUMP_BYTES)
            .collect()
            .await
            .map_err(|e| ReadError::Failed(format!("{what}: reading /config_dump: {e}")))?
            .to_bytes();
        drop(sender);
        driver.abort();
        if !status.is_success() {
            return Err(ReadError::Failed(format!(
                "{what}: /config_dump answered {status}"
            )));
        }
        serde_json::from_slice::<Value>(&body)
            .map_err(|e| ReadError::Failed(format!("{what}: /config_dump is not JSON: {e}")))
    };
    let result = match port_error {
        Some(port_error) => tokio::select! {
            result = exchange => result,
            Some(message) = port_error => Err(ReadError::Failed(format!("{what}: {message}"))),
        },
        None => exchange.await,
    };
    forwarder.abort();
    result
}

/// Envoy's upstream counters of one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamCounters {
    /// `envoy_cluster_upstream_rq_total`.
    pub total: u64,
    /// `envoy_cluster_upstream_rq_xx` by class (`1` to `5`).
    pub by_class: [u64; 5],
}

/// Parses `envoy_cluster_upstream_rq_total` and `envoy_cluster_upstream_rq_xx` from
/// Prometheus' text format, by `cluster_name`.
pub fn parse_counters(text: &str) -> BTreeMap<String, UpstreamCounters> {
    let mut counters: BTreeMap<String, UpstreamCounters> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let (metric, labels) = match series.split_once('{') {
            Some((metric, labels)) => (metric, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        let label = |name: &str| {
            labels.split("\",").find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key.trim() == name).then(|| value.trim().trim_matches('"').to_string())
            })
        };
        let Some(cluster) = label("cluster_name") else {
            continue;
        };
        let entry = counters.entry(cluster).or_default();
        match metric {
            "envoy_cluster_upstream_rq_total" => entry.total = value as u64,
            "envoy_cluster_upstream_rq_xx" => {
                if let Some(class) = label("envoy_response_code_class")
                    .and_then(|c| c.parse::<usize>().ok())
                    .filter(|c| (1..=5).contains(c))
                {
                    entry.by_class[class - 1] = value as u64;
                }
            }
            _ => {}
        }
    }
    counters
}

/// Pod `namespace/pod`'s upstream counters, through
/// `GET /api/v1/namespaces/<ns>/pods/<pod>:15090/proxy/stats/prometheus`.
pub async fn counters(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
) -> Result<BTreeMap<String, UpstreamCounters>, ReadError> {
    let path =
        format!("/api/v1/namespaces/{namespace}/pods/{pod}:{STATS_PORT}/proxy/stats/prometheus");
    match cluster.rest().get(&path).await {
        Ok(response) => Ok(parse_counters(response.body.as_str().unwrap_or_default())),
        Err(RestError::Status(status)) if [401, 403, 404, 405].contains(&status.code) => {
            Err(ReadError::Refused(format!(
                "pods/proxy of {namespace}/{pod}: {} ({})",
                status.message, status.code
            )))
        }
        Err(error) => Err(ReadError::Failed(format!(
            "pods/proxy of {namespace}/{pod}: {}",
            error.message()
        ))),
    }
}

/// The upstream counters of every Ready gateway pod matching `selector` in `namespace`, by
/// pod; `Err(reason)` inside when the API server refuses `pods/proxy`.
pub async fn all_counters(
    cluster: &Cluster,
    namespace: &str,
    selector: &str,
) -> crate::error::Result<Result<BTreeMap<String, BTreeMap<String, UpstreamCounters>>, String>> {
    let pods = ready_pods(cluster, namespace, selector).await?;
    let reads = pods.iter().map(|pod| counters(cluster, namespace, pod));
    let results = futures::future::join_all(reads).await;
    let mut all = BTreeMap::new();
    for (pod, result) in pods.into_iter().zip(results) {
        match result {
            Ok(counters) => {
                all.insert(pod, counters);
            }
            Err(ReadError::Refused(reason)) => return Ok(Err(reason)),
            Err(ReadError::Failed(reason)) => {
                return Err(cluster.error(
                    format!("cannot read the counters of {namespace}/{pod}"),
                    vec![reason],
                ));
            }
        }
    }
    Ok(Ok(all))
}

async fn ready_pods(
    cluster: &Cluster,
    namespace: &str,
    selector: &str,
) -> crate::error::Result<Vec<String>> {
    let pods: Vec<String> = cluster
        .pods(namespace, Some(selector))
        .await?
        .iter()
        .filter(|p| is_ready(p))
        .filter_map(|p| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    if pods.is_empty() {
        return Err(cluster.error(
            format!("no Ready gateway pod matches `{selector}` in namespace {namespace}"),
            vec![],
        ));
    }
    Ok(pods)
}

/// What the caller may do with the gateway pods, by `SelfSubjectAccessReview`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Access {
    /// `create pods/portforward`: the propagation gate can read each pod's routes.
    pub portforward: bool,
    /// `get pods/proxy`: the passive check can read each pod's counters.
    pub proxy: bool,
    /// The server's reasons, when it gave any.
    pub reasons: Vec<String>,
}

async fn allowed(
    cluster: &Cluster,
    namespace: &str,
    verb: &str,
    subresource: &str,
) -> crate::error::Result<(bool, String)> {
    let review = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "resource": "pods",
                                         "subresource": subresource}},
    });
    let body = serde_json::to_vec(&review).unwrap_or_default();
    let response = cluster
        .rest()
        .call(
            http::Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            Some(("application/json", body)),
        )
        .await
        .map_err(|e| cluster.request_error("SelfSubjectAccessReview", &e))?;
    let status = response.body.get("status");
    let allowed = status
        .and_then(|s| s.get("allowed"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let reason = status
        .and_then(|s| s.get("reason").or_else(|| s.get("evaluationError")))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok((allowed, reason))
}

/// Whether the caller may `create pods/portforward` and `get pods/proxy` in `namespace`.
pub async fn access(cluster: &Cluster, namespace: &str) -> crate::error::Result<Access> {
    let (portforward, proxy) = futures::try_join!(
        allowed(cluster, namespace, "create", "portforward"),
        allowed(cluster, namespace, "get", "proxy")
    )?;
    Ok(Access {
        portforward: portforward.0,
        proxy: proxy.0,
        reasons: [portforward.1, proxy.1]
            .into_iter()
            .filter(|r| !r.is_empty())
            .collect(),
    })
}

/// What one gateway pod served when last read.
#[derive(Clone, Debug, PartialEq)]
pub struct PodWeights {
    /// The pod's name.
    pub pod: String,
    /// It serves the VirtualService as written.
    pub converged: bool,
    /// The weights it served (see [`propagation::describe`]), or the read error.
    pub seen: String,
    /// Seconds from the start of the wait to its convergence (or to the last read).
    pub seconds: f64,
}

/// The outcome of [`wait_propagation`].
#[derive(Clone, Debug, PartialEq)]
pub struct Propagation {
    /// Every pod converged.
    pub converged: bool,
    /// The API server refused to let the gateways be read: the reason (the caller falls back
    /// to a fixed wait).
    pub refused: Option<String>,
    /// How long the wait took.
    pub waited: Duration,
    /// Per pod, what it served.
    pub pods: Vec<PodWeights>,
}

/// How [`wait_propagation`] reads the gateways.
#[derive(Clone, Debug)]
pub struct GateOptions {
    /// The gateway pods' namespace.
    pub namespace: String,
    /// Their label selector (`istio=ingressgateway`).
    pub selector: String,
    /// Give up after this long.
    pub timeout: Duration,
    /// Pause between reads of a pod that has not converged.
    pub interval: Duration,
}

/// Waits until every Ready gateway pod serves VirtualService `vs` as written, reading each
/// pod's `/config_dump`; no longer than `timeout`. Pods that converged are not read again.
pub async fn wait_propagation(
    cluster: &Cluster,
    vs: &Value,
    options: &GateOptions,
) -> crate::error::Result<Propagation> {
    let started = Instant::now();
    let namespace = vs
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = vs
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let expected: Vec<Vec<ExpectedCluster>> = propagation::expected_routes(vs);
    let pods = ready_pods(cluster, &options.namespace, &options.selector).await?;
    let mut report: Vec<PodWeights> = pods
        .iter()
        .map(|pod| PodWeights {
            pod: pod.clone(),
            converged: false,
            seen: "not read yet".into(),
            seconds: 0.0,
        })
        .collect();
    let client = cluster.upgrade_client()?;
    loop {
        let pending: Vec<usize> = (0..report.len())
            .filter(|i| !report[*i].converged)
            .collect();
        let reads = pending.iter().map(|i| {
            let client = client.clone();
            let pod = report[*i].pod.clone();
            let gateway_namespace = options.namespace.clone();
            async move { config_dump(client, &gateway_namespace, &pod).await }
        });
        let results = futures::future::join_all(reads).await;
        let seconds = started.elapsed().as_secs_f64();
        for (i, result) in pending.iter().zip(results) {
            let entry = &mut report[*i];
            entry.seconds = seconds;
            match result {
                Ok(dump) => {
                    let served = propagation::served_routes(&dump, namespace, name);
                    entry.converged = propagation::converged(&expected, &served);
                    entry.seen = propagation::describe(&served);
                }
                Err(ReadError::Refused(reason)) => {
                    return Ok(Propagation {
                        converged: false,
                        refused: Some(reason),
                        waited: started.elapsed(),
                        pods: report,
                    });
                }
                Err(ReadError::Failed(reason)) => entry.seen = reason,
            }
        }
        if report.iter().all(|p| p.converged) || started.elapsed() >= options.timeout {
            return Ok(Propagation {
                converged: report.iter().all(|p| p.converged),
                refused: None,
                waited: started.elapsed(),
                pods: report,
            });
        }
        let left = options.timeout.saturating_sub(started.elapsed());
        tokio::time::sleep(options.interval.min(left)).await;
    }
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_subresource_is_told_from_a_failed_read() {
        let status = |code: u16| {
            kube::Error::Api(Box::new(
                serde_json::from_value(serde_json::json!({
                    "code": code, "message": "pods \"gw\" is forbidden", "reason": "Forbidden"}))
                .unwrap(),
            ))
        };
        assert!(
            matches!(kube_error("pf", status(403)), ReadError::Refused(m) if m.contains("forbidden (403)"))
        );
        assert!(matches!(
            kube_error("pf", status(404)),
            ReadError::Refused(_)
        ));
        assert!(matches!(
            kube_error("pf", status(500)),
            ReadError::Failed(_)
        ));
        let upgrade = kube::Error::UpgradeConnection(
            kube::client::UpgradeConnectionError::ProtocolSwitch(http::StatusCode::BAD_REQUEST),
        );
        assert!(matches!(kube_error("pf", upgrade), ReadError::Refused(_)));
    }

    #[test]
    fn counters_from_prometheus_text() {
        let text = "# TYPE envoy_cluster_upstream_rq_total counter\n\
            envoy_cluster_upstream_rq_total{cluster_name=\"outbound|80||v2.example.com\"} 12\n\
            envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",cluster_name=\"outbound|80||v2.example.com\"} 11\n\
            envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"5\",cluster_name=\"outbound|80||v2.example.com\"} 1\n\
            envoy_server_live 1\n";
        let counters = parse_counters(text);
        assert_eq!(
            counters["outbound|80||v2.example.com"],
            UpstreamCounters {
                total: 12,
                by_class: [0, 11, 0, 0, 1]
            }
        );
        assert_eq!(counters.len(), 1);
    }
}
