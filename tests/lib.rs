mod sim_api;
mod sim_kubectl;
mod sim_support;
