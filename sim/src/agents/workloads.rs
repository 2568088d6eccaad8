//! The workload controllers: Deployments, ReplicaSets, StatefulSets and DaemonSets, acting on
//! the decisions of [`crate::workload`]. After creating or deleting pods they wait until
//! the cache has seen it, so the next pass never counts stale pods (what Kubernetes'
//! "expectations" are for).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::informer::{Cache, DAEMON_SETS, DEPLOYMENTS, Kind, PODS, REPLICA_SETS, STATEFUL_SETS};
use super::{api, run_loop, write_status};
use crate::object::now_timestamp;
use crate::workload::PodView;
use crate::workload::deployment::{self, DeploymentAction, PodCounts};
use crate::workload::pod;
use crate::workload::replica_set::{self, ReplicaSetAction};
use crate::workload::stateful::{self, SetAction};

const MANAGER: &str = "kube-controller-manager";
const SEEN_TIMEOUT: Duration = Duration::from_secs(5);

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn controller_uid(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?
        .get("uid")?
        .as_str()
}

/// Objects by the uid of their controller.
fn by_owner(objects: &[Arc<Value>]) -> HashMap<String, Vec<Arc<Value>>> {
    let mut owned: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    for object in objects {
        if let Some(uid) = controller_uid(object) {
            owned
                .entry(uid.to_string())
                .or_default()
                .push(object.clone());
        }
    }
    owned
}

/// The controllers' shared state.
struct Controllers {
    client: kube::Client,
    cache: Arc<Cache>,
    node: String,
}

impl Controllers {
    async fn create_pod(&self, object: &Value) -> Option<String> {
        let body: DynamicObject = serde_json::from_value(object.clone()).ok()?;
        let namespace = text(object, "/metadata/namespace");
        let params = PostParams {
            field_manager: Some(MANAGER.into()),
            ..PostParams::default()
        };
        match api(&self.client, PODS, namespace)
            .create(&params, &body)
            .await
        {
            Ok(created) => created.metadata.name,
            Err(error) => {
                tracing::debug!("creating a pod in {namespace}: {error}");
                None
            }
        }
    }

    async fn delete(&self, kind: Kind, namespace: &str, name: &str) -> bool {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        api(&self.client, kind, namespace)
            .delete(name, &params)
            .await
            .is_ok()
    }

    async fn wait_seen(&self, namespace: &str, created: &[String], deleted: &[String]) {
        if created.is_empty() && deleted.is_empty() {
            return;
        }
        self.cache
            .wait_until(SEEN_TIMEOUT, |cache| {
                created
                    .iter()
                    .all(|n| cache.get(PODS, namespace, n).is_some())
                    && deleted
                        .iter()
                        .all(|n| cache.get(PODS, namespace, n).is_none())
            })
            .await;
    }

    async fn deployments(&self, now: &str) -> bool {
        let mut failed = false;
        let sets = by_owner(&self.cache.list(REPLICA_SETS));
        let pods = by_owner(&self.cache.list(PODS));
        for deployment in self.cache.list(DEPLOYMENTS) {
            if deployment.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let uid = text(&deployment, "/metadata/uid");
            let owned: Vec<&Value> = sets
                .get(uid)
                .map(|s| s.iter().map(|a| a.as_ref()).collect())
                .unwrap_or_default();
            let counts: HashMap<String, PodCounts> = owned
                .iter()
                .map(|set| {
                    let views: Vec<PodView> = pods
                        .get(text(set, "/metadata/uid"))
                        .map(|p| p.iter().filter_map(|p| PodView::of(p)).collect())
                        .unwrap_or_default();
                    let ready = views.iter().filter(|v| v.ready).count();
                    (
                        text(set, "/metadata/uid").to_string(),
                        PodCounts {
                            total: views.len() as i64,
                            ready: ready as i64,
                        },
                    )
                })
                .collect();
            let namespace = text(&deployment, "/metadata/namespace");
            for action in deployment::plan(&deployment, &owned, &counts, now) {
                let result = match action {
                    DeploymentAction::CreateReplicaSet(set) => {
                        let name = text(&set, "/metadata/name").to_string();
                        let params = PostParams {
                            field_manager: Some(MANAGER.into()),
                            ..PostParams::default()
                        };
                        let created = match serde_json::from_value::<DynamicObject>(set) {
                            Ok(body) => api(&self.client, REPLICA_SETS, namespace)
                                .create(&params, &body)
                                .await
                                .map(|_| ()),
                            Err(_) => Ok(()),
                        };
                        if created.is_ok() {
                            self.cache
                                .wait_until(SEEN_TIMEOUT, |c| {
                                    c.get(REPLICA_SETS, namespace, &name).is_some()
                                })
                                .await;
                        }
                        created
                    }
                    DeploymentAction::ScaleReplicaSet { name, replicas } => {
                        let params = PatchParams {
                            field_manager: Some(MANAGER.into()),
                            ..PatchParams::default()
                        };
                        let patch = json!({"spec": {"replicas": replicas}});
                        api(&self.client, REPLICA_SETS, namespace)
                            .patch(&name, &params, &Patch::Merge(patch))
                            .await
                            .map(|_| ())
                    }
                    DeploymentAction::Status(status) => {
                        write_status(&self.client, DEPLOYMENTS, &deployment, &status, MANAGER).await
                    }
                };
                if let Err(error) = result {
                    tracing::debug!(
                        "deployment {namespace}/{}: {error}",
                        text(&deployment, "/metadata/name")
                    );
                    failed = true;
                }
            }
        }
        failed
    }

    async fn replica_sets(&self) -> bool {
        let mut failed = false;
        let pods = by_owner(&self.cache.list(PODS));
        for set in self.cache.list(REPLICA_SETS) {
            if set.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let namespace = text(&set, "/metadata/namespace").to_string();
            let views: Vec<PodView> = pods
                .get(text(&set, "/metadata/uid"))
                .map(|p| p.iter().filter_map(|p| PodView::of(p)).collect())
                .unwrap_or_default();
            let mut created = Vec::new();
            let mut deleted = Vec::new();
            for action in replica_set::plan(&set, &views) {
                match action {
                    ReplicaSetAction::CreatePods(count) => {
                        let template = set
                            .pointer("/spec/template")
                            .cloned()
                            .unwrap_or(Value::Null);
                        let prefix = format!("{}-", text(&set, "/metadata/name"));
                        for _ in 0..count {
                            let object =
                                pod::from_template(&set, &template, &self.node, None, &prefix, &[]);
                            match self.create_pod(&object).await {
                                Some(name) => created.push(name),
                                None => failed = true,
                            }
                        }
                    }
                    ReplicaSetAction::DeletePods(names) => {
                        for name in names {
                            if self.delete(PODS, &namespace, &name).await {
                                deleted.push(name);
                            }
                        }
                    }
                    ReplicaSetAction::Status(status) => {
                        if let Err(error) =
                            write_status(&self.client, REPLICA_SETS, &set, &status, MANAGER).await
                        {
                            tracing::debug!("replicaset status: {error}");
                            failed = true;
                        }
                    }
                }
            }
            self.wait_seen(&namespace, &created, &deleted).await;
        }
        failed
    }

    async fn sets(&self, kind: Kind) -> bool {
        let mut failed = false;
        let pods = by_owner(&self.cache.list(PODS));
        for set in self.cache.list(kind) {
            if set.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let namespace = text(&set, "/metadata/namespace").to_string();
            let views: Vec<PodView> = pods
                .get(text(&set, "/metadata/uid"))
                .map(|p| p.iter().filter_map(|p| PodView::of(p)).collect())
                .unwrap_or_default();
            let actions = if kind == STATEFUL_SETS {
                stateful::plan_stateful_set(&set, &views)
            } else {
                stateful::plan_daemon_set(&set, &views)
            };
            let mut created = Vec::new();
            let mut deleted = Vec::new();
            for action in actions {
                match action {
                    SetAction::CreatePod { name, labels } => {
                        let template = set
                            .pointer("/spec/template")
                            .cloned()
                            .unwrap_or(Value::Null);
                        let prefix = format!("{}-", text(&set, "/metadata/name"));
                        let extra: Vec<(&str, &str)> = labels
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        let mut object = pod::from_template(
                            &set,
                            &template,
                            &self.node,
                            name.as_deref(),
                            &prefix,
                            &extra,
                        );
                        if kind == STATEFUL_SETS
                            && let Some(name) = &name
                        {
                            object["spec"]["hostname"] = json!(name);
                        }
                        match self.create_pod(&object).await {
                            Some(name) => created.push(name),
                            None => failed = true,
                        }
                    }
                    SetAction::DeletePod(name) => {
                        if self.delete(PODS, &namespace, &name).await {
                            deleted.push(name);
                        }
                    }
                    SetAction::Status(status) => {
                        if let Err(error) =
                            write_status(&self.client, kind, &set, &status, MANAGER).await
                        {
                            tracing::debug!("{} status: {error}", kind.kind);
                            failed = true;
                        }
                    }
                }
            }
            self.wait_seen(&namespace, &created, &deleted).await;
        }
        failed
    }
}

/// Runs the workload controllers until `cancel`; pods are placed on `node`.
pub async fn run(client: kube::Client, cache: Arc<Cache>, node: String, cancel: CancellationToken) {
    let controllers = Arc::new(Controllers {
        client,
        cache: cache.clone(),
        node,
    });
    run_loop(cache, cancel, || {
        let controllers = controllers.clone();
        async move {
            let now = now_timestamp();
            let mut failed = controllers.deployments(&now).await;
            failed |= controllers.replica_sets().await;
            failed |= controllers.sets(STATEFUL_SETS).await;
            failed |= controllers.sets(DAEMON_SETS).await;
            failed.then_some(Duration::from_millis(200))
        }
    })
    .await;
}
