//! Kubernetes `Status` objects: the error shape every API answer uses.
//!
//! Messages follow the real API server's wording, because clients (kubectl in particular)
//! show them verbatim and some tools match on them.

use serde_json::{Map, Value, json};

use super::resource::ResourceType;

/// An API error, rendered as a `Status` object with the matching HTTP status code.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status code, also the `code` field of the Status.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `Conflict`, ...).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// The `details` object (name, group, kind, causes), when there is one (boxed to keep
    /// `Result<_, ApiError>` small).
    pub details: Option<Box<Value>>,
    /// Seconds the client should wait before retrying (sets `Retry-After`).
    pub retry_after_seconds: Option<u32>,
}

/// One entry of `details.causes`: which field failed and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldManagerConflict`, ...
    pub reason: String,
    /// Message for this field.
    pub message: String,
    /// Field path (`metadata.name`, `.spec.replicas`).
    pub field: String,
}

impl Cause {
    /// A cause with the given reason, message and field.
    pub fn new(reason: &str, message: impl Into<String>, field: impl Into<String>) -> Self {
        Cause {
            reason: reason.to_string(),
            message: message.into(),
            field: field.into(),
        }
    }

    /// `Invalid value: "<value>": <detail>` on `field`.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        Cause::new(
            "FieldValueInvalid",
            format!("Invalid value: {}: {detail}", go_value(value)),
            field,
        )
    }

    /// `Required value: <detail>` on `field`.
    pub fn required(field: &str, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Cause::new("FieldValueRequired", message, field)
    }

    /// `Unsupported value: "<value>": supported values: ...` on `field`.
    pub fn unsupported(field: &str, value: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Cause::new(
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {}: supported values: {}",
                go_value(value),
                list.join(", ")
            ),
            field,
        )
    }

    /// `Forbidden: <detail>` on `field`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Cause::new("FieldValueForbidden", format!("Forbidden: {detail}"), field)
    }

    fn full_message(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }

    fn to_json(&self) -> Value {
        let mut cause = Map::new();
        cause.insert("reason".into(), Value::String(self.reason.clone()));
        cause.insert("message".into(), Value::String(self.message.clone()));
        if !self.field.is_empty() {
            cause.insert("field".into(), Value::String(self.field.clone()));
        }
        Value::Object(cause)
    }
}

/// Renders a value the way Go's `%q`/`%v` does in validation messages.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// `pods`, `deployments.apps`: the resource name used in most messages.
pub fn qualified_resource(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

fn resource_details(group: &str, plural: &str, name: &str) -> Value {
    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), Value::String(name.to_string()));
    }
    if !group.is_empty() {
        details.insert("group".into(), Value::String(group.to_string()));
    }
    details.insert("kind".into(), Value::String(plural.to_string()));
    Value::Object(details)
}

impl ApiError {
    /// An error with a code, reason and message, without details.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
            retry_after_seconds: None,
        }
    }

    /// Adds a `details` object.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// `<resource> "<name>" not found` (404).
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", qualified_resource(group, plural)),
        )
        .with_details(resource_details(group, plural, name))
    }

    /// [`ApiError::not_found`] for a resource type.
    pub fn object_not_found(rt: &ResourceType, name: &str) -> Self {
        ApiError::not_found(&rt.group, &rt.plural, name)
    }

    /// `namespaces "<ns>" not found` (404).
    pub fn namespace_not_found(namespace: &str) -> Self {
        ApiError::not_found("", "namespaces", namespace)
    }

    /// The answer for paths and resources the server does not serve (404).
    pub fn unknown_resource() -> Self {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// `<resource> "<name>" already exists` (409).
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", rt.qualified()),
        )
        .with_details(resource_details(&rt.group, &rt.plural, name))
    }

    /// `Operation cannot be fulfilled on <resource> "<name>": <why>` (409).
    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                rt.qualified()
            ),
        )
        .with_details(resource_details(&rt.group, &rt.plural, name))
    }

    /// The optimistic-concurrency conflict (409).
    pub fn stale_resource_version(rt: &ResourceType, name: &str) -> Self {
        ApiError::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `<Kind> "<name>" is invalid: <causes>` (422).
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let summary = match causes.as_slice() {
            [one] => one.full_message(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(Cause::full_message)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        // Invalid names the kind where other errors name the resource, in the same places.
        let mut details = resource_details(group, kind, name);
        details["causes"] = Value::Array(causes.iter().map(Cause::to_json).collect());
        ApiError::new(
            422,
            "Invalid",
            format!(
                "{} {name:?} is invalid: {summary}",
                qualified_resource(group, kind)
            ),
        )
        .with_details(details)
    }

    /// [`ApiError::invalid`] for a resource type.
    pub fn invalid_object(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        ApiError::invalid(&rt.group, &rt.kind, name, causes)
    }

    /// 422 without field causes, as sent for patches that cannot be applied.
    ///
    /// The real server leaves the patch library's own message out of the answer.
    pub fn unprocessable() -> Self {
        ApiError::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        )
        .with_details(json!({}))
    }

    /// A 400 with the given message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    /// The answer to a missing or wrong bearer token (401).
    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// `<resource> "<name>" is forbidden: <why>` (403).
    pub fn forbidden(rt: &ResourceType, name: &str, why: &str) -> Self {
        ApiError::new(
            403,
            "Forbidden",
            format!("{} {name:?} is forbidden: {why}", rt.qualified()),
        )
        .with_details(resource_details(&rt.group, &rt.plural, name))
    }

    /// The verb is not served on this path (405).
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    /// The response type the client insists on cannot be produced (406).
    pub fn not_acceptable(accepted: &str) -> Self {
        ApiError::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: {accepted}"),
        )
    }

    /// The body has a media type the endpoint does not take (415).
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// The body is over the size limit (413).
    pub fn too_large() -> Self {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!(
                "Request entity too large: limit is {}",
                super::handler::MAX_BODY_BYTES
            ),
        )
    }

    /// A watch asked for a resource version the server no longer keeps (410).
    pub fn expired(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    /// An unexpected server-side failure (500).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", Into::<String>::into(message)),
        )
    }

    /// The server cannot answer right now (503).
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    /// The client is throttled (429) and should retry after `seconds`.
    pub fn too_many_requests(seconds: u32) -> Self {
        let mut error = ApiError::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        );
        error.retry_after_seconds = Some(seconds);
        error.details = Some(Box::new(json!({"retryAfterSeconds": seconds})));
        error
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = Map::new();
        status.insert("kind".into(), json!("Status"));
        status.insert("apiVersion".into(), json!("v1"));
        status.insert("metadata".into(), json!({}));
        status.insert("status".into(), json!("Failure"));
        status.insert("message".into(), Value::String(self.message.clone()));
        // An error that is not an API status has the unknown reason, "", which Kubernetes
        // leaves out of the Status.
        if !self.reason.is_empty() {
            status.insert("reason".into(), Value::String(self.reason.clone()));
        }
        if let Some(details) = &self.details {
            status.insert("details".into(), (**details).clone());
        }
        status.insert("code".into(), json!(self.code));
        Value::Object(status)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The `Status` answered for a successful delete of a kind that does not return the object.
pub fn success_status(group: &str, plural: &str, name: &str, uid: &str) -> Value {
    let mut details = resource_details(group, plural, name);
    if let Some(map) = details.as_object_mut() {
        map.insert("uid".into(), Value::String(uid.to_string()));
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_group_qualified_resource() {
        let status = ApiError::not_found("apps", "deployments", "web").to_status();
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["details"]["group"], "apps");
        assert_eq!(status["code"], 404);
    }

    #[test]
    fn invalid_with_one_cause_reads_like_the_real_server() {
        let cause = Cause::required("metadata.name", "name or generateName is required");
        let status = ApiError::invalid("", "ConfigMap", "", vec![cause]).to_status();
        assert_eq!(
            status["message"],
            "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueRequired"
        );
        assert!(status["details"].get("name").is_none());
    }

    #[test]
    fn invalid_with_several_causes_lists_them_in_brackets() {
        let causes = vec![
            Cause::required("spec.a", ""),
            Cause::invalid("spec.b", &json!(3), "must be even"),
        ];
        let error = ApiError::invalid("apps", "Deployment", "web", causes);
        assert_eq!(
            error.message,
            "Deployment.apps \"web\" is invalid: [spec.a: Required value, spec.b: Invalid value: 3: must be even]"
        );
    }
}
