//! What the pods answer, without I/O. Pods of Services with bookinfo's app labels behave
//! like bookinfo (productpage calls details and reviews through the mesh's routing, reviews v2
//! and v3 call ratings); any other pod echoes what it received. Service faults
//! ([`super::faults`]) apply to every call, and the latency they add is reported rather than
//! slept, so callers decide how to wait.

use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

use super::bookinfo::{self, Ratings};
use super::routing::{RequestInfo, Target, choose_weighted, mesh_route, resolve};
use super::snapshot::{Destination, MeshSnapshot, PodInfo, RouteAction};

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
    /// Extra headers (`location` of redirects).
    pub headers: Vec<(&'static str, String)>,
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
        }
    }

    fn json(value: &Value) -> Reply {
        Reply::new(200, "application/json", value.to_string())
    }

    /// Envoy's answer when no endpoint can serve: `503 no healthy upstream`.
    pub fn no_healthy_upstream() -> Reply {
        Reply::new(503, "text/plain", "no healthy upstream")
    }

    /// Envoy's answer when the upstream reset the connection.
    pub fn upstream_reset() -> Reply {
        Reply::new(
            503,
            "text/plain",
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        )
    }

    fn not_found() -> Reply {
        Reply::new(
            404,
            "text/html; charset=utf-8",
            "<!doctype html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n",
        )
    }
}

fn product_id(rest: &str) -> Option<i64> {
    rest.split('/').next().and_then(|id| id.parse().ok())
}

/// Serves a request on a pod of a Service (`service` names it: its faults apply), choosing
/// among `pods` at random. `None` when no pod is Ready.
pub fn serve_service(
    snapshot: &MeshSnapshot,
    service: &(String, String),
    pods: &[usize],
    method: &str,
    path: &str,
    rng: &mut impl Rng,
) -> Reply {
    if pods.is_empty() {
        return Reply::no_healthy_upstream();
    }
    let pod = &snapshot.pods[pods[rng.random_range(0..pods.len())]];
    let faults = snapshot
        .services
        .get(service)
        .map(|s| s.faults.clone())
        .unwrap_or_default();
    let delay = faults.latency(rng.random());
    if faults.drop_ratio > 0.0 && rng.random::<f64>() < faults.drop_ratio {
        let mut reply = Reply::upstream_reset();
        reply.delay = delay;
        return reply;
    }
    if faults.error_ratio > 0.0 && rng.random::<f64>() < faults.error_ratio {
        let mut reply = Reply::new(
            503,
            "text/plain",
            "service unavailable (fault injected with sim.meshshift.io/http-503-ratio)",
        );
        reply.delay = delay;
        return reply;
    }
    let mut reply = serve_pod(snapshot, pod, method, path, rng);
    reply.delay += delay;
    reply
}

/// A call from a pod in `namespace` to `host:port`, through the sidecar: a VirtualService
/// bound to `mesh` for the host decides the destination, else the Service itself.
pub fn call(
    snapshot: &MeshSnapshot,
    namespace: &str,
    host: &str,
    port: u16,
    path: &str,
    rng: &mut impl Rng,
) -> Reply {
    let request = RequestInfo {
        method: "GET",
        host,
        path,
        headers: &[],
        port,
    };
    let destination = match mesh_route(snapshot, namespace, host, &request) {
        Some((vs, route)) => match &route.action {
            RouteAction::Destinations(destinations) => {
                match choose_weighted(destinations, rng.random()) {
                    Some(d) => resolve(snapshot, &vs.namespace, d),
                    None => return Reply::no_healthy_upstream(),
                }
            }
            RouteAction::Direct { status, body } => {
                return Reply::new(*status, "text/plain", body.clone());
            }
            RouteAction::Redirect { .. } => return Reply::new(301, "text/plain", ""),
        },
        None => resolve(
            snapshot,
            namespace,
            &Destination {
                host: host.to_string(),
                port: Some(port),
                subset: None,
                weight: 0,
            },
        ),
    };
    match destination {
        Target::Pods { service, pods, .. } => {
            serve_service(snapshot, &service, &pods, "GET", path, rng)
        }
        // Pods do not leave the simulated cluster.
        Target::External { .. } | Target::Missing(_) => Reply::no_healthy_upstream(),
    }
}

/// What `pod` answers to `method path`.
pub fn serve_pod(
    snapshot: &MeshSnapshot,
    pod: &PodInfo,
    method: &str,
    path: &str,
    rng: &mut impl Rng,
) -> Reply {
    let app = pod
        .labels
        .get("app")
        .map(String::as_str)
        .unwrap_or_default();
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
        _ => Reply::json(
            &json!({"cluster": snapshot.cluster, "namespace": pod.namespace,
                                 "pod": pod.name, "method": method, "path": path}),
        ),
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
            reply.headers.push(("location", "/productpage".into()));
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
                "GET",
                "/productpage",
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
        let reply = serve_pod(&snapshot, page, "GET", "/productpage", &mut rng);
        assert_eq!(reply.status, 200);
        assert!(reply.body.contains("Error fetching product reviews"));
        assert_eq!(
            reply.delay,
            Duration::from_millis(20),
            "two tries of 10 ms each"
        );
        let api = serve_pod(
            &snapshot,
            page,
            "GET",
            "/api/v1/products/0/reviews",
            &mut rng,
        );
        assert_eq!(api.status, 503);
        assert_eq!(
            serve_pod(&snapshot, page, "GET", "/health", &mut rng).body,
            "Product page is healthy"
        );
        assert_eq!(
            serve_pod(&snapshot, page, "GET", "/api/v1/products/0", &mut rng).status,
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
            },
            "GET",
            "/hi",
            &mut rng,
        );
        assert!(echo.body.contains("\"pod\":\"web-1\"") && echo.body.contains("sim-source"));
    }
}
