mod sim_api;
mod sim_differential;
mod sim_kube_rs;
mod sim_kubectl;
mod sim_support;
