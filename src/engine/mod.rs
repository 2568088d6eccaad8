//! The Rhai engine, built in exactly one place ([`build_engine`]): safety limits, module
//! resolution (embedded stdlib first, then files next to the importing script), `print`/`debug`
//! routed to the session's output, Ctrl-C through `on_progress`, and every host module from
//! [`crate::host`]; compiling and running scripts, with Rhai's errors turned into meshshift's.
//! Host functions reach the [`Session`] through the engine's tag, and block on its tokio runtime.

pub mod lint;
pub mod resolver;
pub mod script_error;
pub mod signature;

use std::path::Path;
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, Scope};

use crate::error::{Error, Result};
use crate::files::display_path;
use crate::session::Session;
pub use resolver::Resolver;

/// Safety limits: a runaway script stops with a clear error instead of hanging or exhausting
/// memory. Generous enough for migrations over thousands of objects.
pub mod limits {
    pub const MAX_OPERATIONS: u64 = 50_000_000;
    pub const MAX_CALL_LEVELS: usize = 64;
    pub const MAX_EXPR_DEPTH: usize = 128;
    pub const MAX_FUNCTION_EXPR_DEPTH: usize = 64;
    pub const MAX_STRING_SIZE: usize = 64 * 1024 * 1024;
    pub const MAX_ARRAY_SIZE: usize = 1_000_000;
    pub const MAX_MAP_SIZE: usize = 0;
    pub const MAX_MODULES: usize = 256;
}

/// An engine without host functions that parses with the same limits as a session's
/// (for reading the stdlib's documentation and function names).
pub fn parsing_engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine.set_max_expr_depths(limits::MAX_EXPR_DEPTH, limits::MAX_FUNCTION_EXPR_DEPTH);
    engine
}

/// Builds the engine for a session, without host functions ([`crate::host::build_engine`]
/// adds them). `resolver` decides whether imports are evaluated (run) or only compiled (check).
pub fn build_engine(session: &Arc<Session>, resolver: Resolver) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits::MAX_OPERATIONS)
        .set_max_call_levels(limits::MAX_CALL_LEVELS)
        .set_max_expr_depths(limits::MAX_EXPR_DEPTH, limits::MAX_FUNCTION_EXPR_DEPTH)
        .set_max_string_size(limits::MAX_STRING_SIZE)
        .set_max_array_size(limits::MAX_ARRAY_SIZE)
        .set_max_map_size(limits::MAX_MAP_SIZE)
        .set_max_modules(limits::MAX_MODULES)
        .set_fail_on_invalid_map_property(false)
        .set_module_resolver(resolver);
    engine.set_default_tag(crate::session::engine_tag(session));

    let out = session.out.clone();
    engine.on_print(move |text| out.line(text));
    let out = session.out.clone();
    engine.on_debug(move |text, source, position| {
        let place = match (source, position.line()) {
            (Some(source), Some(line)) => format!("{source}:{line}: "),
            (None, Some(line)) => format!("line {line}: "),
            _ => String::new(),
        };
        out.line(&format!("[debug] {place}{text}"));
    });
    let cancel = session.cancel.clone();
    engine.on_progress(move |_| {
        if cancel.is_cancelled() {
            Some("interrupted".into())
        } else {
            None
        }
    });
    engine
}

/// A script ready to run: its display name, its text and the compiled AST.
pub struct Script {
    pub name: String,
    pub text: Arc<str>,
    pub ast: AST,
}

/// Reads and compiles a runbook file. Errors name the file, line and column.
pub fn compile_file(engine: &Engine, session: &Session, path: &Path) -> Result<Script> {
    let name = display_path(path);
    let text = std::fs::read_to_string(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            Error::RunbookNotFound {
                path: name.clone(),
                suggestion: crate::suggestion::similar_file(path),
            }
        } else {
            Error::ReadFile {
                path: name.clone(),
                reason: error.to_string(),
            }
        }
    })?;
    compile_text(engine, session, &name, &text)
}

/// Compiles script text under a display name.
pub fn compile_text(engine: &Engine, session: &Session, name: &str, text: &str) -> Result<Script> {
    session.remember_source(name, text);
    let mut ast = engine
        .compile(text)
        .map_err(|error| script_error::from_parse_error(&error, name, text))?;
    ast.set_source(name);
    Ok(Script {
        name: name.to_string(),
        text: text.into(),
        ast,
    })
}

/// Runs a compiled script to completion.
pub fn run_script(engine: &Engine, session: &Session, script: &Script) -> Result<Dynamic> {
    let mut scope = Scope::new();
    engine
        .eval_ast_with_scope::<Dynamic>(&mut scope, &script.ast)
        .map_err(|error| script_error::from_eval_error(*error, &script.name, session, engine))
}
