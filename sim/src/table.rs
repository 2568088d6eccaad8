//! `meta.k8s.io/v1` Tables: what `kubectl get` prints.
//!
//! Columns follow the real server's printers for the common kinds; custom resources use
//! their CRD's `additionalPrinterColumns`; other kinds get `Name` and `Created At`.

use serde_json::{Map, Value, json};

use super::resource::{PrinterColumn, ResourceType};

/// What each row carries besides its cells (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// Only metadata, as `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter.
    pub fn parse(value: Option<&str>) -> IncludeObject {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

struct Column {
    name: String,
    type_name: &'static str,
    format: &'static str,
    priority: i64,
}

fn column(name: &str, type_name: &'static str, priority: i64) -> Column {
    Column {
        name: name.to_string(),
        type_name,
        format: if name == "Name" { "name" } else { "" },
        priority,
    }
}

/// Age as Kubernetes prints it (`5s`, `3m12s`, `4h`, `2d3h`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age_of(timestamp: Option<&str>, now: jiff::Timestamp) -> String {
    match timestamp.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(created) => human_duration(now.as_second() - created.as_second()),
        None => "<unknown>".into(),
    }
}

fn text<'a>(object: &'a Value, path: &str) -> &'a str {
    super::object::get_path(object, path)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn int(object: &Value, path: &str) -> i64 {
    super::object::get_path(object, path)
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn none_if_empty(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

fn containers_and_images(object: &Value, spec_path: &str) -> (String, String) {
    let containers = super::object::get_path(object, &format!("{spec_path}.containers"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect();
    (names.join(","), images.join(","))
}

/// The SELECTOR column: `spec.selector` as kubectl prints a label selector.
fn selector_text(object: &Value) -> String {
    let selector = super::object::get_path(object, "spec.selector")
        .map(super::cluster::scale::selector_string)
        .unwrap_or_default();
    none_if_empty(selector)
}

fn pod_status(pod: &Value) -> String {
    if super::object::get_path(pod, "metadata.deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let statuses = super::object::get_path(pod, "status.containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for status in &statuses {
        if let Some(reason) = status
            .get("state")
            .and_then(|s| s.get("waiting"))
            .and_then(|w| w.get("reason"))
            .and_then(Value::as_str)
        {
            return reason.into();
        }
    }
    let reason = text(pod, "status.reason");
    if !reason.is_empty() {
        return reason.into();
    }
    let phase = text(pod, "status.phase");
    if phase.is_empty() {
        "Unknown".into()
    } else {
        phase.into()
    }
}

fn builtin_columns(rt: &ResourceType) -> Option<Vec<Column>> {
    let named = |names: &[(&str, &'static str, i64)]| -> Vec<Column> {
        names.iter().map(|(n, t, p)| column(n, t, *p)).collect()
    };
    let columns = match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => named(&[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ]),
        ("", "Service") => named(&[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ]),
        ("", "Namespace") => named(&[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Age", "string", 0),
        ]),
        ("", "ConfigMap") => named(&[
            ("Name", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ]),
        ("", "Secret") => named(&[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ]),
        ("", "ServiceAccount") => named(&[
            ("Name", "string", 0),
            ("Secrets", "integer", 0),
            ("Age", "string", 0),
        ]),
        ("", "Endpoints") => named(&[
            ("Name", "string", 0),
            ("Endpoints", "string", 0),
            ("Age", "string", 0),
        ]),
        ("", "Node") => named(&[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
        ]),
        ("", "Event") => named(&[
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ]),
        ("apps", "Deployment") => named(&[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ]),
        ("apps", "ReplicaSet") => named(&[
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ]),
        ("apps", "StatefulSet") => named(&[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
        ]),
        ("apps", "DaemonSet") => named(&[
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Node Selector", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ]),
        ("batch", "Job") => named(&[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ]),
        ("coordination.k8s.io", "Lease") => named(&[
            ("Name", "string", 0),
            ("Holder", "string", 0),
            ("Age", "string", 0),
        ]),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => named(&[
            ("Name", "string", 0),
            ("Role", "string", 0),
            ("Age", "string", 0),
        ]),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => named(&[
            ("Name", "string", 0),
            ("Webhooks", "integer", 0),
            ("Age", "string", 0),
        ]),
        _ => return None,
    };
    Some(columns)
}

fn builtin_cells(rt: &ResourceType, object: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = json!(text(object, "metadata.name"));
    let age = json!(age_of(
        super::object::get_path(object, "metadata.creationTimestamp").and_then(Value::as_str),
        now
    ));
    let count = |path: &str| {
        super::object::get_path(object, path)
            .and_then(Value::as_object)
            .map_or(0, Map::len)
    };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            let statuses = super::object::get_path(object, "status.containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = super::object::get_path(object, "spec.containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|s| s["ready"] == json!(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|s| s["restartCount"].as_i64())
                .sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(object)),
                json!(restarts.to_string()),
                age,
                json!(none_if_empty(text(object, "status.podIP").into())),
                json!(none_if_empty(text(object, "spec.nodeName").into())),
                json!(none_if_empty(
                    text(object, "status.nominatedNodeName").into()
                )),
                json!("<none>"),
            ]
        }
        ("", "Service") => {
            let service_type = text(object, "spec.type");
            let cluster_ip = none_if_empty(text(object, "spec.clusterIP").into());
            let external = match service_type {
                "LoadBalancer" => {
                    let ingress: Vec<String> =
                        super::object::get_path(object, "status.loadBalancer.ingress")
                            .and_then(Value::as_array)
                            .map(|list| {
                                list.iter()
                                    .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default();
                    if ingress.is_empty() {
                        "<pending>".into()
                    } else {
                        ingress.join(",")
                    }
                }
                "ExternalName" => text(object, "spec.externalName").into(),
                _ => "<none>".to_string(),
            };
            let ports: Vec<String> = super::object::get_path(object, "spec.ports")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|p| {
                            let protocol = p["protocol"].as_str().unwrap_or("TCP");
                            match p["nodePort"].as_i64() {
                                Some(node) => format!("{}:{node}/{protocol}", p["port"]),
                                None => format!("{}/{protocol}", p["port"]),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let selector = super::object::get_path(object, "spec.selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                name,
                json!(service_type),
                json!(cluster_ip),
                json!(external),
                json!(none_if_empty(ports.join(","))),
                age,
                json!(none_if_empty(selector)),
            ]
        }
        ("", "Namespace") => vec![name, json!(text(object, "status.phase")), age],
        ("", "ConfigMap") => vec![name, json!(count("data") + count("binaryData")), age],
        ("", "Secret") => vec![name, json!(text(object, "type")), json!(count("data")), age],
        ("", "ServiceAccount") => {
            let secrets = super::object::get_path(object, "secrets")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            vec![name, json!(secrets), age]
        }
        ("", "Endpoints") => {
            let mut endpoints = Vec::new();
            for subset in super::object::get_path(object, "subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for address in subset["addresses"].as_array().into_iter().flatten() {
                    for port in subset["ports"].as_array().into_iter().flatten() {
                        endpoints.push(format!(
                            "{}:{}",
                            address["ip"].as_str().unwrap_or(""),
                            port["port"]
                        ));
                    }
                }
            }
            vec![name, json!(none_if_empty(endpoints.join(","))), age]
        }
        ("", "Node") => {
            let ready = super::object::get_path(object, "status.conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| {
                    if c["status"] == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                })
                .unwrap_or("Unknown");
            vec![
                name,
                json!(ready),
                json!("<none>"),
                age,
                json!(text(object, "status.nodeInfo.kubeletVersion")),
            ]
        }
        ("", "Event") => {
            let last = super::object::get_path(object, "lastTimestamp")
                .or_else(|| super::object::get_path(object, "eventTime"))
                .and_then(Value::as_str);
            vec![
                json!(age_of(
                    last.or(Some(text(object, "metadata.creationTimestamp"))),
                    now
                )),
                json!(text(object, "type")),
                json!(text(object, "reason")),
                json!(format!(
                    "{}/{}",
                    text(object, "involvedObject.kind").to_lowercase(),
                    text(object, "involvedObject.name")
                )),
                json!(text(object, "message")),
            ]
        }
        ("apps", "Deployment") => {
            let (containers, images) = containers_and_images(object, "spec.template.spec");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(object, "status.readyReplicas"),
                    int(object, "spec.replicas")
                )),
                json!(int(object, "status.updatedReplicas")),
                json!(int(object, "status.availableReplicas")),
                age,
                json!(containers),
                json!(images),
                json!(selector_text(object)),
            ]
        }
        ("apps", "ReplicaSet") => {
            let (containers, images) = containers_and_images(object, "spec.template.spec");
            vec![
                name,
                json!(int(object, "spec.replicas")),
                json!(int(object, "status.replicas")),
                json!(int(object, "status.readyReplicas")),
                age,
                json!(containers),
                json!(images),
                json!(selector_text(object)),
            ]
        }
        ("apps", "StatefulSet") => {
            let (containers, images) = containers_and_images(object, "spec.template.spec");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(object, "status.readyReplicas"),
                    int(object, "spec.replicas")
                )),
                age,
                json!(containers),
                json!(images),
            ]
        }
        ("apps", "DaemonSet") => {
            let (containers, images) = containers_and_images(object, "spec.template.spec");
            let node_selector = super::object::get_path(object, "spec.template.spec.nodeSelector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                name,
                json!(int(object, "status.desiredNumberScheduled")),
                json!(int(object, "status.currentNumberScheduled")),
                json!(int(object, "status.numberReady")),
                json!(int(object, "status.updatedNumberScheduled")),
                json!(int(object, "status.numberAvailable")),
                json!(none_if_empty(node_selector)),
                age,
                json!(containers),
                json!(images),
                json!(selector_text(object)),
            ]
        }
        ("batch", "Job") => {
            let (containers, images) = containers_and_images(object, "spec.template.spec");
            let complete = super::object::get_path(object, "status.conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Complete" && c["status"] == "True")
                });
            let status = if complete { "Complete" } else { "Running" };
            vec![
                name,
                json!(status),
                json!(format!(
                    "{}/{}",
                    int(object, "status.succeeded"),
                    int(object, "spec.completions").max(1)
                )),
                json!(""),
                age,
                json!(containers),
                json!(images),
                json!(selector_text(object)),
            ]
        }
        ("coordination.k8s.io", "Lease") => vec![
            name,
            json!(none_if_empty(text(object, "spec.holderIdentity").into())),
            age,
        ],
        ("rbac.authorization.k8s.io", _) => vec![
            name,
            json!(format!(
                "{}/{}",
                text(object, "roleRef.kind"),
                text(object, "roleRef.name")
            )),
            age,
        ],
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => {
            let hooks = super::object::get_path(object, "webhooks")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            vec![name, json!(hooks), age]
        }
        _ => vec![name, json!(text(object, "metadata.creationTimestamp"))],
    }
}

/// Evaluates the simple JSONPath used in printer columns (`.spec.hosts`, `.a[0].b`,
/// `.status.conditions[?(@.type=="Ready")].status`).
pub fn simple_json_path<'a>(object: &'a Value, path: &str) -> Vec<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut current: Vec<&Value> = vec![object];
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let field = &after[..end];
            if !field.is_empty() {
                current = current.into_iter().filter_map(|v| v.get(field)).collect();
            }
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return Vec::new();
            };
            let selector = &after[..end];
            rest = &after[end + 1..];
            if selector == "*" {
                current = current
                    .into_iter()
                    .flat_map(|v| {
                        v.as_array()
                            .map(|a| a.iter().collect::<Vec<_>>())
                            .unwrap_or_default()
                    })
                    .collect();
            } else if let Ok(index) = selector.parse::<usize>() {
                current = current.into_iter().filter_map(|v| v.get(index)).collect();
            } else if let Some(filter) = selector
                .strip_prefix("?(@.")
                .and_then(|f| f.strip_suffix(')'))
            {
                let Some((field, wanted)) = filter.split_once("==") else {
                    return Vec::new();
                };
                let wanted = wanted.trim().trim_matches('"').trim_matches('\'');
                let field = field.trim();
                current = current
                    .into_iter()
                    .flat_map(|v| {
                        v.as_array()
                            .map(|a| a.iter().collect::<Vec<_>>())
                            .unwrap_or_default()
                    })
                    .filter(|item| {
                        item.get(field)
                            .is_some_and(|v| super::object::scalar_text(v) == wanted)
                    })
                    .collect();
            } else {
                return Vec::new();
            }
        } else {
            return Vec::new();
        }
    }
    current
}

fn custom_cell(column: &PrinterColumn, object: &Value, now: jiff::Timestamp) -> Value {
    let results = simple_json_path(object, &column.json_path);
    let Some(first) = results.first() else {
        return Value::Null;
    };
    match column.type_name.as_str() {
        "date" => match first.as_str() {
            Some(timestamp) => json!(age_of(Some(timestamp), now)),
            None => Value::Null,
        },
        "integer" => first.as_i64().map(|n| json!(n)).unwrap_or(Value::Null),
        "number" => first.as_f64().map(|n| json!(n)).unwrap_or(Value::Null),
        "boolean" => first.as_bool().map(|b| json!(b)).unwrap_or(Value::Null),
        _ => match first {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
    }
}

fn row_object(object: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(object.clone()),
        IncludeObject::Metadata => Some(partial_metadata(object)),
    }
}

/// An object as metadata-only clients ask for it (`as=PartialObjectMetadata`).
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// Computes the cells of one row.
type CellsOf = Box<dyn Fn(&Value) -> Vec<Value>>;

/// Builds a Table of `objects` (each with kind and apiVersion) of type `rt` at `version`.
pub fn table(
    rt: &ResourceType,
    version: &str,
    objects: &[Value],
    resource_version: u64,
    continue_token: Option<&str>,
    include: IncludeObject,
) -> Value {
    let now = jiff::Timestamp::now();
    let (columns, cells): (Vec<Column>, CellsOf) = if rt.is_custom() {
        let extra = rt.printer_columns.get(version).cloned().unwrap_or_default();
        let mut columns = vec![column("Name", "string", 0)];
        let custom_columns = extra.clone();
        let add_age = extra.is_empty();
        for c in &extra {
            columns.push(Column {
                name: c.name.clone(),
                type_name: match c.type_name.as_str() {
                    "integer" => "integer",
                    "number" => "number",
                    "boolean" => "boolean",
                    "date" => "date",
                    _ => "string",
                },
                format: "",
                priority: c.priority,
            });
        }
        if add_age {
            columns.push(column("Age", "date", 0));
        }
        (
            columns,
            Box::new(move |object: &Value| {
                let mut row = vec![json!(text(object, "metadata.name"))];
                for c in &custom_columns {
                    row.push(custom_cell(c, object, now));
                }
                if add_age {
                    row.push(json!(age_of(
                        super::object::get_path(object, "metadata.creationTimestamp")
                            .and_then(Value::as_str),
                        now
                    )));
                }
                row
            }),
        )
    } else {
        match builtin_columns(rt) {
            Some(columns) => {
                let rt = rt.clone();
                (
                    columns,
                    Box::new(move |object: &Value| builtin_cells(&rt, object, now)),
                )
            }
            None => (
                vec![column("Name", "string", 0), column("Created At", "date", 0)],
                Box::new(|object: &Value| {
                    vec![
                        json!(text(object, "metadata.name")),
                        json!(text(object, "metadata.creationTimestamp")),
                    ]
                }),
            ),
        }
    };
    let column_definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.type_name,
                "format": c.format,
                "description": "",
                "priority": c.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut row = json!({"cells": cells(object)});
            if let Some(attached) = row_object(object, include) {
                row["object"] = attached;
            }
            row
        })
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }

    #[test]
    fn json_path_filters_conditions() {
        let object = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}});
        let found = simple_json_path(&object, ".status.conditions[?(@.type==\"Ready\")].status");
        assert_eq!(found, vec![&json!("True")]);
        assert!(simple_json_path(&object, ".spec.missing").is_empty());
    }

    #[test]
    fn service_rows_show_ports_and_external_ip() {
        let rt = Registry::new()
            .by_path("", "v1", "services")
            .expect("built-in");
        let service = json!({
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "gw", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.7",
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}
        });
        let table = table(&rt, "v1", &[service], 5, None, IncludeObject::Metadata);
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells[3], "<pending>");
        assert_eq!(cells[4], "80:30080/TCP");
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn the_selector_column_shows_expressions_too() {
        let rt = Registry::new()
            .by_path("apps", "v1", "replicasets")
            .expect("built-in");
        let replica_set = json!({
            "kind": "ReplicaSet", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"selector": {"matchLabels": {"app": "web"},
                                  "matchExpressions": [{"key": "tier", "operator": "In",
                                                        "values": ["a", "b"]}]}}
        });
        let table = table(&rt, "v1", &[replica_set], 5, None, IncludeObject::Metadata);
        let columns = table["columnDefinitions"].as_array().unwrap();
        let column = columns
            .iter()
            .position(|c| c["name"] == "Selector")
            .unwrap();
        assert_eq!(table["rows"][0]["cells"][column], "app=web,tier in (a,b)");
    }
}
