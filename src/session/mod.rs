//! The session every host function shares: the tokio runtime, parameters, settings, output,
//! cancellation, the run record and journal context. Host functions reach it through the
//! engine's tag ([`Session::of`]) and raise meshshift errors with [`raise`]. This layer sits
//! below the engine and the host modules: it knows neither.

pub mod cancel;
pub mod convert;
pub mod params;
pub mod programs;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::{Dynamic, EvalAltResult, NativeCallContext, Position};

use crate::error::{Error, Result};
use crate::output::Output;
pub use cancel::Cancel;
pub use params::Params;

/// How the session was started: what a runbook may do and where state lives.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Mutations become server-side dry runs with diffs.
    pub plan: bool,
    /// `confirm()` answers yes without asking.
    pub assume_yes: bool,
    /// Programs `exec()` may run (`--allow-exec az`).
    pub allow_exec: Vec<String>,
    /// `--kubeconfig`, when given.
    pub kubeconfig: Option<PathBuf>,
    /// Where journals, reports and simulator state go.
    pub state_dir: PathBuf,
    /// Standard input is a terminal (prompts are possible).
    pub interactive: bool,
    /// Programs `exec` runs as another command line (`az` -> the simulator's emulation).
    pub exec_aliases: std::collections::BTreeMap<String, Vec<String>>,
    /// `allow_exec` resolved when the session opened: what `exec` may run, and as what.
    pub programs: programs::Programs,
    /// `MESHSHIFT_CONNECT_TO` (`host:port=host2:port2,…`): the user's own address mapping for
    /// `sample` and `http_get`, over what the bound clusters' kubeconfig entries say.
    pub connect_to: String,
}

/// What one host function call needs: runtime, parameters, output, cancellation, settings.
pub struct Session {
    runtime: tokio::runtime::Handle,
    pub params: Params,
    pub out: Arc<Output>,
    pub cancel: Cancel,
    pub settings: Settings,
    plan: AtomicBool,
    sources: SourceMap,
    step_counter: AtomicUsize,
    running_steps: Mutex<Vec<usize>>,
    run: std::sync::OnceLock<RunContext>,
    pub record: Mutex<RunRecord>,
    extensions: Mutex<HashMap<&'static str, Arc<dyn std::any::Any + Send + Sync>>>,
    /// Called when plan mode is switched off (cluster handles forget their planned writes).
    plan_off: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
    /// Contexts bound with `cluster(...)`, in order: what `exec`'s children may act on.
    bound_contexts: Mutex<Vec<String>>,
}

/// What happened during a run, for the summary, report and journal.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    pub steps: Vec<StepRecord>,
    /// Every change made (or planned) on a cluster, in order.
    pub changes: Vec<crate::cluster::effects::Change>,
    /// Data runbooks record for the report (`record_event(kind, data)`), with the step it
    /// happened in.
    pub events: Vec<RecordedEvent>,
}

/// One `record_event(kind, data)`.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub kind: String,
    /// The number of the step that was running, if any.
    pub step: Option<usize>,
    pub data: serde_json::Value,
}

/// One `step(...)`.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub number: usize,
    pub title: String,
    pub elapsed: Duration,
    pub outcome: StepOutcome,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    Done,
    Failed(String),
    Skipped(String),
}

/// Texts of every script and module read in a session, by display name.
pub type SourceMap = Arc<Mutex<HashMap<String, Arc<str>>>>;

/// A run with a journal (and, when resuming, the journal of the run it continues).
pub struct RunContext {
    pub dir: PathBuf,
    /// The run's lock on the clusters it writes to (taken before the first write to each).
    pub lock: Option<Arc<crate::cluster::lease::RunLock>>,
    journal: Mutex<crate::journal::Journal>,
    previous: Option<crate::journal::Journal>,
    occurrences: Mutex<HashMap<String, usize>>,
}

impl RunContext {
    pub fn new(
        dir: PathBuf,
        journal: crate::journal::Journal,
        previous: Option<crate::journal::Journal>,
    ) -> RunContext {
        let mut journal = journal;
        // What the resumed runs recorded stays known (which weights passed their check).
        if let Some(previous) = previous.as_ref().filter(|_| journal.events.is_empty()) {
            journal.events = previous.events.clone();
        }
        RunContext {
            dir,
            lock: None,
            journal: Mutex::new(journal),
            previous,
            occurrences: Mutex::new(HashMap::new()),
        }
    }

    /// How many steps with this title started before (titles may repeat).
    pub fn occurrence(&self, title: &str) -> usize {
        let mut occurrences = self.occurrences.lock().unwrap_or_else(|e| e.into_inner());
        let count = occurrences.entry(title.to_string()).or_default();
        *count += 1;
        *count - 1
    }

    /// The finished step of the run being resumed, if this one may be skipped.
    pub fn replay(
        &self,
        title: &str,
        occurrence: usize,
    ) -> Option<(String, crate::journal::JournalStep)> {
        let previous = self.previous.as_ref()?;
        previous
            .replay(title, occurrence)
            .map(|step| (previous.run_id.clone(), step.clone()))
    }

    /// Records the cluster `context` is bound to, after checking that it is the one the run
    /// being resumed used through that context.
    pub fn pin_cluster(
        &self,
        context: &str,
        identity: crate::journal::ClusterIdentity,
    ) -> std::result::Result<(), String> {
        if let Some(before) = self
            .previous
            .as_ref()
            .filter(|previous| !previous.sim)
            .and_then(|previous| previous.clusters.get(context))
            && *before != identity
        {
            return Err(format!(
                "context `{context}` no longer points at the cluster the resumed run used                  (then {} with kube-system uid {}, now {} with kube-system uid {}):                  resuming would continue on another cluster; start a new run instead",
                before.server, before.kube_system_uid, identity.server, identity.kube_system_uid
            ));
        }
        self.update(|journal| {
            journal.clusters.insert(context.to_string(), identity);
        });
        Ok(())
    }

    /// Records a finished step and saves the journal.
    pub fn record_step(&self, step: crate::journal::JournalStep) {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        journal.steps.push(step);
        if let Err(error) = crate::journal::save(&self.dir, &journal) {
            tracing::warn!(%error, "cannot save the run journal");
        }
    }

    /// Records an event in the journal and saves it at once: a run killed right after keeps it.
    pub fn record_event(&self, kind: &str, step: Option<usize>, data: &serde_json::Value) {
        self.update(|journal| {
            journal.events.push(crate::journal::JournalEvent {
                run_id: journal.run_id.clone(),
                kind: kind.to_string(),
                step,
                data: data.clone(),
            });
        });
    }

    /// The events of `kind` recorded by this run and the runs it resumed, oldest first.
    pub fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        let journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        journal
            .events
            .iter()
            .filter(|event| event.kind == kind)
            .map(|event| event.data.clone())
            .collect()
    }

    /// Updates the journal (outcome, end time) and saves it.
    pub fn update(
        &self,
        change: impl FnOnce(&mut crate::journal::Journal),
    ) -> crate::journal::Journal {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut journal);
        if let Err(error) = crate::journal::save(&self.dir, &journal) {
            tracing::warn!(%error, "cannot save the run journal");
        }
        journal.clone()
    }
}

/// The engine tag: how host functions find their session.
#[derive(Clone)]
struct SessionTag(Arc<Session>);

impl Session {
    pub fn new(
        runtime: tokio::runtime::Handle,
        settings: Settings,
        params: Params,
        out: Arc<Output>,
    ) -> Arc<Session> {
        Arc::new(Session {
            runtime,
            params,
            out,
            cancel: Cancel::new(),
            plan: AtomicBool::new(settings.plan),
            settings,
            sources: SourceMap::default(),
            step_counter: AtomicUsize::new(0),
            running_steps: Mutex::new(Vec::new()),
            run: std::sync::OnceLock::new(),
            record: Mutex::new(RunRecord::default()),
            extensions: Mutex::new(HashMap::new()),
            plan_off: Mutex::new(Vec::new()),
            bound_contexts: Mutex::new(Vec::new()),
        })
    }

    /// Notes that a script bound `context` (children of `exec` get it as their context when
    /// it is the only one).
    pub fn note_bound_context(&self, context: &str) {
        let mut bound = self
            .bound_contexts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !bound.iter().any(|c| c == context) {
            bound.push(context.to_string());
        }
    }

    /// The contexts bound so far, in order.
    pub fn bound_contexts(&self) -> Vec<String> {
        self.bound_contexts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The session behind a host function call.
    pub fn of(context: &NativeCallContext) -> Result<Arc<Session>, Box<EvalAltResult>> {
        context
            .tag()
            .and_then(|tag| tag.read_lock::<SessionTag>().map(|t| t.0.clone()))
            .ok_or_else(|| {
                "internal error: host function called outside a meshshift session".into()
            })
    }

    /// Runs a future to completion on the session's runtime, giving up with
    /// [`Error::Interrupted`] when the session is cancelled. Never call from async code.
    pub fn block_on<F, T>(&self, future: F) -> Result<T>
    where
        F: Future<Output = T> + Send,
        T: Send,
    {
        let cancel = self.cancel.clone();
        self.runtime.block_on(async move {
            tokio::select! {
                value = future => Ok(value),
                _ = cancel.cancelled() => Err(Error::Interrupted { at: None }),
            }
        })
    }

    /// The tokio runtime handle (for spawning background work).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Records an event for the report (and, in plan mode, the plan), in the running step.
    pub fn push_event(&self, kind: &str, data: serde_json::Value) {
        let step = self.current_step();
        if let Some(run) = self.run() {
            run.record_event(kind, step, &data);
        }
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        record.events.push(RecordedEvent {
            kind: kind.to_string(),
            step,
            data,
        });
    }

    /// The events of `kind` recorded so far: in a run, by it and the runs it resumed (from its
    /// journal); else by this session.
    pub fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        if let Some(run) = self.run() {
            return run.events(kind);
        }
        let record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        record
            .events
            .iter()
            .filter(|event| event.kind == kind)
            .map(|event| event.data.clone())
            .collect()
    }

    /// Plan mode: mutations are dry runs. The REPL switches it with `:plan on|off`.
    pub fn is_plan(&self) -> bool {
        self.plan.load(Ordering::SeqCst)
    }

    pub fn set_plan(&self, on: bool) {
        self.plan.store(on, Ordering::SeqCst);
        if !on {
            for hook in self
                .plan_off
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                hook();
            }
        }
    }

    /// Runs `hook` whenever plan mode is switched off.
    pub fn on_plan_off(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.plan_off
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(hook));
    }

    /// Remembers a source text so errors can show its lines.
    pub fn remember_source(&self, name: &str, text: &str) {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), text.into());
    }

    /// A source text remembered earlier (stdlib modules are always known).
    pub fn source(&self, name: &str) -> Option<Arc<str>> {
        if let Some(text) = self
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Some(text.clone());
        }
        name.strip_prefix("stdlib/")
            .and_then(|n| n.strip_suffix(".rhai"))
            .and_then(crate::stdlib::get)
            .map(Arc::from)
    }

    /// The shared source map (given to the module resolver).
    pub fn source_map(&self) -> SourceMap {
        self.sources.clone()
    }

    /// Numbers steps in the order they start.
    pub fn next_step_number(&self) -> usize {
        self.step_counter.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A step starts (steps nest).
    pub fn enter_step(&self, number: usize) {
        self.running_steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(number);
    }

    /// The innermost running step ends.
    pub fn leave_step(&self) {
        self.running_steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
    }

    /// The innermost running step.
    pub fn current_step(&self) -> Option<usize> {
        self.running_steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .copied()
    }

    /// Gives the session a run journal (once).
    pub fn attach_run(&self, run: RunContext) {
        let _ = self.run.set(run);
    }

    /// The run journal, when this session is a `run` or `resume`.
    pub fn run(&self) -> Option<&RunContext> {
        self.run.get()
    }

    /// Per-session state owned by a host module (cluster handles, caches), created on first use.
    pub fn extension<T, F>(&self, key: &'static str, create: F) -> Arc<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> T,
    {
        let mut extensions = self.extensions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = extensions
            .get(key)
            .and_then(|e| e.clone().downcast::<T>().ok())
        {
            return existing;
        }
        // Absent (or, by a programming error, of another type): create it.
        let value = Arc::new(create());
        extensions.insert(key, value.clone());
        value
    }
}

/// The engine tag that lets host functions find `session` ([`Session::of`]).
pub fn engine_tag(session: &Arc<Session>) -> Dynamic {
    Dynamic::from(SessionTag(session.clone()))
}

/// Raises a meshshift error from a host function; Rhai adds the call-site position.
pub fn raise(error: Error) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(HostError(Arc::new(error))),
        Position::NONE,
    ))
}

/// A meshshift error travelling through Rhai (scripts can catch it and read `.message`).
#[derive(Clone, Debug)]
pub struct HostError(pub Arc<Error>);

/// The directory of the script that is calling a host function (for relative paths).
pub fn caller_directory(context: &NativeCallContext) -> PathBuf {
    script_directory(context.call_source())
}

/// The directory of a script named `source`; the working directory for the embedded stdlib,
/// REPL inputs (`<input 3>`) and unnamed scripts.
pub fn script_directory(source: Option<&str>) -> PathBuf {
    source
        .filter(|source| !source.starts_with("stdlib/") && !source.starts_with('<'))
        .and_then(|source| Path::new(source).parent().map(Path::to_path_buf))
        .unwrap_or_default()
}
