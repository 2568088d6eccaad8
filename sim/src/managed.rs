//! `metadata.managedFields`: who owns which fields, kept up to date on every write.
//!
//! Writes other than apply record an `Update` entry for the fields the request changed;
//! server-side apply replaces the applier's `Apply` entry with the fields of its
//! configuration, removes fields the applier stopped applying (unless someone else owns
//! them) and refuses to change fields owned by other managers unless forced. This follows
//! structured-merge-diff, the library the real server uses.

use serde_json::{Map, Value, json};

use super::fieldset::{FieldPath, FieldSet, display_path, field_path};
use super::patch::structured::{compare, merge, remove_field, to_field_set};
use super::schema::Shape;
use super::status::{ApiError, Cause};

/// The kind of write an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedEntry {
    /// Field manager name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// API version the fields were written in.
    pub api_version: String,
    /// When the fields last changed.
    pub time: Option<String>,
    /// Subresource written (`status`), empty for the main resource.
    pub subresource: String,
    /// Owned fields.
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn same_identity(
        &self,
        manager: &str,
        operation: Operation,
        subresource: &str,
        api_version: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    /// The manager as conflict messages name it.
    fn describe(&self) -> String {
        let mut text = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            text = format!("{text} with subresource {:?}", self.subresource);
        }
        if self.operation == Operation::Update {
            text = format!("{text} using {}", self.api_version);
        }
        text
    }

    fn to_json(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("manager".into(), json!(self.manager));
        entry.insert("operation".into(), json!(self.operation.as_str()));
        entry.insert("apiVersion".into(), json!(self.api_version));
        if let Some(time) = &self.time {
            entry.insert("time".into(), json!(time));
        }
        entry.insert("fieldsType".into(), json!("FieldsV1"));
        entry.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            entry.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(entry)
    }
}

/// Reads `metadata.managedFields`; entries without a manager or fields are dropped.
pub fn decode(object: &Value) -> Result<Vec<ManagedEntry>, String> {
    let Some(list) = object
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
    else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    for item in list {
        let text = |key: &str| {
            item.get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let operation = match text("operation").as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            "" => continue,
            other => return Err(format!("unknown operation {other:?}")),
        };
        let fields = match item.get("fieldsV1") {
            Some(fields) => FieldSet::from_fields_v1(fields)?,
            None => FieldSet::new(),
        };
        let manager = text("manager");
        if fields.is_empty() && manager.is_empty() {
            continue;
        }
        entries.push(ManagedEntry {
            manager,
            operation,
            api_version: text("apiVersion"),
            time: item.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: text("subresource"),
            fields,
        });
    }
    Ok(entries)
}

/// Writes entries into `metadata.managedFields`, sorted like the real server (Apply first,
/// then by time and manager), or removes the field when there are none.
pub fn store(object: &mut Value, entries: &mut [ManagedEntry]) {
    entries.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let meta = super::object::meta_mut(object);
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(ManagedEntry::to_json).collect()),
        );
    }
}

/// What a write looks like to the field manager.
pub struct WriteContext<'a> {
    /// Merge shape of the kind.
    pub shape: &'a Shape,
    /// API version of the request.
    pub api_version: &'a str,
    /// Subresource written, empty for the main resource.
    pub subresource: &'a str,
    /// Field prefixes the endpoint resets, so nobody owns them through it (`status` on the
    /// main resource of kinds with a status subresource).
    pub ignored: Vec<FieldPath>,
    /// Current time for entry timestamps.
    pub now: &'a str,
}

/// Paths the server owns, never recorded for a manager.
fn server_owned() -> Vec<FieldPath> {
    [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
        &["metadata", "deletionTimestamp"],
        &["metadata", "deletionGracePeriodSeconds"],
    ]
    .iter()
    .map(|names| field_path(names))
    .collect()
}

impl WriteContext<'_> {
    fn trim(&self, set: &FieldSet) -> FieldSet {
        let owned = server_owned();
        let mut exact = FieldSet::new();
        for path in owned {
            exact.insert(path);
        }
        set.difference(&exact).without_prefixes(&self.ignored)
    }
}

fn without_managed_fields(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    copy
}

/// Records a non-apply write of `new` over `old` (`None` on create, compared against the
/// kind's zero value `zero`) by `manager`, updating `new`'s managedFields.
pub fn record_update(
    old: Option<&Value>,
    zero: &Value,
    new: &mut Value,
    context: &WriteContext,
    manager: &str,
) -> Result<(), ApiError> {
    let provided =
        decode(new).map_err(|e| ApiError::bad_request(format!("invalid managedFields: {e}")))?;
    let old_entries = match old {
        Some(old) => decode(old).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut entries = if provided.is_empty() {
        old_entries
    } else {
        provided
    };
    let before = without_managed_fields(old.unwrap_or(zero));
    let after = without_managed_fields(new);
    let comparison = compare(&before, &after, context.shape);
    let changed = context.trim(&comparison.modified.union(&comparison.added));
    let removed = context.trim(&comparison.removed);
    let touched = changed.union(&removed);
    for entry in &mut entries {
        entry.fields = entry.fields.difference(&touched);
    }
    let own = changed.difference(&removed);
    if !own.is_empty() {
        let position = entries.iter().position(|e| {
            e.same_identity(
                manager,
                Operation::Update,
                context.subresource,
                context.api_version,
            )
        });
        match position {
            Some(i) => {
                entries[i].fields = entries[i].fields.union(&own);
                entries[i].time = Some(context.now.to_string());
            }
            None => entries.push(ManagedEntry {
                manager: manager.to_string(),
                operation: Operation::Update,
                api_version: context.api_version.to_string(),
                time: Some(context.now.to_string()),
                subresource: context.subresource.to_string(),
                fields: own,
            }),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    store(new, &mut entries);
    Ok(())
}

/// The fields kubectl's last client-side apply set and that still have those values: a
/// server-side apply by `kubectl` may take them over without a conflict, which is how the
/// real server lets users move from client-side to server-side apply.
pub fn last_applied_takeover(live: &Value, shape: &Shape) -> Option<FieldSet> {
    let text = live
        .get("metadata")?
        .get("annotations")?
        .get("kubectl.kubernetes.io/last-applied-configuration")?
        .as_str()?;
    let last_applied: Value = serde_json::from_str(text).ok()?;
    let changed_since = compare(&last_applied, &without_managed_fields(live), shape).modified;
    Some(to_field_set(&last_applied, shape).difference(&changed_since))
}

/// Fields an apply would take from other managers.
#[derive(Debug)]
pub struct Conflicts {
    /// (manager as messages name it, path) pairs, sorted.
    pub fields: Vec<(String, FieldPath)>,
}

impl Conflicts {
    /// The `409 Conflict` Status the real server answers with.
    pub fn to_error(&self) -> ApiError {
        conflict_error(self.fields.clone())
    }
}

/// Applies `config` over `live` (the kind's zero value on create) for `manager`; returns the
/// merged object with its managedFields, or the conflicts with other managers.
pub fn apply(
    live: &Value,
    config: &Value,
    context: &WriteContext,
    manager: &str,
    force: bool,
) -> Result<Value, Conflicts> {
    let mut entries = decode(live).unwrap_or_default();
    let live_plain = without_managed_fields(live);
    let config_plain = without_managed_fields(config);
    let mut merged = merge(&live_plain, &config_plain, context.shape);
    let applied = context.trim(&to_field_set(&config_plain, context.shape));
    let position = entries.iter().position(|e| {
        e.same_identity(
            manager,
            Operation::Apply,
            context.subresource,
            context.api_version,
        )
    });
    let last = position
        .map(|i| entries[i].fields.clone())
        .unwrap_or_default();
    let self_index = match position {
        Some(i) => {
            entries[i].fields = applied.clone();
            entries[i].api_version = context.api_version.to_string();
            i
        }
        None => {
            entries.push(ManagedEntry {
                manager: manager.to_string(),
                operation: Operation::Apply,
                api_version: context.api_version.to_string(),
                time: None,
                subresource: context.subresource.to_string(),
                fields: applied.clone(),
            });
            entries.len() - 1
        }
    };
    // Fields the applier dropped go away unless some manager still owns them or something
    // below them.
    let owned_by_anyone = entries
        .iter()
        .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
    for path in last.difference(&applied).iter() {
        if !owned_by_anyone.contains(path) && !owned_by_anyone.has_descendant(path) {
            remove_field(&mut merged, path, context.shape);
        }
    }
    let comparison = compare(&live_plain, &merged, context.shape);
    let changed = context.trim(&comparison.modified.union(&comparison.added));
    let removed = context.trim(&comparison.removed);
    let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if i == self_index {
            continue;
        }
        for path in entry.fields.intersection(&changed).iter() {
            conflicts.push((entry.describe(), path.clone()));
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort();
        return Err(Conflicts { fields: conflicts });
    }
    for (i, entry) in entries.iter_mut().enumerate() {
        if i != self_index {
            entry.fields = entry.fields.difference(&changed).difference(&removed);
        }
    }
    let object_changed = !comparison.is_same();
    if object_changed || last != applied || entries[self_index].time.is_none() {
        entries[self_index].time = Some(context.now.to_string());
    }
    let keep_self = !entries[self_index].fields.is_empty();
    let mut kept: Vec<ManagedEntry> = entries
        .into_iter()
        .enumerate()
        .filter(|(i, e)| {
            if *i == self_index {
                keep_self
            } else {
                !e.fields.is_empty()
            }
        })
        .map(|(_, e)| e)
        .collect();
    store(&mut merged, &mut kept);
    Ok(merged)
}

fn conflict_error(mut conflicts: Vec<(String, FieldPath)>) -> ApiError {
    conflicts.sort();
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(manager, path)| {
            Cause::new(
                "FieldManagerConflict",
                format!("conflict with {manager}"),
                display_path(path),
            )
        })
        .collect();
    let message = if let [(manager, path)] = conflicts.as_slice() {
        format!(
            "Apply failed with 1 conflict: conflict with {manager}: {}",
            display_path(path)
        )
    } else {
        let mut lines = Vec::new();
        let mut current: Option<&str> = None;
        for (manager, path) in &conflicts {
            if current != Some(manager.as_str()) {
                lines.push(format!("conflicts with {manager}:"));
                current = Some(manager);
            }
            lines.push(format!("- {}", display_path(path)));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut error = ApiError::new(409, "Conflict", message);
    error.details = Some(Box::new(json!({
        "causes": causes.iter().map(|c| json!({
            "reason": c.reason, "message": c.message, "field": c.field
        })).collect::<Vec<_>>()
    })));
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldset::field_path;
    use crate::schema;

    fn context<'a>(shape: &'a Shape, now: &'a str) -> WriteContext<'a> {
        WriteContext {
            shape,
            api_version: "v1",
            subresource: "",
            ignored: Vec::new(),
            now,
        }
    }

    fn configmap(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c", "namespace": "default"}, "data": data})
    }

    #[test]
    fn create_records_an_update_entry_like_the_real_server() {
        let shape = schema::builtin("ConfigMap");
        let mut object = configmap(json!({"k": "v"}));
        object["metadata"]["labels"] = json!({"x": "1"});
        record_update(
            None,
            &json!({"metadata": {}}),
            &mut object,
            &context(&shape, "t1"),
            "curl",
        )
        .expect("records");
        assert_eq!(
            object["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
        );
        assert_eq!(object["metadata"]["managedFields"][0]["manager"], "curl");
    }

    #[test]
    fn apply_conflicts_with_an_update_manager_and_force_takes_over() {
        let shape = schema::builtin("ConfigMap");
        let ctx = context(&shape, "t1");
        let mut live = configmap(json!({"k": "v"}));
        record_update(None, &json!({"metadata": {}}), &mut live, &ctx, "curl").expect("records");
        let config = configmap(json!({"k": "other"}));
        let error = apply(&live, &config, &ctx, "m1", false)
            .expect_err("conflict")
            .to_error();
        assert_eq!(
            error.message,
            "Apply failed with 1 conflict: conflict with \"curl\" using v1: .data.k"
        );
        let forced = apply(&live, &config, &ctx, "m1", true).expect("forced apply");
        let entries = decode(&forced).expect("valid");
        let owner_of_k: Vec<&str> = entries
            .iter()
            .filter(|e| e.fields.contains(&field_path(&["data", "k"])))
            .map(|e| e.manager.as_str())
            .collect();
        assert_eq!(owner_of_k, ["m1"]);
        assert_eq!(forced["data"]["k"], "other");
    }

    #[test]
    fn same_values_are_shared_not_conflicting() {
        let shape = schema::builtin("ConfigMap");
        let ctx = context(&shape, "t1");
        let mut live = configmap(json!({"k": "v"}));
        record_update(None, &json!({"metadata": {}}), &mut live, &ctx, "curl").expect("records");
        let shared =
            apply(&live, &configmap(json!({"k": "v"})), &ctx, "m1", false).expect("no conflict");
        assert_eq!(decode(&shared).expect("valid").len(), 2);
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_owned_elsewhere() {
        let shape = schema::builtin("ConfigMap");
        let ctx = context(&shape, "t1");
        let first = apply(
            &json!({"metadata": {}}),
            &configmap(json!({"a": "1", "b": "2"})),
            &ctx,
            "m1",
            false,
        )
        .expect("apply");
        let second =
            apply(&first, &configmap(json!({"a": "1"})), &ctx, "m1", false).expect("apply");
        assert_eq!(second["data"], json!({"a": "1"}));
        let other =
            apply(&second, &configmap(json!({"a": "1"})), &ctx, "m2", false).expect("apply");
        let third = apply(&other, &configmap(json!({"b": "3"})), &ctx, "m1", false).expect("apply");
        assert_eq!(third["data"], json!({"a": "1", "b": "3"}));
    }

    #[test]
    fn unchanged_apply_keeps_the_time() {
        let shape = schema::builtin("ConfigMap");
        let first = apply(
            &json!({"metadata": {}}),
            &configmap(json!({"a": "1"})),
            &context(&shape, "t1"),
            "m1",
            false,
        )
        .expect("apply");
        let again = apply(
            &first,
            &configmap(json!({"a": "1"})),
            &context(&shape, "t2"),
            "m1",
            false,
        )
        .expect("apply");
        assert_eq!(first, again);
    }
}
