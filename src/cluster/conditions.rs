//! What waits wait for: pure predicates over objects as JSON, kube-runtime style. A condition
//! sees `None` when the object does not exist. Timeouts belong to the caller.

use serde_json::Value;

use crate::manifest::jsonpath;

/// A condition as users write it: `Available`, `Ready`, `Established`, `deleted`, `Complete`,
/// `condition=Foo`, `jsonpath={.status.phase}=Running`, `rollout`.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `status.conditions[type=X].status == "True"`.
    StatusCondition(String),
    /// The object no longer exists.
    Deleted,
    /// The object exists.
    Exists,
    /// A JSONPath renders to a value (or, with no value, to anything non-empty).
    JsonPath { path: String, value: Option<String> },
    /// A Deployment, StatefulSet or DaemonSet finished rolling out.
    RolledOut,
}

impl Condition {
    /// Parses a condition the way `kubectl wait --for` spells them.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("jsonpath=") {
            return parse_jsonpath(rest);
        }
        if let Some(rest) = text.strip_prefix("condition=") {
            let name = rest.split('=').next().unwrap_or_default();
            return non_empty(name).map(|n| Condition::StatusCondition(n.to_string()));
        }
        match text.to_lowercase().as_str() {
            "delete" | "deleted" => Ok(Condition::Deleted),
            "create" | "created" | "exists" => Ok(Condition::Exists),
            "rollout" | "rolledout" | "rolled-out" => Ok(Condition::RolledOut),
            "" => Err("empty condition: expected e.g. `Available`, `deleted` or `jsonpath={.status.phase}=Running`".into()),
            _ if text.chars().all(|c| c.is_ascii_alphanumeric()) => Ok(Condition::StatusCondition(text.to_string())),
            _ => Err(format!(
                "unknown condition `{text}`: use a status condition (`Available`, `Ready`, `Established`), `deleted`, `rollout`, or `jsonpath={{...}}=value`"
            )),
        }
    }

    /// Does the (possibly absent) object satisfy the condition?
    pub fn is_met(&self, object: Option<&Value>) -> bool {
        match (self, object) {
            (Condition::Deleted, object) => object.is_none(),
            (_, None) => false,
            (Condition::Exists, Some(_)) => true,
            (Condition::StatusCondition(name), Some(object)) => has_true_condition(object, name),
            (Condition::JsonPath { path, value }, Some(object)) => {
                let rendered = jsonpath::render(path, object).unwrap_or_default();
                match value {
                    Some(expected) => rendered == *expected,
                    None => !rendered.is_empty(),
                }
            }
            (Condition::RolledOut, Some(object)) => is_rolled_out(object).is_ok(),
        }
    }

    /// What the object shows that is relevant to this condition, for progress and timeouts.
    pub fn describe(&self, object: Option<&Value>) -> String {
        let Some(object) = object else {
            return "the object does not exist".into();
        };
        match self {
            Condition::Deleted => match object["metadata"]["deletionTimestamp"].as_str() {
                Some(_) => format!(
                    "still exists, being deleted (finalizers: {})",
                    object["metadata"]["finalizers"]
                ),
                None => "still exists".into(),
            },
            Condition::Exists => "exists".into(),
            Condition::StatusCondition(name) => describe_condition(object, name),
            Condition::JsonPath { path, .. } => match jsonpath::render(path, object) {
                Ok(text) if text.is_empty() => format!("{path} is empty"),
                Ok(text) => format!("{path} is {text:?}"),
                Err(error) => format!("{path}: {error}"),
            },
            Condition::RolledOut => match is_rolled_out(object) {
                Ok(()) => "rolled out".into(),
                Err(progress) => progress,
            },
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::StatusCondition(name) => write!(f, "{name}"),
            Condition::Deleted => write!(f, "deleted"),
            Condition::Exists => write!(f, "exists"),
            Condition::JsonPath {
                path,
                value: Some(value),
            } => write!(f, "jsonpath={path}={value}"),
            Condition::JsonPath { path, value: None } => write!(f, "jsonpath={path}"),
            Condition::RolledOut => write!(f, "rollout"),
        }
    }
}

fn non_empty(name: &str) -> Result<&str, String> {
    if name.is_empty() {
        Err("`condition=` needs a condition name".into())
    } else {
        Ok(name)
    }
}

fn parse_jsonpath(rest: &str) -> Result<Condition, String> {
    // `{.status.phase}=Running`: the value follows the closing brace of the expression.
    let Some(end) = rest.rfind('}') else {
        return Err(format!("`jsonpath={rest}` needs a `{{...}}` expression"));
    };
    let path = rest[..=end].to_string();
    jsonpath::render(&path, &Value::Null).map_err(|e| format!("`{path}`: {e}"))?;
    let value = rest[end + 1..]
        .strip_prefix('=')
        .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_string());
    Ok(Condition::JsonPath { path, value })
}

/// `status.conditions` entry `name` has status `True`.
pub fn has_true_condition(object: &Value, name: &str) -> bool {
    conditions(object).any(|c| {
        c["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(name))
            && c["status"] == "True"
    })
}

fn conditions(object: &Value) -> impl Iterator<Item = &Value> {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
}

fn describe_condition(object: &Value, name: &str) -> String {
    match conditions(object).find(|c| {
        c["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(name))
    }) {
        Some(condition) => {
            let mut text = format!("{name}={}", condition["status"].as_str().unwrap_or("?"));
            if let Some(reason) = condition["reason"].as_str() {
                text.push_str(&format!(" ({reason}"));
                if let Some(message) = condition["message"].as_str() {
                    text.push_str(&format!(": {message}"));
                }
                text.push(')');
            }
            text
        }
        None => {
            let present: Vec<&str> = conditions(object)
                .filter_map(|c| c["type"].as_str())
                .collect();
            if present.is_empty() {
                format!("no `{name}` condition yet (no status conditions)")
            } else {
                format!("no `{name}` condition yet (has {})", present.join(", "))
            }
        }
    }
}

/// What a workload's status conditions say against it: each condition that is not `True`
/// (`Available=False (MinimumReplicasUnavailable: …)`, `Progressing=False
/// (ProgressDeadlineExceeded: …)`, `Progressing=Unknown (DeploymentPaused: …)`), and a
/// paused Deployment as such when the server gave no condition for it.
pub fn rollout_conditions(workload: &Value) -> Vec<String> {
    let mut found: Vec<String> = conditions(workload)
        .filter(|c| c["status"] != "True")
        .filter_map(|c| c["type"].as_str())
        .map(|name| describe_condition(workload, name))
        .collect();
    let paused_said = found.iter().any(|c| c.contains("DeploymentPaused"));
    if workload["spec"]["paused"] == true && !paused_said {
        found.push("paused (spec.paused: true)".to_string());
    }
    found
}

/// `Ok` when a workload finished rolling out, else what it is waiting for (the checks of
/// `kubectl rollout status`).
pub fn is_rolled_out(object: &Value) -> Result<(), String> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let status = &object["status"];
    let number = |v: &Value| v.as_i64().unwrap_or(0);
    let generation = number(&object["metadata"]["generation"]);
    let observed = number(&status["observedGeneration"]);
    if observed < generation {
        return Err(format!(
            "waiting for the controller to see generation {generation} (saw {observed})"
        ));
    }
    match kind {
        "Deployment" | "StatefulSet" => {
            let wanted = object["spec"]["replicas"].as_i64().unwrap_or(1);
            let updated = number(&status["updatedReplicas"]);
            let ready = number(
                &status[if kind == "Deployment" {
                    "availableReplicas"
                } else {
                    "readyReplicas"
                }],
            );
            let total = number(&status["replicas"]);
            if updated < wanted {
                Err(format!("{updated} of {wanted} replicas updated"))
            } else if total > updated {
                Err(format!(
                    "{} old replicas pending termination",
                    total - updated
                ))
            } else if ready < updated {
                Err(format!("{ready} of {updated} updated replicas available"))
            } else {
                Ok(())
            }
        }
        "DaemonSet" => {
            let desired = number(&status["desiredNumberScheduled"]);
            let updated = number(&status["updatedNumberScheduled"]);
            let available = number(&status["numberAvailable"]);
            if updated < desired {
                Err(format!("{updated} of {desired} pods updated"))
            } else if available < desired {
                Err(format!("{available} of {desired} updated pods available"))
            } else {
                Ok(())
            }
        }
        other => Err(format!(
            "`{other}` has no rollout; wait for a condition instead"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        crate::manifest::yaml::parse_documents("test", text)
            .unwrap()
            .remove(0)
            .value
    }

    fn deployment(status: &str) -> Value {
        yaml(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: reviews-v1, generation: 2}}\nspec: {{replicas: 2}}\nstatus:\n{status}"
        ))
    }

    #[test]
    fn parses_kubectl_spellings() {
        assert_eq!(
            Condition::parse("Available").unwrap(),
            Condition::StatusCondition("Available".into())
        );
        assert_eq!(
            Condition::parse("condition=Ready").unwrap(),
            Condition::StatusCondition("Ready".into())
        );
        assert_eq!(Condition::parse("delete").unwrap(), Condition::Deleted);
        assert_eq!(
            Condition::parse("jsonpath={.status.phase}=Running").unwrap(),
            Condition::JsonPath {
                path: "{.status.phase}".into(),
                value: Some("Running".into())
            }
        );
        assert!(
            Condition::parse("jsonpath=.status")
                .unwrap_err()
                .contains("needs a `{...}`")
        );
        assert!(
            Condition::parse("ready now")
                .unwrap_err()
                .starts_with("unknown condition")
        );
    }

    #[test]
    fn available_ok_pending_missing() {
        let condition = Condition::parse("Available").unwrap();
        let ok = deployment("  conditions: [{type: Available, status: 'True'}]\n");
        let pending = deployment(
            "  conditions: [{type: Available, status: 'False', reason: MinimumReplicasUnavailable, message: waiting}]\n",
        );
        assert!(condition.is_met(Some(&ok)));
        assert!(!condition.is_met(Some(&pending)));
        assert_eq!(
            condition.describe(Some(&pending)),
            "Available=False (MinimumReplicasUnavailable: waiting)"
        );
        assert!(!condition.is_met(None));
        assert_eq!(condition.describe(None), "the object does not exist");
    }

    #[test]
    fn deleted_ok_pending() {
        let object = yaml(
            "kind: ConfigMap\nmetadata: {name: a, deletionTimestamp: '2026-01-01T00:00:00Z', finalizers: [x]}\n",
        );
        assert!(Condition::Deleted.is_met(None));
        assert!(!Condition::Deleted.is_met(Some(&object)));
        assert!(
            Condition::Deleted
                .describe(Some(&object))
                .starts_with("still exists, being deleted")
        );
    }

    #[test]
    fn jsonpath_ok_pending_missing() {
        let condition = Condition::parse("jsonpath={.status.loadBalancer.ingress[0].ip}").unwrap();
        let ok = yaml("kind: Service\nstatus: {loadBalancer: {ingress: [{ip: 20.1.2.3}]}}\n");
        let pending = yaml("kind: Service\nstatus: {loadBalancer: {}}\n");
        assert!(condition.is_met(Some(&ok)));
        assert!(!condition.is_met(Some(&pending)));
        assert_eq!(
            condition.describe(Some(&pending)),
            "{.status.loadBalancer.ingress[0].ip} is empty"
        );
    }

    #[test]
    fn rollout_conditions_name_what_is_not_true() {
        let stuck = deployment(
            "  conditions:\n  - {type: Available, status: 'False', reason: MinimumReplicasUnavailable, message: Deployment does not have minimum availability.}\n  - {type: Progressing, status: 'True', reason: ReplicaSetUpdated}\n",
        );
        assert_eq!(
            rollout_conditions(&stuck),
            vec![
                "Available=False (MinimumReplicasUnavailable: Deployment does not have minimum availability.)"
            ]
        );
        let mut paused = deployment("  observedGeneration: 2\n");
        paused["spec"]["paused"] = serde_json::json!(true);
        assert_eq!(
            rollout_conditions(&paused),
            vec!["paused (spec.paused: true)"]
        );
    }

    #[test]
    fn rollout_ok_pending() {
        let done = deployment(
            "  observedGeneration: 2\n  replicas: 2\n  updatedReplicas: 2\n  availableReplicas: 2\n",
        );
        let old_generation = deployment("  observedGeneration: 1\n");
        let halfway = deployment(
            "  observedGeneration: 2\n  replicas: 3\n  updatedReplicas: 2\n  availableReplicas: 1\n",
        );
        assert!(Condition::RolledOut.is_met(Some(&done)));
        assert_eq!(
            is_rolled_out(&old_generation).unwrap_err(),
            "waiting for the controller to see generation 2 (saw 1)"
        );
        assert_eq!(
            is_rolled_out(&halfway).unwrap_err(),
            "1 old replicas pending termination"
        );
    }
}
