//! Fault injection: random API errors, added latency and dropped requests.

use std::time::Duration;

use rand::Rng;

/// Faults one API server injects into resource and discovery requests (health endpoints are
/// never affected). All off by default.
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
    /// Whether any fault is configured.
    pub fn is_active(&self) -> bool {
        self.error_rate > 0.0
            || self.drop_rate > 0.0
            || !self.latency.is_zero()
            || !self.latency_jitter.is_zero()
    }

    /// Reads faults from the environment for the cluster `cluster_name`.
    ///
    /// `MESHSHIFT_SIM_ERROR_RATE`, `MESHSHIFT_SIM_DROP_RATE` (probabilities, `0.05`),
    /// `MESHSHIFT_SIM_LATENCY_MS` (`50` or a range `20-80`) apply to every cluster; the same
    /// names with the cluster name appended in upper case with `-` as `_`
    /// (`MESHSHIFT_SIM_ERROR_RATE_SIM_TARGET`) override them for one cluster.
    pub fn from_env(cluster_name: &str) -> Result<FaultConfig, String> {
        let suffix = cluster_name.to_uppercase().replace(['-', '.'], "_");
        let read = |name: &str| -> Option<String> {
            std::env::var(format!("{name}_{suffix}"))
                .ok()
                .or_else(|| std::env::var(name).ok())
                .filter(|v| !v.trim().is_empty())
        };
        let mut config = FaultConfig::default();
        if let Some(text) = read("MESHSHIFT_SIM_ERROR_RATE") {
            config.error_rate = parse_rate("MESHSHIFT_SIM_ERROR_RATE", &text)?;
        }
        if let Some(text) = read("MESHSHIFT_SIM_DROP_RATE") {
            config.drop_rate = parse_rate("MESHSHIFT_SIM_DROP_RATE", &text)?;
        }
        if let Some(text) = read("MESHSHIFT_SIM_LATENCY_MS") {
            let (low, high) = parse_latency(&text)?;
            config.latency = Duration::from_millis(low);
            config.latency_jitter = Duration::from_millis(high - low);
        }
        Ok(config)
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
}

fn parse_rate(name: &str, text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "{name} must be a probability between 0 and 1, got {text:?}"
        )),
    }
}

fn parse_latency(text: &str) -> Result<(u64, u64), String> {
    let bad = || {
        format!("MESHSHIFT_SIM_LATENCY_MS must be milliseconds or a range like 20-80, got {text:?}")
    };
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
    if high < low {
        return Err(bad());
    }
    Ok((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rates_and_latency_parse() {
        assert_eq!(parse_rate("X", "0.25"), Ok(0.25));
        assert!(parse_rate("X", "2").is_err());
        assert_eq!(parse_latency("20-80"), Ok((20, 80)));
        assert_eq!(parse_latency("50"), Ok((50, 50)));
        assert!(parse_latency("80-20").is_err());
    }

    #[test]
    fn decisions_follow_the_rates() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
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
}
