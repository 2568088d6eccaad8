//! The one error type of meshshift and its single rendering site.
//!
//! Every failure a user can see is an [`Error`]. Variants carry data, never preformatted text;
//! [`Error::render`] turns one into `error: …`, a `--> file:line:col` snippet with a caret, the
//! call trace, and a "did you mean" where a name lookup failed.

use std::fmt;

use crate::output::Style;
use crate::snippet::{Location, Snippet};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One frame of a script call trace, e.g. "in `shift`, called from" + where.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub description: String,
    pub at: Location,
}

/// Every user-facing failure.
#[derive(Debug, Clone)]
pub enum Error {
    /// `--set` got an argument without `=`.
    SetWithoutEquals { argument: String },
    /// `--set` got `=value` with nothing before it.
    SetWithoutName { argument: String },
    /// A runbook path does not exist.
    RunbookNotFound {
        path: String,
        suggestion: Option<String>,
    },
    /// A file could not be read.
    ReadFile { path: String, reason: String },
    /// A file could not be written.
    WriteFile { path: String, reason: String },
    /// A file is larger than meshshift accepts for that purpose.
    FileTooLarge { path: String, size: u64, limit: u64 },
    /// A runbook or stdlib file does not parse.
    ScriptSyntax { message: String, at: Location },
    /// A script failed at run time with a Rhai error.
    ScriptRuntime {
        message: String,
        at: Option<Location>,
        suggestion: Option<String>,
    },
    /// A script called a function that does not exist (with these argument types).
    UnknownFunction {
        signature: String,
        at: Option<Location>,
        suggestion: Option<String>,
    },
    /// A script used a variable that does not exist.
    UnknownVariable {
        name: String,
        at: Option<Location>,
        suggestion: Option<String>,
    },
    /// `import "x"` named no stdlib module and no file.
    ModuleNotFound {
        module: String,
        at: Option<Location>,
        suggestion: Option<String>,
    },
    /// A safety limit stopped the script (operations, call depth, data size).
    LimitExceeded {
        limit: String,
        at: Option<Location>,
        hint: String,
    },
    /// Ctrl-C (or a cancel) stopped the script.
    Interrupted { at: Option<Location> },
    /// The script called `fail(message)`.
    Failed { message: String },
    /// `param(name)` found no value and had no default.
    MissingParameter {
        name: String,
        suggestion: Option<String>,
    },
    /// A parameter's value could not be converted to the type of its default.
    BadParameter {
        name: String,
        value: String,
        expected: String,
    },
    /// A manifest file (YAML or JSON) does not parse.
    ManifestSyntax {
        file: String,
        document: usize,
        message: String,
        at: Option<Location>,
    },
    /// A manifest document parses but is not a usable Kubernetes object.
    ManifestObject {
        file: String,
        document: usize,
        message: String,
        at: Option<Location>,
    },
    /// `template(text, vars)` failed.
    Template { message: String, at: Location },
    /// A path expression (`spec.ports[0].port`) is malformed or cannot be followed.
    Path { path: String, message: String },
    /// A host function got an argument it cannot use.
    InvalidArgument { function: String, message: String },
    /// `cluster("x")` named a context the kubeconfig does not have.
    UnknownContext {
        context: String,
        suggestion: Option<String>,
        available: Vec<String>,
    },
    /// A cluster operation failed.
    Cluster {
        context: String,
        message: String,
        causes: Vec<String>,
    },
    /// An error raised inside a script: the host call that raised it (if any) and the script
    /// calls that led there, innermost first.
    InScript {
        cause: Box<Error>,
        at: Option<Location>,
        trace: Vec<Frame>,
    },
    /// A fleet file parses but is not a usable fleet, or does not parse.
    Fleet {
        file: String,
        message: String,
        at: Option<Location>,
    },
    /// Anything else, already worded for the user.
    Other { message: String },
}

impl Error {
    /// A stable identifier for the kind of error, for tests and machine-readable output.
    pub fn code(&self) -> &'static str {
        match self {
            Error::SetWithoutEquals { .. } | Error::SetWithoutName { .. } => "cli.set",
            Error::RunbookNotFound { .. } => "runbook.not_found",
            Error::ReadFile { .. } => "file.read",
            Error::WriteFile { .. } => "file.write",
            Error::FileTooLarge { .. } => "file.too_large",
            Error::ScriptSyntax { .. } => "script.syntax",
            Error::ScriptRuntime { .. } => "script.runtime",
            Error::UnknownFunction { .. } => "script.unknown_function",
            Error::UnknownVariable { .. } => "script.unknown_variable",
            Error::ModuleNotFound { .. } => "script.module_not_found",
            Error::LimitExceeded { .. } => "script.limit",
            Error::Interrupted { .. } => "script.interrupted",
            Error::Failed { .. } => "script.failed",
            Error::MissingParameter { .. } => "param.missing",
            Error::BadParameter { .. } => "param.invalid",
            Error::ManifestSyntax { .. } => "manifest.syntax",
            Error::ManifestObject { .. } => "manifest.object",
            Error::Template { .. } => "manifest.template",
            Error::Path { .. } => "manifest.path",
            Error::InvalidArgument { .. } => "host.argument",
            Error::UnknownContext { .. } => "cluster.unknown_context",
            Error::Cluster { .. } => "cluster",
            Error::InScript { cause, .. } => cause.code(),
            Error::Fleet { .. } => "fleet",
            Error::Other { .. } => "other",
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self.root() {
            Error::Interrupted { .. } => 130,
            _ => 1,
        }
    }

    /// The innermost error, skipping the script context wrappers.
    pub fn root(&self) -> &Error {
        match self {
            Error::InScript { cause, .. } => cause.root(),
            other => other,
        }
    }

    /// Wraps this error with the place in a script that raised it (`at`, for errors raised by
    /// host functions) and the chain of script calls that led there.
    pub fn in_script(self, at: Option<Location>, trace: Vec<Frame>) -> Error {
        if at.is_none() && trace.is_empty() {
            return self;
        }
        Error::InScript {
            cause: Box::new(self),
            at,
            trace,
        }
    }

    /// The one-line headline, without `error:`.
    pub fn message(&self) -> String {
        match self {
            Error::SetWithoutEquals { argument } => {
                format!("`--set {argument}` is missing `=`: expected `--set NAME=VALUE`")
            }
            Error::SetWithoutName { argument } => {
                format!("`--set {argument}` has no name before `=`: expected `--set NAME=VALUE`")
            }
            Error::RunbookNotFound { path, .. } => format!("runbook `{path}` not found"),
            Error::ReadFile { path, reason } => format!("cannot read `{path}`: {reason}"),
            Error::WriteFile { path, reason } => format!("cannot write `{path}`: {reason}"),
            // A stream (a device, a pipe) is read one byte past the limit, no further.
            Error::FileTooLarge { path, size, limit } if size == &(limit + 1) => format!(
                "`{path}` is larger than {} but manifests are limited to that",
                human_bytes(*limit)
            ),
            Error::FileTooLarge { path, size, limit } => format!(
                "`{path}` is {} but manifests are limited to {}",
                human_bytes(*size),
                human_bytes(*limit)
            ),
            Error::ScriptSyntax { message, .. } => format!("syntax error: {message}"),
            Error::ScriptRuntime { message, .. } => message.clone(),
            Error::UnknownFunction { signature, .. } => {
                format!("unknown function `{signature}`")
            }
            Error::UnknownVariable { name, .. } => format!("unknown variable `{name}`"),
            Error::ModuleNotFound { module, .. } => {
                format!("module `{module}` not found: it is neither in the stdlib nor a file")
            }
            Error::LimitExceeded { limit, .. } => format!("script stopped: {limit}"),
            Error::Interrupted { .. } => "interrupted".to_string(),
            Error::Failed { message } => message.clone(),
            Error::MissingParameter { name, .. } => format!("missing parameter `{name}`"),
            Error::BadParameter {
                name,
                value,
                expected,
            } => {
                format!("parameter `{name}` is `{value}`, expected {expected}")
            }
            Error::ManifestSyntax {
                file,
                document,
                message,
                ..
            } => {
                format!("invalid manifest `{file}` (document {document}): {message}")
            }
            Error::ManifestObject {
                file,
                document,
                message,
                ..
            } => {
                format!("invalid object in `{file}` (document {document}): {message}")
            }
            Error::Template { message, .. } => format!("template: {message}"),
            Error::Path { path, message } => format!("path `{path}`: {message}"),
            Error::InvalidArgument { function, message } => format!("{function}: {message}"),
            Error::UnknownContext { context, .. } => {
                format!("no context `{context}` in the kubeconfig")
            }
            Error::Cluster {
                context, message, ..
            } => format!("cluster `{context}`: {message}"),
            Error::InScript { cause, .. } => cause.message(),
            Error::Fleet { file, message, .. } => format!("invalid fleet `{file}`: {message}"),
            Error::Other { message } => message.clone(),
        }
    }

    fn own_location(&self) -> Option<&Location> {
        match self {
            Error::ScriptSyntax { at, .. } | Error::Template { at, .. } => Some(at),
            Error::ScriptRuntime { at, .. }
            | Error::UnknownFunction { at, .. }
            | Error::UnknownVariable { at, .. }
            | Error::ModuleNotFound { at, .. }
            | Error::LimitExceeded { at, .. }
            | Error::Interrupted { at }
            | Error::ManifestSyntax { at, .. }
            | Error::ManifestObject { at, .. }
            | Error::Fleet { at, .. } => at.as_ref(),
            _ => None,
        }
    }

    fn help(&self) -> Vec<String> {
        let did_you_mean = |s: &Option<String>| s.as_ref().map(|s| format!("did you mean `{s}`?"));
        match self {
            Error::RunbookNotFound { suggestion, .. }
            | Error::ScriptRuntime { suggestion, .. }
            | Error::UnknownFunction { suggestion, .. }
            | Error::UnknownVariable { suggestion, .. }
            | Error::ModuleNotFound { suggestion, .. } => {
                did_you_mean(suggestion).into_iter().collect()
            }
            Error::MissingParameter { name, suggestion } => {
                let mut help: Vec<String> = did_you_mean(suggestion).into_iter().collect();
                help.push(format!(
                    "set it with `--set {name}=VALUE` or the environment variable `{name}`"
                ));
                help
            }
            Error::LimitExceeded { hint, .. } => vec![hint.clone()],
            Error::UnknownContext {
                suggestion,
                available,
                ..
            } => {
                let mut help: Vec<String> = did_you_mean(suggestion).into_iter().collect();
                help.push(match available.len() {
                    0 => "the kubeconfig has no contexts".to_string(),
                    _ => format!("contexts: {}", available.join(", ")),
                });
                help
            }
            Error::Cluster { causes, .. } => {
                causes.iter().map(|c| format!("caused by: {c}")).collect()
            }
            Error::InScript { cause, .. } => cause.help(),
            _ => Vec::new(),
        }
    }

    /// Renders the error for a terminal (`style` decides colour), redacted.
    pub fn render(&self, style: &Style) -> String {
        let mut out = format!("{}: {}\n", style.error("error"), self.message());
        let (primary, call_site, trace) = match self {
            Error::InScript { cause, at, trace } => match cause.own_location() {
                Some(own) => (Some(own), at.as_ref(), trace.as_slice()),
                None => (at.as_ref(), None, trace.as_slice()),
            },
            other => (other.own_location(), None, &[][..]),
        };
        if let Some(location) = primary {
            out.push_str(&Snippet::new(location).render(style));
        }
        if let Some(at) = call_site {
            out.push_str(&format!(
                "{} called from {}\n",
                style.dim("  ="),
                at.short()
            ));
            out.push_str(&Snippet::new(at).render(style));
        }
        for frame in trace {
            out.push_str(&format!(
                "{} {} {}\n",
                style.dim("  ="),
                frame.description,
                frame.at.short()
            ));
        }
        for line in self.help() {
            out.push_str(&format!("{} {}\n", style.dim("  = help:"), line));
        }
        // Messages quote values and source lines: nothing secret leaves in them.
        crate::redact::text(&out)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        let at = match self {
            Error::InScript { cause, at, .. } => cause.own_location().or(at.as_ref()),
            other => other.own_location(),
        };
        if let Some(at) = at {
            write!(f, " ({})", at.short())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// `1.5 MiB`-style sizes for messages.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize, text: &str) -> Location {
        Location {
            file: "runbooks/x.rhai".into(),
            line,
            column,
            text: Some(text.into()),
        }
    }

    #[test]
    fn renders_snippet_with_caret_and_help() {
        let error = Error::UnknownFunction {
            signature: "lod(string)".into(),
            at: Some(at(3, 12, "let objs = lod(\"app.yaml\");")),
            suggestion: Some("load".into()),
        };
        assert_eq!(
            error.render(&Style::plain()),
            "error: unknown function `lod(string)`\n \
             --> runbooks/x.rhai:3:12\n  |\n3 | let objs = lod(\"app.yaml\");\n  |            ^^^\n  \
             = help: did you mean `load`?\n"
        );
    }

    #[test]
    fn host_error_points_at_its_own_file_and_the_call_site() {
        let yaml = Location {
            file: "app.yaml".into(),
            line: 2,
            column: 1,
            text: Some("\tkind: Pod".into()),
        };
        let error = Error::ManifestSyntax {
            file: "app.yaml".into(),
            document: 1,
            message: "tabs are not allowed".into(),
            at: Some(yaml),
        }
        .in_script(Some(at(1, 7, "load(\"app.yaml\")")), vec![]);
        let text = error.render(&Style::plain());
        assert!(
            text.starts_with("error: invalid manifest `app.yaml` (document 1)"),
            "{text}"
        );
        assert!(text.contains("--> app.yaml:2:1"), "{text}");
        assert!(text.contains("called from runbooks/x.rhai:1:7"), "{text}");
        assert_eq!(error.code(), "manifest.syntax");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(50 * 1024 * 1024), "50.0 MiB");
    }
}
