//! `meshshift repl`: an interactive session on the same engine, host modules, stdlib and
//! parameters as `meshshift run`. On a terminal it is a rustyline editor with completion,
//! hints, highlighting and automatic multi-line input; from a pipe it reads line by line,
//! evaluates each complete input, and fails at the end if any input failed.
//!
//! - [`workspace`]: evaluation state (scope, functions, imports, loaded runbook, transcript);
//! - [`input`]: is an input complete yet (Rhai's parser decides);
//! - [`complete`], [`live`], [`helper`], [`highlight`], [`lexer`]: the line editor's help;
//! - [`commands`], [`steps`], [`session_file`]: meta-commands, `:steps`/`:run`, `:save`;
//! - [`display`]: how results print.

pub mod commands;
pub mod complete;
pub mod display;
pub mod helper;
pub mod highlight;
pub mod input;
pub mod lexer;
pub mod live;
pub mod session_file;
pub mod steps;
pub mod workspace;

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustyline::error::ReadlineError;
use rustyline::history::{FileHistory, History};
use rustyline::{CompletionType, Config, Editor};

use crate::arguments::ReplArguments;
use crate::engine::resolver::ResolveMode;
use crate::engine::{self, Params, Resolver, Session, Settings};
use crate::error::{Error, Result};
use crate::output::{Output, Style};
use commands::{CommandContext, Flow};
use helper::{LazyCatalog, ReplHelper, ReplSources};
use input::{Completeness, completeness, is_meta_command};
use live::LiveNames;
use workspace::Workspace;

/// The prompt (tests and scripts look for it).
pub const PROMPT: &str = "meshshift> ";
/// The prompt while plan mode is on.
pub const PLAN_PROMPT: &str = "meshshift (plan)> ";

/// Starts the REPL: builds the session as `run` does, preloads FILE, then reads input from the
/// terminal or, when standard input is not one, line by line from it.
pub fn start(
    arguments: ReplArguments,
    kubeconfig: Option<PathBuf>,
    state_dir: PathBuf,
) -> Result<()> {
    let mut params = Params::from_set_arguments(&arguments.set)?;
    let runtime = crate::subcommand::runtime()?;
    let interactive = std::io::stdin().is_terminal();
    let mut settings = Settings {
        plan: false,
        assume_yes: false,
        allow_exec: arguments.allow_exec,
        kubeconfig,
        state_dir: state_dir.clone(),
        interactive,
        exec_aliases: Default::default(),
    };
    // One directory per process, so two REPLs on simulated clusters do not share state.
    let simulation = crate::subcommand::Simulation::start_if(
        arguments.sim,
        &runtime,
        &state_dir.join(format!("repl-sim-{}", std::process::id())),
        &mut settings,
        &mut params,
    )?;
    let session = Session::new(
        runtime.handle().clone(),
        settings,
        params,
        Arc::new(Output::stdout()),
    );
    let _ctrl_c = install_ctrl_c(&runtime, &session);
    let resolver = Resolver::new(ResolveMode::Evaluate, session.source_map());
    let engine = engine::build_engine(&session, resolver.clone());
    let mut repl = Repl::new(Workspace::new(engine, session, resolver));
    let result = preload(&mut repl, arguments.file.as_deref(), interactive).and_then(|()| {
        if interactive {
            repl.interactive()
        } else {
            repl.piped(std::io::stdin().lock())
        }
    });
    simulation.stop(&runtime);
    result
}

/// Loads FILE into the workspace before the first prompt.
fn preload(repl: &mut Repl, file: Option<&Path>, interactive: bool) -> Result<()> {
    if let Some(file) = file {
        let loaded = commands::load(&mut repl.workspace, &file.to_string_lossy())?;
        if interactive {
            println!("{loaded}");
        }
    }
    Ok(())
}

/// Ctrl-C stops the running input (the session's cancel switch, which host functions select
/// on); pressed twice more while it is still stopping, it quits.
fn install_ctrl_c(
    runtime: &tokio::runtime::Runtime,
    session: &Arc<Session>,
) -> tokio::task::JoinHandle<()> {
    let cancel = session.cancel.clone();
    runtime.spawn(async move {
        let mut while_stopping = 0;
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if !cancel.is_cancelled() {
                while_stopping = 0;
                cancel.cancel();
                continue;
            }
            while_stopping += 1;
            if while_stopping == 1 {
                eprintln!("\nstill stopping (Ctrl-C once more quits meshshift)");
            } else {
                std::process::exit(130);
            }
        }
    })
}

/// A running REPL.
struct Repl {
    workspace: Workspace,
    catalog: LazyCatalog,
    live: LiveNames,
    saved: HashSet<PathBuf>,
    errors: Style,
}

impl Repl {
    fn new(workspace: Workspace) -> Repl {
        let live = LiveNames::new(workspace.session().clone());
        Repl {
            workspace,
            catalog: LazyCatalog::start(),
            live,
            saved: HashSet::new(),
            errors: Style::stderr(),
        }
    }

    /// Evaluates one input or runs one command, printing its result or error. Returns whether
    /// it failed and whether to go on.
    fn submit(&mut self, text: &str, history: Vec<String>) -> (bool, Flow) {
        let outcome = if is_meta_command(text) {
            commands::execute(
                text,
                CommandContext {
                    workspace: &mut self.workspace,
                    catalog: &self.catalog,
                    history,
                    saved: &mut self.saved,
                },
            )
        } else {
            self.workspace.evaluate(text).map(|value| {
                let shown = display::render(&value, |v| self.workspace.to_text(v));
                (Flow::Continue, shown.unwrap_or_default())
            })
        };
        self.live.prefetch_bound_clusters();
        match outcome {
            Ok((flow, text)) => {
                if !text.is_empty() {
                    println!("{text}");
                }
                (false, flow)
            }
            Err(error) => {
                eprint!("{}", error.render(&self.errors));
                (true, Flow::Continue)
            }
        }
    }

    /// Reads stdin line by line: accumulates lines until Rhai says the input is complete,
    /// evaluates it, and goes on after errors. Fails at the end if any input failed.
    fn piped(&mut self, input: impl BufRead) -> Result<()> {
        let parser = engine::parsing_engine();
        let mut pending = String::new();
        let (mut inputs, mut failures) = (0, 0);
        let mut lines = input.lines();
        loop {
            let next = lines.next().transpose().map_err(|e| Error::Other {
                message: format!("cannot read standard input: {e}"),
            })?;
            let finished = next.is_none();
            if let Some(line) = next {
                if !pending.is_empty() {
                    pending.push('\n');
                }
                pending.push_str(&line);
            }
            if pending.trim().is_empty() {
                pending.clear();
            } else if finished || completeness(&parser, &pending) == Completeness::Complete {
                // At the end of the input an open block is evaluated too, to show its error.
                let text = std::mem::take(&mut pending);
                inputs += 1;
                let (failed, flow) = self.submit(&text, Vec::new());
                failures += usize::from(failed);
                if flow == Flow::Quit {
                    break;
                }
            }
            if finished {
                break;
            }
        }
        match failures {
            0 => Ok(()),
            _ => Err(Error::Other {
                message: format!("{failures} of {inputs} inputs failed"),
            }),
        }
    }

    /// The line editor loop.
    fn interactive(&mut self) -> Result<()> {
        let mut editor = self.editor()?;
        let history_file = history_file(&self.workspace.session().settings.state_dir);
        if let Some(file) = &history_file {
            // No history yet is not an error.
            let _ = editor.load_history(file);
        }
        println!("meshshift repl: `:help` for help, Tab to complete, Ctrl-D to quit");
        loop {
            let prompt = if self.workspace.session().is_plan() {
                PLAN_PROMPT
            } else {
                PROMPT
            };
            let line = match editor.readline(prompt) {
                Ok(line) => line,
                // Ctrl-C at the prompt clears the line.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => return Ok(()),
                Err(error) => {
                    return Err(Error::Other {
                        message: format!("cannot read from the terminal: {error}"),
                    });
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let _ = editor.add_history_entry(line.as_str());
            if let Some(file) = &history_file {
                // History is a convenience: a read-only state dir must not stop the session.
                let _ = editor.append_history(file);
            }
            let history = history_entries(editor.history());
            if self.submit(&line, history).1 == Flow::Quit {
                return Ok(());
            }
        }
    }

    fn editor(&self) -> Result<Editor<ReplHelper, FileHistory>> {
        let config = Config::builder()
            .history_ignore_dups(true)
            .and_then(|b| b.max_history_size(10_000))
            .map(|b| {
                b.history_ignore_space(true)
                    .completion_type(CompletionType::List)
                    .auto_add_history(false)
                    .build()
            })
            .map_err(editor_error)?;
        let mut editor = Editor::with_config(config).map_err(editor_error)?;
        let sources = ReplSources {
            catalog: self.catalog.clone(),
            view: self.workspace.view(),
            scope: self.workspace.scope(),
            live: self.live.clone(),
        };
        let colour = Style::detect(std::io::stdout().is_terminal()).is_colour();
        editor.set_helper(Some(ReplHelper::new(sources, colour)));
        self.live.prefetch(&live::Key::Contexts);
        Ok(editor)
    }
}

fn editor_error(error: ReadlineError) -> Error {
    Error::Other {
        message: format!("cannot start the line editor: {error}"),
    }
}

/// `<state dir>/repl_history`, creating the state dir; `None` when it cannot be created.
fn history_file(state_dir: &Path) -> Option<PathBuf> {
    std::fs::create_dir_all(state_dir).ok()?;
    Some(state_dir.join("repl_history"))
}

fn history_entries(history: &FileHistory) -> Vec<String> {
    (0..history.len())
        .filter_map(|index| {
            history
                .get(index, rustyline::history::SearchDirection::Forward)
                .ok()
                .flatten()
                .map(|result| result.entry.into_owned())
        })
        .collect()
}
