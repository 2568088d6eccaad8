//! The admission hooks of the simulated clusters: Istio's sidecar injector (both clusters)
//! and the AKS add-on's refusals (the target).

use std::collections::BTreeMap;

use serde_json::Value;

use super::admission::{AdmissionHook, AdmissionOperation, AdmissionRequest, ClusterView};
use super::injection::{self, Sidecar};
use super::status::ApiError;

/// Istio's injection webhook: on pod CREATE, finds the injection webhook the cluster's
/// MutatingWebhookConfigurations select (see [`injection`]) and injects the proxy of that
/// webhook's control plane (the `discovery` image of the Deployment behind its Service).
pub struct IstioInjection {
    /// Inject native sidecars unless a pod's `sidecar.istio.io/nativeSidecar` says otherwise.
    pub native_sidecars: bool,
}

fn namespace_labels(cluster: &dyn ClusterView, namespace: &str) -> BTreeMap<String, String> {
    cluster
        .get("", "namespaces", "", namespace)
        .map(|ns| super::object::labels(&ns))
        .unwrap_or_default()
}

fn pilot_image(deployment: &Value) -> Option<String> {
    let containers = deployment
        .pointer("/spec/template/spec/containers")?
        .as_array()?;
    containers
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("discovery"))
        .or_else(|| containers.first())?
        .get("image")?
        .as_str()
        .map(str::to_string)
}

impl AdmissionHook for IstioInjection {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        if request.operation != AdmissionOperation::Create
            || request.kind != "Pod"
            || !request.group.is_empty()
            || !request.subresource.is_empty()
        {
            return Ok(());
        }
        let configurations = request.cluster.list(
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            None,
        );
        let webhooks = injection::webhooks(&configurations);
        if webhooks.is_empty() {
            return Ok(());
        }
        let ns_labels = namespace_labels(request.cluster, request.namespace);
        let pod_labels = super::object::labels(object);
        let Some(webhook) =
            injection::matching_webhook(&webhooks, request.namespace, &ns_labels, &pod_labels)
        else {
            return Ok(());
        };
        let (service_namespace, service_name) = &webhook.service;
        let control_plane =
            request
                .cluster
                .get("apps", "deployments", service_namespace, service_name);
        let Some(image) = control_plane.as_ref().and_then(pilot_image) else {
            // failurePolicy: Fail, and nothing serves the webhook.
            return Err(ApiError::new(
                500,
                "InternalError",
                format!(
                    "Internal error occurred: failed calling webhook \"{}\": failed to call webhook: Post \"https://{service_name}.{service_namespace}.svc:443/inject?timeout=10s\": no endpoints available for service \"{service_name}\"",
                    webhook.name
                ),
            ));
        };
        if !injection::inject_required(request.namespace, object) {
            return Ok(());
        }
        let proxy_image = injection::proxy_image(&image);
        injection::inject(
            object,
            &Sidecar {
                revision: &webhook.revision,
                proxy_image: &proxy_image,
                native_by_default: self.native_sidecars,
            },
        );
        Ok(())
    }
}

/// Kinds the AKS Istio add-on refuses.
pub const ADDON_BLOCKED_KINDS: &[&str] = &[
    "ProxyConfig",
    "WorkloadEntry",
    "WorkloadGroup",
    "IstioOperator",
    "WasmPlugin",
];

/// Top-level MeshConfig fields the add-on accepts in `istio-shared-configmap-<revision>`.
pub const ADDON_MESHCONFIG_FIELDS: &[&str] = &[
    "proxyListenPort",
    "proxyInboundListenPort",
    "proxyHttpPort",
    "connectTimeout",
    "tcpKeepalive",
    "defaultConfig",
    "outboundTrafficPolicy",
    "extensionProviders",
    "defaultProviders",
    "accessLogFile",
    "accessLogFormat",
    "accessLogEncoding",
    "enableTracing",
    "enableEnvoyAccessLogService",
    "disableEnvoyListenerLog",
    "trustDomain",
    "trustDomainAliases",
    "caCertificates",
    "defaultServiceExportTo",
    "defaultVirtualServiceExportTo",
    "defaultDestinationRuleExportTo",
    "localityLbSetting",
    "dnsRefreshRate",
    "h2UpgradePolicy",
    "enablePrometheusMerge",
    "discoverySelectors",
    "pathNormalization",
    "defaultHttpRetryPolicy",
    "serviceSettings",
    "meshMTLS",
    "tlsDefaults",
    "ingressService",
    "ingressSelector",
];

/// `defaultConfig` (ProxyConfig) fields the add-on accepts.
pub const ADDON_PROXYCONFIG_FIELDS: &[&str] = &[
    "tracingServiceName",
    "drainDuration",
    "statsUdpAddress",
    "proxyAdminPort",
    "tracing",
    "concurrency",
    "envoyAccessLogService",
    "envoyMetricsService",
    "proxyMetadata",
    "statusPort",
    "extraStatTags",
    "gatewayTopology",
    "proxyStatsMatcher",
    "terminationDrainDuration",
    "meshId",
    "holdApplicationUntilProxyStarts",
    "caCertificatesPem",
    "privateKeyProvider",
    "proxyHeaders",
];

/// The MeshConfig fields of a `data.mesh` document that the add-on blocks
/// (`defaultConfig.<field>` for ProxyConfig fields), or an error when it is not YAML.
pub fn blocked_meshconfig_fields(mesh: &str) -> Result<Vec<String>, String> {
    if mesh.contains('\t') {
        return Err("tabs are not allowed in the mesh configuration; indent with spaces".into());
    }
    let parsed: Value =
        serde_yaml::from_str(mesh).map_err(|e| format!("invalid mesh configuration: {e}"))?;
    let mut blocked = Vec::new();
    let Some(fields) = parsed.as_object() else {
        return Ok(blocked);
    };
    for (field, value) in fields {
        if !ADDON_MESHCONFIG_FIELDS.contains(&field.as_str()) {
            blocked.push(field.clone());
        } else if field == "defaultConfig"
            && let Some(proxy) = value.as_object()
        {
            for inner in proxy.keys() {
                if !ADDON_PROXYCONFIG_FIELDS.contains(&inner.as_str()) {
                    blocked.push(format!("defaultConfig.{inner}"));
                }
            }
        }
    }
    blocked.sort();
    Ok(blocked)
}

/// The AKS Istio add-on's admission: refuses the kinds it blocks and shared MeshConfig
/// ConfigMaps with fields outside its allowlist, as its validating webhook does.
pub struct AddonPolicy;

/// Name of the add-on's (emulated) validating webhook, as shown in its refusals.
pub const ADDON_WEBHOOK: &str = "validation.azureservicemesh.aks.azure.com";

fn denied(message: String) -> ApiError {
    ApiError::new(
        403,
        "Forbidden",
        format!("admission webhook \"{ADDON_WEBHOOK}\" denied the request: {message}"),
    )
}

impl AdmissionHook for AddonPolicy {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        if request.group.ends_with("istio.io") && ADDON_BLOCKED_KINDS.contains(&request.kind) {
            return Err(denied(format!(
                "{} is not supported by the Istio-based service mesh add-on for AKS: the add-on blocks {} resources",
                request.kind,
                ADDON_BLOCKED_KINDS.join(", ")
            )));
        }
        let shared_config = request.group.is_empty()
            && request.kind == "ConfigMap"
            && request.namespace == "aks-istio-system"
            && request.name.starts_with("istio-shared-configmap-");
        if shared_config && let Some(mesh) = object.pointer("/data/mesh").and_then(Value::as_str) {
            match blocked_meshconfig_fields(mesh) {
                Ok(blocked) if blocked.is_empty() => {}
                Ok(blocked) => {
                    return Err(denied(format!(
                        "MeshConfig fields not allowed by the Istio-based service mesh add-on: {}",
                        blocked.join(", ")
                    )));
                }
                Err(why) => return Err(denied(why)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meshconfig_allowlist() {
        assert_eq!(
            blocked_meshconfig_fields(
                "accessLogFile: /dev/stdout\nenableAutoMtls: true\ndefaultConfig:\n  holdApplicationUntilProxyStarts: true\n  discoveryAddress: x:15012\n"
            ),
            Ok(vec![
                "defaultConfig.discoveryAddress".to_string(),
                "enableAutoMtls".to_string()
            ])
        );
        assert!(blocked_meshconfig_fields("a:\n\tb: c").is_err());
        assert_eq!(blocked_meshconfig_fields("{}"), Ok(vec![]));
    }
}
