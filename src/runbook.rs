//! Runbooks as files: checking them without running anything, and listing them with their
//! summary (first `//!` line) and parameters.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use rhai::{Engine, Position};

use crate::engine;
use crate::engine::lint::{self, Analysis, KEYWORD_CALLS};
use crate::engine::script_error::{self, location_in};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::suggestion::did_you_mean;

/// A runbook as `meshshift list` shows it.
#[derive(Debug, Clone)]
pub struct RunbookInfo {
    pub path: PathBuf,
    pub summary: Option<String>,
    pub params: Vec<lint::ParamUse>,
    /// Why the runbook could not be compiled, if it could not.
    pub problem: Option<String>,
}

/// The first `//!` line of a script.
pub fn summary(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("//!"))
        .map(|line| line.trim().to_string())
        .filter(|line| !line.is_empty())
}

/// Compiles a runbook and everything it imports, and checks that every function it calls
/// exists. Runs nothing.
pub fn check(
    engine: &Engine,
    resolver: &engine::Resolver,
    session: &Session,
    file: &Path,
) -> Result<()> {
    let script = engine::compile_file(engine, session, file)?;
    let known = known_names(engine);
    let mut visited = HashSet::new();
    check_ast(
        engine,
        resolver,
        session,
        &script.name,
        &script.ast,
        &known,
        &mut visited,
    )
}

fn known_names(engine: &Engine) -> BTreeSet<String> {
    engine
        .gen_fn_signatures(true)
        .iter()
        .filter_map(|s| s.split('(').next().map(|n| n.trim().to_string()))
        .chain(KEYWORD_CALLS.iter().map(|k| k.to_string()))
        .collect()
}

fn check_ast(
    engine: &Engine,
    resolver: &engine::Resolver,
    session: &Session,
    file: &str,
    ast: &rhai::AST,
    known: &BTreeSet<String>,
    visited: &mut HashSet<String>,
) -> Result<()> {
    if !visited.insert(file.to_string()) {
        return Ok(());
    }
    let analysis = lint::analyse(ast);
    let at = |pos: Position| location_in(file, session.source(file).as_deref(), pos);
    // alias -> functions of the imported module
    let mut module_functions = std::collections::BTreeMap::new();
    for (alias, (path, pos)) in &analysis.imports {
        use rhai::module_resolvers::ModuleResolver;
        resolver
            .resolve(engine, Some(file), path, *pos)
            .map_err(|error| script_error::from_eval_error(*error, file, session, engine))?;
        let Some(display) = resolver.display_name_for(Some(file), path) else {
            continue;
        };
        let Some(module_ast) = resolver.ast(&display) else {
            continue;
        };
        let names: BTreeSet<String> = module_ast
            .iter_functions()
            .map(|f| f.name.to_string())
            .collect();
        module_functions.insert(alias.clone(), names);
        check_ast(
            engine,
            resolver,
            session,
            &display,
            &module_ast,
            known,
            visited,
        )?;
    }
    for call in &analysis.calls {
        if call.namespace.is_empty() {
            if is_known(&analysis, known, &call.name, call.is_method) {
                continue;
            }
            let candidates = known
                .iter()
                .chain(analysis.functions.iter())
                .map(String::as_str);
            return Err(Error::UnknownFunction {
                signature: call.name.clone(),
                at: Some(at(call.position)),
                suggestion: did_you_mean(&call.name, candidates),
            });
        }
        let Some(functions) = module_functions.get(&call.namespace) else {
            // A namespace that is no import: a host module path such as a static module.
            continue;
        };
        if !functions.contains(&call.name) {
            return Err(Error::UnknownFunction {
                signature: format!("{}::{}", call.namespace, call.name),
                at: Some(at(call.position)),
                suggestion: did_you_mean(&call.name, functions.iter().map(String::as_str))
                    .map(|name| format!("{}::{name}", call.namespace)),
            });
        }
    }
    Ok(())
}

fn is_known(analysis: &Analysis, known: &BTreeSet<String>, name: &str, is_method: bool) -> bool {
    known.contains(name)
        || analysis.functions.contains(name)
        // A variable may hold a function pointer that is called like a function.
        || (!is_method && analysis.variables.contains(name))
}

/// Every `*.rhai` file of a directory, described.
pub fn list(engine: &Engine, session: &Session, dir: &Path) -> Result<Vec<RunbookInfo>> {
    let entries = std::fs::read_dir(dir).map_err(|error| Error::ReadFile {
        path: crate::files::display_path(dir),
        reason: error.to_string(),
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "rhai"))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| describe(engine, session, &path))
        .collect())
}

fn describe(engine: &Engine, session: &Session, path: &Path) -> RunbookInfo {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let summary = summary(&text);
    match engine::compile_text(engine, session, &crate::files::display_path(path), &text) {
        Ok(script) => {
            let mut seen = HashSet::new();
            let params = lint::analyse(&script.ast)
                .params
                .into_iter()
                .filter(|p| seen.insert(p.name.clone()))
                .collect();
            RunbookInfo {
                path: path.to_path_buf(),
                summary,
                params,
                problem: None,
            }
        }
        Err(error) => RunbookInfo {
            path: path.to_path_buf(),
            summary,
            params: Vec::new(),
            problem: Some(error.to_string()),
        },
    }
}

/// The text `meshshift list` prints.
pub fn format_list(runbooks: &[RunbookInfo]) -> String {
    let mut out = String::new();
    for runbook in runbooks {
        out.push_str(&crate::files::display_path(&runbook.path));
        out.push('\n');
        out.push_str(&format!(
            "    {}\n",
            runbook.summary.as_deref().unwrap_or("(no `//!` summary)")
        ));
        if let Some(problem) = &runbook.problem {
            out.push_str(&format!("    does not compile: {problem}\n"));
        } else if !runbook.params.is_empty() {
            let params: Vec<String> = runbook
                .params
                .iter()
                .map(|p| match &p.default {
                    Some(default) => format!("{}={default}", p.name),
                    None => p.name.clone(),
                })
                .collect();
            out.push_str(&format!("    parameters: {}\n", params.join(", ")));
        }
    }
    if runbooks.is_empty() {
        out.push_str("no runbooks (*.rhai) found\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_the_first_doc_line() {
        assert_eq!(
            summary("// x\n//! Move a mesh.\n//! More.\nlet a = 1;"),
            Some("Move a mesh.".into())
        );
        assert_eq!(summary("let a = 1;"), None);
    }
}
