//! Builders and editors for the Istio objects that shift traffic between clusters: the
//! ServiceEntry that names the target cluster's ingress, and the weights of a VirtualService's
//! HTTP routes. Objects are `serde_json::Value`s in Kubernetes shape, in and out; nothing here
//! talks to a cluster.
//!
//! # Destination keys
//!
//! A route destination is named by its key: `host`, then `:port` when the destination sets
//! `port.number`, then `/subset` when it sets `subset`. For example `productpage:9080`,
//! `v2.example.com:80`, `reviews/v1` or `reviews:9080/v2`. Wherever a key is accepted, a shorter
//! form that leaves out the port and/or the subset (such as a bare host) is accepted too, as long
//! as exactly one destination of the VirtualService matches it.
//!
//! # Weights
//!
//! Weights follow Istio's semantics (since 1.15): each is `>= 0`; with several destinations their
//! total must be `> 0` and each destination gets `weight / total` of the traffic (weight 0 or no
//! weight means none); a single destination gets all traffic whatever its weight.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

/// API version written into new objects.
pub const NETWORKING_API_VERSION: &str = "networking.istio.io/v1";

/// A weighted destination for [`weighted_routes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedDestination {
    /// Service host: a short name (`productpage`), an FQDN, or a ServiceEntry host.
    pub host: String,
    /// Destination port (`port.number`); needed when the service has several ports.
    pub port: Option<u16>,
    /// DestinationRule subset.
    pub subset: Option<String>,
    /// Relative weight, `>= 0`.
    pub weight: i64,
}

impl WeightedDestination {
    /// A destination with only a host and a weight.
    pub fn new(host: impl Into<String>, weight: i64) -> Self {
        WeightedDestination {
            host: host.into(),
            port: None,
            subset: None,
            weight,
        }
    }

    /// The same destination with `port.number` set.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The same destination with a subset.
    pub fn with_subset(mut self, subset: impl Into<String>) -> Self {
        self.subset = Some(subset.into());
        self
    }

    /// Its destination key (see the module doc), e.g. `productpage:9080`.
    pub fn key(&self) -> String {
        format_key(&self.host, self.port.map(u64::from), self.subset.as_deref())
    }
}

/// Why a traffic object could not be built or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrafficError {
    /// Not a DNS-1123 subdomain.
    #[error(
        "`{name}` is not a valid object name: use lower-case letters, digits, `-` and `.`, \
         starting and ending with a letter or digit, at most 253 characters"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// Not a DNS host name.
    #[error("`{host}` is not a valid DNS host name")]
    InvalidHost {
        /// The rejected host.
        host: String,
    },
    /// A ServiceEntry endpoint that is not an IP literal.
    #[error(
        "endpoint address `{address}` is not an IP address: resolution `STATIC` rejects host names"
    )]
    InvalidAddress {
        /// The rejected address.
        address: String,
    },
    /// A port outside 1..=65535.
    #[error("port `{port}` is not in 1..=65535")]
    InvalidPort {
        /// The rejected port.
        port: i64,
    },
    /// A subset name that is not a DNS-1123 label.
    #[error("`{subset}` is not a valid subset name")]
    InvalidSubset {
        /// The rejected subset.
        subset: String,
    },
    /// The object is of another kind.
    #[error("expected a `VirtualService`, got `{kind}`")]
    NotVirtualService {
        /// The object's kind.
        kind: String,
    },
    /// A field of the VirtualService is missing or has the wrong type.
    #[error("`{path}` of virtual service `{name}` {problem}")]
    Malformed {
        /// The VirtualService name.
        name: String,
        /// The offending field, e.g. `spec.http[0].route`.
        path: String,
        /// What is wrong with it, e.g. "is not a list".
        problem: &'static str,
    },
    /// No HTTP rule routes anywhere.
    #[error("virtual service `{name}` has no http rule with a route")]
    NoHttpRoute {
        /// The VirtualService name.
        name: String,
    },
    /// A share outside 0..=100.
    #[error("`{percent}` is not a percentage from 0 to 100")]
    InvalidPercent {
        /// The rejected share.
        percent: i64,
    },
    /// An empty list of destinations or weights.
    #[error("no destinations given")]
    NoDestinations,
    /// The same destination given twice.
    #[error("destination `{destination}` is given twice")]
    DuplicateDestination {
        /// Its key.
        destination: String,
    },
    /// A weight below 0.
    #[error("destination `{destination}` has negative weight `{weight}`")]
    NegativeWeight {
        /// Its key.
        destination: String,
        /// The weight.
        weight: i64,
    },
    /// All destinations of a rule would get weight 0.
    #[error("weights of {} add up to 0", ticked(.destinations))]
    ZeroTotalWeight {
        /// The keys of the rule's destinations.
        destinations: Vec<String>,
    },
    /// A named destination that the VirtualService does not route to.
    #[error(
        "destination `{destination}` is not in virtual service `{name}` (available: {})",
        ticked(.available)
    )]
    UnknownDestination {
        /// The name as given.
        destination: String,
        /// The VirtualService name.
        name: String,
        /// Keys of the destinations it does route to.
        available: Vec<String>,
    },
    /// A short name that matches several destinations.
    #[error(
        "destination `{destination}` is ambiguous in virtual service `{name}`: it matches {}",
        ticked(.candidates)
    )]
    AmbiguousDestination {
        /// The name as given.
        destination: String,
        /// The VirtualService name.
        name: String,
        /// The keys it matches.
        candidates: Vec<String>,
    },
}

fn ticked(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ServiceEntry that makes the target cluster's ingress reachable from the source mesh, as
/// the AKS migration guide writes it: `host` is the name the weighted route sends to (e.g.
/// `v2.example.com`), `address` the target ingress IP, `port` its HTTP port. No namespace is
/// set.
///
/// # Errors
///
/// `name` not a DNS-1123 subdomain, `host` not a DNS name, `address` not an IP literal (resolution
/// `STATIC` takes endpoint IPs, not host names), `port` outside 1..=65535.
///
/// ```text
/// let se = service_entry("target-cluster-http", "v2.example.com", "20.1.2.3", 80)?;
/// assert_eq!(se["spec"]["resolution"], "STATIC");
/// ```
pub fn service_entry(
    name: &str,
    host: &str,
    address: &str,
    port: i64,
) -> Result<Value, TrafficError> {
    if !is_dns_subdomain(name) {
        return Err(TrafficError::InvalidName {
            name: name.to_string(),
        });
    }
    if !is_dns_host(host) {
        return Err(TrafficError::InvalidHost {
            host: host.to_string(),
        });
    }
    if address.parse::<IpAddr>().is_err() {
        return Err(TrafficError::InvalidAddress {
            address: address.to_string(),
        });
    }
    if !(1..=65_535).contains(&port) {
        return Err(TrafficError::InvalidPort { port });
    }
    Ok(json!({
        "apiVersion": NETWORKING_API_VERSION,
        "kind": "ServiceEntry",
        "metadata": { "name": name },
        "spec": {
            "hosts": [host],
            "location": "MESH_EXTERNAL",
            "ports": [{ "number": port, "name": "http", "protocol": "HTTP" }],
            "resolution": "STATIC",
            "endpoints": [{ "address": address }],
        },
    }))
}

/// Copy of the VirtualService `vs` in which every HTTP rule routes to `routes`, weighted.
///
/// Each rule keeps its other fields (matches, rewrites, timeouts, retries, headers, …); only its
/// `route` list is replaced, so per-destination fields of the old list (such as destination
/// `headers`) are dropped. Rules that `redirect`, answer with `directResponse` or `delegate`
/// can't carry a route and are left unchanged, as are `tcp` and `tls` routes.
///
/// # Errors
///
/// `vs` not a VirtualService or without HTTP rules to route; no destinations; an invalid host,
/// port or subset; a destination given twice; a negative weight; several destinations whose
/// weights add up to 0.
///
/// ```text
/// let routes = [
///     WeightedDestination::new("productpage", 90).with_port(9080),
///     WeightedDestination::new("v2.example.com", 10).with_port(80),
/// ];
/// let shifted = weighted_routes(&vs, &routes)?;
/// ```
pub fn weighted_routes(vs: &Value, routes: &[WeightedDestination]) -> Result<Value, TrafficError> {
    check_kind(vs)?;
    let name = vs_name(vs);
    if routes.is_empty() {
        return Err(TrafficError::NoDestinations);
    }
    let mut keys: Vec<String> = Vec::with_capacity(routes.len());
    for r in routes {
        if !is_dns_host(&r.host) {
            return Err(TrafficError::InvalidHost {
                host: r.host.clone(),
            });
        }
        if r.port == Some(0) {
            return Err(TrafficError::InvalidPort { port: 0 });
        }
        if let Some(subset) = &r.subset
            && !is_dns_label(subset)
        {
            return Err(TrafficError::InvalidSubset {
                subset: subset.clone(),
            });
        }
        let key = r.key();
        if r.weight < 0 {
            return Err(TrafficError::NegativeWeight {
                destination: key,
                weight: r.weight,
            });
        }
        if keys.contains(&key) {
            return Err(TrafficError::DuplicateDestination { destination: key });
        }
        keys.push(key);
    }
    if routes.len() > 1 && routes.iter().all(|r| r.weight == 0) {
        return Err(TrafficError::ZeroTotalWeight { destinations: keys });
    }
    let route_list: Vec<Value> = routes
        .iter()
        .map(|r| {
            let mut destination = Map::new();
            destination.insert("host".into(), Value::from(r.host.as_str()));
            if let Some(port) = r.port {
                destination.insert("port".into(), json!({ "number": port }));
            }
            if let Some(subset) = &r.subset {
                destination.insert("subset".into(), Value::from(subset.as_str()));
            }
            json!({ "destination": destination, "weight": r.weight })
        })
        .collect();

    let mut out = vs.clone();
    let rules = http_rules_mut(&mut out, &name)?;
    let mut routed = 0;
    for (i, rule) in rules.iter_mut().enumerate() {
        let Some(rule) = rule.as_object_mut() else {
            return Err(malformed(&name, format!("spec.http[{i}]"), "is not a map"));
        };
        if ["redirect", "directResponse", "delegate"]
            .iter()
            .any(|k| rule.contains_key(*k))
        {
            continue;
        }
        rule.insert("route".into(), Value::Array(route_list.clone()));
        routed += 1;
    }
    if routed == 0 {
        return Err(TrafficError::NoHttpRoute { name });
    }
    Ok(out)
}

/// Current weights of the first HTTP rule that has a `route`, as `(destination key, weight)` in
/// route order (see the module doc for keys). Other rules are not read: [`set_weights`] keeps
/// them in step. A missing weight reads as 100 for a sole destination (it gets all traffic) and
/// as 0 among several (Istio drops it). Empty when there is no such rule.
///
/// ```text
/// assert_eq!(route_weights(&vs), vec![("productpage:9080".to_string(), 90), ("v2.example.com:80".to_string(), 10)]);
/// ```
pub fn route_weights(vs: &Value) -> Vec<(String, i64)> {
    let Some(rules) = vs.pointer("/spec/http").and_then(Value::as_array) else {
        return Vec::new();
    };
    let Some(route) = rules
        .iter()
        .find_map(|r| r.get("route").and_then(Value::as_array))
    else {
        return Vec::new();
    };
    let sole = route.len() == 1;
    route
        .iter()
        .filter_map(|entry| {
            let key = entry_key(entry)?;
            let weight = entry_weight(entry).ok()?;
            Some((key, effective_weight(weight, sole)))
        })
        .collect()
}

/// Copy of `vs` with new weights for the named destinations (keys or unambiguous short forms,
/// see the module doc) in every HTTP rule that routes to them, and their previous weights as
/// `(key, weight)` in the order given (read from the first rule that routes to each, as in
/// [`route_weights`]). Nothing else changes; destinations not named keep their weights.
///
/// # Errors
///
/// No weights; a name that matches no destination (the available ones are listed) or several; a
/// destination named twice; a negative weight; a rule whose destinations would all have weight
/// 0 (for a sole destination too, since Istio would still send it all traffic); a malformed
/// `spec.http`.
///
/// ```text
/// let (shifted, previous) = set_weights(&vs, &[("productpage".into(), 50), ("v2.example.com".into(), 50)])?;
/// assert_eq!(previous, vec![("productpage:9080".to_string(), 90), ("v2.example.com:80".to_string(), 10)]);
/// ```
pub fn set_weights(
    vs: &Value,
    weights: &[(String, i64)],
) -> Result<(Value, Vec<(String, i64)>), TrafficError> {
    check_kind(vs)?;
    let name = vs_name(vs);
    if weights.is_empty() {
        return Err(TrafficError::NoDestinations);
    }
    let available = destination_keys(vs, &name)?;
    let mut targets: Vec<(String, i64)> = Vec::with_capacity(weights.len());
    for (query, weight) in weights {
        let key = resolve_key(query, &available, &name)?;
        if *weight < 0 {
            return Err(TrafficError::NegativeWeight {
                destination: key,
                weight: *weight,
            });
        }
        if targets.iter().any(|(k, _)| *k == key) {
            return Err(TrafficError::DuplicateDestination { destination: key });
        }
        targets.push((key, *weight));
    }

    let mut previous: Vec<Option<i64>> = vec![None; targets.len()];
    let mut out = vs.clone();
    let rules = http_rules_mut(&mut out, &name)?;
    for (ri, rule) in rules.iter_mut().enumerate() {
        let Some(route) = rule.get_mut("route") else {
            continue;
        };
        let Some(route) = route.as_array_mut() else {
            return Err(malformed(
                &name,
                format!("spec.http[{ri}].route"),
                "is not a list",
            ));
        };
        let sole = route.len() == 1;
        let mut touched = false;
        let mut rule_keys = Vec::with_capacity(route.len());
        let mut total: i128 = 0;
        for (di, entry) in route.iter_mut().enumerate() {
            let path = || format!("spec.http[{ri}].route[{di}]");
            let Some(key) = entry_key(entry) else {
                return Err(malformed(&name, path() + ".destination.host", "is missing"));
            };
            let current = entry_weight(entry)
                .map_err(|problem| malformed(&name, path() + ".weight", problem))?;
            let mut weight = current.unwrap_or(0);
            if let Some(t) = targets.iter().position(|(k, _)| *k == key) {
                if previous[t].is_none() {
                    previous[t] = Some(effective_weight(current, sole));
                }
                weight = targets[t].1;
                if let Some(map) = entry.as_object_mut() {
                    map.insert("weight".into(), Value::from(weight));
                }
                touched = true;
            }
            total += i128::from(weight);
            rule_keys.push(key);
        }
        if touched && total == 0 {
            return Err(TrafficError::ZeroTotalWeight {
                destinations: rule_keys,
            });
        }
    }
    let previous = targets
        .into_iter()
        .zip(previous)
        .map(|((key, _), prev)| (key, prev.unwrap_or(0)))
        .collect();
    Ok((out, previous))
}

/// A response header that names who served a request: set on every source destination with
/// `source`, on the target destination with `target` (Istio's
/// `HTTPRouteDestination.headers.response.set`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedBy {
    /// Header name, e.g. `x-meshshift-served-by`.
    pub header: String,
    /// Value on answers from the source's own destinations.
    pub source: String,
    /// Value on answers from the target.
    pub target: String,
}

/// Copy of `original` (a VirtualService as its owner wrote it) that sends `percent`% of every
/// routing HTTP rule to `to`: each rule keeps its match and every other field, its own
/// destinations keep their fields and their proportions, scaled to `100 - percent`, and `to` is
/// added with weight `percent`. Rules that `redirect`, answer with `directResponse` or
/// `delegate` are left alone, as are `tcp` and `tls` routes. With `served_by`, each destination
/// also sets a response header saying which cluster answered (other header operations of the
/// destination are kept). Weights are integers adding up to 100 in every rule (largest
/// remainders); a destination with weight 0 keeps 0.
///
/// # Errors
///
/// `original` not a VirtualService or without a routing HTTP rule; `percent` outside 0..=100;
/// an invalid `to`; a rule that already routes to `to`, or whose own weights add up to 0.
///
/// ```text
/// let shifted = shift_routes(&vs, &WeightedDestination::new("v2.example.com", 0).with_port(80), 10, None)?;
/// ```
pub fn shift_routes(
    original: &Value,
    to: &WeightedDestination,
    percent: i64,
    served_by: Option<&ServedBy>,
) -> Result<Value, TrafficError> {
    check_kind(original)?;
    let name = vs_name(original);
    if !is_dns_host(&to.host) {
        return Err(TrafficError::InvalidHost {
            host: to.host.clone(),
        });
    }
    if !(0..=100).contains(&percent) {
        return Err(TrafficError::InvalidPercent { percent });
    }
    let to_key = to.key();
    let mut target = Map::new();
    target.insert("host".into(), Value::from(to.host.as_str()));
    if let Some(port) = to.port {
        target.insert("port".into(), json!({ "number": port }));
    }
    if let Some(subset) = &to.subset {
        target.insert("subset".into(), Value::from(subset.as_str()));
    }
    let mut out = original.clone();
    let rules = http_rules_mut(&mut out, &name)?;
    let mut routed = 0;
    for (ri, rule) in rules.iter_mut().enumerate() {
        let Some(rule) = rule.as_object_mut() else {
            return Err(malformed(&name, format!("spec.http[{ri}]"), "is not a map"));
        };
        if ["redirect", "directResponse", "delegate"]
            .iter()
            .any(|k| rule.contains_key(*k))
        {
            continue;
        }
        let Some(route) = rule.get_mut("route") else {
            continue;
        };
        let Some(route) = route.as_array_mut() else {
            return Err(malformed(
                &name,
                format!("spec.http[{ri}].route"),
                "is not a list",
            ));
        };
        let sole = route.len() == 1;
        let mut weights = Vec::with_capacity(route.len());
        let mut keys = Vec::with_capacity(route.len());
        for (di, entry) in route.iter().enumerate() {
            let key = entry_key(entry).ok_or_else(|| {
                malformed(
                    &name,
                    format!("spec.http[{ri}].route[{di}].destination.host"),
                    "is missing",
                )
            })?;
            if key == to_key {
                return Err(TrafficError::DuplicateDestination { destination: key });
            }
            let weight = entry_weight(entry).map_err(|problem| {
                malformed(
                    &name,
                    format!("spec.http[{ri}].route[{di}].weight"),
                    problem,
                )
            })?;
            weights.push(effective_weight(weight, sole).max(0));
            keys.push(key);
        }
        if weights.iter().sum::<i64>() == 0 {
            return Err(TrafficError::ZeroTotalWeight { destinations: keys });
        }
        let scaled = scale_weights(&weights, 100 - percent);
        for (entry, weight) in route.iter_mut().zip(scaled) {
            if let Some(map) = entry.as_object_mut() {
                map.insert("weight".into(), Value::from(weight));
                if let Some(served_by) = served_by {
                    set_response_header(map, &served_by.header, &served_by.source);
                }
            }
        }
        let mut added = Map::new();
        added.insert("destination".into(), Value::Object(target.clone()));
        added.insert("weight".into(), Value::from(percent));
        if let Some(served_by) = served_by {
            set_response_header(&mut added, &served_by.header, &served_by.target);
        }
        route.push(Value::Object(added));
        routed += 1;
    }
    if routed == 0 {
        return Err(TrafficError::NoHttpRoute { name });
    }
    Ok(out)
}

/// `weights` (not all 0) scaled to add up to `total`, in their proportions: floors, then the
/// largest remainders get one more (earlier entries first on ties); a 0 stays 0.
fn scale_weights(weights: &[i64], total: i64) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    let total = i128::from(total);
    let mut scaled: Vec<i64> = weights
        .iter()
        .map(|w| (i128::from(*w) * total / sum) as i64)
        .collect();
    let mut left = total - scaled.iter().map(|w| i128::from(*w)).sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).filter(|i| weights[*i] > 0).collect();
    order.sort_by_key(|i| std::cmp::Reverse(i128::from(weights[*i]) * total % sum));
    for i in order.iter().cycle() {
        if left <= 0 {
            break;
        }
        scaled[*i] += 1;
        left -= 1;
    }
    scaled
}

/// Sets `headers.response.set[name] = value` on a route entry, keeping its other header
/// operations.
fn set_response_header(entry: &mut Map<String, Value>, name: &str, value: &str) {
    let headers = entry
        .entry("headers")
        .or_insert_with(|| Value::Object(Map::new()));
    if !headers.is_object() {
        *headers = Value::Object(Map::new());
    }
    let response = headers
        .as_object_mut()
        .expect("an object")
        .entry("response")
        .or_insert_with(|| Value::Object(Map::new()));
    if !response.is_object() {
        *response = Value::Object(Map::new());
    }
    let set = response
        .as_object_mut()
        .expect("an object")
        .entry("set")
        .or_insert_with(|| Value::Object(Map::new()));
    if !set.is_object() {
        *set = Value::Object(Map::new());
    }
    set.as_object_mut()
        .expect("an object")
        .insert(name.to_string(), Value::from(value));
}

/// Destination key of one `route` entry (`{destination: {host, port, subset}, weight}`).
fn entry_key(entry: &Value) -> Option<String> {
    let destination = entry.get("destination")?;
    let host = destination.get("host")?.as_str()?;
    let port = destination.pointer("/port/number").and_then(Value::as_u64);
    let subset = destination.get("subset").and_then(Value::as_str);
    Some(format_key(host, port, subset))
}

fn format_key(host: &str, port: Option<u64>, subset: Option<&str>) -> String {
    let mut key = host.to_string();
    if let Some(port) = port {
        key.push(':');
        key.push_str(&port.to_string());
    }
    if let Some(subset) = subset {
        key.push('/');
        key.push_str(subset);
    }
    key
}

/// `(host, port, subset)` of a key or short form.
fn parse_key(key: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, subset) = match key.split_once('/') {
        Some((rest, subset)) => (rest, Some(subset)),
        None => (key, None),
    };
    match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port), subset),
        None => (rest, None, subset),
    }
}

/// The key among `available` that `query` names: an exact key, else the single key whose parts
/// agree with every part the query gives.
fn resolve_key(query: &str, available: &[String], name: &str) -> Result<String, TrafficError> {
    if available.iter().any(|k| k == query) {
        return Ok(query.to_string());
    }
    let (host, port, subset) = parse_key(query);
    let candidates: Vec<String> = available
        .iter()
        .filter(|k| {
            let (h, p, s) = parse_key(k);
            h == host && (port.is_none() || port == p) && (subset.is_none() || subset == s)
        })
        .cloned()
        .collect();
    match candidates.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(TrafficError::UnknownDestination {
            destination: query.to_string(),
            name: name.to_string(),
            available: available.to_vec(),
        }),
        _ => Err(TrafficError::AmbiguousDestination {
            destination: query.to_string(),
            name: name.to_string(),
            candidates,
        }),
    }
}

/// Distinct destination keys over all HTTP rules, in order of appearance.
fn destination_keys(vs: &Value, name: &str) -> Result<Vec<String>, TrafficError> {
    let rules = http_rules(vs, name)?;
    let mut keys: Vec<String> = Vec::new();
    for rule in rules {
        let Some(route) = rule.get("route").and_then(Value::as_array) else {
            continue;
        };
        for key in route.iter().filter_map(entry_key) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    if keys.is_empty() {
        return Err(TrafficError::NoHttpRoute {
            name: name.to_string(),
        });
    }
    Ok(keys)
}

/// The raw `weight` of a route entry: `None` when absent; an error for a non-integer.
fn entry_weight(entry: &Value) -> Result<Option<i64>, &'static str> {
    match entry.get("weight") {
        None | Some(Value::Null) => Ok(None),
        Some(w) => {
            if let Some(i) = w.as_i64() {
                return Ok(Some(i));
            }
            // Scripts may hand integers over as floats; accept those that are whole.
            match w.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() <= i64::MAX as f64 => Ok(Some(f as i64)),
                _ => Err("is not an integer"),
            }
        }
    }
}

/// Weight as reported: an absent weight is 100 for a sole destination, 0 among several.
fn effective_weight(weight: Option<i64>, sole: bool) -> i64 {
    match weight {
        Some(w) => w,
        None if sole => 100,
        None => 0,
    }
}

fn check_kind(vs: &Value) -> Result<(), TrafficError> {
    match vs.get("kind").and_then(Value::as_str) {
        None | Some("VirtualService") => Ok(()),
        Some(kind) => Err(TrafficError::NotVirtualService {
            kind: kind.to_string(),
        }),
    }
}

fn vs_name(vs: &Value) -> String {
    vs.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_string()
}

fn malformed(name: &str, path: String, problem: &'static str) -> TrafficError {
    TrafficError::Malformed {
        name: name.to_string(),
        path,
        problem,
    }
}

fn http_rules<'v>(vs: &'v Value, name: &str) -> Result<&'v Vec<Value>, TrafficError> {
    match vs.pointer("/spec/http") {
        None => Err(TrafficError::NoHttpRoute {
            name: name.to_string(),
        }),
        Some(Value::Array(rules)) => Ok(rules),
        Some(_) => Err(malformed(name, "spec.http".into(), "is not a list")),
    }
}

fn http_rules_mut<'v>(vs: &'v mut Value, name: &str) -> Result<&'v mut Vec<Value>, TrafficError> {
    match vs.pointer_mut("/spec/http") {
        None => Err(TrafficError::NoHttpRoute {
            name: name.to_string(),
        }),
        Some(Value::Array(rules)) => Ok(rules),
        Some(_) => Err(malformed(name, "spec.http".into(), "is not a list")),
    }
}

/// DNS-1123 label: 1 to 63 lower-case letters, digits and `-`, starting and ending with a letter
/// or digit.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// DNS-1123 subdomain (what Kubernetes requires of object names): dot-separated labels, at most
/// 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A DNS host name; letters of either case, since host names are case-insensitive.
fn is_dns_host(s: &str) -> bool {
    is_dns_subdomain(&s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bookinfo Gateway's VirtualService, as in the AKS guide and Istio's
    /// `samples/bookinfo/networking/bookinfo-gateway.yaml`.
    fn bookinfo() -> Value {
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": { "name": "bookinfo", "namespace": "default" },
            "spec": {
                "hosts": ["*"],
                "gateways": ["bookinfo-gateway"],
                "http": [{
                    "match": [
                        { "uri": { "exact": "/productpage" } },
                        { "uri": { "prefix": "/static" } },
                        { "uri": { "exact": "/login" } },
                        { "uri": { "exact": "/logout" } },
                        { "uri": { "prefix": "/api/v1/products" } },
                    ],
                    "route": [{ "destination": { "host": "productpage", "port": { "number": 9080 } } }],
                }],
            },
        })
    }

    /// The guide's 90/10 version, routing a tenth to the target cluster's ServiceEntry host.
    fn bookinfo_90_10() -> Value {
        let mut vs = bookinfo();
        vs["spec"]["http"][0]["route"] = json!([
            { "destination": { "host": "productpage", "port": { "number": 9080 } }, "weight": 90 },
            { "destination": { "host": "v2.example.com", "port": { "number": 80 } }, "weight": 10 },
        ]);
        vs
    }

    fn w(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn shift_routes(source: i64, target: i64) -> [WeightedDestination; 2] {
        [
            WeightedDestination::new("productpage", source).with_port(9080),
            WeightedDestination::new("v2.example.com", target).with_port(80),
        ]
    }

    #[test]
    fn service_entry_matches_the_guide() {
        let se = service_entry("target-cluster-http", "v2.example.com", "20.10.30.40", 80).unwrap();
        let expected = json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": { "name": "target-cluster-http" },
            "spec": {
                "hosts": ["v2.example.com"],
                "location": "MESH_EXTERNAL",
                "ports": [{ "number": 80, "name": "http", "protocol": "HTTP" }],
                "resolution": "STATIC",
                "endpoints": [{ "address": "20.10.30.40" }],
            },
        });
        assert_eq!(se, expected);
        // Key order is kept for readable YAML.
        let keys: Vec<&String> = se["spec"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["hosts", "location", "ports", "resolution", "endpoints"]
        );
        assert!(service_entry("se", "v2.example.com", "fd00::1", 8080).is_ok());
    }

    #[test]
    fn service_entry_validation() {
        let err = service_entry("se", "v2.example.com", "target.example.com", 80).unwrap_err();
        assert_eq!(
            err.to_string(),
            "endpoint address `target.example.com` is not an IP address: resolution `STATIC` rejects host names"
        );
        let err = service_entry("Target_HTTP", "v2.example.com", "10.0.0.1", 80).unwrap_err();
        assert!(matches!(err, TrafficError::InvalidName { .. }));
        assert!(
            err.to_string()
                .starts_with("`Target_HTTP` is not a valid object name")
        );
        for host in [
            "",
            "-bad.example.com",
            "a..b",
            "exa mple.com",
            "*.example.com",
        ] {
            let err = service_entry("se", host, "10.0.0.1", 80).unwrap_err();
            assert_eq!(
                err,
                TrafficError::InvalidHost {
                    host: host.to_string()
                }
            );
        }
        for port in [0, -1, 65_536] {
            let err = service_entry("se", "v2.example.com", "10.0.0.1", port).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("port `{port}` is not in 1..=65535")
            );
        }
        assert!(service_entry("se", "v2.example.com", "10.0.0.1", 65_535).is_ok());
        assert!(service_entry(&"a".repeat(254), "h", "10.0.0.1", 80).is_err());
    }

    #[test]
    fn weighted_routes_builds_the_guides_90_10() {
        let shifted = weighted_routes(&bookinfo(), &shift_routes(90, 10)).unwrap();
        assert_eq!(shifted, bookinfo_90_10());
        // Weights of the new route; matches and everything else unchanged.
        assert_eq!(
            route_weights(&shifted),
            w(&[("productpage:9080", 90), ("v2.example.com:80", 10)])
        );
        assert_eq!(
            shifted["spec"]["http"][0]["match"],
            bookinfo()["spec"]["http"][0]["match"]
        );
        assert_eq!(shifted["spec"]["gateways"], json!(["bookinfo-gateway"]));
    }

    #[test]
    fn weighted_routes_keeps_rule_fields() {
        let mut vs = bookinfo();
        vs["spec"]["http"][0]["timeout"] = json!("10s");
        vs["spec"]["http"][0]["rewrite"] = json!({ "uri": "/" });
        vs["spec"]["http"].as_array_mut().unwrap().push(json!({
            "match": [{ "uri": { "exact": "/old" } }],
            "redirect": { "uri": "/productpage" },
        }));
        vs["spec"]["tcp"] = json!([{ "route": [{ "destination": { "host": "db" } }] }]);
        let routes = [
            WeightedDestination::new("reviews", 80).with_subset("v1"),
            WeightedDestination::new("reviews", 20).with_subset("v2"),
        ];
        let out = weighted_routes(&vs, &routes).unwrap();
        let rule = &out["spec"]["http"][0];
        assert_eq!(rule["timeout"], "10s");
        assert_eq!(rule["rewrite"], json!({ "uri": "/" }));
        // `route` stays where it was among the rule's fields.
        let keys: Vec<&String> = rule.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["match", "route", "timeout", "rewrite"]);
        assert_eq!(
            rule["route"],
            json!([
                { "destination": { "host": "reviews", "subset": "v1" }, "weight": 80 },
                { "destination": { "host": "reviews", "subset": "v2" }, "weight": 20 },
            ])
        );
        assert_eq!(out["spec"]["http"][1], vs["spec"]["http"][1]);
        assert_eq!(out["spec"]["tcp"], vs["spec"]["tcp"]);
        assert_eq!(
            route_weights(&out),
            w(&[("reviews/v1", 80), ("reviews/v2", 20)])
        );
    }

    #[test]
    fn weighted_routes_validation() {
        let vs = bookinfo();
        let err = weighted_routes(&vs, &shift_routes(90, -10)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "destination `v2.example.com:80` has negative weight `-10`"
        );
        let err = weighted_routes(&vs, &shift_routes(0, 0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "weights of `productpage:9080`, `v2.example.com:80` add up to 0"
        );
        // A single destination may have weight 0: it still gets all traffic.
        assert!(weighted_routes(&vs, &[WeightedDestination::new("productpage", 0)]).is_ok());
        assert_eq!(
            weighted_routes(&vs, &[]).unwrap_err(),
            TrafficError::NoDestinations
        );
        let dup = [
            WeightedDestination::new("a", 1),
            WeightedDestination::new("a", 2),
        ];
        assert_eq!(
            weighted_routes(&vs, &dup).unwrap_err().to_string(),
            "destination `a` is given twice"
        );
        let bad = [WeightedDestination::new("a", 1).with_subset("V_1")];
        assert!(matches!(
            weighted_routes(&vs, &bad),
            Err(TrafficError::InvalidSubset { .. })
        ));
        let bad = [WeightedDestination::new("a b", 1)];
        assert!(matches!(
            weighted_routes(&vs, &bad),
            Err(TrafficError::InvalidHost { .. })
        ));
        let bad = [WeightedDestination::new("a", 1).with_port(0)];
        assert!(matches!(
            weighted_routes(&vs, &bad),
            Err(TrafficError::InvalidPort { port: 0 })
        ));
        let gw = json!({ "kind": "Gateway", "metadata": { "name": "g" } });
        assert_eq!(
            weighted_routes(&gw, &shift_routes(1, 1))
                .unwrap_err()
                .to_string(),
            "expected a `VirtualService`, got `Gateway`"
        );
        let empty = json!({ "kind": "VirtualService", "metadata": { "name": "x" }, "spec": {} });
        assert_eq!(
            weighted_routes(&empty, &shift_routes(1, 1))
                .unwrap_err()
                .to_string(),
            "virtual service `x` has no http rule with a route"
        );
        let odd =
            json!({ "kind": "VirtualService", "metadata": { "name": "x" }, "spec": { "http": 3 } });
        assert_eq!(
            weighted_routes(&odd, &shift_routes(1, 1))
                .unwrap_err()
                .to_string(),
            "`spec.http` of virtual service `x` is not a list"
        );
    }

    #[test]
    fn route_weights_reads_the_first_rule() {
        // A sole destination without weight gets all traffic.
        assert_eq!(route_weights(&bookinfo()), w(&[("productpage:9080", 100)]));
        assert_eq!(
            route_weights(&bookinfo_90_10()),
            w(&[("productpage:9080", 90), ("v2.example.com:80", 10)])
        );
        let mut vs = bookinfo_90_10();
        vs["spec"]["http"][0]["route"][1]
            .as_object_mut()
            .unwrap()
            .remove("weight");
        assert_eq!(
            route_weights(&vs),
            w(&[("productpage:9080", 90), ("v2.example.com:80", 0)])
        );
        assert!(route_weights(&json!({})).is_empty());
        assert!(route_weights(&json!({ "spec": { "http": "x" } })).is_empty());
    }

    #[test]
    fn set_weights_shifts_and_returns_previous() {
        let (out, previous) = set_weights(
            &bookinfo_90_10(),
            &w(&[("productpage:9080", 50), ("v2.example.com:80", 50)]),
        )
        .unwrap();
        assert_eq!(
            previous,
            w(&[("productpage:9080", 90), ("v2.example.com:80", 10)])
        );
        assert_eq!(
            route_weights(&out),
            w(&[("productpage:9080", 50), ("v2.example.com:80", 50)])
        );
        // Only the weights changed.
        let mut expected = bookinfo_90_10();
        expected["spec"]["http"][0]["route"][0]["weight"] = json!(50);
        expected["spec"]["http"][0]["route"][1]["weight"] = json!(50);
        assert_eq!(out, expected);
        // Bare hosts are accepted when unambiguous; previous uses full keys.
        let (out, previous) =
            set_weights(&out, &w(&[("v2.example.com", 100), ("productpage", 0)])).unwrap();
        assert_eq!(
            previous,
            w(&[("v2.example.com:80", 50), ("productpage:9080", 50)])
        );
        assert_eq!(
            route_weights(&out),
            w(&[("productpage:9080", 0), ("v2.example.com:80", 100)])
        );
        // Naming only some destinations leaves the others alone.
        let (out, _) = set_weights(&bookinfo_90_10(), &w(&[("v2.example.com", 30)])).unwrap();
        assert_eq!(
            route_weights(&out),
            w(&[("productpage:9080", 90), ("v2.example.com:80", 30)])
        );
    }

    #[test]
    fn set_weights_changes_every_rule_that_routes_there() {
        let mut vs = bookinfo_90_10();
        let second = json!({
            "match": [{ "uri": { "prefix": "/health" } }],
            "route": [
                { "destination": { "host": "productpage", "port": { "number": 9080 } }, "weight": 90 },
                { "destination": { "host": "v2.example.com", "port": { "number": 80 } }, "weight": 10 },
            ],
            "timeout": "2s",
        });
        let other = json!({ "route": [{ "destination": { "host": "ratings" } }] });
        let rules = vs["spec"]["http"].as_array_mut().unwrap();
        rules.push(second);
        rules.push(other.clone());
        let (out, _) =
            set_weights(&vs, &w(&[("productpage", 75), ("v2.example.com", 25)])).unwrap();
        for i in 0..2 {
            assert_eq!(out["spec"]["http"][i]["route"][0]["weight"], 75);
            assert_eq!(out["spec"]["http"][i]["route"][1]["weight"], 25);
        }
        assert_eq!(out["spec"]["http"][1]["timeout"], "2s");
        assert_eq!(out["spec"]["http"][2], other);
    }

    #[test]
    fn set_weights_errors() {
        let vs = bookinfo_90_10();
        let err = set_weights(&vs, &w(&[("reviews", 10)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "destination `reviews` is not in virtual service `bookinfo` \
             (available: `productpage:9080`, `v2.example.com:80`)"
        );
        let err = set_weights(&vs, &w(&[("productpage:8080", 10)])).unwrap_err();
        assert!(matches!(err, TrafficError::UnknownDestination { .. }));
        let err = set_weights(&vs, &w(&[("productpage", -1)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "destination `productpage:9080` has negative weight `-1`"
        );
        let err =
            set_weights(&vs, &w(&[("productpage", 0), ("v2.example.com:80", 0)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "weights of `productpage:9080`, `v2.example.com:80` add up to 0"
        );
        let err = set_weights(&vs, &w(&[("productpage", 1), ("productpage:9080", 2)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "destination `productpage:9080` is given twice"
        );
        assert_eq!(
            set_weights(&vs, &[]).unwrap_err(),
            TrafficError::NoDestinations
        );
        // Setting a sole destination to 0 would not stop its traffic.
        let err = set_weights(&bookinfo(), &w(&[("productpage", 0)])).unwrap_err();
        assert_eq!(err.to_string(), "weights of `productpage:9080` add up to 0");
        // A host routed to on two ports is ambiguous without one.
        let mut two_ports = bookinfo_90_10();
        two_ports["spec"]["http"][0]["route"][1]["destination"] =
            json!({ "host": "productpage", "port": { "number": 9443 } });
        let err = set_weights(&two_ports, &w(&[("productpage", 5)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "destination `productpage` is ambiguous in virtual service `bookinfo`: \
             it matches `productpage:9080`, `productpage:9443`"
        );
        let mut bad = bookinfo_90_10();
        bad["spec"]["http"][0]["route"][0]["weight"] = json!("ninety");
        let err = set_weights(&bad, &w(&[("v2.example.com", 5)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`spec.http[0].route[0].weight` of virtual service `bookinfo` is not an integer"
        );
    }

    #[test]
    fn subsets_in_keys() {
        let vs = json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": { "name": "reviews" },
            "spec": {
                "hosts": ["reviews"],
                "http": [{ "route": [
                    { "destination": { "host": "reviews", "subset": "v1" }, "weight": 90 },
                    { "destination": { "host": "reviews", "subset": "v2" }, "weight": 10 },
                ] }],
            },
        });
        assert_eq!(
            route_weights(&vs),
            w(&[("reviews/v1", 90), ("reviews/v2", 10)])
        );
        let err = set_weights(&vs, &w(&[("reviews", 1)])).unwrap_err();
        assert!(matches!(err, TrafficError::AmbiguousDestination { .. }));
        let (out, previous) =
            set_weights(&vs, &w(&[("reviews/v1", 0), ("reviews/v2", 100)])).unwrap();
        assert_eq!(previous, w(&[("reviews/v1", 90), ("reviews/v2", 10)]));
        assert_eq!(
            route_weights(&out),
            w(&[("reviews/v1", 0), ("reviews/v2", 100)])
        );
        assert_eq!(
            WeightedDestination::new("reviews", 1)
                .with_port(9080)
                .with_subset("v2")
                .key(),
            "reviews:9080/v2"
        );
    }

    #[test]
    fn float_weights_from_scripts_are_accepted() {
        let mut vs = bookinfo_90_10();
        vs["spec"]["http"][0]["route"][0]["weight"] = json!(90.0);
        let (_, previous) = set_weights(&vs, &w(&[("productpage", 50)])).unwrap();
        assert_eq!(previous, w(&[("productpage:9080", 90)]));
    }

    /// A shop's VirtualService: a header match, a prefix with retries and a timeout, a subset
    /// split, a redirect.
    fn shop() -> Value {
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": { "name": "shop", "namespace": "shop" },
            "spec": {
                "hosts": ["shop.example.com"],
                "gateways": ["shop-gateway"],
                "http": [
                    { "match": [{ "headers": { "x-beta": { "exact": "1" } } }],
                      "route": [{ "destination": { "host": "echo", "subset": "v2" } }] },
                    { "match": [{ "uri": { "prefix": "/api" } }],
                      "retries": { "attempts": 3, "perTryTimeout": "2s" }, "timeout": "5s",
                      "route": [{ "destination": { "host": "api", "port": { "number": 8080 } },
                                  "headers": { "response": { "add": { "x-api": "yes" } } } }] },
                    { "match": [{ "uri": { "exact": "/old" } }], "redirect": { "uri": "/" } },
                    { "route": [{ "destination": { "host": "echo", "subset": "v1" }, "weight": 80 },
                                { "destination": { "host": "echo", "subset": "v2" }, "weight": 20 }] },
                ],
            },
        })
    }

    fn served_by() -> ServedBy {
        ServedBy {
            header: "x-served-by".into(),
            source: "source".into(),
            target: "target".into(),
        }
    }

    #[test]
    fn a_shift_keeps_every_rule_and_scales_its_destinations() {
        let to = WeightedDestination::new("v2.example.com", 0).with_port(80);
        let shifted = super::shift_routes(&shop(), &to, 10, Some(&served_by())).unwrap();
        let rules = shifted["spec"]["http"].as_array().unwrap();
        assert_eq!(rules.len(), 4);
        let weights = |rule: &Value| -> Vec<(String, i64)> {
            rule["route"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (entry_key(e).unwrap(), e["weight"].as_i64().unwrap()))
                .collect()
        };
        assert_eq!(
            weights(&rules[0]),
            [("echo/v2".into(), 90), ("v2.example.com:80".into(), 10)]
        );
        assert_eq!(rules[0]["match"], shop()["spec"]["http"][0]["match"]);
        assert_eq!(rules[1]["retries"]["attempts"], 3);
        assert_eq!(rules[1]["timeout"], "5s");
        assert_eq!(
            rules[1]["route"][0]["headers"]["response"]["add"]["x-api"],
            "yes"
        );
        assert_eq!(
            rules[1]["route"][0]["headers"]["response"]["set"]["x-served-by"],
            "source"
        );
        assert_eq!(
            rules[1]["route"][1]["headers"]["response"]["set"]["x-served-by"],
            "target"
        );
        assert_eq!(
            rules[2],
            shop()["spec"]["http"][2],
            "the redirect is left alone"
        );
        assert_eq!(
            weights(&rules[3]),
            [
                ("echo/v1".into(), 72),
                ("echo/v2".into(), 18),
                ("v2.example.com:80".into(), 10)
            ]
        );
        let all = super::shift_routes(&shop(), &to, 100, None).unwrap();
        assert_eq!(
            weights(&all["spec"]["http"][3]),
            [
                ("echo/v1".into(), 0),
                ("echo/v2".into(), 0),
                ("v2.example.com:80".into(), 100)
            ]
        );
    }

    #[test]
    fn scaled_weights_add_up_and_keep_zeros() {
        assert_eq!(scale_weights(&[1, 1, 1], 75), [25, 25, 25]);
        assert_eq!(scale_weights(&[1, 1, 1], 50), [17, 17, 16]);
        assert_eq!(scale_weights(&[0, 100], 90), [0, 90]);
        assert_eq!(scale_weights(&[33, 67], 0), [0, 0]);
    }

    #[test]
    fn a_shift_refuses_what_it_cannot_do() {
        let to = WeightedDestination::new("v2.example.com", 0).with_port(80);
        assert!(matches!(
            super::shift_routes(&shop(), &to, 101, None),
            Err(TrafficError::InvalidPercent { percent: 101 })
        ));
        let once = super::shift_routes(&shop(), &to, 10, None).unwrap();
        assert!(matches!(
            super::shift_routes(&once, &to, 20, None),
            Err(TrafficError::DuplicateDestination { .. })
        ));
    }
}
