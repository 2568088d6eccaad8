//! Meta-commands: lines starting with `:`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::helper::LazyCatalog;
use super::steps::format_steps;
use super::workspace::{Workspace, lock};
use crate::error::{Error, Result};
use crate::host::cluster::bound_clusters;
use crate::output::format_table;
use crate::suggestion::did_you_mean;

/// One meta-command as `:help` lists it.
pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
}

/// Every meta-command.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "help",
        usage: "[NAME]",
        summary: "this help, or a function's or module's reference with its example",
    },
    CommandSpec {
        name: "doc",
        usage: "",
        summary: "every host and stdlib function, one line each",
    },
    CommandSpec {
        name: "vars",
        usage: "",
        summary: "the variables in scope, with their types and values",
    },
    CommandSpec {
        name: "clusters",
        usage: "",
        summary: "the cluster handles bound so far: context, server, namespace",
    },
    CommandSpec {
        name: "load",
        usage: "FILE",
        summary: "load a runbook's functions and imports (its statements run with `:run`)",
    },
    CommandSpec {
        name: "steps",
        usage: "",
        summary: "the loaded runbook's step(...) calls",
    },
    CommandSpec {
        name: "run",
        usage: "[STEP]",
        summary: "run the loaded runbook on, up to and including STEP (number, title, or start of one), or to its end",
    },
    CommandSpec {
        name: "run!",
        usage: "STEP",
        summary: "run a step that already ran once more",
    },
    CommandSpec {
        name: "plan",
        usage: "on|off",
        summary: "plan mode: writes become server-side dry runs that show their diffs",
    },
    CommandSpec {
        name: "save",
        usage: "FILE",
        summary: "write the session as a runbook (`:save!` overwrites an existing file)",
    },
    CommandSpec {
        name: "history",
        usage: "",
        summary: "the inputs of this and earlier sessions",
    },
    CommandSpec {
        name: "quit",
        usage: "",
        summary: "leave (Ctrl-D does too)",
    },
];

/// What the loop does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// The state commands act on besides the workspace.
pub struct CommandContext<'a> {
    pub workspace: &'a mut Workspace,
    pub catalog: &'a LazyCatalog,
    /// Inputs so far, oldest first (empty when reading from a pipe).
    pub history: Vec<String>,
    /// Files `:save` wrote in this session (they may be overwritten without `!`).
    pub saved: &'a mut HashSet<PathBuf>,
}

/// Runs one meta-command line and returns its output text.
pub fn execute(line: &str, context: CommandContext) -> Result<(Flow, String)> {
    let line = line.trim().trim_start_matches(':');
    let (name, argument) = line.split_once(' ').unwrap_or((line, ""));
    let argument = argument.trim();
    let text = match name {
        "help" | "h" | "?" => help(argument, context.catalog)?,
        "doc" => context
            .catalog
            .get()
            .reference
            .overview()
            .trim_end()
            .to_string(),
        "vars" => vars(context.workspace),
        "clusters" => clusters(context.workspace),
        "load" => load(context.workspace, required(name, argument, "FILE")?)?,
        "steps" => steps(context.workspace)?,
        "run" => {
            return run(
                context.workspace,
                (!argument.is_empty()).then_some(argument),
                false,
            );
        }
        "run!" => {
            return run(
                context.workspace,
                Some(required(name, argument, "STEP")?),
                true,
            );
        }
        "plan" => plan(context.workspace, argument)?,
        "save" | "save!" => save(context, required(name, argument, "FILE")?, name == "save!")?,
        "history" => history(&context.history),
        "quit" | "q" | "exit" => return Ok((Flow::Quit, String::new())),
        unknown => return Err(unknown_command(unknown)),
    };
    Ok((Flow::Continue, text))
}

fn required<'a>(command: &str, argument: &'a str, what: &str) -> Result<&'a str> {
    if argument.is_empty() {
        return Err(Error::Other {
            message: format!("`:{command}` needs {what}: `:{command} {what}`"),
        });
    }
    Ok(argument)
}

fn unknown_command(name: &str) -> Error {
    let suggestion = did_you_mean(name, COMMANDS.iter().map(|c| c.name))
        .map(|s| format!(" (did you mean `:{s}`?)"))
        .unwrap_or_default();
    Error::Other {
        message: format!("unknown command `:{name}`{suggestion}; `:help` lists the commands"),
    }
}

/// `:help` without a name: how the REPL works.
pub fn overview() -> String {
    let mut out = String::from(
        "meshshift repl: Rhai on the same engine, host functions, stdlib and parameters as `meshshift run`.\n\n\
         Input: variables and functions persist between inputs. An open block or an unfinished\n\
         expression continues on the next line; a real syntax error shows at once. Tab completes\n\
         functions (with signatures), variables, map keys (`pod.metadata.`), and cluster names in\n\
         string arguments: kinds in `c.get(\"`, namespaces, object names, contexts in `cluster(\"`.\n\
         Ctrl-C stops what is running (or clears the line); Ctrl-D quits.\n\nCommands:\n",
    );
    let rows: Vec<Vec<String>> = COMMANDS
        .iter()
        .map(|c| {
            vec![
                format!("  :{} {}", c.name, c.usage).trim_end().to_string(),
                c.summary.to_string(),
            ]
        })
        .collect();
    let table = format_table(&[String::new(), String::new()], &rows);
    out.push_str(table.split_once('\n').map_or("", |(_, rows)| rows));
    out.push_str(
        "\n\n`:run STEP` runs the loaded runbook's top-level statements in order, from where the session\n\
         is up to and including the one that runs STEP, each once; `:run` alone runs to the end.\n\
         The runbook's variables stay in scope between steps for inputs of your own. A step that\n\
         already ran is not repeated unless asked: `:run! STEP` runs it once more.\n\n\
         `:save FILE` keeps the inputs and runbook statements that succeeded, in order, and every\n\
         function definition in effect (plus the loaded runbook's functions the saved code calls);\n\
         failed inputs are dropped.\n\n\
         `:help NAME` shows a function (`:help sample`), a module (`:help traffic`) or a command (`:help :run`).",
    );
    out
}

fn help(argument: &str, catalog: &LazyCatalog) -> Result<String> {
    if argument.is_empty() {
        return Ok(overview());
    }
    if let Some(command) = argument.strip_prefix(':') {
        let spec = COMMANDS
            .iter()
            .find(|c| c.name == command)
            .ok_or_else(|| unknown_command(command))?;
        return Ok(format!(
            ":{} {}\n    {}",
            spec.name, spec.usage, spec.summary
        ));
    }
    Ok(catalog
        .get()
        .reference
        .lookup(argument)?
        .trim_end()
        .to_string())
}

fn vars(workspace: &Workspace) -> String {
    let shared = workspace.scope();
    let scope = lock(&shared);
    if scope.is_empty() {
        return "no variables yet".into();
    }
    // Declaration order (the scope iterates newest first).
    let mut entries: Vec<(&str, bool, &rhai::Dynamic)> = scope.iter_raw().collect();
    entries.reverse();
    let rows: Vec<Vec<String>> = entries
        .into_iter()
        .map(|(name, constant, value)| {
            let kind = crate::doc::script_type(workspace.engine().map_type_name(value.type_name()));
            let kind = if constant {
                format!("const {kind}")
            } else {
                kind.to_string()
            };
            vec![
                name.to_string(),
                kind,
                shorten(&workspace.to_text(value), 60),
            ]
        })
        .collect();
    format_table(&["name".into(), "type".into(), "value".into()], &rows)
}

fn shorten(text: &str, limit: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= limit && !text.contains('\n') {
        return line.to_string();
    }
    let cut: String = line.chars().take(limit).collect();
    format!("{cut}…")
}

fn clusters(workspace: &Workspace) -> String {
    let bound = bound_clusters(workspace.session());
    if bound.is_empty() {
        return "no clusters bound yet: `let c = cluster(\"CONTEXT\");` binds one".into();
    }
    let rows: Vec<Vec<String>> = bound
        .iter()
        .map(|(context, cluster)| {
            vec![
                context.clone(),
                cluster.server().to_string(),
                cluster.namespace().to_string(),
            ]
        })
        .collect();
    format_table(
        &["context".into(), "server".into(), "namespace".into()],
        &rows,
    )
}

/// `:load FILE` (and `meshshift repl FILE`).
pub fn load(workspace: &mut Workspace, file: &str) -> Result<String> {
    let loaded = workspace.load(Path::new(file))?;
    let functions = loaded
        .ast
        .iter_functions()
        .filter(|f| !f.name.starts_with("anon$"))
        .count();
    Ok(format!(
        "loaded {}: {functions} functions, {} steps (`:steps` lists them, `:run STEP` runs up to one)",
        loaded.name,
        loaded.steps.len()
    ))
}

fn steps(workspace: &Workspace) -> Result<String> {
    let loaded = workspace.loaded().ok_or_else(|| Error::Other {
        message: "no runbook is loaded: `:load FILE` loads one".into(),
    })?;
    Ok(format_steps(&loaded.name, &loaded.steps, loaded.next))
}

fn run(workspace: &mut Workspace, step: Option<&str>, again: bool) -> Result<(Flow, String)> {
    let ran = workspace.run_to(step, again)?;
    let shown = super::display::render(&ran.value, |v| workspace.to_text(v));
    let text = [shown, ran.note]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    Ok((Flow::Continue, text))
}

fn plan(workspace: &Workspace, argument: &str) -> Result<String> {
    let session = workspace.session();
    match argument {
        "on" => session.set_plan(true),
        "off" => session.set_plan(false),
        "" => {}
        other => {
            return Err(Error::Other {
                message: format!("`:plan {other}`: expected `:plan on` or `:plan off`"),
            });
        }
    }
    Ok(if session.is_plan() {
        "plan mode is on: writes are server-side dry runs that show their diffs".into()
    } else {
        "plan mode is off: writes change the clusters".into()
    })
}

fn save(context: CommandContext, file: &str, overwrite: bool) -> Result<String> {
    let path = PathBuf::from(file);
    if path.exists() && !overwrite && !context.saved.contains(&path) {
        return Err(Error::Other {
            message: format!("`{file}` exists: `:save! {file}` overwrites it"),
        });
    }
    let date = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let directory = path.parent().unwrap_or(Path::new(""));
    let text = context.workspace.saved_runbook(
        &format!("Saved from a meshshift REPL session on {date}."),
        directory,
    );
    std::fs::write(&path, &text).map_err(|e| Error::WriteFile {
        path: file.to_string(),
        reason: e.to_string(),
    })?;
    context.saved.insert(path);
    let lines = text.lines().count();
    Ok(format!(
        "saved {lines} lines to {file} (`meshshift check {file}` checks it)"
    ))
}

fn history(entries: &[String]) -> String {
    if entries.is_empty() {
        return "no history".into();
    }
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let entry = entry.replace('\n', "\n      ");
            format!("{:>4}  {entry}", index + 1)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_commands_suggest_a_known_one() {
        assert_eq!(
            unknown_command("halp").message(),
            "unknown command `:halp` (did you mean `:help`?); `:help` lists the commands"
        );
    }

    #[test]
    fn the_overview_aligns_commands_with_their_usage_and_summary() {
        let text = overview();
        let table: Vec<&str> = text
            .lines()
            .skip_while(|line| *line != "Commands:")
            .skip(1)
            .take_while(|line| !line.is_empty())
            .collect();
        assert_eq!(table.len(), COMMANDS.len(), "{text}");
        assert_eq!(
            table[0],
            "  :help [NAME]  this help, or a function's or module's reference with its example"
        );
        assert_eq!(
            table[6],
            "  :run [STEP]   run the loaded runbook on, up to and including STEP (number, title, or start of one), or to its end"
        );
        assert_eq!(table[11], "  :quit         leave (Ctrl-D does too)");
    }

    #[test]
    fn history_numbers_entries_and_indents_continuations() {
        assert_eq!(
            history(&["let a = 1".into(), "if a {\n  1\n}".into()]),
            "   1  let a = 1\n   2  if a {\n        1\n      }"
        );
    }
}
