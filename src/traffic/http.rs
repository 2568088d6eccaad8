//! Real HTTP against ingress gateways: single probes and concurrent samples over kept-alive
//! connections. Failures are values (status 0 and an error kind), so a sample can count them.
//!
//! Address mapping, like curl's `--connect-to`: an [`AddressMap`] in the [`RequestOptions`]
//! sends requests for `host:port` to `host2:port2` while keeping the original `Host` header.
//! It serves load balancer addresses whose ports a non-root process could not bind. The map
//! travels with each request: nothing here is process-wide.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use super::extract::Extractor;

/// How one request is made.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// Host header (and TLS SNI for https), as curl's `--resolve`/`-H Host:` do.
    pub host: Option<String>,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    /// Where to connect instead, per `host:port`.
    pub connect_to: AddressMap,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            host: None,
            timeout: Duration::from_secs(5),
            headers: Vec::new(),
            connect_to: AddressMap::default(),
        }
    }
}

/// `host:port` -> `host2:port2`, as curl's `--connect-to` takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressMap(BTreeMap<String, String>);

impl AddressMap {
    /// `host:port=host2:port2,…` (the form of `MESHSHIFT_CONNECT_TO`); entries without `=`
    /// are left out.
    pub fn parse(spec: &str) -> AddressMap {
        AddressMap(meshshift_support::connect_to::parse(spec))
    }

    /// Requests for `from` go to `to` from now on.
    pub fn insert(&mut self, from: impl Into<String>, to: impl Into<String>) {
        self.0.insert(from.into(), to.into());
    }

    /// Adds `other`'s entries; they win over this map's.
    pub fn extend(&mut self, other: &AddressMap) {
        self.0
            .extend(other.0.iter().map(|(a, b)| (a.clone(), b.clone())));
    }

    /// The entries, as `(from, to)` pairs.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(a, b)| (a.as_str(), b.as_str()))
    }

    /// `url` rewritten for the mapping, with the `Host` header it must keep.
    fn rewrite(&self, url: &reqwest::Url) -> Option<(reqwest::Url, String)> {
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let key = format!("{host}:{port}");
        let (target_host, target_port) = self.0.get(&key)?.rsplit_once(':')?;
        let mut rewritten = url.clone();
        rewritten.set_host(Some(target_host)).ok()?;
        rewritten.set_port(target_port.parse().ok()).ok()?;
        let host_header = if url.port().is_some() {
            key
        } else {
            host.to_string()
        };
        Some((rewritten, host_header))
    }
}

/// One answer, or why there was none (`status` 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub elapsed: Duration,
    /// `timeout`, `connect`, `reset`, `invalid-url`, …
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

/// An HTTP client with kept-alive connections.
#[derive(Clone)]
pub struct Prober {
    client: reqwest::Client,
}

impl Prober {
    /// A client for `concurrency` parallel requests (connections are kept alive and reused).
    pub fn new(concurrency: usize) -> Result<Prober, String> {
        reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency.max(1))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map(|client| Prober { client })
            .map_err(|e| format!("cannot create the HTTP client: {e}"))
    }

    /// One GET. Never fails: problems come back as status 0 with an error kind.
    pub async fn get(&self, url: &str, options: &RequestOptions) -> Probe {
        let started = Instant::now();
        let failed = |kind: &str, error: String| Probe {
            status: 0,
            headers: BTreeMap::new(),
            body: String::new(),
            elapsed: started.elapsed(),
            error_kind: Some(kind.to_string()),
            error: Some(error),
        };
        let mut parsed = match reqwest::Url::parse(url) {
            Ok(parsed) => parsed,
            Err(error) => return failed("invalid-url", format!("`{url}` is not a URL: {error}")),
        };
        let mut host_header = options.host.clone();
        if let Some((rewritten, host)) = options.connect_to.rewrite(&parsed) {
            parsed = rewritten;
            host_header.get_or_insert(host);
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(value)) => {
                    headers.insert(name, value);
                }
                _ => {
                    return failed(
                        "invalid-header",
                        format!("invalid header `{name}: {value}`"),
                    );
                }
            }
        }
        if let Some(host) = &host_header {
            match HeaderValue::from_str(host) {
                Ok(value) => {
                    headers.insert(reqwest::header::HOST, value);
                }
                Err(_) => return failed("invalid-header", format!("invalid host `{host}`")),
            }
        }
        let response = self
            .client
            .get(parsed)
            .headers(headers)
            .timeout(options.timeout)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return failed(error_kind(&error), error_text(&error)),
        };
        let status = response.status().as_u16();
        let headers: BTreeMap<String, String> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        match response.text().await {
            Ok(body) => Probe {
                status,
                headers,
                body,
                elapsed: started.elapsed(),
                error_kind: None,
                error: None,
            },
            Err(error) => failed(error_kind(&error), error_text(&error)),
        }
    }
}

fn error_kind(error: &reqwest::Error) -> &'static str {
    let text = error_text(error);
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        if text.contains("refused") {
            "connect-refused"
        } else {
            "connect"
        }
    } else if text.contains("reset") || text.contains("closed") || text.contains("incomplete") {
        "reset"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    }
}

fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// How a sample is taken.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub count: usize,
    pub concurrency: usize,
    /// Requests per second over all workers (`None`: as fast as they answer).
    pub rate: Option<f64>,
    pub request: RequestOptions,
    pub extractor: Option<Extractor>,
}

/// What a sample saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub total: usize,
    /// Answers with a 2xx status.
    pub ok: usize,
    /// Extracted value (e.g. the serving pod) per answer.
    pub counts: BTreeMap<String, u64>,
    /// 2xx answers the extractor found nothing in.
    pub unextracted: u64,
    /// Failed requests by kind (`timeout`, `connect`, `http-503`, …).
    pub errors: BTreeMap<String, u64>,
    pub statuses: BTreeMap<u16, u64>,
    /// Latency of answered requests, in milliseconds.
    pub latencies_ms: Vec<f64>,
    pub elapsed: Duration,
}

/// What `sample` gives scripts: the tallies, the error rate and latency percentiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleSummary {
    pub total: usize,
    pub ok: usize,
    pub counts: BTreeMap<String, u64>,
    pub unextracted: u64,
    pub errors: BTreeMap<String, u64>,
    pub error_count: u64,
    pub error_rate: f64,
    /// Answers by HTTP status (keys are the status as text: script maps have string keys).
    pub statuses: BTreeMap<String, u64>,
    pub latency_ms: Latencies,
    pub elapsed_ms: f64,
}

/// Latency percentiles in milliseconds, rounded to 0.01 ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latencies {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// What `http_get` gives scripts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeSummary {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// The page's `<title>`, if it has one.
    pub title: Option<String>,
    pub body: String,
    pub elapsed_ms: f64,
    pub error: Option<String>,
    pub error_kind: Option<String>,
}

impl Probe {
    /// The probe as scripts see it (only a single probe reads its title; samples never do).
    pub fn summary(self) -> ProbeSummary {
        ProbeSummary {
            status: self.status,
            title: super::extract::title(&self.body),
            headers: self.headers,
            body: self.body,
            elapsed_ms: self.elapsed.as_secs_f64() * 1000.0,
            error: self.error,
            error_kind: self.error_kind,
        }
    }
}

/// `value` rounded to hundredths.
fn hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

impl Sample {
    /// The sample as scripts see it.
    pub fn summary(&self) -> SampleSummary {
        let error_count = self.error_count();
        SampleSummary {
            total: self.total,
            ok: self.ok,
            counts: self.counts.clone(),
            unextracted: self.unextracted,
            errors: self.errors.clone(),
            error_count,
            error_rate: if self.total == 0 {
                0.0
            } else {
                error_count as f64 / self.total as f64
            },
            statuses: self
                .statuses
                .iter()
                .map(|(status, n)| (status.to_string(), *n))
                .collect(),
            latency_ms: Latencies {
                p50: hundredths(self.percentile(50.0)),
                p90: hundredths(self.percentile(90.0)),
                p99: hundredths(self.percentile(99.0)),
                max: hundredths(self.percentile(100.0)),
            },
            elapsed_ms: hundredths(self.elapsed.as_secs_f64() * 1000.0),
        }
    }

    /// Latency percentile (0–100) in milliseconds; 0 without answers.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
        sorted[rank.min(sorted.len() - 1)]
    }

    /// Failed requests (transport errors and non-2xx answers).
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn record(&mut self, probe: &Probe, extractor: Option<&Extractor>) {
        self.total += 1;
        if probe.status != 0 {
            *self.statuses.entry(probe.status).or_default() += 1;
            self.latencies_ms.push(probe.elapsed.as_secs_f64() * 1000.0);
        }
        match (probe.status, &probe.error_kind) {
            (0, kind) => {
                *self
                    .errors
                    .entry(kind.clone().unwrap_or_else(|| "request".into()))
                    .or_default() += 1
            }
            (200..=299, _) => {
                self.ok += 1;
                if let Some(extractor) = extractor {
                    match extractor.extract_answer(&probe.headers, &probe.body) {
                        Some(value) => *self.counts.entry(value).or_default() += 1,
                        None => self.unextracted += 1,
                    }
                }
            }
            (status, _) => *self.errors.entry(format!("http-{status}")).or_default() += 1,
        }
    }
}

/// Sends `count` GETs with at most `concurrency` in flight (and at most `rate` per second),
/// tallying statuses, errors, latencies and extracted values. `progress` is told how many are
/// done.
pub async fn sample(
    prober: &Prober,
    url: &str,
    options: &SampleOptions,
    progress: &(dyn Fn(usize) + Send + Sync),
) -> Sample {
    let started = Instant::now();
    let spacing = options
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let probes = stream::iter(0..options.count)
        .map(|index| async move {
            if let Some(spacing) = spacing {
                // Start times are spread evenly; each request waits for its slot.
                let slot = started + spacing.mul_f64(index as f64);
                tokio::time::sleep_until(tokio::time::Instant::from_std(slot)).await;
            }
            prober.get(url, &options.request).await
        })
        .buffer_unordered(options.concurrency.max(1));
    futures::pin_mut!(probes);
    let mut result = Sample::default();
    while let Some(probe) = probes.next().await {
        result.record(&probe, options.extractor.as_ref());
        progress(result.total);
    }
    result.elapsed = started.elapsed();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(status: u16, body: &str, kind: Option<&str>, ms: u64) -> Probe {
        Probe {
            status,
            headers: BTreeMap::new(),
            body: body.into(),
            elapsed: Duration::from_millis(ms),
            error_kind: kind.map(str::to_string),
            error: None,
        }
    }

    #[test]
    fn samples_tally_values_errors_and_latency() {
        let extractor = Extractor::parse("pod=([a-z0-9-]+)").unwrap();
        let mut sample = Sample::default();
        for (status, body, kind, ms) in [
            (200, "pod=reviews-v1-a", None, 10),
            (200, "pod=reviews-v1-a", None, 20),
            (200, "nothing", None, 30),
            (503, "no healthy upstream", None, 40),
            (0, "", Some("timeout"), 0),
        ] {
            sample.record(&probe(status, body, kind, ms), Some(&extractor));
        }
        assert_eq!(sample.total, 5);
        assert_eq!(sample.ok, 3);
        assert_eq!(sample.counts.get("reviews-v1-a"), Some(&2));
        assert_eq!(sample.unextracted, 1);
        assert_eq!(
            sample.errors,
            BTreeMap::from([("http-503".to_string(), 1), ("timeout".to_string(), 1)])
        );
        assert_eq!(sample.error_count(), 2);
        assert_eq!(sample.percentile(50.0), 30.0);
        assert_eq!(sample.percentile(100.0), 40.0);
        let summary = serde_json::to_value(sample.summary()).unwrap();
        assert_eq!(summary["error_count"], 2);
        assert_eq!(summary["error_rate"], 0.4);
        assert_eq!(summary["statuses"], serde_json::json!({"200": 3, "503": 1}));
        assert_eq!(summary["latency_ms"]["max"], 40.0);
        assert_eq!(summary["counts"]["reviews-v1-a"], 2);
    }

    #[test]
    fn a_probe_summary_reads_the_title() {
        let summary = probe(200, "<html><title>Shop</title></html>", None, 12).summary();
        assert_eq!(summary.title.as_deref(), Some("Shop"));
        assert_eq!(summary.elapsed_ms, 12.0);
        assert_eq!(probe(0, "", Some("timeout"), 0).summary().title, None);
    }

    #[test]
    fn connect_to_rewrites_the_address_and_keeps_the_host() {
        let map =
            AddressMap::parse("10.99.0.1:80=127.0.0.1:18080, bad, 10.99.0.3:8080 = 127.0.0.1:1");
        assert_eq!(map.entries().count(), 2);
        let url = reqwest::Url::parse("http://10.99.0.1/productpage").unwrap();
        let (rewritten, host) = map.rewrite(&url).unwrap();
        assert_eq!(rewritten.as_str(), "http://127.0.0.1:18080/productpage");
        assert_eq!(host, "10.99.0.1");
        let with_port = reqwest::Url::parse("http://10.99.0.3:8080/").unwrap();
        assert_eq!(map.rewrite(&with_port).unwrap().1, "10.99.0.3:8080");
        assert!(
            map.rewrite(&reqwest::Url::parse("http://10.99.0.2/").unwrap())
                .is_none()
        );
        assert!(AddressMap::default().rewrite(&url).is_none());
    }

    #[test]
    fn later_maps_win() {
        let mut map = AddressMap::parse("a:80=b:1");
        map.extend(&AddressMap::parse("a:80=c:2,d:80=e:3"));
        let entries: Vec<_> = map.entries().collect();
        assert_eq!(entries, [("a:80", "c:2"), ("d:80", "e:3")]);
    }
}
