//! What the pods answer, without I/O. Pods of Services with bookinfo's app labels behave
//! like bookinfo (productpage calls details and reviews through the mesh's routing, reviews v2
//! and v3 call ratings); pods labelled `app: echo`, and any other pod, run the echo app
//! ([`echo`]). Service faults ([`super::faults`]) apply to every call, and the latency they
//! add is reported rather than slept, so callers decide how to wait. [`route_to_pods`] is
//! Envoy's router in front of them: retries and timeouts.

use std::time::Duration;

use rand::Rng;
use serde_json::{Map, Value, json};

use super::bookinfo::{self, Ratings};
use super::routing::{RequestInfo, Target, choose_weighted, mesh_route, resolve};
use super::snapshot::{Destination, MeshSnapshot, PodInfo, RetryPolicy, RouteAction};

/// An answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
    /// Time the answer takes (injected latency, along the whole call chain).
    pub delay: Duration,
    /// Extra headers, lower-case names (`location` of redirects, route header operations).
    pub headers: Vec<(String, String)>,
    /// The upstream reset the connection before answering (Envoy then answers 503 itself).
    pub reset: bool,
}

impl Reply {
    /// An answer with a body and no delay.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type,
            body: body.into(),
            delay: Duration::ZERO,
            headers: Vec::new(),
            reset: false,
        }
    }

    fn json(value: &Value) -> Reply {
        Reply::new(200, "application/json", value.to_string())
    }

    /// Envoy's answer when no endpoint can serve: `503 no healthy upstream`.
    pub fn no_healthy_upstream() -> Reply {
        Reply::new(503, "text/plain", "no healthy upstream")
    }

    /// Envoy's answer when the route names a cluster it does not have (a host nothing
    /// defines, a subset no DestinationRule defines): `503` with an empty body (response flag
    /// `NC`, the router's `cluster_not_found_response_code`).
    pub fn cluster_not_found() -> Reply {
        Reply::new(503, "text/plain", "")
    }

    /// Envoy's answer when the upstream reset the connection.
    pub fn upstream_reset() -> Reply {
        let mut reply = Reply::new(
            503,
            "text/plain",
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        );
        reply.reset = true;
        reply
    }

    /// Envoy's answer when the route's timeout (or the last try's) expired: `504 upstream
    /// request timeout`.
    pub fn upstream_timeout() -> Reply {
        Reply::new(504, "text/plain", "upstream request timeout")
    }

    fn not_found() -> Reply {
        Reply::new(
            404,
            "text/html; charset=utf-8",
            "<!doctype html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n",
        )
    }
}

/// A request as a pod receives it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodRequest {
    /// `GET`, …
    pub method: String,
    /// The Host header as sent (maybe with a port).
    pub host: String,
    /// The path, without the query.
    pub path: String,
    /// Headers with lower-case names, in order (a name may repeat).
    pub headers: Vec<(String, String)>,
}

impl PodRequest {
    /// A request without headers other than Host.
    pub fn new(method: &str, host: &str, path: &str) -> PodRequest {
        PodRequest {
            method: method.to_string(),
            host: host.to_string(),
            path: path.to_string(),
            headers: vec![("host".to_string(), host.to_string())],
        }
    }

    /// Replaces header `name` (lower case).
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_string(), value.to_string()));
        if name == "host" {
            self.host = value.to_string();
        }
    }
}

fn product_id(rest: &str) -> Option<i64> {
    rest.split('/').next().and_then(|id| id.parse().ok())
}

/// Serves a request on a pod of a Service (`service` names it: its faults apply), choosing
/// among `pods` at random; `503 no healthy upstream` when there is none.
pub fn serve_service(
    snapshot: &MeshSnapshot,
    service: &(String, String),
    pods: &[usize],
    request: &PodRequest,
    rng: &mut impl Rng,
) -> Reply {
    if pods.is_empty() {
        return Reply::no_healthy_upstream();
    }
    let pod = pods[rng.random_range(0..pods.len())];
    serve_service_pod(snapshot, service, pod, request, rng)
}

/// Serves a request on pod `pod` (an index into the snapshot's pods) of a Service, whose
/// faults apply.
pub fn serve_service_pod(
    snapshot: &MeshSnapshot,
    service: &(String, String),
    pod: usize,
    request: &PodRequest,
    rng: &mut impl Rng,
) -> Reply {
    let Some(pod) = snapshot.pods.get(pod) else {
        return Reply::no_healthy_upstream();
    };
    let annotated = snapshot
        .services
        .get(service)
        .map(|s| s.faults.clone())
        .unwrap_or_default();
    let live = &snapshot.live_faults;
    let faults = live.effective(service, &annotated, false);
    let delay = faults.latency(live.draw());
    if faults.drop_ratio > 0.0 && live.draw() < faults.drop_ratio {
        let mut reply = Reply::upstream_reset();
        reply.delay = delay;
        return reply;
    }
    if faults.error_ratio > 0.0 && live.draw() < faults.error_ratio {
        let mut reply = Reply::new(
            503,
            "text/plain",
            "service unavailable (fault injected with sim.meshshift.io/http-503-ratio)",
        );
        reply.delay = delay;
        return reply;
    }
    let mut reply = serve_pod(snapshot, pod, request, rng);
    reply.delay += delay;
    reply
}

/// Envoy's retry back-off: base interval 25 ms, the n-th retry waiting a random time below
/// `(2^n - 1) × 25 ms`, at most 250 ms.
pub fn retry_backoff(retry: u32, draw: f64) -> Duration {
    let base = Duration::from_millis(25);
    let ceiling = base
        .saturating_mul((1u32 << retry.min(10)).saturating_sub(1))
        .min(base * 10);
    ceiling.mul_f64(draw.clamp(0.0, 1.0))
}

/// A request routed to `pods` of `service`, as Envoy's router serves it: each try goes to a
/// pod not tried before while there is one (Istio's `previous_hosts` predicate) and carries
/// `x-envoy-attempt-count`; an answer or a reset the policy retries is tried again after
/// Envoy's back-off; a try slower than `perTryTimeout` is abandoned (and retried as a reset
/// is); when `timeout` (the whole route's, retries included) or the last try's timeout
/// expires the answer is `504 upstream request timeout`. The reply's delay is the time all
/// of it took.
pub fn route_to_pods(
    snapshot: &MeshSnapshot,
    service: &(String, String),
    pods: &[usize],
    request: &PodRequest,
    retries: &RetryPolicy,
    timeout: Option<Duration>,
    rng: &mut impl Rng,
) -> Reply {
    if pods.is_empty() {
        return Reply::no_healthy_upstream();
    }
    let mut elapsed = Duration::ZERO;
    let mut tried: Vec<usize> = Vec::new();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let fresh: Vec<usize> = pods
            .iter()
            .copied()
            .filter(|p| !tried.contains(p))
            .collect();
        let candidates = if fresh.is_empty() { pods } else { &fresh };
        let pod = candidates[rng.random_range(0..candidates.len())];
        tried.push(pod);
        let mut try_request = request.clone();
        try_request.set_header("x-envoy-attempt-count", &attempt.to_string());
        let mut reply = serve_service_pod(snapshot, service, pod, &try_request, rng);
        let remaining = timeout.map(|t| t.saturating_sub(elapsed));
        let limit = match (retries.per_try_timeout, remaining) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let retry_left = attempt <= retries.attempts;
        match limit {
            Some(limit) if reply.delay > limit => {
                elapsed += limit;
                let route_expired = remaining.is_some_and(|r| limit >= r);
                if route_expired || !retry_left || !retries.retries_reset() {
                    let mut reply = Reply::upstream_timeout();
                    reply.delay = elapsed;
                    return reply;
                }
            }
            _ => {
                elapsed += reply.delay;
                let retried = retry_left
                    && if reply.reset {
                        retries.retries_reset()
                    } else {
                        retries.retries_status(reply.status)
                    };
                if !retried {
                    reply.delay = elapsed;
                    return reply;
                }
            }
        }
        elapsed += retry_backoff(attempt, rng.random());
        if let Some(timeout) = timeout
            && elapsed >= timeout
        {
            let mut reply = Reply::upstream_timeout();
            reply.delay = timeout;
            return reply;
        }
    }
}

/// A call from a pod in `namespace` to `host:port`, through the sidecar: a VirtualService
/// bound to `mesh` for the host decides the destination (with its retries, timeout and
/// header operations), else the Service itself with Istio's default retry policy.
pub fn call(
    snapshot: &MeshSnapshot,
    namespace: &str,
    host: &str,
    port: u16,
    path: &str,
    rng: &mut impl Rng,
) -> Reply {
    let authority = format!("{host}:{port}");
    let mut request = PodRequest::new("GET", &authority, path);
    let info = RequestInfo {
        method: "GET",
        host,
        path,
        headers: &[],
        port,
    };
    let default_policy = RetryPolicy::default();
    let (destination, retries, timeout) = match mesh_route(snapshot, namespace, host, &info) {
        Some((vs, route)) => match &route.action {
            RouteAction::Destinations(destinations) => {
                match choose_weighted(destinations, rng.random()) {
                    Some(d) => {
                        d.headers.request.apply(&mut request.headers);
                        route.headers.request.apply(&mut request.headers);
                        (
                            resolve(snapshot, &vs.namespace, d),
                            &route.retries,
                            route.timeout,
                        )
                    }
                    None => return Reply::no_healthy_upstream(),
                }
            }
            RouteAction::Direct { status, body } => {
                return Reply::new(*status, "text/plain", body.clone());
            }
            RouteAction::Redirect { .. } => return Reply::new(301, "text/plain", ""),
        },
        None => (
            resolve(
                snapshot,
                namespace,
                &Destination {
                    host: host.to_string(),
                    port: Some(port),
                    subset: None,
                    weight: 0,
                    headers: Default::default(),
                },
            ),
            &default_policy,
            None,
        ),
    };
    match destination {
        Target::Pods { service, pods, .. } => {
            route_to_pods(snapshot, &service, &pods, &request, retries, timeout, rng)
        }
        // Pods do not leave the simulated cluster.
        Target::External { .. } => Reply::no_healthy_upstream(),
        Target::Missing(_) => Reply::cluster_not_found(),
    }
}

/// The echo app: `200` with a JSON body describing the request as the pod received it. The
/// fields are those Istio's echo test app (`pkg/test/echo/fields.go`, image `istio/app`)
/// reports for an HTTP request, as one JSON object: `Hostname` → `pod`, `Namespace` →
/// `namespace`, `Cluster` → `cluster`, `ServiceVersion` → `version` (the pod's `version`
/// label), `Method` → `method`, `Host` → `host`, the path of `URL` → `path` (without the
/// query), each `RequestHeader` → `headers` (values that repeat joined with `,`).
pub fn echo(snapshot: &MeshSnapshot, pod: &PodInfo, request: &PodRequest) -> Reply {
    let mut headers = Map::new();
    for (name, value) in &request.headers {
        match headers.get_mut(name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), json!(value));
            }
        }
    }
    Reply::json(&json!({
        "pod": pod.name,
        "namespace": pod.namespace,
        "cluster": snapshot.cluster,
        "version": pod.labels.get("version").map(String::as_str).unwrap_or_default(),
        "method": request.method,
        "host": request.host,
        "path": request.path,
        "headers": headers,
    }))
}

/// What `pod` answers to `request`.
pub fn serve_pod(
    snapshot: &MeshSnapshot,
    pod: &PodInfo,
    request: &PodRequest,
    rng: &mut impl Rng,
) -> Reply {
    let app = pod
        .labels
        .get("app")
        .map(String::as_str)
        .unwrap_or_default();
    let path = request.path.as_str();
    match app {
        "productpage" => productpage(snapshot, pod, path, rng),
        "details" => match path.strip_prefix("/details/").and_then(product_id) {
            Some(id) => Reply::json(&bookinfo::details_json(id)),
            None if path == "/health" => Reply::json(&json!({"status": "Details is healthy"})),
            None => Reply::not_found(),
        },
        "ratings" => match path.strip_prefix("/ratings/").and_then(product_id) {
            Some(id) => Reply::json(&bookinfo::ratings_json(id)),
            None if path == "/health" => Reply::json(&json!({"status": "Ratings is healthy"})),
            None => Reply::not_found(),
        },
        "reviews" => match path.strip_prefix("/reviews/").and_then(product_id) {
            Some(id) => reviews(snapshot, pod, id, rng),
            None if path == "/health" => Reply::json(&json!({"status": "Reviews is healthy"})),
            None => Reply::not_found(),
        },
        // `echo`, and whatever else runs in the simulator.
        _ => echo(snapshot, pod, request),
    }
}

fn reviews(snapshot: &MeshSnapshot, pod: &PodInfo, id: i64, rng: &mut impl Rng) -> Reply {
    let version = pod
        .labels
        .get("version")
        .map(String::as_str)
        .unwrap_or("v1");
    let color = match version {
        "v2" => Some("black"),
        "v3" => Some("red"),
        _ => None,
    };
    let mut delay = Duration::ZERO;
    let ratings = match color {
        None => Ratings::None,
        Some(color) => {
            let answer = call(
                snapshot,
                &pod.namespace,
                "ratings",
                9080,
                &format!("/ratings/{id}"),
                rng,
            );
            delay += answer.delay;
            if answer.status == 200 {
                Ratings::Stars(color)
            } else {
                Ratings::Unavailable
            }
        }
    };
    let mut reply = Reply::json(&bookinfo::reviews_json(id, &pod.name, &ratings));
    reply.delay = delay;
    reply
}

fn productpage(snapshot: &MeshSnapshot, pod: &PodInfo, path: &str, rng: &mut impl Rng) -> Reply {
    let namespace = pod.namespace.as_str();
    let mut delay = Duration::ZERO;
    let mut fetch = |host: &str, path: &str, tries: usize, rng: &mut _| {
        for _ in 0..tries {
            let answer = call(snapshot, namespace, host, 9080, path, rng);
            delay += answer.delay;
            if answer.status == 200 {
                return serde_json::from_str::<Value>(&answer.body).ok();
            }
        }
        None
    };
    let mut reply = match path {
        "/" | "/index.html" => Reply::new(200, "text/html; charset=utf-8", bookinfo::index_page()),
        "/health" => Reply::new(200, "text/plain; charset=utf-8", "Product page is healthy"),
        "/productpage" => {
            let details = fetch("details", "/details/0", 1, rng);
            let reviews = fetch("reviews", "/reviews/0", 2, rng);
            Reply::new(
                200,
                "text/html; charset=utf-8",
                bookinfo::product_page(details.as_ref(), reviews.as_ref()),
            )
        }
        "/api/v1/products" => Reply::new(200, "application/json", bookinfo::products_json()),
        "/login" | "/logout" => {
            let mut reply = Reply::new(302, "text/html; charset=utf-8", "");
            reply
                .headers
                .push(("location".into(), "/productpage".into()));
            reply
        }
        other if other.starts_with("/static/") => Reply::new(200, "text/css; charset=utf-8", ""),
        other => match other.strip_prefix("/api/v1/products/") {
            Some(rest) => {
                let Some(id) = product_id(rest) else {
                    return Reply::not_found();
                };
                let (host, path, error) = match rest.split_once('/').map(|(_, tail)| tail) {
                    None => (
                        "details",
                        format!("/details/{id}"),
                        "Sorry, product details are currently unavailable for this book.",
                    ),
                    Some("reviews") => (
                        "reviews",
                        format!("/reviews/{id}"),
                        "Sorry, product reviews are currently unavailable for this book.",
                    ),
                    Some("ratings") => (
                        "ratings",
                        format!("/ratings/{id}"),
                        "Sorry, product ratings are currently unavailable for this book.",
                    ),
                    Some(_) => return Reply::not_found(),
                };
                match fetch(host, &path, 1, rng) {
                    Some(value) => Reply::json(&value),
                    None => {
                        Reply::new(503, "application/json", json!({"error": error}).to_string())
                    }
                }
            }
            None => Reply::not_found(),
        },
    };
    reply.delay += delay;
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::snapshot::MeshObjects;
    use rand::SeedableRng;

    fn demo(reviews_annotations: Value, vs: Option<Value>) -> MeshSnapshot {
        let service = |name: &str, annotations: Value| {
            json!({"metadata": {"namespace": "bookinfo", "name": name, "annotations": annotations},
                                                              "spec": {"selector": {"app": name}, "ports": [{"port": 9080}]}})
        };
        let pod = |name: &str, app: &str, version: &str| {
            json!({
            "metadata": {"namespace": "bookinfo", "name": name, "labels": {"app": app, "version": version}},
            "spec": {"containers": [{"name": app}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        };
        MeshSnapshot::build(
            "sim-source",
            false,
            &MeshObjects {
                services: vec![
                    service("productpage", json!({})),
                    service("details", json!({})),
                    service("reviews", reviews_annotations),
                    service("ratings", json!({})),
                ],
                pods: vec![
                    pod("productpage-v1-a", "productpage", "v1"),
                    pod("details-v1-a", "details", "v1"),
                    pod("reviews-v1-a", "reviews", "v1"),
                    pod("reviews-v3-c", "reviews", "v3"),
                    pod("ratings-v1-a", "ratings", "v1"),
                ],
                virtual_services: vs.into_iter().collect(),
                destination_rules: vec![
                    json!({"metadata": {"namespace": "bookinfo", "name": "reviews"},
                "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v3", "labels": {"version": "v3"}}]}}),
                ],
                ..MeshObjects::default()
            },
        )
    }

    #[test]
    fn productpage_follows_the_mesh_routing_of_reviews() {
        let vs = json!({"metadata": {"namespace": "bookinfo", "name": "reviews"},
                        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v3"}}]}]}});
        let snapshot = demo(json!({}), Some(vs));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let pods = snapshot.services[&("bookinfo".to_string(), "productpage".to_string())]
            .ready_pods
            .clone();
        for _ in 0..20 {
            let reply = serve_service(
                &snapshot,
                &("bookinfo".into(), "productpage".into()),
                &pods,
                &get("/productpage"),
                &mut rng,
            );
            assert_eq!(reply.status, 200);
            assert_eq!(
                crate::mesh::bookinfo::tests::reviews_pod(&reply.body).as_deref(),
                Some("reviews-v3-c")
            );
            assert!(reply.body.contains("text-red-500"));
        }
    }

    #[test]
    fn failing_reviews_show_the_error_and_latency_adds_up() {
        let snapshot = demo(
            json!({"sim.meshshift.io/http-503-ratio": "1", "sim.meshshift.io/latency-ms": "10"}),
            None,
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let page = &snapshot.pods[0];
        let reply = serve_pod(&snapshot, page, &get("/productpage"), &mut rng);
        assert_eq!(reply.status, 200);
        assert!(reply.body.contains("Error fetching product reviews"));
        // productpage tries twice; the sidecar tries each call three times (Istio's default
        // retries on 503), 10 ms each, with up to 25 and 75 ms of back-off.
        assert!(
            reply.delay >= Duration::from_millis(60) && reply.delay <= Duration::from_millis(260),
            "{:?}",
            reply.delay
        );
        let api = serve_pod(
            &snapshot,
            page,
            &get("/api/v1/products/0/reviews"),
            &mut rng,
        );
        assert_eq!(api.status, 503);
        assert_eq!(
            serve_pod(&snapshot, page, &get("/health"), &mut rng).body,
            "Product page is healthy"
        );
        assert_eq!(
            serve_pod(&snapshot, page, &get("/api/v1/products/0"), &mut rng).status,
            200
        );
        let echo = serve_pod(
            &snapshot,
            &PodInfo {
                namespace: "x".into(),
                name: "web-1".into(),
                labels: Default::default(),
                ready: true,
                gateway_proxy: false,
                propagation: None,
            },
            &get("/hi"),
            &mut rng,
        );
        assert!(echo.body.contains("\"pod\":\"web-1\"") && echo.body.contains("sim-source"));
    }

    fn get(path: &str) -> PodRequest {
        PodRequest::new("GET", "productpage:9080", path)
    }

    #[test]
    fn the_echo_app_describes_the_request() {
        let snapshot = demo(json!({}), None);
        let pod = PodInfo {
            namespace: "shop".into(),
            name: "shop-v2-abc".into(),
            labels: [("app", "echo"), ("version", "v2")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ready: true,
            gateway_proxy: false,
            propagation: None,
        };
        let mut request = PodRequest::new("POST", "shop.example.com", "/api/cart");
        request.headers.push(("x-tag".into(), "a".into()));
        request.headers.push(("x-tag".into(), "b".into()));
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let reply = serve_pod(&snapshot, &pod, &request, &mut rng);
        assert_eq!(reply.status, 200);
        let body: Value = serde_json::from_str(&reply.body).expect("JSON");
        assert_eq!(
            body,
            json!({"pod": "shop-v2-abc", "namespace": "shop", "cluster": "sim-source", "version": "v2",
                   "method": "POST", "host": "shop.example.com", "path": "/api/cart",
                   "headers": {"host": "shop.example.com", "x-tag": "a,b"}})
        );
    }

    fn echo_snapshot(annotations: Value) -> MeshSnapshot {
        let pod = |name: &str| {
            json!({"metadata": {"namespace": "shop", "name": name, "labels": {"app": "echo"}},
                   "spec": {"containers": [{"name": "echo"}]},
                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        };
        MeshSnapshot::build(
            "sim-source",
            false,
            &MeshObjects {
                services: vec![
                    json!({"metadata": {"namespace": "shop", "name": "shop", "annotations": annotations},
                                      "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80}]}}),
                ],
                pods: vec![pod("shop-a"), pod("shop-b"), pod("shop-c")],
                ..MeshObjects::default()
            },
        )
    }

    #[test]
    fn retries_go_to_other_pods_and_count_attempts() {
        let snapshot = echo_snapshot(json!({"sim.meshshift.io/http-503-ratio": "1"}));
        let service = ("shop".to_string(), "shop".to_string());
        let pods = snapshot.services[&service].ready_pods.clone();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let request = PodRequest::new("GET", "shop.example.com", "/");
        let policy = |retry_on: &str, attempts: u32| {
            RetryPolicy::of(Some(&json!({"attempts": attempts, "retryOn": retry_on})))
        };
        // Every try fails: the last 503 is the answer, after 1 + 3 tries with back-off.
        let reply = route_to_pods(
            &snapshot,
            &service,
            &pods,
            &request,
            &policy("5xx", 3),
            None,
            &mut rng,
        );
        assert_eq!(reply.status, 503);
        assert!(reply.delay <= Duration::from_millis(25 + 75 + 175));
        // Healthy pods answer the first try.
        let healthy = echo_snapshot(json!({}));
        let reply = route_to_pods(
            &healthy,
            &service,
            &pods,
            &request,
            &policy("5xx", 3),
            None,
            &mut rng,
        );
        let body: Value = serde_json::from_str(&reply.body).expect("JSON");
        assert_eq!(body["headers"]["x-envoy-attempt-count"], "1");
        // Half the answers fail: with 3 retries on 5xx about 1 in 16 requests fails, without
        // retries about half.
        let flaky = echo_snapshot(json!({"sim.meshshift.io/http-503-ratio": "0.5"}));
        let failures = |policy: &RetryPolicy, rng: &mut rand::rngs::StdRng| {
            (0..1000)
                .filter(|_| {
                    route_to_pods(&flaky, &service, &pods, &request, policy, None, rng).status
                        == 503
                })
                .count()
        };
        let retried = failures(&policy("5xx", 3), &mut rng);
        assert!((30..=100).contains(&retried), "{retried}");
        let not_retried = failures(&RetryPolicy::none(), &mut rng);
        assert!((430..=570).contains(&not_retried), "{not_retried}");
        // gateway-error retries 503 too; retriable-4xx does not.
        assert!(failures(&policy("gateway-error", 3), &mut rng) <= 100);
        assert!(failures(&policy("retriable-4xx", 3), &mut rng) >= 430);
        // Istio's default policy: 2 retries of 503.
        let default = failures(&RetryPolicy::default(), &mut rng);
        assert!((80..=180).contains(&default), "{default}");
    }

    #[test]
    fn timeouts_answer_504_as_envoy_does() {
        let slow = echo_snapshot(json!({"sim.meshshift.io/latency-ms": "300"}));
        let service = ("shop".to_string(), "shop".to_string());
        let pods = slow.services[&service].ready_pods.clone();
        let request = PodRequest::new("GET", "shop.example.com", "/");
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let reply = route_to_pods(
            &slow,
            &service,
            &pods,
            &request,
            &RetryPolicy::none(),
            Some(Duration::from_millis(100)),
            &mut rng,
        );
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (504, "upstream request timeout")
        );
        assert_eq!(reply.delay, Duration::from_millis(100));
        // Per-try timeouts are retried on 5xx; the route's timeout bounds them all.
        let per_try = RetryPolicy::of(Some(
            &json!({"attempts": 5, "perTryTimeout": "50ms", "retryOn": "5xx"}),
        ));
        let reply = route_to_pods(
            &slow,
            &service,
            &pods,
            &request,
            &per_try,
            Some(Duration::from_millis(120)),
            &mut rng,
        );
        assert_eq!(reply.status, 504);
        assert_eq!(reply.delay, Duration::from_millis(120));
        // Without a route timeout: every try times out after 50 ms.
        let reply = route_to_pods(&slow, &service, &pods, &request, &per_try, None, &mut rng);
        assert_eq!(reply.status, 504);
        assert!(
            reply.delay >= Duration::from_millis(300),
            "{:?}",
            reply.delay
        );
        // Fast enough: the answer.
        let reply = route_to_pods(
            &slow,
            &service,
            &pods,
            &request,
            &RetryPolicy::none(),
            Some(Duration::from_secs(1)),
            &mut rng,
        );
        assert_eq!(
            (reply.status, reply.delay),
            (200, Duration::from_millis(300))
        );
    }
}
