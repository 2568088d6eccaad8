//! Traffic functions: probing and sampling real HTTP, attributing answers to clusters,
//! checking the observed split statistically, and weighted routes.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};

use crate::cluster::Cluster;
use crate::cluster::effects::{Mutation, WriteOptions};
use crate::cluster::gateway::{self, GateOptions};
use crate::error::Error;
use crate::host::flow::duration_argument;
use crate::host::manifest::json_argument;
use crate::host::{HostResult, check_keys, invalid};
use crate::manifest::strip::strip;
use crate::session::convert::to_dynamic;
use crate::session::{Session, raise};
use crate::traffic::extract::Extractor;
use crate::traffic::http::{self, AddressMap, Prober, RequestOptions, SampleOptions};
use crate::traffic::{attribution, planned, propagation, routes, split};

/// Builds the `traffic` host module.
pub fn module() -> Module {
    exported_module!(traffic_functions)
}

/// Counts by name.
type Counts = Vec<(String, u64)>;

fn request_options(
    context: &NativeCallContext,
    function: &str,
    map: &Map,
) -> HostResult<RequestOptions> {
    let mut options = RequestOptions {
        connect_to: address_map(context, function, map)?,
        ..RequestOptions::default()
    };
    if let Some(host) = map.get("host").filter(|h| !h.is_unit()) {
        options.host = Some(host.to_string());
    }
    if let Some(timeout) = map.get("timeout") {
        options.timeout = duration_argument(function, timeout)?;
    }
    if let Some(headers) = map.get("headers") {
        let Some(headers) = headers.read_lock::<Map>() else {
            return Err(invalid(
                function,
                "`headers` must be a map of header names to values",
            ));
        };
        options.headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }
    Ok(options)
}

/// Where requests connect: the port mappings in the kubeconfig entries of the clusters the
/// session has bound, then `MESHSHIFT_CONNECT_TO`, then the call's own `connect_to` map.
fn address_map(context: &NativeCallContext, function: &str, map: &Map) -> HostResult<AddressMap> {
    let session = Session::of(context)?;
    let contexts: Vec<String> = crate::host::cluster::bound_clusters(&session)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut addresses = AddressMap::default();
    if !contexts.is_empty() {
        let source = crate::cluster::KubeconfigSource {
            path: session.settings.kubeconfig.clone(),
        };
        for (from, to) in source.port_mappings(&contexts).map_err(raise)? {
            addresses.insert(from, to);
        }
    }
    addresses.extend(&AddressMap::parse(&session.settings.connect_to));
    if let Some(given) = map.get("connect_to") {
        let Some(given) = given.read_lock::<Map>() else {
            return Err(invalid(
                function,
                "`connect_to` must be a map of `host:port` to `host:port`",
            ));
        };
        for (from, to) in given.iter() {
            addresses.insert(from.to_string(), to.to_string());
        }
    }
    Ok(addresses)
}

fn int_option(
    function: &str,
    map: &Map,
    key: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> HostResult<i64> {
    let Some(value) = map.get(key) else {
        return Ok(default);
    };
    let number = value
        .as_int()
        .map_err(|_| invalid(function, not_a_number(key, "an integer", value)))?;
    if !range.contains(&number) {
        return Err(invalid(
            function,
            format!(
                "`{key}` must be between {} and {}, got {number}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(number)
}

fn float_option(function: &str, map: &Map, key: &str, default: f64) -> HostResult<f64> {
    match map.get(key) {
        None => Ok(default),
        Some(value) => value
            .as_float()
            .or_else(|_| value.as_int().map(|i| i as f64))
            .map_err(|_| invalid(function, not_a_number(key, "a number", value))),
    }
}

/// Names what was given instead of a number; a numeric string most likely came from
/// `param(NAME)` without a default, which keeps `--set` values as text.
fn not_a_number(key: &str, expected: &str, value: &Dynamic) -> String {
    let given = match value.clone().into_string() {
        Ok(text) if text.trim().parse::<f64>().is_ok() => {
            format!(
                "the string {text:?} (give `param` a numeric default, e.g. `param(\"COUNT\", 200)`, to read a number)"
            )
        }
        Ok(text) => format!("the string {text:?}"),
        Err(type_name) => format!("a value of type {type_name}"),
    };
    format!("`{key}` must be {expected}, got {given}")
}

fn prober(context: &NativeCallContext, concurrency: usize) -> HostResult<Arc<Prober>> {
    let session = Session::of(context)?;
    let probers = session.extension("http-probers", || {
        std::sync::Mutex::new(BTreeMap::<usize, Arc<Prober>>::new())
    });
    let mut probers = probers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(prober) = probers.get(&concurrency) {
        return Ok(prober.clone());
    }
    let created =
        Arc::new(Prober::new(concurrency).map_err(|m| raise(Error::Other { message: m }))?);
    probers.insert(concurrency, created.clone());
    Ok(created)
}

/// A script-facing result (a serde type defined next to its logic) as a Rhai map.
fn script_map(value: impl serde::Serialize) -> Map {
    to_dynamic(serde_json::to_value(value).unwrap_or_default())
        .try_cast::<Map>()
        .unwrap_or_default()
}

/// Integer entries of a map (counts), ignoring everything else.
/// A result plan mode made up instead of sending requests, marked `planned: true`.
fn planned_map(value: impl serde::Serialize) -> Map {
    let mut map = script_map(value);
    map.insert("planned".into(), true.into());
    map
}

fn counts_of(map: &Map) -> Vec<(String, u64)> {
    map.iter()
        .filter_map(|(k, v)| {
            v.as_int()
                .ok()
                .filter(|n| *n >= 0)
                .map(|n| (k.to_string(), n as u64))
        })
        .collect()
}

fn weights_of(function: &str, map: &Map) -> HostResult<Vec<(String, i64)>> {
    map.iter()
        .map(|(k, v)| {
            v.as_int().map(|w| (k.to_string(), w)).map_err(|_| {
                invalid(
                    function,
                    format!(
                        "the weight of `{k}` must be an integer, found a {}",
                        v.type_name()
                    ),
                )
            })
        })
        .collect()
}

fn weights_to_map(weights: &[(String, i64)]) -> Map {
    weights
        .iter()
        .map(|(k, w)| (k.as_str().into(), Dynamic::from_int(*w)))
        .collect()
}

#[export_module]
pub mod traffic_functions {
    /// One HTTP GET, as `curl` would: `#{status, headers, body, title, elapsed_ms, error,
    /// error_kind}`. Options: `host` (Host header, and SNI for https), `timeout` (default `5s`),
    /// `headers`, `connect_to` (`#{"20.1.2.3:80": "127.0.0.1:8080"}`: connect there instead
    /// and keep the Host, like curl's `--connect-to`; the port mappings of the bound
    /// clusters' kubeconfig entries and `MESHSHIFT_CONNECT_TO` apply without it). Failures are values, not exceptions: `status` is 0 and `error_kind` says why
    /// (`timeout`, `connect-refused`, `connect`, `reset`, …). In plan mode nothing is sent: the
    /// answer has `status` 0, `error_kind` `planned` and `planned: true`.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let page = http_get("http://20.1.2.3/productpage", #{timeout: "2s"});
    /// if page.status != 200 || page.title != "Simple Bookstore App" { fail(`unexpected answer: ${page.status} ${page.error}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn http_get(context: NativeCallContext, url: &str, options: Map) -> HostResult<Map> {
        check_keys(
            "http_get",
            &options,
            &["host", "timeout", "headers", "connect_to"],
        )?;
        let request = request_options(&context, "http_get", &options)?;
        let session = Session::of(&context)?;
        if session.is_plan() {
            session.out.info(&format!("GET {url} (plan: not sent)"));
            return Ok(planned_map(planned::probe()));
        }
        let prober = prober(&context, 1)?;
        let url = url.to_string();
        let probe = session
            .block_on(async move { prober.get(&url, &request).await })
            .map_err(raise)?;
        Ok(script_map(probe.summary()))
    }

    /// `http_get` with default options.
    ///
    /// # Example
    /// ```rhai,no_run
    /// info(http_get("http://20.1.2.3/productpage").status);
    /// ```
    #[rhai_fn(name = "http_get", return_raw)]
    pub fn http_get_default(context: NativeCallContext, url: &str) -> HostResult<Map> {
        http_get(context, url, Map::new())
    }

    /// Sends `count` GETs (default 100) with at most `concurrency` in flight (default 16) over
    /// kept-alive connections, optionally at most `rate` per second, and tallies them:
    /// `#{total, ok, counts, unextracted, errors, error_count, error_rate, statuses, latency_ms:
    /// #{p50, p90, p99, max}, elapsed_ms}`. `extract` is a regex (first group, else the match),
    /// `"header:<name>"` (a response header's value, such as the one a shifted route sets) or
    /// `"bookinfo"`, which takes the reviews pod after `Reviews served by:` in every bookinfo
    /// markup; `counts` holds the extracted values. Also takes `host`, `timeout`,
    /// `headers` and `connect_to` (as `http_get`). Shows a progress bar on a terminal. In plan
    /// mode nothing is sent: the sample is empty and has `planned: true`.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let s = sample("http://20.1.2.3/productpage", #{count: 400, concurrency: 16, extract: "bookinfo"});
    /// info(`${s.ok}/${s.total} ok, p99 ${s.latency_ms.p99} ms`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn sample(context: NativeCallContext, url: &str, options: Map) -> HostResult<Map> {
        check_keys(
            "sample",
            &options,
            &[
                "count",
                "concurrency",
                "rate",
                "timeout",
                "host",
                "headers",
                "extract",
                "connect_to",
            ],
        )?;
        let count = int_option("sample", &options, "count", 100, 1..=1_000_000)? as usize;
        let concurrency = int_option("sample", &options, "concurrency", 16, 1..=1024)? as usize;
        let rate = options
            .get("rate")
            .map(|_| float_option("sample", &options, "rate", 0.0))
            .transpose()?;
        if rate.is_some_and(|r| r <= 0.0) {
            return Err(invalid(
                "sample",
                "`rate` must be a positive number of requests per second",
            ));
        }
        let extractor = match options.get("extract").filter(|e| !e.is_unit()) {
            Some(spec) => Some(
                Extractor::parse(&spec.to_string())
                    .map_err(|e| invalid("sample", e.to_string()))?,
            ),
            None => None,
        };
        let settings = SampleOptions {
            count,
            concurrency,
            rate,
            request: request_options(&context, "sample", &options)?,
            extractor,
        };
        let session = Session::of(&context)?;
        if session.is_plan() {
            session
                .out
                .info(&format!("{count} GETs of {url} (plan: not sent)"));
            return Ok(planned_map(planned::sample()));
        }
        let prober = prober(&context, concurrency)?;
        let bar = Arc::new(session.out.progress_bar(count as u64, "sampling"));
        let for_progress = bar.clone();
        let url = url.to_string();
        let result = session
            .block_on(async move {
                http::sample(&prober, &url, &settings, &move |_| for_progress.inc(1)).await
            })
            .map_err(raise);
        bar.finish();
        Ok(script_map(result?.summary()))
    }

    /// Waits until every Ready gateway pod (`namespace`, `selector`, default
    /// `istio=ingressgateway`) serves the VirtualService `vs` as written: its routes' weights and
    /// the response headers each destination sets or adds (the shift's attribution header),
    /// read from each pod's Envoy `/config_dump` through `pods/portforward`, as `istioctl
    /// proxy-config routes` reads them. Polls each pod every `interval` (default `"100ms"`)
    /// until it converges, no longer than `timeout` (default `"60s"`). Returns `#{converged,
    /// refused, waited_seconds, pods: [#{pod, converged, seen, seconds}]}`; `refused` is the
    /// reason when the API server refuses the subresource (403, 404, no WebSocket upgrade), and
    /// then nothing could be read: the caller falls back to a fixed wait. In plan mode nothing
    /// is read: `#{planned: true, converged: true, …}`.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let source = cluster("aks-source");
    /// let vs = source.get("VirtualService", "shop", "shop");
    /// let gate = wait_propagation(source, vs, #{namespace: "istio-system", timeout: "30s"});
    /// for p in gate.pods { info(`${p.pod}: ${p.seen}`); }
    /// if !gate.converged { throw `not every gateway serves the new weights`; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn wait_propagation(
        context: NativeCallContext,
        cluster: Cluster,
        vs: Dynamic,
        options: Map,
    ) -> HostResult<Map> {
        const NAME: &str = "wait_propagation";
        check_keys(
            NAME,
            &options,
            &["namespace", "selector", "timeout", "interval"],
        )?;
        let vs = json_argument(NAME, &vs)?;
        let Some(namespace) = options.get("namespace").filter(|n| !n.is_unit()) else {
            return Err(invalid(
                NAME,
                "`namespace` (of the gateway pods) is required",
            ));
        };
        let gate = GateOptions {
            namespace: namespace.to_string(),
            selector: options
                .get("selector")
                .filter(|s| !s.is_unit())
                .map_or("istio=ingressgateway".to_string(), |s| s.to_string()),
            timeout: match options.get("timeout") {
                Some(t) => duration_argument(NAME, t)?,
                None => std::time::Duration::from_secs(60),
            },
            interval: match options.get("interval") {
                Some(t) => duration_argument(NAME, t)?,
                None => std::time::Duration::from_millis(100),
            },
        };
        let session = Session::of(&context)?;
        if session.is_plan() {
            return Ok(script_map(serde_json::json!({
                "planned": true, "converged": true, "refused": null,
                "waited_seconds": 0.0, "pods": []})));
        }
        let outcome = session
            .block_on(async move { gateway::wait_propagation(&cluster, &vs, &gate).await })
            .and_then(|r| r)
            .map_err(raise)?;
        let pods: Vec<serde_json::Value> = outcome
            .pods
            .iter()
            .map(|p| {
                serde_json::json!({"pod": p.pod, "converged": p.converged,
                                         "seen": p.seen, "seconds": p.seconds})
            })
            .collect();
        Ok(script_map(serde_json::json!({
            "converged": outcome.converged,
            "refused": outcome.refused,
            "waited_seconds": outcome.waited.as_secs_f64(),
            "pods": pods,
        })))
    }

    /// Envoy's upstream request counters of each Ready gateway pod (`namespace`, `selector`,
    /// default `istio=ingressgateway`), read from `:15090/stats/prometheus` through the
    /// `pods/proxy` subresource: `#{refused, pods: #{<pod>: #{<cluster>: #{total, xx_2, xx_5,
    /// …}}}}`, where a cluster is Envoy's name (`outbound|80||v2.example.com`) and `refused`
    /// the reason when the API server refuses the subresource (the pods map is then empty).
    /// In plan mode nothing is read (`planned: true`).
    ///
    /// # Example
    /// ```rhai,no_run
    /// let before = gateway_counters(cluster("aks-source"), #{namespace: "istio-system"});
    /// sleep("30s");
    /// let after = gateway_counters(cluster("aks-source"), #{namespace: "istio-system"});
    /// for pod in after.pods.keys() { info(`${pod}: ${after.pods[pod]}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn gateway_counters(
        context: NativeCallContext,
        cluster: Cluster,
        options: Map,
    ) -> HostResult<Map> {
        const NAME: &str = "gateway_counters";
        check_keys(NAME, &options, &["namespace", "selector"])?;
        let Some(namespace) = options.get("namespace").filter(|n| !n.is_unit()) else {
            return Err(invalid(
                NAME,
                "`namespace` (of the gateway pods) is required",
            ));
        };
        let namespace = namespace.to_string();
        let selector = options
            .get("selector")
            .filter(|s| !s.is_unit())
            .map_or("istio=ingressgateway".to_string(), |s| s.to_string());
        let session = Session::of(&context)?;
        if session.is_plan() {
            return Ok(script_map(
                serde_json::json!({"planned": true, "refused": null, "pods": {}}),
            ));
        }
        let outcome = session
            .block_on(async move { gateway::all_counters(&cluster, &namespace, &selector).await })
            .and_then(|r| r)
            .map_err(raise)?;
        let (refused, pods) = match outcome {
            Ok(pods) => (None, pods),
            Err(reason) => (Some(reason), Default::default()),
        };
        let pods: serde_json::Map<String, serde_json::Value> = pods
            .into_iter()
            .map(|(pod, clusters)| {
                let clusters: serde_json::Map<String, serde_json::Value> = clusters
                    .into_iter()
                    .map(|(name, c)| {
                        let mut entry = serde_json::json!({"total": c.total});
                        for (i, count) in c.by_class.iter().enumerate() {
                            entry[format!("xx_{}", i + 1)] = serde_json::json!(count);
                        }
                        (name, entry)
                    })
                    .collect();
                (pod, serde_json::Value::Object(clusters))
            })
            .collect();
        Ok(script_map(
            serde_json::json!({"refused": refused, "pods": pods}),
        ))
    }

    /// The split of the requests the gateway pods routed between two readings of
    /// `gateway_counters` (`before`, `after`): `#{source, target, errors, total}`, where
    /// `target` counts the clusters of `target_host` and `source` those of the
    /// VirtualService `vs`'s other destinations (other apps' clusters are left out). Feed it to
    /// `split_check` to test the users' own traffic against the weights.
    ///
    /// # Example
    /// ```rhai
    /// let vs = #{metadata: #{namespace: "shop", name: "shop"}, spec: #{http: [#{route: [
    ///     #{destination: #{host: "web"}, weight: 90}, #{destination: #{host: "v2.example.com"}, weight: 10}]}]}};
    /// let before = #{pods: #{"gw-1": #{"outbound|80||web.shop.svc.cluster.local": #{total: 10, xx_5: 0}}}};
    /// let after = #{pods: #{"gw-1": #{"outbound|80||web.shop.svc.cluster.local": #{total: 100, xx_5: 1},
    ///                                  "outbound|80||v2.example.com": #{total: 10, xx_5: 0}}}};
    /// let split = counter_split(before, after, vs, "v2.example.com");
    /// if split.source != 90 || split.target != 10 || split.errors != 1 { throw split; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn counter_split(
        before: Dynamic,
        after: Dynamic,
        vs: Dynamic,
        target_host: &str,
    ) -> HostResult<Map> {
        const NAME: &str = "counter_split";
        let before = json_argument(NAME, &before)?;
        let after = json_argument(NAME, &after)?;
        let vs = json_argument(NAME, &vs)?;
        let pods = |reading: &serde_json::Value| reading.get("pods").cloned().unwrap_or_default();
        Ok(script_map(propagation::counter_split(
            &pods(&before),
            &pods(&after),
            &vs,
            target_host,
        )))
    }

    /// Whether this session may read the gateway pods in `namespace` the way the shift's
    /// evidence needs, asked with `SelfSubjectAccessReview`s: `#{portforward, proxy, reasons}`
    /// (`create pods/portforward` for the propagation gate, `get pods/proxy` for the passive
    /// counters).
    ///
    /// # Example
    /// ```rhai,no_run
    /// let access = gateway_access(cluster("aks-source"), "istio-system");
    /// if !access.portforward { warn("the shift will wait a fixed PROPAGATION instead"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn gateway_access(
        context: NativeCallContext,
        cluster: Cluster,
        namespace: &str,
    ) -> HostResult<Map> {
        let session = Session::of(&context)?;
        let namespace = namespace.to_string();
        let access = session
            .block_on(async move { gateway::access(&cluster, &namespace).await })
            .and_then(|r| r)
            .map_err(raise)?;
        Ok(script_map(access))
    }

    /// Maps each value of a sample (pod names) to the cluster whose pods carry it, with one pod
    /// list per cluster: `#{<cluster label>: count, …, unknown: count, pods: #{pod: label}}`.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let s = sample(url, #{count: 400, extract: "bookinfo"});
    /// let split = attribute(s, #{source: cluster("aks-source"), target: cluster("aks-target")}, "bookinfo");
    /// info(`source ${split.source}, target ${split.target}, unknown ${split.unknown}`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn attribute(
        context: NativeCallContext,
        sample: Map,
        clusters: Map,
        namespace: &str,
    ) -> HostResult<Map> {
        let counts = sample
            .get("counts")
            .and_then(|c| c.read_lock::<Map>().map(|m| counts_of(&m)))
            .ok_or_else(|| {
                invalid(
                    "attribute",
                    "the first argument must be a sample (a map with `counts`)",
                )
            })?;
        let session = Session::of(&context)?;
        let mut owners = Vec::new();
        for (label, handle) in &clusters {
            let Some(cluster) = handle.clone().try_cast::<Cluster>() else {
                return Err(invalid(
                    "attribute",
                    format!("`{label}` must be a cluster handle"),
                ));
            };
            let namespace = namespace.to_string();
            let pods = session
                .block_on(async move { cluster.pods(&namespace, None).await })
                .and_then(|r| r)
                .map_err(raise)?;
            let names = pods
                .iter()
                .filter_map(|pod| pod["metadata"]["name"].as_str().map(str::to_string))
                .collect();
            owners.push((label.to_string(), names));
        }
        Ok(script_map(attribution::attribute(&counts, &owners)))
    }

    /// Tests observed counts against configured weights (Istio semantics: relative weights,
    /// a lone destination gets everything, weight 0 gets nothing): an exact two-sided binomial
    /// test for two routes, chi-square beyond. Counts under names that have no weight (such as
    /// `unknown`) are reported in `ignored`. Options: `confidence` (default 0.95), `tolerance`
    /// (default 0.05). Returns `#{verdict: "pass" | "fail" | "inconclusive", p_value, p_text, method,
    /// total, required_sample, reason, shares: [#{route, weight, expected, observed, share, low,
    /// high}], ignored}`: `fail` when the split is inconsistent with the weights (p below
    /// 1 − confidence) and some share is off by more than the tolerance, `pass` when every
    /// share's confidence interval lies within the tolerance, `inconclusive` otherwise. In plan
    /// mode (where samples are empty) it passes with each share at its configured value and
    /// `planned: true`.
    ///
    /// # Example
    /// ```rhai
    /// let check = split_check(#{source: 902, target: 98}, #{source: 90, target: 10}, #{confidence: 0.95});
    /// if check.verdict != "pass" { throw check.reason; }
    /// let small = split_check(#{source: 9, target: 1}, #{source: 90, target: 10}, #{});
    /// if small.verdict != "inconclusive" { throw small.reason; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn split_check(
        context: NativeCallContext,
        counts: Map,
        weights: Map,
        options: Map,
    ) -> HostResult<Map> {
        check_keys("split_check", &options, &["confidence", "tolerance"])?;
        let weights = weights_of("split_check", &weights)?;
        if Session::of(&context)?.is_plan() {
            return Ok(planned_map(planned::check(&weights)));
        }
        let (observed, ignored): (Counts, Counts) = counts_of(&counts)
            .into_iter()
            .partition(|(name, _)| weights.iter().any(|(w, _)| w == name));
        let input = split::SplitInput {
            observed: &observed,
            weights: &weights,
            confidence: float_option("split_check", &options, "confidence", 0.95)?,
            tolerance: float_option("split_check", &options, "tolerance", 0.05)?,
        };
        let report =
            split::check_split(&input).map_err(|e| invalid("split_check", e.to_string()))?;
        Ok(script_map(report.result(&ignored)))
    }

    /// A ServiceEntry as the AKS guide writes it: `MESH_EXTERNAL`, one HTTP port named `http`,
    /// `resolution: STATIC`, one endpoint at `address` (an IP).
    ///
    /// # Example
    /// ```rhai
    /// let se = service_entry("target-cluster-http", "v2.example.com", "20.1.2.3", 80);
    /// if se.spec.endpoints[0].address != "20.1.2.3" { throw se; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn service_entry(name: &str, host: &str, address: &str, port: i64) -> HostResult<Dynamic> {
        routes::service_entry(name, host, address, port)
            .map(to_dynamic)
            .map_err(|e| invalid("service_entry", e.to_string()))
    }

    /// Turns every HTTP route of a VirtualService into the given weighted destinations
    /// (`#{host, port, subset, weight}`), keeping its matches, rewrites and timeouts.
    ///
    /// # Example
    /// ```rhai
    /// let vs = #{apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: #{name: "bookinfo"},
    ///            spec: #{hosts: ["*"], gateways: ["bookinfo-gateway"],
    ///                    http: [#{"match": [#{uri: #{exact: "/productpage"}}], route: [#{destination: #{host: "productpage", port: #{number: 9080}}}]}]}};
    /// let weighted = weighted_routes(vs, [#{host: "productpage", port: 9080, weight: 90}, #{host: "v2.example.com", port: 80, weight: 10}]);
    /// // `match` is a Rhai keyword: quote it as a map key and index it with ["match"].
    /// if weighted.spec.http[0].route.len() != 2 || weighted.spec.http[0]["match"][0].uri.exact != "/productpage" { throw weighted; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn weighted_routes(vs: Dynamic, destinations: Array) -> HostResult<Dynamic> {
        let vs = json_argument("weighted_routes", &vs)?;
        let mut parsed = Vec::new();
        for (index, destination) in destinations.iter().enumerate() {
            let Some(map) = destination.read_lock::<Map>() else {
                return Err(invalid(
                    "weighted_routes",
                    format!(
                        "destination {} must be a map like #{{host, port, weight}}",
                        index + 1
                    ),
                ));
            };
            check_keys(
                "weighted_routes",
                &map,
                &["host", "port", "subset", "weight"],
            )?;
            let host = map.get("host").map(|h| h.to_string()).unwrap_or_default();
            let weight = map
                .get("weight")
                .and_then(|w| w.as_int().ok())
                .ok_or_else(|| {
                    invalid(
                        "weighted_routes",
                        format!("destination {} needs an integer `weight`", index + 1),
                    )
                })?;
            let mut destination = routes::WeightedDestination::new(host, weight);
            if let Some(port) = map.get("port").and_then(|p| p.as_int().ok()) {
                let port = u16::try_from(port).map_err(|_| {
                    invalid("weighted_routes", format!("port {port} is out of range"))
                })?;
                destination = destination.with_port(port);
            }
            if let Some(subset) = map.get("subset").filter(|s| !s.is_unit()) {
                destination = destination.with_subset(subset.to_string());
            }
            parsed.push(destination);
        }
        routes::weighted_routes(&vs, &parsed)
            .map(to_dynamic)
            .map_err(|e| invalid("weighted_routes", e.to_string()))
    }

    /// True when `pattern` (a regular expression) matches somewhere in `text`: for checking an
    /// answer's body or title.
    ///
    /// # Example
    /// ```rhai
    /// if !text_matches(`{"pod": "echo-v1-abc"}`, `"pod": "echo-v\d`) { throw "no match"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn text_matches(text: &str, pattern: &str) -> HostResult<bool> {
        let regex = regex::Regex::new(pattern)
            .map_err(|e| invalid("text_matches", format!("invalid regex `{pattern}`: {e}")))?;
        Ok(regex.is_match(text))
    }

    /// A VirtualService (as its owner wrote it) that sends `percent`% of every routing HTTP
    /// rule to `to` (`#{host, port, subset}`): every rule keeps its match and all other fields,
    /// its own destinations keep theirs and their proportions, scaled to `100 - percent`;
    /// redirects and direct responses are left alone. Options: `header`, `source`, `target`:
    /// every destination also sets the response header `header`, to `source` on the rule's own
    /// destinations and to `target` on `to`, so answers say which cluster served them.
    ///
    /// # Example
    /// ```rhai
    /// let vs = #{apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: #{name: "shop"},
    ///            spec: #{hosts: ["shop.example.com"], http: [
    ///                #{"match": [#{headers: #{"x-beta": #{exact: "1"}}}], route: [#{destination: #{host: "echo", subset: "v2"}}]},
    ///                #{route: [#{destination: #{host: "echo", subset: "v1"}, weight: 80}, #{destination: #{host: "echo", subset: "v2"}, weight: 20}]}]}};
    /// let shifted = shift_routes(vs, #{host: "v2.example.com", port: 80}, 10, #{header: "x-served-by", source: "source", target: "target"});
    /// let split = shifted.spec.http[1].route.map(|r| r.weight);
    /// if split != [72, 18, 10] || shifted.spec.http[0]["match"] != vs.spec.http[0]["match"] { throw shifted; }
    /// if shifted.spec.http[0].route[1].headers.response.set["x-served-by"] != "target" { throw shifted; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn shift_routes(
        original: Dynamic,
        to: Map,
        percent: i64,
        options: Map,
    ) -> HostResult<Dynamic> {
        let original = json_argument("shift_routes", &original)?;
        check_keys("shift_routes", &to, &["host", "port", "subset"])?;
        check_keys("shift_routes", &options, &["header", "source", "target"])?;
        let host = to.get("host").map(|h| h.to_string()).unwrap_or_default();
        let mut destination = routes::WeightedDestination::new(host, percent);
        if let Some(port) = to.get("port").and_then(|p| p.as_int().ok()) {
            let port = u16::try_from(port)
                .map_err(|_| invalid("shift_routes", format!("port {port} is out of range")))?;
            destination = destination.with_port(port);
        }
        if let Some(subset) = to.get("subset").filter(|s| !s.is_unit()) {
            destination = destination.with_subset(subset.to_string());
        }
        let text = |key: &str| {
            options
                .get(key)
                .filter(|v| !v.is_unit())
                .map(|v| v.to_string())
        };
        let served_by = match (text("header"), text("source"), text("target")) {
            (None, None, None) => None,
            (Some(header), Some(source), Some(target)) => Some(routes::ServedBy {
                header,
                source,
                target,
            }),
            _ => {
                return Err(invalid(
                    "shift_routes",
                    "`header`, `source` and `target` go together",
                ));
            }
        };
        routes::shift_routes(&original, &destination, percent, served_by.as_ref())
            .map(to_dynamic)
            .map_err(|e| invalid("shift_routes", e.to_string()))
    }

    /// The weights of a VirtualService's first HTTP route, by destination key
    /// (`host[:port][/subset]`, e.g. `productpage:9080`).
    ///
    /// # Example
    /// ```rhai
    /// let vs = #{spec: #{http: [#{route: [#{destination: #{host: "productpage", port: #{number: 9080}}, weight: 90},
    ///                                     #{destination: #{host: "v2.example.com", port: #{number: 80}}, weight: 10}]}]}};
    /// let w = route_weights(vs);
    /// if w["productpage:9080"] != 90 { throw w; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn route_weights(vs: Dynamic) -> HostResult<Map> {
        let vs = json_argument("route_weights", &vs)?;
        Ok(weights_to_map(&routes::route_weights(&vs)))
    }

    /// Changes only the weights of a live VirtualService (server-side apply, field manager
    /// `meshshift`, taking over the routes from whoever owned them) and returns the previous
    /// weights, so a caller can restore them. Keys are destination keys (`host[:port][/subset]`,
    /// or just the host when unambiguous); weights must be non-negative integers with at least
    /// one positive, and every destination must exist in the VirtualService.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let source = cluster("aks-source");
    /// let previous = set_weights(source, "bookinfo", "default", #{"productpage": 75, "v2.example.com": 25});
    /// set_weights(source, "bookinfo", "default", previous);   // undo
    /// ```
    #[rhai_fn(return_raw)]
    pub fn set_weights(
        context: NativeCallContext,
        cluster: Cluster,
        name: &str,
        namespace: &str,
        weights: Map,
    ) -> HostResult<Map> {
        let weights = weights_of("set_weights", &weights)?;
        let session = Session::of(&context)?;
        let write = WriteOptions {
            dry_run: session.is_plan(),
            force: true,
            overlay: session.is_plan(),
            ..WriteOptions::default()
        };
        let (name, namespace) = (name.to_string(), namespace.to_string());
        let handle = cluster.clone();
        let work = async move {
            let live = handle
                .get("VirtualService", &name, Some(&namespace))
                .await?
                .ok_or_else(|| {
                    handle.error(
                        format!("VirtualService `{namespace}/{name}` does not exist"),
                        vec![],
                    )
                })?;
            let (updated, previous) =
                routes::set_weights(&live, &weights).map_err(|e| Error::InvalidArgument {
                    function: "set_weights".into(),
                    message: e.to_string(),
                })?;
            // The whole object is applied (not only the routes) so that nothing meshshift applied
            // before is dropped from its field set.
            let changes = handle
                .mutate(Mutation::Apply(vec![strip(updated)]), &write)
                .await?;
            Ok::<_, Error>((changes, previous))
        };
        let (changes, previous) = session.block_on(work).and_then(|r| r).map_err(raise)?;
        for change in &changes {
            let suffix = if change.dry_run { " (dry run)" } else { "" };
            session.out.info(&format!(
                "{} weights {}{suffix}",
                change.label(),
                change.action.as_str()
            ));
        }
        Ok(weights_to_map(&previous))
    }

    /// A one-line chart of a configured share against the observed one and its interval:
    /// `[========(=| )                           ] 25% configured, 24.3% observed (20%–29%)`
    /// (`|` the configured share, `(` `)` the interval, `=` up to the observed share).
    ///
    /// # Example
    /// ```rhai
    /// let bar = share_bar(0.25, 0.243, 0.20, 0.29, 40);
    /// if !bar.contains("24.3% observed") { throw bar; }
    /// ```
    pub fn share_bar(expected: f64, observed: f64, low: f64, high: f64, width: i64) -> String {
        crate::traffic::chart::share_bar(
            expected,
            observed,
            low,
            high,
            width.clamp(10, 200) as usize,
        )
    }
}
