//! The Envoys of a cluster's gateway pods: which routing configuration each pod serves (each
//! receives istiod's pushes after its own propagation delay, or never), and the per-cluster
//! request counters each keeps, as Envoy's `cluster.<name>.upstream_rq_*` statistics.
//!
//! A pod's delay is, in order: the annotation `sim.meshshift.io/propagation-delay` on the pod
//! (`5s`, `300ms`, or `never`), an override set on the running simulator
//! ([`Proxies::set_pod_delay`]), and the cluster's delay ([`Proxies::set_delay`], started from
//! `MESHSHIFT_SIM_PROPAGATION_MS` / `MESHSHIFT_SIM_PROPAGATION_MS_<CLUSTER>` or the
//! environment's option). A pod that never converges keeps the configuration it had when it
//! was told so.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::snapshot::{Key, MeshSnapshot};

/// Annotation on a gateway pod: its own propagation delay (`5s`, `300ms`, `never`).
pub const PROPAGATION_DELAY: &str = "sim.meshshift.io/propagation-delay";

/// How a gateway pod receives configuration changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodPropagation {
    /// Each change reaches the pod this long after it was written.
    Delay(Duration),
    /// No change reaches the pod any more.
    Never,
}

impl PodPropagation {
    /// Parses `never` or a duration (`5s`, `300ms`, `1m`).
    pub fn parse(text: &str) -> Result<PodPropagation, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("never") {
            return Ok(PodPropagation::Never);
        }
        meshshift_support::duration::parse_duration(text)
            .map(PodPropagation::Delay)
            .map_err(|e| format!("{PROPAGATION_DELAY}: {e} (or `never`)"))
    }
}

/// Counters of one upstream cluster on one pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamCounters {
    /// `upstream_rq_total`.
    pub total: u64,
    /// `upstream_rq_<N>xx` by response code class 1 to 5.
    pub by_class: [u64; 5],
}

/// One configuration istiod pushed: its number (Envoy's `version_info`), when, and what.
#[derive(Debug)]
pub struct Pushed {
    /// Counts pushes from 1.
    pub version: u64,
    /// When it was written, as RFC 3339 (Envoy's `last_updated`).
    pub written: String,
    /// The configuration.
    pub snapshot: Arc<MeshSnapshot>,
}

#[derive(Default)]
struct Inner {
    delay: Duration,
    /// Overrides set on the running simulator.
    pod_delays: BTreeMap<Key, PodPropagation>,
    /// Configurations written, oldest first, with when they were written. The first is
    /// visible to every pod at once.
    history: VecDeque<(Instant, Arc<Pushed>)>,
    /// What pods that never converge keep serving.
    pinned: BTreeMap<Key, Arc<Pushed>>,
    pushes: u64,
    counters: BTreeMap<Key, BTreeMap<String, UpstreamCounters>>,
}

/// The gateway Envoys of one cluster, shared by its data plane and its API server (which
/// serves their admin and stats ports through `pods/portforward` and `pods/proxy`).
#[derive(Default)]
pub struct Proxies {
    inner: Mutex<Inner>,
}

impl Inner {
    fn latest(&self) -> Option<&Arc<MeshSnapshot>> {
        self.history.back().map(|(_, p)| &p.snapshot)
    }

    /// The pod's propagation: its annotation in the newest configuration, else the override,
    /// else the cluster's delay.
    fn propagation(&self, pod: &Key) -> PodPropagation {
        let annotated = self.latest().and_then(|s| {
            s.pods
                .iter()
                .find(|p| p.namespace == pod.0 && p.name == pod.1)
                .and_then(|p| p.propagation)
        });
        annotated
            .or_else(|| self.pod_delays.get(pod).copied())
            .unwrap_or(PodPropagation::Delay(self.delay))
    }

    fn delayed_view(&self, delay: Duration, now: Instant) -> Option<Arc<Pushed>> {
        let mut visible = self.history.front().map(|(_, s)| s.clone());
        for (at, snapshot) in self.history.iter().skip(1) {
            if *at + delay <= now {
                visible = Some(snapshot.clone());
            } else {
                break;
            }
        }
        visible
    }

    fn view(&self, pod: &Key, now: Instant) -> Option<Arc<Pushed>> {
        match self.propagation(pod) {
            PodPropagation::Never => self
                .pinned
                .get(pod)
                .cloned()
                .or_else(|| self.delayed_view(self.delay, now)),
            PodPropagation::Delay(delay) => self.delayed_view(delay, now),
        }
    }

    /// Pins the pods that stopped converging, then drops configurations every pod has moved
    /// past.
    fn settle(&mut self, now: Instant) {
        let gateway_pods: Vec<Key> = self
            .latest()
            .map(|s| {
                s.pods
                    .iter()
                    .filter(|p| p.gateway_proxy)
                    .map(|p| (p.namespace.clone(), p.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut longest = self.delay;
        for pod in &gateway_pods {
            match self.propagation(pod) {
                PodPropagation::Never => {
                    if !self.pinned.contains_key(pod)
                        && let Some(view) = self.delayed_view(self.delay, now)
                    {
                        self.pinned.insert(pod.clone(), view);
                    }
                }
                PodPropagation::Delay(delay) => {
                    self.pinned.remove(pod);
                    longest = longest.max(delay);
                }
            }
        }
        while self.history.len() > 1
            && self
                .history
                .get(1)
                .is_some_and(|(at, _)| *at + longest <= now)
        {
            self.history.pop_front();
        }
    }
}

impl Proxies {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cluster's propagation delay.
    pub fn delay(&self) -> Duration {
        self.lock().delay
    }

    /// Sets the cluster's propagation delay (pods without their own follow it).
    pub fn set_delay(&self, delay: Duration) {
        let mut inner = self.lock();
        inner.delay = delay;
        inner.settle(Instant::now());
    }

    /// Sets (or with `None` clears) one gateway pod's own propagation; the pod's annotation
    /// wins over it.
    pub fn set_pod_delay(&self, namespace: &str, pod: &str, propagation: Option<PodPropagation>) {
        let mut inner = self.lock();
        let key = (namespace.to_string(), pod.to_string());
        match propagation {
            Some(propagation) => inner.pod_delays.insert(key, propagation),
            None => inner.pod_delays.remove(&key),
        };
        inner.settle(Instant::now());
    }

    /// Records a configuration written now (istiod's push); the first is seen by every pod
    /// at once.
    pub fn record(&self, snapshot: Arc<MeshSnapshot>) {
        let now = Instant::now();
        let mut inner = self.lock();
        // Pods told to stop converging keep what they served until now.
        inner.settle(now);
        let at = if inner.history.is_empty() {
            now.checked_sub(Duration::from_secs(3600)).unwrap_or(now)
        } else {
            now
        };
        inner.pushes += 1;
        let pushed = Pushed {
            version: inner.pushes,
            written: jiff::Timestamp::now().to_string(),
            snapshot,
        };
        inner.history.push_back((at, Arc::new(pushed)));
        inner.settle(now);
    }

    /// The configuration gateway pod `pod` serves now (`None` before the first push).
    pub fn view(&self, pod: &Key) -> Option<Arc<MeshSnapshot>> {
        self.pushed(pod).map(|p| p.snapshot.clone())
    }

    /// The push gateway pod `pod` serves now, with its version.
    pub fn pushed(&self, pod: &Key) -> Option<Arc<Pushed>> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.settle(now);
        inner.view(pod, now)
    }

    /// Counts one request pod `pod` sent to upstream cluster `cluster` and its status.
    pub fn count(&self, pod: &Key, cluster: &str, status: u16) {
        let mut inner = self.lock();
        let counters = inner
            .counters
            .entry(pod.clone())
            .or_default()
            .entry(cluster.to_string())
            .or_default();
        counters.total += 1;
        let class = usize::from(status / 100);
        if (1..=5).contains(&class) {
            counters.by_class[class - 1] += 1;
        }
    }

    /// The counters of pod `pod` by upstream cluster name.
    pub fn counters(&self, pod: &Key) -> BTreeMap<String, UpstreamCounters> {
        self.lock().counters.get(pod).cloned().unwrap_or_default()
    }
}

/// The cluster's delay from `MESHSHIFT_SIM_PROPAGATION_MS_<CLUSTER>` (`SIM_TARGET` for
/// `sim-target`) or `MESHSHIFT_SIM_PROPAGATION_MS`, when set.
pub fn delay_from_env(cluster: &str) -> Result<Option<Duration>, String> {
    let name = "MESHSHIFT_SIM_PROPAGATION_MS";
    let suffix = cluster.to_ascii_uppercase().replace('-', "_");
    let Some((variable, text)) = std::env::var(format!("{name}_{suffix}"))
        .ok()
        .map(|v| (format!("{name}_{suffix}"), v))
        .or_else(|| std::env::var(name).ok().map(|v| (name.to_string(), v)))
    else {
        return Ok(None);
    };
    text.trim()
        .parse::<u64>()
        .map(|ms| Some(Duration::from_millis(ms)))
        .map_err(|_| format!("{variable} must be milliseconds, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::snapshot::PodInfo;

    fn snapshot(label: &str, never: bool) -> Arc<MeshSnapshot> {
        Arc::new(MeshSnapshot {
            cluster: label.into(),
            pods: vec![PodInfo {
                namespace: "istio-system".into(),
                name: "gw-1".into(),
                labels: BTreeMap::new(),
                ready: true,
                gateway_proxy: true,
                propagation: never.then_some(PodPropagation::Never),
            }],
            ..MeshSnapshot::default()
        })
    }

    #[test]
    fn pods_see_changes_after_their_own_delay_or_never() {
        let ms = Duration::from_millis;
        let proxies = Proxies::default();
        proxies.set_delay(ms(400));
        let pod = ("istio-system".to_string(), "gw-1".to_string());
        let other = ("istio-system".to_string(), "gw-2".to_string());
        proxies.record(snapshot("first", false));
        assert_eq!(proxies.view(&pod).unwrap().cluster, "first");
        proxies.set_pod_delay("istio-system", "gw-2", Some(PodPropagation::Delay(ms(50))));
        proxies.record(snapshot("second", false));
        std::thread::sleep(ms(150));
        assert_eq!(proxies.view(&pod).unwrap().cluster, "first");
        assert_eq!(proxies.view(&other).unwrap().cluster, "second");
        std::thread::sleep(ms(350));
        assert_eq!(proxies.view(&pod).unwrap().cluster, "second");
        assert_eq!(proxies.pushed(&pod).unwrap().version, 2);
        // Annotated `never`: it keeps what it served when the annotation was written.
        proxies.record(snapshot("third", true));
        std::thread::sleep(ms(500));
        assert_eq!(proxies.view(&pod).unwrap().cluster, "second");
        assert_eq!(proxies.view(&other).unwrap().cluster, "third");
    }

    #[test]
    fn counters_by_cluster_and_class() {
        let proxies = Proxies::default();
        let pod = ("ns".to_string(), "gw".to_string());
        proxies.count(&pod, "outbound|80||a", 200);
        proxies.count(&pod, "outbound|80||a", 503);
        let counters = proxies.counters(&pod);
        assert_eq!(counters["outbound|80||a"].total, 2);
        assert_eq!(counters["outbound|80||a"].by_class, [0, 1, 0, 0, 1]);
        assert_eq!(PodPropagation::parse("never"), Ok(PodPropagation::Never));
        assert_eq!(
            PodPropagation::parse("5s"),
            Ok(PodPropagation::Delay(Duration::from_secs(5)))
        );
        assert!(PodPropagation::parse("soon").is_err());
    }
}
