//! Kubeconfig files pointing at simulated clusters.

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

/// A kubeconfig (YAML) with one context per entry; `current` names the current context.
pub fn render(entries: &[KubeconfigEntry], current: &str) -> String {
    let clusters: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "cluster": {
                    "server": e.server,
                    "certificate-authority-data":
                        base64::engine::general_purpose::STANDARD.encode(&e.ca_pem),
                }
            })
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
    crate::files::write_atomic(path, render(entries, current).as_bytes(), true)
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
    }
}
