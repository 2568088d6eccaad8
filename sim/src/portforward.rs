//! The pods' `portforward` and `proxy` subresources, for the gateway pods' Envoys: the admin
//! interface (port 15000, `/config_dump`, `/stats/prometheus`), which listens on the pod's
//! localhost and so is reached through `pods/portforward`, and Istio's Prometheus listener
//! (port 15090, `/stats/prometheus`), which listens on the pod IP and so is reached through
//! `pods/proxy` as well.
//!
//! `portforward` speaks the three protocols kube-apiserver and the kubelet serve
//! (`k8s.io/kubelet/pkg/cri/streaming/portforward`):
//! - WebSocket channels (`websocket.go`), as kube-rs' `Api::portforward` speaks them: the
//!   ports come from the `ports` query parameter; the subprotocol is `v4.channel.k8s.io` (or
//!   none, binary either way); each port has a data channel (`2i`) and an error channel
//!   (`2i + 1`), each message starts with its channel byte, and the first message of every
//!   channel carries the port number as two little-endian bytes.
//! - SPDY/3.1 (`httpstream.go`), as kubectl speaks it: `Upgrade: SPDY/3.1` with
//!   `X-Stream-Protocol-Version: portforward.k8s.io`, answered `101`. The client opens a pair
//!   of streams per forwarded connection, headers `streamtype` (`error` or `data`), `port` and
//!   `requestid`; the data stream carries the connection's bytes, the error stream the
//!   kubelet's error text.
//! - The same SPDY byte stream tunnelled in binary WebSocket messages, subprotocol
//!   `SPDY/3.1+portforward.k8s.io` (KEP-4006), which kubectl tries first since v1.31.
//!
//! A port nothing listens on gets the kubelet's error on the error channel or stream.
//!
//! `proxy` follows kube-apiserver's pod proxy: `pods/<name>:<port>/proxy/<path>`; a port
//! nothing answers on gets `503` with `error trying to reach service`.

mod spdy;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self as ws, protocol::Role};
use tokio_util::sync::CancellationToken;

use super::handler::Body;
use super::mesh::envoy;
use super::mesh::proxies::Proxies;
use super::mesh::snapshot::{Key, PodInfo};
use super::object::labels;
use super::server::Shared;
use super::status::ApiError;
use spdy::{Decoder, Encoder, Frame, Headers};

/// Envoy's admin port (Istio binds it to the pod's localhost).
pub const ADMIN_PORT: u16 = 15000;
/// Istio's merged Prometheus port on the pod IP.
pub const STATS_PORT: u16 = 15090;

/// The WebSocket subprotocols served: SPDY tunnelled (kubectl), binary channels (kube-rs).
const PROTOCOLS: [&str; 2] = [TUNNEL_PROTOCOL, "v4.channel.k8s.io"];
/// The SPDY port-forward protocol (`X-Stream-Protocol-Version`).
const SPDY_PROTOCOL: &str = "portforward.k8s.io";
/// kubectl's WebSocket subprotocol for SPDY tunnelled in binary messages.
const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

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

/// Comma-separated values of every `name` header, trimmed.
fn header_list(headers: &http::HeaderMap, name: impl header::AsHeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn upgrade_offers(headers: &http::HeaderMap, protocol: &str) -> bool {
    let connection = header_list(headers, header::CONNECTION);
    connection.iter().any(|v| v.eq_ignore_ascii_case("upgrade"))
        && header_list(headers, header::UPGRADE)
            .iter()
            .any(|v| v.eq_ignore_ascii_case(protocol))
}

fn switching(upgrade: &'static str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static(upgrade));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    response
}

/// `/api/v1/namespaces/<ns>/pods/<name>/portforward`: upgrades to SPDY/3.1, or to a
/// WebSocket carrying SPDY or channels (`?ports=<p>,...`), and forwards the ports.
pub fn port_forward(
    shared: &Shared,
    namespace: &str,
    pod: &str,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let stored = stored_pod(shared, namespace, pod)?;
    let pod_ports = PodPorts::of(shared, &stored);
    let headers = request.headers();
    if upgrade_offers(headers, "SPDY/3.1") {
        // httpstream.Handshake: the client names the protocols it speaks.
        let offered = header_list(headers, "x-stream-protocol-version");
        if offered.is_empty() {
            return Err(ApiError::bad_request(
                "unable to upgrade: X-Stream-Protocol-Version is required",
            ));
        }
        if !offered.iter().any(|p| p == SPDY_PROTOCOL) {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{SPDY_PROTOCOL}]",
                    offered.join(" ")
                ),
            ));
        }
        let upgrading = hyper::upgrade::on(&mut request);
        let shutdown = shared.shutdown.clone();
        tokio::spawn(async move {
            let Ok(upgraded) = upgrading.await else {
                return;
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = serve_spdy(TokioIo::new(upgraded), pod_ports) => {}
            }
        });
        let mut response = switching("SPDY/3.1");
        response.headers_mut().insert(
            "x-stream-protocol-version",
            HeaderValue::from_static(SPDY_PROTOCOL),
        );
        return Ok(response);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (true, Some(key)) = (upgrade_offers(headers, "websocket"), key) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let offered = header_list(headers, header::SEC_WEBSOCKET_PROTOCOL);
    // The client's first choice the server speaks (wsstream's handshake).
    let protocol = match offered
        .iter()
        .find_map(|o| PROTOCOLS.iter().find(|p| **p == o.as_str()))
    {
        Some(protocol) => Some(*protocol),
        None if offered.is_empty() => None,
        None => {
            return Err(ApiError::bad_request(format!(
                "requested protocol(s) are not supported: {offered:?}; supports {PROTOCOLS:?}"
            )));
        }
    };
    // SPDY names its ports in each stream's headers; channels need them up front.
    let tunnel = protocol == Some(TUNNEL_PROTOCOL);
    let ports = if tunnel {
        Vec::new()
    } else {
        parse_ports(request.uri().query())?
    };
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
            _ = async {
                if tunnel {
                    spdy_tunnel(socket, pod_ports).await
                } else {
                    forward(socket, ports, pod_ports).await
                }
            } => {}
        }
    });
    let mut response = switching("websocket");
    let headers = response.headers_mut();
    if let Ok(accept) = HeaderValue::from_str(&ws::handshake::derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol),
        );
    }
    Ok(response)
}

/// The kubelet's error for a port nothing in the pod listens on (the CRI streaming server
/// passes the sandbox and no uid).
fn refused(pod: &PodPorts, port: u16) -> String {
    format!(
        "error forwarding port {port} to pod {}, uid : failed to connect to localhost:{port} inside namespace of pod: connection refused",
        pod.key.1
    )
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
            let message = refused(&pod, *port);
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

/// Streams through the kubelet's port forwarding: which side of a request a stream is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StreamType {
    Error,
    Data,
}

/// Where a stream's bytes from the client go.
enum ToPod {
    /// Its request is not complete yet: kept until the pod's port is connected, as
    /// spdystream keeps a stream's data until it is read.
    Waiting {
        pending: Vec<u8>,
        fin: bool,
    },
    Open(tokio::io::WriteHalf<tokio::io::DuplexStream>),
    /// An error stream, or a data stream the client half-closed or whose port refused.
    Closed,
}

/// A stream the client opened and has not reset.
struct OpenStream {
    to_pod: ToPod,
    /// Stops the pod-to-client copy when the client resets the data stream.
    stop: Option<CancellationToken>,
    /// The other stream of the same request.
    partner: Option<u32>,
}

/// The streams of one request seen so far: data (with its port) and error.
#[derive(Default)]
struct StreamPair {
    data: Option<(u32, u16)>,
    error: Option<u32>,
}

/// One SPDY connection's port forwarding, as the kubelet's `httpStreamHandler` runs it.
struct SpdySession {
    out: mpsc::Sender<Frame>,
    pod: PodPorts,
    /// Requests still waiting for their second stream.
    pairs: HashMap<String, StreamPair>,
    streams: HashMap<u32, OpenStream>,
    last_stream: u32,
    going_away: bool,
    cancel: CancellationToken,
}

/// The kubelet's checks of a new stream (`httpStreamReceived`): its type and port.
fn stream_headers(headers: &Headers) -> Result<(StreamType, u16), String> {
    let port = headers
        .get("port")
        .filter(|p| !p.is_empty())
        .ok_or("\"port\" header is required")?;
    let port = port
        .parse::<u16>()
        .map_err(|e| format!("unable to parse {port:?} as a port: {e}"))?;
    if port < 1 {
        return Err(format!("port \"{port}\" must be > 0"));
    }
    match headers.get("streamtype").filter(|t| !t.is_empty()) {
        None => Err("\"streamtype\" header is required".to_string()),
        Some("error") => Ok((StreamType::Error, port)),
        Some("data") => Ok((StreamType::Data, port)),
        Some(other) => Err(format!("invalid stream type {other:?}")),
    }
}

impl SpdySession {
    async fn send(&self, frame: Frame) {
        let _ = self.out.send(frame).await;
    }

    async fn data(&self, stream: u32, bytes: impl Into<Bytes>, fin: bool) {
        self.send(Frame::Data {
            stream,
            flags: if fin { spdy::FLAG_FIN } else { 0 },
            data: bytes.into(),
        })
        .await;
    }

    /// Acts on one frame from the client.
    async fn handle(&mut self, frame: Frame) {
        match frame {
            Frame::SynStream {
                stream, headers, ..
            } => self.open(stream, &headers).await,
            Frame::Data {
                stream,
                flags,
                data,
            } => {
                let Some(open) = self.streams.get_mut(&stream) else {
                    return;
                };
                let fin = flags & spdy::FLAG_FIN != 0;
                match &mut open.to_pod {
                    ToPod::Waiting { pending, fin: done } => {
                        pending.extend_from_slice(&data);
                        *done |= fin;
                    }
                    ToPod::Open(to_pod) => {
                        let failed = to_pod.write_all(&data).await.is_err();
                        if fin && !failed {
                            let _ = to_pod.shutdown().await;
                        }
                        if fin || failed {
                            open.to_pod = ToPod::Closed;
                        }
                    }
                    ToPod::Closed => {}
                }
            }
            Frame::RstStream { stream, .. } => {
                let Some(open) = self.streams.remove(&stream) else {
                    return;
                };
                if let Some(stop) = open.stop {
                    stop.cancel();
                }
                if let Some(partner) = open.partner {
                    self.streams.remove(&partner);
                }
            }
            // spdystream answers the peer's pings (odd ids from a client) with the same frame.
            Frame::Ping { id } if id % 2 == 1 => self.send(Frame::Ping { id }).await,
            Frame::GoAway { .. } => self.going_away = true,
            // No flow control (spdystream has none), settings and header updates change nothing.
            _ => {}
        }
    }

    async fn open(&mut self, stream: u32, headers: &Headers) {
        // A client's streams have odd ids; after GOAWAY no new stream is taken.
        let refusal = if stream.is_multiple_of(2) {
            Some(spdy::PROTOCOL_ERROR)
        } else if self.going_away {
            Some(spdy::REFUSED_STREAM)
        } else {
            None
        };
        if let Some(status) = refusal {
            return self.send(Frame::RstStream { stream, status }).await;
        }
        if self.streams.contains_key(&stream) {
            return self
                .send(Frame::RstStream {
                    stream,
                    status: spdy::STREAM_IN_USE,
                })
                .await;
        }
        let (kind, port) = match stream_headers(headers) {
            Ok(checked) => checked,
            Err(why) => {
                tracing::debug!(stream, why, "port-forward stream rejected");
                return self
                    .send(Frame::RstStream {
                        stream,
                        status: spdy::CANCEL,
                    })
                    .await;
            }
        };
        self.send(Frame::SynReply {
            stream,
            flags: 0,
            headers: Headers::default(),
        })
        .await;
        self.last_stream = self.last_stream.max(stream);
        // Clients older than request ids pair consecutive streams (the kubelet's fallback).
        let request = match headers.get("requestid") {
            Some(id) if !id.is_empty() => id.to_string(),
            _ if kind == StreamType::Data => stream.saturating_sub(2).to_string(),
            _ => stream.to_string(),
        };
        self.streams.insert(
            stream,
            OpenStream {
                to_pod: match kind {
                    StreamType::Data => ToPod::Waiting {
                        pending: Vec::new(),
                        fin: false,
                    },
                    StreamType::Error => ToPod::Closed,
                },
                stop: None,
                partner: None,
            },
        );
        let pair = self.pairs.entry(request.clone()).or_default();
        // The first stream of each type stays the request's (the kubelet's `add`).
        let taken = match kind {
            StreamType::Data if pair.data.is_none() => {
                pair.data = Some((stream, port));
                false
            }
            StreamType::Error if pair.error.is_none() => {
                pair.error = Some(stream);
                false
            }
            _ => true,
        };
        if taken {
            let name = if kind == StreamType::Data {
                "data"
            } else {
                "error"
            };
            if let Some(error) = pair.error {
                let message = format!(
                    "error processing stream for request {request}: {name} stream already assigned"
                );
                self.data(error, message, false).await;
            }
            return;
        }
        if let StreamPair {
            data: Some((data, port)),
            error: Some(error),
        } = *pair
        {
            self.pairs.remove(&request);
            self.forward(data, error, port).await;
        }
    }

    /// Connects a complete request to the pod's port, or writes why not on its error stream.
    async fn forward(&mut self, data: u32, error: u32, port: u16) {
        let waiting = self
            .streams
            .get_mut(&data)
            .map(|open| std::mem::replace(&mut open.to_pod, ToPod::Closed));
        let Some(ToPod::Waiting { pending, fin }) = waiting else {
            return;
        };
        if !self.pod.listens(port) {
            self.data(error, refused(&self.pod, port), false).await;
            self.data(data, Bytes::new(), true).await;
            self.data(error, Bytes::new(), true).await;
            return;
        }
        let (mut from_pod, mut to_pod) = tokio::io::split(connect(&self.pod, port));
        let to_pod = if to_pod.write_all(&pending).await.is_err() {
            ToPod::Closed
        } else if fin {
            let _ = to_pod.shutdown().await;
            ToPod::Closed
        } else {
            ToPod::Open(to_pod)
        };
        let stop = self.cancel.child_token();
        if let Some(open) = self.streams.get_mut(&data) {
            open.to_pod = to_pod;
            open.stop = Some(stop.clone());
            open.partner = Some(error);
        }
        if let Some(open) = self.streams.get_mut(&error) {
            open.partner = Some(data);
        }
        let out = self.out.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                let read = tokio::select! {
                    _ = stop.cancelled() => return,
                    read = from_pod.read(&mut buffer) => read,
                };
                let frame = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => Frame::Data {
                        stream: data,
                        flags: 0,
                        data: Bytes::copy_from_slice(&buffer[..n]),
                    },
                };
                if out.send(frame).await.is_err() {
                    return;
                }
            }
            // The kubelet closes both streams once the pod's side ends.
            for stream in [data, error] {
                let fin = Frame::Data {
                    stream,
                    flags: spdy::FLAG_FIN,
                    data: Bytes::new(),
                };
                if out.send(fin).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Serves kubectl's SPDY/3.1 port forwarding on `io` until the client goes away.
async fn serve_spdy<S>(io: S, pod: PodPorts)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(io);
    let (out, mut outgoing) = mpsc::channel::<Frame>(64);
    // One writer owns the header compressor: header blocks must reach the wire in the order
    // they were compressed.
    let writing = tokio::spawn(async move {
        let mut encoder = Encoder::new();
        while let Some(frame) = outgoing.recv().await {
            let Ok(bytes) = encoder.encode(&frame) else {
                break;
            };
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
            if outgoing.is_empty() && writer.flush().await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut session = SpdySession {
        out,
        pod,
        pairs: HashMap::new(),
        streams: HashMap::new(),
        last_stream: 0,
        going_away: false,
        cancel: CancellationToken::new(),
    };
    let mut decoder = Decoder::new();
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    'connection: loop {
        match reader.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(frame)) => session.handle(frame).await,
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(%error, "port-forward connection closed");
                    let last_good = session.last_stream;
                    session
                        .send(Frame::GoAway {
                            last_good,
                            status: spdy::PROTOCOL_ERROR,
                        })
                        .await;
                    break 'connection;
                }
            }
        }
    }
    if let Err(error) = Decoder::finish(&buffer) {
        tracing::debug!(%error, "port-forward connection cut");
    }
    // The connection is gone: so are its forwarded connections.
    session.cancel.cancel();
    drop(session);
    let _ = writing.await;
}

/// kubectl's tunnel: the SPDY byte stream in binary WebSocket messages, either way.
async fn spdy_tunnel<S>(socket: WebSocketStream<S>, pod: PodPorts)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (session_end, bridge_end) = tokio::io::duplex(256 * 1024);
    let session = tokio::spawn(serve_spdy(session_end, pod));
    let (mut from_session, mut to_session) = tokio::io::split(bridge_end);
    let (mut sink, mut stream) = socket.split();
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(ws::Message::Binary(bytes))) => {
                    if to_session.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(ws::Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            read = from_session.read(&mut buffer) => match read {
                Ok(0) | Err(_) => {
                    let _ = sink.send(ws::Message::Close(None)).await;
                    break;
                }
                Ok(n) => {
                    if sink.send(ws::Message::binary(buffer[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = to_session.shutdown().await;
    drop(to_session);
    drop(from_session);
    let _ = session.await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::DuplexStream;

    use super::*;

    fn gateway_pod() -> PodPorts {
        PodPorts {
            proxies: Arc::new(Proxies::default()),
            key: ("istio-system".into(), "gw-1".into()),
            info: PodInfo {
                namespace: "istio-system".into(),
                name: "gw-1".into(),
                labels: Default::default(),
                ready: true,
                gateway_proxy: true,
                propagation: None,
            },
            gateway: true,
        }
    }

    /// The client's end of an in-memory SPDY connection to a session.
    struct Client {
        io: DuplexStream,
        encoder: Encoder,
        decoder: Decoder,
        buffer: BytesMut,
    }

    impl Client {
        fn connect() -> Client {
            let (io, server) = tokio::io::duplex(1 << 20);
            tokio::spawn(serve_spdy(server, gateway_pod()));
            Client {
                io,
                encoder: Encoder::new(),
                decoder: Decoder::new(),
                buffer: BytesMut::new(),
            }
        }

        async fn send(&mut self, frame: Frame) {
            let bytes = self.encoder.encode(&frame).expect("encodes");
            self.io.write_all(&bytes).await.expect("written");
        }

        /// The next frame from the session; `None` once it closed the connection.
        async fn next(&mut self) -> Option<Frame> {
            loop {
                if let Some(frame) = self.decoder.decode(&mut self.buffer).expect("decodes") {
                    return Some(frame);
                }
                let read = tokio::time::timeout(
                    Duration::from_secs(5),
                    self.io.read_buf(&mut self.buffer),
                )
                .await
                .expect("the session answers within 5 s");
                if read.expect("reads") == 0 {
                    return None;
                }
            }
        }
    }

    fn syn(stream: u32, kind: &str, port: &str, request: &str) -> Frame {
        let mut headers = vec![
            ("streamtype".to_string(), kind.to_string()),
            ("port".to_string(), port.to_string()),
        ];
        if !request.is_empty() {
            headers.push(("requestid".to_string(), request.to_string()));
        }
        Frame::SynStream {
            stream,
            associated: 0,
            priority: 0,
            flags: 0,
            headers: Headers(headers.into_iter().filter(|(_, v)| !v.is_empty()).collect()),
        }
    }

    fn reply(stream: u32) -> Frame {
        Frame::SynReply {
            stream,
            flags: 0,
            headers: Headers::default(),
        }
    }

    fn data(stream: u32, bytes: &[u8], fin: bool) -> Frame {
        Frame::Data {
            stream,
            flags: if fin { spdy::FLAG_FIN } else { 0 },
            data: Bytes::copy_from_slice(bytes),
        }
    }

    #[tokio::test]
    async fn a_request_forwards_whichever_stream_comes_first_and_both_close_with_the_pod() {
        let mut client = Client::connect();
        // The data stream first, with the request already on it: kept until the pair is whole.
        client.send(syn(1, "data", "15000", "0")).await;
        assert_eq!(client.next().await, Some(reply(1)));
        let request = b"GET /config_dump HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        client.send(data(1, request, false)).await;
        client.send(syn(3, "error", "15000", "0")).await;
        assert_eq!(client.next().await, Some(reply(3)));
        let (mut response, mut finished) = (Vec::new(), Vec::new());
        while finished.len() < 2 {
            match client.next().await.expect("frames until both streams end") {
                Frame::Data {
                    stream: 1,
                    flags: 0,
                    data,
                } => response.extend_from_slice(&data),
                Frame::Data {
                    stream,
                    flags: spdy::FLAG_FIN,
                    data,
                } if data.is_empty() => finished.push(stream),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            finished,
            [1, 3],
            "the data stream ends, then the error stream"
        );
        let response = String::from_utf8(response).expect("text");
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            response.contains("type.googleapis.com/envoy.admin.v3.RoutesConfigDump"),
            "{response}"
        );
    }

    #[tokio::test]
    async fn bad_streams_are_reset_pings_echoed_and_a_refused_port_explained() {
        let mut client = Client::connect();
        let reset = |stream, status| Frame::RstStream { stream, status };
        client.send(syn(1, "data", "", "0")).await;
        assert_eq!(client.next().await, Some(reset(1, spdy::CANCEL)));
        client.send(syn(3, "stdin", "15000", "0")).await;
        assert_eq!(client.next().await, Some(reset(3, spdy::CANCEL)));
        client.send(syn(5, "data", "0", "0")).await;
        assert_eq!(client.next().await, Some(reset(5, spdy::CANCEL)));
        client.send(syn(6, "data", "15000", "0")).await;
        assert_eq!(client.next().await, Some(reset(6, spdy::PROTOCOL_ERROR)));
        // The server's own pings are even: one of those is not echoed.
        client.send(Frame::Ping { id: 2 }).await;
        client.send(Frame::Ping { id: 7 }).await;
        assert_eq!(client.next().await, Some(Frame::Ping { id: 7 }));

        client.send(syn(9, "error", "9999", "r")).await;
        client.send(syn(11, "data", "9999", "r")).await;
        assert_eq!(client.next().await, Some(reply(9)));
        assert_eq!(client.next().await, Some(reply(11)));
        assert_eq!(
            client.next().await,
            Some(data(9, refused(&gateway_pod(), 9999).as_bytes(), false))
        );
        assert_eq!(client.next().await, Some(data(11, b"", true)));
        assert_eq!(client.next().await, Some(data(9, b"", true)));

        // Two error streams for one request: the second is reported on the first.
        client.send(syn(13, "error", "15000", "d")).await;
        client.send(syn(15, "error", "15000", "d")).await;
        assert_eq!(client.next().await, Some(reply(13)));
        assert_eq!(client.next().await, Some(reply(15)));
        assert_eq!(
            client.next().await,
            Some(data(
                13,
                b"error processing stream for request d: error stream already assigned",
                false
            ))
        );

        // After GOAWAY no new stream is taken; bytes that are no frame end the connection.
        client
            .send(Frame::GoAway {
                last_good: 0,
                status: 0,
            })
            .await;
        client.send(syn(17, "data", "15000", "e")).await;
        assert_eq!(client.next().await, Some(reset(17, spdy::REFUSED_STREAM)));
        client
            .io
            .write_all(&[0x80, 0x02, 0, 1, 0, 0, 0, 0])
            .await
            .expect("written");
        assert_eq!(
            client.next().await,
            Some(Frame::GoAway {
                last_good: 15,
                status: spdy::PROTOCOL_ERROR
            })
        );
        assert_eq!(client.next().await, None);
    }
}
