//! Rhai's parse and evaluation errors, turned into meshshift [`Error`]s with file, line, column,
//! the call trace and "did you mean".

use rhai::{Engine, EvalAltResult, ParseError, Position};

use crate::error::{Error, Frame};
use crate::session::{HostError, Session};
use crate::snippet::Location;
use crate::stdlib;
use crate::suggestion::did_you_mean;

/// A parse error in `name` (whose text is `text`).
pub fn from_parse_error(error: &ParseError, name: &str, text: &str) -> Error {
    Error::ScriptSyntax {
        message: lower_first(&error.err_type().to_string()),
        at: location_in(name, Some(text), error.position()),
    }
}

/// An evaluation error of the script `file`.
pub fn from_eval_error(
    error: EvalAltResult,
    file: &str,
    session: &Session,
    engine: &Engine,
) -> Error {
    from_eval_error_ref(&error, file, session, engine)
}

/// [`from_eval_error`] for an error that stays with its owner.
pub fn from_eval_error_ref(
    error: &EvalAltResult,
    file: &str,
    session: &Session,
    engine: &Engine,
) -> Error {
    let mut trace = Vec::new();
    let (cause, at) = convert(error, file, session, engine, &mut trace);
    // `trace` was collected outermost first; show the innermost call first, like a stack.
    trace.reverse();
    cause.in_script(at, trace)
}

/// Converts one level; returns the error and, for host errors, the script position of the call.
fn convert(
    error: &EvalAltResult,
    file: &str,
    session: &Session,
    engine: &Engine,
    trace: &mut Vec<Frame>,
) -> (Error, Option<Location>) {
    let here = |pos: Position| location_in(file, session.source(file).as_deref(), pos);
    match error {
        EvalAltResult::ErrorInFunctionCall(function, source, inner, pos) => {
            let name = if function.starts_with("anon$") {
                "a closure".to_string()
            } else {
                format!("`{function}`")
            };
            trace.push(Frame {
                description: format!("in {name}, called from"),
                at: here(*pos),
            });
            let inner_file = if source.is_empty() {
                file.to_string()
            } else {
                source.clone()
            };
            convert(inner, &inner_file, session, engine, trace)
        }
        EvalAltResult::ErrorInModule(module, inner, pos) => {
            trace.push(Frame {
                description: format!("in module `{module}`, imported from"),
                at: here(*pos),
            });
            convert(inner, module, session, engine, trace)
        }
        EvalAltResult::ErrorParsing(kind, pos) => (
            Error::ScriptSyntax {
                message: lower_first(&kind.to_string()),
                at: here(*pos),
            },
            None,
        ),
        EvalAltResult::ErrorRuntime(value, pos) => {
            if let Some(host) = value.read_lock::<HostError>() {
                let cause = (*host.0).clone();
                return (cause, Some(here(*pos)));
            }
            let message = if value.is_string() {
                value.to_string()
            } else {
                format!("script threw {value}")
            };
            (
                Error::ScriptRuntime {
                    message,
                    at: Some(here(*pos)),
                    suggestion: None,
                },
                None,
            )
        }
        EvalAltResult::ErrorFunctionNotFound(signature, pos) => {
            (unknown_function(signature, engine, Some(here(*pos))), None)
        }
        EvalAltResult::ErrorVariableNotFound(name, pos) => (
            Error::UnknownVariable {
                name: name.clone(),
                at: Some(here(*pos)),
                suggestion: None,
            },
            None,
        ),
        EvalAltResult::ErrorModuleNotFound(module, pos) => (
            Error::ModuleNotFound {
                suggestion: did_you_mean(module, stdlib::names()),
                module: module.clone(),
                at: Some(here(*pos)),
            },
            None,
        ),
        EvalAltResult::ErrorTerminated(_, pos) => (
            Error::Interrupted {
                at: Some(here(*pos)),
            },
            None,
        ),
        EvalAltResult::ErrorTooManyOperations(pos) => (
            Error::LimitExceeded {
                limit: format!("more than {} operations", super::limits::MAX_OPERATIONS),
                at: Some(here(*pos)),
                hint: "is there a loop that never ends? `loop` and `while` need a way out".into(),
            },
            None,
        ),
        EvalAltResult::ErrorStackOverflow(pos) => (
            Error::LimitExceeded {
                limit: format!(
                    "calls nested deeper than {}",
                    super::limits::MAX_CALL_LEVELS
                ),
                at: Some(here(*pos)),
                hint: "is there a recursion without a base case?".into(),
            },
            None,
        ),
        EvalAltResult::ErrorDataTooLarge(what, pos) => (
            Error::LimitExceeded {
                limit: format!("{} is too large", lower_first(what)),
                at: Some(here(*pos)),
                hint: "strings are limited to 64 MiB and arrays to a million items".into(),
            },
            None,
        ),
        EvalAltResult::ErrorTooManyModules(pos) => (
            Error::LimitExceeded {
                limit: format!("more than {} modules imported", super::limits::MAX_MODULES),
                at: Some(here(*pos)),
                hint: "is a module importing itself?".into(),
            },
            None,
        ),
        EvalAltResult::ErrorMismatchDataType(expected, actual, pos) if is_shared_cell(actual) => (
            // Rhai names the lock around a variable a closure captured instead of its value.
            Error::ScriptRuntime {
                message: format!(
                    "expected {} here, but this value (a variable a closure captured) is not one",
                    simplify_types(expected)
                ),
                at: Some(here(*pos)),
                suggestion: None,
            },
            None,
        ),
        other => {
            let pos = other.position();
            let text = other.to_string();
            let text = match text.rfind(" (line ") {
                Some(cut) if text.ends_with(')') => &text[..cut],
                _ => text.as_str(),
            };
            (
                Error::ScriptRuntime {
                    message: lower_first(text),
                    at: Some(here(pos)),
                    suggestion: None,
                },
                None,
            )
        }
    }
}

/// Rhai says `lod (&str | ImmutableString | String)`; we say which function and what exists.
fn unknown_function(signature: &str, engine: &Engine, at: Option<Location>) -> Error {
    let name = signature
        .split([' ', '('])
        .next()
        .unwrap_or(signature)
        .trim();
    let arguments = signature[name.len()..].trim();
    // `f ()` is a call without arguments, not one with a unit.
    let shown = match arguments {
        "()" => format!("{name}()"),
        _ => format!("{name}{}", simplify_types(arguments)),
    };
    let known = known_function_names(engine);
    if let Some(overloads) = overloads_of(engine, name) {
        return Error::ScriptRuntime {
            message: format!(
                "`{name}` cannot take these arguments: called as `{shown}`, but it is {}",
                overloads.join(" or ")
            ),
            at,
            suggestion: None,
        };
    }
    Error::UnknownFunction {
        signature: shown,
        at,
        suggestion: did_you_mean(name, known.iter().map(String::as_str)),
    }
}

/// Every function name a script can call: host, standard library and stdlib modules.
pub fn known_function_names(engine: &Engine) -> Vec<String> {
    let mut names: Vec<String> = engine
        .gen_fn_signatures(true)
        .iter()
        .filter_map(|s| s.split('(').next().map(|n| n.trim().to_string()))
        .collect();
    for (module, text) in stdlib::MODULES {
        if let Ok(ast) = engine.compile(text) {
            names.extend(
                ast.iter_functions()
                    .map(|f| format!("{module}::{}", f.name)),
            );
        }
    }
    names.sort();
    names.dedup();
    names
}

fn overloads_of(engine: &Engine, name: &str) -> Option<Vec<String>> {
    let overloads: Vec<String> = engine
        .gen_fn_signatures(false)
        .into_iter()
        .filter(|s| s.split('(').next().map(str::trim) == Some(name))
        .map(|s| format!("`{}`", super::signature::clean_signature_text(&s)))
        .collect();
    // A name Rhai's own library has too (`len`, `filter`) takes more than these overloads.
    let everywhere = engine
        .gen_fn_signatures(true)
        .iter()
        .filter(|s| s.split('(').next().map(str::trim) == Some(name))
        .count();
    (!overloads.is_empty() && everywhere == overloads.len()).then_some(overloads)
}

/// Whether a type name is that of the cell Rhai keeps a captured (shared) variable in.
fn is_shared_cell(type_name: &str) -> bool {
    type_name.contains("RwLock<") || type_name.contains("RefCell<")
}

/// Rust type names as script authors know them.
fn simplify_types(arguments: &str) -> String {
    arguments
        .replace("&str | ImmutableString | String", "string")
        .replace("ImmutableString", "string")
        .replace("i64", "int")
        .replace("f64", "float")
        .replace("rhai::", "")
        .replace("()", "unit")
        .replace(' ', "")
        .replace(',', ", ")
}

/// A location in a file whose text may be known.
pub fn location_in(file: &str, text: Option<&str>, pos: Position) -> Location {
    let line = pos.line().unwrap_or(0);
    let column = pos.position().unwrap_or(1);
    match text {
        Some(text) if line > 0 => Location::in_source(file, text, line, column),
        _ => Location {
            file: file.to_string(),
            line,
            column,
            text: None,
        },
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        // Keep acronyms and names as they are ("BLOB", "EOF").
        Some(first) if chars.clone().next().is_some_and(|c| c.is_lowercase()) => {
            first.to_lowercase().collect::<String>() + chars.as_str()
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplifies_rust_type_names() {
        assert_eq!(
            simplify_types("(&str | ImmutableString | String, i64)"),
            "(string, int)"
        );
    }

    #[test]
    fn a_call_without_arguments_shows_empty_parentheses() {
        let message = unknown_function("keep ()", &rhai::Engine::new_raw(), None).message();
        assert!(message.contains("`keep()`"), "{message}");
    }

    #[test]
    fn a_captured_variable_of_the_wrong_type_is_named_as_such() {
        let engine = rhai::Engine::new();
        let error = *engine
            .eval::<rhai::Dynamic>("let x = \"text\"; let f = || x; if x { 1 } else { 2 }")
            .unwrap_err();
        assert!(format!("{error}").contains("Arc<"), "{error}");
        let runtime = crate::bootstrap::runtime().unwrap();
        let session = Session::new(
            runtime.handle().clone(),
            crate::session::Settings::default(),
            crate::session::Params::isolated(Default::default()),
            std::sync::Arc::new(crate::output::Output::buffer()),
        );
        let message = from_eval_error(error, "<input 1>", &session, &engine).message();
        assert_eq!(
            message,
            "expected bool here, but this value (a variable a closure captured) is not one"
        );
    }

    #[test]
    fn lowercases_sentences_not_acronyms() {
        assert_eq!(lower_first("Expecting ')'"), "expecting ')'");
        assert_eq!(lower_first("EOF reached"), "EOF reached");
    }
}
