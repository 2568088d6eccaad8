//! Every change to a cluster goes through [`Cluster::mutate`]: server-side apply, patches and
//! deletes. It checks the cluster's identity, validates a whole batch (server-side dry run)
//! before changing anything, turns writes into dry runs with diffs in plan mode, and reports
//! each change to the handle's [`ChangeSink`](super::ChangeSink) (run record, journal).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use http::Method;
use serde_json::{Value, json};

use super::Cluster;
use super::discovery::Resource;
use super::overlay::{Entry, Key, NOT_VALIDATED, VALIDATED_IN_DEFAULT};
use super::rest::{RestError, content_type};
use crate::error::Result;
use crate::manifest::{diff::diff, object_label, strip::strip};

/// A server-side apply answer: status code and body, or why it failed.
type ApplyAnswer = std::result::Result<(u16, Value), RestError>;

/// The field manager of every meshshift write.
pub const FIELD_MANAGER: &str = "meshshift";

/// Where plan mode validates objects whose own namespace is only planned.
const STAND_IN_NAMESPACE: &str = "default";

/// How many requests a batch keeps in flight.
pub const CONCURRENCY: usize = 32;

/// Query for every apply and patch: a field the server does not know (a misspelled `dta` for
/// `data`) is an error naming it instead of being dropped. Server-side apply refuses unknown
/// fields whatever this says (v1.20 and v1.37 alike); merge, JSON and strategic patches drop
/// them silently unless it is `Strict`, which servers honour since v1.25. v1.20 ignores the
/// parameter (it accepts any value, checked), so it is sent to every server.
const STRICT: &str = "&fieldValidation=Strict";

/// How a write is made.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Server-side dry run: nothing is stored; the change is described with a diff.
    pub dry_run: bool,
    /// Server-side apply takes over fields other managers own instead of failing on conflicts.
    pub force: bool,
    pub field_manager: String,
    /// Plan mode: dry runs record what they would store in the handle's overlay, which later
    /// reads see (see [`super::overlay`]).
    pub overlay: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            dry_run: false,
            force: false,
            field_manager: FIELD_MANAGER.to_string(),
            overlay: false,
        }
    }
}

/// The kinds of patch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
}

impl PatchType {
    pub fn parse(text: &str) -> std::result::Result<PatchType, String> {
        match text {
            "merge" => Ok(PatchType::Merge),
            "json" => Ok(PatchType::Json),
            "strategic" => Ok(PatchType::Strategic),
            other => Err(format!(
                "unknown patch type `{other}`: use `merge`, `json` or `strategic`"
            )),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            PatchType::Merge => content_type::MERGE_PATCH,
            PatchType::Json => content_type::JSON_PATCH,
            PatchType::Strategic => content_type::STRATEGIC_MERGE_PATCH,
        }
    }
}

/// One object addressed by kind (as users type it), name and namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

/// A change to make.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Server-side apply of whole objects.
    Apply(Vec<Value>),
    /// A patch of one object.
    Patch {
        target: Target,
        patch: Value,
        patch_type: PatchType,
    },
    /// Deletes, optionally waiting until the objects are gone.
    Delete {
        targets: Vec<Target>,
        wait: Option<Duration>,
    },
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Created,
    Configured,
    Unchanged,
    Patched,
    Deleted,
    /// Delete of an object that did not exist.
    Absent,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Patched => "patched",
            Action::Deleted => "deleted",
            Action::Absent => "absent",
        }
    }
}

/// One object changed (or, in a dry run, that would be).
#[derive(Debug, Clone)]
pub struct Change {
    pub cluster: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub action: Action,
    pub dry_run: bool,
    /// Live object to the new one, Secret values masked (dry runs and patches).
    pub diff: Option<String>,
    /// What a reader of a plan should know (`not validated: namespace planned`).
    pub note: Option<String>,
}

impl Change {
    /// `Deployment/bookinfo/reviews-v1`.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{}/{namespace}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// What validating one object found out.
struct Validation {
    /// 201 when the dry run would create the object.
    status: u16,
    /// The object as the dry run says it would be stored.
    planned: Value,
    /// The object as it is now, if it exists.
    live: Option<Value>,
}

impl Validation {
    /// Applying `applied` would change nothing: every field it sets already holds the value
    /// the dry run would store, and `manager`'s ownership would stay the same (which also
    /// catches fields it stopped applying, since those are removed). Fields other managers
    /// change on their own (controllers writing status, annotations, token secrets) do not
    /// count.
    fn is_no_op(&self, applied: &Value, manager: &str) -> bool {
        let Some(live) = &self.live else { return false };
        if self.status == 201 {
            return false;
        }
        // `applied` went through `clean_for_apply`: no status, resourceVersion or managedFields.
        restrict(live, applied) == restrict(&self.planned, applied)
            && ownership(live, manager) == ownership(&self.planned, manager)
    }
}

/// The parts of `value` that `shape` has keys for (arrays element by element).
fn restrict(value: &Value, shape: &Value) -> Value {
    match (value, shape) {
        (Value::Object(fields), Value::Object(wanted)) => Value::Object(
            wanted
                .iter()
                .map(|(key, inner)| {
                    (
                        key.clone(),
                        fields
                            .get(key)
                            .map(|v| restrict(v, inner))
                            .unwrap_or(Value::Null),
                    )
                })
                .collect(),
        ),
        (Value::Array(items), Value::Array(wanted)) if items.len() == wanted.len() => Value::Array(
            items
                .iter()
                .zip(wanted)
                .map(|(v, s)| restrict(v, s))
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// The fields `manager` owns by applying (its `managedFields` entry without the timestamp).
fn ownership(object: &Value, manager: &str) -> Option<Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| {
            e["manager"] == manager && e["operation"] == "Apply" && e["subresource"].is_null()
        })
        .map(|e| e["fieldsV1"].clone())
}

/// An object ready to apply: its resource and the path to patch.
struct Prepared {
    object: Value,
    resource: Option<Resource>,
    namespace: Option<String>,
    name: String,
}

impl Prepared {
    fn path(&self) -> Option<String> {
        self.resource
            .as_ref()
            .map(|r| r.object_path(self.namespace.as_deref(), &self.name))
    }
}

impl Cluster {
    /// The one entry point for changing a cluster.
    pub async fn mutate(&self, mutation: Mutation, options: &WriteOptions) -> Result<Vec<Change>> {
        // A run holds the cluster's run lock before its first write (dry runs write nothing).
        if !options.dry_run {
            self.hold_run_lock().await?;
        }
        // What was done is reported even when a later part of the batch fails: the run record
        // (and so the report) must show every write that happened.
        let mut changes = Vec::new();
        let result = match mutation {
            // Validation only reads (dry runs), so apply checks the identity beside it.
            Mutation::Apply(objects) => self.apply_objects(objects, options, &mut changes).await,
            Mutation::Patch {
                target,
                patch,
                patch_type,
            } => match self.verify_identity().await {
                Ok(()) => self
                    .patch_object(&target, &patch, patch_type, options)
                    .await
                    .map(|change| changes.push(change)),
                Err(error) => Err(error),
            },
            Mutation::Delete { targets, wait } => match self.verify_identity().await {
                Ok(()) => {
                    self.delete_objects(&targets, wait, options, &mut changes)
                        .await
                }
                Err(error) => Err(error),
            },
        };
        if let Some(sink) = self.sink() {
            for change in &changes {
                sink(change);
            }
        }
        result.map(|()| changes)
    }

    fn change(&self, object: &Value, action: Action, dry_run: bool) -> Change {
        Change {
            cluster: self.context().to_string(),
            kind: object["kind"].as_str().unwrap_or_default().to_string(),
            namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
            name: object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            action,
            dry_run,
            diff: None,
            note: None,
        }
    }

    /// Server-side apply of a batch: CRDs first (and established), then Namespaces, then the
    /// rest. Everything that can be validated by a server-side dry run is validated before
    /// anything is written; objects whose CRD or Namespace the batch itself creates are
    /// validated right after those are created, before any of them is applied.
    async fn apply_objects(
        &self,
        objects: Vec<Value>,
        options: &WriteOptions,
        changes: &mut Vec<Change>,
    ) -> Result<()> {
        let (prepared, identity) = tokio::join!(self.prepare(objects), self.verify_identity());
        identity?;
        let mut prepared = prepared?;
        let existing = self
            .existing_namespaces(&prepared, options.dry_run && options.overlay)
            .await?;
        // Phase 1: validate what can be validated now; objects whose CRD or namespace the batch
        // creates are validated in phase 4, before any of them is applied.
        let ready_now: Vec<usize> = (0..prepared.len())
            .filter(|&i| prepared[i].resource.is_some())
            .filter(|&i| {
                prepared[i]
                    .namespace
                    .as_ref()
                    .is_none_or(|ns| existing.contains(ns))
            })
            .collect();
        let started = std::time::Instant::now();
        let mut validations = self.dry_run_all(&prepared, options, ready_now).await?;
        tracing::debug!(elapsed = ?started.elapsed(), objects = validations.len(), "validated");

        if options.dry_run {
            let elsewhere = if options.overlay {
                self.validate_in_default(&prepared, &validations, options)
                    .await?
            } else {
                BTreeSet::new()
            };
            changes.extend(
                self.plan_changes(&prepared, &validations, &elsewhere, options)
                    .await?,
            );
            return Ok(());
        }
        let is_crd = |p: &Prepared| p.object["kind"] == "CustomResourceDefinition";
        let is_namespace =
            |p: &Prepared| p.object["kind"] == "Namespace" && p.object["apiVersion"] == "v1";
        // Phase 2: CRDs, then wait until they are established and served.
        let crds: Vec<usize> = (0..prepared.len())
            .filter(|&i| is_crd(&prepared[i]))
            .collect();
        self.apply_indexes(&prepared, &crds, &validations, options, changes)
            .await?;
        if !crds.is_empty() {
            for &index in &crds {
                self.wait_established(&prepared[index].name).await?;
            }
            self.forget_group_versions().await;
            for item in prepared.iter_mut().filter(|p| p.resource.is_none()) {
                item.resource = self.resolve_object(&item.object).await?;
            }
        }
        if let Some(unknown) = prepared.iter().find(|p| p.resource.is_none()) {
            return Err(self.error(
                format!(
                    "the server does not serve `{} {}` even after the batch's CRDs were applied",
                    unknown.object["apiVersion"], unknown.object["kind"]
                ),
                vec![],
            ));
        }
        tracing::debug!(elapsed = ?started.elapsed(), "custom resource definitions applied");
        // Phase 3: Namespaces.
        let namespaces: Vec<usize> = (0..prepared.len())
            .filter(|&i| is_namespace(&prepared[i]))
            .collect();
        self.apply_indexes(&prepared, &namespaces, &validations, options, changes)
            .await?;
        tracing::debug!(elapsed = ?started.elapsed(), "namespaces applied");
        // Phase 4: validate what had to wait for those, then apply everything else.
        let late: Vec<usize> = (0..prepared.len())
            .filter(|&i| {
                !is_crd(&prepared[i])
                    && !is_namespace(&prepared[i])
                    && !validations.contains_key(&i)
            })
            .collect();
        if !late.is_empty() {
            let late_runs = self.dry_run_all(&prepared, options, late).await?;
            validations.extend(late_runs);
        }
        let rest: Vec<usize> = (0..prepared.len())
            .filter(|&i| !is_crd(&prepared[i]) && !is_namespace(&prepared[i]))
            .collect();
        tracing::debug!(elapsed = ?started.elapsed(), "late objects validated");
        self.apply_indexes(&prepared, &rest, &validations, options, changes)
            .await?;
        tracing::debug!(elapsed = ?started.elapsed(), "applied");
        Ok(())
    }

    /// Checks every object and resolves its resource (`None`: its CRD is in the batch).
    async fn prepare(&self, objects: Vec<Value>) -> Result<Vec<Prepared>> {
        let batch_kinds: BTreeSet<(String, String)> = objects
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .flat_map(|crd| {
                let group = crd["spec"]["group"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let kind = crd["spec"]["names"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                crd["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["name"].as_str())
                    .map(move |v| (format!("{group}/{v}"), kind.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut prepared = Vec::with_capacity(objects.len());
        let mut problems = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, mut object) in objects.into_iter().enumerate() {
            let position = format!("object {} ({})", index + 1, object_label(&object));
            if !object.is_object() {
                problems.push(format!("object {}: expected an object (a map)", index + 1));
                continue;
            }
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if object["apiVersion"].as_str().is_none_or(str::is_empty)
                || object["kind"].as_str().is_none_or(str::is_empty)
            {
                problems.push(format!("{position}: needs `apiVersion` and `kind`"));
                continue;
            }
            if name.is_empty() {
                problems.push(format!(
                    "{position}: needs `metadata.name` (server-side apply cannot use generateName)"
                ));
                continue;
            }
            let resource = self.resolve_object(&object).await?;
            let key = (
                object["apiVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                object["kind"].as_str().unwrap_or_default().to_string(),
            );
            if resource.is_none() && !batch_kinds.contains(&key) {
                problems.push(format!(
                    "{position}: the server does not serve `{} {}` (is its CRD installed?)",
                    key.0, key.1
                ));
                continue;
            }
            // CRD instances default to namespaced until the CRD says otherwise.
            let namespaced = resource
                .as_ref()
                .map(|r| r.namespaced)
                .unwrap_or_else(|| crd_scope_namespaced(&key, &prepared));
            let namespace = if namespaced {
                let namespace = object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(self.namespace())
                    .to_string();
                object["metadata"]["namespace"] = Value::String(namespace.clone());
                Some(namespace)
            } else {
                if let Some(metadata) = object["metadata"].as_object_mut() {
                    metadata.remove("namespace");
                }
                None
            };
            // Names go into request paths: check them as the server would, before any request.
            let group = key.0.rsplit_once('/').map(|(g, _)| g).unwrap_or_default();
            if let Err(problem) = namespace
                .as_deref()
                .map_or(Ok(()), super::names::check_namespace)
                .and_then(|()| super::names::check_name(group, &key.1, &name))
            {
                problems.push(format!("{position}: {problem}"));
                continue;
            }
            if !seen.insert((
                key.0.clone(),
                key.1.clone(),
                namespace.clone(),
                name.clone(),
            )) {
                problems.push(format!("{position}: appears twice in the batch"));
                continue;
            }
            prepared.push(Prepared {
                object: clean_for_apply(object),
                resource,
                namespace,
                name,
            });
        }
        if !problems.is_empty() {
            return Err(self.error(
                format!("nothing was applied: {}", problems.join("; ")),
                vec![],
            ));
        }
        Ok(prepared)
    }

    /// Fails unless every namespace the batch uses exists or is created by the batch; returns
    /// the ones that exist.
    async fn existing_namespaces(
        &self,
        prepared: &[Prepared],
        options_overlay: bool,
    ) -> Result<BTreeSet<String>> {
        let wanted: BTreeSet<&String> = prepared
            .iter()
            .filter_map(|p| p.namespace.as_ref())
            .collect();
        let mut existing = BTreeSet::new();
        let batch: BTreeSet<&str> = prepared
            .iter()
            .filter(|p| p.object["kind"] == "Namespace")
            .map(|p| p.name.as_str())
            .collect();
        for namespace in wanted {
            match self
                .rest()
                .get(&format!(
                    "/api/v1/namespaces/{}",
                    super::names::segment(namespace)
                ))
                .await
            {
                Ok(_) => {
                    existing.insert(namespace.clone());
                }
                Err(e) if e.status_code() == Some(404) => {
                    let planned = options_overlay
                        && matches!(
                            self.overlay().lookup(&namespace_key(namespace)),
                            Some(Entry::Present { .. })
                        );
                    if !batch.contains(namespace.as_str()) && !planned {
                        return Err(self.error(
                            format!("nothing was applied: namespace `{namespace}` does not exist and the batch does not create it"),
                            vec![],
                        ));
                    }
                }
                Err(e) => {
                    return Err(
                        self.request_error(&format!("cannot read namespace `{namespace}`"), &e)
                    );
                }
            }
        }
        Ok(existing)
    }

    /// Validates objects: a server-side dry run of each, beside a read of the live object. Any
    /// failure fails the batch, before anything is written.
    async fn dry_run_all(
        &self,
        prepared: &[Prepared],
        options: &WriteOptions,
        selected: Vec<usize>,
    ) -> Result<BTreeMap<usize, Validation>> {
        let results: Vec<(usize, std::result::Result<Validation, RestError>)> =
            stream::iter(selected)
                .map(|index| async move {
                    let item = &prepared[index];
                    let Some(path) = item.path() else {
                        return (index, Err(RestError::Transport("unresolved".into())));
                    };
                    let planned = self
                        .server_side_apply(&path, &item.object, options, true)
                        .await;
                    // 201: the object does not exist, so there is nothing live to compare with.
                    let live = match &planned {
                        Ok((200, _)) => self.rest().get(&path).await.ok().map(|r| r.body),
                        _ => None,
                    };
                    let validation = planned.map(|(status, planned)| Validation {
                        status,
                        planned,
                        live,
                    });
                    (index, validation)
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let mut ok = BTreeMap::new();
        let mut failures = Vec::new();
        for (index, result) in results {
            match result {
                Ok(validation) => {
                    ok.insert(index, validation);
                }
                // Objects wait for a namespace the batch creates before they are validated, so
                // any failure here (404 included: a namespace deleted meanwhile) stops the batch.
                Err(error) => failures.push((index, error)),
            }
        }
        if failures.is_empty() {
            return Ok(ok);
        }
        failures.sort_by_key(|(index, _)| *index);
        if let [(index, error)] = failures.as_slice() {
            return Err(self.error(
                format!(
                    "nothing was applied: {} failed validation (server-side dry run): {}",
                    object_label(&prepared[*index].object),
                    error.message()
                ),
                error.causes(),
            ));
        }
        let mut causes = Vec::new();
        for (index, error) in &failures {
            causes.push(format!(
                "{}: {}",
                object_label(&prepared[*index].object),
                error.message()
            ));
            causes.extend(error.causes().into_iter().map(|c| format!("  {c}")));
        }
        Err(self.error(
            format!(
                "nothing was applied: {} of {} objects failed validation (server-side dry run)",
                failures.len(),
                prepared.len()
            ),
            causes,
        ))
    }

    async fn server_side_apply(
        &self,
        path: &str,
        object: &Value,
        options: &WriteOptions,
        dry_run: bool,
    ) -> std::result::Result<(u16, Value), RestError> {
        let mut query = format!("?fieldManager={}{STRICT}", options.field_manager);
        if options.force {
            query.push_str("&force=true");
        }
        if dry_run {
            query.push_str("&dryRun=All");
        }
        let body = serde_json::to_vec(object).unwrap_or_default();
        let response = self
            .rest()
            .call(
                Method::PATCH,
                &format!("{path}{query}"),
                Some((content_type::APPLY_PATCH, body)),
            )
            .await?;
        Ok((response.status, response.body))
    }

    /// Applies validated objects, several at a time, adding what was done to `done` (also when
    /// some fail). An object whose dry run left it exactly as it is live is `unchanged` and not
    /// written at all.
    async fn apply_indexes(
        &self,
        prepared: &[Prepared],
        indexes: &[usize],
        validations: &BTreeMap<usize, Validation>,
        options: &WriteOptions,
        done: &mut Vec<Change>,
    ) -> Result<()> {
        let mut changes = Vec::new();
        let mut to_write = Vec::new();
        for &index in indexes {
            match validations.get(&index) {
                Some(validation)
                    if validation.is_no_op(&prepared[index].object, &options.field_manager) =>
                {
                    changes.push((
                        index,
                        self.change(&prepared[index].object, Action::Unchanged, false),
                    ));
                }
                _ => to_write.push(index),
            }
        }
        let results: Vec<(usize, ApplyAnswer)> = stream::iter(to_write)
            .map(|index| async move {
                let item = &prepared[index];
                let path = item.path().unwrap_or_default();
                (
                    index,
                    self.server_side_apply(&path, &item.object, options, false)
                        .await,
                )
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut failures = Vec::new();
        for (index, result) in results {
            match result {
                Ok((status, _)) => {
                    // A 200 for an object the dry run found missing: an earlier attempt created
                    // it and its answer was lost, so the retry found it there.
                    let missing_before = validations.get(&index).is_some_and(|v| v.status == 201);
                    let action = if status == 201 || missing_before {
                        Action::Created
                    } else {
                        Action::Configured
                    };
                    changes.push((index, self.change(&prepared[index].object, action, false)));
                }
                Err(error) => failures.push((index, error)),
            }
        }
        changes.sort_by_key(|(index, _)| *index);
        done.extend(changes.into_iter().map(|(_, change)| change));
        if let Some((index, error)) = failures.into_iter().min_by_key(|(i, _)| *i) {
            return Err(self.request_error(
                &format!("failed to apply {}", object_label(&prepared[index].object)),
                &error,
            ));
        }
        Ok(())
    }

    /// Plan mode: what each object would become, as a diff against the live object (or what
    /// the overlay says an earlier planned write left there). With `options.overlay`, each
    /// planned object is recorded in the overlay.
    async fn plan_changes(
        &self,
        prepared: &[Prepared],
        validations: &BTreeMap<usize, Validation>,
        elsewhere: &BTreeSet<usize>,
        options: &WriteOptions,
    ) -> Result<Vec<Change>> {
        let mut changes = Vec::new();
        for (index, item) in prepared.iter().enumerate() {
            let mut change = self.change(&item.object, Action::Created, true);
            let key = item
                .resource
                .as_ref()
                .map(|r| Key::new(r, item.namespace.as_deref(), &item.name));
            let planned_entry = key
                .as_ref()
                .filter(|_| options.overlay)
                .and_then(|k| self.overlay().lookup(k));
            let (stored, validated) = match validations.get(&index) {
                Some(validation) => {
                    let live = match &planned_entry {
                        Some(Entry::Present { object, .. }) => Some(object.clone()),
                        Some(Entry::Deleted) => None,
                        None => validation.live.clone(),
                    };
                    let effective = Validation {
                        status: if live.is_some() { 200 } else { 201 },
                        planned: validation.planned.clone(),
                        live,
                    };
                    let before = effective.live.clone().map(strip).unwrap_or(Value::Null);
                    let text = diff(
                        &before,
                        &strip(effective.planned.clone()),
                        "live",
                        "planned",
                    );
                    change.action = match (
                        &effective.live,
                        effective.is_no_op(&item.object, &options.field_manager),
                    ) {
                        (None, _) => Action::Created,
                        (Some(_), true) => Action::Unchanged,
                        (Some(_), false) => Action::Configured,
                    };
                    change.diff = Some(text);
                    (effective.planned, true)
                }
                // Its CRD or namespace is part of the batch (or planned): it can only be
                // recorded as written, unvalidated.
                None => {
                    let before = match &planned_entry {
                        Some(Entry::Present { object, .. }) => {
                            change.action = Action::Configured;
                            strip(object.clone())
                        }
                        _ => Value::Null,
                    };
                    change.diff = Some(diff(&before, &item.object, "live", "planned"));
                    let validated = elsewhere.contains(&index);
                    change.note = Some(if item.resource.is_none() {
                        "not validated: its CustomResourceDefinition is planned".to_string()
                    } else if validated {
                        VALIDATED_IN_DEFAULT.to_string()
                    } else {
                        NOT_VALIDATED.to_string()
                    });
                    (item.object.clone(), validated)
                }
            };
            if options.overlay
                && let Some(key) = key
            {
                self.overlay().record(key, stored, validated);
            }
            changes.push(change);
        }
        Ok(changes)
    }

    /// Plan mode: objects whose namespace is only planned (in the batch or the overlay) cannot
    /// be dry-run where they belong, since the server answers "namespace not found"; each is
    /// dry-run in `default` instead, with `force` (a same-named object there must not get in
    /// the way). An invalid object fails the batch as it would in the real run; other
    /// failures (no `default` namespace, no permission there) leave it unvalidated. Returns the
    /// indexes validated.
    async fn validate_in_default(
        &self,
        prepared: &[Prepared],
        validations: &BTreeMap<usize, Validation>,
        options: &WriteOptions,
    ) -> Result<BTreeSet<usize>> {
        let candidates: Vec<usize> = (0..prepared.len())
            .filter(|i| !validations.contains_key(i))
            .filter(|&i| prepared[i].resource.is_some() && prepared[i].namespace.is_some())
            .collect();
        let forced = WriteOptions {
            force: true,
            ..options.clone()
        };
        let forced = &forced;
        let results: Vec<(usize, ApplyAnswer)> = stream::iter(candidates)
            .map(|index| async move {
                let item = &prepared[index];
                let resource = item.resource.as_ref().expect("filtered on resource");
                let path = resource.object_path(Some(STAND_IN_NAMESPACE), &item.name);
                let mut object = item.object.clone();
                object["metadata"]["namespace"] = Value::String(STAND_IN_NAMESPACE.into());
                (
                    index,
                    self.server_side_apply(&path, &object, forced, true).await,
                )
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut validated = BTreeSet::new();
        let mut invalid = Vec::new();
        for (index, result) in results {
            match result {
                Ok(_) => {
                    validated.insert(index);
                }
                Err(error) if matches!(error.status_code(), Some(400 | 422)) => {
                    invalid.push((index, error))
                }
                Err(_) => {}
            }
        }
        if let Some((index, error)) = invalid.into_iter().min_by_key(|(i, _)| *i) {
            return Err(self.error(
                format!(
                    "nothing was applied: {} failed validation (server-side dry run in namespace `{STAND_IN_NAMESPACE}`, as its own is planned): {}",
                    object_label(&prepared[index].object),
                    error.message()
                ),
                error.causes(),
            ));
        }
        Ok(validated)
    }

    async fn wait_established(&self, name: &str) -> Result<()> {
        let path = format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
            super::names::segment(name)
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = self.rest().get(&path).await
                && super::conditions::has_true_condition(&response.body, "Established")
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(self.error(
                    format!("CustomResourceDefinition `{name}` was not Established within 60s"),
                    vec![],
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn patch_object(
        &self,
        target: &Target,
        patch: &Value,
        patch_type: PatchType,
        options: &WriteOptions,
    ) -> Result<Change> {
        let resource = self.resolve(&target.kind).await?;
        let namespace = self.namespace_for(&resource, target.namespace.as_deref());
        resource
            .check_name(namespace.as_deref(), &target.name)
            .map_err(|m| self.error(m, vec![]))?;
        let path = resource.object_path(namespace.as_deref(), &target.name);
        let label = match &namespace {
            Some(namespace) => format!("{}/{namespace}/{}", resource.kind, target.name),
            None => format!("{}/{}", resource.kind, target.name),
        };
        let key = Key::new(&resource, namespace.as_deref(), &target.name);
        let planned = (options.dry_run && options.overlay)
            .then(|| self.overlay().lookup(&key))
            .flatten();
        let before = match &planned {
            Some(Entry::Present { object, .. }) => object.clone(),
            Some(Entry::Deleted) => {
                return Err(self.error(
                    format!("cannot patch {label}: it is planned to be deleted"),
                    vec![],
                ));
            }
            None => {
                self.rest()
                    .get(&path)
                    .await
                    .map_err(|e| self.request_error(&format!("cannot patch {label}"), &e))?
                    .body
            }
        };
        let after = if planned.is_some() {
            // A planned object: the server has not got it (or not as planned), so the patch
            // is applied to the planned version here.
            patch_locally(&before, patch, patch_type).map_err(|reason| {
                self.error(format!("failed to patch {label}: {reason}"), vec![])
            })?
        } else {
            let mut query = format!("?fieldManager={}{STRICT}", options.field_manager);
            if options.dry_run {
                query.push_str("&dryRun=All");
            }
            let body = serde_json::to_vec(patch).unwrap_or_default();
            self.rest()
                .call(
                    Method::PATCH,
                    &format!("{path}{query}"),
                    Some((patch_type.content_type(), body)),
                )
                .await
                .map_err(|e| {
                    // A JSON patch is not repeated after such a failure (applying it twice is not
                    // applying it once), so the user must know it may be in place already.
                    let what = if patch_type == PatchType::Json && e.may_have_taken_effect() {
                        format!(
                            "failed to patch {label} (the server may have applied the patch before its answer was lost: look at the object before patching again)"
                        )
                    } else {
                        format!("failed to patch {label}")
                    };
                    self.request_error(&what, &e)
                })?
                .body
        };
        if options.dry_run && options.overlay {
            let validated = !matches!(
                planned,
                Some(Entry::Present {
                    validated: false,
                    ..
                })
            );
            self.overlay().record(key, after.clone(), validated);
        }
        let text = diff(
            &strip(before),
            &strip(after.clone()),
            "live",
            if options.dry_run {
                "planned"
            } else {
                "patched"
            },
        );
        let mut change = self.change(
            &after,
            if text.is_empty() {
                Action::Unchanged
            } else {
                Action::Patched
            },
            options.dry_run,
        );
        change.diff = Some(text);
        Ok(change)
    }

    async fn delete_objects(
        &self,
        targets: &[Target],
        wait: Option<Duration>,
        options: &WriteOptions,
        changes: &mut Vec<Change>,
    ) -> Result<()> {
        let mut resolved = Vec::new();
        for target in targets {
            let resource = self.resolve(&target.kind).await?;
            let namespace = self.namespace_for(&resource, target.namespace.as_deref());
            // Every name is checked before the first delete is sent.
            resource
                .check_name(namespace.as_deref(), &target.name)
                .map_err(|m| self.error(m, vec![]))?;
            resolved.push((resource, namespace, target.name.clone()));
        }
        let query = if options.dry_run { "?dryRun=All" } else { "" };
        let mut deleted_paths = Vec::new();
        for (resource, namespace, name) in &resolved {
            let path = resource.object_path(namespace.as_deref(), name);
            let body = serde_json::to_vec(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})).unwrap_or_default();
            let stub = json!({"apiVersion": resource.api_version(), "kind": resource.kind, "metadata": {"name": name, "namespace": namespace}});
            if options.dry_run && options.overlay {
                let key = Key::new(resource, namespace.as_deref(), name);
                match self.overlay().lookup(&key) {
                    Some(Entry::Deleted) => {
                        changes.push(self.change(&stub, Action::Absent, true));
                        continue;
                    }
                    Some(Entry::Present { .. }) => {
                        // Planned: the server may not have it, the rehearsal does.
                        self.overlay().tombstone(key);
                        changes.push(self.change(&stub, Action::Deleted, true));
                        continue;
                    }
                    None => {}
                }
            }
            match self
                .rest()
                .call(
                    Method::DELETE,
                    &format!("{path}{query}"),
                    Some((content_type::JSON, body)),
                )
                .await
            {
                Ok(_) => {
                    if options.dry_run && options.overlay {
                        self.overlay()
                            .tombstone(Key::new(resource, namespace.as_deref(), name));
                    }
                    changes.push(self.change(&stub, Action::Deleted, options.dry_run));
                    deleted_paths.push(path);
                }
                Err(e) if e.status_code() == Some(404) => {
                    changes.push(self.change(&stub, Action::Absent, options.dry_run))
                }
                Err(e) => {
                    return Err(self
                        .request_error(&format!("failed to delete {}", object_label(&stub)), &e));
                }
            }
        }
        if let (Some(timeout), false) = (wait, options.dry_run) {
            let deadline = tokio::time::Instant::now() + timeout;
            for path in deleted_paths {
                loop {
                    match self.rest().get(&path).await {
                        Err(e) if e.status_code() == Some(404) => break,
                        _ if tokio::time::Instant::now() > deadline => {
                            return Err(self.error(
                                format!("{path} still exists after {}s", timeout.as_secs()),
                                vec![],
                            ));
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        }
        Ok(())
    }
}

/// The overlay's key of a Namespace.
fn namespace_key(name: &str) -> Key {
    Key {
        group: String::new(),
        plural: "namespaces".into(),
        namespace: None,
        name: name.into(),
    }
}

/// A patch applied to a planned object, as the server would (a strategic merge patch is
/// applied as a merge patch: list merge keys are not known here).
fn patch_locally(
    object: &Value,
    patch: &Value,
    patch_type: PatchType,
) -> std::result::Result<Value, String> {
    let mut patched = object.clone();
    match patch_type {
        PatchType::Merge | PatchType::Strategic => json_patch::merge(&mut patched, patch),
        PatchType::Json => {
            let operations: json_patch::Patch =
                serde_json::from_value(patch.clone()).map_err(|e| e.to_string())?;
            json_patch::patch(&mut patched, &operations).map_err(|e| e.to_string())?;
        }
    }
    Ok(patched)
}

/// Is a CRD instance namespaced, judging by the batch's CRD (namespaced by default)?
fn crd_scope_namespaced(key: &(String, String), prepared: &[Prepared]) -> bool {
    let group = key.0.rsplit_once('/').map(|(g, _)| g).unwrap_or_default();
    prepared
        .iter()
        .filter(|p| p.object["kind"] == "CustomResourceDefinition")
        .find(|p| {
            p.object["spec"]["group"] == group
                && p.object["spec"]["names"]["kind"] == key.1.as_str()
        })
        .map(|p| p.object["spec"]["scope"] != "Cluster")
        .unwrap_or(true)
}

/// Server-side apply refuses `resourceVersion` mismatches and `managedFields`; objects read
/// from a cluster carry both.
fn clean_for_apply(mut object: Value) -> Value {
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for key in [
            "resourceVersion",
            "managedFields",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            metadata.remove(key);
        }
    }
    if let Some(fields) = object.as_object_mut() {
        fields.remove("status");
    }
    default_port_protocols(&mut object);
    object
}

/// Ports are list-map items keyed by port and protocol; API servers before 1.22 reject a
/// server-side apply whose ports omit `protocol` instead of defaulting it. Fill in the default
/// (`TCP`) the server would have used.
fn default_port_protocols(object: &mut Value) {
    let fill = |ports: Option<&mut Value>| {
        for port in ports.and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(port) = port.as_object_mut() {
                port.entry("protocol")
                    .or_insert_with(|| Value::String("TCP".into()));
            }
        }
    };
    if object["kind"] == "Service" {
        fill(object.get_mut("spec").and_then(|s| s.get_mut("ports")));
        return;
    }
    let pod_spec = match object["kind"].as_str().unwrap_or_default() {
        "Pod" => object.get_mut("spec"),
        "CronJob" => object.pointer_mut("/spec/jobTemplate/spec/template/spec"),
        _ => object.pointer_mut("/spec/template/spec"),
    };
    let Some(pod_spec) = pod_spec else { return };
    for list in ["containers", "initContainers"] {
        for container in pod_spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            fill(container.get_mut("ports"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Value {
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "reviews", "namespace": "bookinfo", "resourceVersion": "7",
                "annotations": {"added-by-a-controller": "yes"},
                "managedFields": [
                    {"manager": "meshshift", "operation": "Apply", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}},
                    {"manager": "token-controller", "operation": "Update", "fieldsV1": {"f:secrets": {}}}]},
            "secrets": [{"name": "reviews-token-abc"}]})
    }

    #[test]
    fn no_op_ignores_what_other_managers_change() {
        let mut with_label = live();
        with_label["metadata"]["labels"] = json!({"app": "reviews"});
        let applied = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reviews", "namespace": "bookinfo", "labels": {"app": "reviews"}}});
        let mut planned = with_label.clone();
        planned["metadata"]["resourceVersion"] = json!("8");
        planned["metadata"]["managedFields"][0]["time"] = json!("2026-02-02T00:00:00Z");
        let validation = Validation {
            status: 200,
            planned,
            live: Some(with_label.clone()),
        };
        assert!(validation.is_no_op(&applied, "meshshift"));
        // A field we set to a new value is a change.
        let mut changed = validation.planned.clone();
        changed["metadata"]["labels"]["app"] = json!("ratings");
        assert!(
            !Validation {
                status: 200,
                planned: changed,
                live: Some(with_label.clone())
            }
            .is_no_op(&applied, "meshshift")
        );
        // So is taking over ownership (the same values, another manager owned them before).
        let mut taken = validation.planned.clone();
        taken["metadata"]["managedFields"][0]["fieldsV1"] =
            json!({"f:metadata": {"f:labels": {"f:app": {}, "f:team": {}}}});
        assert!(
            !Validation {
                status: 200,
                planned: taken,
                live: Some(with_label)
            }
            .is_no_op(&applied, "meshshift")
        );
        // And creating.
        assert!(
            !Validation {
                status: 201,
                planned: live(),
                live: None
            }
            .is_no_op(&applied, "meshshift")
        );
    }

    #[test]
    fn ports_get_their_default_protocol() {
        let service = clean_for_apply(
            json!({"kind": "Service", "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}}),
        );
        assert_eq!(
            service["spec"]["ports"],
            json!([{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}])
        );
        let deployment = clean_for_apply(
            json!({"kind": "Deployment", "metadata": {"name": "d", "resourceVersion": "3"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 9080}]}]}}}, "status": {}}),
        );
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"],
            "TCP"
        );
        assert!(
            deployment.get("status").is_none()
                && deployment["metadata"].get("resourceVersion").is_none()
        );
    }
}
