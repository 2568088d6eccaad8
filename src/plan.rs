//! The plan of a `run --plan`: per cluster, the objects that would be created, changed and
//! deleted, in order, with their diffs (Secret values masked, as every diff is); the external
//! commands that were not run; and the traffic steps with their weights. Built from the run
//! record at the end of the run, printed, added to the report, and written as `plan.json` in
//! the run's directory.

use std::fmt::Write as _;

use serde::Serialize;

use crate::session::RunRecord;

/// The file in the run directory.
pub const FILE: &str = "plan.json";

/// Everything a rehearsal would have done.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub clusters: Vec<ClusterPlan>,
    /// Mutating `exec` commands, in order, with the step they belong to.
    pub commands: Vec<PlannedCommand>,
    /// The traffic steps `traffic::shift` went through.
    pub traffic: Vec<TrafficStep>,
}

/// The writes planned on one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterPlan {
    pub cluster: String,
    pub create: usize,
    pub change: usize,
    pub delete: usize,
    /// Planned writes that would leave the object as it is (not listed in `writes`).
    pub unchanged: usize,
    /// Creates, changes and deletes in the order the run would make them.
    pub writes: Vec<PlannedWrite>,
}

/// One planned write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedWrite {
    /// `create`, `change` or `delete`.
    pub action: &'static str,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// `not validated: namespace planned` when the server could not check it.
    pub note: Option<String>,
    pub diff: Option<String>,
}

/// An external command plan mode did not run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedCommand {
    pub step: Option<usize>,
    pub command: String,
}

/// One traffic step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficStep {
    pub step: Option<usize>,
    /// The share of traffic sent to the target, in percent.
    pub weight: f64,
}

impl Plan {
    /// The plan of a run's record (only its dry-run changes count).
    pub fn of(record: &RunRecord) -> Plan {
        let mut clusters: Vec<ClusterPlan> = Vec::new();
        for change in record.changes.iter().filter(|c| c.dry_run) {
            let index = match clusters.iter().position(|c| c.cluster == change.cluster) {
                Some(index) => index,
                None => {
                    clusters.push(ClusterPlan {
                        cluster: change.cluster.clone(),
                        create: 0,
                        change: 0,
                        delete: 0,
                        unchanged: 0,
                        writes: Vec::new(),
                    });
                    clusters.len() - 1
                }
            };
            let plan = &mut clusters[index];
            let action = match change.action.as_str() {
                "created" => {
                    plan.create += 1;
                    "create"
                }
                "configured" | "patched" => {
                    plan.change += 1;
                    "change"
                }
                "deleted" => {
                    plan.delete += 1;
                    "delete"
                }
                _ => {
                    plan.unchanged += 1;
                    continue;
                }
            };
            plan.writes.push(PlannedWrite {
                action,
                kind: change.kind.clone(),
                namespace: change.namespace.clone(),
                name: change.name.clone(),
                note: change.note.clone(),
                diff: change.diff.clone().filter(|d| !d.is_empty()),
            });
        }
        let events = |kind: &'static str| record.events.iter().filter(move |e| e.kind == kind);
        Plan {
            clusters,
            commands: events("planned-command")
                .map(|e| PlannedCommand {
                    step: e.step,
                    command: e.data["command"].as_str().unwrap_or_default().to_string(),
                })
                .collect(),
            traffic: events("shift-step")
                .map(|e| TrafficStep {
                    step: e.step,
                    weight: e.data["weight"].as_f64().unwrap_or(0.0),
                })
                .collect(),
        }
    }

    /// The plan as printed at the end of the run: per cluster one line per write, then the
    /// commands and the traffic steps (diffs were printed as the writes were planned).
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec!["Plan (nothing was changed):".to_string()];
        if self.clusters.is_empty() {
            lines.push("  no writes".into());
        }
        for cluster in &self.clusters {
            lines.push(format!("  {}: {}", cluster.cluster, cluster.counts()));
            for write in &cluster.writes {
                lines.push(format!("    {}", write.line()));
            }
        }
        if !self.commands.is_empty() {
            lines.push("  commands not run:".into());
            lines.extend(self.commands.iter().map(|c| format!("    $ {}", c.command)));
        }
        if !self.traffic.is_empty() {
            let weights: Vec<String> = self
                .traffic
                .iter()
                .map(|t| format!("{}%", t.weight))
                .collect();
            lines.push(format!(
                "  traffic to the target: {} (no requests sent)",
                weights.join(", ")
            ));
        }
        lines
    }

    /// The report's section: the same, with the diffs.
    pub fn markdown(&self) -> String {
        let mut out =
            String::from("\n## Plan\n\nNothing was changed; this is what the run would do.\n");
        for cluster in &self.clusters {
            let _ = writeln!(out, "\n### {}\n\n{}\n", cluster.cluster, cluster.counts());
            for write in &cluster.writes {
                let _ = writeln!(out, "- {}", write.line().replace('|', "\\|"));
                if let Some(diff) = &write.diff {
                    let _ = writeln!(out, "\n```text\n{}\n```\n", diff.trim_end());
                }
            }
        }
        if !self.commands.is_empty() {
            let _ = writeln!(out, "\n### Commands not run\n");
            for command in &self.commands {
                let _ = writeln!(out, "- `{}`", command.command.replace('`', "'"));
            }
        }
        if !self.traffic.is_empty() {
            let _ = writeln!(out, "\n### Traffic steps\n");
            for step in &self.traffic {
                let _ = writeln!(out, "- {}% to the target (no requests sent)", step.weight);
            }
        }
        out
    }
}

impl ClusterPlan {
    fn counts(&self) -> String {
        format!(
            "{} to create, {} to change, {} to delete, {} unchanged",
            self.create, self.change, self.delete, self.unchanged
        )
    }
}

impl PlannedWrite {
    /// `change VirtualService/bookinfo/bookinfo (not validated: namespace planned)`.
    fn line(&self) -> String {
        let place = match &self.namespace {
            Some(namespace) => format!("{}/{namespace}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        };
        match &self.note {
            Some(note) => format!("{} {place} ({note})", self.action),
            None => format!("{} {place}", self.action),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::effects::{Action, Change};
    use crate::session::RecordedEvent;
    use serde_json::json;

    fn change(cluster: &str, name: &str, action: Action, dry_run: bool) -> Change {
        Change {
            cluster: cluster.into(),
            kind: "ConfigMap".into(),
            namespace: Some("shop".into()),
            name: name.into(),
            action,
            dry_run,
            diff: Some(format!("+{name}\n")),
            note: None,
        }
    }

    #[test]
    fn writes_are_grouped_by_cluster_in_order() {
        let record = RunRecord {
            changes: vec![
                change("a", "one", Action::Created, true),
                change("b", "two", Action::Configured, true),
                change("a", "three", Action::Unchanged, true),
                change("a", "four", Action::Deleted, true),
                change("a", "real", Action::Created, false),
            ],
            events: vec![
                RecordedEvent {
                    kind: "planned-command".into(),
                    step: Some(2),
                    data: json!({"command": "az aks mesh enable"}),
                },
                RecordedEvent {
                    kind: "shift-step".into(),
                    step: Some(3),
                    data: json!({"weight": 25}),
                },
            ],
            ..RunRecord::default()
        };
        let plan = Plan::of(&record);
        assert_eq!(plan.clusters.len(), 2);
        let a = &plan.clusters[0];
        assert_eq!((a.create, a.change, a.delete, a.unchanged), (1, 0, 1, 1));
        let names: Vec<&str> = a.writes.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["one", "four"]);
        assert_eq!(plan.commands[0].command, "az aks mesh enable");
        assert_eq!(plan.traffic[0].weight, 25.0);
        let lines = plan.lines();
        assert!(
            lines.contains(&"    delete ConfigMap/shop/four".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("25% (no requests sent)")),
            "{lines:?}"
        );
        let markdown = plan.markdown();
        assert!(markdown.contains("### b\n") && markdown.contains("```text\n+two\n```"));
    }
}
