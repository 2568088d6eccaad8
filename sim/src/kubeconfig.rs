//! Kubeconfig files pointing at simulated clusters.
//!
//! A load balancer port that could not be bound as given (ports below 1024 for a non-root
//! process) is served on a free port of the same address. Such mappings travel with the
//! cluster entry, in the kubeconfig's standard place for tool data: a named extension
//! [`CONNECT_TO_EXTENSION`] whose value maps `address:port` to where it is served. Clients
//! that know it (meshshift's `sample` and `http_get`) connect there and keep the original
//! `Host`; kubectl and other clients ignore it.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

/// What a kubeconfig needs to reach one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct KubeconfigEntry {
    /// Context and cluster name.
    pub name: String,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// CA certificate to trust.
    pub ca_pem: String,
    /// Bearer token.
    pub token: String,
}

/// The name of the cluster extension that holds a cluster's port mappings.
pub const CONNECT_TO_EXTENSION: &str = "connect-to.meshshift.io";

/// Port mappings per cluster name: `address:port` -> `address:bound port`.
pub type PortMappings = BTreeMap<String, BTreeMap<String, String>>;

/// A kubeconfig (YAML) with one context per entry; `current` names the current context.
pub fn render(entries: &[KubeconfigEntry], current: &str) -> String {
    render_with_mappings(entries, current, &PortMappings::new())
}

/// [`render`], with each cluster's port mappings in its [`CONNECT_TO_EXTENSION`].
pub fn render_with_mappings(
    entries: &[KubeconfigEntry],
    current: &str,
    mappings: &PortMappings,
) -> String {
    let clusters: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut cluster = json!({
                "server": e.server,
                "certificate-authority-data":
                    base64::engine::general_purpose::STANDARD.encode(&e.ca_pem),
            });
            if let Some(mapped) = mappings.get(&e.name).filter(|m| !m.is_empty()) {
                cluster["extensions"] =
                    json!([{"name": CONNECT_TO_EXTENSION, "extension": mapped}]);
            }
            json!({"name": e.name, "cluster": cluster})
        })
        .collect();
    let users: Vec<Value> = entries
        .iter()
        .map(|e| json!({"name": format!("{}-admin", e.name), "user": {"token": e.token}}))
        .collect();
    let contexts: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "context": {"cluster": e.name, "user": format!("{}-admin", e.name), "namespace": "default"}
            })
        })
        .collect();
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": users,
        "contexts": contexts,
        "current-context": current,
        "preferences": {},
    });
    serde_yaml::to_string(&config).unwrap_or_default()
}

/// Writes a kubeconfig readable only by the owner (it holds tokens).
pub fn write(
    path: &std::path::Path,
    entries: &[KubeconfigEntry],
    current: &str,
) -> std::io::Result<()> {
    write_with_mappings(path, entries, current, &PortMappings::new())
}

/// [`write`], with port mappings ([`render_with_mappings`]).
pub fn write_with_mappings(
    path: &std::path::Path,
    entries: &[KubeconfigEntry],
    current: &str,
    mappings: &PortMappings,
) -> std::io::Result<()> {
    let text = render_with_mappings(entries, current, mappings);
    meshshift_support::files::write_atomic(path, text.as_bytes(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_context_per_cluster() {
        let entry = |name: &str| KubeconfigEntry {
            name: name.into(),
            server: "https://127.0.0.1:1".into(),
            ca_pem: "PEM".into(),
            token: "t".into(),
        };
        let text = render(&[entry("sim-source"), entry("sim-target")], "sim-source");
        let parsed: Value = serde_yaml::from_str(&text).expect("valid yaml");
        assert_eq!(parsed["current-context"], "sim-source");
        assert_eq!(parsed["contexts"][1]["context"]["cluster"], "sim-target");
        assert_eq!(
            parsed["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert!(parsed["clusters"][0]["cluster"].get("extensions").is_none());
    }

    #[test]
    fn port_mappings_travel_with_their_cluster_entry() {
        let entry = |name: &str| KubeconfigEntry {
            name: name.into(),
            server: "https://127.0.0.1:1".into(),
            ca_pem: "PEM".into(),
            token: "t".into(),
        };
        let mut mappings = PortMappings::new();
        mappings
            .entry("sim-target".into())
            .or_default()
            .insert("127.3.2.1:80".into(), "127.3.2.1:40123".into());
        let text = render_with_mappings(
            &[entry("sim-source"), entry("sim-target")],
            "sim-source",
            &mappings,
        );
        let parsed: Value = serde_yaml::from_str(&text).expect("valid yaml");
        assert!(parsed["clusters"][0]["cluster"].get("extensions").is_none());
        let extensions = &parsed["clusters"][1]["cluster"]["extensions"];
        assert_eq!(extensions[0]["name"], CONNECT_TO_EXTENSION);
        assert_eq!(
            extensions[0]["extension"]["127.3.2.1:80"],
            "127.3.2.1:40123"
        );
    }
}
