//! One HTTP request: authentication, fault injection, routing, body decoding, and rendering
//! the answer (JSON, Table, watch stream, or a Status on error).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use super::cluster::{
    DeleteOptions, ListOptions, ListPage, Reply, Subresource, Target, WriteOptions,
};
use super::discovery;
use super::fault::{self, FaultDecision};
use super::field_validation::FieldValidation;
use super::negotiate::{Offers, Representation, negotiate};
use super::object::push_json_string;
use super::openapi;
use super::patch::PatchType;
use super::router::{ResourcePath, Route, route};
use super::selector::{FieldSelector, LabelSelector};
use super::server::Shared;
use super::status::{ApiError, Cause};
use super::table::{IncludeObject, table};
use super::watch::{self, WatchParams, WatchStart};

/// Response bodies: whole or streamed.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Largest accepted request body (the real server's limit for etcd objects).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn respond(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    response
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    respond(code, "application/json", value.to_string())
}

/// The response for an error: its Status object.
pub fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.code, &error.to_status());
    if let Some(seconds) = error.retry_after_seconds
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn authorized(shared: &Shared, request: &Request<Incoming>) -> bool {
    let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(token) = value.strip_prefix("Bearer ").map(str::trim) else {
        return false;
    };
    // Compare in constant time so the token cannot be guessed byte by byte.
    let expected = shared.token.as_bytes();
    let given = token.as_bytes();
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Serves one request.
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let route = route(request.uri().path());
    let is_api = !matches!(route, Route::Health | Route::Version);
    // Authentication comes first, as in kube-apiserver: a client without the token learns
    // nothing from the server, not even that it is failing.
    if is_api && !authorized(&shared, &request) {
        return Ok(error_response(&ApiError::unauthorized()));
    }
    if is_api && request.uri().path() == fault::CONTROL_PATH {
        return Ok(match control(&shared, request).await {
            Ok(response) => response,
            Err(error) => error_response(&error),
        });
    }
    let is_client = request.headers().get(fault::AGENT_HEADER).is_none();
    if is_api && is_client {
        // Requests already on an open connection during an outage go unanswered.
        if shared.fault.unreachable_remaining().is_some() {
            return Err(std::io::Error::other(
                "request dropped: the server is unreachable",
            ));
        }
        let (delay, decision) = shared.fault.decide();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match decision {
            FaultDecision::Serve => {}
            FaultDecision::Drop => {
                return Err(std::io::Error::other("request dropped by fault injection"));
            }
            FaultDecision::Fail(429) => return Ok(error_response(&ApiError::too_many_requests(1))),
            FaultDecision::Fail(503) => {
                // kube-apiserver answers 503 with Retry-After when it cannot serve for now.
                let mut error = ApiError::service_unavailable(
                    "the server is currently unable to handle the request (injected fault)",
                );
                error.retry_after_seconds = Some(1);
                return Ok(error_response(&error));
            }
            FaultDecision::Fail(_) => {
                return Ok(error_response(&ApiError::internal("injected fault")));
            }
        }
    }
    match dispatch(shared, route, request, is_client).await {
        Ok(response) => Ok(response),
        Err(error) => Ok(error_response(&error)),
    }
}

/// The fault control endpoint ([`fault::CONTROL_PATH`]).
async fn control(shared: &Shared, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let method = request.method().clone();
    if method == Method::PUT {
        let body = read_body(request).await?;
        let change: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("fault change is not JSON: {e}")))?;
        let service = match change["service"].as_str() {
            Some(text) => Some(
                text.split_once('/')
                    .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
                    .map(|(ns, name)| (ns.to_string(), name.to_string()))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "service must be namespace/name, got {text:?}"
                        ))
                    })?,
            ),
            None => None,
        };
        let settings: Vec<String> = change["settings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        shared
            .fault
            .update(
                change["clear"].as_bool().unwrap_or(false),
                service.as_ref(),
                &settings,
            )
            .map_err(ApiError::bad_request)?;
    } else if method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    let mut answer = shared.fault.config().to_json();
    answer["injected"] = shared.fault.injected();
    Ok(json_response(200, &answer))
}

fn header_str(request: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn dispatch(
    shared: Arc<Shared>,
    route: Route,
    request: Request<Incoming>,
    is_client: bool,
) -> Result<Response<Body>, ApiError> {
    match route {
        Route::Resource(path) => return resource(shared, path, request, is_client).await,
        Route::SelfSubjectAccessReview => return access_review(request).await,
        Route::PodPortForward { namespace, pod } => {
            return super::portforward::port_forward(&shared, &namespace, &pod, request);
        }
        Route::PodProxy {
            namespace,
            pod,
            port,
            path,
        } => {
            return super::portforward::proxy(
                &shared,
                &namespace,
                &pod,
                port.as_deref(),
                &path,
                request.method(),
            );
        }
        _ => {}
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Err(ApiError::method_not_allowed());
    }
    let accept = header_str(&request, header::ACCEPT);
    let discovery_offers = Offers {
        aggregated_discovery: true,
        ..Offers::default()
    };
    let body = match route {
        Route::Health => return Ok(respond(200, "text/plain; charset=utf-8", "ok")),
        Route::Version => json!({
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.0+meshshift-sim",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "none",
            "compiler": "meshshift",
            "platform": "linux/amd64",
        }),
        Route::CoreVersions => {
            let representation = negotiate(accept, discovery_offers)?;
            if representation == Representation::AggregatedDiscovery {
                let document = discovery::aggregated(&shared.lock().registry, true);
                return Ok(respond(
                    200,
                    representation.content_type(),
                    document.to_string(),
                ));
            }
            discovery::core_versions(&shared.address.to_string())
        }
        Route::Groups => {
            let representation = negotiate(accept, discovery_offers)?;
            let state = shared.lock();
            if representation == Representation::AggregatedDiscovery {
                let document = discovery::aggregated(&state.registry, false);
                return Ok(respond(
                    200,
                    representation.content_type(),
                    document.to_string(),
                ));
            }
            discovery::group_list(&state.registry)
        }
        Route::Group(name) => discovery::group(&shared.lock().registry, &name)
            .ok_or_else(ApiError::unknown_resource)?,
        Route::Resources { group, version } => {
            discovery::resource_list(&shared.lock().registry, &group, &version)
                .ok_or_else(ApiError::unknown_resource)?
        }
        Route::OpenApiV2 => return Ok(openapi_v2(accept)),
        Route::OpenApiV3Index => openapi::v3_index(&shared.lock().registry),
        Route::OpenApiV3 { group, version } => {
            openapi::v3_document(&shared.lock().registry, &group, &version)
                .ok_or_else(ApiError::unknown_resource)?
        }
        Route::NotFound
        | Route::Resource(_)
        | Route::PodPortForward { .. }
        | Route::SelfSubjectAccessReview
        | Route::PodProxy { .. } => return Err(ApiError::unknown_resource()),
    };
    Ok(json_response(200, &body))
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: the review back with its
/// status, as kube-apiserver answers (201, nothing stored). The simulator has one user, who
/// may do everything (as `system:masters`), so every review is allowed.
async fn access_review(request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    if request.method() != Method::POST {
        return Err(ApiError::method_not_allowed());
    }
    let content_type = header_str(&request, header::CONTENT_TYPE).map(str::to_string);
    // kubectl sends protobuf, which the simulator decodes for a few kinds only: a protobuf
    // review is answered without reading it (every review is allowed anyway).
    let protobuf = content_type
        .as_deref()
        .is_some_and(|c| c.contains("protobuf"));
    let body = read_body(request).await?;
    let mut review = if protobuf {
        json!({})
    } else {
        parse_object(&body, content_type.as_deref(), "SelfSubjectAccessReview")?
    };
    if !review.is_object() {
        review = json!({});
    }
    let attributes = review
        .pointer("/spec/resourceAttributes")
        .or_else(|| review.pointer("/spec/nonResourceAttributes"));
    if attributes.is_none() && !protobuf {
        return Err(ApiError::invalid(
            "authorization.k8s.io",
            "SelfSubjectAccessReview",
            "",
            vec![Cause::new(
                "FieldValueRequired",
                "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                "spec.resourceAttributes",
            )],
        ));
    }
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = json!({"allowed": true});
    Ok(json_response(201, &review))
}

/// `/openapi/v2`: an empty document. kubectl reads it (as protobuf) only to validate kinds
/// the v3 documents do not cover, and skips validation for kinds it finds no schema for,
/// which is what a real server's answer leads to for unknown kinds as well.
fn openapi_v2(accept: Option<&str>) -> Response<Body> {
    let wants_protobuf = accept.is_some_and(|a| a.contains("protobuf"));
    if wants_protobuf {
        // Field 1 (swagger), length-delimited: "2.0".
        respond(
            200,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            Bytes::from_static(b"\x0a\x032.0"),
        )
    } else {
        json_response(
            200,
            &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": {}}),
        )
    }
}

fn query_map(request: &Request<Incoming>) -> HashMap<String, String> {
    request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    matches!(query.get(name).map(String::as_str), Some("true" | "1"))
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, ApiError> {
    if let Some(length) = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && length > MAX_BODY_BYTES
    {
        return Err(ApiError::too_large());
    }
    let limited = Limited::new(request.into_body(), MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error)
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::too_large())
        }
        Err(error) => Err(ApiError::bad_request(format!(
            "failed to read the request body: {error}"
        ))),
    }
}

fn resolve(shared: &Shared, path: &ResourcePath) -> Result<Target, ApiError> {
    let state = shared.lock();
    let rt = state
        .registry
        .by_path(&path.group, &path.version, &path.plural)
        .ok_or_else(ApiError::unknown_resource)?;
    if path.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::unknown_resource());
    }
    let subresource = match path.subresource.as_deref() {
        None => Subresource::None,
        Some("status") if rt.status_subresource => Subresource::Status,
        Some("scale") if rt.scale.is_some() => Subresource::Scale,
        Some("finalize") if rt.group.is_empty() && rt.kind == "Namespace" => Subresource::Finalize,
        Some(_) => return Err(ApiError::unknown_resource()),
    };
    Ok(Target {
        rt,
        version: path.version.clone(),
        namespace: path.namespace.clone().unwrap_or_default(),
        name: path.name.clone().unwrap_or_default(),
        subresource,
    })
}

fn dry_run(query: &HashMap<String, String>, verb_options: &str) -> Result<bool, ApiError> {
    match query.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            "meta.k8s.io",
            verb_options,
            "",
            vec![Cause::unsupported("dryRun", &json!(other), &["All"])],
        )),
    }
}

fn write_options(
    query: &HashMap<String, String>,
    user_agent: &str,
    verb_options: &str,
) -> Result<WriteOptions, ApiError> {
    let requested = query.get("fieldValidation").map(String::as_str);
    let field_validation = FieldValidation::parse(requested).ok_or_else(|| {
        ApiError::bad_request(format!(
            "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {:?}",
            requested.unwrap_or_default()
        ))
    })?;
    Ok(WriteOptions {
        dry_run: dry_run(query, verb_options)?,
        field_manager: query.get("fieldManager").cloned(),
        user_agent: user_agent.to_string(),
        force: flag(query, "force"),
        field_validation,
    })
}

/// The answer to a write: the body, with a `Warning` header per warning.
fn reply_response(reply: Reply, pretty: bool) -> Response<Body> {
    let body = if pretty {
        serde_json::to_vec_pretty(&reply.body).unwrap_or_default()
    } else {
        reply.body.to_string().into_bytes()
    };
    let mut response = respond(reply.code, "application/json", body);
    for warning in &reply.warnings {
        if let Ok(value) = HeaderValue::from_str(&format!("299 - {warning:?}")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

fn list_options(query: &HashMap<String, String>, target: &Target) -> Result<ListOptions, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let mut fields = FieldSelector::parse(
        query.get("fieldSelector").map(String::as_str).unwrap_or(""),
        &target.rt.group,
        &target.rt.kind,
    )
    .map_err(ApiError::bad_request)?;
    if !target.name.is_empty() {
        fields.requirements.push(super::selector::FieldRequirement {
            field: "metadata.name".into(),
            value: target.name.clone(),
            negated: false,
        });
    }
    let limit = match query.get("limit") {
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {text:?}")))?,
        None => 0,
    };
    Ok(ListOptions {
        labels,
        fields,
        limit,
        continue_token: query.get("continue").filter(|c| !c.is_empty()).cloned(),
    })
}

fn parse_object(body: &[u8], content_type: Option<&str>, kind: &str) -> Result<Value, ApiError> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let unrecognized = |detail: String| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): {detail}"
        ))
    };
    match media.as_str() {
        "" | "application/json" => serde_json::from_slice::<Value>(body).map_err(|e| {
            let preview: String = String::from_utf8_lossy(&body[..body.len().min(30)]).into_owned();
            unrecognized(format!(
                "couldn't get version/kind; json parse error: {e} ({preview} ...)"
            ))
        }),
        "application/yaml" => {
            let text = std::str::from_utf8(body).map_err(|e| unrecognized(format!("yaml: {e}")))?;
            meshshift_support::yaml::from_str(text).map_err(|e| unrecognized(format!("yaml: {e}")))
        }
        "application/vnd.kubernetes.protobuf" => super::protobuf::decode(body).map_err(|e| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("the body of the request could not be decoded: {e}"),
            )
        }),
        _ => Err(ApiError::unsupported_media_type(&[
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
        ])),
    }
}

fn delete_options(body: &[u8], query: &HashMap<String, String>) -> Result<DeleteOptions, ApiError> {
    let mut options = DeleteOptions {
        dry_run: dry_run(query, "DeleteOptions")?,
        propagation: query.get("propagationPolicy").cloned(),
        orphan_dependents: query.get("orphanDependents").map(|v| v == "true"),
        ..DeleteOptions::default()
    };
    if body.iter().any(|b| !b.is_ascii_whitespace()) {
        let parsed: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type DeleteOptions): {e}"
            ))
        })?;
        if let Some(policy) = parsed.get("propagationPolicy").and_then(Value::as_str) {
            options.propagation = Some(policy.to_string());
        }
        if let Some(orphan) = parsed.get("orphanDependents").and_then(Value::as_bool) {
            options.orphan_dependents = Some(orphan);
        }
        if let Some(uid) = parsed.pointer("/preconditions/uid").and_then(Value::as_str) {
            options.precondition_uid = Some(uid.to_string());
        }
        if let Some(version) = parsed
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            options.precondition_resource_version = Some(version.to_string());
        }
        if parsed
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"))
        {
            options.dry_run = true;
        }
    }
    Ok(options)
}

fn render_object(
    target: &Target,
    object: &Value,
    representation: Representation,
    query: &HashMap<String, String>,
    revision: u64,
) -> Value {
    match representation {
        Representation::Table => table(
            &target.rt,
            &target.version,
            std::slice::from_ref(object),
            revision,
            None,
            IncludeObject::parse(query.get("includeObject").map(String::as_str)),
        ),
        Representation::PartialMetadata => super::table::partial_metadata(object),
        _ => object.clone(),
    }
}

fn render_list(
    target: &Target,
    page: ListPage,
    representation: Representation,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let rt = &target.rt;
    let api_version = target.api_version();
    match representation {
        Representation::Table | Representation::PartialMetadata => {
            let objects: Vec<Value> = page
                .items
                .iter()
                .map(|o| o.to_value(&api_version, &rt.kind))
                .collect();
            let body = if representation == Representation::Table {
                table(
                    rt,
                    &target.version,
                    &objects,
                    page.revision,
                    page.continue_token.as_deref(),
                    IncludeObject::parse(query.get("includeObject").map(String::as_str)),
                )
            } else {
                let items: Vec<Value> =
                    objects.iter().map(super::table::partial_metadata).collect();
                json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                       "metadata": {"resourceVersion": page.revision.to_string()}, "items": items})
            };
            respond(200, representation.content_type(), body.to_string())
        }
        _ => {
            let mut out = Vec::with_capacity(
                64 + page
                    .items
                    .iter()
                    .map(|o| o.encoded_len() + 2)
                    .sum::<usize>(),
            );
            out.extend_from_slice(b"{\"kind\":");
            push_json_string(&mut out, &rt.list_kind);
            out.extend_from_slice(b",\"apiVersion\":");
            push_json_string(&mut out, &api_version);
            out.extend_from_slice(b",\"metadata\":{\"resourceVersion\":\"");
            out.extend_from_slice(page.revision.to_string().as_bytes());
            out.push(b'"');
            if let Some(token) = &page.continue_token {
                out.extend_from_slice(b",\"continue\":");
                push_json_string(&mut out, token);
            }
            if let Some(remaining) = page.remaining {
                out.extend_from_slice(b",\"remainingItemCount\":");
                out.extend_from_slice(remaining.to_string().as_bytes());
            }
            out.extend_from_slice(b"},\"items\":[");
            let type_meta = rt
                .is_custom()
                .then_some((api_version.as_str(), rt.kind.as_str()));
            for (i, object) in page.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                object.write_json(&mut out, type_meta);
            }
            out.extend_from_slice(b"]}");
            respond(200, "application/json", out)
        }
    }
}

async fn resource(
    shared: Arc<Shared>,
    path: ResourcePath,
    request: Request<Incoming>,
    is_client: bool,
) -> Result<Response<Body>, ApiError> {
    let query = query_map(&request);
    let method = request.method().clone();
    let accept = header_str(&request, header::ACCEPT).map(str::to_string);
    let content_type = header_str(&request, header::CONTENT_TYPE).map(str::to_string);
    let user_agent = header_str(&request, header::USER_AGENT)
        .unwrap_or("")
        .to_string();
    let target = resolve(&shared, &path)?;
    let is_collection = target.name.is_empty();
    // Namespaced kinds are only listed and watched across namespaces; everything else
    // needs the namespace in the path (the real server has no such routes).
    if target.rt.namespaced && path.namespace.is_none() {
        if !is_collection {
            return Err(ApiError::unknown_resource());
        }
        if method != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
    }
    let watching = path.watch_prefix || flag(&query, "watch");
    let offers = Offers {
        tables: true,
        ..Offers::default()
    };
    let pretty = flag(&query, "pretty");
    let finish = |code: u16, value: &Value| {
        if pretty {
            respond(
                code,
                "application/json",
                serde_json::to_vec_pretty(value).unwrap_or_default(),
            )
        } else {
            json_response(code, value)
        }
    };
    match method {
        Method::GET if watching => {
            if target.subresource != Subresource::None {
                return Err(ApiError::method_not_allowed());
            }
            let representation = negotiate(accept.as_deref(), offers)?;
            let cut = is_client.then(|| shared.fault.watch_cut()).flatten();
            watch_response(shared, target, &query, representation, cut)
        }
        Method::GET => {
            let representation = negotiate(accept.as_deref(), offers)?;
            if is_collection {
                if target.subresource != Subresource::None {
                    return Err(ApiError::method_not_allowed());
                }
                let options = list_options(&query, &target)?;
                // The page holds shared references, so it is rendered without the lock.
                let page = shared.lock().list(&target, &options)?;
                Ok(render_list(&target, page, representation, &query))
            } else {
                let (object, revision) = {
                    let state = shared.lock();
                    (state.get(&target)?, state.store.revision())
                };
                let representation = if target.subresource == Subresource::Scale {
                    Representation::Json
                } else {
                    representation
                };
                Ok(finish(
                    200,
                    &render_object(&target, &object, representation, &query, revision),
                ))
            }
        }
        Method::POST if is_collection && target.subresource == Subresource::None => {
            let options = write_options(&query, &user_agent, "CreateOptions")?;
            let body = read_body(request).await?;
            let object = parse_object(&body, content_type.as_deref(), &target.rt.kind)?;
            let reply = shared.lock().create(&target, object, &options)?;
            Ok(reply_response(reply, pretty))
        }
        Method::PUT if !is_collection => {
            let options = write_options(&query, &user_agent, "UpdateOptions")?;
            let body = read_body(request).await?;
            let kind = if target.subresource == Subresource::Scale {
                "Scale"
            } else {
                target.rt.kind.as_str()
            };
            let object = parse_object(&body, content_type.as_deref(), kind)?;
            // As if another writer had changed the object since the client read it.
            let has_version = object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty());
            if is_client && has_version && shared.fault.conflict() {
                return Err(ApiError::stale_resource_version(&target.rt, &target.name));
            }
            let reply = shared.lock().update(&target, object, &options)?;
            Ok(reply_response(reply, pretty))
        }
        Method::PATCH if !is_collection => {
            let patch_type = content_type
                .as_deref()
                .and_then(PatchType::from_content_type)
                .ok_or_else(|| {
                    ApiError::unsupported_media_type(&[
                        "application/json-patch+json",
                        "application/merge-patch+json",
                        "application/apply-patch+yaml",
                        "application/strategic-merge-patch+json",
                    ])
                })?;
            let options = write_options(&query, &user_agent, "PatchOptions")?;
            let body = read_body(request).await?;
            let reply = shared.lock().patch(&target, patch_type, &body, &options)?;
            Ok(reply_response(reply, pretty))
        }
        Method::DELETE if target.subresource == Subresource::None => {
            let body = read_body(request).await?;
            let options = delete_options(&body, &query)?;
            if is_collection {
                let list = list_options(&query, &target)?;
                let reply = shared.lock().delete_collection(&target, &list, &options)?;
                Ok(reply_response(reply, pretty))
            } else {
                let reply = shared.lock().delete(&target, &options)?;
                Ok(reply_response(reply, pretty))
            }
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn watch_response(
    shared: Arc<Shared>,
    target: Target,
    query: &HashMap<String, String>,
    representation: Representation,
    cut: Option<Duration>,
) -> Result<Response<Body>, ApiError> {
    let list = list_options(query, &target)?;
    let start = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => WatchStart::Current,
        Some(text) => WatchStart::After(
            text.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {text:?}")))?,
        ),
    };
    let timeout = match query.get("timeoutSeconds") {
        Some(text) => Duration::from_secs(
            text.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {text:?}")))?,
        ),
        None => DEFAULT_WATCH_TIMEOUT,
    };
    // A cut ends the stream as the server's own watch timeout does.
    let timeout = cut.map_or(timeout, |cut| timeout.min(cut));
    let params = WatchParams {
        target,
        labels: list.labels,
        fields: list.fields,
        start,
        bookmarks: flag(query, "allowWatchBookmarks"),
        initial_events_end: flag(query, "sendInitialEvents"),
        timeout,
        bookmark_interval: shared.bookmark_interval,
        representation,
        include: IncludeObject::parse(query.get("includeObject").map(String::as_str)),
    };
    let content_type = if representation == Representation::Table {
        representation.content_type()
    } else {
        "application/json"
    };
    let stream = watch::start(shared, params).map(|chunk| chunk.map(Frame::data));
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(response)
}
