//! Watch streams: newline-delimited JSON events from a resource version onwards.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde_json::json;
use tokio::time::Instant;

use super::cluster::{Target, object_matches};
use super::negotiate::Representation;
use super::object::StoredObject;
use super::selector::{FieldSelector, LabelSelector};
use super::server::Shared;
use super::status::ApiError;
use super::store::{ChangeKind, ChangesSince};
use super::table::{IncludeObject, table};

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchStart {
    /// Synthetic ADDED events for what exists now, then changes.
    Current,
    /// Changes after this resource version.
    After(u64),
}

/// Parameters of one watch.
#[derive(Clone, Debug)]
pub struct WatchParams {
    /// What is watched (namespace empty: all namespaces).
    pub target: Target,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector (a watch on one name pins `metadata.name`).
    pub fields: FieldSelector,
    /// Start point.
    pub start: WatchStart,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`: end the initial events with a marked bookmark.
    pub initial_events_end: bool,
    /// When the server ends the watch.
    pub timeout: Duration,
    /// Interval between bookmarks.
    pub bookmark_interval: Duration,
    /// JSON, Table or metadata-only objects.
    pub representation: Representation,
    /// Rows' attached objects, for Tables.
    pub include: IncludeObject,
}

fn event(kind: &str, object: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    out
}

/// The ERROR event for a failed watch.
pub fn error_event(error: &ApiError) -> Bytes {
    Bytes::from(event("ERROR", error.to_status().to_string().as_bytes()))
}

fn encode_object(params: &WatchParams, object: &StoredObject) -> Vec<u8> {
    let rt = &params.target.rt;
    let api_version = rt.api_version(&params.target.version);
    match params.representation {
        Representation::Table => {
            let value = object.to_value(&api_version, &rt.kind);
            let table = table(
                rt,
                &params.target.version,
                &[value],
                object.index.resource_version,
                None,
                params.include,
            );
            table.to_string().into_bytes()
        }
        Representation::PartialMetadata => {
            let value = object.to_value(&api_version, &rt.kind);
            super::table::partial_metadata(&value)
                .to_string()
                .into_bytes()
        }
        _ => {
            let mut out = Vec::with_capacity(object.encoded_len() + 64);
            object.write_json(&mut out, Some((&api_version, &rt.kind)));
            out
        }
    }
}

fn bookmark(params: &WatchParams, revision: u64, initial_end: bool) -> Bytes {
    let rt = &params.target.rt;
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = json!({
        "kind": rt.kind,
        "apiVersion": rt.api_version(&params.target.version),
        "metadata": metadata,
    });
    Bytes::from(event("BOOKMARK", object.to_string().as_bytes()))
}

fn in_scope(params: &WatchParams, object: &StoredObject) -> bool {
    let target = &params.target;
    (target.namespace.is_empty()
        || !target.rt.namespaced
        || object.index.namespace == target.namespace)
        && object_matches(object, &params.labels, &params.fields)
}

struct WatchState {
    shared: Arc<Shared>,
    params: WatchParams,
    storage_key: String,
    receiver: tokio::sync::watch::Receiver<u64>,
    last: u64,
    pending: VecDeque<Bytes>,
    deadline: Instant,
    next_bookmark: Instant,
    done: bool,
}

impl WatchState {
    /// Turns the changes since `last` into events.
    fn drain(&mut self) {
        let state = self.shared.lock();
        match state.store.changes_since(self.last) {
            ChangesSince::Expired { oldest } => {
                self.pending
                    .push_back(error_event(&expired(self.last, oldest)));
                self.done = true;
            }
            ChangesSince::Changes(changes) => {
                let mut chunk = Vec::new();
                for change in changes {
                    if *change.storage_key != *self.storage_key {
                        continue;
                    }
                    let now_matches = in_scope(&self.params, &change.object);
                    let was_matching = change
                        .previous
                        .as_ref()
                        .is_some_and(|previous| in_scope(&self.params, previous));
                    let kind = match change.kind {
                        ChangeKind::Added if now_matches => "ADDED",
                        ChangeKind::Modified if now_matches && was_matching => "MODIFIED",
                        ChangeKind::Modified if now_matches => "ADDED",
                        ChangeKind::Modified if was_matching => "DELETED",
                        ChangeKind::Deleted if was_matching || now_matches => "DELETED",
                        _ => continue,
                    };
                    chunk.extend(event(kind, &encode_object(&self.params, &change.object)));
                }
                if !chunk.is_empty() {
                    self.pending.push_back(Bytes::from(chunk));
                }
                self.last = state.store.revision();
            }
        }
    }
}

/// The `410 Gone` a watch gets when its start version is no longer kept.
pub fn expired(requested: u64, oldest: u64) -> ApiError {
    ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
}

/// The latest a watch deadline can be (about 30 years): `timeoutSeconds=18446744073709551615`
/// saturates to it instead of overflowing the clock.
const FARTHEST_DEADLINE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// Starts a watch; the stream ends at the timeout, at server shutdown, or when the client
/// goes away (the stream is then dropped and holds nothing else).
pub fn start(
    shared: Arc<Shared>,
    params: WatchParams,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let storage_key = params.target.rt.storage_key();
    let mut pending = VecDeque::new();
    let mut done = false;
    let (receiver, last) = {
        let state = shared.lock();
        let receiver = state.store.subscribe();
        let revision = state.store.revision();
        match params.start {
            WatchStart::Current => {
                let namespace = (!params.target.namespace.is_empty()
                    && params.target.rt.namespaced)
                    .then_some(params.target.namespace.as_str());
                let mut chunk = Vec::new();
                for object in state.store.list(&storage_key, namespace, None) {
                    if in_scope(&params, &object) {
                        chunk.extend(event("ADDED", &encode_object(&params, &object)));
                    }
                }
                if !chunk.is_empty() {
                    pending.push_back(Bytes::from(chunk));
                }
                if params.initial_events_end && params.bookmarks {
                    pending.push_back(bookmark(&params, revision, true));
                }
                (receiver, revision)
            }
            WatchStart::After(from) => {
                if let ChangesSince::Expired { oldest } = state.store.changes_since(from) {
                    pending.push_back(error_event(&expired(from, oldest)));
                    done = true;
                }
                (receiver, from)
            }
        }
    };
    let now = Instant::now();
    let replay = matches!(params.start, WatchStart::After(_)) && !done;
    let mut state = WatchState {
        // `timeoutSeconds` is the client's: any u64 is accepted, so the deadline saturates.
        deadline: now
            .checked_add(params.timeout)
            .unwrap_or_else(|| now + FARTHEST_DEADLINE),
        next_bookmark: now + params.bookmark_interval,
        shared,
        params,
        storage_key,
        receiver,
        last,
        pending,
        done,
    };
    if replay {
        state.drain();
    }
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(chunk) = state.pending.pop_front() {
                return Some((Ok(chunk), state));
            }
            if state.done {
                return None;
            }
            let shutdown = state.shared.shutdown.clone();
            tokio::select! {
                _ = shutdown.cancelled() => state.done = true,
                _ = tokio::time::sleep_until(state.deadline) => state.done = true,
                changed = state.receiver.changed() => match changed {
                    Ok(()) => state.drain(),
                    Err(_) => state.done = true,
                },
                _ = tokio::time::sleep_until(state.next_bookmark), if state.params.bookmarks => {
                    state.drain();
                    if !state.done {
                        let mark = bookmark(&state.params, state.last, false);
                        state.pending.push_back(mark);
                    }
                    state.next_bookmark = Instant::now() + state.params.bookmark_interval;
                }
            }
        }
    })
}
