//! The HTTPS listener: TLS with ALPN (HTTP/2 and HTTP/1.1), one task per connection.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::server::Shared;

/// Accepts connections until shutdown.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, shared: Arc<Shared>) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = tokio::task::JoinSet::new();
    let mut listener = Some(listener);
    loop {
        // An unreachable server closes its socket: connections are refused, as when
        // kube-apiserver is down, and served again on the same address afterwards.
        if let Some(outage) = shared.fault.unreachable_remaining() {
            listener = None;
            tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                _ = tokio::time::sleep(outage) => {}
                _ = shared.fault.changed() => {}
            }
            continue;
        }
        let Some(open) = listener.as_ref() else {
            match TcpListener::bind(shared.address).await {
                Ok(bound) => listener = Some(bound),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
            continue;
        };
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = shared.fault.changed() => continue,
            accepted = open.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of file descriptors or similar: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        connections.spawn(async move {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            let Ok(Ok(tls_stream)) = handshake.await else {
                return;
            };
            let service_shared = shared.clone();
            let service =
                service_fn(move |request| super::handler::handle(service_shared.clone(), request));
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http2().max_concurrent_streams(1000);
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = shared.shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
                }
            }
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}
