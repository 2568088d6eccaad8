//! `meshshift sim up | down | status | fault`: the simulated clusters as a command-line
//! service.
//!
//! `up` runs a complete [`Environment`] (`sim-source` and `sim-target` with their agents,
//! admission and gateways; options: Istio version, the source's MeshConfig, native sidecars,
//! mapped ports) in the foreground until Ctrl-C or SIGTERM, writing
//! `<state dir>/sim/kubeconfig` and `<state dir>/sim/state.json` (pid, addresses, gateway
//! listeners, port mappings). Load balancers get `127.0.1.x` (source) and `127.0.2.x`
//! (target) unless another simulator holds those.
//! `up --detach` starts the same thing as a background process of the current executable
//! (`<exe> sim up --state-dir <dir>`, output in `<state dir>/sim/sim.log`) and returns once
//! the environment is ready. `down` stops a detached simulator by its recorded pid,
//! after checking that the pid still belongs to the process that wrote the state. Objects
//! are saved to `<state dir>/sim/<cluster>.json` on shutdown and restored by the next `up`
//! unless `fresh` is set (so a cluster deleted with `sim az aks delete` stays deleted until
//! `up --fresh`).
//!
//! These functions build their own Tokio runtime: call them from synchronous code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::environment::{Environment, EnvironmentOptions, remove_snapshots};
use super::scenario::Scenario;
use super::server::SimError;

/// Options of `sim up`.
#[derive(Clone, Debug, Default)]
pub struct UpOptions {
    /// Run in the background and return once both clusters are ready.
    pub detach: bool,
    /// State directory (default: `MESHSHIFT_STATE_DIR`, else `.meshshift`).
    pub state_dir: Option<PathBuf>,
    /// Start empty instead of restoring the saved objects.
    pub fresh: bool,
    /// Istio version of both control planes (default [`crate::scenario::DEFAULT_ISTIO_VERSION`]).
    pub istio_version: Option<String>,
    /// A file holding the source's MeshConfig (default [`crate::scenario::DEFAULT_MESH_CONFIG`]).
    pub mesh_config: Option<PathBuf>,
    /// istiod injects native sidecars.
    pub native_sidecars: bool,
    /// Serve load balancer ports on free ports and publish the mapping, even as root.
    pub map_ports: bool,
    /// Numbered pairs `sim-source-1`/`sim-target-1` … instead of `sim-source`/`sim-target`.
    pub pairs: Option<u8>,
}

impl UpOptions {
    /// The environment these options describe.
    pub fn environment(&self) -> Result<EnvironmentOptions, SimError> {
        let mut scenario = Scenario {
            native_sidecars: self.native_sidecars,
            ..Scenario::default()
        };
        if let Some(version) = &self.istio_version {
            scenario.istio_version = version.trim_start_matches('v').to_string();
        }
        if let Some(path) = &self.mesh_config {
            scenario.mesh_config = std::fs::read_to_string(path)
                .map_err(|e| SimError::io(format!("failed to read {}", path.display()), e))?;
        }
        Ok(EnvironmentOptions {
            state_dir: self.state_dir.clone(),
            scenario,
            address_slot: Some(0),
            map_ports: self.map_ports,
            persist: true,
            pairs: self.pairs,
            ..EnvironmentOptions::default()
        })
    }

    /// The `sim up` arguments that reproduce these options in a detached child.
    fn child_arguments(&self) -> Vec<String> {
        let mut arguments = Vec::new();
        if let Some(version) = &self.istio_version {
            arguments.extend(["--istio-version".to_string(), version.clone()]);
        }
        if let Some(path) = &self.mesh_config {
            let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            arguments.extend([
                "--mesh-config".to_string(),
                absolute.to_string_lossy().into_owned(),
            ]);
        }
        if self.native_sidecars {
            arguments.push("--native-sidecars".into());
        }
        if self.map_ports {
            arguments.push("--map-ports".into());
        }
        if let Some(pairs) = self.pairs {
            arguments.extend(["--pairs".to_string(), pairs.to_string()]);
        }
        arguments
    }
}

/// Options of `sim down`.
#[derive(Clone, Debug, Default)]
pub struct DownOptions {
    /// State directory (default: `MESHSHIFT_STATE_DIR`, else `.meshshift`).
    pub state_dir: Option<PathBuf>,
}

/// Options of `sim status`.
#[derive(Clone, Debug, Default)]
pub struct StatusOptions {
    /// State directory (default: `MESHSHIFT_STATE_DIR`, else `.meshshift`).
    pub state_dir: Option<PathBuf>,
}

/// Options of `sim fault`.
#[derive(Clone, Debug, Default)]
pub struct FaultOptions {
    /// State directory (default: `MESHSHIFT_STATE_DIR`, else `.meshshift`).
    pub state_dir: Option<PathBuf>,
    /// The clusters to change (default: all).
    pub clusters: Vec<String>,
    /// A Service (`namespace/name`) whose data-plane faults the settings are.
    pub service: Option<String>,
    /// Remove all faults before applying the settings.
    pub clear: bool,
    /// `name=value` settings (see [`crate::fault::SETTINGS`]); none shows the faults.
    pub settings: Vec<String>,
}

/// Environment variable set in the detached child.
const DAEMON_ENV: &str = "MESHSHIFT_SIM_DAEMON";
/// How long `sim up --detach` waits for the child to serve. It is ready in about a second;
/// the bound is for busy machines (a full test run on 2 cores has taken over 20 s).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The simulator's directory inside the state directory, made absolute.
pub fn sim_dir(state_dir: Option<&Path>) -> Result<PathBuf, SimError> {
    let base = match state_dir {
        Some(dir) => dir.to_path_buf(),
        None => match std::env::var_os("MESHSHIFT_STATE_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(".meshshift"),
        },
    };
    let absolute = if base.is_absolute() {
        base
    } else {
        std::env::current_dir()
            .map_err(|e| SimError::io("failed to read the working directory", e))?
            .join(base)
    };
    Ok(absolute.join("sim"))
}

fn runtime() -> Result<tokio::runtime::Runtime, SimError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| SimError::io("failed to start the async runtime", e))
}

/// The recorded state of a running simulator.
#[derive(Clone, Debug)]
struct RunState {
    pid: u32,
    start_ticks: u64,
    executable: String,
    kubeconfig: String,
    clusters: Vec<(String, String, String)>,
}

impl RunState {
    #[cfg(test)]
    fn to_json(&self) -> Value {
        serde_json::json!({
            "pid": self.pid,
            "processStartTicks": self.start_ticks,
            "executable": self.executable,
            "kubeconfig": self.kubeconfig,
            "clusters": self.clusters.iter().map(|(name, server, ca)| {
                let address = server.strip_prefix("https://").unwrap_or(server);
                let port = address.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                serde_json::json!({"name": name, "server": server, "address": address, "port": port, "caPem": ca})
            }).collect::<Vec<_>>(),
        })
    }

    fn from_json(value: &Value) -> Option<RunState> {
        Some(RunState {
            pid: u32::try_from(value.get("pid")?.as_u64()?).ok()?,
            start_ticks: value.get("processStartTicks")?.as_u64()?,
            executable: value.get("executable")?.as_str()?.to_string(),
            kubeconfig: value.get("kubeconfig")?.as_str()?.to_string(),
            clusters: value
                .get("clusters")?
                .as_array()?
                .iter()
                .filter_map(|c| {
                    Some((
                        c.get("name")?.as_str()?.to_string(),
                        c.get("server")?.as_str()?.to_string(),
                        c.get("caPem")?.as_str()?.to_string(),
                    ))
                })
                .collect(),
        })
    }

    fn read(dir: &Path) -> Option<RunState> {
        let text = std::fs::read_to_string(dir.join("state.json")).ok()?;
        RunState::from_json(&serde_json::from_str(&text).ok()?)
    }

    /// Whether the recorded pid is still the process that wrote this state.
    fn is_alive(&self) -> bool {
        process_start_ticks(self.pid) == Some(self.start_ticks)
            && std::fs::read_link(format!("/proc/{}/exe", self.pid))
                .map(|exe| exe.to_string_lossy().trim_end_matches(" (deleted)") == self.executable)
                .unwrap_or(false)
    }
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub(crate) fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn current_executable() -> Result<PathBuf, SimError> {
    std::env::current_exe().map_err(|e| SimError::io("failed to find the current executable", e))
}

fn print_clusters(state: &RunState) {
    for (name, server, _) in &state.clusters {
        println!("{name:<11} {server}");
    }
    println!("kubeconfig  {}", state.kubeconfig);
}

/// `sim up`: starts the simulated clusters, in the foreground or detached.
pub fn up(options: &UpOptions) -> Result<(), SimError> {
    let dir = sim_dir(options.state_dir.as_deref())?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| SimError::io(format!("failed to create {}", dir.display()), e))?;
    if let Some(state) = RunState::read(&dir)
        && state.is_alive()
        && state.pid != std::process::id()
    {
        return Err(SimError::Daemon(format!(
            "a simulator is already running (pid {}) for {}; stop it with `meshshift sim down`",
            state.pid,
            dir.display()
        )));
    }
    if options.detach {
        detach(&dir, options)
    } else {
        runtime()?.block_on(foreground(&dir, options))
    }
}

async fn foreground(dir: &Path, options: &UpOptions) -> Result<(), SimError> {
    if options.fresh {
        remove_snapshots(dir);
    }
    let started = Instant::now();
    let environment = Environment::start(options.environment()?).await?;
    let elapsed = started.elapsed();
    let state = RunState::read(dir)
        .ok_or_else(|| SimError::Daemon("the simulator wrote no state".into()))?;
    print_clusters(&state);
    print_gateways(dir);
    println!(
        "started in {} ms; use `export KUBECONFIG={}`; Ctrl-C stops",
        elapsed.as_millis(),
        state.kubeconfig
    );
    let _ = std::io::stdout().flush();
    wait_for_stop_signal().await;
    println!("stopping");
    environment.shutdown().await
}

/// Prints the load balancer listeners and port mappings recorded in `state.json`.
fn print_gateways(dir: &Path) {
    let Some(state) = std::fs::read_to_string(dir.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    else {
        return;
    };
    for listener in state["listeners"].as_array().into_iter().flatten() {
        let text = |k: &str| listener[k].as_str().unwrap_or_default().to_string();
        let mapped = if listener["bound"] != listener["address"] {
            format!("  (served on {})", text("bound"))
        } else {
            String::new()
        };
        println!(
            "{:<11} {}/{}  http://{}{mapped}",
            text("cluster"),
            text("namespace"),
            text("service"),
            text("address")
        );
    }
    let mappings: Vec<(String, String)> = state["portMappings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some((
                m["from"].as_str()?.to_string(),
                m["to"].as_str()?.to_string(),
            ))
        })
        .collect();
    if !mappings.is_empty() {
        let curl: Vec<String> = mappings
            .iter()
            .map(|(from, to)| format!("--connect-to {from}:{to}"))
            .collect();
        println!("port mappings: curl {}", curl.join(" "));
        println!("               (meshshift reads them from the kubeconfig's cluster entries)");
    }
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn detach(dir: &Path, options: &UpOptions) -> Result<(), SimError> {
    let fresh = options.fresh;
    use std::os::unix::process::CommandExt;
    if std::env::var_os(DAEMON_ENV).is_some() {
        return Err(SimError::Daemon(
            "refusing to detach from a detached simulator".into(),
        ));
    }
    let executable = current_executable()?;
    let log_path = dir.join("sim.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| SimError::io(format!("failed to create {}", log_path.display()), e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| SimError::io(format!("failed to open {}", log_path.display()), e))?;
    let _ = std::fs::remove_file(dir.join("state.json"));
    let mut command = std::process::Command::new(&executable);
    command
        .args(["sim", "up", "--state-dir"])
        .arg(dir.parent().unwrap_or(dir))
        .args(options.child_arguments())
        .env(DAEMON_ENV, "1")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: Ctrl-C in this terminal must not stop it.
        .process_group(0);
    if fresh {
        // The child restores whatever snapshots exist, so remove them here rather than
        // relying on the command line to carry the option.
        remove_snapshots(dir);
    }
    let mut child = command
        .spawn()
        .map_err(|e| SimError::io(format!("failed to start {}", executable.display()), e))?;
    let pid = child.id();
    let deadline = Instant::now() + READY_TIMEOUT;
    let runtime = runtime()?;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(SimError::Daemon(format!(
                "the detached simulator exited ({status}) before it was ready:\n{}",
                log.trim_end()
            )));
        }
        if let Some(state) = RunState::read(dir).filter(|s| s.pid == pid && is_ready(dir)) {
            let ready = runtime.block_on(all_ready(&state));
            if ready {
                print_clusters(&state);
                print_gateways(dir);
                println!(
                    "running in the background (pid {pid}); stop it with `meshshift sim down`"
                );
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SimError::Daemon(format!(
                "the detached simulator was not ready within {} s; see {}",
                READY_TIMEOUT.as_secs(),
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the environment recorded in `state.json` has finished starting.
fn is_ready(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|v| v["ready"] == true)
}

async fn all_ready(state: &RunState) -> bool {
    for (_, server, ca) in &state.clusters {
        if !probe_ready(server, ca).await {
            return false;
        }
    }
    !state.clusters.is_empty()
}

/// Whether `GET <server>/readyz` answers 200, trusting only `ca_pem`.
pub async fn probe_ready(server: &str, ca_pem: &str) -> bool {
    let Some(address) = server.strip_prefix("https://") else {
        return false;
    };
    let Ok(config) = super::tls::client_config(ca_pem) else {
        return false;
    };
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").ok()?;
        let mut tls = connector.connect(name, stream).await.ok()?;
        tls.write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        Some(answer.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// `sim down`: stops the detached simulator recorded in the state directory.
pub fn down(options: &DownOptions) -> Result<(), SimError> {
    let dir = sim_dir(options.state_dir.as_deref())?;
    let Some(state) = RunState::read(&dir) else {
        println!("no simulator is running for {}", dir.display());
        return Ok(());
    };
    if !state.is_alive() {
        let _ = std::fs::remove_file(dir.join("state.json"));
        println!(
            "no simulator is running for {} (removed the stale record of pid {})",
            dir.display(),
            state.pid
        );
        return Ok(());
    }
    let pid = libc::pid_t::try_from(state.pid)
        .map_err(|_| SimError::Daemon(format!("invalid pid {}", state.pid)))?;
    // SAFETY: kill(2) with a pid verified above to be the simulator we started.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(SimError::io(
            format!("failed to stop pid {pid}"),
            std::io::Error::last_os_error(),
        ));
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while state.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if state.is_alive() {
        // SAFETY: as above; the process ignored SIGTERM for too long.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = std::fs::remove_file(dir.join("state.json"));
    println!("stopped the simulator (pid {pid})");
    Ok(())
}

/// `sim fault`: shows or changes the faults of a running simulator (detached, or the one a
/// `run --sim` started), through each cluster's control endpoint
/// ([`crate::fault::CONTROL_PATH`]). Returns once every cluster applied the change.
pub fn fault(options: &FaultOptions) -> Result<(), SimError> {
    let dir = sim_dir(options.state_dir.as_deref())?;
    // Looked at a few times over a second: a busy simulator may be between writes of its
    // state when a test or a script asks, and giving up at once would skip the fault.
    let running = || RunState::read(&dir).filter(RunState::is_alive);
    let found = (0..20).find_map(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        running()
    });
    let state = match found {
        Some(state) => state,
        None => {
            return Err(SimError::Daemon(format!(
                "no simulator is running for {}; start one with `meshshift sim up --detach`",
                dir.display()
            )));
        }
    };
    for name in &options.clusters {
        if !state.clusters.iter().any(|(n, _, _)| n == name) {
            let known: Vec<&str> = state.clusters.iter().map(|(n, _, _)| n.as_str()).collect();
            return Err(SimError::Daemon(format!(
                "no cluster {name:?} in this simulator (it has {})",
                known.join(", ")
            )));
        }
    }
    let kubeconfig = std::fs::read_to_string(&state.kubeconfig)
        .map_err(|e| SimError::io(format!("failed to read {}", state.kubeconfig), e))?;
    let change = (options.clear || !options.settings.is_empty()).then(|| {
        serde_json::json!({"clear": options.clear, "service": options.service,
                           "settings": options.settings})
    });
    let runtime = runtime()?;
    for (name, server, ca) in &state.clusters {
        if !options.clusters.is_empty() && !options.clusters.contains(name) {
            continue;
        }
        let token = kubeconfig_token(&kubeconfig, name)
            .ok_or_else(|| SimError::Daemon(format!("the kubeconfig has no token for {name}")))?;
        let (code, body) =
            runtime.block_on(control_request(server, ca, &token, change.as_ref()))?;
        let answer: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
        if code != 200 {
            let message = answer["message"].as_str().unwrap_or("no message");
            return Err(SimError::Daemon(format!("{name}: {message}")));
        }
        println!("{name:<11} {answer}");
    }
    Ok(())
}

/// The bearer token of context `name` in a kubeconfig the simulator wrote.
fn kubeconfig_token(kubeconfig: &str, name: &str) -> Option<String> {
    let document: Value = serde_yaml::from_str(kubeconfig).ok()?;
    let find = |list: &str, name: &Value| {
        document[list]
            .as_array()?
            .iter()
            .find(|entry| entry["name"] == *name)
            .cloned()
    };
    let context = find("contexts", &Value::from(name))?;
    find("users", &context["context"]["user"])?["user"]["token"]
        .as_str()
        .map(str::to_string)
}

/// One request to the fault control endpoint: `GET`, or `PUT` with `change`.
async fn control_request(
    server: &str,
    ca_pem: &str,
    token: &str,
    change: Option<&Value>,
) -> Result<(u16, String), SimError> {
    let failed = |e: &dyn std::fmt::Display| SimError::Daemon(format!("{server}: {e}"));
    let address = server
        .strip_prefix("https://")
        .ok_or_else(|| failed(&"not an https address"))?;
    let config = super::tls::client_config(ca_pem).map_err(|e| failed(&e))?;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| failed(&e))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").map_err(|e| failed(&e))?;
        let mut tls = connector
            .connect(name, stream)
            .await
            .map_err(|e| failed(&e))?;
        let body = change.map(Value::to_string).unwrap_or_default();
        let method = if change.is_some() { "PUT" } else { "GET" };
        let request = format!(
            "{method} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            super::fault::CONTROL_PATH,
            body.len()
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| failed(&e))?;
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let code = text
            .get(9..12)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| failed(&"no HTTP answer"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| failed(&"no answer within 10 s"))?
}

/// `sim status`: what runs where, including gateway addresses and port mappings (as curl
/// `--connect-to` arguments; meshshift reads them from the kubeconfig).
pub fn status(options: &StatusOptions) -> Result<(), SimError> {
    let dir = sim_dir(options.state_dir.as_deref())?;
    // Looked at a few times over a second: a busy simulator may be between writes of its
    // state when a test or a script asks, and giving up at once would skip the fault.
    let running = || RunState::read(&dir).filter(RunState::is_alive);
    let found = (0..20).find_map(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        running()
    });
    let state = match found {
        Some(state) => state,
        None => {
            println!("not running (state directory {})", dir.display());
            return Ok(());
        }
    };
    let runtime = runtime()?;
    println!("running (pid {})", state.pid);
    for (name, server, ca) in &state.clusters {
        let ready = runtime.block_on(probe_ready(server, ca));
        println!(
            "{name:<11} {server}  {}",
            if ready { "ready" } else { "not ready" }
        );
    }
    println!("kubeconfig  {}", state.kubeconfig);
    print_gateways(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_checks_the_process() {
        let state = RunState {
            pid: std::process::id(),
            start_ticks: process_start_ticks(std::process::id()).expect("own stat"),
            executable: std::env::current_exe()
                .expect("exe")
                .to_string_lossy()
                .into_owned(),
            kubeconfig: "/x/kubeconfig".into(),
            clusters: vec![(
                "sim-source".into(),
                "https://127.0.0.1:1".into(),
                "PEM".into(),
            )],
        };
        let recorded = state.to_json();
        assert_eq!(recorded["clusters"][0]["port"], 1);
        assert_eq!(recorded["clusters"][0]["address"], "127.0.0.1:1");
        let parsed = RunState::from_json(&recorded).expect("parses");
        assert_eq!(parsed.clusters, state.clusters);
        assert!(parsed.is_alive());
        let reused = RunState {
            start_ticks: parsed.start_ticks + 1,
            ..parsed
        };
        assert!(
            !reused.is_alive(),
            "a different start time means the pid was reused"
        );
    }

    #[test]
    fn state_dir_defaults_to_dot_meshshift() {
        let dir = sim_dir(Some(Path::new("/tmp/state"))).expect("absolute");
        assert_eq!(dir, PathBuf::from("/tmp/state/sim"));
    }
}
