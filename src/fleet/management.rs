//! The management cluster: reached from a pod with its service account (in-cluster
//! configuration through kube-rs), or from a workstation with a kubeconfig context.

use std::path::PathBuf;

use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};

use crate::error::{Error, Result};

/// The service account's files, where the kubelet mounts them.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Overrides [`SERVICE_ACCOUNT_DIR`] (a pod's command run outside a pod, in tests).
pub const SERVICE_ACCOUNT_DIR_ENV: &str = "MESHSHIFT_SERVICE_ACCOUNT_DIR";

/// How the management cluster is reached.
#[derive(Debug, Clone)]
pub enum Access {
    /// `KUBERNETES_SERVICE_HOST`/`_PORT`, the service account's token and CA files.
    InCluster,
    /// A kubeconfig (`--kubeconfig`, else `$KUBECONFIG`) and a context (else the current one).
    Kubeconfig {
        path: Option<PathBuf>,
        context: Option<String>,
    },
}

fn other(message: String) -> Error {
    Error::Other { message }
}

/// A client for the management cluster.
pub async fn client(access: &Access) -> Result<kube::Client> {
    let config = match access {
        Access::InCluster => {
            let kubeconfig = in_cluster_kubeconfig()?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| other(format!("in-cluster configuration: {e}")))?
        }
        Access::Kubeconfig { path, context } => {
            let kubeconfig = match path {
                Some(path) => Kubeconfig::read_from(path),
                None => Kubeconfig::read(),
            }
            .map_err(|e| other(format!("cannot read the kubeconfig: {e}")))?;
            let options = KubeConfigOptions {
                context: context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| other(format!("management cluster: {e}")))?
        }
    };
    kube::Client::try_from(config).map_err(|e| other(format!("management cluster: {e}")))
}

/// The in-cluster configuration as a kubeconfig that names the token and CA files (kube-rs
/// re-reads a token file as the kubelet rotates it).
fn in_cluster_kubeconfig() -> Result<Kubeconfig> {
    let dir = std::env::var_os(SERVICE_ACCOUNT_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SERVICE_ACCOUNT_DIR));
    let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
        other("in-cluster configuration: KUBERNETES_SERVICE_HOST is not set (not in a pod?)".into())
    })?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    for file in ["token", "ca.crt"] {
        if !dir.join(file).is_file() {
            return Err(other(format!(
                "in-cluster configuration: no service account {file} in {} (set {SERVICE_ACCOUNT_DIR_ENV} to another directory)",
                dir.display()
            )));
        }
    }
    let path = |file: &str| Some(dir.join(file).to_string_lossy().into_owned());
    Ok(Kubeconfig {
        clusters: vec![NamedCluster {
            name: "management".into(),
            cluster: Some(Cluster {
                server: Some(format!("https://{host}:{port}")),
                certificate_authority: path("ca.crt"),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "service-account".into(),
            auth_info: Some(AuthInfo {
                token_file: path("token"),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: "management".into(),
            context: Some(Context {
                cluster: "management".into(),
                user: Some("service-account".into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some("management".into()),
        ..Default::default()
    })
}
