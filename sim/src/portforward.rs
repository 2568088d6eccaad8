//! The pods' `portforward` and `proxy` subresources, for the gateway pods' Envoys: the admin
//! interface (port 15000, `/config_dump`, `/stats/prometheus`), which listens on the pod's
//! localhost and so is reached through `pods/portforward`, and Istio's Prometheus listener
//! (port 15090, `/stats/prometheus`), which listens on the pod IP and so is reached through
//! `pods/proxy` as well.
//!
//! `portforward` follows kube-apiserver and the kubelet's WebSocket port forwarding
//! (`k8s.io/kubelet/pkg/cri/streaming/portforward/websocket.go`): the ports come from the
//! `ports` query parameter; the subprotocol is `v4.channel.k8s.io` (or none, binary either
//! way); each port has a data channel (`2i`) and an error channel (`2i + 1`), each message
//! starts with its channel byte, and the first message of every channel carries the port
//! number as two little-endian bytes. A port nothing listens on gets its error on the error
//! channel. kubectl speaks SPDY (tunnelled over WebSocket since v1.31) for port forwarding,
//! which this server does not; kube-rs' `Api::portforward` speaks this protocol.
//!
//! `proxy` follows kube-apiserver's pod proxy: `pods/<name>:<port>/proxy/<path>`; a port
//! nothing answers on gets `503` with `error trying to reach service`.

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self as ws, protocol::Role};

use super::handler::Body;
use super::mesh::envoy;
use super::mesh::proxies::Proxies;
use super::mesh::snapshot::{Key, PodInfo};
use super::object::labels;
use super::server::Shared;
use super::status::ApiError;

/// Envoy's admin port (Istio binds it to the pod's localhost).
pub const ADMIN_PORT: u16 = 15000;
/// Istio's merged Prometheus port on the pod IP.
pub const STATS_PORT: u16 = 15090;

/// The subprotocols served, preferred first: binary channels.
const PROTOCOLS: [&str; 1] = ["v4.channel.k8s.io"];

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// The stored pod, or `pods "<name>" not found`.
fn stored_pod(shared: &Shared, namespace: &str, name: &str) -> Result<Value, ApiError> {
    let state = shared.lock();
    let rt = state
        .registry
        .by_path("", "v1", "pods")
        .ok_or_else(ApiError::unknown_resource)?;
    let target = super::cluster::Target {
        rt,
        version: "v1".into(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        subresource: super::cluster::Subresource::None,
    };
    state.get(&target)
}

/// What answers on a pod's port: its Envoy's admin or stats endpoints, or nothing.
#[derive(Clone)]
struct PodPorts {
    proxies: Arc<Proxies>,
    key: Key,
    /// The pod as it is stored (its labels, when its Envoy has no configuration naming it).
    info: PodInfo,
    gateway: bool,
}

impl PodPorts {
    fn of(shared: &Shared, pod: &Value) -> PodPorts {
        let text = |pointer: &str| {
            pod.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let key = (text("/metadata/namespace"), text("/metadata/name"));
        let gateway = text("/spec/containers/0/name") == "istio-proxy";
        PodPorts {
            proxies: shared.proxies.clone(),
            info: PodInfo {
                namespace: key.0.clone(),
                name: key.1.clone(),
                labels: labels(pod),
                ready: true,
                gateway_proxy: gateway,
                propagation: None,
            },
            key,
            gateway,
        }
    }

    /// Whether something listens on `port` (as reached from the pod's own network namespace).
    fn listens(&self, port: u16) -> bool {
        self.gateway && (port == ADMIN_PORT || port == STATS_PORT)
    }

    /// Envoy's answer to `GET path` on `port`.
    fn answer(&self, port: u16, path: &str) -> (u16, &'static str, String) {
        match (port, path) {
            (ADMIN_PORT, "/config_dump") => {
                let pushed = self.proxies.pushed(&self.key);
                let document = match pushed {
                    Some(pushed) => {
                        let info = pushed
                            .snapshot
                            .pods
                            .iter()
                            .find(|p| p.namespace == self.key.0 && p.name == self.key.1)
                            .unwrap_or(&self.info);
                        envoy::config_dump(
                            &pushed.snapshot,
                            info,
                            &pushed.version.to_string(),
                            &pushed.written,
                        )
                    }
                    None => serde_json::json!({"configs": [
                        {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump"}]}),
                };
                (
                    200,
                    "application/json",
                    serde_json::to_string_pretty(&document).unwrap_or_default(),
                )
            }
            (ADMIN_PORT | STATS_PORT, "/stats/prometheus") => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                envoy::prometheus(&self.proxies.counters(&self.key)),
            ),
            _ => (404, "text/plain", "invalid path\n".to_string()),
        }
    }
}

/// `GET /api/v1/namespaces/<ns>/pods/<name>:<port>/proxy/<path>`.
pub fn proxy(
    shared: &Shared,
    namespace: &str,
    pod: &str,
    port: Option<&str>,
    path: &str,
    method: &http::Method,
) -> Result<Response<Body>, ApiError> {
    let stored = stored_pod(shared, namespace, pod)?;
    let ports = PodPorts::of(shared, &stored);
    let ip = stored
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let number = match port {
        Some(port) => port.parse::<u16>().map_err(|_| {
            ApiError::service_unavailable(format!(
                "error trying to reach service: no such port {port:?} on pod {pod}"
            ))
        })?,
        None => stored
            .pointer("/spec/containers/0/ports/0/containerPort")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(80),
    };
    // The admin port listens on the pod's localhost: from the API server it refuses.
    if number != STATS_PORT || !ports.listens(number) {
        return Err(ApiError::service_unavailable(format!(
            "error trying to reach service: dial tcp {ip}:{number}: connect: connection refused"
        )));
    }
    if method != http::Method::GET && method != http::Method::HEAD {
        return Err(ApiError::method_not_allowed());
    }
    let (status, content_type, body) = ports.answer(number, path);
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

fn parse_ports(query: Option<&str>) -> Result<Vec<u16>, ApiError> {
    let mut ports = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key != "ports" {
            continue;
        }
        for part in value.split(',').filter(|p| !p.is_empty()) {
            let port = part.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                ApiError::bad_request(format!("invalid port {part:?}: must be 1-65535"))
            })?;
            ports.push(port);
        }
    }
    if ports.is_empty() {
        return Err(ApiError::bad_request(
            "query parameter \"port\" is required",
        ));
    }
    Ok(ports)
}

/// `/api/v1/namespaces/<ns>/pods/<name>/portforward?ports=<p>,...`: upgrades to a WebSocket
/// and forwards each port.
pub fn port_forward(
    shared: &Shared,
    namespace: &str,
    pod: &str,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let stored = stored_pod(shared, namespace, pod)?;
    let ports = parse_ports(request.uri().query())?;
    let headers = request.headers();
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (true, Some(key)) = (upgrade, key) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let protocol = match offered.iter().find(|p| PROTOCOLS.contains(&p.as_str())) {
        Some(protocol) => Some(protocol.clone()),
        None if offered.is_empty() => None,
        None => {
            return Err(ApiError::bad_request(format!(
                "requested protocol(s) are not supported: {offered:?}; supports {PROTOCOLS:?}"
            )));
        }
    };
    let pod_ports = PodPorts::of(shared, &stored);
    let upgrading = hyper::upgrade::on(&mut request);
    let shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrading.await else {
            return;
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = forward(socket, ports, pod_ports) => {}
        }
    });
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&ws::handshake::derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol
        && let Ok(value) = HeaderValue::from_str(&protocol)
    {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    Ok(response)
}

fn framed(channel: u8, data: &[u8]) -> ws::Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(data);
    ws::Message::binary(bytes)
}

/// Serves Envoy's HTTP endpoints for `port` on one end of an in-memory connection.
fn connect(ports: &PodPorts, port: u16) -> tokio::io::DuplexStream {
    let (client, server) = tokio::io::duplex(256 * 1024);
    let ports = ports.clone();
    tokio::spawn(async move {
        let service = service_fn(move |request: Request<Incoming>| {
            let (status, content_type, body) = ports.answer(port, request.uri().path());
            async move {
                Response::builder()
                    .status(status)
                    .header(header::CONTENT_TYPE, content_type)
                    .header("server", "envoy")
                    .body(Full::new(Bytes::from(body)))
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server), service)
            .await;
    });
    client
}

async fn forward<S>(socket: WebSocketStream<S>, ports: Vec<u16>, pod: PodPorts)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = socket.split();
    let (outgoing, mut to_send) = tokio::sync::mpsc::channel::<ws::Message>(64);
    let mut writers = Vec::with_capacity(ports.len());
    for (index, port) in ports.iter().enumerate() {
        let data = (2 * index) as u8;
        let error = data + 1;
        let prefix = port.to_le_bytes();
        if sink.send(framed(data, &prefix)).await.is_err()
            || sink.send(framed(error, &prefix)).await.is_err()
        {
            return;
        }
        if !pod.listens(*port) {
            let message = format!(
                "error forwarding port {port} to pod {}, uid : failed to connect to localhost:{port} inside namespace of pod: connection refused",
                pod.key.1
            );
            if sink.send(framed(error, message.as_bytes())).await.is_err() {
                return;
            }
            writers.push(None);
            continue;
        }
        let (mut reader, writer) = tokio::io::split(connect(&pod, *port));
        writers.push(Some(writer));
        let outgoing = outgoing.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match reader.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if outgoing.send(framed(data, &buffer[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(outgoing);
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(ws::Message::Binary(bytes))) if !bytes.is_empty() => {
                    let channel = usize::from(bytes[0]);
                    if channel % 2 == 0
                        && let Some(Some(writer)) = writers.get_mut(channel / 2)
                        && writer.write_all(&bytes[1..]).await.is_err()
                    {
                        writers[channel / 2] = None;
                    }
                }
                Some(Ok(ws::Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = to_send.recv() => match out {
                Some(message) => if sink.send(message).await.is_err() { break },
                None => {
                    // Every pod connection closed: so does the stream.
                    let _ = sink.send(ws::Message::Close(None)).await;
                    break;
                }
            },
        }
    }
}
