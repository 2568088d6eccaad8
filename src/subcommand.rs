//! One small function per subcommand.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::arguments::{Arguments, Command, FleetCommand, RunArguments, SimCommand};
use crate::bootstrap::{SessionOptions, open_session, runtime};
use crate::cluster::lease::{Holder, RunLock};
use crate::engine::resolver::ResolveMode;
use crate::engine::{self, Resolver};
use crate::error::{Error, Result};
use crate::journal::{self, Journal};
use crate::output::Output;
use crate::session::{Params, RunContext, Session, Settings};
use crate::{doc, report, runbook};

/// Dispatches a parsed command line.
pub fn execute(arguments: Arguments) -> Result<()> {
    let state_dir = arguments
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".meshshift"));
    let kubeconfig = arguments.kubeconfig.clone();
    match arguments.command {
        Command::Run(run) => run_runbook(run, kubeconfig, state_dir),
        Command::Check { files } => check(&files),
        Command::List { dir } => list(&dir),
        Command::Doc { name, markdown } => show_doc(name.as_deref(), markdown),
        Command::Definitions { dir } => definitions(&dir),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = Arguments::command();
            clap_complete::generate(shell, &mut command, "meshshift", &mut std::io::stdout());
            Ok(())
        }
        Command::Resume {
            run_id,
            yes,
            set,
            wait_lock,
            allow_exec,
        } => resume(
            run_id,
            ResumeFlags {
                yes,
                set,
                wait_lock,
                allow_exec,
            },
            state_dir,
        ),
        Command::Repl(repl) => crate::repl::start(repl, kubeconfig, state_dir),
        Command::Sim { command } => simulator(command, arguments.state_dir.clone()),
        Command::Fleet { command } => fleet(command, kubeconfig, state_dir),
    }
}

/// `meshshift fleet …` (the logic is in `crate::fleet`).
fn fleet(command: FleetCommand, kubeconfig: Option<PathBuf>, state_dir: PathBuf) -> Result<()> {
    use crate::fleet::{self, management::Access};
    let access = |context| Access::Kubeconfig {
        path: kubeconfig.clone(),
        context,
    };
    match command {
        FleetCommand::Render {
            file,
            kubernetes_version,
            format,
        } => {
            let format = match format.as_str() {
                "argo-workflow" => fleet::Format::ArgoWorkflow,
                _ => fleet::Format::Jobs,
            };
            fleet::render_command(&file, kubernetes_version.as_deref(), format)
        }
        FleetCommand::Apply {
            file,
            context,
            wait,
        } => fleet::apply_command(&file, &access(context), wait),
        FleetCommand::Approve {
            file,
            wave,
            context,
        } => fleet::approve_command(&file, &wave, &access(context)),
        FleetCommand::Status {
            file,
            context,
            watch,
            output,
        } => fleet::status::command(&file, &access(context), output == "json", watch),
        FleetCommand::Conduct { schedule } => fleet::conduct_command(&schedule),
        FleetCommand::Pod {
            plan,
            wave,
            kubeconfigs,
            state_in_cluster,
        } => {
            let options = fleet::pod::PodOptions {
                plan,
                wave,
                kubeconfigs,
                state_in_cluster,
                state_dir: state_dir.clone(),
            };
            let prepared = fleet::pod::prepare(&options)?;
            let flags = ResumeFlags {
                yes: true,
                set: prepared.set.clone(),
                wait_lock: true,
                allow_exec: Vec::new(),
            };
            let result = match (&prepared.resume, prepared.finished) {
                (_, true) => Ok(()),
                (Some(run_id), false) => resume(Some(run_id.clone()), flags, state_dir),
                (None, false) => execute_run(RunRequest {
                    file: prepared.runbook.clone(),
                    set: prepared.set.clone(),
                    plan: false,
                    sim: false,
                    assume_yes: true,
                    allow_exec: Vec::new(),
                    wait_lock: true,
                    kubeconfig: Some(prepared.kubeconfig.clone()),
                    state_dir,
                    previous: None,
                }),
            };
            prepared.finish();
            result
        }
    }
}

/// `meshshift sim up | down | status`.
fn simulator(command: SimCommand, state_dir: Option<PathBuf>) -> Result<()> {
    use crate::sim::command::{self, DownOptions, StatusOptions, UpOptions};
    let result = match command {
        SimCommand::Up {
            detach,
            fresh,
            istio_version,
            mesh_config,
            native_sidecars,
            map_ports,
            pairs,
        } => command::up(&UpOptions {
            detach,
            state_dir,
            fresh,
            istio_version,
            mesh_config,
            native_sidecars,
            map_ports,
            pairs,
        }),
        SimCommand::Down => command::down(&DownOptions { state_dir }),
        SimCommand::Status => command::status(&StatusOptions { state_dir }),
        SimCommand::Fault {
            clusters,
            service,
            clear,
            settings,
        } => command::fault(&command::FaultOptions {
            state_dir,
            clusters,
            service,
            clear,
            settings,
        }),
        SimCommand::Az { args } => {
            use std::io::Write;
            let outcome = crate::sim::az::run(&args, state_dir.as_deref());
            print!("{}", outcome.stdout);
            eprint!("{}", outcome.stderr);
            if outcome.code != 0 {
                let _ = std::io::stdout().flush();
                // az's own exit codes (2 usage, 3 not found) are part of its interface.
                std::process::exit(outcome.code);
            }
            Ok(())
        }
    };
    result.map_err(|error| Error::Other {
        message: error.to_string(),
    })
}

/// A session for commands that only compile (check, list, doc): no I/O happens in it.
fn offline_session(runtime: &tokio::runtime::Runtime) -> Arc<Session> {
    Session::new(
        runtime.handle().clone(),
        Settings::default(),
        Params::isolated(Default::default()),
        Arc::new(Output::buffer()),
    )
}

/// Everything a run needs: `run` builds it from the command line, `resume` from a journal.
struct RunRequest {
    file: PathBuf,
    set: Vec<String>,
    plan: bool,
    sim: bool,
    assume_yes: bool,
    allow_exec: Vec<String>,
    kubeconfig: Option<PathBuf>,
    state_dir: PathBuf,
    previous: Option<Journal>,
    /// Wait for another run's lock on a cluster instead of failing.
    wait_lock: bool,
}

fn run_runbook(run: RunArguments, kubeconfig: Option<PathBuf>, state_dir: PathBuf) -> Result<()> {
    execute_run(RunRequest {
        file: run.file,
        set: run.set,
        plan: run.plan,
        sim: run.sim,
        assume_yes: run.yes,
        allow_exec: run.allow_exec,
        wait_lock: run.wait_lock,
        kubeconfig,
        state_dir,
        previous: None,
    })
}

/// What `resume` is given again: permissions (`--yes`, `--allow-exec`) are never taken from
/// the interrupted run, and `--set` replaces its parameters.
struct ResumeFlags {
    yes: bool,
    set: Vec<String>,
    wait_lock: bool,
    allow_exec: Vec<String>,
}

fn resume(run_id: Option<String>, flags: ResumeFlags, state_dir: PathBuf) -> Result<()> {
    let ResumeFlags {
        yes,
        set,
        wait_lock,
        allow_exec,
    } = flags;
    let (_, journal) = journal::load(&state_dir, run_id.as_deref())?;
    if journal.outcome == "succeeded" {
        println!(
            "run {} already succeeded; nothing to resume",
            journal.run_id
        );
        return Ok(());
    }
    println!(
        "resuming run {} ({}): finished steps return their recorded results",
        journal.run_id,
        journal.runbook.display()
    );
    // The journal's parameters, then `--set` over them (later `--set` values win).
    let mut params: Vec<String> = journal
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    params.extend(set);
    let given = |name: &str| {
        params
            .iter()
            .any(|p| p.split_once('=').is_some_and(|(k, _)| k.trim() == name))
            || std::env::var(name).is_ok_and(|v| !v.is_empty())
    };
    for name in journal.secret_params.iter().filter(|n| !given(n)) {
        eprintln!(
            "warning: the secret parameter `{name}` was not kept in the journal: give it again with `--set {name}=…` or in the environment"
        );
    }
    // Permissions are the resumer's to give, not the interrupted run's.
    if journal.assume_yes && !yes {
        eprintln!(
            "note: the interrupted run had --yes; this one asks for confirmations unless given --yes again"
        );
    }
    let dropped: Vec<&String> = journal
        .allow_exec
        .iter()
        .filter(|p| !allow_exec.contains(p))
        .collect();
    if !dropped.is_empty() {
        eprintln!(
            "note: the interrupted run allowed `exec` of {}; this one does not unless given --allow-exec again",
            dropped
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    execute_run(RunRequest {
        file: journal.runbook.clone(),
        set: params,
        plan: journal.plan,
        sim: journal.sim,
        assume_yes: yes,
        allow_exec,
        kubeconfig: journal.kubeconfig.clone(),
        state_dir,
        previous: Some(journal),
        wait_lock,
    })
}

fn execute_run(request: RunRequest) -> Result<()> {
    // Run directories hold journals and reports (and, with `--sim`, the simulator's
    // kubeconfig): only their owner may enter them, and each run has its own.
    let runs = journal::runs_dir(&request.state_dir);
    let (run_id, dir) =
        journal::new_run_dir(&runs, &request.file).map_err(|e| Error::WriteFile {
            path: runs.display().to_string(),
            reason: e.to_string(),
        })?;
    let (runtime, simulation, session) = open_session(SessionOptions {
        set: &request.set,
        plan: request.plan,
        assume_yes: request.assume_yes,
        allow_exec: request.allow_exec.clone(),
        kubeconfig: request.kubeconfig.clone(),
        state_dir: request.state_dir.clone(),
        sim: request.sim,
        simulation_dir: dir.clone(),
        // A simulated run's clusters are saved with it; `resume` starts from them.
        keep_simulation: true,
        restore_simulation_from: request
            .previous
            .as_ref()
            .filter(|p| p.sim)
            .map(|p| runs.join(&p.run_id)),
        presses_to_quit: 1,
    })?;
    // A resumed `--sim` run starts from the saved objects on new servers: only real clusters
    // are pinned.
    if let Some(previous) = request.previous.as_ref().filter(|p| !p.sim) {
        check_clusters_unchanged(&runtime, &session, previous)?;
    }
    let started = std::time::Instant::now();
    let journal = Journal {
        run_id: run_id.clone(),
        runbook: std::path::absolute(&request.file).unwrap_or(request.file.clone()),
        params: request
            .set
            .iter()
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.to_string()))
            .collect(),
        plan: request.plan,
        assume_yes: request.assume_yes,
        allow_exec: request.allow_exec.clone(),
        sim: request.sim,
        kubeconfig: request.kubeconfig.clone(),
        started: jiff::Timestamp::now().to_string(),
        outcome: "running".into(),
        resumed_from: request.previous.as_ref().map(|p| p.run_id.clone()),
        // Contexts a replayed step bound stay pinned for a later resume.
        clusters: request
            .previous
            .as_ref()
            .filter(|p| !p.sim)
            .map(|p| p.clusters.clone())
            .unwrap_or_default(),
        ..Journal::default()
    };
    let mut lock = RunLock::new(Holder::current(&run_id), request.wait_lock);
    lock.resumes = request.previous.as_ref().map(|p| p.run_id.clone());
    let lock = Arc::new(lock);
    let mut context = RunContext::new(dir.clone(), journal, request.previous);
    context.lock = Some(lock.clone());
    session.attach_run(context);
    let engine = crate::host::build_engine(
        &session,
        Resolver::new(ResolveMode::Evaluate, session.source_map()),
    );
    let result = engine::compile_file(&engine, &session, &request.file)
        .and_then(|script| engine::run_script(&engine, &session, &script).map(drop));
    runtime.block_on(lock.release_all());
    finish_run(&session, &dir, &run_id, started.elapsed(), &result);
    simulation.stop(&runtime);
    result?;
    let style = crate::output::Style::stderr();
    for unused in session.params.unused() {
        eprintln!(
            "{} `--set {unused}=…` was never read by the runbook",
            style.warning("warning:")
        );
    }
    Ok(())
}

/// Before a resumed run starts: every context the interrupted run bound must still point at
/// the same cluster (server, CA, `kube-system` uid), or the run would continue elsewhere.
fn check_clusters_unchanged(
    runtime: &tokio::runtime::Runtime,
    session: &Session,
    previous: &Journal,
) -> Result<()> {
    let source = crate::cluster::KubeconfigSource {
        path: session.settings.kubeconfig.clone(),
    };
    for (context, before) in &previous.clusters {
        let now = runtime.block_on(crate::cluster::Cluster::connect(
            &source,
            Some(context),
            None,
        ))?;
        let identity = now.identity();
        if identity.server != before.server
            || identity.ca_fingerprint != before.ca_fingerprint
            || identity.kube_system_uid != before.kube_system_uid
        {
            return Err(now.error(
                format!(
                    "context `{context}` no longer points at the cluster the resumed run used \
                     (then {} with kube-system uid {}, now {} with kube-system uid {}): \
                     resuming would continue on another cluster; start a new run instead",
                    before.server,
                    before.kube_system_uid,
                    identity.server,
                    identity.kube_system_uid
                ),
                vec![],
            ));
        }
    }
    Ok(())
}

/// Closes the journal, writes the report and, for runbooks with steps, says where it is.
fn finish_run(
    session: &Session,
    dir: &Path,
    run_id: &str,
    elapsed: std::time::Duration,
    result: &Result<()>,
) {
    let Some(run) = session.run() else { return };
    let outcome = match result {
        Ok(()) => "succeeded",
        Err(error) if matches!(error.root(), Error::Interrupted { .. }) => "interrupted",
        Err(_) => "failed",
    };
    let journal = run.update(|journal| {
        journal.finished = Some(jiff::Timestamp::now().to_string());
        journal.outcome = outcome.to_string();
        journal.error = result.as_ref().err().map(|e| e.message());
    });
    let mut record = session
        .record
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    // The reports leave the process like the journal: redacted, readable by their owner only.
    let journal = journal::redacted(&journal);
    if journal.plan {
        write_plan(session, dir, &record);
    }
    for event in &mut record.events {
        crate::redact::mask_in_place(&mut event.data);
    }
    let markdown = crate::redact::text(&report::markdown(&journal, &record, elapsed));
    let html = crate::redact::text(&report::html(&journal, &record, &markdown));
    let written = crate::files::write_atomic(&dir.join("report.md"), markdown.as_bytes(), true)
        .and_then(|()| crate::files::write_atomic(&dir.join("report.html"), html.as_bytes(), true));
    if let Err(error) = written {
        eprintln!(
            "warning: cannot write the run report in {}: {error}",
            dir.display()
        );
    }
    if record.steps.is_empty() {
        return;
    }
    let report_path = crate::files::display_path(&dir.join("report.md"));
    let mut line = format!(
        "run {run_id} {outcome} after {} (report: {report_path}",
        crate::output::format_duration(elapsed)
    );
    if outcome != "succeeded" && !journal.plan {
        line.push_str("; continue it with `meshshift resume`");
    }
    line.push(')');
    session.out.reset_depth();
    session.out.info(&line);
}

/// Writes the plan of a `--plan` run as `plan.json` in the run's directory and, for runbooks
/// with steps (which also get the closing line), prints it.
fn write_plan(session: &Session, dir: &Path, record: &crate::session::RunRecord) {
    let plan = crate::plan::Plan::of(record);
    if !record.steps.is_empty() {
        session.out.reset_depth();
        for line in plan.lines() {
            session.out.info(&line);
        }
    }
    // The plan leaves the process like the journal: redacted, readable by its owner only.
    let text =
        crate::redact::text(&(serde_json::to_string_pretty(&plan).unwrap_or_default() + "\n"));
    if let Err(error) =
        crate::files::write_atomic(&dir.join(crate::plan::FILE), text.as_bytes(), true)
    {
        eprintln!(
            "warning: cannot write the plan in {}: {error}",
            dir.display()
        );
    }
}

fn check(files: &[PathBuf]) -> Result<()> {
    let runtime = runtime()?;
    let session = offline_session(&runtime);
    let mut failures = Vec::new();
    let resolver = Resolver::new(ResolveMode::CompileOnly, session.source_map());
    let engine = crate::host::build_engine(&session, resolver.clone());
    for file in files {
        // Forgetting the modules resolved so far keeps one file's imports from hiding
        // another's errors.
        resolver.clear();
        match runbook::check(&engine, &resolver, &session, file) {
            Ok(()) => println!("ok  {}", crate::files::display_path(file)),
            Err(error) => failures.push(error),
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 => Err(failures.remove(0)),
        _ => {
            let style = crate::output::Style::stderr();
            let last = failures.pop().expect("more than one failure");
            for error in failures {
                eprint!("{}", error.render(&style));
            }
            Err(last)
        }
    }
}

fn list(dir: &Path) -> Result<()> {
    let runtime = runtime()?;
    let session = offline_session(&runtime);
    let engine = crate::host::build_engine(
        &session,
        Resolver::new(ResolveMode::CompileOnly, session.source_map()),
    );
    let runbooks = runbook::list(&engine, &session, dir)?;
    print!("{}", runbook::format_list(&runbooks));
    Ok(())
}

fn show_doc(name: Option<&str>, markdown: bool) -> Result<()> {
    let reference = doc::Reference::build();
    let text = match (name, markdown) {
        (_, true) => reference.markdown(),
        (Some(name), false) => reference.lookup(name)?,
        (None, false) => reference.overview(),
    };
    print!("{text}");
    Ok(())
}

fn definitions(dir: &Path) -> Result<()> {
    let written = doc::write_definitions(dir)?;
    println!("wrote {} definition files to {}", written, dir.display());
    Ok(())
}
