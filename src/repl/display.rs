//! How the REPL shows a result: Kubernetes objects as YAML (Secret values masked), lists of
//! objects as a table with a status column, anything else as Rhai's `to_string` shows it.

use rhai::Dynamic;
use serde_json::Value;

use crate::manifest::diff::mask_secrets;
use crate::manifest::yaml::to_yaml;
use crate::output::format_table;
use crate::session::convert::from_dynamic;

/// The text to print for a result, or `None` for `()` (statements print nothing), through
/// the redaction layer (Secrets by shape wherever nested, learnt secret values in any text).
/// `to_string` renders values that are neither objects nor lists of objects.
pub fn render(value: &Dynamic, to_string: impl Fn(&Dynamic) -> String) -> Option<String> {
    render_unredacted(value, to_string).map(|text| crate::redact::text(&text))
}

fn render_unredacted(value: &Dynamic, to_string: impl Fn(&Dynamic) -> String) -> Option<String> {
    if value.is_unit() {
        return None;
    }
    if (value.is_map() || value.is_array() || value.is::<crate::session::convert::Objects>())
        && let Ok(json) = from_dynamic(value)
        && let Some(text) = render_objects(&json)
    {
        return Some(text);
    }
    Some(to_string(value))
}

/// YAML for one object, a table for a non-empty list of objects, `None` otherwise.
pub fn render_objects(json: &Value) -> Option<String> {
    match json {
        object if is_object(object) => Some(
            to_yaml(&crate::redact::value(&mask_secrets(object)))
                .trim_end()
                .to_string(),
        ),
        Value::Array(items) if !items.is_empty() && items.iter().all(is_object) => {
            Some(object_table(items))
        }
        _ => None,
    }
}

/// A Kubernetes object, or a report about one (`apply` results): a map with a string `kind`.
fn is_object(value: &Value) -> bool {
    value.get("kind").is_some_and(Value::is_string)
}

/// KIND, NAMESPACE, NAME and STATUS of each object.
pub fn object_table(objects: &[Value]) -> String {
    let columns = ["kind", "namespace", "name", "status"].map(String::from);
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|object| {
            vec![
                text(&object["kind"]),
                text(field(object, "namespace")),
                text(field(object, "name")),
                status_of(object),
            ]
        })
        .collect();
    format_table(&columns, &rows)
}

/// `metadata.<key>`, or `<key>` itself for reports that carry it at the top.
fn field<'a>(object: &'a Value, key: &str) -> &'a Value {
    match &object["metadata"][key] {
        Value::Null => &object[key],
        found => found,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A one-word-or-so status: what `kubectl get` would put in its most telling column.
pub fn status_of(object: &Value) -> String {
    if let Some(action) = object["action"].as_str() {
        return action.to_string();
    }
    let status = &object["status"];
    match object["kind"].as_str().unwrap_or_default() {
        "Pod" => pod_status(status),
        "Deployment" | "StatefulSet" | "ReplicaSet" => replicas_status(object),
        "DaemonSet" => format!(
            "{}/{} ready",
            count(&status["numberReady"]),
            count(&status["desiredNumberScheduled"])
        ),
        "Job" => format!(
            "{}/{} succeeded",
            count(&status["succeeded"]),
            object["spec"]["completions"].as_i64().unwrap_or(1)
        ),
        _ => condition_or_phase(status),
    }
}

fn pod_status(status: &Value) -> String {
    let phase = status["phase"].as_str().unwrap_or("Unknown");
    let containers = status["containerStatuses"].as_array();
    match containers {
        Some(list) if !list.is_empty() => {
            let ready = list.iter().filter(|c| c["ready"] == true).count();
            format!("{phase} {ready}/{} ready", list.len())
        }
        _ => phase.to_string(),
    }
}

fn replicas_status(object: &Value) -> String {
    let wanted = object["spec"]["replicas"]
        .as_i64()
        .or_else(|| object["status"]["replicas"].as_i64())
        .unwrap_or(1);
    format!(
        "{}/{wanted} ready",
        count(&object["status"]["readyReplicas"])
    )
}

fn count(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

/// The first condition that holds (`Ready`, `Available`, `Established`), else the phase.
fn condition_or_phase(status: &Value) -> String {
    let conditions = status["conditions"].as_array().into_iter().flatten();
    let holding: Vec<&str> = conditions
        .filter(|c| c["status"] == "True")
        .filter_map(|c| c["type"].as_str())
        .collect();
    match (holding.first(), status["phase"].as_str()) {
        (Some(condition), _) => condition.to_string(),
        (None, Some(phase)) => phase.to_string(),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_print_as_yaml_with_secrets_masked() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                            "data": {"password": "aHVudGVyMg=="}});
        let text = render_objects(&secret).unwrap();
        assert!(text.contains("kind: Secret"), "{text}");
        assert!(
            text.contains("password: '***'") || text.contains("password: \"***\""),
            "{text}"
        );
        assert!(!text.contains("aHVudGVyMg"), "{text}");
    }

    #[test]
    fn lists_of_objects_print_as_a_table_with_status() {
        let objects = vec![
            json!({"kind": "Pod", "metadata": {"name": "reviews-1", "namespace": "bookinfo"},
                   "status": {"phase": "Running", "containerStatuses": [{"ready": true}, {"ready": false}]}}),
            json!({"kind": "Deployment", "metadata": {"name": "reviews", "namespace": "bookinfo"},
                   "spec": {"replicas": 3}, "status": {"readyReplicas": 2}}),
            json!({"kind": "Namespace", "metadata": {"name": "bookinfo"}, "status": {"phase": "Active"}}),
            json!({"kind": "CustomResourceDefinition", "metadata": {"name": "gateways.networking.istio.io"},
                   "status": {"conditions": [{"type": "NamesAccepted", "status": "False"},
                                             {"type": "Established", "status": "True"}]}}),
            json!({"kind": "Service", "namespace": "bookinfo", "name": "ratings", "action": "created"}),
        ];
        assert_eq!(
            render_objects(&Value::Array(objects)).unwrap(),
            "KIND                      NAMESPACE  NAME                          STATUS\n\
             Pod                       bookinfo   reviews-1                     Running 1/2 ready\n\
             Deployment                bookinfo   reviews                       2/3 ready\n\
             Namespace                            bookinfo                      Active\n\
             CustomResourceDefinition             gateways.networking.istio.io  Established\n\
             Service                   bookinfo   ratings                       created"
        );
    }

    #[test]
    fn other_values_use_to_string_and_unit_prints_nothing() {
        let shown = |v: Dynamic| render(&v, |v| format!("<{v}>"));
        assert_eq!(shown(Dynamic::UNIT), None);
        assert_eq!(shown(Dynamic::from_int(42)), Some("<42>".into()));
        assert_eq!(
            shown(Dynamic::from_array(vec![Dynamic::from_int(1)])),
            Some("<[1]>".into())
        );
        assert_eq!(shown(Dynamic::from_array(vec![])), Some("<[]>".into()));
    }
}
