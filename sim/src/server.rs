//! Starting and stopping simulated API servers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::admission::AdmissionHook;
use super::cluster::{Bootstrap, ClusterState};
use super::fault::{FaultConfig, FaultControl};
use super::kubeconfig::{self, KubeconfigEntry};
use super::mesh::proxies::Proxies;
use super::tls::ServerIdentity;

/// Errors starting or running a simulated cluster.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Certificates could not be generated or loaded.
    #[error("failed to set up TLS: {0}")]
    Tls(String),
    /// The configuration is not usable.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// A detached simulator could not be started, found or stopped.
    #[error("{0}")]
    Daemon(String),
}

impl SimError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> SimError {
        SimError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Settings of one simulated API server.
#[derive(Clone)]
pub struct ApiServerConfig {
    /// Cluster name, used for the kubeconfig context.
    pub name: String,
    /// Listen address; port 0 picks a free port.
    pub bind: String,
    /// Injected faults.
    pub fault: FaultConfig,
    /// Bearer token clients must present; random when `None`.
    pub token: Option<String>,
    /// Number of recent changes kept for watches; older start versions get `410 Gone`.
    pub watch_window: usize,
    /// Interval between watch bookmarks (when clients allow them).
    pub bookmark_interval: Duration,
    /// Admission hooks, called in order on every create and update.
    pub admission: Vec<Arc<dyn AdmissionHook>>,
    /// UID of the `kube-system` namespace (the cluster's identity); random when `None`.
    pub kube_system_uid: Option<String>,
    /// JSON file the objects are restored from at start (if it exists) and saved to on
    /// shutdown.
    pub snapshot: Option<PathBuf>,
    /// The gateway pods' Envoys, which the mesh data plane fills.
    pub proxies: Arc<Proxies>,
}

impl Default for ApiServerConfig {
    fn default() -> Self {
        ApiServerConfig {
            name: "sim".into(),
            bind: "127.0.0.1:0".into(),
            fault: FaultConfig::default(),
            token: None,
            watch_window: 10_000,
            bookmark_interval: Duration::from_secs(30),
            admission: Vec::new(),
            kube_system_uid: None,
            snapshot: None,
            proxies: Arc::default(),
        }
    }
}

impl ApiServerConfig {
    /// A configuration for cluster `name` on an ephemeral loopback port, with faults from
    /// the environment (see [`FaultConfig::from_env`]).
    pub fn named(name: &str) -> Result<ApiServerConfig, SimError> {
        Ok(ApiServerConfig {
            name: name.to_string(),
            fault: FaultConfig::from_env(name).map_err(SimError::Config)?,
            ..ApiServerConfig::default()
        })
    }
}

/// What request handlers share.
pub struct Shared {
    /// Cluster name.
    pub name: String,
    /// The cluster, behind its single lock.
    pub state: Mutex<ClusterState>,
    /// The bearer token.
    pub token: String,
    /// Injected faults, changeable while serving.
    pub fault: Arc<FaultControl>,
    /// Cancelled on shutdown: ends watches and connections.
    pub shutdown: CancellationToken,
    /// Where the server listens.
    pub address: SocketAddr,
    /// Interval between watch bookmarks.
    pub bookmark_interval: Duration,
    /// The gateway pods' Envoys (`pods/portforward`, `pods/proxy`).
    pub proxies: Arc<Proxies>,
}

impl Shared {
    /// The cluster state. A panic while holding the lock would be a bug; the server keeps
    /// serving what is stored rather than failing every later request.
    pub fn lock(&self) -> MutexGuard<'_, ClusterState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A simulated Kubernetes API server.
pub struct ApiServer;

/// A running server.
pub struct ApiServerHandle {
    shared: Arc<Shared>,
    ca_pem: String,
    task: Option<tokio::task::JoinHandle<()>>,
    snapshot: Option<PathBuf>,
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ApiServer {
    /// Starts a server: generates its CA and token, binds, and serves until
    /// [`ApiServerHandle::shutdown`].
    pub async fn start(config: ApiServerConfig) -> Result<ApiServerHandle, SimError> {
        let identity =
            ServerIdentity::generate(&config.name).map_err(|e| SimError::Tls(e.to_string()))?;
        let tls = identity
            .server_config()
            .map_err(|e| SimError::Tls(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(&config.bind)
            .await
            .map_err(|e| SimError::io(format!("failed to listen on {}", config.bind), e))?;
        let address = listener
            .local_addr()
            .map_err(|e| SimError::io("failed to read the listen address", e))?;
        let restored = match &config.snapshot {
            Some(path) if path.exists() => Some(super::snapshot::load(path)?),
            _ => None,
        };
        let kube_system_uid = config
            .kube_system_uid
            .clone()
            .or_else(|| restored.as_ref().and_then(|s| s.kube_system_uid()));
        let mut state = ClusterState::new(Bootstrap {
            name: &config.name,
            watch_window: config.watch_window,
            kube_system_uid,
            ca_pem: &identity.ca_pem,
            hooks: config.admission.clone(),
        });
        if let Some(snapshot) = restored {
            snapshot.restore_into(&mut state, &identity.ca_pem);
        }
        let shared = Arc::new(Shared {
            name: config.name.clone(),
            state: Mutex::new(state),
            token: config.token.clone().unwrap_or_else(random_token),
            fault: FaultControl::new(&config.name, config.fault.clone()),
            shutdown: CancellationToken::new(),
            address,
            bookmark_interval: config.bookmark_interval,
            proxies: config.proxies.clone(),
        });
        let task = tokio::spawn(super::http::serve(listener, tls, shared.clone()));
        Ok(ApiServerHandle {
            shared,
            ca_pem: identity.ca_pem,
            task: Some(task),
            snapshot: config.snapshot,
        })
    }
}

impl ApiServerHandle {
    /// Cluster name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The gateway pods' Envoys of this cluster.
    pub fn proxies(&self) -> Arc<Proxies> {
        self.shared.proxies.clone()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.shared.address)
    }

    /// The listen address.
    pub fn address(&self) -> SocketAddr {
        self.shared.address
    }

    /// The CA certificate (PEM) that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The faults of this server, changeable while it serves.
    pub fn faults(&self) -> Arc<FaultControl> {
        self.shared.fault.clone()
    }

    /// The bearer token clients must send.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The kubeconfig entry for this cluster.
    pub fn kubeconfig_entry(&self) -> KubeconfigEntry {
        KubeconfigEntry {
            name: self.shared.name.clone(),
            server: self.url(),
            ca_pem: self.ca_pem.clone(),
            token: self.shared.token.clone(),
        }
    }

    /// Writes a kubeconfig with just this cluster as its current context.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        kubeconfig::write(path, &[self.kubeconfig_entry()], self.name())
            .map_err(|e| SimError::io(format!("failed to write {}", path.display()), e))
    }

    /// Stops serving: ends watches, closes connections, saves the snapshot if configured.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        self.shared.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(path) = &self.snapshot {
            let state = self.shared.lock();
            super::snapshot::save(&state, path)?;
        }
        Ok(())
    }
}

impl Drop for ApiServerHandle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// Two simulated clusters, `sim-source` and `sim-target`, and a kubeconfig for both.
pub struct Sim {
    /// The source cluster.
    pub source: ApiServerHandle,
    /// The target cluster.
    pub target: ApiServerHandle,
    /// The kubeconfig written for both (current context `sim-source`).
    pub kubeconfig: PathBuf,
}

/// Name of the source cluster and its kubeconfig context.
pub const SOURCE_NAME: &str = "sim-source";
/// Name of the target cluster and its kubeconfig context.
pub const TARGET_NAME: &str = "sim-target";

impl Sim {
    /// Starts `sim-source` and `sim-target` (configured by `configure`, which receives the
    /// default configuration of each) and writes `kubeconfig`.
    pub async fn start_pair(
        kubeconfig: &Path,
        configure: impl Fn(ApiServerConfig) -> ApiServerConfig,
    ) -> Result<Sim, SimError> {
        let source_config = configure(ApiServerConfig::named(SOURCE_NAME)?);
        let target_config = configure(ApiServerConfig::named(TARGET_NAME)?);
        let (source, target) = tokio::try_join!(
            ApiServer::start(source_config),
            ApiServer::start(target_config)
        )?;
        kubeconfig::write(
            kubeconfig,
            &[source.kubeconfig_entry(), target.kubeconfig_entry()],
            SOURCE_NAME,
        )
        .map_err(|e| SimError::io(format!("failed to write {}", kubeconfig.display()), e))?;
        Ok(Sim {
            source,
            target,
            kubeconfig: kubeconfig.to_path_buf(),
        })
    }

    /// Stops both clusters.
    pub async fn shutdown(self) -> Result<(), SimError> {
        let (a, b) = tokio::join!(self.source.shutdown(), self.target.shutdown());
        a.and(b)
    }
}
