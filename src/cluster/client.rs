//! The HTTP client under the cluster layer: kube's own TLS configuration and auth layers over a
//! connector that offers HTTP/2 as well as HTTP/1.1. kube's default client speaks HTTP/1.1
//! only, so every concurrent request (discovery fetches each group version at once, batches are
//! applied 32 at a time) opens a TLS connection of its own; over HTTP/2 they share one.

use hyper_rustls::FixedServerNameResolver;
use hyper_util::client::legacy::connect::HttpConnector;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt;
use tower::{BoxError, ServiceBuilder};

/// A kube client for `config` that negotiates HTTP/2 by ALPN and falls back to HTTP/1.1.
pub fn build(config: kube::Config) -> Result<kube::Client, String> {
    let tls = config.rustls_client_config().map_err(|e| e.to_string())?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(config.connect_timeout);
    let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = name
            .clone()
            .try_into()
            .map_err(|e| format!("invalid tls-server-name `{name}`: {e}"))?;
        builder = builder.with_server_name_resolver(FixedServerNameResolver::new(name));
    }
    let https = builder.enable_http1().enable_http2().wrap_connector(http);
    // One connection carries every request, so a peer that vanished without a reset (a NAT or
    // load balancer dropping the flow) must be noticed: ping while requests are open.
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .http2_keep_alive_interval(Duration::from_secs(15))
        .http2_keep_alive_timeout(Duration::from_secs(10))
        .build(https);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(|e| e.to_string())?)
        .layer(config.extra_headers_layer().map_err(|e| e.to_string())?)
        .map_err(BoxError::from)
        .service(client);
    Ok(kube::Client::new(service, config.default_namespace))
}
