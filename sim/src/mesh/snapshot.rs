//! The routing configuration of one cluster as its gateways see it at one moment: Services,
//! their pods, Gateways, VirtualServices, DestinationRules and ServiceEntries, read from the
//! objects into a form that answers requests quickly (regexes compiled, selectors resolved).

use std::collections::{BTreeMap, HashMap};

use regex::Regex;
use serde_json::Value;

use super::faults::Faults;
use crate::object::labels;
use crate::workload::pod::is_ready;

/// `(namespace, name)`.
pub type Key = (String, String);

/// A Service port.
#[derive(Clone, Debug, PartialEq)]
pub struct ServicePort {
    /// Port name.
    pub name: String,
    /// Service port.
    pub port: u16,
    /// Target port number (a named target port is resolved against the pods when possible).
    pub target_port: u16,
}

/// A Service.
#[derive(Clone, Debug)]
pub struct ServiceInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Pod selector (`None`: selects nothing, as a Service without selector).
    pub selector: Option<BTreeMap<String, String>>,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// `status.loadBalancer.ingress[0].ip` of a LoadBalancer Service.
    pub load_balancer_ip: Option<String>,
    /// Faults from annotations.
    pub faults: Faults,
    /// Indices (into [`MeshSnapshot::pods`]) of the Ready pods it selects.
    pub ready_pods: Vec<usize>,
}

/// A pod.
#[derive(Clone, Debug)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Ready condition.
    pub ready: bool,
    /// The pod runs an Envoy gateway (its first container is `istio-proxy`).
    pub gateway_proxy: bool,
    /// Its own propagation delay (annotation `sim.meshshift.io/propagation-delay`), if any.
    pub propagation: Option<super::proxies::PodPropagation>,
}

/// One server of a Gateway.
#[derive(Clone, Debug)]
pub struct GatewayServer {
    /// `port.number`.
    pub port: u16,
    /// Hosts, without any `namespace/` prefix.
    pub hosts: Vec<String>,
}

/// A Gateway.
#[derive(Clone, Debug)]
pub struct GatewayInfo {
    /// `namespace/name`, as VirtualServices name it.
    pub id: String,
    /// Workload selector.
    pub selector: BTreeMap<String, String>,
    /// Servers.
    pub servers: Vec<GatewayServer>,
}

/// How a string is matched.
#[derive(Clone, Debug)]
pub enum StringMatch {
    /// Equal.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Matches the whole string.
    Regex(Regex),
}

impl StringMatch {
    fn of(value: &Value) -> Option<StringMatch> {
        if let Some(exact) = value.get("exact").and_then(Value::as_str) {
            return Some(StringMatch::Exact(exact.to_string()));
        }
        if let Some(prefix) = value.get("prefix").and_then(Value::as_str) {
            return Some(StringMatch::Prefix(prefix.to_string()));
        }
        let pattern = value.get("regex").and_then(Value::as_str)?;
        Regex::new(&format!("^(?:{pattern})$"))
            .ok()
            .map(StringMatch::Regex)
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            StringMatch::Exact(exact) => text == exact,
            StringMatch::Prefix(prefix) => text.starts_with(prefix.as_str()),
            StringMatch::Regex(regex) => regex.is_match(text),
        }
    }
}

/// One entry of an HTTP route's `match` list: all its conditions must hold.
#[derive(Clone, Debug, Default)]
pub struct RequestMatch {
    /// On the path (without the query).
    pub uri: Option<StringMatch>,
    /// On headers (lower-case names).
    pub headers: Vec<(String, StringMatch)>,
    /// On the method.
    pub method: Option<StringMatch>,
    /// On the port the request arrived at.
    pub port: Option<u16>,
    /// Only for requests through these gateways (`namespace/name`).
    pub gateways: Vec<String>,
    /// Negative header matches (`withoutHeaders`).
    pub without_headers: Vec<(String, StringMatch)>,
}

/// A weighted destination of a route.
#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    /// `destination.host`.
    pub host: String,
    /// `destination.port.number`.
    pub port: Option<u16>,
    /// `destination.subset`.
    pub subset: Option<String>,
    /// `weight` (missing: 0).
    pub weight: u32,
    /// `headers`: operations applied when this destination is chosen
    /// (Istio's `HTTPRouteDestination.headers`, Envoy's weighted-cluster header options).
    pub headers: Headers,
}

/// Header operations of one direction (Istio's `Headers.HeaderOperations`), as Envoy applies
/// them: `remove` first, then `set` (replacing every value), then `add` (appending).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeaderOperations {
    /// Replace (or add) these headers.
    pub set: Vec<(String, String)>,
    /// Append these values.
    pub add: Vec<(String, String)>,
    /// Remove these headers.
    pub remove: Vec<String>,
}

impl HeaderOperations {
    fn of(value: Option<&Value>) -> HeaderOperations {
        let pairs = |field: &str| -> Vec<(String, String)> {
            let mut pairs: Vec<(String, String)> = value
                .and_then(|v| v.get(field))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            (
                                k.to_ascii_lowercase(),
                                v.as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            pairs.sort();
            pairs
        };
        HeaderOperations {
            set: pairs("set"),
            add: pairs("add"),
            remove: strings(value.and_then(|v| v.get("remove")))
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies the operations to headers with lower-case names.
    pub fn apply(&self, headers: &mut Vec<(String, String)>) {
        headers.retain(|(name, _)| !self.remove.contains(name));
        for (name, value) in &self.set {
            headers.retain(|(n, _)| n != name);
            headers.push((name.clone(), value.clone()));
        }
        for (name, value) in &self.add {
            headers.push((name.clone(), value.clone()));
        }
    }
}

/// Istio's `Headers`: operations on the request (before it goes upstream) and on the response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Headers {
    /// `request`.
    pub request: HeaderOperations,
    /// `response`.
    pub response: HeaderOperations,
}

impl Headers {
    fn of(value: Option<&Value>) -> Headers {
        Headers {
            request: HeaderOperations::of(value.and_then(|v| v.get("request"))),
            response: HeaderOperations::of(value.and_then(|v| v.get("response"))),
        }
    }
}

/// A condition of Envoy's `retry_on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryOn {
    /// `5xx`: any 5xx answer, a reset or a per-try timeout.
    FiveXx,
    /// `gateway-error`: 502, 503, 504, a reset or a per-try timeout.
    GatewayError,
    /// `reset`: a reset or a per-try timeout.
    Reset,
    /// `connect-failure`: the connection could not be made.
    ConnectFailure,
    /// `retriable-4xx`: 409.
    Retriable4xx,
    /// `retriable-status-codes`: the policy's codes.
    RetriableStatusCodes,
}

/// The retry policy of a route (Istio's `HTTPRetry` translated as istiod translates it,
/// `pilot/pkg/networking/core/route/retry`).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first try (`attempts`; 0: none).
    pub attempts: u32,
    /// `perTryTimeout`.
    pub per_try_timeout: Option<std::time::Duration>,
    /// `retryOn` conditions this simulator can meet (gRPC and HTTP/2 ones are ignored).
    pub retry_on: Vec<RetryOn>,
    /// Status codes named in `retryOn`.
    pub retriable_status_codes: Vec<u16>,
}

impl Default for RetryPolicy {
    /// Istio's default for routes without `retries`: 2 retries on
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with 503
    /// retriable.
    fn default() -> Self {
        RetryPolicy {
            attempts: 2,
            per_try_timeout: None,
            retry_on: vec![RetryOn::ConnectFailure, RetryOn::RetriableStatusCodes],
            retriable_status_codes: vec![503],
        }
    }
}

impl RetryPolicy {
    /// No retries (`attempts: 0`).
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            attempts: 0,
            per_try_timeout: None,
            retry_on: Vec::new(),
            retriable_status_codes: Vec::new(),
        }
    }

    /// Reads Istio's `HTTPRetry` (`None`: the route has no `retries`).
    pub fn of(value: Option<&Value>) -> RetryPolicy {
        let Some(value) = value else {
            return RetryPolicy::default();
        };
        let attempts = value
            .get("attempts")
            .and_then(Value::as_u64)
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(0);
        if attempts == 0 {
            return RetryPolicy::none();
        }
        let mut policy = RetryPolicy {
            attempts,
            per_try_timeout: value
                .get("perTryTimeout")
                .and_then(Value::as_str)
                .map(duration)
                .filter(|d| !d.is_zero()),
            ..RetryPolicy::default()
        };
        if let Some(retry_on) = value
            .get("retryOn")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            policy.retry_on.clear();
            policy.retriable_status_codes.clear();
            for condition in retry_on.split(',').map(str::trim) {
                if let Ok(code) = condition.parse::<u16>() {
                    policy.retriable_status_codes.push(code);
                    continue;
                }
                let known = match condition {
                    "5xx" => RetryOn::FiveXx,
                    "gateway-error" => RetryOn::GatewayError,
                    "reset" => RetryOn::Reset,
                    "connect-failure" => RetryOn::ConnectFailure,
                    "retriable-4xx" => RetryOn::Retriable4xx,
                    "retriable-status-codes" => RetryOn::RetriableStatusCodes,
                    _ => continue,
                };
                policy.retry_on.push(known);
            }
            // istiod adds `retriable-status-codes` when codes are named without it.
            if !policy.retriable_status_codes.is_empty()
                && !policy.retry_on.contains(&RetryOn::RetriableStatusCodes)
            {
                policy.retry_on.push(RetryOn::RetriableStatusCodes);
            }
        }
        policy
    }

    /// Whether an answer with `status` is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        self.retry_on.iter().any(|on| match on {
            RetryOn::FiveXx => status >= 500,
            RetryOn::GatewayError => matches!(status, 502..=504),
            RetryOn::Retriable4xx => status == 409,
            RetryOn::RetriableStatusCodes => self.retriable_status_codes.contains(&status),
            RetryOn::Reset | RetryOn::ConnectFailure => false,
        })
    }

    /// Whether a reset before the answer, or a per-try timeout, is retried.
    pub fn retries_reset(&self) -> bool {
        self.retry_on
            .iter()
            .any(|on| matches!(on, RetryOn::FiveXx | RetryOn::GatewayError | RetryOn::Reset))
    }

    /// Whether a failed connection is retried.
    pub fn retries_connect_failure(&self) -> bool {
        self.retry_on.iter().any(|on| {
            matches!(
                on,
                RetryOn::FiveXx | RetryOn::GatewayError | RetryOn::Reset | RetryOn::ConnectFailure
            )
        })
    }
}

/// Istio's HTTP fault injection of a route.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteFault {
    /// Abort with this status…
    pub abort_status: Option<u16>,
    /// …for this share of requests.
    pub abort_ratio: f64,
    /// Delay by this much…
    pub delay: std::time::Duration,
    /// …for this share of requests.
    pub delay_ratio: f64,
}

/// What a route does.
#[derive(Clone, Debug)]
pub enum RouteAction {
    /// Forward to one of the weighted destinations.
    Destinations(Vec<Destination>),
    /// Answer directly.
    Direct {
        /// Status.
        status: u16,
        /// Body.
        body: String,
    },
    /// Redirect.
    Redirect {
        /// Status (301 by default).
        status: u16,
        /// New path (`uri`), if any.
        uri: Option<String>,
        /// New authority, if any.
        authority: Option<String>,
    },
}

/// An HTTP route.
#[derive(Clone, Debug)]
pub struct HttpRoute {
    /// Conditions (any may hold; none: always).
    pub matches: Vec<RequestMatch>,
    /// The action.
    pub action: RouteAction,
    /// Fault injection.
    pub fault: Option<RouteFault>,
    /// `rewrite.uri`: replaces the matched prefix (or the whole path).
    pub rewrite_uri: Option<String>,
    /// `rewrite.authority`: the Host sent upstream.
    pub rewrite_authority: Option<String>,
    /// `retries` (Istio's default policy when absent).
    pub retries: RetryPolicy,
    /// `timeout` (none when absent or 0, as istiod configures routes).
    pub timeout: Option<std::time::Duration>,
    /// `headers`: operations on every request and response of the route.
    pub headers: Headers,
}

/// A VirtualService.
#[derive(Clone, Debug)]
pub struct VirtualServiceInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Hosts.
    pub hosts: Vec<String>,
    /// Gateways it is bound to (`namespace/name`, or `mesh` for sidecars).
    pub gateways: Vec<String>,
    /// HTTP routes in order.
    pub http: Vec<HttpRoute>,
}

/// A DestinationRule.
#[derive(Clone, Debug)]
pub struct DestinationRuleInfo {
    /// Namespace.
    pub namespace: String,
    /// `host`.
    pub host: String,
    /// Subsets: name and labels.
    pub subsets: Vec<(String, BTreeMap<String, String>)>,
}

/// A ServiceEntry endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// Address.
    pub address: String,
    /// Port overrides by port name.
    pub ports: BTreeMap<String, u16>,
}

/// A ServiceEntry.
#[derive(Clone, Debug)]
pub struct ServiceEntryInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Hosts.
    pub hosts: Vec<String>,
    /// Ports: number and name.
    pub ports: Vec<(u16, String)>,
    /// `resolution`.
    pub resolution: String,
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// Everything a cluster's data plane routes by.
#[derive(Clone, Debug, Default)]
pub struct MeshSnapshot {
    /// The cluster's name.
    pub cluster: String,
    /// Set once the cluster was deleted (`az aks delete`): nothing is served.
    pub deleted: bool,
    /// Services by `(namespace, name)`.
    pub services: HashMap<Key, ServiceInfo>,
    /// Pods.
    pub pods: Vec<PodInfo>,
    /// Gateways.
    pub gateways: Vec<GatewayInfo>,
    /// VirtualServices, oldest first.
    pub virtual_services: Vec<VirtualServiceInfo>,
    /// DestinationRules.
    pub destination_rules: Vec<DestinationRuleInfo>,
    /// ServiceEntries.
    pub service_entries: Vec<ServiceEntryInfo>,
    /// Faults set on the running simulator (shared with its fault control).
    pub live_faults: super::faults::LiveFaults,
}

/// The raw objects a snapshot is built from.
#[derive(Clone, Debug, Default)]
pub struct MeshObjects {
    /// Services.
    pub services: Vec<Value>,
    /// Pods.
    pub pods: Vec<Value>,
    /// Gateways.
    pub gateways: Vec<Value>,
    /// VirtualServices.
    pub virtual_services: Vec<Value>,
    /// DestinationRules.
    pub destination_rules: Vec<Value>,
    /// ServiceEntries.
    pub service_entries: Vec<Value>,
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn port_number(value: Option<&Value>) -> Option<u16> {
    value
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether every label of `selector` is on `labels`.
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn named_container_port(pod: &Value, name: &str) -> Option<u16> {
    let containers = pod.pointer("/spec/containers")?.as_array()?;
    containers.iter().find_map(|c| {
        c.get("ports")?.as_array()?.iter().find_map(|p| {
            (p.get("name").and_then(Value::as_str) == Some(name))
                .then(|| port_number(p.get("containerPort")))
                .flatten()
        })
    })
}

fn service(object: &Value, pods: &[&Value]) -> ServiceInfo {
    let selector = object
        .pointer("/spec/selector")
        .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
        .map(|s| string_map(Some(s)));
    let ports = object
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| {
                    let port = port_number(p.get("port"))?;
                    let target_port = match p.get("targetPort") {
                        Some(Value::String(name)) => pods
                            .iter()
                            .find_map(|pod| named_container_port(pod, name))
                            .unwrap_or(port),
                        other => port_number(other).unwrap_or(port),
                    };
                    Some(ServicePort {
                        name: p
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        port,
                        target_port,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let load_balancer_ip = (text(object, "/spec/type") == "LoadBalancer")
        .then(|| {
            object
                .pointer("/status/loadBalancer/ingress/0/ip")
                .and_then(Value::as_str)
        })
        .flatten()
        .map(str::to_string);
    ServiceInfo {
        namespace: text(object, "/metadata/namespace").to_string(),
        name: text(object, "/metadata/name").to_string(),
        selector,
        ports,
        load_balancer_ip,
        faults: Faults::of(object),
        ready_pods: Vec::new(),
    }
}

fn request_match(value: &Value) -> RequestMatch {
    let header_matches = |field: &str| {
        value
            .get(field)
            .and_then(Value::as_object)
            .map(|headers| {
                headers
                    .iter()
                    .filter_map(|(name, m)| Some((name.to_ascii_lowercase(), StringMatch::of(m)?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    RequestMatch {
        uri: value.get("uri").and_then(StringMatch::of),
        headers: header_matches("headers"),
        without_headers: header_matches("withoutHeaders"),
        method: value.get("method").and_then(StringMatch::of),
        port: port_number(value.get("port")),
        gateways: strings(value.get("gateways")),
    }
}

fn percentage(fault: &Value) -> f64 {
    fault
        .pointer("/percentage/value")
        .and_then(Value::as_f64)
        .map(|p| (p / 100.0).clamp(0.0, 1.0))
        .unwrap_or(1.0)
}

/// An Istio duration (`1.5s`, `250ms`, `1m30s`); unreadable ones mean no delay.
fn duration(text: &str) -> std::time::Duration {
    meshshift_support::duration::parse_duration(text).unwrap_or_default()
}

fn route_fault(value: &Value) -> Option<RouteFault> {
    let fault = value.get("fault")?;
    let mut result = RouteFault::default();
    if let Some(abort) = fault.get("abort") {
        result.abort_status = port_number(abort.get("httpStatus"));
        result.abort_ratio = percentage(abort);
    }
    if let Some(delay) = fault.get("delay") {
        result.delay = duration(
            delay
                .get("fixedDelay")
                .and_then(Value::as_str)
                .unwrap_or("0s"),
        );
        result.delay_ratio = percentage(delay);
    }
    Some(result)
}

fn http_route(value: &Value) -> HttpRoute {
    let action = if let Some(direct) = value.get("directResponse") {
        RouteAction::Direct {
            status: port_number(direct.get("status")).unwrap_or(200),
            body: text(direct, "/body/string").to_string(),
        }
    } else if let Some(redirect) = value.get("redirect") {
        RouteAction::Redirect {
            status: port_number(redirect.get("redirectCode")).unwrap_or(301),
            uri: redirect
                .get("uri")
                .and_then(Value::as_str)
                .map(str::to_string),
            authority: redirect
                .get("authority")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    } else {
        let destinations = value
            .get("route")
            .and_then(Value::as_array)
            .map(|routes| {
                routes
                    .iter()
                    .map(|r| Destination {
                        host: text(r, "/destination/host").to_string(),
                        port: port_number(r.pointer("/destination/port/number")),
                        subset: r
                            .pointer("/destination/subset")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        weight: r
                            .get("weight")
                            .and_then(Value::as_u64)
                            .and_then(|w| u32::try_from(w).ok())
                            .unwrap_or(0),
                        headers: Headers::of(r.get("headers")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        RouteAction::Destinations(destinations)
    };
    HttpRoute {
        matches: value
            .get("match")
            .and_then(Value::as_array)
            .map(|m| m.iter().map(request_match).collect())
            .unwrap_or_default(),
        action,
        fault: route_fault(value),
        rewrite_uri: value
            .pointer("/rewrite/uri")
            .and_then(Value::as_str)
            .map(str::to_string),
        rewrite_authority: value
            .pointer("/rewrite/authority")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        retries: RetryPolicy::of(value.get("retries")),
        timeout: value
            .get("timeout")
            .and_then(Value::as_str)
            .map(duration)
            .filter(|d| !d.is_zero()),
        headers: Headers::of(value.get("headers")),
    }
}

/// `namespace/name` for a gateway reference written in namespace `namespace`.
pub fn gateway_reference(namespace: &str, reference: &str) -> String {
    if reference == "mesh" || reference.contains('/') {
        reference.to_string()
    } else {
        format!("{namespace}/{reference}")
    }
}

fn virtual_service(object: &Value) -> VirtualServiceInfo {
    let namespace = text(object, "/metadata/namespace").to_string();
    let mut gateways: Vec<String> = strings(object.pointer("/spec/gateways"))
        .iter()
        .map(|g| gateway_reference(&namespace, g))
        .collect();
    if gateways.is_empty() {
        gateways.push("mesh".into());
    }
    VirtualServiceInfo {
        name: text(object, "/metadata/name").to_string(),
        hosts: strings(object.pointer("/spec/hosts")),
        gateways,
        http: object
            .pointer("/spec/http")
            .and_then(Value::as_array)
            .map(|routes| routes.iter().map(http_route).collect())
            .unwrap_or_default(),
        namespace,
    }
}

fn gateway(object: &Value) -> GatewayInfo {
    let servers = object
        .pointer("/spec/servers")
        .and_then(Value::as_array)
        .map(|servers| {
            servers
                .iter()
                .filter_map(|s| {
                    Some(GatewayServer {
                        port: port_number(s.pointer("/port/number"))?,
                        hosts: strings(s.get("hosts"))
                            .into_iter()
                            .map(|h| h.rsplit('/').next().unwrap_or_default().to_string())
                            .collect(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    GatewayInfo {
        id: format!(
            "{}/{}",
            text(object, "/metadata/namespace"),
            text(object, "/metadata/name")
        ),
        selector: string_map(object.pointer("/spec/selector")),
        servers,
    }
}

fn destination_rule(object: &Value) -> DestinationRuleInfo {
    DestinationRuleInfo {
        namespace: text(object, "/metadata/namespace").to_string(),
        host: text(object, "/spec/host").to_string(),
        subsets: object
            .pointer("/spec/subsets")
            .and_then(Value::as_array)
            .map(|subsets| {
                subsets
                    .iter()
                    .map(|s| (text(s, "/name").to_string(), string_map(s.get("labels"))))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn service_entry(object: &Value) -> ServiceEntryInfo {
    ServiceEntryInfo {
        namespace: text(object, "/metadata/namespace").to_string(),
        name: text(object, "/metadata/name").to_string(),
        hosts: strings(object.pointer("/spec/hosts")),
        ports: object
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|p| {
                        Some((port_number(p.get("number"))?, text(p, "/name").to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        resolution: object
            .pointer("/spec/resolution")
            .and_then(Value::as_str)
            .unwrap_or("NONE")
            .to_string(),
        endpoints: object
            .pointer("/spec/endpoints")
            .and_then(Value::as_array)
            .map(|endpoints| {
                endpoints
                    .iter()
                    .map(|e| Endpoint {
                        address: text(e, "/address").to_string(),
                        ports: e
                            .get("ports")
                            .and_then(Value::as_object)
                            .map(|m| {
                                m.iter()
                                    .filter_map(|(k, v)| Some((k.clone(), port_number(Some(v))?)))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn creation_order(objects: &[Value]) -> Vec<&Value> {
    let mut sorted: Vec<&Value> = objects.iter().collect();
    sorted.sort_by(|a, b| {
        text(a, "/metadata/creationTimestamp")
            .cmp(text(b, "/metadata/creationTimestamp"))
            .then(text(a, "/metadata/namespace").cmp(text(b, "/metadata/namespace")))
            .then(text(a, "/metadata/name").cmp(text(b, "/metadata/name")))
    });
    sorted
}

impl MeshSnapshot {
    /// Builds the snapshot of cluster `cluster` from its objects.
    pub fn build(cluster: &str, deleted: bool, objects: &MeshObjects) -> MeshSnapshot {
        let pods: Vec<PodInfo> = objects
            .pods
            .iter()
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .map(|p| PodInfo {
                namespace: text(p, "/metadata/namespace").to_string(),
                name: text(p, "/metadata/name").to_string(),
                labels: labels(p),
                ready: is_ready(p),
                gateway_proxy: text(p, "/spec/containers/0/name") == "istio-proxy",
                propagation: p
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(super::proxies::PROPAGATION_DELAY))
                    .and_then(Value::as_str)
                    .and_then(|t| super::proxies::PodPropagation::parse(t).ok()),
            })
            .collect();
        let live: Vec<&Value> = objects
            .pods
            .iter()
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .collect();
        let mut services = HashMap::new();
        for object in &objects.services {
            let namespace = text(object, "/metadata/namespace");
            let selector = object
                .pointer("/spec/selector")
                .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
                .map(|s| string_map(Some(s)));
            let selected: Vec<usize> = match &selector {
                Some(selector) => pods
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.namespace == namespace && selects(selector, &p.labels))
                    .map(|(i, _)| i)
                    .collect(),
                None => Vec::new(),
            };
            // Named target ports are resolved against the selected pods' container ports.
            let selected_objects: Vec<&Value> = selected
                .iter()
                .filter_map(|i| live.get(*i).copied())
                .collect();
            let mut info = service(object, &selected_objects);
            info.ready_pods = selected.into_iter().filter(|i| pods[*i].ready).collect();
            services.insert((info.namespace.clone(), info.name.clone()), info);
        }
        MeshSnapshot {
            cluster: cluster.to_string(),
            deleted,
            services,
            pods,
            gateways: objects.gateways.iter().map(gateway).collect(),
            virtual_services: creation_order(&objects.virtual_services)
                .into_iter()
                .map(virtual_service)
                .collect(),
            destination_rules: objects
                .destination_rules
                .iter()
                .map(destination_rule)
                .collect(),
            service_entries: objects.service_entries.iter().map(service_entry).collect(),
            live_faults: Default::default(),
        }
    }

    /// The LoadBalancer listeners this cluster serves: address, port and Service.
    pub fn listeners(&self) -> Vec<(String, u16, Key)> {
        if self.deleted {
            return Vec::new();
        }
        let mut listeners: Vec<(String, u16, Key)> = self
            .services
            .values()
            .filter_map(|s| Some((s.load_balancer_ip.clone()?, s)))
            .flat_map(|(ip, s)| {
                s.ports
                    .iter()
                    .map(move |p| (ip.clone(), p.port, (s.namespace.clone(), s.name.clone())))
            })
            .collect();
        listeners.sort();
        listeners
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_objects() {
        let objects = MeshObjects {
            services: vec![
                json!({"metadata": {"namespace": "istio-system", "name": "istio-ingressgateway",
                                               "annotations": {"sim.meshshift.io/drop-ratio": "0.5"}},
                                  "spec": {"type": "LoadBalancer", "selector": {"istio": "ingressgateway"},
                                           "ports": [{"name": "http2", "port": 80, "targetPort": 8080}]},
                                  "status": {"loadBalancer": {"ingress": [{"ip": "127.0.1.1"}]}}}),
            ],
            pods: vec![
                json!({"metadata": {"namespace": "istio-system", "name": "gw-1", "labels": {"istio": "ingressgateway"}},
                              "spec": {"containers": [{"name": "istio-proxy"}]},
                              "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            ],
            virtual_services: vec![
                json!({"metadata": {"namespace": "bookinfo", "name": "bookinfo"},
                                          "spec": {"hosts": ["*"], "gateways": ["bookinfo-gateway"],
                                                   "http": [{"match": [{"uri": {"regex": "/api/.*"}}],
                                                             "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 50}}},
                                                             "route": [{"destination": {"host": "productpage", "port": {"number": 9080}}, "weight": 90}]}]}}),
            ],
            ..MeshObjects::default()
        };
        let snapshot = MeshSnapshot::build("sim-source", false, &objects);
        let service = &snapshot.services[&(
            "istio-system".to_string(),
            "istio-ingressgateway".to_string(),
        )];
        assert_eq!(service.ports[0].target_port, 8080);
        assert_eq!(service.ready_pods, vec![0]);
        assert_eq!(service.faults.drop_ratio, 0.5);
        assert!(snapshot.pods[0].gateway_proxy);
        assert_eq!(
            snapshot.listeners(),
            vec![(
                "127.0.1.1".to_string(),
                80,
                (
                    "istio-system".to_string(),
                    "istio-ingressgateway".to_string()
                )
            )]
        );
        let vs = &snapshot.virtual_services[0];
        assert_eq!(vs.gateways, vec!["bookinfo/bookinfo-gateway".to_string()]);
        let route = &vs.http[0];
        assert!(
            route.matches[0]
                .uri
                .as_ref()
                .is_some_and(|m| m.matches("/api/v1") && !m.matches("x/api/"))
        );
        assert_eq!(route.fault.as_ref().and_then(|f| f.abort_status), Some(500));
        assert_eq!(route.fault.as_ref().map(|f| f.abort_ratio), Some(0.5));
        assert!(
            MeshSnapshot::build("x", true, &objects)
                .listeners()
                .is_empty()
        );
        assert_eq!(duration("1.5s"), std::time::Duration::from_millis(1500));
        assert_eq!(duration("250ms"), std::time::Duration::from_millis(250));
        assert_eq!(duration("1m30s"), std::time::Duration::from_secs(90));
    }

    #[test]
    fn reads_retries_timeouts_and_header_operations_as_istiod_translates_them() {
        // No `retries`: Istio's default policy.
        assert_eq!(RetryPolicy::of(None), RetryPolicy::default());
        assert!(RetryPolicy::default().retries_status(503));
        assert!(!RetryPolicy::default().retries_status(500));
        assert!(!RetryPolicy::default().retries_reset());
        assert!(RetryPolicy::default().retries_connect_failure());
        assert_eq!(
            RetryPolicy::of(Some(&json!({"attempts": 0}))),
            RetryPolicy::none()
        );
        // `attempts` without `retryOn` keeps the default conditions.
        let three = RetryPolicy::of(Some(&json!({"attempts": 3, "perTryTimeout": "2s"})));
        assert_eq!(three.attempts, 3);
        assert_eq!(
            three.per_try_timeout,
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(three.retriable_status_codes, vec![503]);
        // Status codes in `retryOn` replace the default ones and imply retriable-status-codes.
        let codes = RetryPolicy::of(Some(
            &json!({"attempts": 2, "retryOn": "gateway-error,429,refused-stream"}),
        ));
        assert_eq!(
            codes.retry_on,
            vec![RetryOn::GatewayError, RetryOn::RetriableStatusCodes]
        );
        assert_eq!(codes.retriable_status_codes, vec![429]);
        assert!(
            codes.retries_status(429) && codes.retries_status(504) && !codes.retries_status(500)
        );
        assert!(codes.retries_reset());
        let five = RetryPolicy::of(Some(&json!({"attempts": 1, "retryOn": "5xx"})));
        assert!(five.retries_status(500) && !five.retries_status(409) && five.retries_reset());

        let route = http_route(&json!({
            "timeout": "250ms",
            "headers": {"request": {"set": {"X-A": "1"}, "add": {"x-b": "2"}, "remove": ["X-C"]},
                        "response": {"set": {"x-served": "yes"}}},
            "route": [{"destination": {"host": "shop", "subset": "v2"}, "weight": 100,
                       "headers": {"response": {"remove": ["x-internal"]}}}]
        }));
        assert_eq!(route.timeout, Some(std::time::Duration::from_millis(250)));
        assert_eq!(http_route(&json!({"timeout": "0s"})).timeout, None);
        let mut headers = vec![
            ("x-a".to_string(), "0".to_string()),
            ("x-a".to_string(), "00".to_string()),
            ("x-b".to_string(), "1".to_string()),
            ("x-c".to_string(), "3".to_string()),
        ];
        route.headers.request.apply(&mut headers);
        assert_eq!(
            headers,
            [("x-b", "1"), ("x-a", "1"), ("x-b", "2")].map(|(n, v)| (n.to_string(), v.to_string()))
        );
        assert_eq!(
            route.headers.response.set,
            vec![("x-served".into(), "yes".into())]
        );
        let RouteAction::Destinations(destinations) = &route.action else {
            panic!("destinations")
        };
        assert_eq!(
            destinations[0].headers.response.remove,
            vec!["x-internal".to_string()]
        );
        assert!(destinations[0].headers.request.is_empty());
    }
}
