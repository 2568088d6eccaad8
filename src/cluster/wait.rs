//! Waiting for conditions. Polls with a short, growing interval (waits must work against any
//! API server, and a poll never misses a state the way a broken watch can); the timeout is the
//! caller's, and a timeout reports what was last seen.

use std::time::Duration;

use serde_json::Value;

use super::Cluster;
use super::conditions::{Condition, is_rolled_out};
use super::read::ListQuery;
use crate::error::Result;

/// Poll interval: fast at first (most waits end quickly on a healthy cluster), then gentler.
fn interval(attempt: u32) -> Duration {
    Duration::from_millis((50 * u64::from(attempt + 1)).min(1000))
}

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

fn human(duration: Duration) -> String {
    crate::output::format_duration(duration)
}
