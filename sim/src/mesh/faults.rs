//! Faults set through the Kubernetes API, as annotations on a Service: its pods (or, on a
//! gateway's Service, the gateway itself) answer some requests with 503, answer late, or drop
//! connections.
//!
//! | annotation | meaning |
//! | --- | --- |
//! | `sim.meshshift.io/http-503-ratio` | share of requests answered `503` (`0.5`; `1` for all) |
//! | `sim.meshshift.io/latency-ms` | added latency in ms: `200`, or a range `100-300` |
//! | `sim.meshshift.io/drop-ratio` | share of requests whose connection is closed without an answer |
//!
//! `kubectl annotate service productpage sim.meshshift.io/http-503-ratio=1` makes every
//! productpage request fail; `kubectl annotate service productpage sim.meshshift.io/http-503-ratio-`
//! heals it.
//!
//! [`LiveFaults`] are the faults set on a running simulator (`meshshift sim fault`, see
//! [`crate::fault`]): at every gateway of the cluster, or at single Services in place of
//! their annotations. They live outside the cluster's objects, so an export of the cluster
//! does not show them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Annotation: share of requests answered 503.
pub const HTTP_503_RATIO: &str = "sim.meshshift.io/http-503-ratio";
/// Annotation: added latency (ms, or a range `a-b`).
pub const LATENCY_MS: &str = "sim.meshshift.io/latency-ms";
/// Annotation: share of connections dropped.
pub const DROP_RATIO: &str = "sim.meshshift.io/drop-ratio";

/// The faults of one Service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Probability of a 503 answer.
    pub error_ratio: f64,
    /// Minimum added latency.
    pub latency_min: Duration,
    /// Maximum added latency.
    pub latency_max: Duration,
    /// Probability of a dropped connection.
    pub drop_ratio: f64,
}

fn ratio(text: &str) -> f64 {
    text.trim()
        .parse::<f64>()
        .map(|r| r.clamp(0.0, 1.0))
        .unwrap_or(0.0)
}

impl Faults {
    /// Reads the annotations of an object; malformed values count as no fault.
    pub fn of(object: &Value) -> Faults {
        let annotation = |key: &str| {
            object
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
        };
        let mut faults = Faults {
            error_ratio: annotation(HTTP_503_RATIO).map(ratio).unwrap_or(0.0),
            drop_ratio: annotation(DROP_RATIO).map(ratio).unwrap_or(0.0),
            ..Faults::default()
        };
        if let Some(latency) = annotation(LATENCY_MS) {
            let (low, high) = latency.split_once('-').unwrap_or((latency, latency));
            let ms = |t: &str| t.trim().parse::<u64>().ok().map(Duration::from_millis);
            if let (Some(low), Some(high)) = (ms(low), ms(high)) {
                faults.latency_min = low.min(high);
                faults.latency_max = low.max(high);
            }
        }
        faults
    }

    /// The latency for one request, given a uniform draw in `0..1`.
    pub fn latency(&self, draw: f64) -> Duration {
        let span = self.latency_max.saturating_sub(self.latency_min);
        self.latency_min + span.mul_f64(draw.clamp(0.0, 1.0))
    }
}

impl Faults {
    /// Whether any fault is set.
    pub fn is_active(&self) -> bool {
        self.error_ratio > 0.0 || self.drop_ratio > 0.0 || !self.latency_max.is_zero()
    }

    /// Both faults in turn: a request passes when it passes each, and waits for both.
    pub fn then(&self, other: &Faults) -> Faults {
        let either = |a: f64, b: f64| 1.0 - (1.0 - a) * (1.0 - b);
        Faults {
            error_ratio: either(self.error_ratio, other.error_ratio),
            drop_ratio: either(self.drop_ratio, other.drop_ratio),
            latency_min: self.latency_min + other.latency_min,
            latency_max: self.latency_max + other.latency_max,
        }
    }
}

#[derive(Default)]
struct LiveSet {
    gateways: Faults,
    services: BTreeMap<(String, String), Faults>,
}

/// Data-plane faults of one cluster set while it runs; cheap to clone (shared).
#[derive(Clone)]
pub struct LiveFaults {
    set: Arc<RwLock<LiveSet>>,
    /// Seeded when the faults are, so that their decisions repeat.
    rng: Arc<Mutex<StdRng>>,
}

impl Default for LiveFaults {
    fn default() -> Self {
        LiveFaults {
            set: Arc::default(),
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(rand::random()))),
        }
    }
}

impl std::fmt::Debug for LiveFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveFaults")
    }
}

impl LiveFaults {
    /// Replaces the faults (and reseeds the decisions when `seed` is given).
    pub fn replace(
        &self,
        gateways: Faults,
        services: BTreeMap<(String, String), Faults>,
        seed: Option<u64>,
    ) {
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = LiveSet { gateways, services };
        if let Some(seed) = seed {
            *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = StdRng::seed_from_u64(seed);
        }
    }

    /// The faults of Service `service` whose annotations say `annotated`: a live setting of
    /// the Service replaces them; at a gateway, the cluster's gateway faults come first.
    pub fn effective(
        &self,
        service: &(String, String),
        annotated: &Faults,
        is_gateway: bool,
    ) -> Faults {
        let set = self.set.read().unwrap_or_else(|e| e.into_inner());
        let own = set.services.get(service).unwrap_or(annotated);
        if is_gateway && set.gateways.is_active() && own.is_active() {
            set.gateways.then(own)
        } else if is_gateway && set.gateways.is_active() {
            set.gateways.clone()
        } else {
            own.clone()
        }
    }

    /// Draws uniformly in `0..1` from the seeded generator when the faults are seeded, so
    /// that fault decisions repeat.
    pub fn draw(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_annotations() {
        let service = json!({"metadata": {"annotations": {HTTP_503_RATIO: "0.25", LATENCY_MS: "100-300", DROP_RATIO: "x"}}});
        let faults = Faults::of(&service);
        assert_eq!(faults.error_ratio, 0.25);
        assert_eq!(faults.drop_ratio, 0.0);
        assert_eq!(faults.latency(0.5), Duration::from_millis(200));
        assert_eq!(Faults::of(&json!({})), Faults::default());
        assert_eq!(
            Faults::of(&json!({"metadata": {"annotations": {LATENCY_MS: "50"}}})).latency(0.9),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn live_faults_replace_annotations_and_add_at_gateways() {
        let live = LiveFaults::default();
        let key = ("bookinfo".to_string(), "reviews".to_string());
        let annotated = Faults {
            error_ratio: 0.5,
            ..Faults::default()
        };
        assert_eq!(live.effective(&key, &annotated, false), annotated);
        let gateway = Faults {
            error_ratio: 0.2,
            ..Faults::default()
        };
        live.replace(gateway.clone(), BTreeMap::new(), Some(1));
        assert_eq!(live.effective(&key, &Faults::default(), true), gateway);
        assert_eq!(
            live.effective(&key, &Faults::default(), false),
            Faults::default()
        );
        assert!((live.effective(&key, &annotated, true).error_ratio - 0.6).abs() < 1e-9);
        live.replace(
            Faults::default(),
            BTreeMap::from([(key.clone(), Faults::default())]),
            None,
        );
        assert_eq!(live.effective(&key, &annotated, false), Faults::default());
    }
}
