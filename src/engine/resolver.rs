//! `import "x" as y;`: the embedded stdlib first, then `x.rhai` next to the importing script.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::module_resolvers::ModuleResolver;
use rhai::{AST, Engine, EvalAltResult, Module, Position, Scope, Shared};

use crate::stdlib;

/// How imported modules are prepared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResolveMode {
    /// Evaluate the module (its top-level code runs once; constants are exported).
    Evaluate,
    /// Only parse and compile it: `meshshift check` must not run anything.
    CompileOnly,
}

/// The module resolver of every engine.
#[derive(Clone)]
pub struct Resolver {
    mode: ResolveMode,
    state: Arc<Mutex<ResolverState>>,
    sources: crate::session::SourceMap,
}

#[derive(Default)]
struct ResolverState {
    modules: HashMap<String, Shared<Module>>,
    asts: HashMap<String, Arc<AST>>,
}

/// A module found for an import path.
struct Located {
    display_name: String,
    text: String,
}

impl Resolver {
    /// A resolver that records every module text it reads in `sources` (for error snippets).
    pub fn new(mode: ResolveMode, sources: crate::session::SourceMap) -> Resolver {
        Resolver {
            mode,
            state: Arc::new(Mutex::new(ResolverState::default())),
            sources,
        }
    }

    /// The display name an import path resolves to (without reading the module).
    pub fn display_name_for(&self, importer: Option<&str>, path: &str) -> Option<String> {
        if stdlib::get(path).is_some() {
            return Some(stdlib::display_name(path));
        }
        candidate_file(importer, path).map(|p| super::display_path(&p))
    }

    /// The compiled AST of a module resolved earlier.
    pub fn ast(&self, display_name: &str) -> Option<Arc<AST>> {
        self.lock().asts.get(display_name).cloned()
    }

    /// Forgets resolved modules so edited files are read again (REPL `:load`).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.modules.clear();
        state.asts.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ResolverState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn locate(importer: Option<&str>, path: &str) -> Option<Located> {
        if let Some(text) = stdlib::get(path) {
            return Some(Located {
                display_name: stdlib::display_name(path),
                text: text.into(),
            });
        }
        let candidate = candidate_file(importer, path)?;
        let text = std::fs::read_to_string(&candidate).ok()?;
        Some(Located {
            display_name: super::display_path(&candidate),
            text,
        })
    }

    /// Compiles a located module (and remembers its AST and text).
    fn compile(
        &self,
        engine: &Engine,
        located: &Located,
        pos: Position,
    ) -> Result<Arc<AST>, Box<EvalAltResult>> {
        if let Some(ast) = self.lock().asts.get(&located.display_name) {
            return Ok(ast.clone());
        }
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(located.display_name.clone(), located.text.as_str().into());
        let mut ast = engine.compile(&located.text).map_err(|error| {
            Box::new(EvalAltResult::ErrorInModule(
                located.display_name.clone(),
                Box::new(EvalAltResult::ErrorParsing(*error.0, error.1)),
                pos,
            ))
        })?;
        ast.set_source(located.display_name.as_str());
        let ast = Arc::new(ast);
        self.lock()
            .asts
            .insert(located.display_name.clone(), ast.clone());
        Ok(ast)
    }
}

/// Where a relative import points: next to the importing file (or the working directory).
fn candidate_file(importer: Option<&str>, path: &str) -> Option<PathBuf> {
    if path.is_empty() {
        return None;
    }
    let mut relative = PathBuf::from(path);
    if relative.extension().is_none() {
        relative.set_extension("rhai");
    }
    if relative.is_absolute() {
        return Some(relative);
    }
    Some(crate::session::script_directory(importer).join(relative))
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        // A module resolved before is not read from disk again (imports inside functions run
        // on every call).
        if let Some(name) = self.display_name_for(source, path)
            && let Some(module) = self.lock().modules.get(&name)
        {
            return Ok(module.clone());
        }
        let Some(located) = Self::locate(source, path) else {
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                path.to_string(),
                pos,
            )));
        };
        let ast = self.compile(engine, &located, pos)?;
        let module = match self.mode {
            ResolveMode::Evaluate => {
                Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(|error| {
                    Box::new(EvalAltResult::ErrorInModule(
                        located.display_name.clone(),
                        error,
                        pos,
                    ))
                })?
            }
            ResolveMode::CompileOnly => {
                let mut module = (**ast.shared_lib()).clone();
                module.build_index();
                module
            }
        };
        let module: Shared<Module> = module.into();
        self.lock()
            .modules
            .insert(located.display_name, module.clone());
        Ok(module)
    }
}
