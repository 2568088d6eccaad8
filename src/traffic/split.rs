//! The split verdict: does a sample of responses, counted per route, agree with the weights of a
//! VirtualService?
//!
//! # Weights
//!
//! Weights follow Istio's semantics: each is a relative proportion and must be `>= 0`; with
//! several destinations their total must be `> 0`, each gets `weight / total` of the traffic and a
//! destination with weight 0 gets none; a single destination gets all traffic whatever its
//! weight (see [`effective_shares`]).
//!
//! # Method
//!
//! The null hypothesis is that every request independently lands on route `i` with the expected
//! share `s_i`, so the counts are multinomial. With two routes of positive weight the test is
//! the exact two-sided binomial test on the count of the first of them (the "minlike" p-value of
//! R's `binom.test`: the total probability of the outcomes no more likely than the one observed).
//! With `k > 2` of them it is Pearson's chi-square goodness-of-fit test with `k − 1` degrees of
//! freedom; the chi-square approximation is unreliable when an expected count is below 5, so in
//! that case a small p-value alone yields `Inconclusive`, never `Fail`, and the reason says so.
//! A route with weight 0 that received more than the tolerance fails outright with p = 0. With
//! one route of positive weight there is nothing to test (p = 1). The verdict is `Fail` when
//! p < 1 − confidence **and** some share lies outside its weight ± tolerance: the deviation must
//! be both significant and material, so a correctly configured split is wrongly failed at most
//! 1 − confidence of the time (usually far less), and a drift inside the tolerance never rolls a
//! step back.
//!
//! Not failing is not the same as being right: a handful of requests is consistent with almost
//! any split. So each route also gets a Clopper–Pearson interval for its share, at the given
//! confidence, or, when `k > 2` routes are listed (weight 0 included), at the Bonferroni-adjusted
//! confidence `1 − (1 − confidence) / k` so that all `k` intervals hold together (two intervals
//! mirror each other and need no adjustment). The verdict is `Pass` only
//! when every interval lies within `expected share ± tolerance`: the sample is then precise
//! enough to say the split is right. Otherwise it is `Inconclusive`, and `required_sample`
//! tells how many requests would decide: the smallest `n` at which, had every route received
//! exactly `round(n · share)` requests, every interval would fit within a third of the
//! tolerance. Sized so, a sample still passes when its shares stray by up to two thirds of the
//! tolerance, as a correct split's do almost always (about four standard deviations at 95%);
//! sized for the whole tolerance, a correct split would stay inconclusive about half the time.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use super::stats;

/// Name of the method used with one or two routes of positive weight.
pub const METHOD_BINOMIAL: &str = "exact binomial";
/// Name of the method used with more than two routes of positive weight.
pub const METHOD_CHI_SQUARE: &str = "chi-square";

/// Sample sizes above this are estimated with the normal approximation instead of searched.
const MAX_SEARCHED_SAMPLE: u64 = 10_000_000;
/// Slack when comparing an interval with its bounds, so that rounding can't flip a verdict.
const BOUND_SLACK: f64 = 1e-12;
/// Expected count below which the chi-square approximation is not trusted to fail a split.
const MIN_EXPECTED_COUNT: f64 = 5.0;

/// What [`check_split`] compares: counts per route against the configured weights.
#[derive(Debug, Clone, Copy)]
pub struct SplitInput<'a> {
    /// Requests counted per route (e.g. `("source", 905)`); every route must appear in
    /// `weights`, and a weighted route missing here counts as 0.
    pub observed: &'a [(String, u64)],
    /// Configured weights per route, with Istio semantics (see [`effective_shares`]).
    pub weights: &'a [(String, i64)],
    /// Confidence level in `(0.5, 1)`, e.g. 0.95: the false-fail rate is at most `1 − confidence`.
    pub confidence: f64,
    /// Largest acceptable difference between an observed and an expected share, in `(0, 0.5)`.
    pub tolerance: f64,
}

/// Outcome of a split check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The split is within tolerance of the weights, at the requested confidence.
    Pass,
    /// The observed split is inconsistent with the weights.
    Fail,
    /// Too few samples to tell either way.
    Inconclusive,
}

impl Verdict {
    /// Lower-case name: `"pass"`, `"fail"` or `"inconclusive"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One route's line of a [`SplitReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct ShareReport {
    /// Route name, as given in the weights.
    pub route: String,
    /// Configured weight.
    pub weight: i64,
    /// Share of traffic the weights give this route, in `[0, 1]`.
    pub expected_share: f64,
    /// Requests counted for this route.
    pub observed: u64,
    /// `observed / total` (0 when nothing was sampled).
    pub observed_share: f64,
    /// Clopper–Pearson interval for the route's true share (Bonferroni-adjusted with more than
    /// two routes); `(0, 1)` when nothing was sampled.
    pub interval: (f64, f64),
}

/// Result of [`check_split`].
#[derive(Debug, Clone, PartialEq)]
pub struct SplitReport {
    /// Pass, fail or inconclusive.
    pub verdict: Verdict,
    /// [`METHOD_BINOMIAL`] or [`METHOD_CHI_SQUARE`].
    pub method: &'static str,
    /// p-value of the test of the counts against the weights (1 when there is nothing to test,
    /// 0 when a route with weight 0 received traffic).
    pub p_value: f64,
    /// Requests counted over all routes.
    pub total: u64,
    /// One line per weighted route, in the order of the weights.
    pub shares: Vec<ShareReport>,
    /// Sample size that would decide at this confidence and tolerance (see the module doc).
    pub required_sample: u64,
    /// One short sentence explaining the verdict.
    pub reason: String,
}

/// Why a split could not be checked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    /// Confidence outside `(0.5, 1)`.
    #[error("confidence must be above 0.5 and below 1, got `{value}`")]
    Confidence {
        /// The rejected value.
        value: f64,
    },
    /// Tolerance outside `(0, 0.5)`.
    #[error("tolerance must be above 0 and below 0.5, got `{value}`")]
    Tolerance {
        /// The rejected value.
        value: f64,
    },
    /// No weights at all.
    #[error("no weighted routes")]
    NoRoutes,
    /// A weight below 0.
    #[error("route `{route}` has negative weight `{weight}`")]
    NegativeWeight {
        /// Route name.
        route: String,
        /// Its weight.
        weight: i64,
    },
    /// Several routes whose weights add up to 0.
    #[error("weights of {} add up to 0", ticked(.routes))]
    ZeroTotalWeight {
        /// All route names.
        routes: Vec<String>,
    },
    /// The same route weighted twice.
    #[error("route `{route}` is weighted twice")]
    DuplicateWeight {
        /// Route name.
        route: String,
    },
    /// The same route counted twice.
    #[error("route `{route}` is counted twice")]
    DuplicateObserved {
        /// Route name.
        route: String,
    },
    /// Counted routes that have no weight.
    #[error("{} not weighted (weighted: {})", unknown_subject(.routes), ticked(.known))]
    UnknownRoutes {
        /// The counted routes without a weight.
        routes: Vec<String>,
        /// The weighted routes.
        known: Vec<String>,
    },
    /// The counts add up to more than `u64::MAX`.
    #[error("total request count overflows")]
    TotalOverflow,
}

fn ticked(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_subject(routes: &[String]) -> String {
    if routes.len() == 1 {
        format!("observed route {} is", ticked(routes))
    } else {
        format!("observed routes {} are", ticked(routes))
    }
}

/// Shares of traffic that Istio gives each route for the given weights, in the same order.
///
/// Each weight must be `>= 0` and names must be unique. A single route gets 1.0 whatever its
/// weight; with several, each gets `weight / total` (so weight 0 gets none) and the total must
/// be `> 0`.
///
/// # Errors
///
/// No weights, a negative weight, a route weighted twice, or several weights adding up to 0.
///
/// ```text
/// let shares = effective_shares(&[("source".into(), 90), ("target".into(), 10)])?;
/// assert_eq!(shares[1], ("target".to_string(), 0.1));
/// ```
pub fn effective_shares(weights: &[(String, i64)]) -> Result<Vec<(String, f64)>, SplitError> {
    if weights.is_empty() {
        return Err(SplitError::NoRoutes);
    }
    let mut seen = HashSet::new();
    for (route, weight) in weights {
        if !seen.insert(route.as_str()) {
            return Err(SplitError::DuplicateWeight {
                route: route.clone(),
            });
        }
        if *weight < 0 {
            return Err(SplitError::NegativeWeight {
                route: route.clone(),
                weight: *weight,
            });
        }
    }
    if let [(route, _)] = weights {
        return Ok(vec![(route.clone(), 1.0)]);
    }
    // Sum in i128: several int64 weights can't overflow it.
    let total: i128 = weights.iter().map(|(_, w)| i128::from(*w)).sum();
    if total == 0 {
        return Err(SplitError::ZeroTotalWeight {
            routes: weights.iter().map(|(r, _)| r.clone()).collect(),
        });
    }
    Ok(weights
        .iter()
        .map(|(r, w)| (r.clone(), (i128::from(*w) as f64) / (total as f64)))
        .collect())
}

/// Checks observed counts per route against configured weights and returns the verdict with
/// its evidence (see the module doc for the method).
///
/// # Errors
///
/// Invalid confidence or tolerance, invalid weights (see [`effective_shares`]), a route counted
/// twice, or a counted route that has no weight (all such routes are named).
///
/// ```text
/// let observed = [("source".to_string(), 900), ("target".to_string(), 100)];
/// let weights = [("source".to_string(), 90), ("target".to_string(), 10)];
/// let input = SplitInput { observed: &observed, weights: &weights, confidence: 0.95, tolerance: 0.05 };
/// assert_eq!(check_split(&input)?.verdict, Verdict::Pass);
/// ```
pub fn check_split(input: &SplitInput) -> Result<SplitReport, SplitError> {
    let confidence = input.confidence;
    let tolerance = input.tolerance;
    if !(confidence > 0.5 && confidence < 1.0) {
        return Err(SplitError::Confidence { value: confidence });
    }
    if !(tolerance > 0.0 && tolerance < 0.5) {
        return Err(SplitError::Tolerance { value: tolerance });
    }
    let shares = effective_shares(input.weights)?;
    let counts = counts_per_route(input.observed, &shares)?;
    let total = counts
        .iter()
        .try_fold(0_u64, |acc, c| acc.checked_add(*c))
        .ok_or(SplitError::TotalOverflow)?;

    let k = shares.len();
    // Simultaneous coverage for more than two intervals; with two they mirror each other.
    let interval_confidence = if k > 2 {
        1.0 - (1.0 - confidence) / k as f64
    } else {
        confidence
    };
    let reports: Vec<ShareReport> = shares
        .iter()
        .zip(input.weights)
        .zip(&counts)
        .map(|(((route, share), (_, weight)), &observed)| ShareReport {
            route: route.clone(),
            weight: *weight,
            expected_share: *share,
            observed,
            observed_share: if total == 0 {
                0.0
            } else {
                observed as f64 / total as f64
            },
            interval: stats::clopper_pearson(observed, total, interval_confidence),
        })
        .collect();
    let expected: Vec<f64> = shares.iter().map(|(_, s)| *s).collect();
    let required_sample = required_sample(&expected, interval_confidence, tolerance);
    let method = if expected.iter().filter(|s| **s > 0.0).count() > 2 {
        METHOD_CHI_SQUARE
    } else {
        METHOD_BINOMIAL
    };
    let (verdict, p_value, reason) =
        decide(&reports, total, confidence, tolerance, required_sample);
    Ok(SplitReport {
        verdict,
        method,
        p_value,
        total,
        shares: reports,
        required_sample,
        reason,
    })
}

/// Counts in the order of `shares`; routes not observed count 0.
fn counts_per_route(
    observed: &[(String, u64)],
    shares: &[(String, f64)],
) -> Result<Vec<u64>, SplitError> {
    let mut counts = vec![0_u64; shares.len()];
    let mut seen = HashSet::new();
    let mut unknown = Vec::new();
    for (route, count) in observed {
        if !seen.insert(route.as_str()) {
            return Err(SplitError::DuplicateObserved {
                route: route.clone(),
            });
        }
        match shares.iter().position(|(r, _)| r == route) {
            Some(i) => counts[i] = *count,
            None => unknown.push(route.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(SplitError::UnknownRoutes {
            routes: unknown,
            known: shares.iter().map(|(r, _)| r.clone()).collect(),
        });
    }
    Ok(counts)
}

/// p-value of the counts against the expected shares of the routes with positive weight, and
/// the smallest expected count when the chi-square test is used with one below 5.
fn goodness_of_fit(reports: &[ShareReport], total: u64) -> (f64, Option<f64>) {
    let positive: Vec<&ShareReport> = reports.iter().filter(|r| r.expected_share > 0.0).collect();
    match positive.as_slice() {
        [] | [_] => (1.0, None),
        [first, _] => (
            stats::binom_test(first.observed, total, first.expected_share),
            None,
        ),
        _ => {
            let n = total as f64;
            let mut statistic = 0.0;
            let mut smallest = f64::INFINITY;
            for r in &positive {
                let e = n * r.expected_share;
                let d = r.observed as f64 - e;
                statistic += d * d / e;
                smallest = smallest.min(e);
            }
            let p = stats::chi_square_sf(statistic, (positive.len() - 1) as f64);
            (p, (smallest < MIN_EXPECTED_COUNT).then_some(smallest))
        }
    }
}

/// Verdict, p-value and reason for validated counts (see the module doc).
fn decide(
    reports: &[ShareReport],
    total: u64,
    confidence: f64,
    tolerance: f64,
    required_sample: u64,
) -> (Verdict, f64, String) {
    let fmt = Format::new(tolerance);
    if total == 0 {
        let reason = format!("no samples: need about {required_sample} requests");
        return (Verdict::Inconclusive, 1.0, reason);
    }
    if let Some(r) = reports
        .iter()
        .find(|r| r.expected_share == 0.0 && r.observed_share > tolerance)
    {
        let reason = format!(
            "route `{}` has weight 0 but served {} of {total} requests",
            r.route, r.observed
        );
        return (Verdict::Fail, 0.0, reason);
    }

    let (p_value, small_expected) = goodness_of_fit(reports, total);
    let p_text = format_p(p_value);
    // Failing needs a deviation that is both significant and material: a share outside its
    // tolerance. A tiny but significant drift is left to the interval check.
    let material = reports
        .iter()
        .any(|r| (r.observed_share - r.expected_share).abs() > tolerance + BOUND_SLACK);
    if p_value < 1.0 - confidence && material {
        if let Some(smallest) = small_expected {
            let reason = format!(
                "chi-square p = {p_text} but the smallest expected count is {smallest:.1}, \
                 below 5: need about {required_sample} requests"
            );
            return (Verdict::Inconclusive, p_value, reason);
        }
        let reason = match most_deviant(reports) {
            Some(r) => format!(
                "`{}` share {} is outside {} ± {} (p = {p_text})",
                r.route,
                fmt.share(r.observed_share),
                fmt.share(r.expected_share),
                fmt.tolerance()
            ),
            None => format!("observed split differs from the weights (p = {p_text})"),
        };
        return (Verdict::Fail, p_value, reason);
    }

    match worst_interval(reports, tolerance) {
        None => {
            let reason = format!(
                "every share is within ± {} of its weight at {} confidence (p = {p_text})",
                fmt.tolerance(),
                format_percent(confidence)
            );
            (Verdict::Pass, p_value, reason)
        }
        Some(r) => {
            let need = if required_sample > total {
                format!("need about {required_sample} requests")
            } else {
                "the observed share drifts from its weight: sample more".to_string()
            };
            let reason = format!(
                "interval for `{}` [{}, {}] is not within {} ± {}: {need}",
                r.route,
                fmt.share(r.interval.0),
                fmt.share(r.interval.1),
                fmt.share(r.expected_share),
                fmt.tolerance()
            );
            (Verdict::Inconclusive, p_value, reason)
        }
    }
}

/// The route whose observed share is furthest from its expected share; ties go to the smaller
/// expected share (usually the route being shifted to).
fn most_deviant(reports: &[ShareReport]) -> Option<&ShareReport> {
    let mut best: Option<&ShareReport> = None;
    for r in reports {
        let d = (r.observed_share - r.expected_share).abs();
        best = match best {
            None => Some(r),
            Some(b) => {
                let bd = (b.observed_share - b.expected_share).abs();
                if d > bd + BOUND_SLACK
                    || ((d - bd).abs() <= BOUND_SLACK && r.expected_share < b.expected_share)
                {
                    Some(r)
                } else {
                    Some(b)
                }
            }
        };
    }
    best
}

/// How far `interval` sticks out of `expected ± tolerance` (≤ 0 when it fits).
fn overshoot(interval: (f64, f64), expected: f64, tolerance: f64) -> f64 {
    let below = (expected - tolerance) - interval.0;
    let above = interval.1 - (expected + tolerance);
    below.max(above)
}

/// The route whose interval sticks out furthest, or `None` when every interval fits; ties go to
/// the smaller expected share.
fn worst_interval(reports: &[ShareReport], tolerance: f64) -> Option<&ShareReport> {
    let mut worst: Option<(&ShareReport, f64)> = None;
    for r in reports {
        let o = overshoot(r.interval, r.expected_share, tolerance);
        if o <= BOUND_SLACK {
            continue;
        }
        let better = worst.is_none_or(|(w, wo)| {
            o > wo + BOUND_SLACK
                || ((o - wo).abs() <= BOUND_SLACK && r.expected_share < w.expected_share)
        });
        if better {
            worst = Some((r, o));
        }
    }
    worst.map(|(r, _)| r)
}

/// Whether every interval at `round(n · share)` fits within `share ± tolerance`.
fn fits(n: u64, shares: &[f64], confidence: f64, tolerance: f64) -> bool {
    shares.iter().all(|&s| {
        let x = ((n as f64) * s).round().clamp(0.0, n as f64) as u64;
        overshoot(stats::clopper_pearson(x, n, confidence), s, tolerance) <= BOUND_SLACK
    })
}

/// Smallest sample size at which every Clopper–Pearson interval, at the expected counts, fits
/// within the tolerance. Starts from the normal approximation `z² s (1 − s) / tolerance²`,
/// doubles until it fits, then bisects (the interval width shrinks with `n`, up to rounding of
/// the counts).
fn required_sample(shares: &[f64], confidence: f64, tolerance: f64) -> u64 {
    // Sized for a third of the tolerance: a sample of this size still passes when its share
    // strays from the weight by up to two thirds of the tolerance, which a correct split does
    // almost always (about 4 standard deviations at 95 % confidence). Sizing for the whole
    // tolerance would leave a correct split inconclusive about half of the time.
    let tolerance = tolerance / 3.0;
    let z = stats::normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let spread = shares.iter().map(|s| s * (1.0 - s)).fold(0.0, f64::max);
    let estimate = (z * z * spread / (tolerance * tolerance)).ceil().max(1.0);
    if !estimate.is_finite() || estimate > MAX_SEARCHED_SAMPLE as f64 {
        // At this size the exact interval is the normal one; `as` saturates.
        return estimate as u64;
    }
    let mut lo = 0_u64; // n = 0 never fits: [0, 1] is wider than any tolerance below 0.5.
    let mut hi = estimate as u64;
    while !fits(hi, shares, confidence, tolerance) {
        if hi >= MAX_SEARCHED_SAMPLE {
            return hi;
        }
        lo = hi;
        hi = hi.saturating_mul(2).min(MAX_SEARCHED_SAMPLE);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid, shares, confidence, tolerance) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Number formatting for reasons: shares with enough decimals to show the tolerance.
struct Format {
    tolerance: f64,
    decimals: usize,
}

impl Format {
    fn new(tolerance: f64) -> Self {
        let decimals = (-tolerance.log10()).ceil().clamp(2.0, 6.0) as usize;
        Format {
            tolerance,
            decimals,
        }
    }

    fn share(&self, value: f64) -> String {
        format!("{value:.prec$}", prec = self.decimals)
    }

    fn tolerance(&self) -> String {
        format!("{}", self.tolerance)
    }
}

/// `0.95` as `95%`.
fn format_percent(value: f64) -> String {
    format!("{}%", (value * 10_000.0).round() / 100.0)
}

/// p-values: 3 decimals, or scientific notation below 0.001.
/// A p-value for people: `0.965`, `0.027`, `3.1e-40`.
pub fn format_p(p: f64) -> String {
    if p == 0.0 {
        "0".to_string()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// What `split_check` gives scripts: the report, with counts that had no weight set aside.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub verdict: &'static str,
    pub p_value: f64,
    /// The p-value as people read it (`p=0.012`, `p<0.001`).
    pub p_text: String,
    pub method: &'static str,
    pub total: u64,
    pub required_sample: u64,
    pub reason: String,
    pub shares: Vec<ShareResult>,
    /// Counts under names that have no weight (such as `unknown`).
    pub ignored: std::collections::BTreeMap<String, u64>,
}

/// One route of a [`CheckResult`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShareResult {
    pub route: String,
    pub weight: i64,
    pub expected: f64,
    pub observed: u64,
    pub share: f64,
    pub low: f64,
    pub high: f64,
}

impl SplitReport {
    /// The report as scripts see it, with the counts that had no weight.
    pub fn result(&self, ignored: &[(String, u64)]) -> CheckResult {
        CheckResult {
            verdict: self.verdict.as_str(),
            p_value: self.p_value,
            p_text: format_p(self.p_value),
            method: self.method,
            total: self.total,
            required_sample: self.required_sample,
            reason: self.reason.clone(),
            shares: self
                .shares
                .iter()
                .map(|share| ShareResult {
                    route: share.route.clone(),
                    weight: share.weight,
                    expected: share.expected_share,
                    observed: share.observed,
                    share: share.observed_share,
                    low: share.interval.0,
                    high: share.interval.1,
                })
                .collect(),
            ignored: ignored.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn owned<T: Copy>(pairs: &[(&str, T)]) -> Vec<(String, T)> {
        pairs.iter().map(|(r, v)| (r.to_string(), *v)).collect()
    }

    fn check(
        observed: &[(&str, u64)],
        weights: &[(&str, i64)],
        confidence: f64,
        tolerance: f64,
    ) -> Result<SplitReport, SplitError> {
        let observed = owned(observed);
        let weights = owned(weights);
        check_split(&SplitInput {
            observed: &observed,
            weights: &weights,
            confidence,
            tolerance,
        })
    }

    const ST_90_10: &[(&str, i64)] = &[("source", 90), ("target", 10)];

    #[test]
    fn istio_weight_semantics() {
        let shares = effective_shares(&owned(&[("a", 90), ("b", 10)])).unwrap();
        assert_eq!(shares, owned(&[("a", 0.9), ("b", 0.1)]));
        // Relative proportions, not percentages.
        let shares = effective_shares(&owned(&[("a", 3), ("b", 1), ("c", 0)])).unwrap();
        assert_eq!(shares, owned(&[("a", 0.75), ("b", 0.25), ("c", 0.0)]));
        // A single destination gets everything, even with weight 0.
        assert_eq!(
            effective_shares(&owned(&[("a", 0)])).unwrap(),
            owned(&[("a", 1.0)])
        );
        assert_eq!(
            effective_shares(&owned(&[("a", 7)])).unwrap(),
            owned(&[("a", 1.0)])
        );
        assert_eq!(effective_shares(&[]), Err(SplitError::NoRoutes));
        let err = effective_shares(&owned(&[("a", 0), ("b", 0)])).unwrap_err();
        assert_eq!(err.to_string(), "weights of `a`, `b` add up to 0");
        let err = effective_shares(&owned(&[("a", 100), ("b", -5)])).unwrap_err();
        assert_eq!(err.to_string(), "route `b` has negative weight `-5`");
        let err = effective_shares(&owned(&[("a", 1), ("a", 2)])).unwrap_err();
        assert_eq!(err.to_string(), "route `a` is weighted twice");
        // Extreme weights don't overflow.
        let shares = effective_shares(&owned(&[("a", i64::MAX), ("b", i64::MAX)])).unwrap();
        assert_eq!(shares[0].1, 0.5);
    }

    #[test]
    fn input_validation() {
        let obs = [("source", 9), ("target", 1)];
        for c in [0.5, 1.0, 0.3, f64::NAN] {
            let err = check(&obs, ST_90_10, c, 0.05).unwrap_err();
            assert!(matches!(err, SplitError::Confidence { .. }), "{c}");
        }
        for t in [0.0, 0.5, -0.1, f64::NAN] {
            let err = check(&obs, ST_90_10, 0.95, t).unwrap_err();
            assert!(matches!(err, SplitError::Tolerance { .. }), "{t}");
        }
        let err = check(&[("source", 1), ("source", 2)], ST_90_10, 0.95, 0.05).unwrap_err();
        assert_eq!(err.to_string(), "route `source` is counted twice");
        let err = check(
            &[("source", 1), ("mystery", 2), ("other", 3)],
            ST_90_10,
            0.95,
            0.05,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "observed routes `mystery`, `other` are not weighted (weighted: `source`, `target`)"
        );
        let err = check(&[("x", 1)], ST_90_10, 0.95, 0.05).unwrap_err();
        assert_eq!(
            err.to_string(),
            "observed route `x` is not weighted (weighted: `source`, `target`)"
        );
        let err = check(&[("source", u64::MAX), ("target", 1)], ST_90_10, 0.95, 0.05).unwrap_err();
        assert_eq!(err, SplitError::TotalOverflow);
        assert_eq!(
            SplitError::Confidence { value: 1.5 }.to_string(),
            "confidence must be above 0.5 and below 1, got `1.5`"
        );
    }

    #[test]
    fn verdict_display() {
        assert_eq!(Verdict::Pass.to_string(), "pass");
        assert_eq!(Verdict::Fail.to_string(), "fail");
        assert_eq!(Verdict::Inconclusive.to_string(), "inconclusive");
    }

    #[test]
    fn ninety_ten_exact_passes() {
        let r = check(&[("source", 900), ("target", 100)], ST_90_10, 0.95, 0.05).unwrap();
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
        assert_eq!(r.method, METHOD_BINOMIAL);
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.total, 1000);
        assert_eq!(r.shares[1].route, "target");
        assert_eq!(r.shares[1].weight, 10);
        assert_eq!(r.shares[1].expected_share, 0.1);
        assert_eq!(r.shares[1].observed_share, 0.1);
        // R: binom.test(100, 1000)$conf.int = [0.08210533, 0.12028794].
        assert!((r.shares[1].interval.0 - 0.082_105_33).abs() < 1e-7);
        assert!((r.shares[1].interval.1 - 0.120_287_94).abs() < 1e-7);
        // Sized for a third of the tolerance: 9 × the normal estimate 138, rounded up by search.
        assert!(
            (1240..1500).contains(&r.required_sample),
            "{}",
            r.required_sample
        );
        assert_eq!(
            r.reason,
            "every share is within ± 0.05 of its weight at 95% confidence (p = 1.000)"
        );
    }

    #[test]
    fn fifty_fifty_against_ninety_ten_fails() {
        let r = check(&[("source", 530), ("target", 470)], ST_90_10, 0.95, 0.05).unwrap();
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.p_value < 1e-100, "{}", r.p_value);
        assert!(
            r.reason
                .starts_with("`target` share 0.47 is outside 0.10 ± 0.05 (p = ")
        );
        let r = check(&[("source", 50), ("target", 50)], ST_90_10, 0.95, 0.05).unwrap();
        assert_eq!(r.verdict, Verdict::Fail);
        // A deviation inside the tolerance is significant with this many samples, but not
        // material: it passes rather than rolling a correct-enough split back.
        let r = check(
            &[("source", 87_000), ("target", 13_000)],
            ST_90_10,
            0.95,
            0.05,
        )
        .unwrap();
        assert!(r.p_value < 1e-10);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
        // Outside the tolerance it fails.
        let r = check(
            &[("source", 8_400), ("target", 1_600)],
            ST_90_10,
            0.95,
            0.05,
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
        assert!(
            r.reason
                .starts_with("`target` share 0.16 is outside 0.10 ± 0.05"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn ten_samples_are_inconclusive() {
        let r = check(&[("source", 9), ("target", 1)], ST_90_10, 0.95, 0.05).unwrap();
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert_eq!(r.p_value, 1.0);
        // Found by search: the first n whose intervals at the expected counts fit ± 0.05 / 3.
        let need = r.required_sample;
        assert!((1240..1500).contains(&need), "{need}");
        assert!(fits(need, &[0.9, 0.1], 0.95, 0.05 / 3.0));
        assert!(!fits(need - 1, &[0.9, 0.1], 0.95, 0.05 / 3.0));
        assert_eq!(
            r.reason,
            format!(
                "interval for `target` [0.00, 0.45] is not within 0.10 ± 0.05: need about {need} requests"
            )
        );
    }

    #[test]
    fn no_samples_are_inconclusive() {
        let r = check(&[], ST_90_10, 0.95, 0.05).unwrap();
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert_eq!(r.total, 0);
        assert_eq!(r.shares[0].interval, (0.0, 1.0));
        assert_eq!(r.shares[0].observed_share, 0.0);
        assert!(r.reason.starts_with("no samples: need about "));
    }

    #[test]
    fn all_traffic_to_one_route_passes() {
        let r = check(
            &[("source", 200), ("target", 0)],
            &[("source", 100), ("target", 0)],
            0.95,
            0.05,
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.method, METHOD_BINOMIAL);
        // (α/2)^(1/n) >= 1 − 0.05/3 first holds at n = 220: ln 0.025 / ln(1 − 1/60) = 219.5.
        assert_eq!(r.required_sample, 220);
        // Routes missing from the counts count as 0.
        let r = check(
            &[("source", 200)],
            &[("source", 100), ("target", 0)],
            0.95,
            0.05,
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Pass);
        assert_eq!(r.shares[1].observed, 0);
    }

    #[test]
    fn zero_weight_route_with_traffic_fails() {
        let r = check(
            &[("source", 170), ("target", 30)],
            &[("source", 100), ("target", 0)],
            0.95,
            0.05,
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.p_value, 0.0);
        assert_eq!(
            r.reason,
            "route `target` has weight 0 but served 30 of 200 requests"
        );
        // A straggler (a request in flight while the weights changed) is not material.
        let r = check(
            &[("source", 399), ("target", 1)],
            &[("source", 100), ("target", 0)],
            0.95,
            0.05,
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    }

    #[test]
    fn three_routes_use_chi_square() {
        let weights: &[(&str, i64)] = &[("a", 50), ("b", 30), ("c", 20)];
        // R 4.2: chisq.test(c(510, 290, 200), p = c(0.5, 0.3, 0.2)): X² = 0.5333, p = 0.7659283.
        let r = check(&[("a", 510), ("b", 290), ("c", 200)], weights, 0.95, 0.05).unwrap();
        assert_eq!(r.method, METHOD_CHI_SQUARE);
        assert!((r.p_value - 0.765_928_338_364_648_8).abs() < 1e-9);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
        // Bonferroni: each interval at 1 − 0.05 / 3.
        let (lo, hi) = stats::clopper_pearson(200, 1000, 1.0 - 0.05 / 3.0);
        assert_eq!(r.shares[2].interval, (lo, hi));
        // R 4.2: chisq.test(c(400, 400, 200), p = c(0.5, 0.3, 0.2)): X² = 53.33, p = 2.623094e-12.
        let r = check(&[("a", 400), ("b", 400), ("c", 200)], weights, 0.95, 0.05).unwrap();
        assert_eq!(r.verdict, Verdict::Fail);
        assert!((r.p_value / 2.623_093_769_669_295e-12 - 1.0).abs() < 1e-6);
        // `a` and `b` are both 0.10 off: the tie goes to the smaller expected share.
        assert!(
            r.reason
                .starts_with("`b` share 0.40 is outside 0.30 ± 0.05"),
            "{}",
            r.reason
        );
        // Small expected counts: a low p-value alone can't fail the split.
        let r = check(&[("a", 0), ("b", 0), ("c", 10)], weights, 0.95, 0.05).unwrap();
        assert!(r.p_value < 0.05);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert!(
            r.reason.contains("smallest expected count is 2.0, below 5"),
            "{}",
            r.reason
        );
        // A weight-0 route among three doesn't count towards the test.
        let r = check(
            &[("a", 600), ("b", 400)],
            &[("a", 60), ("b", 40), ("c", 0)],
            0.95,
            0.05,
        )
        .unwrap();
        assert_eq!(r.method, METHOD_BINOMIAL);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    }

    #[test]
    fn required_sample_is_searched() {
        // Normal approximation 1.96² · 0.25 / (0.05 / 3)² = 3457.4; Clopper–Pearson needs a few more.
        let n = required_sample(&[0.5, 0.5], 0.95, 0.05);
        assert!((3458..=3600).contains(&n), "{n}");
        let third = 0.05 / 3.0;
        assert!(fits(n, &[0.5, 0.5], 0.95, third) && !fits(n - 1, &[0.5, 0.5], 0.95, third));
        // Tiny tolerances fall back to the normal approximation instead of searching forever.
        let n = required_sample(&[0.5, 0.5], 0.95, 1e-4);
        assert!((864_000_000..866_000_000).contains(&n), "{n}");
    }

    /// 1,000 samples of 400 requests drawn at exactly 90/10 and checked at confidence 0.95.
    /// Each check fails wrongly with probability at most 0.05 (exactly 0.0452 at n = 400, summing
    /// `dbinom(x, 400, 0.1)` over the x with `binom.test(x, 400, 0.1)$p.value < 0.05` in R), so
    /// the number of fails is at most Binomial(1000, 0.05) in distribution: mean 50, sd 6.9, and
    /// P(Binomial(1000, 0.05) > 70) = 0.0023 (R: `pbinom(70, 1000, 0.05, lower = FALSE)`).
    /// The same sum gives P(pass) = 0.786 per check, so 700 passes is 6 sd below the mean.
    #[test]
    fn false_fail_rate_is_controlled() {
        let mut rng = StdRng::seed_from_u64(20_240_513);
        let weights = owned(ST_90_10);
        let (mut fails, mut passes) = (0_u32, 0_u32);
        for _ in 0..1000 {
            let target = (0..400).filter(|_| rng.random_bool(0.1)).count() as u64;
            let observed = vec![
                ("source".to_string(), 400 - target),
                ("target".to_string(), target),
            ];
            let input = SplitInput {
                observed: &observed,
                weights: &weights,
                confidence: 0.95,
                tolerance: 0.05,
            };
            match check_split(&input).unwrap().verdict {
                Verdict::Fail => fails += 1,
                Verdict::Pass => passes += 1,
                Verdict::Inconclusive => {}
            }
        }
        let rate = f64::from(fails) / 1000.0;
        assert!(
            fails <= 70,
            "false-fail rate {rate} exceeds 0.05 + allowance (bound 0.070)"
        );
        // 400 requests are enough to pass a correct 90/10 split most of the time.
        assert!(
            passes >= 700,
            "only {passes} of 1000 correct splits passed (fail rate {rate})"
        );
    }

    /// A correct 75/25 split sampled at the size `required_sample` recommends passes nearly
    /// always: its share must stray by more than two thirds of the tolerance (about four
    /// standard deviations) to miss, so 1,000 draws allow a handful of misses at most.
    #[test]
    fn a_correct_split_at_the_deciding_size_passes() {
        let mut rng = StdRng::seed_from_u64(7);
        let weights = owned(&[("source", 75), ("target", 25)]);
        let n = required_sample(&[0.75, 0.25], 0.95, 0.05);
        let mut passes = 0;
        for _ in 0..1000 {
            let target = (0..n).filter(|_| rng.random_bool(0.25)).count() as u64;
            let observed = vec![
                ("source".to_string(), n - target),
                ("target".to_string(), target),
            ];
            let input = SplitInput {
                observed: &observed,
                weights: &weights,
                confidence: 0.95,
                tolerance: 0.05,
            };
            if check_split(&input).unwrap().verdict == Verdict::Pass {
                passes += 1;
            }
        }
        assert!(
            passes >= 995,
            "only {passes} of 1000 correct 75/25 samples of {n} passed"
        );
    }
}
