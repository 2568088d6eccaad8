//! A complete simulated environment: `sim-source` and `sim-target` API servers with their
//! admission hooks, the scenario installed, the agents and the mesh data plane, running on
//! the caller's Tokio runtime. With [`EnvironmentOptions::pairs`] it runs N such pairs,
//! `sim-source-1`/`sim-target-1` … `sim-source-N`/`sim-target-N`, for rehearsing a fleet. `meshshift sim up`, `run --sim`, `repl --sim` and tests all
//! start it through [`Environment::start`].
//!
//! It writes `<state dir>/sim/kubeconfig` and `<state dir>/sim/state.json` (process,
//! clusters, load balancer listeners and port mappings), which `meshshift sim az` and
//! `meshshift sim status` read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::addresses::{self, LoadBalancerPool, SlotLease};
use super::agents::{self, informer};
use super::hooks::{AddonPolicy, IstioInjection};
use super::kubeconfig::{self, KubeconfigEntry, PortMappings};
use super::mesh::forward::{Forwarder, PortMap};
use super::mesh::gateway::{self, GatewaySettings, ListenerInfo};
use super::mesh::proxies::{self, PodPropagation, Proxies};
use super::mesh::snapshot::MeshSnapshot;
use super::scenario::{self, Scenario};
use super::server::{
    ApiServer, ApiServerConfig, ApiServerHandle, SOURCE_NAME, SimError, TARGET_NAME,
};

/// How an environment starts.
#[derive(Clone, Debug)]
pub struct EnvironmentOptions {
    /// State directory (default: `MESHSHIFT_STATE_DIR`, else `.meshshift`); files go to its
    /// `sim/` subdirectory.
    pub state_dir: Option<PathBuf>,
    /// The clusters' starting point.
    pub scenario: Scenario,
    /// Time from a pod's creation to Ready (default 100 ms).
    pub pod_ready_delay: Duration,
    /// Time from a routing change to the gateways using it (default 300 ms).
    pub propagation_delay: Duration,
    /// Preferred loopback slot for load balancer addresses (`127.<slot>.1.x` source,
    /// `127.<slot>.2.x` target); when it is taken, or with `None`, a free one from 1 on.
    pub address_slot: Option<u8>,
    /// Serve every load balancer port on a free port and publish the mapping, even where the
    /// real port could be bound.
    pub map_ports: bool,
    /// Restore the objects saved by the last run and save them on shutdown.
    pub persist: bool,
    /// The executable `az_command` runs (default: the current one).
    pub executable: Option<PathBuf>,
    /// Run this many numbered pairs (`sim-source-1`, `sim-target-1`, …) instead of the one
    /// pair `sim-source`/`sim-target`.
    pub pairs: Option<u8>,
}

/// The most numbered pairs: each cluster's load balancers take one third octet of the slot
/// (`127.<slot>.<2k-1>.x` for source k, `127.<slot>.<2k>.x` for target k).
pub const MAX_PAIRS: u8 = 127;

/// The (source, target) cluster names of each pair: today's single pair, or numbered ones.
pub fn pair_names(pairs: Option<u8>) -> Vec<(String, String)> {
    match pairs {
        None => vec![(SOURCE_NAME.to_string(), TARGET_NAME.to_string())],
        Some(count) => (1..=count)
            .map(|k| (format!("{SOURCE_NAME}-{k}"), format!("{TARGET_NAME}-{k}")))
            .collect(),
    }
}

impl Default for EnvironmentOptions {
    fn default() -> Self {
        EnvironmentOptions {
            state_dir: None,
            scenario: Scenario::default(),
            pod_ready_delay: Duration::from_millis(100),
            propagation_delay: Duration::from_millis(300),
            address_slot: None,
            map_ports: false,
            persist: false,
            executable: None,
            pairs: None,
        }
    }
}

/// Starts environments.
pub struct Environment;

/// A running environment.
pub struct SimEnvironment {
    /// The kubeconfig with contexts `sim-source` and `sim-target` (or the numbered pairs').
    pub kubeconfig: PathBuf,
    /// The state directory (pass it to `meshshift --state-dir <dir> sim az`).
    pub state_dir: PathBuf,
    /// The argv prefix that runs the emulated Azure CLI: `[exe, --state-dir, dir, sim, az]`.
    pub az_command: Vec<String>,
    /// The loopback slot of the load balancer addresses.
    pub slot: u8,
    servers: Vec<ApiServerHandle>,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    state: Arc<StateFile>,
    ports: PortMap,
    _lease: SlotLease,
}

/// `state.json`, rewritten whenever listeners change, and the kubeconfig's port mappings.
struct StateFile {
    path: PathBuf,
    base: Value,
    /// The kubeconfig and its clusters, rewritten when port mappings change.
    kubeconfig: (PathBuf, Vec<KubeconfigEntry>),
    /// The mappings the kubeconfig holds now.
    written_mappings: Mutex<PortMappings>,
    listeners: Mutex<BTreeMap<String, Vec<ListenerInfo>>>,
    ports: PortMap,
    ready: std::sync::atomic::AtomicBool,
}

impl StateFile {
    fn document(&self) -> Value {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let mut document = self.base.clone();
        document["ready"] = json!(self.ready.load(std::sync::atomic::Ordering::SeqCst));
        document["listeners"] = listeners
            .values()
            .flatten()
            .map(|l| {
                json!({"cluster": l.cluster, "namespace": l.service.0, "service": l.service.1,
                            "address": l.address, "bound": l.bound})
            })
            .collect();
        let ports = self.ports.read().unwrap_or_else(|e| e.into_inner());
        let mut mappings: Vec<(&String, &String)> =
            ports.iter().filter(|(from, to)| from != to).collect();
        mappings.sort();
        document["portMappings"] = mappings
            .iter()
            .map(|(from, to)| json!({"from": from, "to": to}))
            .collect();
        document
    }

    /// Each cluster's listeners that are served on another port than their own.
    fn mappings(&self) -> PortMappings {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let mut mappings = PortMappings::new();
        for listener in listeners.values().flatten() {
            if listener.address != listener.bound {
                mappings
                    .entry(listener.cluster.clone())
                    .or_default()
                    .insert(listener.address.clone(), listener.bound.clone());
            }
        }
        mappings
    }

    fn write(&self) {
        // The state file is advisory (`sim status`): a failed write is not worth stopping for.
        let document = self.document().to_string();
        let _ = meshshift_support::files::write_atomic(&self.path, document.as_bytes(), true);
        let mappings = self.mappings();
        let mut written = self
            .written_mappings
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *written != mappings {
            let (path, entries) = &self.kubeconfig;
            let current = entries.first().map_or(SOURCE_NAME, |e| e.name.as_str());
            match kubeconfig::write_with_mappings(path, entries, current, &mappings) {
                Ok(()) => *written = mappings,
                Err(error) => tracing::warn!("cannot write {}: {error}", path.display()),
            }
        }
    }
}

fn entry_json(handle: &ApiServerHandle) -> Value {
    let address = handle.address();
    json!({"name": handle.name(), "server": handle.url(), "address": address.to_string(),
           "port": address.port(), "caPem": handle.ca_pem()})
}

impl Environment {
    /// Starts both clusters, installs the scenario, starts agents and gateways, writes the
    /// kubeconfig and state, and returns once the source's ingress gateway serves.
    pub async fn start(options: EnvironmentOptions) -> Result<SimEnvironment, SimError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let lease = match options.address_slot {
            Some(slot) => addresses::lease(Some(slot)).or_else(|_| addresses::lease(None))?,
            None => addresses::lease(None)?,
        };
        let dir = super::command::sim_dir(options.state_dir.as_deref())?;
        // It holds the kubeconfig (a token) and snapshots (Secrets): its owner's only.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)
            .map_err(|e| SimError::io(format!("failed to create {}", dir.display()), e))?;
        let state_dir = dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.clone());
        let kubeconfig = dir.join("kubeconfig");
        if !options.persist {
            remove_snapshots(&dir);
        }
        let pairs = options.pairs.unwrap_or(1);
        if pairs == 0 || pairs > MAX_PAIRS {
            return Err(SimError::Config(format!(
                "--pairs takes 1 to {MAX_PAIRS} (each cluster's load balancers take one third octet of 127.<slot>.x.y), not {pairs}"
            )));
        }
        let names = pair_names(options.pairs);
        let configs = names
            .iter()
            .flat_map(|(source, target)| [(source, false), (target, true)])
            .map(|(name, is_target)| {
                let mut admission: Vec<Arc<dyn super::admission::AdmissionHook>> =
                    vec![Arc::new(IstioInjection {
                        native_sidecars: options.scenario.native_sidecars,
                    })];
                if is_target {
                    admission.push(Arc::new(AddonPolicy));
                }
                let snapshot = options.persist.then(|| dir.join(format!("{name}.json")));
                Ok(ApiServerConfig {
                    admission,
                    snapshot,
                    ..ApiServerConfig::named(name)?
                })
            })
            .collect::<Result<Vec<_>, SimError>>()?;
        let servers =
            futures::future::try_join_all(configs.into_iter().map(ApiServer::start)).await?;
        let entries: Vec<KubeconfigEntry> = servers
            .iter()
            .map(ApiServerHandle::kubeconfig_entry)
            .collect();
        kubeconfig::write(&kubeconfig, &entries, &names[0].0)
            .map_err(|e| SimError::io(format!("failed to write {}", kubeconfig.display()), e))?;
        let cancel = CancellationToken::new();
        let ports: PortMap = PortMap::default();
        let executable = match &options.executable {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .map_err(|e| SimError::io("failed to find the current executable", e))?,
        };
        let base = json!({
            "pid": std::process::id(),
            "processStartTicks": super::command::process_start_ticks(std::process::id()).unwrap_or(0),
            "executable": executable.to_string_lossy(),
            "kubeconfig": kubeconfig.to_string_lossy(),
            "addressSlot": lease.slot,
            "istioVersion": options.scenario.istio_version,
            "clusters": servers.iter().map(entry_json).collect::<Vec<_>>(),
        });
        let state = Arc::new(StateFile {
            path: dir.join("state.json"),
            base,
            kubeconfig: (kubeconfig.clone(), entries.clone()),
            written_mappings: Mutex::default(),
            listeners: Mutex::default(),
            ports: ports.clone(),
            ready: Default::default(),
        });
        state.write();
        let mut environment = SimEnvironment {
            kubeconfig,
            az_command: vec![
                executable.to_string_lossy().into_owned(),
                "--state-dir".into(),
                state_dir.to_string_lossy().into_owned(),
                "sim".into(),
                "az".into(),
            ],
            state_dir,
            slot: lease.slot,
            servers: Vec::new(),
            cancel,
            tasks: Vec::new(),
            state,
            ports,
            _lease: lease,
        };
        // Source k's load balancers take pool 2k-1, target k's pool 2k.
        let clusters: Vec<(KubeconfigEntry, Vec<Value>, u8)> = entries
            .iter()
            .zip(1u8..)
            .map(|(entry, number)| {
                let objects = if number % 2 == 1 {
                    scenario::source_objects(&options.scenario)
                } else {
                    scenario::target_objects(&options.scenario)
                };
                (entry.clone(), objects, number)
            })
            .collect();
        environment.servers = servers;
        let forwarder = Arc::new(Forwarder::new(environment.ports.clone()));
        for (entry, objects, number) in clusters {
            let started = environment
                .start_cluster(&entry, &objects, number, &options, forwarder.clone())
                .await;
            if let Err(error) = started {
                let _ = environment.shutdown().await;
                return Err(error);
            }
        }
        // Each source's ingress gateway is part of the scenario: wait until it serves.
        for (source, _) in &names {
            let ready = environment
                .wait_for_listener(source, "istio-ingressgateway", Duration::from_secs(30))
                .await;
            if !ready {
                let _ = environment.shutdown().await;
                return Err(SimError::Daemon(format!(
                    "the ingress gateway of {source} did not come up within 30 s"
                )));
            }
        }
        environment
            .state
            .ready
            .store(true, std::sync::atomic::Ordering::SeqCst);
        environment.state.write();
        Ok(environment)
    }
}

impl SimEnvironment {
    async fn start_cluster(
        &mut self,
        entry: &KubeconfigEntry,
        objects: &[Value],
        number: u8,
        options: &EnvironmentOptions,
        forwarder: Arc<Forwarder>,
    ) -> Result<(), SimError> {
        let client = agents::client(entry).await?;
        let (node, node_status) = scenario::node(&entry.name);
        let mut node = node;
        node["status"] = node_status;
        let mut all = objects.to_vec();
        all.push(node);
        super::install::apply_all(&client, &all)
            .await
            .map_err(SimError::Config)?;
        let cache = informer::Cache::start(&client, informer::ALL_KINDS, &self.cancel);
        let cancel = self.cancel.clone();
        self.tasks.push(tokio::spawn(agents::workloads::run(
            client.clone(),
            cache.clone(),
            scenario::node_name(&entry.name),
            cancel.clone(),
        )));
        self.tasks.push(tokio::spawn(agents::kubelet::run(
            client.clone(),
            cache.clone(),
            agents::kubelet::KubeletSettings {
                ready_delay: options.pod_ready_delay,
                host_ip: scenario::node_ip(&entry.name).to_string(),
            },
            cancel.clone(),
        )));
        self.tasks.push(tokio::spawn(agents::load_balancer::run(
            client.clone(),
            cache.clone(),
            LoadBalancerPool::new(self.slot, number),
            cancel.clone(),
        )));
        let live_faults = self
            .servers
            .iter()
            .find(|handle| handle.name() == entry.name)
            .map(|handle| handle.faults().live())
            .unwrap_or_default();
        let (sender, receiver) = watch::channel(Arc::new(MeshSnapshot {
            cluster: entry.name.clone(),
            live_faults: live_faults.clone(),
            ..MeshSnapshot::default()
        }));
        let proxies = self
            .proxies(&entry.name)
            .ok_or_else(|| SimError::Config(format!("no API server for cluster {}", entry.name)))?;
        let delay = proxies::delay_from_env(&entry.name)
            .map_err(SimError::Config)?
            .unwrap_or(options.propagation_delay);
        proxies.set_delay(delay);
        // `meshshift sim fault --cluster NAME propagation-ms=N` changes it while serving.
        if let Some(handle) = self.servers.iter().find(|h| h.name() == entry.name) {
            let live_proxies = proxies.clone();
            handle.faults().register(
                "propagation-ms",
                Arc::new(move |value: &str| {
                    let millis: u64 = value.trim().parse().map_err(|_| {
                        format!("propagation-ms: expected whole milliseconds, got {value:?}")
                    })?;
                    live_proxies.set_delay(Duration::from_millis(millis));
                    Ok(())
                }),
            );
        }
        self.tasks.push(tokio::spawn(super::mesh::agent::run(
            cache,
            entry.name.clone(),
            proxies.clone(),
            live_faults,
            sender,
            cancel.clone(),
        )));
        let state = self.state.clone();
        let observer: gateway::ListenerObserver =
            Arc::new(move |cluster: &str, listeners: Vec<ListenerInfo>| {
                state
                    .listeners
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(cluster.to_string(), listeners);
                state.write();
            });
        let settings = GatewaySettings {
            cluster: entry.name.clone(),
            force_mapping: options.map_ports,
            ports: self.ports.clone(),
            observer,
            proxies,
        };
        self.tasks.push(tokio::spawn(gateway::run(
            settings, receiver, forwarder, cancel,
        )));
        Ok(())
    }

    /// The gateway pods' Envoys of `cluster` (`sim-source`, `sim-target`, `sim-source-1`, …).
    pub fn proxies(&self, cluster: &str) -> Option<Arc<Proxies>> {
        self.servers
            .iter()
            .find(|handle| handle.name() == cluster)
            .map(|handle| handle.proxies())
    }

    /// Sets how long routing changes take to reach `cluster`'s gateway pods from now on
    /// (`meshshift sim fault` and tests call it on a running simulator).
    pub fn set_propagation_delay(&self, cluster: &str, delay: Duration) -> Result<(), SimError> {
        self.proxies(cluster)
            .ok_or_else(|| SimError::Config(format!("no simulated cluster named {cluster}")))?
            .set_delay(delay);
        Ok(())
    }

    /// Sets one gateway pod's own propagation (`Never`: it keeps what it serves now), or with
    /// `None` makes it follow the cluster's delay again.
    pub fn set_pod_propagation(
        &self,
        cluster: &str,
        namespace: &str,
        pod: &str,
        propagation: Option<PodPropagation>,
    ) -> Result<(), SimError> {
        self.proxies(cluster)
            .ok_or_else(|| SimError::Config(format!("no simulated cluster named {cluster}")))?
            .set_pod_delay(namespace, pod, propagation);
        Ok(())
    }

    /// The served load balancer ports of both clusters.
    pub fn listeners(&self) -> Vec<ListenerInfo> {
        self.state
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    /// Port mappings in force (`ip:port` → `ip:bound-port`), as curl's `--connect-to` or
    /// `MESHSHIFT_CONNECT_TO` take them.
    pub fn connect_to(&self) -> Vec<(String, String)> {
        let ports = self.ports.read().unwrap_or_else(|e| e.into_inner());
        let mut pairs: Vec<(String, String)> = ports
            .iter()
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect();
        pairs.sort();
        pairs
    }

    /// Waits until a listener of Service `service` on `cluster` serves; returns whether it
    /// did within `timeout`.
    pub async fn wait_for_listener(&self, cluster: &str, service: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self
                .listeners()
                .iter()
                .any(|l| l.cluster == cluster && l.service.1 == service)
            {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops gateways, agents and both clusters (saving their objects when persisting), and
    /// removes the state file.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let stopped =
            futures::future::join_all(self.servers.drain(..).map(ApiServerHandle::shutdown)).await;
        let result = stopped
            .into_iter()
            .collect::<Result<Vec<()>, SimError>>()
            .map(|_| ());
        let recorded = std::fs::read_to_string(&self.state.path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v.get("pid").and_then(Value::as_u64));
        if recorded == Some(u64::from(std::process::id())) {
            let _ = std::fs::remove_file(&self.state.path);
        }
        result
    }
}

impl Drop for SimEnvironment {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Removes every simulated cluster's snapshot (`sim-*.json`) from `dir`, so the next start
/// is a fresh scenario.
pub fn remove_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let cluster = name.starts_with(SOURCE_NAME) || name.starts_with(TARGET_NAME);
        if cluster && name.ends_with(".json") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
