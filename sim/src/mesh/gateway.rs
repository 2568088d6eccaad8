//! Ingress gateways serving HTTP for real: one listener per LoadBalancer Service port on its
//! load balancer address, answering with the routing decisions of [`super::routing`] and the
//! pods' answers of [`super::apps`], forwarding ServiceEntry traffic through
//! [`super::forward`]. A port that cannot be bound (below 1024 without privileges, or taken)
//! is served on a free port of the same address and the mapping is published.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::apps::{self, PodRequest, Reply};
use super::envoy::cluster_name;
use super::faults::Faults;
use super::forward::{Forwarder, PortMap};
use super::proxies::Proxies;
use super::routing::{
    GatewayDecision, RequestInfo, Target, choose_weighted, gateway_route, resolve,
};
use super::snapshot::{
    HeaderOperations, Key, MeshSnapshot, PodInfo, RetryPolicy, RouteAction, StringMatch,
};

/// A served load balancer port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerInfo {
    /// Cluster name.
    pub cluster: String,
    /// The Service (`namespace`, `name`).
    pub service: Key,
    /// The load balancer address and Service port (`127.0.1.1:80`).
    pub address: String,
    /// Where it is really served (differs from `address` when the port was mapped).
    pub bound: String,
}

/// Called with every listener of the cluster whenever they change.
pub type ListenerObserver = Arc<dyn Fn(&str, Vec<ListenerInfo>) + Send + Sync>;

/// What the gateway will do with a request, decided before any waiting.
enum Plan {
    Answer(Reply),
    Forward(Box<Forward>),
    Drop,
}

/// A request for ServiceEntry endpoints, as the route sends it.
struct Forward {
    endpoints: Vec<(String, u16)>,
    path: String,
    /// The request headers after the route's operations (Host kept unless rewritten).
    headers: Vec<(String, String)>,
    retries: RetryPolicy,
    timeout: Option<Duration>,
    /// Response operations: the destination's, then the route's.
    response: Vec<HeaderOperations>,
    delay: Duration,
}

/// Applies response header operations to a reply's headers.
fn apply_response(operations: &[&HeaderOperations], headers: &mut Vec<(String, String)>) {
    for operations in operations {
        operations.apply(headers);
    }
}

/// A version 4 UUID, as Envoy generates `x-request-id`.
fn request_id(rng: &mut impl Rng) -> String {
    let bits: u128 = rng.random();
    let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

struct Listener {
    service: Key,
    port: u16,
    snapshots: watch::Receiver<Arc<MeshSnapshot>>,
    forwarder: Arc<Forwarder>,
    proxies: Arc<Proxies>,
}

fn rewritten_path(route: &super::snapshot::HttpRoute, path: &str, query: Option<&str>) -> String {
    let mut new_path = path.to_string();
    if let Some(rewrite) = &route.rewrite_uri {
        let prefix = route.matches.iter().find_map(|m| match &m.uri {
            Some(StringMatch::Prefix(p)) if path.starts_with(p.as_str()) => Some(p.clone()),
            _ => None,
        });
        new_path = match prefix {
            Some(prefix) => format!("{rewrite}{}", &path[prefix.len()..]),
            None => rewrite.clone(),
        };
    }
    match query {
        Some(query) => format!("{new_path}?{query}"),
        None => new_path,
    }
}

impl Listener {
    /// Decides what to do with `request` by the configuration `snapshot`;
    /// `upstream_cluster` is set to the Envoy cluster it goes to, when it goes to one.
    fn plan(
        &self,
        snapshot: &MeshSnapshot,
        request: &Request<Incoming>,
        upstream_cluster: &mut Option<String>,
    ) -> Plan {
        let mut rng = rand::rng();
        let Some(service) = snapshot.services.get(&self.service) else {
            return Plan::Answer(Reply::no_healthy_upstream());
        };
        let is_gateway = service
            .ready_pods
            .iter()
            .any(|i| snapshot.pods.get(*i).is_some_and(|p| p.gateway_proxy));
        // A plain load balancer's faults are its Service's, applied once by `serve_service`.
        let faults = if is_gateway {
            snapshot
                .live_faults
                .effective(&self.service, &service.faults, true)
        } else {
            Faults::default()
        };
        let live = &snapshot.live_faults;
        let gateway_delay = faults.latency(live.draw());
        if faults.drop_ratio > 0.0 && live.draw() < faults.drop_ratio {
            return Plan::Drop;
        }
        if faults.error_ratio > 0.0 && live.draw() < faults.error_ratio {
            let mut reply = Reply::new(
                503,
                "text/plain",
                "service unavailable (fault injected with sim.meshshift.io/http-503-ratio)",
            );
            reply.delay = gateway_delay;
            return Plan::Answer(reply);
        }
        let path = request.uri().path();
        let port = service.ports.iter().find(|p| p.port == self.port);
        if port.is_some_and(|p| p.target_port == 15021 || p.name == "status-port") {
            let ready = !service.ready_pods.is_empty();
            return Plan::Answer(match path {
                "/healthz/ready" if ready => Reply::new(200, "text/plain", ""),
                "/healthz/ready" => Reply::new(503, "text/plain", "not ready"),
                _ => Reply::new(404, "text/plain", ""),
            });
        }
        if service.ready_pods.is_empty() {
            return Plan::Answer(Reply::no_healthy_upstream());
        }
        let method = request.method().as_str();
        let host_header = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        if !is_gateway {
            // A plain load balancer in front of application pods.
            let pod_request = PodRequest {
                method: method.to_string(),
                host: host_header.to_string(),
                path: path.to_string(),
                headers,
            };
            let mut reply = apps::serve_service(
                snapshot,
                &self.service,
                &service.ready_pods,
                &pod_request,
                &mut rng,
            );
            reply.delay += gateway_delay;
            return Plan::Answer(reply);
        }
        let host = host_header
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host_header, |(host, _)| host)
            .to_ascii_lowercase();
        let listener_port = port.map_or(self.port, |p| p.target_port);
        let info = RequestInfo {
            method,
            host: &host,
            path,
            headers: &headers,
            port: listener_port,
        };
        let (vs, route) = match gateway_route(snapshot, service, self.port, &info) {
            GatewayDecision::NoRoute => return Plan::Answer(Reply::new(404, "text/plain", "")),
            GatewayDecision::Route(vs, route) => (vs, route),
        };
        let mut delay = gateway_delay;
        if let Some(fault) = &route.fault {
            if !fault.delay.is_zero() && rng.random::<f64>() < fault.delay_ratio {
                delay += fault.delay;
            }
            if let Some(status) = fault.abort_status
                && rng.random::<f64>() < fault.abort_ratio
            {
                let mut reply = Reply::new(status, "text/plain", "fault filter abort");
                reply.delay = delay;
                return Plan::Answer(reply);
            }
        }
        let full_path = rewritten_path(route, path, request.uri().query());
        let mut reply = match &route.action {
            RouteAction::Direct { status, body } => Reply::new(*status, "text/plain", body.clone()),
            RouteAction::Redirect {
                status,
                uri,
                authority,
            } => {
                let mut reply = Reply::new(*status, "text/plain", "");
                let location = format!(
                    "http://{}{}",
                    authority.as_deref().unwrap_or(host_header),
                    uri.as_deref().unwrap_or(path)
                );
                reply.headers.push(("location".into(), location));
                reply
            }
            RouteAction::Destinations(destinations) => {
                let Some(destination) = choose_weighted(destinations, rng.random()) else {
                    return Plan::Answer(Reply::new(500, "text/plain", "all route weights are 0"));
                };
                // The request as it goes upstream: Envoy's own headers, then the
                // destination's operations, then the route's (Envoy applies the
                // weighted cluster's before the route's), then `rewrite.authority`.
                let mut upstream = headers;
                if !upstream.iter().any(|(n, _)| n == "x-forwarded-proto") {
                    upstream.push(("x-forwarded-proto".into(), "http".into()));
                }
                if !upstream.iter().any(|(n, _)| n == "x-request-id") {
                    upstream.push(("x-request-id".into(), request_id(&mut rng)));
                }
                destination.headers.request.apply(&mut upstream);
                route.headers.request.apply(&mut upstream);
                if let Some(authority) = &route.rewrite_authority {
                    upstream.retain(|(n, _)| n != "host");
                    upstream.push(("host".into(), authority.clone()));
                }
                let upstream_host = upstream
                    .iter()
                    .find(|(n, _)| n == "host")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let target = resolve(snapshot, &vs.namespace, destination);
                if !matches!(target, Target::Missing(_)) {
                    *upstream_cluster = Some(cluster_name(snapshot, &vs.namespace, destination));
                }
                let mut reply = match target {
                    Target::Pods { service, pods, .. } => {
                        let pod_request = PodRequest {
                            method: method.to_string(),
                            host: upstream_host,
                            path: full_path.split('?').next().unwrap_or_default().to_string(),
                            headers: upstream,
                        };
                        apps::route_to_pods(
                            snapshot,
                            &service,
                            &pods,
                            &pod_request,
                            &route.retries,
                            route.timeout,
                            &mut rng,
                        )
                    }
                    Target::External { endpoints, .. } => {
                        return Plan::Forward(Box::new(Forward {
                            endpoints,
                            path: full_path,
                            headers: upstream,
                            retries: route.retries.clone(),
                            timeout: route.timeout,
                            response: vec![
                                destination.headers.response.clone(),
                                route.headers.response.clone(),
                            ],
                            delay,
                        }));
                    }
                    Target::Missing(_) => Reply::cluster_not_found(),
                };
                apply_response(&[&destination.headers.response], &mut reply.headers);
                reply
            }
        };
        apply_response(&[&route.headers.response], &mut reply.headers);
        reply.delay += delay;
        Plan::Answer(reply)
    }

    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let started = Instant::now();
        let published = self.snapshots.borrow().clone();
        // The load balancer picks one of the Service's Ready gateway pods, which routes by
        // the configuration it has received so far and counts what it sends upstream.
        let pod = published.services.get(&self.service).and_then(|service| {
            let pods: Vec<&PodInfo> = service
                .ready_pods
                .iter()
                .filter_map(|i| published.pods.get(*i))
                .filter(|p| p.gateway_proxy)
                .collect();
            (!pods.is_empty()).then(|| {
                let pod = pods[rand::rng().random_range(0..pods.len())];
                (pod.namespace.clone(), pod.name.clone())
            })
        });
        let snapshot = pod
            .as_ref()
            .and_then(|pod| self.proxies.view(pod))
            .unwrap_or(published);
        let mut upstream = None;
        let plan = self.plan(&snapshot, &request, &mut upstream);
        let (status, content_type, headers, body, delay) = match plan {
            Plan::Drop => return Err(std::io::Error::other("connection dropped (fault injected)")),
            Plan::Answer(reply) => (
                reply.status,
                reply.content_type.as_bytes().to_vec(),
                reply
                    .headers
                    .into_iter()
                    .map(|(n, v)| (n, v.into_bytes()))
                    .collect::<Vec<_>>(),
                Bytes::from(reply.body),
                reply.delay,
            ),
            Plan::Forward(forward) => {
                let (parts, body) = request.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let mut headers = http::HeaderMap::new();
                for (name, value) in &forward.headers {
                    if let (Ok(name), Ok(value)) = (
                        http::HeaderName::from_bytes(name.as_bytes()),
                        http::HeaderValue::from_str(value),
                    ) {
                        headers.append(name, value);
                    }
                }
                let answer = self
                    .forwarder
                    .forward_with_retries(
                        &forward.endpoints,
                        &parts.method,
                        &forward.path,
                        headers,
                        body,
                        &forward.retries,
                        forward.timeout,
                    )
                    .await;
                let content_type = answer
                    .headers
                    .iter()
                    .find(|(n, _)| n == "content-type")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let mut text_headers: Vec<(String, String)> = answer
                    .headers
                    .iter()
                    .filter(|(n, _)| n != "content-type" && n != "server")
                    .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect();
                let operations: Vec<&HeaderOperations> = forward.response.iter().collect();
                apply_response(&operations, &mut text_headers);
                let headers = text_headers
                    .into_iter()
                    .map(|(n, v)| (n, v.into_bytes()))
                    .collect();
                (
                    answer.status,
                    content_type,
                    headers,
                    answer.body,
                    forward.delay,
                )
            }
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let (Some(pod), Some(cluster)) = (&pod, &upstream) {
            self.proxies.count(pod, cluster, status);
        }
        let mut response = Response::builder()
            .status(status)
            .header("server", "istio-envoy")
            .header(
                "x-envoy-upstream-service-time",
                started.elapsed().as_millis().to_string(),
            );
        if !content_type.is_empty() {
            response = response.header("content-type", content_type);
        }
        for (name, value) in headers {
            response = response.header(name, value);
        }
        response
            .body(Full::new(body))
            .map_err(std::io::Error::other)
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    state: Arc<Listener>,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| state.clone().handle(request));
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = connection => {}
            }
        });
    }
}

/// Binds `ip:port`, or a free port on `ip` when that fails or `force_mapping` is set.
async fn bind(
    ip: &str,
    port: u16,
    force_mapping: bool,
) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    if !force_mapping && let Ok(listener) = tokio::net::TcpListener::bind((ip, port)).await {
        let address = listener.local_addr()?;
        return Ok((listener, address));
    }
    let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

/// Settings of a cluster's gateway listeners.
pub struct GatewaySettings {
    /// Cluster name.
    pub cluster: String,
    /// Serve every port on a free port and publish the mapping, even when the real port could
    /// be bound (to exercise the mapping).
    pub force_mapping: bool,
    /// The environment's port mappings (written here).
    pub ports: PortMap,
    /// Told about the listeners after every change.
    pub observer: ListenerObserver,
    /// The gateway pods' configurations and counters.
    pub proxies: Arc<Proxies>,
}

/// Keeps one listener per load balancer port of the published snapshot, until `cancel`.
pub async fn run(
    settings: GatewaySettings,
    mut snapshots: watch::Receiver<Arc<MeshSnapshot>>,
    forwarder: Arc<Forwarder>,
    cancel: CancellationToken,
) {
    let mut open: BTreeMap<(String, u16, Key), (CancellationToken, ListenerInfo)> = BTreeMap::new();
    loop {
        let desired = snapshots.borrow_and_update().listeners();
        let mut changed = false;
        let wanted: std::collections::BTreeSet<_> = desired.iter().cloned().collect();
        let stale: Vec<_> = open
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for key in stale {
            if let Some((token, info)) = open.remove(&key) {
                token.cancel();
                settings
                    .ports
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&info.address);
                changed = true;
            }
        }
        let mut retry = false;
        for key in desired {
            if open.contains_key(&key) {
                continue;
            }
            let (ip, port, service) = key.clone();
            match bind(&ip, port, settings.force_mapping).await {
                Ok((listener, bound)) => {
                    let address = format!("{ip}:{port}");
                    let bound = bound.to_string();
                    // Recorded even when not mapped: an identity entry replaces a stale
                    // mapping an earlier environment in this process left for the address.
                    settings
                        .ports
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(address.clone(), bound.clone());
                    let token = cancel.child_token();
                    let state = Arc::new(Listener {
                        service: service.clone(),
                        port,
                        snapshots: snapshots.clone(),
                        forwarder: forwarder.clone(),
                        proxies: settings.proxies.clone(),
                    });
                    tokio::spawn(accept(listener, state, token.clone()));
                    let info = ListenerInfo {
                        cluster: settings.cluster.clone(),
                        service,
                        address,
                        bound,
                    };
                    open.insert(key, (token, info));
                    changed = true;
                }
                Err(error) => {
                    tracing::warn!("cannot listen on {ip}:{port}: {error}");
                    retry = true;
                }
            }
        }
        if changed {
            (settings.observer)(
                &settings.cluster,
                open.values().map(|(_, info)| info.clone()).collect(),
            );
        }
        let pause = if retry {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = snapshots.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(pause) => {}
        }
    }
    for (token, _) in open.values() {
        token.cancel();
    }
}
