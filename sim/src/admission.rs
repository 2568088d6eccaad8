//! Admission hooks: code that sees every object written, after defaulting and before it is
//! stored, and may change it or refuse it.
//!
//! This is the extension point for behaviour a real cluster gets from admission webhooks
//! and controllers acting at write time, such as sidecar injection into Pods or a managed
//! add-on refusing kinds it does not support. Hooks run in registration order while the
//! server holds its write lock, so they see a consistent cluster through [`ClusterView`]
//! and must not block.

use serde_json::Value;

use super::status::ApiError;

/// What kind of write is being admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionOperation {
    /// The object does not exist yet (POST, or server-side apply creating it).
    Create,
    /// The object exists (PUT, PATCH, server-side apply of an existing object).
    Update,
}

/// Read access to the cluster for hooks.
pub trait ClusterView {
    /// The cluster's name (`sim-source`).
    fn cluster_name(&self) -> &str;

    /// One object by group, plural resource name, namespace (empty for cluster-scoped
    /// kinds) and name, in its preferred version.
    fn get(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value>;

    /// All objects of a resource, in one namespace or (with `None`) everywhere.
    fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<Value>;
}

/// One write, as shown to hooks.
pub struct AdmissionRequest<'a> {
    /// Create or update.
    pub operation: AdmissionOperation,
    /// API group of the resource (empty for core).
    pub group: &'a str,
    /// Version the client used.
    pub version: &'a str,
    /// Kind of the object.
    pub kind: &'a str,
    /// Plural resource name (`pods`).
    pub resource: &'a str,
    /// Subresource written (`status`), empty for the main resource.
    pub subresource: &'a str,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: &'a str,
    /// Object name (already generated when the client used `generateName`).
    pub name: &'a str,
    /// The stored object, for updates.
    pub old_object: Option<&'a Value>,
    /// Whether the request is a dry run (hooks must not have side effects then).
    pub dry_run: bool,
    /// The cluster as it is before this write.
    pub cluster: &'a dyn ClusterView,
}

/// A hook the server calls on every create and update.
///
/// Return `Err` with a [`ApiError`] (for example [`ApiError::forbidden`] or
/// [`ApiError::invalid`]) to refuse the write; the client receives that Status. Mutations
/// made to `object` are stored (defaults are applied again afterwards, so added
/// containers get their usual defaults).
pub trait AdmissionHook: Send + Sync {
    /// Inspects and possibly changes `object`.
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError>;
}
