//! Waiting for conditions. Single objects are polled with a short, growing interval; rollouts
//! of many namespaces are followed by watches (one per workload kind, whatever the number of
//! namespaces), see [`Cluster::wait_rollouts`]. The timeout is the caller's, and a timeout
//! reports what was last seen.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;

use super::Cluster;
use super::conditions::{Condition, is_rolled_out, rollout_conditions};
use super::read::ListQuery;
use crate::error::Result;

/// How often a wait over many namespaces works out and reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// The kinds a rollout wait follows.
pub const ROLLOUT_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

/// Poll interval: fast at first (most waits end quickly on a healthy cluster), then gentler.
fn interval(attempt: u32) -> Duration {
    Duration::from_millis((50 * u64::from(attempt + 1)).min(1000))
}

/// The merged events of the rollout watches, each with its kind and the namespace its watch
/// covers.
type RolloutEvents = stream::SelectAll<
    futures::stream::BoxStream<
        'static,
        (
            (&'static str, Option<String>),
            std::result::Result<Event<DynamicObject>, watcher::Error>,
        ),
    >,
>;

impl Cluster {
    /// Waits until an object meets `condition`; `progress` is told what is seen along the way.
    /// Returns the object (or `None` for `deleted`).
    pub async fn wait_for(
        &self,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
        condition: &Condition,
        timeout: Duration,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Option<Value>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut attempt = 0;
        loop {
            let object = self.get(kind, name, namespace).await?;
            if condition.is_met(object.as_ref()) {
                return Ok(object);
            }
            let seen = condition.describe(object.as_ref());
            progress(&seen);
            if tokio::time::Instant::now() >= deadline {
                let place = namespace.map(|n| format!("{n}/")).unwrap_or_default();
                return Err(self.error(
                    format!("timed out after {} waiting for {kind} `{place}{name}` to be {condition}; last seen: {seen}", human(timeout)),
                    vec![],
                ));
            }
            tokio::time::sleep(interval(attempt).min(deadline - tokio::time::Instant::now())).await;
            attempt += 1;
        }
    }

    /// Waits until every Deployment, StatefulSet and DaemonSet of a namespace has rolled out.
    pub async fn wait_rollout(
        &self,
        namespace: &str,
        timeout: Duration,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut attempt = 0;
        loop {
            let (total, pending) = self.rollout_pending(namespace).await?;
            if pending.is_empty() {
                return Ok(total);
            }
            let seen = format!(
                "{} of {} workloads rolled out; {}",
                total - pending.len(),
                total,
                pending[0]
            );
            progress(&seen);
            if tokio::time::Instant::now() >= deadline {
                return Err(self.error(
                    format!(
                        "timed out after {} waiting for the rollout of namespace `{namespace}`",
                        human(timeout)
                    ),
                    pending,
                ));
            }
            tokio::time::sleep(interval(attempt).min(deadline - tokio::time::Instant::now())).await;
            attempt += 1;
        }
    }

    /// How many Deployments, StatefulSets and DaemonSets a namespace has, and why each one that
    /// has not rolled out has not.
    pub async fn rollout_pending(&self, namespace: &str) -> Result<(usize, Vec<String>)> {
        let query = ListQuery {
            namespace: Some(namespace.to_string()),
            ..Default::default()
        };
        let mut workloads = Vec::new();
        for kind in ["Deployment", "StatefulSet", "DaemonSet"] {
            workloads.extend(self.list(kind, &query).await?);
        }
        let pending = workloads
            .iter()
            .filter_map(|w| {
                is_rolled_out(w).err().map(|why| {
                    format!(
                        "{} `{}`: {why}",
                        w["kind"].as_str().unwrap_or("?"),
                        w["metadata"]["name"].as_str().unwrap_or("?")
                    )
                })
            })
            .collect();
        Ok((workloads.len(), pending))
    }
}

/// Where a wait over many namespaces stands.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutProgress {
    /// Namespaces whose every workload rolled out.
    pub done: usize,
    pub total: usize,
    /// The namespace furthest from done and its first unready workload, e.g.
    /// `ns-17 (reviews-v3 1/2 ready)`; `None` when all are done or nothing is known yet.
    pub slowest: Option<String>,
}

impl RolloutProgress {
    /// `41/61 namespaces rolled out, slowest: ns-17 (reviews-v3 1/2 ready)`.
    pub fn line(&self) -> String {
        let mut line = format!("{}/{} namespaces rolled out", self.done, self.total);
        if let Some(slowest) = &self.slowest {
            line.push_str(&format!(", slowest: {slowest}"));
        }
        line
    }
}

/// What the watches have seen of the workloads of the namespaces waited for: pure state, fed
/// by watch events, asked for progress and for what is not ready.
#[derive(Debug, Default)]
pub struct RolloutBoard {
    namespaces: BTreeSet<String>,
    /// (namespace, kind, name) -> the workload as last seen.
    workloads: BTreeMap<(String, String, String), Value>,
    /// Watches whose initial list is complete, by kind and the namespace they cover (`None`:
    /// all those waited for): until all are, nothing counts as rolled out.
    listed: BTreeSet<(String, Option<String>)>,
    /// Whether there is one watch per kind and namespace instead of one per kind.
    per_namespace: bool,
}

impl RolloutBoard {
    pub fn new(namespaces: &[String]) -> RolloutBoard {
        RolloutBoard {
            namespaces: namespaces.iter().cloned().collect(),
            ..Default::default()
        }
    }

    fn key(kind: &str, object: &Value) -> Option<(String, String, String)> {
        let namespace = object["metadata"]["namespace"].as_str()?;
        let name = object["metadata"]["name"].as_str()?;
        Some((namespace.to_string(), kind.to_string(), name.to_string()))
    }

    /// A workload was seen (listed, added or changed). Other namespaces are ignored.
    pub fn seen(&mut self, kind: &str, mut object: Value) {
        if let Some(key) = Self::key(kind, &object).filter(|k| self.namespaces.contains(&k.0)) {
            object["kind"] = Value::String(kind.to_string());
            self.workloads.insert(key, object);
        }
    }

    pub fn deleted(&mut self, kind: &str, object: &Value) {
        if let Some(key) = Self::key(kind, object) {
            self.workloads.remove(&key);
        }
    }

    /// A kind's watch (re)starts its initial list: forget what it said before.
    pub fn relisting(&mut self, kind: &str) {
        self.relisting_in(kind, None);
    }

    /// The watch of `kind` over `namespace` (`None`: all of them) (re)starts its initial list.
    pub fn relisting_in(&mut self, kind: &str, namespace: Option<&str>) {
        self.listed
            .remove(&(kind.to_string(), namespace.map(str::to_string)));
        self.workloads
            .retain(|key, _| key.1 != kind || namespace.is_some_and(|ns| key.0 != ns));
    }

    pub fn listed(&mut self, kind: &str) {
        self.listed_in(kind, None);
    }

    pub fn listed_in(&mut self, kind: &str, namespace: Option<&str>) {
        self.listed
            .insert((kind.to_string(), namespace.map(str::to_string)));
    }

    /// From now on each kind is watched in each namespace on its own (the user may not list
    /// across the cluster): what the cluster-wide watches said is dropped.
    pub fn watch_each_namespace(&mut self) {
        self.per_namespace = true;
        self.listed.clear();
        self.workloads.clear();
    }

    fn complete(&self) -> bool {
        ROLLOUT_KINDS.iter().all(|kind| {
            if self.per_namespace {
                self.namespaces
                    .iter()
                    .all(|ns| self.listed.contains(&(kind.to_string(), Some(ns.clone()))))
            } else {
                self.listed.contains(&(kind.to_string(), None))
            }
        })
    }

    /// How many workloads the namespaces hold.
    pub fn workload_count(&self) -> usize {
        self.workloads.len()
    }

    /// Workloads that have not rolled out, with why, per namespace.
    pub fn pending(&self) -> BTreeMap<&str, Vec<(&Value, String)>> {
        let mut pending: BTreeMap<&str, Vec<(&Value, String)>> = BTreeMap::new();
        for ((namespace, _, _), workload) in &self.workloads {
            if let Err(why) = is_rolled_out(workload) {
                pending.entry(namespace).or_default().push((workload, why));
            }
        }
        pending
    }

    pub fn is_done(&self) -> bool {
        self.complete() && self.workloads.values().all(|w| is_rolled_out(w).is_ok())
    }

    pub fn progress(&self) -> RolloutProgress {
        let total = self.namespaces.len();
        if !self.complete() {
            return RolloutProgress {
                done: 0,
                total,
                slowest: None,
            };
        }
        // One pass: per namespace its ready and wanted replicas and its first unready
        // workload (this runs after watch events, and 200 namespaces hold thousands).
        let mut namespaces: BTreeMap<&str, (i64, i64, Option<&Value>)> = BTreeMap::new();
        for ((namespace, _, _), workload) in &self.workloads {
            let entry = namespaces.entry(namespace).or_insert((0, 0, None));
            let (ready, wanted) = readiness(workload);
            entry.0 += ready;
            entry.1 += wanted;
            if entry.2.is_none() && is_rolled_out(workload).is_err() {
                entry.2 = Some(workload);
            }
        }
        let pending: Vec<(f64, &str, &Value)> = namespaces
            .iter()
            .filter_map(|(namespace, (ready, wanted, unready))| {
                let share = if *wanted == 0 {
                    0.0
                } else {
                    *ready as f64 / *wanted as f64
                };
                unready.map(|workload| (share, *namespace, workload))
            })
            .collect();
        // The slowest namespace has the smallest share of its wanted replicas ready.
        let slowest = pending
            .iter()
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)))
            .map(|(_, namespace, workload)| {
                let (ready, wanted) = readiness(workload);
                format!(
                    "{namespace} ({} {ready}/{wanted} ready)",
                    workload["metadata"]["name"].as_str().unwrap_or("?")
                )
            });
        RolloutProgress {
            done: total - pending.len(),
            total,
            slowest,
        }
    }
}

/// Ready and wanted replicas (pods for a DaemonSet) of a workload.
pub fn readiness(workload: &Value) -> (i64, i64) {
    let status = &workload["status"];
    let number = |v: &Value| v.as_i64().unwrap_or(0);
    match workload["kind"].as_str().unwrap_or_default() {
        "DaemonSet" => (
            number(&status["numberAvailable"]),
            number(&status["desiredNumberScheduled"]),
        ),
        "StatefulSet" => (
            number(&status["readyReplicas"]),
            workload["spec"]["replicas"].as_i64().unwrap_or(1),
        ),
        _ => (
            number(&status["availableReplicas"]),
            workload["spec"]["replicas"].as_i64().unwrap_or(1),
        ),
    }
}

/// Why a pod is not ready, or `None` when it is (or is going away): the containers' waiting
/// reasons (`ImagePullBackOff`, `CrashLoopBackOff`), else scheduling, else the Ready condition.
pub fn pod_not_ready_reason(pod: &Value) -> Option<String> {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return None;
    }
    let conditions: Vec<&Value> = pod["status"]["conditions"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let condition = |name: &str| conditions.iter().find(|c| c["type"] == name).copied();
    if condition("Ready").is_some_and(|c| c["status"] == "True") {
        return None;
    }
    let explained = |c: &Value| {
        let mut text = c["reason"]
            .as_str()
            .unwrap_or("no reason given")
            .to_string();
        if let Some(message) = c["message"].as_str().filter(|m| !m.is_empty()) {
            text.push_str(&format!(" ({message})"));
        }
        text
    };
    let mut reasons = Vec::new();
    for key in ["initContainerStatuses", "containerStatuses"] {
        for container in pod["status"][key].as_array().into_iter().flatten() {
            let name = container["name"].as_str().unwrap_or("?");
            if let Some(waiting) = container["state"].get("waiting") {
                reasons.push(format!("container {name} waiting: {}", explained(waiting)));
            } else if let Some(terminated) = container["state"].get("terminated")
                && terminated["exitCode"] != 0
            {
                reasons.push(format!(
                    "container {name} terminated: {}",
                    explained(terminated)
                ));
            }
        }
    }
    if reasons.is_empty() {
        match condition("PodScheduled") {
            Some(scheduled) if scheduled["status"] != "True" => {
                reasons.push(format!("not scheduled: {}", explained(scheduled)))
            }
            None => reasons.push(format!(
                "{}, not scheduled yet (no scheduler has placed it)",
                pod["status"]["phase"].as_str().unwrap_or("Pending")
            )),
            Some(_) => match condition("Ready") {
                Some(ready) => reasons.push(format!("not Ready: {}", explained(ready))),
                None => reasons.push("not Ready yet".to_string()),
            },
        }
    }
    Some(reasons.join("; "))
}

/// Whether a workload's selector (its `matchLabels`) selects the pod.
fn selects(workload: &Value, pod: &Value) -> bool {
    workload["spec"]["selector"]["matchLabels"]
        .as_object()
        .is_some_and(|labels| {
            !labels.is_empty()
                && labels
                    .iter()
                    .all(|(k, v)| pod["metadata"]["labels"][k.as_str()] == *v)
        })
}

/// At most this many pods are named per unready workload in a timeout.
const PODS_NAMED: usize = 3;

/// One line per unready workload: where, what, its conditions, and its pods' reasons.
pub fn explain_unready(namespace: &str, workload: &Value, why: &str, pods: &[Value]) -> String {
    let mut line = format!(
        "{namespace}: {} `{}`: {why}",
        workload["kind"].as_str().unwrap_or("?"),
        workload["metadata"]["name"].as_str().unwrap_or("?")
    );
    let conditions = rollout_conditions(workload);
    if !conditions.is_empty() {
        line.push_str(&format!("; conditions: {}", conditions.join(", ")));
    }
    let reasons: Vec<String> = pods
        .iter()
        .filter(|pod| selects(workload, pod))
        .filter_map(|pod| {
            pod_not_ready_reason(pod)
                .map(|r| format!("{} {r}", pod["metadata"]["name"].as_str().unwrap_or("?")))
        })
        .collect();
    if !reasons.is_empty() {
        let more = reasons.len().saturating_sub(PODS_NAMED);
        line.push_str(&format!(
            "; pods: {}",
            reasons[..reasons.len().min(PODS_NAMED)].join(", ")
        ));
        if more > 0 {
            line.push_str(&format!(" and {more} more"));
        }
    }
    line
}

impl Cluster {
    /// The rollout watches: per kind across the cluster (`across_cluster`), else per kind and
    /// namespace (one namespace alone is always watched in it). Each event carries its kind
    /// and the namespace its watch covers (`None`: the cluster or the only namespace).
    async fn rollout_watches(
        &self,
        namespaces: &[String],
        across_cluster: bool,
    ) -> Result<RolloutEvents> {
        let client = self.rest().client();
        let mut watches = Vec::new();
        for kind in ROLLOUT_KINDS {
            let resource = self.resolve(kind).await?;
            let api_resource = ApiResource {
                group: resource.group.clone(),
                version: resource.version.clone(),
                api_version: resource.api_version(),
                kind: resource.kind.clone(),
                plural: resource.plural.clone(),
            };
            let scopes: Vec<(Api<DynamicObject>, Option<String>)> = match namespaces {
                [only] => vec![(
                    Api::namespaced_with(client.clone(), only, &api_resource),
                    None,
                )],
                _ if across_cluster => vec![(Api::all_with(client.clone(), &api_resource), None)],
                _ => namespaces
                    .iter()
                    .map(|ns| {
                        (
                            Api::namespaced_with(client.clone(), ns, &api_resource),
                            Some(ns.clone()),
                        )
                    })
                    .collect(),
            };
            for (api, scope) in scopes {
                let events = watcher::watcher(api, watcher::Config::default())
                    .default_backoff()
                    .map(move |event| ((kind, scope.clone()), event));
                watches.push(events.boxed());
            }
        }
        Ok(stream::select_all(watches))
    }

    /// Waits until every Deployment, StatefulSet and DaemonSet of all `namespaces` has rolled
    /// out, following them with one watch per kind (across the cluster when there are several
    /// namespaces, filtered here), so the wait costs the same for 1 namespace or 200 and ends
    /// when the slowest rollout does. `progress` hears where it stands after every change. On
    /// timeout the error names every unready workload with why (its status, its conditions,
    /// its pods' waiting reasons). A user not allowed to watch across the cluster (403) is
    /// followed with one watch per kind and namespace instead. Returns how many workloads there
    /// are.
    pub async fn wait_rollouts(
        &self,
        namespaces: &[String],
        timeout: Duration,
        progress: &(dyn Fn(&RolloutProgress) + Send + Sync),
    ) -> Result<usize> {
        for namespace in namespaces {
            super::names::check_namespace(namespace).map_err(|m| self.error(m, vec![]))?;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut board = RolloutBoard::new(namespaces);
        let mut across_cluster = namespaces.len() > 1;
        let mut events = self.rollout_watches(namespaces, across_cluster).await?;
        let mut last_error: Option<String> = None;
        let mut shown = None;
        let mut shown_at = tokio::time::Instant::now() - PROGRESS_EVERY;
        loop {
            if board.is_done() {
                progress(&board.progress());
                return Ok(board.workload_count());
            }
            // Watch events come in bursts (thousands while 200 namespaces roll out): progress
            // is worked out a few times a second, not after each.
            if shown_at.elapsed() >= PROGRESS_EVERY {
                let now = board.progress();
                if shown.as_ref() != Some(&now) {
                    progress(&now);
                    shown = Some(now);
                }
                shown_at = tokio::time::Instant::now();
            }
            let next = tokio::time::timeout_at(deadline, events.next()).await;
            match next {
                Ok(Some(((kind, scope), Ok(event)))) => match event {
                    Event::Init => board.relisting_in(kind, scope.as_deref()),
                    Event::InitApply(object) | Event::Apply(object) => {
                        board.seen(kind, serde_json::to_value(object).unwrap_or_default())
                    }
                    Event::Delete(object) => {
                        board.deleted(kind, &serde_json::to_value(object).unwrap_or_default())
                    }
                    Event::InitDone => board.listed_in(kind, scope.as_deref()),
                },
                Ok(Some(((kind, _), Err(error)))) => {
                    if let watcher::Error::InitialListFailed(kube::Error::Api(status))
                    | watcher::Error::WatchStartFailed(kube::Error::Api(status)) = &error
                        && matches!(status.code, 401 | 403)
                    {
                        // Users are often allowed to read only their own namespaces (a
                        // RoleBinding in each): watch each namespace on its own instead.
                        if across_cluster && status.code == 403 {
                            tracing::debug!(kind, "no cluster-wide watch; one per namespace");
                            across_cluster = false;
                            board.watch_each_namespace();
                            events = self.rollout_watches(namespaces, false).await?;
                            continue;
                        }
                        // Without permission to list or watch, waiting longer cannot help.
                        return Err(self.error(
                            format!(
                                "cannot watch {kind}s for the rollout wait: {}",
                                status.message
                            ),
                            vec![],
                        ));
                    }
                    tracing::debug!(kind, %error, "rollout watch failed; it restarts");
                    last_error = Some(format!("{kind} watch: {error}"));
                }
                Ok(None) => {
                    return Err(self.error("the rollout watches ended unexpectedly", vec![]));
                }
                Err(_) => return Err(self.rollout_timeout(&board, timeout, last_error).await),
            }
        }
    }

    /// The timeout error of [`Cluster::wait_rollouts`]: every unready workload and why, with
    /// the pods of their namespaces read once for their reasons.
    async fn rollout_timeout(
        &self,
        board: &RolloutBoard,
        timeout: Duration,
        last_error: Option<String>,
    ) -> crate::error::Error {
        let progress = board.progress();
        if !board.complete() {
            let mut causes = vec![];
            causes.extend(last_error);
            return self.error(
                format!(
                    "timed out after {} before the workloads of {} namespaces could be listed",
                    human(timeout),
                    progress.total
                ),
                causes,
            );
        }
        let pending = board.pending();
        let names: Vec<String> = pending.keys().map(|n| n.to_string()).collect();
        let pods: BTreeMap<String, Vec<Value>> = stream::iter(names)
            .map(|namespace| async move {
                let pods = self.pods(&namespace, None).await.unwrap_or_default();
                (namespace, pods)
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let mut causes = Vec::new();
        for (namespace, unready) in &pending {
            for (workload, why) in unready {
                causes.push(explain_unready(
                    namespace,
                    workload,
                    why,
                    pods.get(*namespace).map(Vec::as_slice).unwrap_or_default(),
                ));
            }
        }
        let not_ready: Vec<&str> = pending.keys().copied().collect();
        self.error(
            format!(
                "timed out after {} waiting for rollouts: {} (not rolled out: {})",
                human(timeout),
                progress.line(),
                not_ready.join(", ")
            ),
            causes,
        )
    }
}

fn human(duration: Duration) -> String {
    crate::output::format_duration(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(namespace: &str, name: &str, available: i64) -> Value {
        json!({"metadata": {"name": name, "namespace": namespace, "generation": 1},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}},
               "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                          "availableReplicas": available}})
    }

    #[test]
    fn watched_per_namespace_nothing_counts_until_every_namespace_is_listed() {
        let namespaces = vec!["ns-1".to_string(), "ns-2".to_string()];
        let mut board = RolloutBoard::new(&namespaces);
        board.watch_each_namespace();
        board.seen("Deployment", deployment("ns-1", "ratings-v1", 2));
        for kind in ROLLOUT_KINDS {
            board.listed_in(kind, Some("ns-1"));
        }
        assert!(!board.is_done(), "ns-2 not listed yet");
        for kind in ROLLOUT_KINDS {
            board.listed_in(kind, Some("ns-2"));
        }
        assert!(board.is_done());
        // One namespace's watch relists: only its workloads are forgotten.
        board.seen("Deployment", deployment("ns-2", "reviews-v3", 1));
        board.relisting_in("Deployment", Some("ns-1"));
        assert!(!board.is_done());
        assert_eq!(board.workload_count(), 1);
    }

    #[test]
    fn progress_names_the_slowest_namespace_once_every_kind_is_listed() {
        let namespaces: Vec<String> = ["ns-1", "ns-2", "ns-3"].map(String::from).to_vec();
        let mut board = RolloutBoard::new(&namespaces);
        board.seen("Deployment", deployment("ns-1", "ratings-v1", 2));
        board.seen("Deployment", deployment("ns-2", "reviews-v3", 1));
        board.seen("Deployment", deployment("ns-3", "reviews-v2", 0));
        board.seen("Deployment", deployment("elsewhere", "x", 0));
        board.listed("Deployment");
        board.listed("StatefulSet");
        assert_eq!(board.progress().slowest, None, "DaemonSets not listed yet");
        board.listed("DaemonSet");
        assert_eq!(
            board.progress().line(),
            "1/3 namespaces rolled out, slowest: ns-3 (reviews-v2 0/2 ready)"
        );
        board.seen("Deployment", deployment("ns-3", "reviews-v2", 2));
        assert_eq!(
            board.progress().line(),
            "2/3 namespaces rolled out, slowest: ns-2 (reviews-v3 1/2 ready)"
        );
        board.deleted("Deployment", &deployment("ns-2", "reviews-v3", 1));
        assert!(board.is_done());
        assert_eq!(board.workload_count(), 2);
        board.relisting("Deployment");
        assert!(
            !board.is_done(),
            "a relist forgets until it is complete again"
        );
    }

    #[test]
    fn pods_say_why_they_are_not_ready() {
        let waiting = json!({"metadata": {"name": "reviews-v3-abc", "labels": {"app": "reviews-v3"}},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
                       "containerStatuses": [{"name": "reviews", "state": {"waiting": {"reason": "ImagePullBackOff",
                           "message": "Back-off pulling image \"reviews:v9\""}}}]}});
        assert_eq!(
            pod_not_ready_reason(&waiting).unwrap(),
            "container reviews waiting: ImagePullBackOff (Back-off pulling image \"reviews:v9\")"
        );
        let unschedulable = json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available"}]}});
        assert_eq!(
            pod_not_ready_reason(&unschedulable).unwrap(),
            "not scheduled: Unschedulable (0/3 nodes are available)"
        );
        let unplaced = json!({"status": {"phase": "Pending"}});
        assert_eq!(
            pod_not_ready_reason(&unplaced).unwrap(),
            "Pending, not scheduled yet (no scheduler has placed it)"
        );
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(pod_not_ready_reason(&ready), None);
        let mut workload = deployment("shop", "reviews-v3", 1);
        workload["kind"] = json!("Deployment");
        assert_eq!(
            explain_unready(
                "shop",
                &workload,
                "1 of 2 updated replicas available",
                &[waiting, ready]
            ),
            "shop: Deployment `reviews-v3`: 1 of 2 updated replicas available; pods: reviews-v3-abc container reviews waiting: ImagePullBackOff (Back-off pulling image \"reviews:v9\")"
        );
    }
}
