//! What `http_get`, `sample` and `split_check` give scripts in plan mode, where no request is
//! sent: empty tallies and a split that holds by construction, each marked `planned: true` by
//! the host functions, so a rehearsal's traffic steps pass and every later step appears in
//! the plan.

use std::collections::BTreeMap;

use super::http::{Latencies, ProbeSummary, SampleSummary};
use super::split::{CheckResult, ShareResult};

/// The error text of a request plan mode did not send.
pub const NOT_SENT: &str = "plan: no request sent";

/// An `http_get` that was not sent: status 0, `error_kind` `planned`.
pub fn probe() -> ProbeSummary {
    ProbeSummary {
        status: 0,
        headers: BTreeMap::new(),
        title: None,
        body: String::new(),
        elapsed_ms: 0.0,
        error: Some(NOT_SENT.to_string()),
        error_kind: Some("planned".to_string()),
    }
}

/// A sample of no requests.
pub fn sample() -> SampleSummary {
    SampleSummary {
        total: 0,
        ok: 0,
        counts: BTreeMap::new(),
        unextracted: 0,
        errors: BTreeMap::new(),
        error_count: 0,
        error_rate: 0.0,
        statuses: BTreeMap::new(),
        latency_ms: Latencies {
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            max: 0.0,
        },
        elapsed_ms: 0.0,
    }
}

/// A split check of nothing observed that passes: each route's share is its configured one
/// (Istio semantics: relative weights).
pub fn check(weights: &[(String, i64)]) -> CheckResult {
    let sum: i64 = weights.iter().map(|(_, w)| (*w).max(0)).sum();
    let shares = weights
        .iter()
        .map(|(route, weight)| {
            let expected = if sum > 0 {
                (*weight).max(0) as f64 / sum as f64
            } else {
                0.0
            };
            ShareResult {
                route: route.clone(),
                weight: *weight,
                expected,
                observed: 0,
                share: expected,
                low: expected,
                high: expected,
            }
        })
        .collect();
    CheckResult {
        verdict: "pass",
        p_value: 1.0,
        p_text: "planned".to_string(),
        method: "planned",
        total: 0,
        required_sample: 0,
        reason: NOT_SENT.to_string(),
        shares,
        ignored: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planned_check_passes_at_the_configured_shares() {
        let result = check(&[("source".into(), 75), ("target".into(), 25)]);
        assert_eq!(result.verdict, "pass");
        assert_eq!(result.shares[1].share, 0.25);
        assert_eq!(check(&[("a".into(), 0)]).shares[0].share, 0.0);
        assert_eq!(sample().total, 0);
        assert_eq!(probe().status, 0);
    }
}
