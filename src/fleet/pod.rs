//! What the pod of Job index `i` runs: pair `i` of its wave. It reads the plan and the
//! pair's kubeconfigs from the files its volumes mount, and with `--state-in-cluster`:
//! - holds a Lease `<fleet>-<pair>` in the management namespace while it runs (a second
//!   process for the same pair waits, naming the holder, until it is released or expires);
//! - restores the pair's last run from the ConfigMap `<fleet>-<pair>-run` and resumes it (a
//!   replaced pod continues where the killed one stopped, with every check `resume` makes);
//! - copies the run directory (journal, then report) into that ConfigMap after every journal
//!   write, from a thread of its own so that the run never waits on the management cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::management::{self, Access};
use super::render::{FLEET_LABEL, WAVE_LABEL};
use crate::error::{Error, Result};

/// The label naming a pair on its run ConfigMap.
pub const PAIR_LABEL: &str = "meshshift.io/pair";
/// A holder that stops renewing loses the pair's Lease after this long.
pub const LEASE_SECONDS: i32 = 15;
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// Files of a run directory larger than this stay out of the ConfigMap (its limit is 1 MiB).
const MAX_MIRRORED_FILE: u64 = 256 * 1024;

fn other(message: String) -> Error {
    Error::Other { message }
}

/// What the pod was told on its command line.
#[derive(Debug, Clone)]
pub struct PodOptions {
    pub plan: PathBuf,
    pub wave: String,
    pub kubeconfigs: PathBuf,
    pub state_in_cluster: bool,
    pub state_dir: PathBuf,
}

/// The pair's run, ready for `run` or `resume`.
pub struct PreparedRun {
    pub pair: String,
    pub runbook: PathBuf,
    /// `NAME=VALUE` for `--set`.
    pub set: Vec<String>,
    /// The pair's two kubeconfigs merged, in the state directory (owner-only).
    pub kubeconfig: PathBuf,
    /// The run to resume, restored from the management cluster.
    pub resume: Option<String>,
    /// The restored run had already succeeded: nothing to do.
    pub finished: bool,
    state: Option<ClusterState>,
}

/// The management cluster's side of a pair's run.
struct ClusterState {
    runtime: tokio::runtime::Runtime,
    api: Api<ConfigMap>,
    leases: Api<Lease>,
    lease_name: String,
    holder: String,
    renewer: tokio::task::JoinHandle<()>,
    mirror: Option<(mpsc::Sender<Mirror>, std::thread::JoinHandle<()>)>,
}

enum Mirror {
    Dir(PathBuf),
    Flush(mpsc::Sender<()>),
}

/// The index Kubernetes gives the pod of an Indexed Job.
fn completion_index() -> Result<usize> {
    let text = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
        other("JOB_COMPLETION_INDEX is not set: `fleet pod` runs as a pod of an Indexed Job".into())
    })?;
    text.trim().parse().map_err(|_| {
        other(format!(
            "JOB_COMPLETION_INDEX `{text}` is not a non-negative number"
        ))
    })
}

/// Reads the plan, picks the pair of this index, merges its kubeconfigs and, with
/// `--state-in-cluster`, takes its Lease and restores its last run.
pub fn prepare(options: &PodOptions) -> Result<PreparedRun> {
    let index = completion_index()?;
    let text = std::fs::read_to_string(&options.plan).map_err(|e| Error::ReadFile {
        path: options.plan.display().to_string(),
        reason: e.to_string(),
    })?;
    let plan: Value = serde_json::from_str(&text).map_err(|e| Error::ReadFile {
        path: options.plan.display().to_string(),
        reason: format!("not a fleet plan: {e}"),
    })?;
    let waves = plan["waves"].as_array().cloned().unwrap_or_default();
    let Some(wave) = waves.iter().find(|w| w["name"] == options.wave.as_str()) else {
        return Err(other(format!("the plan has no wave `{}`", options.wave)));
    };
    let pairs = wave["pairs"].as_array().cloned().unwrap_or_default();
    let Some(pair) = pairs.get(index) else {
        return Err(other(format!(
            "wave `{}` has {} pairs; index {index} is none of them",
            options.wave,
            pairs.len()
        )));
    };
    let pair_name = pair["name"].as_str().unwrap_or_default().to_string();
    let fleet = plan["fleet"].as_str().unwrap_or_default().to_string();
    let namespace = plan["namespace"].as_str().unwrap_or_default().to_string();
    let runbook =
        super::file::parent(&options.plan).join(plan["runbook"].as_str().unwrap_or_default());
    let runbook = std::path::absolute(&runbook).unwrap_or(runbook);
    let set = pair["parameters"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let kubeconfig = merge_kubeconfigs(options, index, &pair_name)?;
    println!(
        "fleet `{fleet}`, wave `{}`, index {index}: pair `{pair_name}`",
        options.wave
    );
    let mut prepared = PreparedRun {
        pair: pair_name.clone(),
        runbook,
        set,
        kubeconfig,
        resume: None,
        finished: false,
        state: None,
    };
    if options.state_in_cluster {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| other(format!("cannot start the async runtime: {e}")))?;
        let client = runtime.block_on(management::client(&Access::InCluster))?;
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
        let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
        let lease_name = format!("{fleet}-{pair_name}");
        let holder = format!(
            "{} pid {}",
            crate::cluster::lease::Holder::current("").host,
            std::process::id()
        );
        runtime.block_on(take_lease(&leases, &lease_name, &holder))?;
        let renewer = runtime.spawn(renew_lease(
            leases.clone(),
            lease_name.clone(),
            holder.clone(),
        ));
        let config_map = format!("{fleet}-{pair_name}-run");
        let restored = runtime.block_on(restore(&api, &config_map, &options.state_dir))?;
        match restored {
            Some((run_id, outcome)) if outcome == "succeeded" => {
                println!("pair `{pair_name}`: run {run_id} already succeeded; nothing to do");
                prepared.finished = true;
            }
            Some((run_id, outcome)) => {
                println!(
                    "pair `{pair_name}`: resuming run {run_id} ({outcome}) from ConfigMap {namespace}/{config_map}"
                );
                prepared.resume = Some(run_id);
            }
            None => {}
        }
        let labels = json!({FLEET_LABEL: fleet, WAVE_LABEL: options.wave, PAIR_LABEL: pair_name});
        let sender = start_mirror(&runtime, api.clone(), config_map, labels, index);
        prepared.state = Some(ClusterState {
            runtime,
            api,
            leases,
            lease_name,
            holder,
            renewer,
            mirror: Some(sender),
        });
    }
    Ok(prepared)
}

impl PreparedRun {
    /// After the run: the run directory's last files copied, the Lease released.
    pub fn finish(self) {
        let Some(mut state) = self.state else {
            return;
        };
        if let Some((sender, thread)) = state.mirror.take() {
            let (ack, done) = mpsc::channel();
            if sender.send(Mirror::Flush(ack)).is_ok() {
                let _ = done.recv_timeout(Duration::from_secs(30));
            }
            // The hook holds the other sender: the thread ends once both are gone.
            crate::journal::observe_saves(None);
            drop(sender);
            let _ = thread.join();
        }
        state.renewer.abort();
        let _ = &state.api;
        let released = state.runtime.block_on(release_lease(
            &state.leases,
            &state.lease_name,
            &state.holder,
        ));
        if let Err(error) = released {
            eprintln!("warning: {error}");
        }
    }
}

/// Kubeconfigs of pair `index` (`<dir>/<index>/source`, `/target`) merged into one file.
fn merge_kubeconfigs(options: &PodOptions, index: usize, pair: &str) -> Result<PathBuf> {
    let read = |side: &str| {
        let path = options.kubeconfigs.join(index.to_string()).join(side);
        kube::config::Kubeconfig::read_from(&path).map_err(|e| {
            other(format!(
                "pair `{pair}`: cannot read its {side} kubeconfig {}: {e}",
                path.display()
            ))
        })
    };
    let mut merged = read("source")?;
    let target = read("target")?;
    // One Secret may hold both clusters: entries already present are not repeated.
    for cluster in target.clusters {
        if !merged.clusters.iter().any(|c| c.name == cluster.name) {
            merged.clusters.push(cluster);
        }
    }
    for user in target.auth_infos {
        if !merged.auth_infos.iter().any(|u| u.name == user.name) {
            merged.auth_infos.push(user);
        }
    }
    for context in target.contexts {
        if !merged.contexts.iter().any(|c| c.name == context.name) {
            merged.contexts.push(context);
        }
    }
    let dir = options.state_dir.join("fleet").join(pair);
    crate::journal::create_private_dir(&dir).map_err(|e| Error::WriteFile {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let path = dir.join("kubeconfig");
    let text = serde_yaml::to_string(&merged).unwrap_or_default();
    crate::files::write_atomic(&path, text.as_bytes(), true).map_err(|e| Error::WriteFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(std::path::absolute(&path).unwrap_or(path))
}

fn lease_held(lease: &Lease) -> Option<(String, String)> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.clone()?;
    let renewed = spec
        .renew_time
        .as_ref()?
        .0
        .to_string()
        .parse::<jiff::Timestamp>()
        .ok()?;
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    let age = jiff::Timestamp::now().duration_since(renewed).as_secs();
    (age < seconds).then(|| (holder, renewed.to_string()))
}

fn lease_body(name: &str, holder: &str, resource_version: Option<String>) -> Lease {
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    );
    serde_json::from_value(json!({
        "metadata": {"name": name, "resourceVersion": resource_version},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": LEASE_SECONDS,
                 "acquireTime": now, "renewTime": now},
    }))
    .unwrap_or_default()
}

/// Takes the pair's Lease; while another live process holds it, waits, saying who.
async fn take_lease(leases: &Api<Lease>, name: &str, holder: &str) -> Result<()> {
    let mut said = false;
    loop {
        let current = leases
            .get_opt(name)
            .await
            .map_err(|e| other(format!("cannot read Lease {name}: {e}")))?;
        let attempt = match &current {
            None => leases
                .create(&PostParams::default(), &lease_body(name, holder, None))
                .await
                .map(drop),
            Some(lease) => match lease_held(lease) {
                Some((other_holder, renewed)) if other_holder != holder => {
                    if !said {
                        println!(
                            "pair Lease {name} is held by `{other_holder}` (renewed {renewed}); waiting until it is released or expires ({LEASE_SECONDS} s without renewal)"
                        );
                        said = true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                _ => leases
                    .replace(
                        name,
                        &PostParams::default(),
                        &lease_body(name, holder, lease.metadata.resource_version.clone()),
                    )
                    .await
                    .map(drop),
            },
        };
        match attempt {
            Ok(()) => {
                println!("holding Lease {name} as `{holder}`");
                return Ok(());
            }
            // Another process took it between our read and write: look again.
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(error) => return Err(other(format!("cannot take Lease {name}: {error}"))),
        }
    }
}

async fn renew_lease(leases: Api<Lease>, name: String, holder: String) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            k8s_openapi::jiff::Timestamp::now(),
        );
        let patch = json!({"spec": {"renewTime": now, "holderIdentity": holder}});
        if let Err(error) = leases
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            eprintln!("warning: cannot renew Lease {name}: {error}");
        }
    }
}

async fn release_lease(leases: &Api<Lease>, name: &str, holder: &str) -> Result<()> {
    let current = leases
        .get_opt(name)
        .await
        .map_err(|e| other(format!("cannot read Lease {name}: {e}")))?;
    let ours = current
        .as_ref()
        .and_then(|l| l.spec.as_ref()?.holder_identity.clone())
        .is_some_and(|h| h == holder);
    if ours {
        leases
            .delete(name, &Default::default())
            .await
            .map_err(|e| other(format!("cannot release Lease {name}: {e}")))?;
    }
    Ok(())
}

/// Writes the run directory kept in `config_map` back under `<state dir>/runs/<run id>`;
/// returns its run id and outcome.
async fn restore(
    api: &Api<ConfigMap>,
    config_map: &str,
    state_dir: &Path,
) -> Result<Option<(String, String)>> {
    let Some(found) = api
        .get_opt(config_map)
        .await
        .map_err(|e| other(format!("cannot read ConfigMap {config_map}: {e}")))?
    else {
        return Ok(None);
    };
    let data = found.data.unwrap_or_default();
    let (Some(run_id), Some(journal)) = (data.get("run-id"), data.get("journal.json")) else {
        return Ok(None);
    };
    let parsed: crate::journal::Journal = serde_json::from_str(journal).map_err(|e| {
        other(format!(
            "ConfigMap {config_map}: journal.json is not a meshshift journal: {e}"
        ))
    })?;
    let safe = |name: &str| !name.is_empty() && !name.contains('/') && name != "." && name != "..";
    if !safe(run_id) {
        return Err(other(format!(
            "ConfigMap {config_map}: run-id `{run_id}` is not a run id"
        )));
    }
    let dir = crate::journal::runs_dir(state_dir).join(run_id);
    crate::journal::create_private_dir(&dir).map_err(|e| Error::WriteFile {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    for (name, text) in data
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "run-id" | "index") && safe(k))
    {
        let path = dir.join(name);
        crate::files::write_atomic(&path, text.as_bytes(), true).map_err(|e| Error::WriteFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(Some((run_id.clone(), parsed.outcome)))
}

/// Starts the thread that copies run directories into the ConfigMap, and registers the
/// journal hook that feeds it.
fn start_mirror(
    runtime: &tokio::runtime::Runtime,
    api: Api<ConfigMap>,
    config_map: String,
    labels: Value,
    index: usize,
) -> (mpsc::Sender<Mirror>, std::thread::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel::<Mirror>();
    let handle = runtime.handle().clone();
    let thread = std::thread::spawn(move || {
        let mut last: Option<PathBuf> = None;
        while let Ok(message) = receiver.recv() {
            let mut flush = None;
            let mut dir = None;
            // Only the newest state matters: skip writes queued behind it.
            for message in std::iter::once(message).chain(receiver.try_iter()) {
                match message {
                    Mirror::Dir(path) => dir = Some(path),
                    Mirror::Flush(ack) => flush = Some(ack),
                }
            }
            if let Some(path) = dir {
                last = Some(path);
            }
            if let Some(path) = &last {
                let written =
                    handle.block_on(write_mirror(&api, &config_map, &labels, index, path));
                if let Err(error) = written {
                    eprintln!("warning: {error}");
                }
            }
            if let Some(ack) = flush {
                let _ = ack.send(());
            }
        }
    });
    let hook = sender.clone();
    crate::journal::observe_saves(Some(Box::new(move |dir: &Path| {
        let _ = hook.send(Mirror::Dir(dir.to_path_buf()));
    })));
    (sender, thread)
}

async fn write_mirror(
    api: &Api<ConfigMap>,
    config_map: &str,
    labels: &Value,
    index: usize,
    dir: &Path,
) -> Result<()> {
    let mut data = BTreeMap::new();
    let run_id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    data.insert("run-id".to_string(), run_id);
    data.insert("index".to_string(), index.to_string());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let small = entry
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() <= MAX_MIRRORED_FILE);
        if small && let Ok(text) = std::fs::read_to_string(entry.path()) {
            data.insert(name, text);
        }
    }
    let object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": config_map, "labels": labels},
        "data": data,
    });
    api.patch(
        config_map,
        &PatchParams::apply(super::FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .map_err(|e| other(format!("cannot write ConfigMap {config_map}: {e}")))?;
    Ok(())
}
