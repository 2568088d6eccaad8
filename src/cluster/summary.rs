//! What a write did, as people read it and as scripts receive it: pure, so the host function
//! only prints the lines and converts the records.

use serde::Serialize;

use super::effects::Change;

/// More changes than this are summarised in one line of counts.
const LISTED_CHANGES: usize = 20;

/// One change as a script sees it: `#{kind, namespace, name, action, dry_run, diff}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRecord {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub action: &'static str,
    pub dry_run: bool,
    pub diff: Option<String>,
}

impl From<&Change> for ChangeRecord {
    fn from(change: &Change) -> ChangeRecord {
        ChangeRecord {
            kind: change.kind.clone(),
            namespace: change.namespace.clone(),
            name: change.name.clone(),
            action: change.action.as_str(),
            dry_run: change.dry_run,
            diff: change.diff.clone(),
        }
    }
}

/// The lines to print for `changes`: one per object (`Deployment/ns/x created (dry run)`), or
/// for a large batch one line of counts in the order actions first occur (`applied 40 objects
/// on c: 38 created, 2 unchanged`); then the diff of every dry-run change that has one.
pub fn lines(changes: &[Change]) -> Vec<String> {
    let mut lines = Vec::new();
    if changes.len() > LISTED_CHANGES {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for change in changes {
            let action = change.action.as_str();
            match counts.iter_mut().find(|(a, _)| *a == action) {
                Some((_, n)) => *n += 1,
                None => counts.push((action, 1)),
            }
        }
        let summary: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
        let verb = if changes[0].dry_run {
            "planned"
        } else {
            "applied"
        };
        lines.push(format!(
            "{verb} {} objects on {}: {}",
            changes.len(),
            changes[0].cluster,
            summary.join(", ")
        ));
    } else {
        for change in changes {
            let suffix = match (change.dry_run, &change.note) {
                (true, Some(note)) => format!(" (dry run; {note})"),
                (true, None) => " (dry run)".to_string(),
                _ => String::new(),
            };
            lines.push(format!(
                "{} {}{suffix}",
                change.label(),
                change.action.as_str()
            ));
        }
    }
    for change in changes.iter().filter(|c| c.dry_run) {
        if let Some(diff) = change.diff.as_deref().filter(|d| !d.is_empty()) {
            lines.push(diff.trim_end().to_string());
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::effects::Action;

    fn change(name: &str, action: Action, dry_run: bool, diff: Option<&str>) -> Change {
        Change {
            cluster: "c".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: name.into(),
            action,
            dry_run,
            diff: diff.map(str::to_string),
            note: None,
        }
    }

    #[test]
    fn a_few_changes_are_listed_with_the_diffs_of_dry_runs() {
        let changes = [
            change("a", Action::Created, false, Some("ignored: not a dry run")),
            change("b", Action::Configured, true, Some("-x: 1\n+x: 2\n")),
            change("c", Action::Unchanged, true, Some("")),
        ];
        assert_eq!(
            lines(&changes),
            [
                "ConfigMap/ns/a created",
                "ConfigMap/ns/b configured (dry run)",
                "ConfigMap/ns/c unchanged (dry run)",
                "-x: 1\n+x: 2",
            ]
        );
    }

    #[test]
    fn a_large_batch_is_counted_in_the_order_actions_first_occur() {
        let mut changes: Vec<Change> = (0..19)
            .map(|i| change(&format!("u{i}"), Action::Unchanged, false, None))
            .collect();
        changes.insert(3, change("new", Action::Created, false, None));
        changes.push(change("new2", Action::Created, false, None));
        assert_eq!(
            lines(&changes),
            ["applied 21 objects on c: 19 unchanged, 2 created"]
        );
        let planned: Vec<Change> = changes
            .iter()
            .cloned()
            .map(|c| Change { dry_run: true, ..c })
            .collect();
        assert_eq!(
            lines(&planned)[0],
            "planned 21 objects on c: 19 unchanged, 2 created"
        );
    }

    #[test]
    fn records_carry_what_scripts_read() {
        let record = ChangeRecord::from(&change("a", Action::Patched, true, Some("d")));
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            serde_json::json!({"kind": "ConfigMap", "namespace": "ns", "name": "a",
                               "action": "patched", "dry_run": true, "diff": "d"})
        );
    }
}
