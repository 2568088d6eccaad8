//! meshshift: runs Kubernetes service-mesh migrations as editable Rhai runbooks.
//!
//! The binary is a thin wrapper around [`run`]. The layers, from the top:
//! - [`arguments`] (clap) and [`subcommand`]: the command line;
//! - [`engine`]: the Rhai engine (limits, module resolution, parameters, errors, Ctrl-C);
//! - [`host`]: every script-visible function, registered from one list;
//! - [`manifest`], [`traffic`]: pure logic the host functions call;
//! - [`cluster`]: Kubernetes access over kube-rs, every write through one entry point;
//! - [`repl`]: the interactive session on the same engine;
//! - [`sim`]: the simulated clusters, the `meshshift-sim` crate, which does not depend on
//!   this one (nothing else knows they exist).

pub mod arguments;
pub mod bootstrap;
pub mod cluster;
pub mod doc;
pub mod engine;
pub mod error;
pub mod fleet;
pub mod host;
pub mod journal;
pub mod manifest;
pub mod output;
pub mod plan;
pub mod redact;
pub mod repl;
pub mod report;
pub mod run;
pub mod runbook;
pub mod session;
pub mod snippet;
pub mod stdlib;
pub mod subcommand;
pub mod suggestion;
pub mod traffic;

pub use error::{Error, Result};
pub use meshshift_sim as sim;
pub use meshshift_support::{duration, files};
pub use run::run;
