//! `meshshift repl`: an interactive session on the same engine, host modules, stdlib and
//! parameters as `meshshift run`. On a terminal it is a rustyline editor with completion,
//! hints, highlighting and automatic multi-line input; from a pipe it reads line by line,
//! evaluates each complete input, and fails at the end if any input failed.
//!
//! - [`workspace`]: evaluation state (scope, functions, imports, loaded runbook, transcript);
//! - [`input`]: is an input complete yet (Rhai's parser decides);
//! - [`complete`], [`live`], [`helper`], [`highlight`], [`lexer`]: the line editor's help;
//! - [`commands`], [`steps`], [`session_file`]: meta-commands, `:steps`/`:run`, `:save`;
//! - [`display`]: how results print;
//! - [`guard`]: a panic while evaluating one input is reported, and the session goes on.

pub mod commands;
pub mod complete;
pub mod display;
pub mod guard;
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

use rustyline::error::ReadlineError;
use rustyline::history::{FileHistory, History};
use rustyline::{CompletionType, Config, Editor};

use crate::arguments::ReplArguments;
use crate::engine::resolver::ResolveMode;
use crate::engine::{self, Resolver};
use crate::error::{Error, Result};
use crate::output::Style;
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
    let (runtime, simulation, session) =
        crate::bootstrap::open_session(crate::bootstrap::SessionOptions {
            set: &arguments.set,
            plan: false,
            assume_yes: false,
            allow_exec: arguments.allow_exec,
            kubeconfig,
            // One directory per process, so two REPLs on simulated clusters do not share state.
            simulation_dir: state_dir.join(format!("repl-sim-{}", std::process::id())),
            state_dir,
            sim: arguments.sim,
            keep_simulation: false,
            restore_simulation_from: None,
            // Ctrl-C returns to the prompt; pressed twice more while still stopping, it quits.
            presses_to_quit: 2,
        })?;
    let interactive = session.settings.interactive;
    let resolver = Resolver::new(ResolveMode::Evaluate, session.source_map());
    let engine = crate::host::build_engine(&session, resolver.clone());
    let mut repl = Repl::new(Workspace::new(engine, session, resolver), interactive);
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

/// A running REPL.
struct Repl {
    workspace: Workspace,
    catalog: LazyCatalog,
    live: LiveNames,
    saved: HashSet<PathBuf>,
    errors: Style,
}

impl Repl {
    /// `interactive`: completion will want the catalog soon, so it is built in the background.
    fn new(workspace: Workspace, interactive: bool) -> Repl {
        let live = LiveNames::new(workspace.session().clone());
        Repl {
            workspace,
            catalog: if interactive {
                LazyCatalog::start()
            } else {
                LazyCatalog::on_demand()
            },
            live,
            saved: HashSet::new(),
            errors: Style::stderr(),
        }
    }

    /// Evaluates one input or runs one command, printing its result or error. Returns whether
    /// it failed and whether to go on.
    fn submit(&mut self, text: &str, history: Option<&FileHistory>) -> (bool, Flow) {
        let outcome = guard::catch(|| self.evaluate(text, history)).unwrap_or_else(|panic| {
            self.workspace.recover();
            Err(guard::internal_error(text, &panic))
        });
        match outcome {
            Ok((flow, text)) => {
                if !text.is_empty() {
                    // Results and command output leave through the redaction layer.
                    println!("{}", crate::redact::text(&text));
                }
                (false, flow)
            }
            Err(error) => {
                eprint!("{}", error.render(&self.errors));
                (true, Flow::Continue)
            }
        }
    }

    /// Runs one command or evaluates one input; its result as text.
    fn evaluate(&mut self, text: &str, history: Option<&FileHistory>) -> Result<(Flow, String)> {
        if is_meta_command(text) {
            commands::execute(
                text,
                CommandContext {
                    workspace: &mut self.workspace,
                    catalog: &self.catalog,
                    history: history.map(history_entries).unwrap_or_default(),
                    saved: &mut self.saved,
                },
            )
        } else {
            self.workspace.evaluate(text).map(|value| {
                let shown = display::render(&value, |v| self.workspace.to_text(v));
                (Flow::Continue, shown.unwrap_or_default())
            })
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
                let (failed, flow) = self.submit(&text, None);
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
            let flow = self.submit(&line, Some(editor.history())).1;
            if flow == Flow::Quit {
                return Ok(());
            }
            // Completion of the next input wants fresh names of the clusters bound so far.
            self.live.prefetch_bound_clusters();
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
        let style = Style::detect(std::io::stdout().is_terminal());
        editor.set_helper(Some(ReplHelper::new(sources, style)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::resolver::ResolveMode;
    use crate::session::{Params, Session, Settings};

    #[test]
    fn a_panic_in_one_input_is_reported_and_the_session_goes_on() {
        let runtime = crate::bootstrap::runtime().unwrap();
        let session = Session::new(
            runtime.handle().clone(),
            Settings::default(),
            Params::isolated(Default::default()),
            std::sync::Arc::new(crate::output::Output::buffer()),
        );
        let resolver = Resolver::new(ResolveMode::Evaluate, session.source_map());
        let mut engine = engine::build_engine(&session, resolver.clone());
        engine.register_fn("explode", |n: i64| -> i64 {
            let empty: Vec<i64> = Vec::new();
            empty[n as usize]
        });
        let mut repl = Repl::new(Workspace::new(engine, session, resolver), false);
        assert_eq!(repl.submit("let kept = 6;", None), (false, Flow::Continue));
        assert_eq!(repl.submit("explode(kept)", None), (true, Flow::Continue));
        // The variables are still there and the next input runs.
        let value = repl.workspace.evaluate("kept * 7").unwrap();
        assert_eq!(value.as_int(), Ok(42));
    }
}
