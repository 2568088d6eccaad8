//! Clusters over kube-rs: a [`Cluster`] handle is bound to a kubeconfig context and pinned to
//! that cluster's identity. Reads are in [`read`], waits in [`wait`], and every change goes
//! through [`Cluster::mutate`] in [`effects`], the one place where plan mode, the run record
//! and identity checks attach.

mod client;
pub mod conditions;
pub mod discovery;
pub mod effects;
pub mod gateway;
pub mod lease;
pub mod mesh;
pub mod names;
pub mod overlay;
pub mod read;
pub mod rest;
pub mod summary;
pub mod wait;

use std::path::PathBuf;
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::error::{Error, Result};
use crate::suggestion::did_you_mean;
use discovery::{Discovery, Resource};
use rest::{Rest, RestError};

/// The cluster extension in which a kubeconfig carries load balancer port mappings
/// (`address:port` -> `address:bound-port`), for ports that could not be bound as given.
/// The simulator writes it; `sample` and `http_get` honour it for the clusters a session binds.
pub const CONNECT_TO_EXTENSION: &str = "connect-to.meshshift.io";

/// Where the kubeconfig comes from: `--kubeconfig`, else `$KUBECONFIG` (several files merged),
/// else `~/.kube/config`, as kubectl reads it.
#[derive(Debug, Clone, Default)]
pub struct KubeconfigSource {
    pub path: Option<PathBuf>,
}

impl KubeconfigSource {
    fn read(&self) -> Result<Kubeconfig> {
        let result = match &self.path {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        };
        result.map_err(|error| Error::Other {
            message: match &self.path {
                Some(path) => format!("cannot read kubeconfig `{}`: {error}", path.display()),
                None => {
                    format!("cannot read a kubeconfig from $KUBECONFIG or ~/.kube/config: {error}")
                }
            },
        })
    }

    /// The credentials the kubeconfig holds (tokens, passwords, client keys, auth-provider
    /// secrets), for the redaction layer; empty when it cannot be read.
    pub fn credentials(&self) -> Vec<String> {
        let Ok(kubeconfig) = self.read() else {
            return Vec::new();
        };
        let mut found = Vec::new();
        let users = serde_json::to_value(&kubeconfig.auth_infos).unwrap_or_default();
        collect_credentials(&users, &mut found);
        found
    }

    /// The port mappings that the cluster entries of `contexts` carry in their
    /// [`CONNECT_TO_EXTENSION`], as `(address:port, where it is served)` pairs. The file is
    /// read anew each time: mappings appear when load balancers get their addresses.
    pub fn port_mappings(&self, contexts: &[String]) -> Result<Vec<(String, String)>> {
        let kubeconfig = self.read()?;
        let mut pairs = Vec::new();
        for context in &kubeconfig.contexts {
            if !contexts.contains(&context.name) {
                continue;
            }
            let Some(cluster_name) = context.context.as_ref().map(|c| &c.cluster) else {
                continue;
            };
            let entries = kubeconfig
                .clusters
                .iter()
                .filter(|c| &c.name == cluster_name);
            let extensions = entries
                .filter_map(|entry| entry.cluster.as_ref()?.extensions.as_ref())
                .flatten()
                .filter(|extension| extension.name == CONNECT_TO_EXTENSION);
            for extension in extensions {
                if let Some(map) = extension.extension.as_object() {
                    pairs.extend(
                        map.iter().filter_map(|(from, to)| {
                            Some((from.clone(), to.as_str()?.to_string()))
                        }),
                    );
                }
            }
        }
        Ok(pairs)
    }

    /// The context names, in kubeconfig order, and the current context.
    pub fn contexts(&self) -> Result<(Vec<String>, Option<String>)> {
        let kubeconfig = self.read()?;
        let names = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
        Ok((names, kubeconfig.current_context.clone()))
    }
}

/// The per-request timeout: `MESHSHIFT_REQUEST_TIMEOUT` (`30s`, `2m`), else the default.
/// String values under credential keys (`token`, `password`, `client-key-data`,
/// `id-token`, `refresh-token`, `client-secret`, ...), wherever they are nested.
fn collect_credentials(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, item) in fields {
                let key = key.to_ascii_lowercase();
                let credential = key == "password"
                    || key == "client-key-data"
                    || ((key.contains("token") || key.contains("secret")) && !key.contains("file"));
                match item {
                    Value::String(text) if credential && !text.is_empty() => {
                        found.push(text.clone())
                    }
                    other => collect_credentials(other, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_credentials(i, found)),
        _ => {}
    }
}

fn request_timeout() -> Result<std::time::Duration> {
    match std::env::var("MESHSHIFT_REQUEST_TIMEOUT") {
        Ok(text) => match crate::duration::parse_duration(&text) {
            Ok(timeout) if !timeout.is_zero() => Ok(timeout),
            Ok(_) => Err(Error::Other {
                message:
                    "MESHSHIFT_REQUEST_TIMEOUT is 0: expected a duration above zero, e.g. `30s`"
                        .into(),
            }),
            Err(reason) => Err(Error::Other {
                message: format!("MESHSHIFT_REQUEST_TIMEOUT: {reason}"),
            }),
        },
        Err(_) => Ok(rest::DEFAULT_REQUEST_TIMEOUT),
    }
}

/// What pins a handle to one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub server: String,
    /// SHA-256 of the CA certificate(s) the context trusts (`none` without one).
    pub ca_fingerprint: String,
    /// The uid of the `kube-system` namespace: different for every cluster ever created.
    pub kube_system_uid: String,
}

/// Receives every change made (or planned) through a handle: the run record, the journal.
pub type ChangeSink = Arc<dyn Fn(&effects::Change) + Send + Sync>;

/// A cluster bound to a kubeconfig context.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    context: String,
    /// The name of the kubeconfig's cluster entry the context uses (`az aks get-credentials`
    /// names it after the AKS cluster, whatever the context is called).
    kubeconfig_cluster: String,
    namespace: String,
    rest: Rest,
    /// The connection settings, for the HTTP/1.1 client WebSocket upgrades need.
    config: kube::Config,
    identity: Identity,
    discovery: RwLock<Option<Arc<Discovery>>>,
    /// Resource lists of single group versions (`apps/v1`): enough to resolve manifests, and far
    /// cheaper than full discovery.
    group_versions: RwLock<std::collections::HashMap<String, Arc<Vec<Resource>>>>,
    sink: Option<ChangeSink>,
    /// Plan mode's planned writes, which reads see on top of the live state.
    overlay: overlay::Overlay,
    /// The run lock this handle takes before its first write (runs only).
    lock: lease::LockSlot,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cluster({} at {})",
            self.inner.context, self.inner.identity.server
        )
    }
}

impl Cluster {
    /// Binds a handle to `context` (the current context when `None`), connects, and records the
    /// cluster's identity.
    pub async fn connect(
        source: &KubeconfigSource,
        context: Option<&str>,
        sink: Option<ChangeSink>,
    ) -> Result<Cluster> {
        let kubeconfig = source.read()?;
        let names: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
        let context = match context {
            Some(context) => context.to_string(),
            None => kubeconfig.current_context.clone().ok_or_else(|| Error::Other {
                message: "the kubeconfig has no current context: name one, e.g. cluster(\"my-context\")".into(),
            })?,
        };
        if !names.contains(&context) {
            return Err(Error::UnknownContext {
                suggestion: did_you_mean(&context, names.iter().map(String::as_str)),
                context,
                available: names,
            });
        }
        let kubeconfig_cluster = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
            .unwrap_or_default();
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| Error::Cluster {
                context: context.clone(),
                message: format!("invalid kubeconfig entry: {e}"),
                causes: vec![],
            })?;
        config.connect_timeout = Some(std::time::Duration::from_secs(5));
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let ca_fingerprint = match &config.root_cert {
            Some(certificates) if !certificates.is_empty() => fingerprint(certificates),
            _ => "none".to_string(),
        };
        let namespace = config.default_namespace.clone();
        let upgrade_config = config.clone();
        let client = client::build(config).map_err(|e| Error::Cluster {
            context: context.clone(),
            message: format!("cannot create a client: {e}"),
            causes: vec![],
        })?;
        let rest = Rest::new(client, request_timeout()?);
        let kube_system_uid = fetch_kube_system_uid(&rest)
            .await
            .map_err(|e| Error::Cluster {
                context: context.clone(),
                message: format!("cannot reach {server}: {}", e.message()),
                causes: e.causes(),
            })?;
        let identity = Identity {
            server,
            ca_fingerprint,
            kube_system_uid,
        };
        Ok(Cluster {
            inner: Arc::new(Inner {
                context,
                kubeconfig_cluster,
                namespace,
                rest,
                config: upgrade_config,
                identity,
                discovery: RwLock::new(None),
                group_versions: RwLock::new(Default::default()),
                sink,
                overlay: overlay::Overlay::default(),
                lock: lease::LockSlot::default(),
            }),
        })
    }

    /// A client speaking HTTP/1.1 only, for WebSocket upgrades (`pods/portforward`), which
    /// kube-apiserver does not offer over HTTP/2.
    pub fn upgrade_client(&self) -> Result<kube::Client> {
        kube::Client::try_from(self.inner.config.clone()).map_err(|e| Error::Cluster {
            context: self.inner.context.clone(),
            message: format!("cannot create a client: {e}"),
            causes: vec![],
        })
    }

    pub fn context(&self) -> &str {
        &self.inner.context
    }

    /// The kubeconfig cluster entry the context names.
    pub fn kubeconfig_cluster(&self) -> &str {
        &self.inner.kubeconfig_cluster
    }

    pub fn server(&self) -> &str {
        &self.inner.identity.server
    }

    /// The context's default namespace (objects without one go there).
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    pub(crate) fn rest(&self) -> &Rest {
        &self.inner.rest
    }

    pub(crate) fn sink(&self) -> Option<&ChangeSink> {
        self.inner.sink.as_ref()
    }

    /// What plan mode's dry runs would have written through this handle.
    pub fn overlay(&self) -> &overlay::Overlay {
        &self.inner.overlay
    }

    /// An error about this cluster.
    pub fn error(&self, message: impl Into<String>, causes: Vec<String>) -> Error {
        Error::Cluster {
            context: self.inner.context.clone(),
            message: message.into(),
            causes,
        }
    }

    /// An error from a failed request about `what`.
    pub fn request_error(&self, what: &str, error: &RestError) -> Error {
        self.error(format!("{what}: {}", error.message()), error.causes())
    }

    /// Refuses to go on when the cluster behind the context is no longer the one bound.
    pub async fn verify_identity(&self) -> Result<()> {
        let uid = fetch_kube_system_uid(&self.inner.rest)
            .await
            .map_err(|e| self.request_error("cannot verify the cluster's identity", &e))?;
        if uid != self.inner.identity.kube_system_uid {
            return Err(self.error(
                format!(
                    "{} is no longer the cluster this handle was bound to (kube-system uid was {}, now {}); refusing to act: bind it again with cluster(\"{}\")",
                    self.inner.identity.server, self.inner.identity.kube_system_uid, uid, self.inner.context
                ),
                vec![],
            ));
        }
        Ok(())
    }

    /// The cached discovery, fetched on first use.
    pub async fn discovery(&self) -> Result<Arc<Discovery>> {
        if let Some(discovery) = self.inner.discovery.read().await.as_ref() {
            return Ok(discovery.clone());
        }
        self.refresh_discovery().await
    }

    /// Fetches discovery again (after CRDs were applied, or when a kind was not found).
    pub async fn refresh_discovery(&self) -> Result<Arc<Discovery>> {
        let fresh = Arc::new(
            Discovery::fetch(&self.inner.rest)
                .await
                .map_err(|e| self.request_error("cannot discover the served resources", &e))?,
        );
        *self.inner.discovery.write().await = Some(fresh.clone());
        self.inner.group_versions.write().await.clear();
        Ok(fresh)
    }

    /// Forgets cached group versions (after CRDs change what is served).
    pub async fn forget_group_versions(&self) {
        self.inner.group_versions.write().await.clear();
        *self.inner.discovery.write().await = None;
    }

    /// The resources of one group version (`apps/v1`), fetched once; empty when not served.
    async fn group_version(&self, api_version: &str) -> Result<Arc<Vec<Resource>>> {
        if let Some(resources) = self.inner.group_versions.read().await.get(api_version) {
            return Ok(resources.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let path = if api_version.contains('/') {
            format!(
                "/apis/{}/{}",
                names::segment(group),
                names::segment(version)
            )
        } else {
            format!("/api/{}", names::segment(version))
        };
        let resources = match self.inner.rest.get(&path).await {
            Ok(response) => discovery::parse_resource_list(group, version, true, &response.body),
            Err(e) if e.status_code() == Some(404) => Vec::new(),
            Err(e) => {
                return Err(self.request_error(&format!("cannot discover `{api_version}`"), &e));
            }
        };
        let resources = Arc::new(resources);
        self.inner
            .group_versions
            .write()
            .await
            .insert(api_version.to_string(), resources.clone());
        Ok(resources)
    }

    /// Resolves a kind as users type it (`Deployment`, `deploy`, `vs`, `gateways.networking.istio.io`).
    pub async fn resolve(&self, kind: &str) -> Result<Resource> {
        if let Some(resource) = self.discovery().await?.resolve(kind) {
            return Ok(resource.clone());
        }
        let discovery = self.refresh_discovery().await?;
        if let Some(resource) = discovery.resolve(kind) {
            return Ok(resource.clone());
        }
        let names = discovery.names();
        let hint = did_you_mean(kind, names.iter().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Err(self.error(
            format!("the server has no resource type `{kind}`{hint}"),
            vec![],
        ))
    }

    /// Resolves an object's `apiVersion` and `kind`, refreshing discovery once if needed.
    pub async fn resolve_object(&self, object: &Value) -> Result<Option<Resource>> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let find = |resources: &[Resource]| resources.iter().find(|r| r.kind == kind).cloned();
        if let Some(resource) = find(&self.group_version(api_version).await?) {
            return Ok(Some(resource));
        }
        // A CRD may have been established since the list was cached.
        self.inner.group_versions.write().await.remove(api_version);
        Ok(find(&self.group_version(api_version).await?))
    }
}

async fn fetch_kube_system_uid(rest: &Rest) -> std::result::Result<String, RestError> {
    let response = rest.get("/api/v1/namespaces/kube-system").await?;
    Ok(response.body["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn fingerprint(certificates: &[Vec<u8>]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for certificate in certificates {
        context.update(certificate);
    }
    context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
