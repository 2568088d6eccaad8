//! Every script-visible function, registered from one list.
//!
//! Each host module is a Rhai plugin module (`#[export_module]`) whose `///` comments become the
//! reference shown by `meshshift doc` and the REPL. Functions are thin: they convert Rhai values,
//! call plain Rust code in [`crate::manifest`], [`crate::traffic`] or [`crate::cluster`], and
//! convert back. Errors are raised with [`crate::session::raise`].

pub mod cluster;
pub mod exec;
pub mod flow;
pub mod manifest;
pub mod objects;
pub mod traffic;

use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, Map, Module};

use crate::error::Error;
use crate::session::{HostError, raise};

/// One host module: its name in the reference and how to build it.
pub struct HostModule {
    pub name: &'static str,
    pub summary: &'static str,
    pub build: fn() -> Module,
}

/// The whole script API, in the order the reference lists it.
pub const MODULES: &[HostModule] = &[
    HostModule {
        name: "flow",
        summary: "parameters, steps, output, prompts and waiting",
        build: flow::module,
    },
    HostModule {
        name: "cluster",
        summary: "Kubernetes clusters: handles, reads, writes (through one entry point), waits",
        build: cluster::module,
    },
    HostModule {
        name: "exec",
        summary: "external programs such as the Azure CLI, only those allowed with --allow-exec",
        build: exec::module,
    },
    HostModule {
        name: "manifest",
        summary: "YAML and Kubernetes objects (pure: no cluster access)",
        build: manifest::module,
    },
    HostModule {
        name: "traffic",
        summary: "real HTTP probes and samples, attribution to clusters, split statistics, weighted routes",
        build: traffic::module,
    },
];

/// The engine for a session with every host function: [`crate::engine::build_engine`] plus
/// [`register`]. `resolver` decides whether imports are evaluated (run) or only compiled
/// (check).
pub fn build_engine(
    session: &std::sync::Arc<crate::session::Session>,
    resolver: crate::engine::Resolver,
) -> Engine {
    let mut engine = crate::engine::build_engine(session, resolver);
    register(&mut engine);
    engine
}

/// Registers every host module and host type into an engine.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<HostError>("Error")
        .register_get("message", |e: &mut HostError| e.0.message())
        .register_get("code", |e: &mut HostError| e.0.code().to_string())
        .register_fn("to_string", |e: &mut HostError| e.0.to_string())
        .register_fn("to_debug", |e: &mut HostError| e.0.to_string());
    cluster::register_types(engine);
    objects::register_types(engine);
    for module in MODULES {
        engine.register_global_module((module.build)().into());
    }
}

/// What host functions return: a value, or the error Rhai reports at the call.
pub(crate) type HostResult<T> = Result<T, Box<EvalAltResult>>;

/// An invalid-argument error that names the function.
pub(crate) fn invalid(function: &str, message: impl Into<String>) -> Box<EvalAltResult> {
    raise(Error::InvalidArgument {
        function: function.into(),
        message: message.into(),
    })
}

/// Options maps: every key must be known (a near miss gets a "did you mean").
pub(crate) fn check_keys(function: &str, map: &Map, known: &[&str]) -> HostResult<()> {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            let hint = crate::suggestion::did_you_mean(key, known.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(invalid(
                function,
                format!(
                    "unknown option `{key}`{hint}; options: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The `timeout` option of an options map, `default` (`"5m"`) when it is absent.
pub(crate) fn timeout_option(function: &str, map: &Map, default: &str) -> HostResult<Duration> {
    flow::duration_argument(
        function,
        map.get("timeout")
            .unwrap_or(&Dynamic::from(default.to_string())),
    )
}
