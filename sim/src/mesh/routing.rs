//! Routing decisions as Istio's gateways and sidecars make them, without I/O: which Gateway
//! and VirtualService route a request, which weighted destination it goes to, and which
//! Service pods or ServiceEntry endpoints serve it.

use super::snapshot::{
    Destination, HttpRoute, Key, MeshSnapshot, RequestMatch, ServiceInfo, VirtualServiceInfo,
    selects,
};

/// The parts of a request routing looks at.
#[derive(Clone, Debug)]
pub struct RequestInfo<'a> {
    /// `GET`, …
    pub method: &'a str,
    /// Host header without the port, lower case.
    pub host: &'a str,
    /// Path without the query.
    pub path: &'a str,
    /// Headers with lower-case names.
    pub headers: &'a [(String, String)],
    /// The port the listener matched (the gateway server port).
    pub port: u16,
}

/// Where a destination leads.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Ready pods of a Service (indices into the snapshot's pods), maybe limited to a subset.
    Pods {
        /// The Service.
        service: Key,
        /// The Service port.
        port: u16,
        /// The Ready pods that may serve.
        pods: Vec<usize>,
    },
    /// ServiceEntry endpoints, forwarded to over the network.
    External {
        /// The host asked for (sent as is).
        host: String,
        /// `address:port` of each endpoint.
        endpoints: Vec<(String, u16)>,
    },
    /// No Envoy cluster: no Service or ServiceEntry by that name, or a subset no
    /// DestinationRule defines.
    Missing(String),
}

/// What a gateway does with a request.
#[derive(Clone, Debug)]
pub enum GatewayDecision<'a> {
    /// No Gateway server or VirtualService route matches: 404.
    NoRoute,
    /// This route of this VirtualService matches.
    Route(&'a VirtualServiceInfo, &'a HttpRoute),
}

/// Whether `host` matches a host pattern (`*`, `*.example.com`, `example.com`).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return host.len() > suffix.len()
            && host
                .to_ascii_lowercase()
                .ends_with(&suffix.to_ascii_lowercase());
    }
    pattern.eq_ignore_ascii_case(host)
}

/// The Service a host names when written in `namespace`: `reviews`, `reviews.bookinfo`,
/// `reviews.bookinfo.svc`, `reviews.bookinfo.svc.cluster.local`.
pub fn service_key(namespace: &str, host: &str) -> Option<Key> {
    let host = host.strip_suffix(".cluster.local").unwrap_or(host);
    let host = host.strip_suffix(".svc").unwrap_or(host);
    match host.split('.').collect::<Vec<_>>().as_slice() {
        [name] if !name.is_empty() => Some((namespace.to_string(), (*name).to_string())),
        [name, ns] => Some(((*ns).to_string(), (*name).to_string())),
        _ => None,
    }
}

fn match_holds(m: &RequestMatch, request: &RequestInfo<'_>, gateway: &str) -> bool {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    m.uri.as_ref().is_none_or(|u| u.matches(request.path))
        && m.method.as_ref().is_none_or(|u| u.matches(request.method))
        && m.port.is_none_or(|p| p == request.port)
        && (m.gateways.is_empty() || m.gateways.iter().any(|g| g == gateway))
        && m.headers
            .iter()
            .all(|(name, matcher)| header(name).is_some_and(|v| matcher.matches(v)))
        && !m
            .without_headers
            .iter()
            .any(|(name, matcher)| header(name).is_some_and(|v| matcher.matches(v)))
}

/// Whether a route applies: it has no match, or one of its matches holds.
pub fn route_applies(route: &HttpRoute, request: &RequestInfo<'_>, gateway: &str) -> bool {
    route.matches.is_empty()
        || route
            .matches
            .iter()
            .any(|m| match_holds(m, request, gateway))
}

/// Picks a weighted destination with Istio's semantics: a single destination gets every
/// request whatever its weight; otherwise weights are relative, and destinations with weight
/// 0 get nothing. `draw` is a uniform random number. `None` when all weights are 0.
pub fn choose_weighted(destinations: &[Destination], draw: u64) -> Option<&Destination> {
    if destinations.len() == 1 {
        return destinations.first();
    }
    let total: u64 = destinations.iter().map(|d| u64::from(d.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut roll = draw % total;
    for destination in destinations {
        let weight = u64::from(destination.weight);
        if roll < weight {
            return Some(destination);
        }
        roll -= weight;
    }
    None
}

/// The route a gateway Service's listener chooses: Gateways selecting the Service's Ready
/// gateway pods with a server on the port (the Service's target port or its port) whose hosts
/// match, then the first matching HTTP route of the VirtualServices bound to those Gateways
/// whose hosts match.
pub fn gateway_route<'a>(
    snapshot: &'a MeshSnapshot,
    service: &ServiceInfo,
    service_port: u16,
    request: &RequestInfo<'_>,
) -> GatewayDecision<'a> {
    let Some(port) = service.ports.iter().find(|p| p.port == service_port) else {
        return GatewayDecision::NoRoute;
    };
    let pod_labels: Vec<_> = service
        .ready_pods
        .iter()
        .filter_map(|i| snapshot.pods.get(*i))
        .map(|p| &p.labels)
        .collect();
    let gateways: Vec<&str> = snapshot
        .gateways
        .iter()
        .filter(|g| pod_labels.iter().any(|labels| selects(&g.selector, labels)))
        .filter(|g| {
            g.servers.iter().any(|s| {
                (s.port == port.target_port || s.port == port.port)
                    && s.hosts.iter().any(|h| host_matches(h, request.host))
            })
        })
        .map(|g| g.id.as_str())
        .collect();
    // Envoy picks one virtual host per request, the most specific domain that matches
    // (exact, then the longest wildcard suffix, then `*`); istiod makes one virtual host of
    // every VirtualService with that host. Its routes, in the VirtualServices' creation order,
    // are tried in order; when none matches the answer is 404, whatever less specific hosts
    // would have matched.
    let candidates: Vec<(&VirtualServiceInfo, &str, (u8, usize))> = snapshot
        .virtual_services
        .iter()
        .filter_map(|vs| {
            let gateway = gateways
                .iter()
                .find(|g| vs.gateways.iter().any(|v| v == *g))?;
            let best = vs
                .hosts
                .iter()
                .filter_map(|h| host_specificity(h, request.host))
                .max()?;
            Some((vs, *gateway, best))
        })
        .collect();
    let Some(best) = candidates.iter().map(|(_, _, s)| *s).max() else {
        return GatewayDecision::NoRoute;
    };
    for (vs, gateway, _) in candidates.iter().filter(|(_, _, s)| *s == best) {
        if let Some(route) = vs.http.iter().find(|r| route_applies(r, request, gateway)) {
            return GatewayDecision::Route(vs, route);
        }
    }
    GatewayDecision::NoRoute
}

/// How specifically a host pattern matches `host`, as Envoy ranks virtual host domains:
/// exact first, then wildcards by the length of their suffix, then `*`. `None`: no match.
pub fn host_specificity(pattern: &str, host: &str) -> Option<(u8, usize)> {
    if !host_matches(pattern, host) {
        return None;
    }
    Some(if pattern == "*" {
        (0, 0)
    } else if pattern.starts_with('*') {
        (1, pattern.len())
    } else {
        (2, pattern.len())
    })
}

/// The route a sidecar in `namespace` chooses for a call to `host`: VirtualServices bound to
/// `mesh` whose hosts name the same Service (or the same external host).
pub fn mesh_route<'a>(
    snapshot: &'a MeshSnapshot,
    namespace: &str,
    host: &str,
    request: &RequestInfo<'_>,
) -> Option<(&'a VirtualServiceInfo, &'a HttpRoute)> {
    let wanted = service_key(namespace, host);
    snapshot
        .virtual_services
        .iter()
        .filter(|vs| vs.gateways.iter().any(|g| g == "mesh"))
        .filter(|vs| {
            vs.hosts
                .iter()
                .any(|h| match (&wanted, service_key(&vs.namespace, h)) {
                    (Some(wanted), Some(key)) => *wanted == key,
                    _ => host_matches(h, host),
                })
        })
        .find_map(|vs| {
            vs.http
                .iter()
                .find(|r| route_applies(r, request, "mesh"))
                .map(|r| (vs, r))
        })
}

/// Where a destination written in `namespace` leads: the Ready pods of the Service it names
/// (limited to a DestinationRule subset), or a ServiceEntry's endpoints.
pub fn resolve(snapshot: &MeshSnapshot, namespace: &str, destination: &Destination) -> Target {
    if let Some(key) = service_key(namespace, &destination.host)
        && let Some(service) = snapshot.services.get(&key)
    {
        let port = destination
            .port
            .or_else(|| service.ports.first().map(|p| p.port))
            .unwrap_or(80);
        let mut pods = service.ready_pods.clone();
        if let Some(subset) = &destination.subset {
            let labels = snapshot
                .destination_rules
                .iter()
                .filter(|dr| service_key(&dr.namespace, &dr.host).as_ref() == Some(&key))
                .flat_map(|dr| dr.subsets.iter())
                .find(|(name, _)| name == subset)
                .map(|(_, labels)| labels.clone());
            pods = match labels {
                Some(labels) => pods
                    .into_iter()
                    .filter(|i| {
                        snapshot
                            .pods
                            .get(*i)
                            .is_some_and(|p| selects(&labels, &p.labels))
                    })
                    .collect(),
                // An unknown subset is a missing Envoy cluster.
                None => return Target::Missing(format!("{}/{subset}", destination.host)),
            };
        }
        return Target::Pods {
            service: key,
            port,
            pods,
        };
    }
    for entry in &snapshot.service_entries {
        if !entry
            .hosts
            .iter()
            .any(|h| host_matches(h, &destination.host))
        {
            continue;
        }
        let (number, name) = destination
            .port
            .and_then(|p| entry.ports.iter().find(|(n, _)| *n == p))
            .or_else(|| entry.ports.first())
            .cloned()
            .unwrap_or((destination.port.unwrap_or(80), String::new()));
        let endpoints = if entry.endpoints.is_empty() && entry.resolution == "DNS" {
            vec![(destination.host.clone(), number)]
        } else {
            entry
                .endpoints
                .iter()
                .map(|e| {
                    (
                        e.address.clone(),
                        e.ports.get(&name).copied().unwrap_or(number),
                    )
                })
                .collect()
        };
        return Target::External {
            host: destination.host.clone(),
            endpoints,
        };
    }
    Target::Missing(destination.host.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::snapshot::MeshObjects;
    use serde_json::{Value, json};

    fn pod(ns: &str, name: &str, labels: Value, first: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name, "labels": labels},
               "spec": {"containers": [{"name": first}]},
               "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    }

    fn snapshot(vs_spec: Value) -> MeshSnapshot {
        let objects = MeshObjects {
            services: vec![
                json!({"metadata": {"namespace": "istio-system", "name": "gw"},
                       "spec": {"type": "LoadBalancer", "selector": {"istio": "ingressgateway"},
                                "ports": [{"name": "http2", "port": 80, "targetPort": 8080}]}}),
                json!({"metadata": {"namespace": "bookinfo", "name": "reviews"},
                       "spec": {"selector": {"app": "reviews"}, "ports": [{"port": 9080}]}}),
            ],
            pods: vec![
                pod(
                    "istio-system",
                    "gw-1",
                    json!({"istio": "ingressgateway"}),
                    "istio-proxy",
                ),
                pod(
                    "bookinfo",
                    "reviews-v1-a",
                    json!({"app": "reviews", "version": "v1"}),
                    "reviews",
                ),
                pod(
                    "bookinfo",
                    "reviews-v2-b",
                    json!({"app": "reviews", "version": "v2"}),
                    "reviews",
                ),
            ],
            gateways: vec![
                json!({"metadata": {"namespace": "bookinfo", "name": "bookinfo-gateway"},
                                  "spec": {"selector": {"istio": "ingressgateway"},
                                           "servers": [{"port": {"number": 8080}, "hosts": ["*"]}]}}),
            ],
            virtual_services: vec![
                json!({"metadata": {"namespace": "bookinfo", "name": "vs"}, "spec": vs_spec}),
            ],
            destination_rules: vec![
                json!({"metadata": {"namespace": "bookinfo", "name": "reviews"},
                                           "spec": {"host": "reviews", "subsets": [{"name": "v2", "labels": {"version": "v2"}}]}}),
            ],
            service_entries: vec![
                json!({"metadata": {"namespace": "bookinfo", "name": "target"},
                                         "spec": {"hosts": ["v2.example.com"], "resolution": "STATIC",
                                                  "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                                                  "endpoints": [{"address": "127.0.2.1"}]}}),
            ],
        };
        MeshSnapshot::build("sim-source", false, &objects)
    }

    fn request<'a>(path: &'a str, headers: &'a [(String, String)]) -> RequestInfo<'a> {
        RequestInfo {
            method: "GET",
            host: "127.0.1.1",
            path,
            headers,
            port: 8080,
        }
    }

    fn gateway_service(s: &MeshSnapshot) -> ServiceInfo {
        s.services[&("istio-system".to_string(), "gw".to_string())].clone()
    }

    #[test]
    fn gateway_routes_by_uri_and_headers() {
        let s = snapshot(
            json!({"hosts": ["*"], "gateways": ["bookinfo-gateway"], "http": [
                {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
                {"match": [{"uri": {"exact": "/productpage"}}, {"uri": {"prefix": "/static"}}], "route": [{"destination": {"host": "reviews"}}]},
                {"match": [{"uri": {"regex": "/api/v[0-9]+/.*"}}], "directResponse": {"status": 418}},
            ]}),
        );
        let service = gateway_service(&s);
        let none: Vec<(String, String)> = vec![];
        let route = |path: &str, headers: &[(String, String)]| match gateway_route(
            &s,
            &service,
            80,
            &request(path, headers),
        ) {
            GatewayDecision::Route(_, r) => Some(r.clone()),
            GatewayDecision::NoRoute => None,
        };
        assert!(route("/productpage", &none).is_some());
        assert!(route("/static/x.css", &none).is_some());
        assert!(route("/productpage2", &none).is_none());
        assert!(matches!(
            route("/api/v1/x", &none).map(|r| r.action),
            Some(crate::mesh::snapshot::RouteAction::Direct { status: 418, .. })
        ));
        let jason = vec![("end-user".to_string(), "jason".to_string())];
        let r = route("/anything", &jason).expect("header route");
        let crate::mesh::snapshot::RouteAction::Destinations(d) = r.action else {
            panic!()
        };
        let Target::Pods { pods, .. } = resolve(&s, "bookinfo", &d[0]) else {
            panic!()
        };
        assert_eq!(
            pods.iter()
                .map(|i| s.pods[*i].name.as_str())
                .collect::<Vec<_>>(),
            vec!["reviews-v2-b"]
        );
        // A different server port on the Gateway: nothing routes.
        let mut other = request("/productpage", &none);
        other.host = "bookinfo.example.com";
        assert!(matches!(
            gateway_route(&s, &service, 81, &other),
            GatewayDecision::NoRoute
        ));
    }

    #[test]
    fn weights_follow_istio_semantics() {
        let d = |host: &str, weight: u32| Destination {
            headers: Default::default(),
            host: host.into(),
            port: None,
            subset: None,
            weight,
        };
        let single = [d("a", 0)];
        assert_eq!(
            choose_weighted(&single, 7).map(|x| x.host.as_str()),
            Some("a")
        );
        let split = [d("a", 90), d("b", 10)];
        let counts = (0..100u64)
            .filter(|i| choose_weighted(&split, *i).map(|x| x.host.as_str()) == Some("b"))
            .count();
        assert_eq!(counts, 10);
        let relative = [d("a", 1), d("b", 3), d("c", 0)];
        let hits: Vec<&str> = (0..4u64)
            .filter_map(|i| choose_weighted(&relative, i))
            .map(|x| x.host.as_str())
            .collect();
        assert_eq!(hits, vec!["a", "b", "b", "b"]);
        assert!(choose_weighted(&[d("a", 0), d("b", 0)], 1).is_none());
    }

    #[test]
    fn destinations_resolve_to_services_entries_or_nothing() {
        let s = snapshot(
            json!({"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v2"}}]}]}),
        );
        let none: Vec<(String, String)> = vec![];
        let (vs, _) = mesh_route(
            &s,
            "bookinfo",
            "reviews.bookinfo.svc.cluster.local",
            &request("/reviews/0", &none),
        )
        .expect("mesh route");
        assert_eq!(vs.name, "vs");
        assert!(
            mesh_route(&s, "other", "reviews", &request("/", &none)).is_none(),
            "short names are per namespace"
        );
        let external = Destination {
            headers: Default::default(),
            host: "v2.example.com".into(),
            port: Some(80),
            subset: None,
            weight: 10,
        };
        assert_eq!(
            resolve(&s, "bookinfo", &external),
            Target::External {
                host: "v2.example.com".into(),
                endpoints: vec![("127.0.2.1".into(), 80)]
            }
        );
        let missing = Destination {
            headers: Default::default(),
            host: "nope".into(),
            port: None,
            subset: None,
            weight: 0,
        };
        assert_eq!(
            resolve(&s, "bookinfo", &missing),
            Target::Missing("nope".into())
        );
        let unknown_subset = Destination {
            headers: Default::default(),
            host: "reviews".into(),
            port: None,
            subset: Some("v9".into()),
            weight: 0,
        };
        assert_eq!(
            resolve(&s, "bookinfo", &unknown_subset),
            Target::Missing("reviews/v9".into())
        );
        assert_eq!(
            service_key("bookinfo", "productpage.other.svc"),
            Some(("other".into(), "productpage".into()))
        );
        assert!(
            host_matches("*.example.com", "v2.example.com")
                && !host_matches("*.example.com", "example.com")
        );
    }

    #[test]
    fn the_most_specific_host_wins_without_falling_through() {
        let mut s = snapshot(
            json!({"hosts": ["*"], "gateways": ["bookinfo-gateway"], "http": [
            {"route": [{"destination": {"host": "reviews", "subset": "v2"}}]}]}),
        );
        let exact = MeshSnapshot::build(
            "sim-source",
            false,
            &MeshObjects {
                virtual_services: vec![
                    json!({"metadata": {"namespace": "bookinfo", "name": "shop"},
                    "spec": {"hosts": ["shop.example.com"], "gateways": ["bookinfo-gateway"],
                             "http": [{"match": [{"uri": {"prefix": "/api"}}],
                                       "route": [{"destination": {"host": "reviews"}}]}]}}),
                ],
                ..MeshObjects::default()
            },
        );
        s.virtual_services.extend(exact.virtual_services);
        let service = gateway_service(&s);
        let none = vec![];
        let mut shop = request("/api/x", &none);
        shop.host = "shop.example.com";
        let GatewayDecision::Route(vs, _) = gateway_route(&s, &service, 80, &shop) else {
            panic!("no route")
        };
        assert_eq!(vs.name, "shop");
        // The exact host's virtual host has no route for `/`: 404, not the `*` one.
        shop.path = "/";
        assert!(matches!(
            gateway_route(&s, &service, 80, &shop),
            GatewayDecision::NoRoute
        ));
        // Other hosts go to `*`.
        let mut other = request("/", &none);
        other.host = "other.example.com";
        assert!(matches!(
            gateway_route(&s, &service, 80, &other),
            GatewayDecision::Route(vs, _) if vs.name == "vs"
        ));
        assert_eq!(
            host_specificity("*.example.com", "a.example.com"),
            Some((1, 13))
        );
        assert_eq!(
            host_specificity("a.example.com", "a.example.com"),
            Some((2, 13))
        );
        assert_eq!(host_specificity("*.example.com", "example.com"), None);
    }
}
