//! One small function per subcommand.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::arguments::{Arguments, Command, RunArguments};
use crate::engine::resolver::ResolveMode;
use crate::engine::{self, Params, Resolver, Session, Settings};
use crate::error::{Error, Result};
use crate::output::Output;
use crate::{doc, runbook};

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
        Command::Resume { .. } => Err(not_yet("resume")),
        Command::Repl(repl) => crate::repl::start(repl, kubeconfig, state_dir),
        Command::Sim { .. } => Err(not_yet("sim")),
    }
}

fn not_yet(command: &str) -> Error {
    Error::Other {
        message: format!("`meshshift {command}` is not available in this build yet"),
    }
}

/// The tokio runtime host functions block on. Built by hand: Rhai runs on this thread.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("meshshift-io")
        .build()
        .map_err(|e| Error::Other {
            message: format!("cannot start the async runtime: {e}"),
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

fn run_runbook(run: RunArguments, kubeconfig: Option<PathBuf>, state_dir: PathBuf) -> Result<()> {
    if run.plan || run.sim {
        return Err(not_yet(if run.plan { "run --plan" } else { "run --sim" }));
    }
    let params = Params::from_set_arguments(&run.set)?;
    let runtime = runtime()?;
    let settings = Settings {
        plan: run.plan,
        assume_yes: run.yes,
        allow_exec: run.allow_exec,
        kubeconfig,
        state_dir,
        interactive: std::io::IsTerminal::is_terminal(&std::io::stdin()),
    };
    let session = Session::new(
        runtime.handle().clone(),
        settings,
        params,
        Arc::new(Output::stdout()),
    );
    let _ctrl_c = install_ctrl_c(&runtime, &session);
    let engine = engine::build_engine(
        &session,
        Resolver::new(ResolveMode::Evaluate, session.source_map()),
    );
    let script = engine::compile_file(&engine, &session, &run.file)?;
    engine::run_script(&engine, &session, &script).map(drop)?;
    let style = crate::output::Style::stderr();
    for unused in session.params.unused() {
        eprintln!(
            "{} `--set {unused}=…` was never read by the runbook",
            style.warning("warning:")
        );
    }
    Ok(())
}

/// First Ctrl-C: stop the script cleanly. Second: exit at once.
fn install_ctrl_c(
    runtime: &tokio::runtime::Runtime,
    session: &Arc<Session>,
) -> tokio::task::JoinHandle<()> {
    let cancel = session.cancel.clone();
    runtime.spawn(async move {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if cancel.is_cancelled() {
                std::process::exit(130);
            }
            eprintln!("\ninterrupting (Ctrl-C again to quit at once)");
            cancel.cancel();
        }
    })
}

fn check(files: &[PathBuf]) -> Result<()> {
    let runtime = runtime()?;
    let session = offline_session(&runtime);
    let mut failures = Vec::new();
    for file in files {
        // A fresh resolver per file keeps one file's imports from hiding another's errors.
        let resolver = Resolver::new(ResolveMode::CompileOnly, session.source_map());
        let engine = engine::build_engine(&session, resolver.clone());
        match runbook::check(&engine, &resolver, &session, file) {
            Ok(()) => println!("ok  {}", engine::display_path(file)),
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
    let engine = engine::build_engine(
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
