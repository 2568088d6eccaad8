//! Traffic: weighted routes, sampling real HTTP responses, attributing them to clusters, and
//! testing the observed split. The statistics, route builders and extractors are pure; HTTP
//! lives in [`http`]; reading gateway pods' Envoys through the API server in `cluster::gateway`.

pub mod attribution;
pub mod chart;
pub mod extract;
pub mod http;
pub mod planned;
pub mod propagation;
pub mod routes;
pub mod split;
pub mod stats;
