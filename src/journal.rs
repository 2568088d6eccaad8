//! The run journal: what a run is (runbook, parameters, flags) and which steps finished with
//! what result, written after every step so that `meshshift resume` can continue a run that was
//! interrupted or failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// One finished (or failed) step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JournalStep {
    pub number: usize,
    pub title: String,
    /// `done`, `failed` or `skipped`.
    pub outcome: String,
    pub elapsed_ms: u64,
    /// The step's result, when it has a JSON form (a resumed run returns it instead of running
    /// the step again).
    pub result: Option<Value>,
    /// False when the result had no JSON form (e.g. a cluster handle): the step runs again.
    pub replayable: bool,
    pub message: Option<String>,
}

/// One `record_event(kind, data)` of a run, kept so that a resumed run knows what happened
/// before (which traffic weights passed their check) and its report can show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JournalEvent {
    /// The run that recorded it (a resumed run carries the events of the runs before it).
    pub run_id: String,
    pub kind: String,
    /// The number of the step that was running in that run, if any.
    pub step: Option<usize>,
    pub data: Value,
}

/// What pins a context to one cluster (see `cluster::Identity`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterIdentity {
    pub server: String,
    pub ca_fingerprint: String,
    pub kube_system_uid: String,
}

/// A run, as `meshshift resume` needs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Journal {
    pub run_id: String,
    pub runbook: PathBuf,
    /// `--set` values, secret ones left out (see `secret_params`).
    pub params: BTreeMap<String, String>,
    /// `--set` names whose values are secret and were not written: a resumed run needs them
    /// again (`--set` or the environment).
    #[serde(default)]
    pub secret_params: Vec<String>,
    pub plan: bool,
    pub assume_yes: bool,
    pub allow_exec: Vec<String>,
    pub sim: bool,
    pub kubeconfig: Option<PathBuf>,
    pub started: String,
    pub finished: Option<String>,
    /// `running`, `succeeded`, `failed`, `interrupted`.
    pub outcome: String,
    pub error: Option<String>,
    /// The run this one resumed, if any.
    pub resumed_from: Option<String>,
    /// The cluster each context bound pointed at: a resumed run refuses a context that now
    /// points elsewhere.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterIdentity>,
    pub steps: Vec<JournalStep>,
    /// Events recorded by this run and the runs it resumed, oldest first, each saved as it
    /// happens.
    #[serde(default)]
    pub events: Vec<JournalEvent>,
}

impl Journal {
    /// The step a resumed run may skip: done, replayable, at the same position among the steps
    /// with that title.
    pub fn replay(&self, title: &str, occurrence: usize) -> Option<&JournalStep> {
        self.steps
            .iter()
            .filter(|s| s.title == title)
            .nth(occurrence)
            .filter(|s| s.outcome == "done" && s.replayable)
    }
}

/// `<state dir>/runs`.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

/// A fresh run id: `20261128-041806-417-migrate-oss-istio-to-aks` (to the millisecond).
pub fn new_run_id(runbook: &Path) -> String {
    let now = jiff::Zoned::now();
    let stem = runbook
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run");
    format!("{}-{stem}", now.strftime("%Y%m%d-%H%M%S-%3f"))
}

/// A fresh run id and its directory under `runs`, created here and by no other run: the
/// directory is created exclusively, and an id taken in the same millisecond gets a suffix.
pub fn new_run_dir(runs: &Path, runbook: &Path) -> std::io::Result<(String, PathBuf)> {
    use std::os::unix::fs::DirBuilderExt;
    create_private_dir(runs)?;
    let base = new_run_id(runbook);
    for attempt in 0..1000 {
        let id = match attempt {
            0 => base.clone(),
            n => format!("{base}-{n}"),
        };
        let dir = runs.join(&id);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free run id"))
}

/// The journal as it may leave the process: secret parameters left out (named in
/// `secret_params`), every Secret masked and every learnt secret value replaced. A step whose
/// result had something masked is not replayable: replaying `***` would write it.
pub fn redacted(journal: &Journal) -> Journal {
    let mut shown = journal.clone();
    for (name, value) in &journal.params {
        if crate::redact::is_secret_name(name) || crate::redact::text(value) != *value {
            shown.params.remove(name);
            if !shown.secret_params.contains(name) {
                shown.secret_params.push(name.clone());
            }
        }
    }
    for step in &mut shown.steps {
        if let Some(result) = &mut step.result {
            let before = result.clone();
            crate::redact::mask_in_place(result);
            if *result != before {
                step.replayable = false;
            }
        }
        step.message = step.message.as_deref().map(crate::redact::text);
    }
    for event in &mut shown.events {
        crate::redact::mask_in_place(&mut event.data);
    }
    shown.error = shown.error.as_deref().map(crate::redact::text);
    shown
}

/// Told the run directory after every journal write (a fleet pod copies it to its
/// management cluster).
type SaveObserver = Box<dyn Fn(&Path) + Send + Sync>;
static SAVE_OBSERVER: std::sync::Mutex<Option<SaveObserver>> = std::sync::Mutex::new(None);

/// Sets (or with `None` removes) the observer of journal writes.
pub fn observe_saves(observer: Option<SaveObserver>) {
    *SAVE_OBSERVER.lock().unwrap_or_else(|e| e.into_inner()) = observer;
}

fn notify_saved(dir: &Path) {
    if let Some(observer) = SAVE_OBSERVER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        observer(dir);
    }
}

/// Writes the journal atomically (a crash mid-write must not leave half a file), redacted,
/// readable by its owner only, in a directory only its owner can enter.
pub fn save(dir: &Path, journal: &Journal) -> Result<()> {
    let path = dir.join("journal.json");
    let text = serde_json::to_string_pretty(&redacted(journal)).unwrap_or_default();
    create_private_dir(dir).map_err(|e| Error::WriteFile {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    crate::files::write_atomic(&path, text.as_bytes(), true).map_err(|e| Error::WriteFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    notify_saved(dir);
    Ok(())
}

/// Creates a run directory (and missing parents) readable by its owner only (0700).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Reads the journal of a run (`run_id`), or of the latest run.
pub fn load(state_dir: &Path, run_id: Option<&str>) -> Result<(PathBuf, Journal)> {
    let runs = runs_dir(state_dir);
    let dir = match run_id {
        Some(id) => runs.join(id),
        None => latest_run(&runs)?,
    };
    let path = dir.join("journal.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let known = list_runs(&runs);
        let hint = match run_id
            .and_then(|id| crate::suggestion::did_you_mean(id, known.iter().map(String::as_str)))
        {
            Some(s) => format!(" (did you mean `{s}`?)"),
            None => String::new(),
        };
        Error::ReadFile {
            path: path.display().to_string(),
            reason: format!("{e}{hint}"),
        }
    })?;
    let journal = serde_json::from_str(&text).map_err(|e| Error::ReadFile {
        path: path.display().to_string(),
        reason: format!("not a meshshift journal: {e}"),
    })?;
    Ok((dir, journal))
}

/// Run ids, oldest first.
pub fn list_runs(runs: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(runs)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("journal.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

fn latest_run(runs: &Path) -> Result<PathBuf> {
    list_runs(runs)
        .pop()
        .map(|id| runs.join(id))
        .ok_or_else(|| Error::Other {
            message: format!("no runs to resume in `{}`", runs.display()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(title: &str, outcome: &str, replayable: bool) -> JournalStep {
        JournalStep {
            number: 1,
            title: title.into(),
            outcome: outcome.into(),
            elapsed_ms: 5,
            result: Some(Value::from(1)),
            replayable,
            message: None,
        }
    }

    #[test]
    fn replays_done_replayable_steps_by_occurrence() {
        let journal = Journal {
            steps: vec![
                step("check", "done", true),
                step("check", "failed", true),
                step("bind", "done", false),
            ],
            ..Journal::default()
        };
        assert!(journal.replay("check", 0).is_some());
        assert!(journal.replay("check", 1).is_none());
        assert!(journal.replay("bind", 0).is_none());
        assert!(journal.replay("other", 0).is_none());
    }

    #[test]
    fn runs_started_together_get_their_own_directories() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (0..20)
            .map(|_| new_run_dir(dir.path(), Path::new("x.rhai")).unwrap().0)
            .collect();
        let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
    }

    #[test]
    fn saves_loads_and_finds_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        for id in ["20260101-000000-a", "20260102-000000-b"] {
            let journal = Journal {
                run_id: id.into(),
                outcome: "failed".into(),
                ..Journal::default()
            };
            save(&runs_dir(dir.path()).join(id), &journal).unwrap();
        }
        let (_, latest) = load(dir.path(), None).unwrap();
        assert_eq!(latest.run_id, "20260102-000000-b");
        let error = load(dir.path(), Some("20260101-000000-x")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("did you mean `20260101-000000-a`?"),
            "{error}"
        );
    }
}
