//! The rustyline helper: completion, hints, highlighting and multi-line validation, wired to
//! the pure logic in [`super::complete`], [`super::highlight`] and [`super::input`].

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, RwLock};

use rhai::{Dynamic, Engine, Map};
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::commands::COMMANDS;
use super::complete::{self, FunctionInfo, Live, Members, Sources};
use super::highlight;
use super::input::{Completeness, completeness};
use super::live::{Key, LiveNames};
use super::workspace::{SharedScope, View, lock};
use crate::cluster::Cluster;
use crate::doc::{Reference, clean_signature_text};
use crate::host::cluster::bound_clusters;
use crate::output::Style;

/// Every function completion can offer, built once in the background at start-up.
pub struct Catalog {
    pub reference: Reference,
    /// Host functions, then Rhai's built-in functions (marked `builtin`).
    pub global: Vec<FunctionInfo>,
    /// Stdlib functions by module, named without the module (`shift`).
    pub stdlib: Vec<(String, Vec<FunctionInfo>)>,
}

impl Catalog {
    /// Builds the catalog from the reference and a plain Rhai engine's built-ins.
    pub fn build() -> Catalog {
        let reference = Reference::build();
        let mut global: Vec<FunctionInfo> = reference
            .modules
            .iter()
            .filter(|m| !m.is_stdlib)
            .flat_map(|m| m.functions.iter())
            .map(|f| function_info(&f.call_name, &f.signature, false))
            .collect();
        let builtins = Engine::new().gen_fn_signatures(true);
        global.extend(builtins.iter().filter_map(|signature| {
            let name = signature.split('(').next()?.trim();
            let is_name = name.chars().all(|c| c.is_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            is_name.then(|| function_info(name, &clean_signature_text(signature), true))
        }));
        let stdlib = reference
            .modules
            .iter()
            .filter(|m| m.is_stdlib)
            .map(|m| {
                let functions = m
                    .functions
                    .iter()
                    .map(|f| {
                        let prefix = format!("{}::", m.name);
                        let name = f.call_name.trim_start_matches(&prefix);
                        function_info(name, f.signature.trim_start_matches(&prefix), false)
                    })
                    .collect();
                (m.name.clone(), functions)
            })
            .collect();
        Catalog {
            reference,
            global,
            stdlib,
        }
    }
}

fn function_info(name: &str, signature: &str, builtin: bool) -> FunctionInfo {
    let receiver = signature
        .split_once('(')
        .and_then(|(_, rest)| rest.split([',', ')']).next())
        .and_then(|first| first.split_once(':'))
        .map(|(_, kind)| kind.trim().to_string());
    FunctionInfo {
        name: name.to_string(),
        signature: signature.to_string(),
        receiver,
        builtin,
    }
}

/// The catalog, built on a background thread so the prompt appears at once.
#[derive(Clone)]
pub struct LazyCatalog {
    cell: Arc<OnceLock<Catalog>>,
}

impl LazyCatalog {
    /// Starts building the catalog in the background.
    pub fn start() -> LazyCatalog {
        let cell: Arc<OnceLock<Catalog>> = Arc::default();
        let background = cell.clone();
        std::thread::spawn(move || {
            background.get_or_init(Catalog::build);
        });
        LazyCatalog { cell }
    }

    /// A catalog built on first use (input from a pipe: only `:help` and `:doc` need it).
    pub fn on_demand() -> LazyCatalog {
        LazyCatalog {
            cell: Arc::default(),
        }
    }

    /// The catalog (built here if the background thread has not finished).
    pub fn get(&self) -> &Catalog {
        self.cell.get_or_init(Catalog::build)
    }
}

/// [`Sources`] for a running REPL: the catalog, the workspace's view and scope, the clusters.
#[derive(Clone)]
pub struct ReplSources {
    pub catalog: LazyCatalog,
    pub view: Arc<RwLock<View>>,
    pub scope: SharedScope,
    pub live: LiveNames,
}

impl ReplSources {
    fn view(&self) -> View {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The contexts a receiver expression stands for: a variable holding a cluster handle,
    /// a `cluster("ctx")` call, or (when unknown) every bound cluster.
    fn contexts_of(&self, receiver: Option<&str>) -> Vec<String> {
        if let Some(receiver) = receiver {
            if let Some(context) = literal_cluster_call(receiver) {
                return vec![context];
            }
            if let Some(value) = evaluate_path(&self.scope, receiver)
                && let Some(cluster) = value.clone().try_cast::<Cluster>()
            {
                return vec![cluster.context().to_string()];
            }
        }
        bound_clusters(self.live_session())
            .into_iter()
            .map(|(context, _)| context)
            .collect()
    }

    fn live_session(&self) -> &crate::session::Session {
        self.live.session()
    }
}

/// `cluster("ctx")` as written.
fn literal_cluster_call(receiver: &str) -> Option<String> {
    let inside = receiver.strip_prefix("cluster(")?.strip_suffix(')')?;
    let context = inside.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some(context.to_string())
}

/// Follows `name.key[0]["other"]` through the scope without running anything.
pub fn evaluate_path(scope: &SharedScope, path: &str) -> Option<Dynamic> {
    let mut segments = path_segments(path)?.into_iter();
    let Segment::Key(variable) = segments.next()? else {
        return None;
    };
    let mut value = lock(scope).get(&variable)?.clone();
    for segment in segments {
        value = match segment {
            Segment::Key(key) => value.read_lock::<Map>()?.get(key.as_str())?.clone(),
            Segment::Index(index) => value.read_lock::<rhai::Array>()?.get(index)?.clone(),
        };
    }
    Some(value)
}

#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `pods[0].metadata["labels"]` as segments; `None` for anything else (calls, expressions).
fn path_segments(path: &str) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        rest = rest.strip_prefix('.').unwrap_or(rest);
        if let Some(inner) = rest.strip_prefix('[') {
            let (index, after) = inner.split_once(']')?;
            segments.push(match index.trim().parse::<usize>() {
                Ok(number) => Segment::Index(number),
                Err(_) => Segment::Key(index.trim().trim_matches('"').to_string()),
            });
            rest = after;
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        segments.push(Segment::Key(name.to_string()));
        rest = &rest[end..];
    }
    Some(segments)
}

/// The properties of a cluster handle (getters, not functions, so not in the catalog).
fn cluster_properties() -> Vec<String> {
    ["name", "server", "namespace", "identity"]
        .map(String::from)
        .to_vec()
}

/// The script type name methods are registered for.
fn type_of(value: &Dynamic) -> &'static str {
    if value.is_map() {
        "map"
    } else if value.is_array() || value.is::<crate::session::convert::Objects>() {
        // `Objects` (what `load` returns) takes every array method.
        "array"
    } else if value.is_string() {
        "string"
    } else if value.is_int() {
        "int"
    } else if value.is_float() {
        "float"
    } else if value.is_bool() {
        "bool"
    } else if value.is::<Cluster>() {
        "Cluster"
    } else {
        "any"
    }
}

impl Sources for ReplSources {
    fn functions(&self) -> Vec<FunctionInfo> {
        let catalog = self.catalog.get();
        let view = self.view();
        let mut functions = catalog.global.clone();
        functions.extend(view.functions.iter().cloned());
        for (alias, path) in &view.modules {
            let Some((_, module)) = catalog.stdlib.iter().find(|(name, _)| name == path) else {
                continue;
            };
            functions.extend(module.iter().map(|f| FunctionInfo {
                name: format!("{alias}::{}", f.name),
                signature: format!("{alias}::{}", f.signature),
                receiver: None,
                builtin: false,
            }));
        }
        functions
    }

    fn variables(&self) -> Vec<String> {
        lock(&self.scope)
            .iter_raw()
            .map(|(name, ..)| name.to_string())
            .collect()
    }

    fn members(&self, receiver: &str) -> Members {
        let (keys, kind) = match evaluate_path(&self.scope, receiver) {
            Some(value) if value.is::<Cluster>() => (cluster_properties(), "Cluster"),
            Some(value) => {
                let keys = value
                    .read_lock::<Map>()
                    .map(|m| m.keys().map(|k| k.to_string()).collect())
                    .unwrap_or_default();
                (keys, type_of(&value))
            }
            None if literal_cluster_call(receiver).is_some() || receiver == "cluster()" => {
                (cluster_properties(), "Cluster")
            }
            None => return Members::default(),
        };
        let methods = self
            .catalog
            .get()
            .global
            .iter()
            .filter(|f| f.receiver.as_deref() == Some(kind))
            .cloned()
            .collect();
        Members { keys, methods }
    }

    fn live(&self, what: &Live, receiver: Option<&str>) -> Vec<String> {
        if *what == Live::Contexts {
            return self.live.names(&Key::Contexts);
        }
        self.contexts_of(receiver)
            .into_iter()
            .flat_map(|context| {
                let key = match what {
                    Live::Contexts | Live::Kinds => Key::Kinds(context),
                    Live::Namespaces => Key::Namespaces(context),
                    Live::Names { kind, namespace } => Key::Names {
                        context,
                        kind: kind.clone(),
                        namespace: namespace.clone(),
                    },
                };
                self.live.names(&key)
            })
            .collect()
    }

    fn help_topics(&self) -> Vec<String> {
        let reference = &self.catalog.get().reference;
        reference
            .functions()
            .map(|f| f.call_name.clone())
            .chain(reference.modules.iter().map(|m| m.name.clone()))
            .chain(COMMANDS.iter().map(|c| format!(":{}", c.name)))
            .collect()
    }

    fn steps(&self) -> Vec<String> {
        self.view().steps
    }
}

/// A hint as rustyline shows it.
pub struct ReplHint(complete::Hint);

impl rustyline::hint::Hint for ReplHint {
    fn display(&self) -> &str {
        &self.0.display
    }

    fn completion(&self) -> Option<&str> {
        self.0.completion.as_deref()
    }
}

/// The rustyline helper of an interactive REPL.
pub struct ReplHelper {
    sources: ReplSources,
    parser: Engine,
    files: FilenameCompleter,
    style: Style,
}

impl ReplHelper {
    pub fn new(sources: ReplSources, style: Style) -> ReplHelper {
        ReplHelper {
            sources,
            parser: crate::engine::parsing_engine(),
            files: FilenameCompleter::new(),
            style,
        }
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        context: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let request = complete::analyse(line, pos);
        if request.want == complete::Want::File {
            return self.files.complete(line, pos, context);
        }
        let pairs = complete::candidates(&request, &self.sources)
            .into_iter()
            .map(|c| Pair {
                display: c.display,
                replacement: c.replacement,
            })
            .collect();
        Ok((request.start, pairs))
    }
}

impl Hinter for ReplHelper {
    type Hint = ReplHint;

    fn hint(&self, line: &str, pos: usize, _: &Context<'_>) -> Option<ReplHint> {
        complete::hint(line, pos, &self.sources).map(ReplHint)
    }
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _: usize) -> Cow<'l, str> {
        if self.style.is_colour() {
            Cow::Owned(highlight::highlight(line))
        } else {
            Cow::Borrowed(line)
        }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.style.is_colour() {
            Cow::Owned(self.style.dim(hint))
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_char(&self, _: &str, _: usize, kind: CmdKind) -> bool {
        self.style.is_colour() && kind != CmdKind::MoveCursor
    }
}

impl Validator for ReplHelper {
    fn validate(&self, context: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(match completeness(&self.parser, context.input()) {
            Completeness::Complete => ValidationResult::Valid(None),
            Completeness::Incomplete => ValidationResult::Incomplete,
        })
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_keys_and_indexes() {
        assert_eq!(
            path_segments("pods[0].metadata[\"labels\"]"),
            Some(vec![
                Segment::Key("pods".into()),
                Segment::Index(0),
                Segment::Key("metadata".into()),
                Segment::Key("labels".into()),
            ])
        );
        assert_eq!(path_segments("cluster(\"a\")"), None);
        let scope: SharedScope = Default::default();
        let pod = crate::session::convert::to_dynamic(
            serde_json::json!({"metadata": {"name": "x", "labels": {"app": "a"}}}),
        );
        lock(&scope).push("pods", vec![pod]);
        let labels = evaluate_path(&scope, "pods[0].metadata.labels").unwrap();
        assert_eq!(labels.to_string(), "#{\"app\": \"a\"}");
        assert!(evaluate_path(&scope, "pods[3]").is_none());
    }

    #[test]
    fn completion_answers_within_twenty_milliseconds() {
        let runtime = crate::bootstrap::runtime().unwrap();
        let session = crate::session::Session::new(
            runtime.handle().clone(),
            crate::session::Settings::default(),
            crate::session::Params::isolated(Default::default()),
            Arc::new(crate::output::Output::buffer()),
        );
        let sources = ReplSources {
            catalog: LazyCatalog::start(),
            view: Arc::default(),
            scope: Default::default(),
            live: LiveNames::new(session),
        };
        sources.catalog.get();
        let pod = crate::session::convert::to_dynamic(
            serde_json::json!({"metadata": {"name": "x", "labels": {"app": "a"}}, "spec": {}}),
        );
        lock(&sources.scope).push("pod", pod);
        for line in ["spl", "pod.metadata.", "pod.", "c.get(\"Dep", ":help sa"] {
            let started = std::time::Instant::now();
            let rounds = 100;
            for _ in 0..rounds {
                let request = complete::analyse(line, line.len());
                assert!(
                    line.starts_with("c.") || !complete::candidates(&request, &sources).is_empty(),
                    "{line}"
                );
                complete::hint(line, line.len(), &sources);
            }
            let each = started.elapsed() / rounds;
            eprintln!("completion and hint of {line:?}: {each:?}");
            assert!(
                each < std::time::Duration::from_millis(20),
                "{line}: {each:?}"
            );
        }
    }

    #[test]
    fn the_catalog_knows_host_builtin_and_stdlib_functions() {
        let started = std::time::Instant::now();
        let catalog = Catalog::build();
        eprintln!("catalog built in {:?}", started.elapsed());
        let find = |name: &str| catalog.global.iter().find(|f| f.name == name).cloned();
        let split = find("split_check").unwrap();
        assert!(split.signature.starts_with("split_check("), "{split:?}");
        let get = catalog
            .global
            .iter()
            .find(|f| f.name == "get" && f.receiver.as_deref() == Some("Cluster"));
        assert!(get.is_some());
        assert!(find("len").is_some());
        let traffic = catalog.stdlib.iter().find(|(m, _)| m == "traffic").unwrap();
        assert!(traffic.1.iter().any(|f| f.name == "shift"));
    }
}
