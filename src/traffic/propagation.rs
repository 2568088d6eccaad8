//! Whether a gateway's Envoy serves a VirtualService as written, read from its `/config_dump`
//! (no I/O). istiod makes one Envoy route per `match` entry of each HTTP rule, tags it with the
//! VirtualService (`metadata.filter_metadata.istio.config`), and routes to clusters named
//! `outbound|<port>|<subset>|<fqdn>`, leaving zero weights out; a single destination is a
//! `cluster`, several are `weighted_clusters`. The same rules, in the same order, appear in
//! every virtual host and route configuration the VirtualService is bound to.

use serde_json::Value;

/// One destination a route should send traffic to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedCluster {
    /// The host as written (short names are completed with the VirtualService's namespace).
    pub host: String,
    /// The DestinationRule subset, if any.
    pub subset: Option<String>,
    /// The port, when the destination names one.
    pub port: Option<u16>,
    /// Its weight (100 for a lone destination).
    pub weight: u32,
    /// The response headers it sets or adds (`headers.response.set`/`add`), sorted: the
    /// shift's attribution header is one, and a route serving the weights without it is not
    /// yet the route that was written.
    pub response_headers: Vec<(String, String)>,
}

/// One cluster a served route sends to, and its weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedCluster {
    /// `outbound|80||v2.example.com`.
    pub name: String,
    /// Its weight (100 for a route to a single cluster).
    pub weight: u32,
    /// The response headers Envoy adds when it picks this cluster (the `ClusterWeight`'s
    /// `response_headers_to_add`, or the route's for a lone cluster).
    pub response_headers: Vec<(String, String)>,
}

/// `headers.response.set` and `.add` of a VirtualService destination, sorted.
fn expected_response_headers(destination: &Value) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = ["set", "add"]
        .iter()
        .filter_map(|op| {
            destination
                .pointer(&format!("/headers/response/{op}"))
                .and_then(Value::as_object)
        })
        .flatten()
        .filter_map(|(key, value)| Some((key.to_ascii_lowercase(), value.as_str()?.to_string())))
        .collect();
    headers.sort();
    headers
}

/// The `header.key`/`header.value` pairs of Envoy `HeaderValueOption`s, sorted.
fn served_response_headers(options: Option<&Value>) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = options
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|option| {
            Some((
                option
                    .pointer("/header/key")?
                    .as_str()?
                    .to_ascii_lowercase(),
                option.pointer("/header/value")?.as_str()?.to_string(),
            ))
        })
        .collect();
    headers.sort();
    headers
}

/// The Envoy routes (one per `match` entry) a VirtualService's HTTP rules become, each with
/// the destinations that get traffic. Rules that redirect or answer directly expect none.
pub fn expected_routes(vs: &Value) -> Vec<Vec<ExpectedCluster>> {
    let namespace = vs
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let mut routes = Vec::new();
    for rule in vs
        .pointer("/spec/http")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let destinations: Vec<&Value> = rule
            .get("route")
            .and_then(Value::as_array)
            .map(|r| r.iter().collect())
            .unwrap_or_default();
        let lone = destinations.len() == 1;
        let expected: Vec<ExpectedCluster> = destinations
            .iter()
            .filter_map(|d| {
                let weight = if lone {
                    100
                } else {
                    u32::try_from(d.get("weight").and_then(Value::as_u64).unwrap_or(0)).ok()?
                };
                if weight == 0 {
                    return None;
                }
                let host = d.pointer("/destination/host")?.as_str()?;
                let host = if host.contains('.') {
                    host.to_string()
                } else {
                    format!("{host}.{namespace}.svc.cluster.local")
                };
                Some(ExpectedCluster {
                    host,
                    subset: d
                        .pointer("/destination/subset")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    port: d
                        .pointer("/destination/port/number")
                        .and_then(Value::as_u64)
                        .and_then(|p| u16::try_from(p).ok()),
                    weight,
                    response_headers: expected_response_headers(d),
                })
            })
            .collect();
        // A lone destination left after dropping zero weights is routed to whole.
        let expected = match expected.as_slice() {
            [only] => vec![ExpectedCluster {
                weight: 100,
                ..only.clone()
            }],
            _ => expected,
        };
        let copies = rule
            .get("match")
            .and_then(Value::as_array)
            .map_or(1, |m| m.len().max(1));
        for _ in 0..copies {
            routes.push(expected.clone());
        }
    }
    routes
}

/// What one place (route configuration and virtual host) serves of the VirtualService.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedRoutes {
    /// `http.8080/shop.example.com:80`.
    pub place: String,
    /// Its routes of the VirtualService, in order.
    pub routes: Vec<Vec<ServedCluster>>,
}

fn served_clusters(route: &Value) -> Vec<ServedCluster> {
    let Some(action) = route.get("route") else {
        return Vec::new();
    };
    if let Some(name) = action.get("cluster").and_then(Value::as_str) {
        return vec![ServedCluster {
            name: name.to_string(),
            weight: 100,
            response_headers: served_response_headers(route.get("response_headers_to_add")),
        }];
    }
    action
        .pointer("/weighted_clusters/clusters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some(ServedCluster {
                name: c.get("name")?.as_str()?.to_string(),
                weight: u32::try_from(c.get("weight").and_then(Value::as_u64).unwrap_or(0)).ok()?,
                response_headers: served_response_headers(c.get("response_headers_to_add")),
            })
        })
        .filter(|c| c.weight > 0)
        .collect()
}

/// Every place a config dump serves routes of VirtualService `namespace/name`.
pub fn served_routes(config_dump: &Value, namespace: &str, name: &str) -> Vec<ServedRoutes> {
    let tag = format!("/namespaces/{namespace}/virtual-service/{name}");
    let mut places = Vec::new();
    let configs = config_dump
        .get("configs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| {
            c.get("@type").and_then(Value::as_str)
                == Some("type.googleapis.com/envoy.admin.v3.RoutesConfigDump")
        });
    for dump in configs {
        let route_configs = ["dynamic_route_configs", "static_route_configs"]
            .iter()
            .filter_map(|k| dump.get(*k).and_then(Value::as_array))
            .flatten()
            .filter_map(|d| d.get("route_config"));
        for config in route_configs {
            let config_name = config
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            for host in config
                .get("virtual_hosts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let routes: Vec<Vec<ServedCluster>> = host
                    .get("routes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|r| {
                        r.pointer("/metadata/filter_metadata/istio/config")
                            .and_then(Value::as_str)
                            .is_some_and(|c| c.ends_with(&tag))
                    })
                    .map(served_clusters)
                    .collect();
                if !routes.is_empty() {
                    let host_name = host.get("name").and_then(Value::as_str).unwrap_or_default();
                    places.push(ServedRoutes {
                        place: format!("{config_name}/{host_name}"),
                        routes,
                    });
                }
            }
        }
    }
    places
}

/// `outbound|80|v1|reviews.shop.svc.cluster.local` → (port, subset, host).
fn parse_cluster(name: &str) -> Option<(Option<u16>, Option<&str>, &str)> {
    let mut parts = name.split('|');
    let (_, port, subset, host) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((
        port.parse().ok(),
        Some(subset).filter(|s| !s.is_empty()),
        host,
    ))
}

fn same_destination(expected: &ExpectedCluster, served: &ServedCluster) -> bool {
    let Some((port, subset, host)) = parse_cluster(&served.name) else {
        return false;
    };
    let host_matches = host == expected.host
        || (host.starts_with(&expected.host) && host[expected.host.len()..].starts_with('.'));
    host_matches
        && subset == expected.subset.as_deref()
        && expected.port.is_none_or(|p| port == Some(p))
        && expected.weight == served.weight
        // Every header the destination adds is served (a lone cluster's route may add more,
        // the rule's own).
        && expected
            .response_headers
            .iter()
            .all(|header| served.response_headers.contains(header))
}

/// Whether one served route sends to exactly the expected destinations with their weights.
fn route_matches(expected: &[ExpectedCluster], served: &[ServedCluster]) -> bool {
    if expected.len() != served.len() {
        return false;
    }
    let mut used = vec![false; served.len()];
    expected.iter().all(|e| {
        let found = served
            .iter()
            .enumerate()
            .find(|(i, s)| !used[*i] && same_destination(e, s));
        match found {
            Some((i, _)) => {
                used[i] = true;
                true
            }
            None => false,
        }
    })
}

/// Whether every place the pod serves the VirtualService serves it as expected (and it serves
/// it somewhere).
pub fn converged(expected: &[Vec<ExpectedCluster>], served: &[ServedRoutes]) -> bool {
    !served.is_empty()
        && served.iter().all(|place| {
            place.routes.len() == expected.len()
                && expected
                    .iter()
                    .zip(&place.routes)
                    .all(|(e, s)| route_matches(e, s))
        })
}

/// The weights a pod serves, for the report: `v2.example.com 10, reviews.shop 90; ...` (the
/// distinct routes of the first place, each cluster by its host without
/// `.svc.cluster.local`).
pub fn describe(served: &[ServedRoutes]) -> String {
    let Some(place) = served.first() else {
        return "no route of the VirtualService".to_string();
    };
    place
        .routes
        .iter()
        .map(|route| {
            route
                .iter()
                .map(|c| {
                    let host = parse_cluster(&c.name).map_or(c.name.as_str(), |(_, _, h)| h);
                    let host = host.strip_suffix(".svc.cluster.local").unwrap_or(host);
                    let subset = parse_cluster(&c.name)
                        .and_then(|(_, s, _)| s)
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default();
                    format!("{host}{subset} {}", c.weight)
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .fold(Vec::<String>::new(), |mut distinct, route| {
            if !distinct.contains(&route) {
                distinct.push(route);
            }
            distinct
        })
        .join("; ")
}

/// Requests the gateway pods sent to the source's and the target's clusters between two
/// readings of their counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CounterSplit {
    /// To the VirtualService's other destinations.
    pub source: u64,
    /// To the target's host.
    pub target: u64,
    /// 5xx answers among them.
    pub errors: u64,
    /// `source + target`.
    pub total: u64,
}

/// `(total, 5xx)` of one cluster in a reading: `#{<pod>: #{<cluster>: #{total, xx_5}}}`.
fn reading(pods: &Value, pod: &str, cluster: &str) -> (u64, u64) {
    let entry = pods.get(pod).and_then(|p| p.get(cluster));
    let number = |key: &str| {
        entry
            .and_then(|e| e.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    (number("total"), number("xx_5"))
}

/// The split of the requests counted between `before` and `after` (each `gateway_counters`'
/// `pods` map): clusters whose host is `target_host` count for the target, those of the
/// VirtualService's other destinations for the source, everything else (other apps on the
/// same gateways) is left out. A counter that went down (the pod restarted) counts from 0.
pub fn counter_split(before: &Value, after: &Value, vs: &Value, target_host: &str) -> CounterSplit {
    let sources: Vec<ExpectedCluster> = expected_routes(vs)
        .into_iter()
        .flatten()
        .filter(|c| c.host != target_host)
        .collect();
    let mut split = CounterSplit::default();
    for (pod, clusters) in after.as_object().into_iter().flatten() {
        for cluster in clusters
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| name)
        {
            let Some((_, subset, host)) = parse_cluster(cluster) else {
                continue;
            };
            let is_target = host == target_host;
            let is_source = !is_target
                && sources.iter().any(|e| {
                    same_destination(
                        &ExpectedCluster {
                            weight: 0,
                            port: None,
                            response_headers: Vec::new(),
                            ..e.clone()
                        },
                        &ServedCluster {
                            name: format!("outbound||{}|{host}", subset.unwrap_or_default()),
                            weight: 0,
                            response_headers: Vec::new(),
                        },
                    )
                });
            if !is_target && !is_source {
                continue;
            }
            let (total_after, errors_after) = reading(after, pod, cluster);
            let (total_before, errors_before) = reading(before, pod, cluster);
            let delta = |a: u64, b: u64| if a >= b { a - b } else { a };
            let total = delta(total_after, total_before);
            split.errors += delta(errors_after, errors_before);
            if is_target {
                split.target += total;
            } else {
                split.source += total;
            }
        }
    }
    split.total = split.source + split.target;
    split
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vs(target_weight: u64) -> Value {
        json!({"metadata": {"namespace": "shop", "name": "shop"},
               "spec": {"http": [
                   {"match": [{"uri": {"prefix": "/api"}}, {"uri": {"prefix": "/v2"}}],
                    "route": [{"destination": {"host": "web", "subset": "v1"}, "weight": 100 - target_weight},
                              {"destination": {"host": "v2.example.com", "port": {"number": 80}}, "weight": target_weight}]},
                   {"redirect": {"uri": "/"}}]}})
    }

    fn dump(weights: (u64, u64)) -> Value {
        let route = json!({"match": {"prefix": "/api"},
                           "metadata": {"filter_metadata": {"istio": {"config": "/apis/networking.istio.io/v1/namespaces/shop/virtual-service/shop"}}},
                           "route": {"weighted_clusters": {"clusters": [
                               {"name": "outbound|8080|v1|web.shop.svc.cluster.local", "weight": weights.0},
                               {"name": "outbound|80||v2.example.com", "weight": weights.1}]}}});
        let redirect = json!({"match": {"prefix": "/"}, "redirect": {"path_redirect": "/"},
                              "metadata": {"filter_metadata": {"istio": {"config": "/apis/networking.istio.io/v1/namespaces/shop/virtual-service/shop"}}}});
        json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
            "dynamic_route_configs": [{"route_config": {"name": "http.8080", "virtual_hosts": [
                {"name": "shop.example.com:80", "routes": [route.clone(), route, redirect]}]}}]}]})
    }

    #[test]
    fn served_weights_are_compared_with_the_virtual_service() {
        let expected = expected_routes(&vs(10));
        assert_eq!(expected.len(), 3);
        assert_eq!(expected[0][0].host, "web.shop.svc.cluster.local");
        assert!(expected[2].is_empty());
        let served = served_routes(&dump((90, 10)), "shop", "shop");
        assert_eq!(served[0].place, "http.8080/shop.example.com:80");
        assert!(converged(&expected, &served));
        let stale = served_routes(&dump((95, 5)), "shop", "shop");
        assert!(!converged(&expected, &stale));
        assert_eq!(
            describe(&stale).split("; ").next(),
            Some("web.shop/v1 95, v2.example.com 5")
        );
        assert!(!converged(
            &expected,
            &served_routes(&dump((90, 10)), "shop", "other")
        ));
    }

    #[test]
    fn weights_served_without_the_destinations_response_header_are_not_yet_live() {
        let mut written = vs(10);
        written["spec"]["http"][0]["route"][1]["headers"] =
            json!({"response": {"set": {"X-Served-By": "target"}}});
        let expected = expected_routes(&written);
        assert_eq!(
            expected[0][1].response_headers,
            vec![("x-served-by".to_string(), "target".to_string())]
        );
        // The same weights, before the header reached the pod.
        assert!(!converged(
            &expected,
            &served_routes(&dump((90, 10)), "shop", "shop")
        ));
        let mut with_header = dump((90, 10));
        for route in [0, 1] {
            with_header["configs"][0]["dynamic_route_configs"][0]["route_config"]["virtual_hosts"]
                [0]["routes"][route]["route"]["weighted_clusters"]["clusters"][1]["response_headers_to_add"] = json!([
                {"header": {"key": "x-served-by", "value": "target"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]);
        }
        assert!(converged(
            &expected,
            &served_routes(&with_header, "shop", "shop")
        ));
    }

    #[test]
    fn counters_split_between_source_and_target() {
        let before = json!({"gw-1": {"outbound|8080|v1|web.shop.svc.cluster.local": {"total": 100, "xx_5": 1},
                                     "outbound|80||v2.example.com": {"total": 10, "xx_5": 0}}});
        let after = json!({"gw-1": {"outbound|8080|v1|web.shop.svc.cluster.local": {"total": 190, "xx_5": 2},
                                    "outbound|80||v2.example.com": {"total": 20, "xx_5": 0},
                                    "outbound|80||other.example.com": {"total": 999}},
                           "gw-2": {"outbound|80||v2.example.com": {"total": 5, "xx_5": 5}}});
        let split = counter_split(&before, &after, &vs(10), "v2.example.com");
        assert_eq!(
            split,
            CounterSplit {
                source: 90,
                target: 15,
                errors: 6,
                total: 105
            }
        );
    }

    #[test]
    fn zero_weights_leave_a_lone_cluster() {
        let expected = expected_routes(&vs(0));
        assert_eq!(expected[0].len(), 1);
        assert_eq!(expected[0][0].weight, 100);
        let served = vec![ServedRoutes {
            place: "p".into(),
            routes: vec![
                vec![ServedCluster {
                    name: "outbound|8080|v1|web.shop.svc.cluster.local".into(),
                    weight: 100,
                    response_headers: Vec::new(),
                }];
                2
            ]
            .into_iter()
            .chain([vec![]])
            .collect(),
        }];
        assert!(converged(&expected, &served));
    }
}
