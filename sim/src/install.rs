//! Installing objects through the API, as an installer (`kubectl apply --server-side`)
//! would: server-side apply with its own field manager, Node status through `/status`.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::Value;

/// Field manager of the simulator's installer.
pub const INSTALLER: &str = "meshshift-sim";

/// The plural resource name and scope of the kinds the simulator installs.
pub fn resource_of(api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (plural, namespaced) = match kind {
        "Namespace" => ("namespaces", false),
        "Node" => ("nodes", false),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        "MutatingWebhookConfiguration" => ("mutatingwebhookconfigurations", false),
        "ConfigMap" => ("configmaps", true),
        "Service" => ("services", true),
        "ServiceAccount" => ("serviceaccounts", true),
        "Deployment" => ("deployments", true),
        _ => return None,
    };
    Some((
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
        namespaced,
    ))
}

/// Server-side applies `object` (forcing ownership), then writes its `status` through the
/// `/status` subresource when it has one (Nodes).
pub async fn apply(client: &kube::Client, object: &Value) -> Result<(), String> {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (api_version, kind, name, namespace) = (
        text("/apiVersion"),
        text("/kind"),
        text("/metadata/name"),
        text("/metadata/namespace"),
    );
    let (resource, namespaced) =
        resource_of(api_version, kind).ok_or_else(|| format!("cannot install a {kind}"))?;
    let api: kube::Api<DynamicObject> = if namespaced {
        kube::Api::namespaced_with(client.clone(), namespace, &resource)
    } else {
        kube::Api::all_with(client.clone(), &resource)
    };
    let params = PatchParams::apply(INSTALLER).force();
    let mut body = object.clone();
    let status = body.as_object_mut().and_then(|m| m.remove("status"));
    api.patch(name, &params, &Patch::Apply(&body))
        .await
        .map_err(|e| format!("installing {kind} {name}: {e}"))?;
    if let Some(status) = status {
        let patch = serde_json::json!({"status": status});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("writing the status of {kind} {name}: {e}"))?;
    }
    Ok(())
}

/// Applies `objects` in order.
pub async fn apply_all(client: &kube::Client, objects: &[Value]) -> Result<(), String> {
    for object in objects {
        apply(client, object).await?;
    }
    Ok(())
}
