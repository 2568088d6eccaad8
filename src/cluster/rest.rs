//! Raw Kubernetes REST over kube's client (which brings kubeconfig auth, exec plugins and
//! TLS): objects stay JSON, and status codes and `Status` bodies stay visible. Transient
//! failures are retried here, with backoff and jitter, and nowhere else.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::Semaphore;

/// Content types of the four kinds of patch.
pub mod content_type {
    pub const JSON: &str = "application/json";
    pub const MERGE_PATCH: &str = "application/merge-patch+json";
    pub const JSON_PATCH: &str = "application/json-patch+json";
    pub const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
    pub const APPLY_PATCH: &str = "application/apply-patch+yaml";
}

/// A server answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

/// Why a request failed.
#[derive(Debug, Clone)]
pub enum RestError {
    /// The server answered with an error `Status`.
    Status(ApiStatus),
    /// No answer: connection refused or reset, TLS failure.
    Transport(String),
    /// The request timeout passed without a complete answer.
    NoAnswer(Duration),
}

/// The useful parts of a Kubernetes `Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiStatus {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// `field: message` for each cause (422 Invalid, 409 conflicts).
    pub causes: Vec<String>,
    /// How long the server asked clients to wait (`Retry-After` of a 429 or 503: overload,
    /// API Priority and Fairness rejecting a request).
    pub retry_after: Option<Duration>,
}

impl ApiStatus {
    fn from_body(code: u16, body: &Value) -> ApiStatus {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let causes = body["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(
                |cause| match cause["field"].as_str().filter(|f| !f.is_empty()) {
                    Some(field) => format!("{field}: {}", text(&cause["message"])),
                    None => text(&cause["message"]),
                },
            )
            .collect();
        let message = match body["message"].as_str() {
            Some(message) if !message.is_empty() => message.to_string(),
            _ => StatusCode::from_u16(code)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("error")
                .to_string(),
        };
        ApiStatus {
            code,
            reason: text(&body["reason"]),
            message,
            causes,
            retry_after: None,
        }
    }
}

impl RestError {
    /// Failures after which the server certainly did nothing: it refused for overload (429)
    /// or the connection was never made. Only these are retried for requests that are not
    /// idempotent (a JSON patch applied twice is not the same as once).
    pub fn is_unprocessed(&self) -> bool {
        match self {
            RestError::Status(status) => status.code == 429,
            RestError::Transport(message) => message.starts_with("connection refused"),
            RestError::NoAnswer(_) => false,
        }
    }

    /// Failures after which a request may have taken effect although no success came back: a
    /// server error, or a connection that broke once the request could have been sent.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            RestError::Status(status) => status.code >= 500 && status.code != 503,
            RestError::Transport(message) => {
                !message.starts_with("connection refused") && !message.contains("certificate")
            }
            RestError::NoAnswer(_) => true,
        }
    }

    /// Failures that say the server is unavailable for now (overloaded, starting, or not
    /// reachable) rather than broken: these are retried for up to [`RetryPolicy::budget`]
    /// once the server was reached.
    fn is_unavailable(&self) -> bool {
        match self {
            RestError::Status(status) => matches!(status.code, 429 | 503),
            RestError::Transport(message) => {
                let message = message.to_lowercase();
                [
                    "refused",
                    "closed",
                    "reset",
                    "broke",
                    "incomplete",
                    "eof",
                    "stream error",
                    "connection error",
                ]
                .iter()
                .any(|sign| message.contains(sign))
            }
            RestError::NoAnswer(_) => false,
        }
    }

    /// Failures worth retrying: overload, server errors, and connections that broke.
    pub fn is_transient(&self) -> bool {
        match self {
            RestError::Status(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
            RestError::Transport(message) => {
                !message.contains("certificate") && !message.contains("UnknownIssuer")
            }
            // A server that did not answer within the timeout will not answer a retry sooner.
            RestError::NoAnswer(_) => false,
        }
    }

    /// The wait the server asked for, if it asked.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RestError::Status(status) => status.retry_after,
            RestError::Transport(_) | RestError::NoAnswer(_) => None,
        }
    }

    pub fn status_code(&self) -> Option<u16> {
        match self {
            RestError::Status(status) => Some(status.code),
            RestError::Transport(_) | RestError::NoAnswer(_) => None,
        }
    }

    /// One line for messages.
    pub fn message(&self) -> String {
        match self {
            RestError::Status(status) => match status.code {
                401 => "the server rejected the credentials (401 Unauthorized): check the token or certificate of this context".into(),
                403 => format!("forbidden (403): {}", status.message),
                _ => status.message.clone(),
            },
            RestError::Transport(message) => message.clone(),
            RestError::NoAnswer(timeout) => format!(
                "no answer within {} (MESHSHIFT_REQUEST_TIMEOUT)",
                crate::output::format_duration(*timeout)
            ),
        }
    }

    /// Field-level causes, if the server gave any.
    pub fn causes(&self) -> Vec<String> {
        match self {
            RestError::Status(status) => status.causes.clone(),
            RestError::Transport(_) | RestError::NoAnswer(_) => Vec::new(),
        }
    }
}

/// Retry policy for transient failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// How long a server that says it is unavailable (429, 503, refused or broken
    /// connections) is retried beyond `attempts`: an API server restart takes seconds.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            budget: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1-based): exponential, with ±50 % jitter so that
    /// many clients do not retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .first_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let base = base.min(self.max_delay);
        let jitter = 0.5 + rand::random::<f64>();
        base.mul_f64(jitter).min(self.max_delay)
    }
}

/// A REST client for one cluster.
#[derive(Clone)]
pub struct Rest {
    client: kube::Client,
    retry: RetryPolicy,
    /// The longest one request may take, answer included. kube's own client bounded reads at
    /// 295 s; meshshift's requests are all short (waits watch), so a stuck one fails sooner.
    timeout: Duration,
    /// Set once the server answered anything: only a server that was reached is waited for
    /// when it becomes unavailable (one never reached is more likely misconfigured).
    reached: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Requests in flight to this cluster, whoever sends them (exports, batches, reads): one
    /// bound shared by all, so two concurrent batches cannot double the load on the server.
    in_flight: Arc<Semaphore>,
    /// No request is sent before this instant: set by a `Retry-After`, so that one overloaded
    /// answer pauses every request, not only the one that got it.
    not_before: Arc<Mutex<Option<tokio::time::Instant>>>,
}

/// How many requests one handle keeps in flight to its cluster at most. kube-apiserver's API
/// Priority and Fairness gives a client's flow a share of its seats (the default
/// `--max-requests-inflight` is 400 for the whole server); 32 keeps a copy well inside it.
pub const MAX_IN_FLIGHT: usize = 32;

/// The longest `Retry-After` honoured; a longer one fails the request with the server's answer.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How many times an overloaded answer (429) is retried: the server says when, so more patience
/// is safe than for other failures.
const OVERLOAD_ATTEMPTS: u32 = 10;

/// The request timeout unless `MESHSHIFT_REQUEST_TIMEOUT` says otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl Rest {
    pub fn new(client: kube::Client, timeout: Duration) -> Rest {
        Rest {
            client,
            timeout,
            retry: RetryPolicy::default(),
            reached: Default::default(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            not_before: Arc::default(),
        }
    }

    /// The kube client underneath, for watches (long-lived streams that do not take a slot of
    /// the in-flight bound).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Sends a request, retrying transient failures. `body` is (content type, bytes). A
    /// request that is not idempotent (a create, a JSON patch) is retried only when the server
    /// certainly did nothing with it ([`RestError::is_unprocessed`]): after a 500 or a broken
    /// connection it may have been applied, and applying it again would not be the same.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, RestError> {
        let idempotent = is_idempotent(&method, path, body.as_ref().map(|(t, _)| *t));
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.wait_for_turn().await;
            let result = {
                let _slot = self.in_flight.acquire().await;
                self.call_once(method.clone(), path, body.clone()).await
            };
            let error = match result {
                Err(error) => error,
                ok => return ok,
            };
            let retryable = if idempotent {
                error.is_transient()
            } else {
                error.is_unprocessed()
            };
            let overloaded = error.status_code() == Some(429);
            let attempts = if overloaded {
                OVERLOAD_ATTEMPTS
            } else {
                self.retry.attempts
            };
            // A server that answered before and is now unavailable is restarting or briefly
            // overloaded: it is waited for up to the budget, not only the quick attempts.
            let riding_out_outage = error.is_unavailable()
                && self.reached.load(std::sync::atomic::Ordering::Relaxed)
                && started.elapsed() < self.retry.budget;
            if !retryable || (attempt >= attempts && !riding_out_outage) {
                return Err(error);
            }
            let delay = match error.retry_after() {
                Some(after) if after > MAX_RETRY_AFTER => return Err(error),
                Some(after) => {
                    self.hold_until(tokio::time::Instant::now() + after);
                    after
                }
                None => self.retry.delay(attempt),
            };
            tracing::debug!(%path, attempt, ?delay, error = %error.message(), "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// Waits while a `Retry-After` holds every request back.
    async fn wait_for_turn(&self) {
        let until = *self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    fn hold_until(&self, until: tokio::time::Instant) {
        let mut not_before = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if not_before.is_none_or(|current| current < until) {
            *not_before = Some(until);
        }
    }

    async fn call_once(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, RestError> {
        tokio::time::timeout(self.timeout, self.exchange(method, path, body))
            .await
            .unwrap_or(Err(RestError::NoAnswer(self.timeout)))
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, RestError> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("accept", "application/json");
        let bytes = match body {
            Some((content_type, bytes)) => {
                request = request.header("content-type", content_type);
                bytes
            }
            None => Vec::new(),
        };
        let request = request
            .body(kube::client::Body::from(bytes))
            .map_err(|e| RestError::Transport(format!("cannot build the request: {e}")))?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| RestError::Transport(transport_message(&e)))?;
        let status = response.status().as_u16();
        self.reached
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let collected: Bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| {
                RestError::Transport(format!(
                    "the connection broke while reading the answer: {e}"
                ))
            })?
            .to_bytes();
        let body: Value = if collected.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&collected)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&collected).into_owned()))
        };
        if status >= 400 {
            let mut api_status = ApiStatus::from_body(status, &body);
            // The header, else the Status body's `details.retryAfterSeconds` (both are sent by
            // kube-apiserver for 429s).
            api_status.retry_after = retry_after.or_else(|| {
                body["details"]["retryAfterSeconds"]
                    .as_u64()
                    .map(Duration::from_secs)
            });
            return Err(RestError::Status(api_status));
        }
        Ok(Response { status, body })
    }

    pub async fn get(&self, path: &str) -> Result<Response, RestError> {
        self.call(Method::GET, path, None).await
    }
}

/// Whether sending a request twice has the effect of sending it once: reads, deletes, puts,
/// server-side apply and merge patches are; creates and JSON patches (`add` to a list, `test`
/// then `replace`) are not, except the creates of the authorization and authentication
/// reviews (`SelfSubjectAccessReview`, `TokenReview`, …), which the API server answers without
/// storing anything.
pub fn is_idempotent(method: &Method, path: &str, content_type: Option<&str>) -> bool {
    match *method {
        Method::POST => is_review(path),
        Method::PATCH => content_type != Some(content_type::JSON_PATCH),
        _ => true,
    }
}

/// `/apis/authorization.k8s.io/v1/selfsubjectaccessreviews` and the like: review kinds are
/// create-only and never persisted (Kubernetes API reference, "Authorization Resources" and
/// "Authentication Resources").
fn is_review(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    [
        "/apis/authorization.k8s.io/",
        "/apis/authentication.k8s.io/",
    ]
    .iter()
    .any(|group| path.starts_with(group))
        && path.ends_with("reviews")
}

/// `Retry-After` in seconds (what kube-apiserver sends); an HTTP date is not used by it and
/// falls back to backoff.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// kube's transport errors are nested; find the words a user can act on.
fn transport_message(error: &kube::Error) -> String {
    let mut chain = vec![error.to_string()];
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        chain.push(inner.to_string());
        source = inner.source();
    }
    let text = chain.join(": ");
    if text.contains("Connection refused") || text.contains("ConnectionRefused") {
        "connection refused: is the API server running and the address right?".into()
    } else if text.contains("not valid for name") {
        // Signed by the CA, but for other names: the kubeconfig's address is not one of them.
        format!(
            "TLS failed: the server's certificate does not name the address in the kubeconfig ({})",
            chain.last().cloned().unwrap_or_default()
        )
    } else if text.contains("UnknownIssuer") || text.contains("certificate") {
        format!(
            "TLS failed: the server's certificate is not signed by this context's CA ({})",
            chain.last().cloned().unwrap_or_default()
        )
    } else if text.contains("timed out") || text.contains("Timeout") {
        "the request timed out".into()
    } else {
        chain.last().cloned().unwrap_or(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_keep_reason_message_and_causes() {
        let body = json!({"kind": "Status", "code": 422, "reason": "Invalid",
            "message": "Deployment.apps \"x\" is invalid: spec.replicas: Invalid value: -1",
            "details": {"causes": [{"field": "spec.replicas", "message": "Invalid value: -1: must be greater than or equal to 0"}]}});
        let status = ApiStatus::from_body(422, &body);
        assert_eq!(status.reason, "Invalid");
        assert_eq!(
            status.causes,
            vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
        );
        assert_eq!(
            ApiStatus::from_body(503, &Value::Null).message,
            "Service Unavailable"
        );
    }

    #[test]
    fn transient_or_permanent() {
        let status = |code| {
            RestError::Status(ApiStatus {
                code,
                reason: String::new(),
                message: String::new(),
                causes: vec![],
                retry_after: None,
            })
        };
        for code in [429, 500, 502, 503, 504] {
            assert!(status(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 422] {
            assert!(!status(code).is_transient(), "{code}");
        }
        assert!(RestError::Transport("connection reset".into()).is_transient());
        // Waited for (up to the budget) once the server was reached: it is restarting.
        for message in [
            "connection refused: is the API server running and the address right?",
            "stream error received: unexpected internal error encountered",
            "connection closed before message completed",
        ] {
            assert!(
                RestError::Transport(message.into()).is_unavailable(),
                "{message}"
            );
        }
        assert!(!RestError::Transport("invalid HTTP version parsed".into()).is_unavailable());
        assert!(!status(500).is_unavailable() && status(503).is_unavailable());
        assert!(!RestError::Transport("TLS failed: certificate".into()).is_transient());
        assert!(!RestError::NoAnswer(Duration::from_secs(1)).is_transient());
    }

    #[test]
    fn creates_and_json_patches_are_retried_only_when_nothing_happened() {
        let pods = "/api/v1/namespaces/a/pods";
        assert!(is_idempotent(&Method::GET, pods, None));
        assert!(is_idempotent(
            &Method::PATCH,
            pods,
            Some(content_type::APPLY_PATCH)
        ));
        assert!(is_idempotent(
            &Method::PATCH,
            pods,
            Some(content_type::MERGE_PATCH)
        ));
        assert!(!is_idempotent(
            &Method::PATCH,
            pods,
            Some(content_type::JSON_PATCH)
        ));
        assert!(!is_idempotent(
            &Method::POST,
            pods,
            Some(content_type::JSON)
        ));
        // Reviews are answered, not stored: asking again is asking once.
        assert!(is_idempotent(
            &Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            Some(content_type::JSON)
        ));
        assert!(!is_idempotent(
            &Method::POST,
            "/apis/example.com/v1/namespaces/a/reviews",
            Some(content_type::JSON)
        ));
        let status = |code| {
            RestError::Status(ApiStatus {
                code,
                reason: String::new(),
                message: String::new(),
                causes: vec![],
                retry_after: None,
            })
        };
        assert!(status(429).is_unprocessed());
        assert!(!status(500).is_unprocessed() && !status(503).is_unprocessed());
        assert!(!RestError::Transport("connection reset".into()).is_unprocessed());
        assert!(RestError::Transport("connection reset".into()).may_have_taken_effect());
        assert!(status(500).may_have_taken_effect());
        assert!(!status(422).may_have_taken_effect() && !status(429).may_have_taken_effect());
        assert!(!RestError::Transport("connection refused".into()).may_have_taken_effect());
        assert!(
            RestError::Transport(
                "connection refused: is the API server running and the address right?".into()
            )
            .is_unprocessed()
        );
    }

    #[test]
    fn retry_after_comes_from_the_header_or_the_status_body() {
        assert_eq!(parse_retry_after(" 3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        for attempt in 1..10 {
            let delay = policy.delay(attempt);
            assert!(delay <= policy.max_delay);
            assert!(delay >= policy.first_delay / 2);
        }
    }
}
