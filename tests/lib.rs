//! The one integration-test binary: shared helpers, then one module per feature.

mod test;

mod bad_input;
mod cli;
mod doc;
mod examples;
mod fixtures_istio;
mod manifest;
mod stdlib;
