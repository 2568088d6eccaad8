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

use std::time::Duration;

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
}
