//! A simulated Kubernetes API server (work in progress).

pub mod fieldset;
pub mod managed;
pub mod object;
pub mod patch;
pub mod registry;
pub mod resource;
pub mod schema;
pub mod selector;
pub mod status;
pub mod store;
pub mod validation;
