//! A simulated Kubernetes API server (work in progress).

pub mod admission;
pub mod cluster;
pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod fault;
pub mod fieldset;
pub mod handler;
pub mod http;
pub mod kubeconfig;
pub mod managed;
pub mod negotiate;
pub mod object;
pub mod openapi;
pub mod patch;
pub mod registry;
pub mod resource;
pub mod router;
pub mod schema;
pub mod selector;
pub mod server;
pub mod snapshot;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod validation;
pub mod watch;

pub use server::{ApiServer, ApiServerConfig, ApiServerHandle, Sim, SimError};
