//! Shared helpers for the simulator tests: in-process servers, a raw HTTPS client, kubectl.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use meshshift::sim::{ApiServer, ApiServerConfig, ApiServerHandle};
use serde_json::Value;

/// A Tokio runtime for one test; the server tasks run on its worker threads while the test
/// thread blocks on clients.
pub fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One in-process simulated cluster with a kubeconfig in a temporary directory.
pub struct TestServer {
    pub runtime: tokio::runtime::Runtime,
    pub handle: Option<ApiServerHandle>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub client: reqwest::Client,
    pub url: String,
}

impl TestServer {
    /// Starts a server named `sim-test` with default settings.
    pub fn start() -> TestServer {
        TestServer::start_with(|config| config)
    }

    /// Starts a server whose configuration `configure` adjusts.
    pub fn start_with(configure: impl FnOnce(ApiServerConfig) -> ApiServerConfig) -> TestServer {
        let runtime = runtime();
        let config = configure(ApiServerConfig {
            name: "sim-test".into(),
            ..ApiServerConfig::default()
        });
        let handle = runtime
            .block_on(ApiServer::start(config))
            .expect("simulated API server starts");
        let dir = tempfile::tempdir().expect("temporary directory");
        let kubeconfig = dir.path().join("kubeconfig");
        handle
            .write_kubeconfig(&kubeconfig)
            .expect("kubeconfig written");
        let client = https_client(handle.ca_pem(), true);
        let url = handle.url();
        TestServer {
            runtime,
            handle: Some(handle),
            dir,
            kubeconfig,
            client,
            url,
        }
    }

    pub fn handle(&self) -> &ApiServerHandle {
        self.handle.as_ref().expect("server running")
    }

    pub fn token(&self) -> String {
        self.handle().token().to_string()
    }

    /// Sends a request with the right token; returns status and body (JSON if it parses).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        self.request_with(method, path, content_type, body, Some(&self.token()), None)
    }

    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
        token: Option<&str>,
        accept: Option<&str>,
    ) -> (u16, Value) {
        let client = self.client.clone();
        let url = format!("{}{}", self.url, path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let content_type = content_type.map(str::to_string);
        let token = token.map(str::to_string);
        let accept = accept.map(str::to_string);
        self.runtime.block_on(async move {
            let mut request = client.request(method, url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            if let Some(body) = body {
                request = request.body(body);
            }
            let response = tokio::time::timeout(Duration::from_secs(20), request.send())
                .await
                .expect("request finished in time")
                .expect("request sent");
            let status = response.status().as_u16();
            let bytes = response.bytes().await.expect("body read");
            let value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            (status, value)
        })
    }

    /// Like [`TestServer::request`], also returning the `Warning` headers.
    pub fn request_warned(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, Vec<String>, Value) {
        let request = self
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{}", self.url, path),
            )
            .bearer_auth(self.token())
            .header("content-type", content_type)
            .body(body.to_string());
        self.runtime.block_on(async move {
            let response = request.send().await.expect("request sent");
            let status = response.status().as_u16();
            let warnings = response
                .headers()
                .get_all("warning")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect();
            let bytes = response.bytes().await.expect("body read");
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (status, warnings, body)
        })
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, None, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(
            "POST",
            path,
            Some("application/json"),
            Some(body.to_string().into_bytes()),
        )
    }

    pub fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(
            "PUT",
            path,
            Some("application/json"),
            Some(body.to_string().into_bytes()),
        )
    }

    pub fn patch(&self, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        self.request(
            "PATCH",
            path,
            Some(content_type),
            Some(body.as_bytes().to_vec()),
        )
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.request("DELETE", path, None, None)
    }

    /// Runs kubectl against this server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl(
            &self.kubeconfig,
            &self.dir.path().join("kubectl-cache"),
            args,
            None,
        )
    }

    /// Runs kubectl with `input` on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        kubectl(
            &self.kubeconfig,
            &self.dir.path().join("kubectl-cache"),
            args,
            Some(input),
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = self.runtime.block_on(handle.shutdown());
        }
    }
}

/// A reqwest client trusting only `ca_pem`, offering HTTP/2 and HTTP/1.1 over ALPN.
pub fn https_client(ca_pem: &str, http2: bool) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("valid CA PEM")).expect("CA accepted");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .expect("HTTPS client")
}

/// Runs kubectl with its own kubeconfig and discovery cache, failing the test after 60 s.
pub fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str], input: Option<&str>) -> Output {
    use std::io::Write;
    let mut command = Command::new("kubectl");
    command
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("KUBECACHEDIR", cache)
        .env_remove("KUBECTL_EXTERNAL_DIFF")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("kubectl runs");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("stdin written");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("kubectl status").is_some() {
            return child.wait_with_output().expect("kubectl output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("kubectl output");
            panic!(
                "kubectl {args:?} did not finish in 60 s: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// stdout of a successful command; fails the test with stderr otherwise.
#[track_caller]
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of a failed command; fails the test if it succeeded.
#[track_caller]
pub fn failed(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "command unexpectedly succeeded:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The repository's own test fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sim")
        .join(name)
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
#[track_caller]
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Names of the items of a list answer.
pub fn item_names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// An open watch: events arrive on a channel fed by a task reading the response stream.
pub struct Watch {
    receiver: std::sync::mpsc::Receiver<Value>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// Opens `path` (which must ask for a watch) on `server`.
    pub fn open(server: &TestServer, path: &str) -> Watch {
        let (sender, receiver) = std::sync::mpsc::channel();
        let request = server
            .client
            .get(format!("{}{}", server.url, path))
            .bearer_auth(server.token());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let task = server.runtime.spawn(async move {
            let mut response = match request.send().await {
                Ok(response) => response,
                Err(_) => return,
            };
            let _ = ready_tx.send(response.status().as_u16());
            let mut buffer = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.extend_from_slice(&chunk);
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    if let Ok(event) = serde_json::from_slice::<Value>(&line)
                        && sender.send(event).is_err()
                    {
                        return;
                    }
                }
            }
        });
        let status = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("watch answered");
        assert_eq!(status, 200, "watch {path}");
        Watch { receiver, task }
    }

    /// The next event, or `None` if none arrives within `timeout` or the stream ended.
    pub fn next(&self, timeout: Duration) -> Option<Value> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// The next event, failing the test after 10 s.
    #[track_caller]
    pub fn expect(&self) -> Value {
        self.next(Duration::from_secs(10))
            .expect("a watch event within 10 s")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `(type, name)` of a watch event.
pub fn event_summary(event: &Value) -> (String, String) {
    (
        event["type"].as_str().unwrap_or_default().to_string(),
        event["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}
