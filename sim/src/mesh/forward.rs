//! Forwarding to ServiceEntry endpoints over loopback, as Envoy forwards to an external
//! service: a kept-alive connection pool, the request's Host header passed through, Envoy's
//! answers when the upstream fails. Only loopback addresses are ever contacted; port mappings
//! (a load balancer port the simulator could not bind) are honoured.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::Rng;

use super::snapshot::RetryPolicy;

/// Where each load balancer address of an environment is served: `ip:port` →
/// `ip:bound-port` (the same when the port itself was bound).
pub type PortMap = Arc<RwLock<HashMap<String, String>>>;

/// Header counting how often a request was forwarded (stops forwarding loops).
pub const HOPS_HEADER: &str = "x-sim-forward-hops";
const MAX_HOPS: u32 = 8;
/// The longest the simulator waits for a forwarded answer (Envoy's default route timeout;
/// istiod disables it, but a test double should not wait forever).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(15);

/// How a try ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered (or the simulator refused to forward).
    Answered,
    /// No connection could be made.
    ConnectFailure,
    /// The connection broke before the answer.
    Reset,
    /// No answer within the try's timeout.
    Timeout,
}

/// An answer from upstream (or Envoy's, when there was none).
#[derive(Debug)]
pub struct Forwarded {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Bytes,
    /// How the try ended.
    pub outcome: Outcome,
}

impl Forwarded {
    fn envoy(status: u16, body: &str) -> Forwarded {
        Forwarded {
            status,
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            body: Bytes::from(body.to_string()),
            outcome: Outcome::Answered,
        }
    }

    fn failed(outcome: Outcome, status: u16, body: &str) -> Forwarded {
        Forwarded {
            outcome,
            ..Forwarded::envoy(status, body)
        }
    }
}

/// Sends requests to endpoints.
pub struct Forwarder {
    client: Client<HttpConnector, Full<Bytes>>,
    ports: PortMap,
    /// `MESHSHIFT_CONNECT_TO`, read once: the user's mappings for addresses of simulators in
    /// other processes, as curl's `--connect-to` takes them.
    overrides: BTreeMap<String, String>,
}

impl Forwarder {
    /// A forwarder honouring `ports`, and `MESHSHIFT_CONNECT_TO` for other addresses.
    pub fn new(ports: PortMap) -> Forwarder {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector);
        let overrides = std::env::var("MESHSHIFT_CONNECT_TO")
            .map(|spec| meshshift_support::connect_to::parse(&spec))
            .unwrap_or_default();
        Forwarder {
            client,
            ports,
            overrides,
        }
    }

    /// Where `address:port` is really served: the environment's mapping, then the user's.
    fn mapped(&self, address: &str, port: u16) -> String {
        let key = format!("{address}:{port}");
        if let Some(to) = self
            .ports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return to.clone();
        }
        self.overrides.get(&key).cloned().unwrap_or(key)
    }

    /// Forwards a request as Envoy's router does for a route with `retries` and `timeout`
    /// (see [`super::apps::route_to_pods`] for the rules): tries carry
    /// `x-envoy-attempt-count`, retried answers, resets, failed connections and per-try
    /// timeouts are tried again after the back-off, and the route's timeout bounds them all
    /// (`504 upstream request timeout`). The Host header goes as it is.
    #[allow(clippy::too_many_arguments)]
    pub async fn forward_with_retries(
        &self,
        endpoints: &[(String, u16)],
        method: &http::Method,
        path_and_query: &str,
        mut headers: http::HeaderMap,
        body: Bytes,
        retries: &RetryPolicy,
        timeout: Option<Duration>,
    ) -> Forwarded {
        let started = tokio::time::Instant::now();
        let deadline = timeout.map(|t| started + t);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            headers.insert("x-envoy-attempt-count", http::HeaderValue::from(attempt));
            let remaining =
                deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
            let limit = [retries.per_try_timeout, remaining, Some(UPSTREAM_TIMEOUT)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(UPSTREAM_TIMEOUT);
            let answer = self
                .forward(
                    endpoints,
                    method,
                    path_and_query,
                    &headers,
                    body.clone(),
                    limit,
                )
                .await;
            let retry_left = attempt <= retries.attempts;
            let route_expired = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
            let retried = retry_left
                && !route_expired
                && match answer.outcome {
                    Outcome::Answered => retries.retries_status(answer.status),
                    Outcome::ConnectFailure => retries.retries_connect_failure(),
                    Outcome::Reset | Outcome::Timeout => retries.retries_reset(),
                };
            if !retried {
                return answer;
            }
            let backoff = super::apps::retry_backoff(attempt, rand::rng().random());
            if let Some(deadline) = deadline
                && tokio::time::Instant::now() + backoff >= deadline
            {
                tokio::time::sleep_until(deadline).await;
                return Forwarded::failed(Outcome::Timeout, 504, "upstream request timeout");
            }
            tokio::time::sleep(backoff).await;
        }
    }

    /// Forwards a request to one of `endpoints` (chosen at random), waiting at most
    /// `timeout` for the answer.
    pub async fn forward(
        &self,
        endpoints: &[(String, u16)],
        method: &http::Method,
        path_and_query: &str,
        headers: &http::HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Forwarded {
        if endpoints.is_empty() {
            return Forwarded::envoy(503, "no healthy upstream");
        }
        let (address, port) = &endpoints[rand::rng().random_range(0..endpoints.len())];
        if !address.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return Forwarded::failed(
                Outcome::ConnectFailure,
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: the simulator only forwards to loopback addresses",
            );
        }
        let hops: u32 = headers
            .get(HOPS_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if hops >= MAX_HOPS {
            return Forwarded::envoy(508, "forwarding loop");
        }
        let target = self.mapped(address, *port);
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(format!("http://{target}{path_and_query}"));
        for (name, value) in headers {
            if !matches!(
                name.as_str(),
                "connection"
                    | "keep-alive"
                    | "transfer-encoding"
                    | "upgrade"
                    | "content-length"
                    | HOPS_HEADER
            ) {
                request = request.header(name, value);
            }
        }
        request = request.header(HOPS_HEADER, (hops + 1).to_string());
        let Ok(request) = request.body(Full::new(body)) else {
            return Forwarded::envoy(400, "bad request");
        };
        let answer = tokio::time::timeout(timeout, async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes());
            Ok::<_, hyper_util::client::legacy::Error>((parts, body))
        })
        .await;
        match answer {
            Err(_) => Forwarded::failed(Outcome::Timeout, 504, "upstream request timeout"),
            Ok(Err(error)) if error.is_connect() => Forwarded::failed(
                Outcome::ConnectFailure,
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused",
            ),
            Ok(Err(_)) => Forwarded::failed(
                Outcome::Reset,
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            ),
            Ok(Ok((parts, Err(_)))) => Forwarded::failed(
                Outcome::Reset,
                parts.status.as_u16().max(502),
                "upstream reset",
            ),
            Ok(Ok((parts, Ok(body)))) => Forwarded {
                outcome: Outcome::Answered,
                status: parts.status.as_u16(),
                headers: parts
                    .headers
                    .iter()
                    .filter(|(n, _)| {
                        !matches!(
                            n.as_str(),
                            "connection"
                                | "keep-alive"
                                | "transfer-encoding"
                                | "content-length"
                                | "date"
                        )
                    })
                    .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                    .collect(),
                body,
            },
        }
    }
}
