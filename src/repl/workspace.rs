//! The REPL's evaluation state: the session's engine, one persistent [`Scope`], the functions
//! defined so far (a merged AST whose statements are cleared after each input), the modules
//! imported so far (registered as static modules so later inputs and functions see them), the
//! loaded runbook, and the transcript `:save` writes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rhai::{AST, Dynamic, Engine, EvalAltResult, Expr, ImmutableString, Scope, Stmt};

use super::complete::FunctionInfo;
use super::session_file::{self, Entry, Loaded, Outcome};
use super::steps::{self, Import, Statement, StepCall};
use crate::engine::script_error;
use crate::engine::{self, Resolver};
use crate::error::{Error, Result};
use crate::session::Session;

/// A runbook whose functions are loaded (`meshshift repl FILE`, `:load FILE`), and how far
/// `:run` has taken it.
pub struct LoadedRunbook {
    pub name: String,
    pub text: Arc<str>,
    pub ast: AST,
    /// Its top-level statements, which `:run` compiles one at a time.
    pub statements: Vec<Statement>,
    pub steps: Vec<StepCall>,
    /// The statement the next `:run` starts at: those before it ran.
    pub next: usize,
}

/// What a `:run` did.
#[derive(Debug)]
pub struct Ran {
    /// The value of the last statement it ran.
    pub value: Dynamic,
    /// Why nothing ran, or that the runbook ran to its end.
    pub note: Option<String>,
}

/// A script's top-level `import "path" as alias;` statements: `(path, alias, position)`.
fn top_level_imports(ast: &AST) -> Vec<(String, String, rhai::Position)> {
    ast.statements()
        .iter()
        .filter_map(|statement| match statement {
            Stmt::Import(import, pos) => match &import.0 {
                Expr::StringConstant(path, _) => {
                    Some((path.to_string(), import.1.name.to_string(), *pos))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// What completion needs to know about the workspace, refreshed after every input.
#[derive(Debug, Default, Clone)]
pub struct View {
    /// Functions defined in the session or by the loaded runbook.
    pub functions: Vec<FunctionInfo>,
    /// Imported modules: (alias, import path).
    pub modules: Vec<(String, String)>,
    /// Titles of the loaded runbook's top-level steps.
    pub steps: Vec<String>,
}

/// The scope shared between evaluation and completion (never both at once: completion only
/// runs while the prompt waits for input).
pub type SharedScope = Arc<Mutex<Scope<'static>>>;

/// Locks the shared scope (a poisoned lock still holds a usable scope).
pub fn lock(scope: &SharedScope) -> MutexGuard<'_, Scope<'static>> {
    scope.lock().unwrap_or_else(|e| e.into_inner())
}

/// The evaluation state of one REPL.
pub struct Workspace {
    engine: Engine,
    session: Arc<Session>,
    resolver: Resolver,
    scope: SharedScope,
    functions: AST,
    /// Where each function was defined (input or runbook), so errors inside it show the right
    /// lines.
    function_sources: HashMap<String, String>,
    modules: Vec<(String, String)>,
    loaded: Option<LoadedRunbook>,
    transcript: Vec<Entry>,
    /// Inputs typed so far (`<input N>` names them).
    inputs: usize,
    view: Arc<RwLock<View>>,
    to_string: AST,
}

impl Workspace {
    /// A workspace on the session's engine.
    pub fn new(engine: Engine, session: Arc<Session>, resolver: Resolver) -> Workspace {
        let to_string = engine
            .compile("to_string(value)")
            .unwrap_or_else(|_| AST::empty());
        Workspace {
            engine,
            session,
            resolver,
            scope: Arc::new(Mutex::new(Scope::new())),
            functions: AST::empty(),
            function_sources: HashMap::new(),
            modules: Vec::new(),
            loaded: None,
            transcript: Vec::new(),
            inputs: 0,
            view: Arc::default(),
            to_string,
        }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The scope, shared with completion.
    pub fn scope(&self) -> SharedScope {
        self.scope.clone()
    }

    /// What completion reads, shared.
    pub fn view(&self) -> Arc<RwLock<View>> {
        self.view.clone()
    }

    pub fn loaded(&self) -> Option<&LoadedRunbook> {
        self.loaded.as_ref()
    }

    /// Compiles and runs one input in the persistent scope. Functions it defines stay
    /// callable; its imports stay imported once it succeeds.
    pub fn evaluate(&mut self, text: &str) -> Result<Dynamic> {
        self.inputs += 1;
        let name = format!("<input {}>", self.inputs);
        self.session.remember_source(&name, text);
        let result = self.compile_and_run(text, &name, text);
        let outcome = match &result {
            Ok(_) => Outcome::Succeeded,
            Err(Rejected(_)) => Outcome::Rejected,
            Err(Failed(_)) => Outcome::Failed,
        };
        self.record(text, outcome, false);
        result.map_err(RunError::into_error)
    }

    /// Compiles `text` against the scope as it is now (so that every variable it reads that it
    /// did not declare itself is looked up by name), then runs it in that scope. `source` is
    /// the text of the file `name`, which error snippets quote.
    fn compile_and_run(
        &mut self,
        text: &str,
        name: &str,
        source: &str,
    ) -> std::result::Result<Dynamic, RunError> {
        let ast = self
            .engine
            .compile_with_scope(&lock(&self.scope), text)
            .map_err(|error| Rejected(script_error::from_parse_error(&error, name, source)))?;
        self.define_functions(&ast, name);
        let mut run = AST::new(
            ast.statements().to_vec(),
            self.functions.shared_lib().clone(),
        );
        run.set_source(name);
        self.run(&run, name)
            .and_then(|value| self.keep_imports(&ast, name).map(|_| value))
            .map_err(Failed)
    }

    fn record(&mut self, text: &str, outcome: Outcome, from_runbook: bool) {
        self.transcript.push(Entry {
            text: text.to_string(),
            outcome,
            from_runbook,
        });
        self.refresh_view();
    }

    /// Adds an AST's functions to the session (later definitions replace earlier ones).
    fn define_functions(&mut self, ast: &AST, source: &str) {
        for function in ast.iter_functions() {
            self.function_sources
                .insert(function.name.to_string(), source.to_string());
        }
        self.functions += ast.clone_functions_only();
    }

    /// Makes the top-level imports of a script that ran (or was loaded) visible to every later
    /// input and function, as static modules; returns them.
    fn keep_imports(&mut self, ast: &AST, source: &str) -> Result<Vec<Import>> {
        use rhai::module_resolvers::ModuleResolver;
        let mut kept = Vec::new();
        for (path, alias, pos) in top_level_imports(ast) {
            let module = self
                .resolver
                .resolve(&self.engine, Some(source), &path, pos)
                .map_err(|error| self.convert(*error, source))?;
            self.engine
                .register_static_module(alias.as_str(), module.clone());
            self.modules.retain(|(a, _)| *a != alias);
            self.modules.push((alias.clone(), path.clone()));
            kept.push((alias, path, module));
        }
        Ok(kept)
    }

    /// Runs an AST in the persistent scope, cancellable with Ctrl-C.
    fn run(&mut self, ast: &AST, name: &str) -> Result<Dynamic> {
        self.session.cancel.reset();
        let result = {
            let mut scope = lock(&self.scope);
            let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
            drop_shadowed(&mut scope);
            result
        };
        // An interrupted step leaves its indentation behind.
        self.session.out.reset_depth();
        // A variable a closure captured is shared; what the input shows is its value.
        result
            .map(Dynamic::flatten)
            .map_err(|error| self.convert(*error, name))
    }

    /// Puts the session back in order after a panic interrupted an evaluation: no step is
    /// running, output is not indented, Ctrl-C is armed, and the scope holds each variable once.
    pub fn recover(&mut self) {
        while self.session.current_step().is_some() {
            self.session.leave_step();
        }
        self.session.out.reset_depth();
        self.session.cancel.reset();
        drop_shadowed(&mut lock(&self.scope));
        self.refresh_view();
    }

    fn convert(&self, error: EvalAltResult, name: &str) -> Error {
        let error = attribute_sources(error, &self.function_sources);
        script_error::from_eval_error(error, name, &self.session, &self.engine)
    }

    /// Loads a runbook's functions and imports; none of its statements run.
    pub fn load(&mut self, path: &Path) -> Result<&LoadedRunbook> {
        let script = engine::compile_file(&self.engine, &self.session, path)?;
        // Imported files may have been edited since they were last read.
        self.resolver.clear();
        let imports = self.keep_imports(&script.ast, &script.name)?;
        self.define_functions(&script.ast, &script.name);
        let statements = steps::split_statements(&script.text, &script.ast);
        let steps = steps::find_steps(
            &engine::parsing_engine(),
            &statements,
            &script.ast,
            &imports,
        );
        self.loaded = Some(LoadedRunbook {
            name: script.name,
            text: script.text,
            ast: script.ast,
            statements,
            steps,
            next: 0,
        });
        self.refresh_view();
        self.loaded.as_ref().ok_or_else(|| Error::Other {
            message: "internal error: the runbook was not kept".into(),
        })
    }

    /// `:run [STEP]`: runs the loaded runbook's statements from where the session is up to and
    /// including the one that runs STEP (to the end without one), each once. With `again`, a
    /// step that already ran runs once more (its statement only).
    pub fn run_to(&mut self, wanted: Option<&str>, again: bool) -> Result<Ran> {
        let Some(loaded) = &self.loaded else {
            return Err(Error::Other {
                message:
                    "no runbook is loaded: start with `meshshift repl FILE` or use `:load FILE`"
                        .into(),
            });
        };
        let (last, title) = match wanted {
            Some(wanted) => {
                let step = steps::select(&loaded.steps, wanted)?;
                (step.statement, Some(step.title.clone()))
            }
            None => (loaded.statements.len(), None),
        };
        let next = loaded.next;
        let range = match (title, again) {
            (Some(_), true) if last < next => last..last + 1,
            (Some(title), false) if last < next => {
                return Ok(Ran {
                    value: Dynamic::UNIT,
                    note: Some(format!(
                        "`{title}` already ran in this session; `:run! {title}` runs it again"
                    )),
                });
            }
            (Some(_), _) => next..last + 1,
            (None, _) if next >= loaded.statements.len() => {
                return Ok(Ran {
                    value: Dynamic::UNIT,
                    note: Some(format!(
                        "{} has run to its end; `:run! STEP` runs a step again",
                        loaded.name
                    )),
                });
            }
            (None, _) => next..last,
        };
        let end = range.end;
        let mut value = Dynamic::UNIT;
        for index in range {
            value = self.run_statement(index)?;
        }
        let finished = self
            .loaded
            .as_ref()
            .filter(|l| end >= l.statements.len())
            .map(|l| format!("{} ran to its end", l.name));
        Ok(Ran {
            value,
            note: finished,
        })
    }

    /// Runs one statement of the loaded runbook, compiled against the scope as it is now.
    fn run_statement(&mut self, index: usize) -> Result<Dynamic> {
        let Some(loaded) = &self.loaded else {
            return Ok(Dynamic::UNIT);
        };
        let Some(statement) = loaded.statements.get(index).cloned() else {
            return Ok(Dynamic::UNIT);
        };
        let (name, source) = (loaded.name.clone(), loaded.text.clone());
        let result = self.compile_and_run(&statement.positioned(), &name, &source);
        let outcome = match &result {
            Ok(_) => Outcome::Succeeded,
            Err(Rejected(_)) => Outcome::Rejected,
            Err(Failed(_)) => Outcome::Failed,
        };
        self.record(&statement.saved_text(), outcome, true);
        if result.is_ok()
            && let Some(loaded) = &mut self.loaded
        {
            loaded.next = loaded.next.max(index + 1);
        }
        result.map_err(RunError::into_error)
    }

    /// The session as a runbook (see [`session_file::render`]).
    /// `directory` is where the file goes: imports of files are rewritten to point from there
    /// to the modules the session imported.
    pub fn saved_runbook(&self, header: &str, directory: &Path) -> String {
        let runbook_directory = self
            .loaded
            .as_ref()
            .map(|l| crate::session::script_directory(Some(&l.name)))
            .unwrap_or_default();
        let loaded = self.loaded.as_ref().map(|l| Loaded {
            name: &l.name,
            text: &l.text,
            imports: top_level_imports(&l.ast)
                .into_iter()
                .map(|(path, alias, _)| {
                    (
                        session_file::rebase(&path, &runbook_directory, directory),
                        alias,
                    )
                })
                .collect(),
        });
        let entries: Vec<Entry> = self
            .transcript
            .iter()
            .map(|entry| {
                // Typed imports are relative to the working directory.
                let from = if entry.from_runbook {
                    runbook_directory.as_path()
                } else {
                    Path::new("")
                };
                Entry {
                    text: session_file::rebase_imports(&entry.text, from, directory),
                    ..entry.clone()
                }
            })
            .collect();
        session_file::render(header, &entries, loaded)
    }

    /// A value as Rhai's `to_string` shows it (host types their own way, Secrets masked).
    pub fn to_text(&self, value: &Dynamic) -> String {
        let mut scope = Scope::new();
        scope.push("value", value.clone());
        self.engine
            .eval_ast_with_scope::<ImmutableString>(&mut scope, &self.to_string)
            .map(|s| s.to_string())
            .unwrap_or_else(|_| value.to_string())
    }

    fn refresh_view(&self) {
        let functions = self
            .functions
            .iter_functions()
            .filter(|f| !f.name.starts_with("anon$"))
            .map(|f| FunctionInfo {
                name: f.name.to_string(),
                signature: format!("{}({})", f.name, f.params.join(", ")),
                receiver: None,
                builtin: false,
            })
            .collect();
        let steps = self
            .loaded
            .iter()
            .flat_map(|l| l.steps.iter())
            .map(|s| s.title.clone())
            .collect();
        let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
        *view = View {
            functions,
            modules: self.modules.clone(),
            steps,
        };
    }
}

/// Why an input did not succeed: it did not compile (nothing of it took effect), or it failed
/// while running.
enum RunError {
    Rejected(Error),
    Failed(Error),
}
use RunError::{Failed, Rejected};

impl RunError {
    fn into_error(self) -> Error {
        match self {
            Rejected(error) | Failed(error) => error,
        }
    }
}

/// Keeps only the latest of variables declared again (`let x` twice): earlier ones can never
/// be read, would show up twice in `:vars`, and would hold their values forever.
fn drop_shadowed(scope: &mut Scope<'static>) {
    let names: Vec<&str> = scope.iter_raw().map(|(name, ..)| name).collect();
    let unique: std::collections::HashSet<&str> = names.iter().copied().collect();
    if unique.len() == names.len() {
        return;
    }
    let constants: Vec<bool> = scope.iter().map(|(_, constant, _)| constant).collect();
    let entries: Vec<(String, Dynamic)> = std::mem::take(scope)
        .into_iter()
        .map(|(name, value, _)| (name, value))
        .collect();
    let kept: Vec<bool> = (0..entries.len())
        .map(|index| {
            !entries[index + 1..]
                .iter()
                .any(|(later, _)| *later == entries[index].0)
        })
        .collect();
    for ((name, value), (keep, constant)) in
        entries.into_iter().zip(kept.into_iter().zip(constants))
    {
        match (keep, constant) {
            (false, _) => {}
            (true, true) => {
                scope.push_constant_dynamic(name, value);
            }
            (true, false) => {
                scope.push_dynamic(name, value);
            }
        }
    }
}

/// Rhai reports errors inside session functions against the caller's source; point each at
/// the input or runbook that defined the function instead. (Functions of imported modules
/// already name their module.)
fn attribute_sources(error: EvalAltResult, sources: &HashMap<String, String>) -> EvalAltResult {
    match error {
        EvalAltResult::ErrorInFunctionCall(function, source, inner, pos) => {
            let ours = source.is_empty() || sources.values().any(|s| *s == source);
            let source = match sources.get(&function) {
                Some(defined_in) if ours => defined_in.clone(),
                _ => source,
            };
            let inner = attribute_sources(*inner, sources);
            EvalAltResult::ErrorInFunctionCall(function, source, Box::new(inner), pos)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadowed_variables_are_dropped_and_constants_stay_constant() {
        let engine = Engine::new();
        let mut scope = Scope::new();
        // Separate inputs, as in the REPL: each `let` adds an entry.
        for input in ["let a = 1;", "const b = 2;", "let a = 3;", "let c = a;"] {
            engine.run_with_scope(&mut scope, input).unwrap();
        }
        assert_eq!(scope.len(), 4);
        drop_shadowed(&mut scope);
        let entries: Vec<(String, bool, String)> = scope
            .iter()
            .map(|(name, constant, value)| (name.to_string(), constant, value.to_string()))
            .collect();
        assert_eq!(
            entries,
            vec![
                ("b".into(), true, "2".into()),
                ("a".into(), false, "3".into()),
                ("c".into(), false, "3".into()),
            ]
        );
    }

    #[test]
    fn only_top_level_imports_belong_to_the_runbook() {
        let ast = crate::engine::parsing_engine()
            .compile("import \"traffic\" as t;\nfn f() { import \"aks\" as a; a::x() }\n")
            .unwrap();
        let imports: Vec<(String, String)> = top_level_imports(&ast)
            .into_iter()
            .map(|(path, alias, _)| (path, alias))
            .collect();
        assert_eq!(imports, vec![("traffic".to_string(), "t".to_string())]);
    }
}
