mod sim_api;
mod sim_support;
