//! The one integration-test binary: shared helpers, then one module per feature.

mod cluster_support;
mod http_server;
mod pty;
mod sim_env_support;
mod sim_support;
mod test;

mod bad_input;
mod cli;
mod cluster;
mod cluster_identity;
mod cluster_transport;
mod doc;
mod examples;
mod fixtures_istio;
mod layers;
mod manifest;
mod migration;
mod plan;
mod repl;
mod run_journal;
mod runbooks;
mod scenario_shop;
mod sim_api;
mod sim_differential;
mod sim_guide;
mod sim_injection;
mod sim_kube_rs;
mod sim_kubectl;
mod sim_mesh;
mod sim_mesh_rules;
mod sim_runbook;
mod sim_workloads;
mod stdlib;
mod traffic;
mod traffic_sim;
