//! What a gateway pod's Envoy shows of itself, without I/O: its routes as the admin endpoint
//! `/config_dump` prints them (a `RoutesConfigDump` of `RouteConfiguration`s, as istiod
//! translates Gateways and VirtualServices), and its per-cluster counters in Prometheus' text
//! format as `:15090/stats/prometheus` serves them.
//!
//! References: Envoy's API (`envoy.admin.v3.ConfigDump`, `RoutesConfigDump`,
//! `envoy.config.route.v3.RouteConfiguration`, `VirtualHost`, `Route`, `RouteMatch`,
//! `RouteAction.weighted_clusters`, `WeightedCluster.ClusterWeight`), printed with the proto
//! field names as the admin interface does; istiod's names (`outbound|<port>|<subset>|<fqdn>`
//! clusters, `http.<port>` route configurations, `<host>:<port>` virtual hosts, the
//! `istio.config` route metadata naming the VirtualService); Istio's Prometheus names for
//! Envoy's cluster statistics (`envoy_cluster_upstream_rq_total`,
//! `envoy_cluster_upstream_rq_xx` with `cluster_name` and `envoy_response_code_class`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::proxies::UpstreamCounters;
use super::routing::service_key;
use super::snapshot::{Destination, MeshSnapshot, PodInfo, RouteAction, StringMatch, selects};

/// The Envoy cluster istiod makes for a destination written in `namespace`:
/// `outbound|<port>|<subset>|<fqdn>`; a Service's host is its FQDN, a ServiceEntry's as
/// written.
pub fn cluster_name(snapshot: &MeshSnapshot, namespace: &str, destination: &Destination) -> String {
    let service = service_key(namespace, &destination.host)
        .and_then(|key| snapshot.services.get(&key).map(|s| (key, s)));
    let (host, default_port) = match service {
        Some(((ns, name), service)) => (
            format!("{name}.{ns}.svc.cluster.local"),
            service.ports.first().map(|p| p.port),
        ),
        None => (
            destination.host.clone(),
            snapshot
                .service_entries
                .iter()
                .find(|e| e.hosts.iter().any(|h| h == &destination.host))
                .and_then(|e| e.ports.first().map(|(n, _)| *n)),
        ),
    };
    let port = destination.port.or(default_port).unwrap_or(80);
    format!(
        "outbound|{port}|{}|{host}",
        destination.subset.as_deref().unwrap_or_default()
    )
}

fn string_match(matcher: &StringMatch) -> Value {
    match matcher {
        StringMatch::Exact(exact) => json!({"exact": exact}),
        StringMatch::Prefix(prefix) => json!({"prefix": prefix}),
        StringMatch::Regex(regex) => {
            // Stored anchored; Envoy's safe_regex matches the whole value already.
            let pattern = regex.as_str();
            let inner = pattern
                .strip_prefix("^(?:")
                .and_then(|p| p.strip_suffix(")$"))
                .unwrap_or(pattern);
            json!({"safe_regex": {"regex": inner}})
        }
    }
}

fn route_match(m: Option<&super::snapshot::RequestMatch>) -> Value {
    let mut out = serde_json::Map::new();
    match m.and_then(|m| m.uri.as_ref()) {
        Some(StringMatch::Exact(path)) => out.insert("path".into(), json!(path)),
        Some(StringMatch::Prefix(prefix)) => out.insert("prefix".into(), json!(prefix)),
        Some(regex @ StringMatch::Regex(_)) => out.insert(
            "safe_regex".into(),
            string_match(regex)["safe_regex"].clone(),
        ),
        None => out.insert("prefix".into(), json!("/")),
    };
    let headers: Vec<Value> = m
        .map(|m| {
            m.headers
                .iter()
                .map(|(name, matcher)| json!({"name": name, "string_match": string_match(matcher)}))
                .chain(m.without_headers.iter().map(|(name, matcher)| {
                    json!({"name": name, "string_match": string_match(matcher), "invert_match": true})
                }))
                .collect()
        })
        .unwrap_or_default();
    if !headers.is_empty() {
        out.insert("headers".into(), Value::Array(headers));
    }
    Value::Object(out)
}

/// A destination's response header operations as Envoy's `HeaderValueOption`s: `set` with
/// `OVERWRITE_IF_EXISTS_OR_ADD`, `add` with the default append action (left out, as the admin
/// endpoint leaves proto defaults out), as istiod translates `HTTPRouteDestination.headers`.
fn response_headers_to_add(destination: &Destination) -> Vec<Value> {
    let response = &destination.headers.response;
    let set = response.set.iter().map(|(key, value)| {
        json!({"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"})
    });
    let add = response
        .add
        .iter()
        .map(|(key, value)| json!({"header": {"key": key, "value": value}}));
    set.chain(add).collect()
}

/// The route action: one cluster, or weighted clusters (zero weights left out, as istiod
/// does), and the route-level response headers of a lone destination. istiod puts a lone
/// destination's header operations on the route and each weighted cluster's on its
/// `ClusterWeight`.
fn route_action(
    snapshot: &MeshSnapshot,
    namespace: &str,
    destinations: &[Destination],
) -> (Value, Vec<Value>) {
    let live: Vec<&Destination> = if destinations.len() == 1 {
        destinations.iter().collect()
    } else {
        destinations.iter().filter(|d| d.weight > 0).collect()
    };
    if let [only] = live.as_slice() {
        return (
            json!({"cluster": cluster_name(snapshot, namespace, only)}),
            response_headers_to_add(only),
        );
    }
    let clusters: Vec<Value> = live
        .iter()
        .map(|d| {
            let mut cluster =
                json!({"name": cluster_name(snapshot, namespace, d), "weight": d.weight});
            let headers = response_headers_to_add(d);
            if !headers.is_empty() {
                cluster["response_headers_to_add"] = Value::Array(headers);
            }
            cluster
        })
        .collect();
    (
        json!({"weighted_clusters": {"clusters": clusters}}),
        Vec::new(),
    )
}

/// The route configurations gateway pod `pod` serves, one per Gateway server port:
/// `http.<port>`, a virtual host per VirtualService host, a route per `match` entry.
pub fn route_configurations(snapshot: &MeshSnapshot, pod: &PodInfo) -> Vec<Value> {
    let gateways: Vec<_> = snapshot
        .gateways
        .iter()
        .filter(|g| selects(&g.selector, &pod.labels))
        .collect();
    let mut ports: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for gateway in &gateways {
        for server in &gateway.servers {
            ports
                .entry(server.port)
                .or_default()
                .push(gateway.id.as_str());
        }
    }
    let mut configurations = Vec::new();
    for (port, ids) in ports {
        // Virtual hosts by host, in the order the VirtualServices were created.
        let mut hosts: Vec<(String, Vec<Value>)> = Vec::new();
        for vs in snapshot
            .virtual_services
            .iter()
            .filter(|vs| vs.gateways.iter().any(|g| ids.contains(&g.as_str())))
        {
            let config = format!(
                "/apis/networking.istio.io/v1/namespaces/{}/virtual-service/{}",
                vs.namespace, vs.name
            );
            let mut routes = Vec::new();
            for route in &vs.http {
                let matches: Vec<Option<&super::snapshot::RequestMatch>> =
                    if route.matches.is_empty() {
                        vec![None]
                    } else {
                        route.matches.iter().map(Some).collect()
                    };
                for m in matches {
                    let mut entry = json!({
                        "match": route_match(m),
                        "metadata": {"filter_metadata": {"istio": {"config": config}}},
                    });
                    match &route.action {
                        RouteAction::Destinations(destinations) => {
                            let (action, headers) =
                                route_action(snapshot, &vs.namespace, destinations);
                            entry["route"] = action;
                            if !headers.is_empty() {
                                entry["response_headers_to_add"] = Value::Array(headers);
                            }
                        }
                        RouteAction::Direct { status, .. } => {
                            entry["direct_response"] = json!({"status": status});
                        }
                        RouteAction::Redirect {
                            status,
                            uri,
                            authority,
                        } => {
                            let mut redirect = serde_json::Map::new();
                            if let Some(uri) = uri {
                                redirect.insert("path_redirect".into(), json!(uri));
                            }
                            if let Some(authority) = authority {
                                redirect.insert("host_redirect".into(), json!(authority));
                            }
                            if *status != 301 {
                                redirect
                                    .insert("response_code".into(), json!(redirect_code(*status)));
                            }
                            entry["redirect"] = Value::Object(redirect);
                        }
                    }
                    routes.push(entry);
                }
            }
            for host in &vs.hosts {
                match hosts.iter_mut().find(|(h, _)| h == host) {
                    Some((_, existing)) => existing.extend(routes.iter().cloned()),
                    None => hosts.push((host.clone(), routes.clone())),
                }
            }
        }
        let virtual_hosts: Vec<Value> = hosts
            .into_iter()
            .map(|(host, routes)| {
                json!({"name": format!("{host}:{port}"), "domains": [host.clone(), format!("{host}:*")],
                       "routes": routes})
            })
            .collect();
        configurations.push(json!({
            "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            "name": format!("http.{port}"),
            "virtual_hosts": virtual_hosts,
            "validate_clusters": false,
        }));
    }
    configurations
}

/// `RedirectAction.RedirectResponseCode` by status.
fn redirect_code(status: u16) -> &'static str {
    match status {
        302 => "FOUND",
        303 => "SEE_OTHER",
        307 => "TEMPORARY_REDIRECT",
        308 => "PERMANENT_REDIRECT",
        _ => "MOVED_PERMANENTLY",
    }
}

/// `/config_dump`: an `envoy.admin.v3.ConfigDump` holding the pod's `RoutesConfigDump`.
/// `version_info` and `last_updated` identify the push the pod last received.
pub fn config_dump(snapshot: &MeshSnapshot, pod: &PodInfo, version: &str, updated: &str) -> Value {
    let dynamic: Vec<Value> = route_configurations(snapshot, pod)
        .into_iter()
        .map(|rc| json!({"version_info": version, "route_config": rc, "last_updated": updated}))
        .collect();
    json!({"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
         "dynamic_route_configs": dynamic}
    ]})
}

fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `/stats/prometheus`: the upstream request counters by cluster, in Prometheus' text format.
pub fn prometheus(counters: &BTreeMap<String, UpstreamCounters>) -> String {
    let mut text = String::from("# TYPE envoy_cluster_upstream_rq_total counter\n");
    for (cluster, c) in counters {
        text.push_str(&format!(
            "envoy_cluster_upstream_rq_total{{cluster_name=\"{}\"}} {}\n",
            label_value(cluster),
            c.total
        ));
    }
    text.push_str("# TYPE envoy_cluster_upstream_rq_xx counter\n");
    for (cluster, c) in counters {
        for (i, count) in c.by_class.iter().enumerate() {
            if *count > 0 {
                text.push_str(&format!(
                    "envoy_cluster_upstream_rq_xx{{envoy_response_code_class=\"{}\",cluster_name=\"{}\"}} {count}\n",
                    i + 1,
                    label_value(cluster)
                ));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::snapshot::MeshObjects;

    #[test]
    fn weighted_routes_in_envoys_shape() {
        let objects = MeshObjects {
            services: vec![json!({"metadata": {"namespace": "shop", "name": "web"},
                                  "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]}})],
            pods: vec![
                json!({"metadata": {"namespace": "istio-system", "name": "gw-1",
                                           "labels": {"istio": "ingressgateway"}},
                              "spec": {"containers": [{"name": "istio-proxy"}]},
                              "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            ],
            gateways: vec![json!({"metadata": {"namespace": "shop", "name": "gw"},
                                  "spec": {"selector": {"istio": "ingressgateway"},
                                           "servers": [{"port": {"number": 80}, "hosts": ["shop.example.com"]}]}})],
            virtual_services: vec![json!({"metadata": {"namespace": "shop", "name": "shop"},
                "spec": {"hosts": ["shop.example.com"], "gateways": ["gw"], "http": [
                    {"match": [{"uri": {"prefix": "/api"}}],
                     "route": [{"destination": {"host": "web"}, "weight": 70},
                               {"destination": {"host": "v2.example.com", "port": {"number": 80}}, "weight": 30}]},
                    {"route": [{"destination": {"host": "web"}, "weight": 100},
                               {"destination": {"host": "v2.example.com"}, "weight": 0}]}]}})],
            ..MeshObjects::default()
        };
        let snapshot = MeshSnapshot::build("sim-source", false, &objects);
        let dump = config_dump(&snapshot, &snapshot.pods[0], "1", "2026-01-01T00:00:00Z");
        let config = &dump["configs"][0]["dynamic_route_configs"][0]["route_config"];
        assert_eq!(
            config["@type"],
            "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
        );
        assert_eq!(config["name"], "http.80");
        let host = &config["virtual_hosts"][0];
        assert_eq!(host["name"], "shop.example.com:80");
        assert_eq!(host["routes"][0]["match"], json!({"prefix": "/api"}));
        assert_eq!(
            host["routes"][0]["route"]["weighted_clusters"]["clusters"],
            json!([{"name": "outbound|8080||web.shop.svc.cluster.local", "weight": 70},
                   {"name": "outbound|80||v2.example.com", "weight": 30}])
        );
        assert_eq!(
            host["routes"][1]["route"],
            json!({"cluster": "outbound|8080||web.shop.svc.cluster.local"})
        );
        assert_eq!(
            host["routes"][1]["metadata"]["filter_metadata"]["istio"]["config"],
            "/apis/networking.istio.io/v1/namespaces/shop/virtual-service/shop"
        );
    }

    #[test]
    fn counters_in_prometheus_text() {
        let mut counters = BTreeMap::new();
        counters.insert(
            "outbound|80||v2.example.com".to_string(),
            UpstreamCounters {
                total: 3,
                by_class: [0, 2, 0, 0, 1],
            },
        );
        let text = prometheus(&counters);
        assert!(text.contains(
            "envoy_cluster_upstream_rq_total{cluster_name=\"outbound|80||v2.example.com\"} 3\n"
        ));
        assert!(text.contains("envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"5\",cluster_name=\"outbound|80||v2.example.com\"} 1\n"));
    }
}
