//! Fault injection into what clients see: API errors, dropped connections, latency, watch
//! streams cut, optimistic-concurrency conflicts, an unreachable API server, and data-plane
//! faults at the cluster's gateways or at single Services.
//!
//! Faults hit client requests only. The simulator's own agents (its installer, kubelet,
//! controllers, mesh agent) mark their requests with [`AGENT_HEADER`] and are exempt, so a
//! simulator configured with faults starts cleanly and keeps its cluster consistent.
//!
//! Faults are settings `name=value` (see [`SETTINGS`]), given at start in the environment
//! ([`FaultConfig::from_env`]) and changed on a running server through its [`FaultControl`]
//! (in-process, or over the control endpoint [`CONTROL_PATH`] that `meshshift sim fault`
//! calls). Decisions draw from a random generator seeded with `seed` (or
//! `MESHSHIFT_SIM_FAULT_SEED`), so a seeded fault sequence is the same from run to run for
//! the same sequence of requests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::mesh::faults::{Faults, LiveFaults};

/// Header the simulator's own clients send; their requests are never faulted.
pub const AGENT_HEADER: &str = "x-meshshift-sim-agent";

/// Path of the control endpoint on every simulated API server: `GET` answers the faults in
/// force, `PUT` with `{"clear": bool, "service": "ns/name", "settings": ["name=value"]}`
/// changes them. It needs the cluster's token, like every API path; the real API server
/// has no such path.
pub const CONTROL_PATH: &str = "/sim.meshshift.io/v1/faults";

/// The settings `meshshift sim fault` and `MESHSHIFT_SIM_FAULTS` take: name and meaning.
/// Data-plane settings apply to the cluster's gateways, or with a Service to its pods.
pub const SETTINGS: &[(&str, &str)] = &[
    (
        "api-error-rate",
        "share of API requests answered 500, 503 or 429 (503 and 429 with Retry-After: 1)",
    ),
    (
        "api-drop-rate",
        "share of API requests whose connection is closed without an answer",
    ),
    ("api-latency-ms", "added API latency: 100, or a range 0-200"),
    (
        "watch-cut-s",
        "watch streams end after this many seconds (as at the server's watch timeout)",
    ),
    (
        "conflict-rate",
        "share of updates carrying a resourceVersion answered 409 Conflict (stale version)",
    ),
    (
        "unreachable-s",
        "the API server refuses connections for this many seconds from now",
    ),
    (
        "http-503-ratio",
        "data plane: share of requests answered 503",
    ),
    (
        "reset-ratio",
        "data plane: share of connections reset without an answer",
    ),
    (
        "latency-ms",
        "data plane: added latency: 200, or a range 100-300",
    ),
    (
        "seed",
        "seed of the fault decisions (the same seed gives the same decisions)",
    ),
];

/// Faults one API server injects. All off by default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability (0..=1) of answering with a random 500, 503 or 429 Status.
    pub error_rate: f64,
    /// Fixed latency added to every request.
    pub latency: Duration,
    /// Extra random latency, uniformly distributed in `0..=latency_jitter`.
    pub latency_jitter: Duration,
    /// Probability (0..=1) of dropping the request without an answer (the connection is
    /// closed for HTTP/1.1, the stream reset for HTTP/2).
    pub drop_rate: f64,
    /// Watch streams end after this long.
    pub watch_cut: Option<Duration>,
    /// Probability of a 409 on an update that carries a resourceVersion.
    pub conflict_rate: f64,
    /// Refuse connections for this long from the moment the setting is applied.
    pub unreachable_for: Option<Duration>,
    /// Data-plane faults at every gateway of the cluster.
    pub data_plane: Faults,
    /// Data-plane faults of single Services (namespace, name); they replace the Service's
    /// `sim.meshshift.io/*` annotations.
    pub services: BTreeMap<(String, String), Faults>,
    /// Seed of the decisions; random when `None`.
    pub seed: Option<u64>,
}

/// What to do with one request.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultDecision {
    /// Serve it normally (after the delay).
    Serve,
    /// Answer with this error code (500, 503 or 429).
    Fail(u16),
    /// Drop it.
    Drop,
}

impl FaultConfig {
    /// Whether any API fault is configured (data-plane faults are the mesh's).
    pub fn is_active(&self) -> bool {
        self.error_rate > 0.0
            || self.drop_rate > 0.0
            || !self.latency.is_zero()
            || !self.latency_jitter.is_zero()
    }

    /// Reads faults from the environment for the cluster `cluster_name`.
    ///
    /// `MESHSHIFT_SIM_FAULTS` holds settings (`api-error-rate=0.05 watch-cut-s=2`, see
    /// [`SETTINGS`]); `MESHSHIFT_SIM_ERROR_RATE`, `MESHSHIFT_SIM_DROP_RATE` (probabilities,
    /// `0.05`) and `MESHSHIFT_SIM_LATENCY_MS` (`50` or a range `20-80`) are short forms of
    /// the first three; `MESHSHIFT_SIM_FAULT_SEED` seeds the decisions. Each name with the
    /// cluster name appended in upper case with `-` as `_` (`MESHSHIFT_SIM_ERROR_RATE_SIM_TARGET`)
    /// overrides it for one cluster.
    pub fn from_env(cluster_name: &str) -> Result<FaultConfig, String> {
        let suffix = cluster_name.to_uppercase().replace(['-', '.'], "_");
        let read = |name: &str| -> Option<String> {
            std::env::var(format!("{name}_{suffix}"))
                .ok()
                .or_else(|| std::env::var(name).ok())
                .filter(|v| !v.trim().is_empty())
        };
        let mut config = FaultConfig::default();
        for (variable, setting) in [
            ("MESHSHIFT_SIM_ERROR_RATE", "api-error-rate"),
            ("MESHSHIFT_SIM_DROP_RATE", "api-drop-rate"),
            ("MESHSHIFT_SIM_LATENCY_MS", "api-latency-ms"),
            ("MESHSHIFT_SIM_FAULT_SEED", "seed"),
        ] {
            if let Some(text) = read(variable) {
                config
                    .set(setting, &text, None)
                    .map_err(|e| format!("{variable}: {e}"))?;
            }
        }
        if let Some(text) = read("MESHSHIFT_SIM_FAULTS") {
            config
                .apply_settings(text.split_whitespace(), None)
                .map_err(|e| format!("MESHSHIFT_SIM_FAULTS: {e}"))?;
        }
        Ok(config)
    }

    /// Applies `name=value` settings, to the Service `service` (namespace, name) when given.
    pub fn apply_settings<'a>(
        &mut self,
        settings: impl IntoIterator<Item = &'a str>,
        service: Option<&(String, String)>,
    ) -> Result<(), String> {
        for setting in settings {
            let (name, value) = setting
                .split_once('=')
                .ok_or_else(|| format!("expected name=value, got {setting:?}"))?;
            self.set(name.trim(), value.trim(), service)?;
        }
        Ok(())
    }

    /// Applies one setting (see [`SETTINGS`]).
    pub fn set(
        &mut self,
        name: &str,
        value: &str,
        service: Option<&(String, String)>,
    ) -> Result<(), String> {
        let data_plane = matches!(name, "http-503-ratio" | "reset-ratio" | "latency-ms");
        if service.is_some() && !data_plane {
            return Err(format!(
                "{name} is not a Service's fault (a Service takes http-503-ratio, reset-ratio and latency-ms)"
            ));
        }
        if data_plane {
            let faults = match service {
                Some(key) => self.services.entry(key.clone()).or_default(),
                None => &mut self.data_plane,
            };
            match name {
                "http-503-ratio" => faults.error_ratio = parse_rate(value)?,
                "reset-ratio" => faults.drop_ratio = parse_rate(value)?,
                _ => {
                    let (low, high) = parse_range(value)?;
                    faults.latency_min = Duration::from_millis(low);
                    faults.latency_max = Duration::from_millis(high);
                }
            }
            return Ok(());
        }
        match name {
            "api-error-rate" => self.error_rate = parse_rate(value)?,
            "api-drop-rate" => self.drop_rate = parse_rate(value)?,
            "api-latency-ms" => {
                let (low, high) = parse_range(value)?;
                self.latency = Duration::from_millis(low);
                self.latency_jitter = Duration::from_millis(high - low);
            }
            "watch-cut-s" => {
                let seconds = parse_seconds(value)?;
                self.watch_cut = (!seconds.is_zero()).then_some(seconds);
            }
            "conflict-rate" => self.conflict_rate = parse_rate(value)?,
            "unreachable-s" => {
                let seconds = parse_seconds(value)?;
                self.unreachable_for = (!seconds.is_zero()).then_some(seconds);
            }
            "seed" => {
                self.seed = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| format!("seed must be a whole number, got {value:?}"))?,
                )
            }
            _ => {
                let known: Vec<&str> = SETTINGS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown fault {name:?} (known: {})",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Draws the fate of one request.
    pub fn decide(&self, rng: &mut impl Rng) -> (Duration, FaultDecision) {
        let jitter_ms = self.latency_jitter.as_millis() as u64;
        let delay = self.latency
            + if jitter_ms > 0 {
                Duration::from_millis(rng.random_range(0..=jitter_ms))
            } else {
                Duration::ZERO
            };
        if self.drop_rate > 0.0 && rng.random_bool(self.drop_rate.clamp(0.0, 1.0)) {
            return (delay, FaultDecision::Drop);
        }
        if self.error_rate > 0.0 && rng.random_bool(self.error_rate.clamp(0.0, 1.0)) {
            let code = [500, 503, 429][rng.random_range(0..3)];
            return (delay, FaultDecision::Fail(code));
        }
        (delay, FaultDecision::Serve)
    }

    /// The faults as JSON (what the control endpoint answers).
    pub fn to_json(&self) -> Value {
        let faults = |f: &Faults| {
            json!({"http503Ratio": f.error_ratio, "resetRatio": f.drop_ratio,
                   "latencyMs": [f.latency_min.as_millis() as u64, f.latency_max.as_millis() as u64]})
        };
        json!({
            "apiErrorRate": self.error_rate,
            "apiDropRate": self.drop_rate,
            "apiLatencyMs": [self.latency.as_millis() as u64, (self.latency + self.latency_jitter).as_millis() as u64],
            "watchCutSeconds": self.watch_cut.map(|d| d.as_secs_f64()),
            "conflictRate": self.conflict_rate,
            "unreachableSeconds": self.unreachable_for.map(|d| d.as_secs_f64()),
            "dataPlane": faults(&self.data_plane),
            "services": self.services.iter().map(|((ns, name), f)| (format!("{ns}/{name}"), faults(f))).collect::<serde_json::Map<_, _>>(),
            "seed": self.seed,
        })
    }
}

/// A handler for a setting added by another part of the simulator (for example a
/// per-cluster propagation delay of the mesh): called with the value.
pub type SettingHandler = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The faults in force on one running server, changeable while it serves.
pub struct FaultControl {
    cluster: String,
    config: RwLock<FaultConfig>,
    rng: Mutex<StdRng>,
    unreachable_until: Mutex<Option<Instant>>,
    changed: tokio::sync::Notify,
    live: LiveFaults,
    /// Faults injected so far: errors, drops, conflicts, watch cuts.
    injected: Mutex<[u64; 4]>,
    extensions: RwLock<BTreeMap<String, SettingHandler>>,
}

/// A stable 64-bit hash of a name (FNV-1a), so that each cluster of a seeded pair draws its
/// own sequence.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl FaultControl {
    /// The control of cluster `cluster`, starting with `config`.
    pub fn new(cluster: &str, config: FaultConfig) -> Arc<FaultControl> {
        let control = Arc::new(FaultControl {
            cluster: cluster.to_string(),
            config: RwLock::new(FaultConfig::default()),
            rng: Mutex::new(StdRng::seed_from_u64(rand::random())),
            unreachable_until: Mutex::new(None),
            changed: tokio::sync::Notify::new(),
            live: LiveFaults::default(),
            injected: Mutex::default(),
            extensions: RwLock::new(BTreeMap::new()),
        });
        control.replace(config);
        control
    }

    /// The data-plane faults the cluster's mesh reads.
    pub fn live(&self) -> LiveFaults {
        self.live.clone()
    }

    /// Adds a setting that another part of the simulator handles (its name must not be one
    /// of [`SETTINGS`]).
    pub fn register(&self, name: &str, handler: SettingHandler) {
        self.extensions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), handler);
    }

    /// The faults in force.
    pub fn config(&self) -> FaultConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces all faults.
    pub fn replace(&self, config: FaultConfig) {
        if let Some(seed) = config.seed {
            *self.rng.lock().unwrap_or_else(|e| e.into_inner()) =
                StdRng::seed_from_u64(seed ^ name_hash(&self.cluster));
        }
        self.live.replace(
            config.data_plane.clone(),
            config.services.clone(),
            config.seed.map(|s| s ^ name_hash(&self.cluster) ^ 1),
        );
        let until = config.unreachable_for.map(|d| Instant::now() + d);
        *self
            .unreachable_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = until;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        self.changed.notify_waiters();
    }

    /// Applies settings on top of the faults in force (or of none when `clear`).
    pub fn update(
        &self,
        clear: bool,
        service: Option<&(String, String)>,
        settings: &[String],
    ) -> Result<FaultConfig, String> {
        let mut config = if clear {
            FaultConfig::default()
        } else {
            let mut current = self.config();
            // A past outage is not repeated by an unrelated change.
            current.unreachable_for = None;
            current
        };
        let extensions = self
            .extensions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut extension_calls = Vec::new();
        for setting in settings {
            let (name, value) = setting
                .split_once('=')
                .ok_or_else(|| format!("expected name=value, got {setting:?}"))?;
            match extensions.get(name.trim()) {
                Some(handler) => extension_calls.push((handler.clone(), value.trim().to_string())),
                None => config.set(name.trim(), value.trim(), service)?,
            }
        }
        for (handler, value) in extension_calls {
            handler(&value)?;
        }
        self.replace(config.clone());
        Ok(config)
    }

    /// Draws the fate of one client request.
    pub fn decide(&self) -> (Duration, FaultDecision) {
        let config = self.config.read().unwrap_or_else(|e| e.into_inner());
        if !config.is_active() {
            return (Duration::ZERO, FaultDecision::Serve);
        }
        let decision = config.decide(&mut *self.rng.lock().unwrap_or_else(|e| e.into_inner()));
        match decision.1 {
            FaultDecision::Fail(_) => self.count(0),
            FaultDecision::Drop => self.count(1),
            FaultDecision::Serve => {}
        }
        decision
    }

    fn count(&self, index: usize) {
        self.injected.lock().unwrap_or_else(|e| e.into_inner())[index] += 1;
    }

    /// Counts of injected API faults, as JSON.
    pub fn injected(&self) -> Value {
        let [errors, drops, conflicts, watch_cuts] =
            *self.injected.lock().unwrap_or_else(|e| e.into_inner());
        json!({"errors": errors, "drops": drops, "conflicts": conflicts, "watchCuts": watch_cuts})
    }

    /// Whether an update carrying a resourceVersion is answered 409.
    pub fn conflict(&self) -> bool {
        let rate = self
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .conflict_rate;
        let conflict = rate > 0.0
            && self
                .rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .random_bool(rate.clamp(0.0, 1.0));
        if conflict {
            self.count(2);
        }
        conflict
    }

    /// How long a watch may stream before it is cut.
    pub fn watch_cut(&self) -> Option<Duration> {
        let cut = self
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .watch_cut;
        if cut.is_some() {
            self.count(3);
        }
        cut
    }

    /// How long the server still refuses connections, if it does.
    pub fn unreachable_remaining(&self) -> Option<Duration> {
        let until = *self
            .unreachable_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        until
            .and_then(|u| u.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// Resolves when the faults change.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "must be a probability between 0 and 1, got {text:?}"
        )),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.trim().trim_end_matches('s').parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && (0.0..=86_400.0).contains(&seconds) => {
            Ok(Duration::from_secs_f64(seconds))
        }
        _ => Err(format!("must be seconds between 0 and 86400, got {text:?}")),
    }
}

fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("must be milliseconds or a range like 20-80, got {text:?}");
    let (low, high) = match text.trim().split_once('-') {
        Some((low, high)) => (
            low.trim().parse::<u64>().map_err(|_| bad())?,
            high.trim().parse::<u64>().map_err(|_| bad())?,
        ),
        None => {
            let ms = text.trim().parse::<u64>().map_err(|_| bad())?;
            (ms, ms)
        }
    };
    if high < low || high > 600_000 {
        return Err(bad());
    }
    Ok((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_latency_parse() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("2").is_err());
        assert_eq!(parse_range("20-80"), Ok((20, 80)));
        assert_eq!(parse_range("50"), Ok((50, 50)));
        assert!(parse_range("80-20").is_err());
        assert_eq!(parse_seconds("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_seconds("-1").is_err());
    }

    #[test]
    fn settings_reach_their_fields_and_unknown_ones_are_named() {
        let mut config = FaultConfig::default();
        let service = ("bookinfo".to_string(), "reviews".to_string());
        config
            .apply_settings(
                ["api-error-rate=0.05", "watch-cut-s=2", "http-503-ratio=0.2"],
                None,
            )
            .expect("valid");
        config
            .apply_settings(["latency-ms=100-300"], Some(&service))
            .expect("valid");
        assert_eq!(config.error_rate, 0.05);
        assert_eq!(config.watch_cut, Some(Duration::from_secs(2)));
        assert_eq!(config.data_plane.error_ratio, 0.2);
        assert_eq!(
            config.services[&service].latency_max,
            Duration::from_millis(300)
        );
        let error = config.set("api-errors", "1", None).unwrap_err();
        assert!(error.starts_with("unknown fault \"api-errors\""), "{error}");
        let error = config.set("watch-cut-s", "1", Some(&service)).unwrap_err();
        assert!(error.contains("not a Service's fault"), "{error}");
    }

    #[test]
    fn decisions_follow_the_rates() {
        let mut rng = StdRng::seed_from_u64(7);
        let off = FaultConfig::default();
        assert!(!off.is_active());
        assert_eq!(off.decide(&mut rng), (Duration::ZERO, FaultDecision::Serve));
        let always = FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        };
        for _ in 0..20 {
            assert!(matches!(
                always.decide(&mut rng).1,
                FaultDecision::Fail(500 | 503 | 429)
            ));
        }
        let drops = FaultConfig {
            drop_rate: 1.0,
            error_rate: 1.0,
            ..FaultConfig::default()
        };
        assert_eq!(drops.decide(&mut rng).1, FaultDecision::Drop);
    }

    #[test]
    fn a_seed_fixes_the_decisions_per_cluster() {
        let config = FaultConfig {
            error_rate: 0.3,
            drop_rate: 0.1,
            seed: Some(42),
            ..FaultConfig::default()
        };
        let draw = |cluster: &str| {
            let control = FaultControl::new(cluster, config.clone());
            (0..200).map(|_| control.decide().1).collect::<Vec<_>>()
        };
        assert_eq!(draw("sim-target"), draw("sim-target"));
        assert_ne!(draw("sim-target"), draw("sim-source"));
    }

    #[test]
    fn extensions_take_their_settings() {
        let control = FaultControl::new("sim-target", FaultConfig::default());
        let seen = Arc::new(Mutex::new(String::new()));
        let record = seen.clone();
        control.register(
            "propagation-ms",
            Arc::new(move |v: &str| {
                *record.lock().unwrap() = v.to_string();
                Ok(())
            }),
        );
        control
            .update(false, None, &["propagation-ms=2000".into()])
            .expect("handled");
        assert_eq!(*seen.lock().unwrap(), "2000");
        assert!(control.update(false, None, &["nope=1".into()]).is_err());
    }
}
