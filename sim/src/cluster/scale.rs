//! The `/scale` subresource.

use serde_json::{Map, Value, json};

use super::{ClusterState, Reply, Subresource, Target, WriteOptions};
use crate::object::{StoredObject, get_path, meta_str, set_path};
use crate::patch::{self, PatchType, strategic};
use crate::status::{ApiError, Cause};

impl ClusterState {
    pub(super) fn scale_of(&self, target: &Target, stored: &StoredObject) -> Value {
        let rt = &target.rt;
        let object = stored.to_value(&rt.api_version(rt.preferred_version()), &rt.kind);
        let paths = rt.scale.clone().unwrap_or(crate::resource::ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        });
        let spec_replicas = get_path(&object, &paths.spec_replicas)
            .cloned()
            .unwrap_or(json!(0));
        let status_replicas = get_path(&object, &paths.status_replicas)
            .cloned()
            .unwrap_or(json!(0));
        let selector = match paths.label_selector.as_deref() {
            Some(".spec.selector") if !rt.is_custom() => {
                get_path(&object, "spec.selector").map(selector_string)
            }
            Some(path) => get_path(&object, path)
                .and_then(Value::as_str)
                .map(str::to_string),
            None => None,
        };
        let mut status = json!({"replicas": status_replicas});
        if let Some(selector) = selector {
            status["selector"] = json!(selector);
        }
        let meta = object.get("metadata").cloned().unwrap_or(json!({}));
        let mut scale_meta = Map::new();
        for key in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(value) = meta.get(key) {
                scale_meta.insert(key.into(), value.clone());
            }
        }
        json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": scale_meta,
            "spec": {"replicas": spec_replicas},
            "status": status,
        })
    }

    pub(super) fn patch_scale(
        &mut self,
        target: &Target,
        patch_type: PatchType,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        let stored = self.get_stored(target)?;
        let scale = self.scale_of(target, &stored);
        let patched = match patch_type {
            PatchType::Json => patch::apply_json_patch(&scale, body)?,
            PatchType::Merge => patch::apply_merge_patch(&scale, body)?,
            PatchType::Strategic => {
                let patch_value: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                strategic::apply(&scale, &patch_value, &crate::schema::Shape::Untyped)
                    .map_err(|_| ApiError::unprocessable())?
            }
            PatchType::Apply => {
                let config: Value = meshshift_support::yaml::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
                patch::apply_merge_patch(&scale, config.to_string().as_bytes())?
            }
        };
        self.update_scale(target, patched, options, Some(scale))
    }

    pub(super) fn update_scale(
        &mut self,
        target: &Target,
        scale: Value,
        options: &WriteOptions,
        current: Option<Value>,
    ) -> Result<Reply, ApiError> {
        let rt = target.rt.clone();
        let stored = self.get_stored(target)?;
        let current = match current {
            Some(current) => current,
            None => self.scale_of(target, &stored),
        };
        let replicas = match get_path(&scale, "spec.replicas") {
            Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n >= 0) => n.as_i64().unwrap_or(0),
            Some(other) => {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    &target.name,
                    vec![Cause::invalid(
                        "spec.replicas",
                        other,
                        "must be greater than or equal to 0",
                    )],
                ));
            }
            None => 0,
        };
        let wanted_version = meta_str(&scale, "resourceVersion");
        if !wanted_version.is_empty() && wanted_version != meta_str(&current, "resourceVersion") {
            return Err(ApiError::stale_resource_version(&rt, &target.name));
        }
        let old = Self::value_of(&rt, &stored, rt.preferred_version());
        let mut new = old.clone();
        let path = rt
            .scale
            .as_ref()
            .map(|s| s.spec_replicas.clone())
            .unwrap_or(".spec.replicas".into());
        set_path(&mut new, &path, json!(replicas));
        let main = Target {
            subresource: Subresource::Scale,
            version: rt.preferred_version().to_string(),
            ..target.clone()
        };
        // The answer is the Scale view of the object as now stored.
        self.write_existing(&main, &old, new, options, false)?;
        let stored = self.get_stored(target)?;
        let mut answer = self.scale_of(target, &stored);
        if options.dry_run {
            answer["spec"]["replicas"] = json!(replicas);
        }
        Ok(Reply::ok(answer))
    }
}

/// The label selector of a workload as the Scale subresource shows it (`app=web`).
pub(crate) fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(expressions) = selector.get("matchExpressions").and_then(Value::as_array) {
        for expression in expressions {
            let key = expression.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = expression
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match expression.get("operator").and_then(Value::as_str) {
                Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
                Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
                Some("Exists") => parts.push(key.to_string()),
                Some("DoesNotExist") => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.sort();
    parts.join(",")
}
