//! One run per cluster: before its first write to a cluster, a run takes a
//! `coordination.k8s.io/v1` Lease there (`kube-system/meshshift-run`), renews it while it
//! runs and deletes it at the end. A second run finds it held and fails at once, naming the
//! holder and since when, or waits (`--wait-lock`). A Lease whose holder stopped renewing
//! expires after [`LEASE_SECONDS`] and may be taken over.
//!
//! `kube-system` because it exists in every cluster: taking the lock creates nothing else.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::Cluster;
use super::rest::{Rest, content_type};
use crate::error::Result;

/// Where the Lease lives.
pub const LEASE_NAMESPACE: &str = "kube-system";
pub const LEASE_NAME: &str = "meshshift-run";
/// A holder that stops renewing loses the Lease after this long.
pub const LEASE_SECONDS: i64 = 60;
/// How often a held Lease is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// How often `--wait-lock` looks again.
const WAIT_POLL: Duration = Duration::from_secs(2);

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";

/// Who holds the lock.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub run_id: String,
    pub user: String,
    pub host: String,
}

impl Holder {
    /// This process's holder for `run_id`: `$USER` (or `$LOGNAME`) and the host name.
    pub fn current(run_id: &str) -> Holder {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Holder {
            run_id: run_id.to_string(),
            user,
            host: host_name(),
        }
    }

    /// `holderIdentity`: `run <id> by <user>@<host>`.
    pub fn identity(&self) -> String {
        format!("run {} by {}@{}", self.run_id, self.user, self.host)
    }
}

fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and the text is read up to the first NUL.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    match std::str::from_utf8(&buffer[..end]) {
        Ok(name) if ok && !name.is_empty() => name.to_string(),
        _ => "unknown-host".into(),
    }
}

/// A run's lock on every cluster it writes to.
pub struct RunLock {
    pub holder: Holder,
    /// Wait for another run's lock instead of failing.
    pub wait: bool,
    /// The run this one resumes: a Lease it left behind (it was killed) is taken over.
    pub resumes: Option<String>,
    held: Mutex<Vec<Held>>,
}

struct Held {
    context: String,
    rest: Rest,
    renewer: tokio::task::JoinHandle<()>,
}

/// What the Lease says: held by someone else, or free to take (with the version to replace).
enum Found {
    Missing,
    Ours,
    Expired(String),
    Other { identity: String, since: String },
}

/// Now as a Kubernetes MicroTime.
fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

impl RunLock {
    pub fn new(holder: Holder, wait: bool) -> RunLock {
        RunLock {
            holder,
            wait,
            resumes: None,
            held: Mutex::new(Vec::new()),
        }
    }

    fn lease(&self, acquired: &str) -> Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": LEASE_NAME,
                "namespace": LEASE_NAMESPACE,
                "annotations": {
                    "meshshift.io/run-id": self.holder.run_id,
                    "meshshift.io/user": self.holder.user,
                    "meshshift.io/host": self.holder.host,
                },
            },
            "spec": {
                "holderIdentity": self.holder.identity(),
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": acquired,
                "renewTime": acquired,
            },
        })
    }

    fn inspect(&self, lease: &Value) -> Found {
        let identity = lease["spec"]["holderIdentity"].as_str().unwrap_or_default();
        if identity == self.holder.identity() {
            return Found::Ours;
        }
        let version = lease["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let renewed = lease["spec"]["renewTime"]
            .as_str()
            .or(lease["spec"]["acquireTime"].as_str())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let seconds = lease["spec"]["leaseDurationSeconds"]
            .as_i64()
            .unwrap_or(LEASE_SECONDS);
        let left_by_resumed_run = self
            .resumes
            .as_ref()
            .is_some_and(|run| identity.starts_with(&format!("run {run} by ")));
        let expired = identity.is_empty()
            || left_by_resumed_run
            || renewed.is_none_or(|at| {
                jiff::Timestamp::now().duration_since(at) > jiff::SignedDuration::from_secs(seconds)
            });
        if expired {
            return Found::Expired(version);
        }
        Found::Other {
            identity: identity.to_string(),
            since: lease["spec"]["acquireTime"]
                .as_str()
                .unwrap_or("an unknown time")
                .to_string(),
        }
    }

    /// Takes the Lease of `cluster` (once per cluster and run), then renews it in the
    /// background until [`RunLock::release_all`].
    pub async fn acquire(&self, cluster: &Cluster) -> Result<()> {
        let path = format!("{LEASES}/{LEASE_NAME}");
        let mut said_waiting = false;
        // Writes of the Lease whose outcome is unknown (a 5xx or a broken connection).
        const MAX_UNSURE: u32 = 5;
        let mut unsure = 0;
        loop {
            let found = match cluster.rest().get(&path).await {
                Ok(response) => self.inspect(&response.body),
                Err(e) if e.status_code() == Some(404) => Found::Missing,
                Err(e) => {
                    return Err(cluster.request_error(
                        "cannot read the run lock (Lease kube-system/meshshift-run)",
                        &e,
                    ));
                }
            };
            let taken = match found {
                Found::Ours => true,
                Found::Missing => {
                    let body = serde_json::to_vec(&self.lease(&now_micro())).unwrap_or_default();
                    match cluster
                        .rest()
                        .call(Method::POST, LEASES, Some((content_type::JSON, body)))
                        .await
                    {
                        Ok(_) => true,
                        // Another run created it first: look again.
                        Err(e) if e.status_code() == Some(409) => false,
                        // The create may or may not have happened: the next look tells
                        // (a Lease of ours is taken, one of another run waited for).
                        Err(e) if e.is_transient() && unsure < MAX_UNSURE => {
                            unsure += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            false
                        }
                        Err(e) => return Err(cluster.request_error("cannot take the run lock", &e)),
                    }
                }
                Found::Expired(version) => {
                    let mut lease = self.lease(&now_micro());
                    lease["metadata"]["resourceVersion"] = json!(version);
                    let body = serde_json::to_vec(&lease).unwrap_or_default();
                    match cluster
                        .rest()
                        .call(Method::PUT, &path, Some((content_type::JSON, body)))
                        .await
                    {
                        Ok(_) => true,
                        Err(e) if e.status_code() == Some(409) => false,
                        Err(e) if e.is_transient() && unsure < MAX_UNSURE => {
                            unsure += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            false
                        }
                        Err(e) => return Err(cluster.request_error("cannot take the run lock", &e)),
                    }
                }
                Found::Other { identity, since } => {
                    if !self.wait {
                        return Err(cluster.error(
                            format!(
                                "another run holds this cluster: {identity}, since {since} (Lease {LEASE_NAMESPACE}/{LEASE_NAME}); rerun with --wait-lock to wait for it"
                            ),
                            vec![],
                        ));
                    }
                    if !said_waiting {
                        eprintln!(
                            "waiting for the run lock of `{}`: held by {identity} since {since}",
                            cluster.context()
                        );
                        said_waiting = true;
                    }
                    tokio::time::sleep(WAIT_POLL).await;
                    false
                }
            };
            if taken {
                break;
            }
        }
        let rest = cluster.rest().clone();
        let identity = self.holder.identity();
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let patch = json!({"spec": {"renewTime": now_micro()}});
                match rest.get(&path).await {
                    Ok(response)
                        if response.body["spec"]["holderIdentity"] == identity.as_str() =>
                    {
                        let body = serde_json::to_vec(&patch).unwrap_or_default();
                        if let Err(e) = rest
                            .call(
                                Method::PATCH,
                                &path,
                                Some((content_type::MERGE_PATCH, body)),
                            )
                            .await
                        {
                            tracing::warn!(error = %e.message(), "cannot renew the run lock");
                        }
                    }
                    _ => tracing::warn!("the run lock was lost"),
                }
            }
        });
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Held {
                context: cluster.context().to_string(),
                rest: cluster.rest().clone(),
                renewer,
            });
        Ok(())
    }

    /// Stops renewing and deletes every Lease this run holds (one that another run took over
    /// meanwhile is left alone).
    pub async fn release_all(&self) {
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
        let path = format!("{LEASES}/{LEASE_NAME}");
        for lease in held {
            lease.renewer.abort();
            let Ok(response) = lease.rest.get(&path).await else {
                continue;
            };
            if response.body["spec"]["holderIdentity"] != self.holder.identity().as_str() {
                continue;
            }
            let body = json!({"kind": "DeleteOptions", "apiVersion": "v1",
                "preconditions": {"resourceVersion": response.body["metadata"]["resourceVersion"]}});
            if let Err(e) = lease
                .rest
                .call(
                    Method::DELETE,
                    &path,
                    Some((
                        content_type::JSON,
                        serde_json::to_vec(&body).unwrap_or_default(),
                    )),
                )
                .await
            {
                tracing::warn!(context = %lease.context, error = %e.message(), "cannot release the run lock");
            }
        }
    }
}

/// The lock a cluster handle takes before its first write, and whether it has.
#[derive(Default)]
pub struct LockSlot {
    lock: std::sync::OnceLock<Arc<RunLock>>,
    taken: tokio::sync::Mutex<bool>,
}

impl Cluster {
    /// Makes this handle take `lock` before its first write.
    pub fn set_run_lock(&self, lock: Arc<RunLock>) {
        let _ = self.inner.lock.lock.set(lock);
    }

    /// Takes the run lock, once, if this handle has one.
    pub(super) async fn hold_run_lock(&self) -> Result<()> {
        let Some(lock) = self.inner.lock.lock.get() else {
            return Ok(());
        };
        let mut taken = self.inner.lock.taken.lock().await;
        if !*taken {
            lock.acquire(self).await?;
            *taken = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock() -> RunLock {
        RunLock::new(
            Holder {
                run_id: "r1".into(),
                user: "ana".into(),
                host: "box".into(),
            },
            false,
        )
    }

    #[test]
    fn leases_are_ours_expired_or_held_by_another_run() {
        let lock = lock();
        let mut lease = lock.lease(&now_micro());
        assert!(matches!(lock.inspect(&lease), Found::Ours));
        lease["spec"]["holderIdentity"] = json!("run r2 by bo@other");
        lease["metadata"]["resourceVersion"] = json!("7");
        match lock.inspect(&lease) {
            Found::Other { identity, .. } => assert_eq!(identity, "run r2 by bo@other"),
            _ => panic!("held by another run"),
        }
        // The run being resumed left it: taken over at once.
        let mut resuming = RunLock::new(lock.holder.clone(), false);
        resuming.resumes = Some("r2".into());
        assert!(matches!(resuming.inspect(&lease), Found::Expired(v) if v == "7"));
        lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
        assert!(matches!(lock.inspect(&lease), Found::Expired(v) if v == "7"));
        assert_eq!(lock.holder.identity(), "run r1 by ana@box");
    }
}
