//! How the cluster layer talks to an API server: HTTP/2 when the server offers it (one TLS
//! connection carries discovery and a whole batch), HTTP/1.1 otherwise, here through
//! `kubectl proxy`, which serves plain HTTP/1.1.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::sim_env_support::{TestEnv, text};
use crate::test::meshshift_binary;

/// Applies 40 ConfigMaps (32 requests in flight at a time), says so, then idles so that the
/// test can look at the process's connections.
const APPLY_THEN_IDLE: &str = r#"
let c = cluster(param("CONTEXT"));
let objects = [];
for i in 0..40 {
    objects.push(#{apiVersion: "v1", kind: "ConfigMap",
                   metadata: #{name: `transport-${i}`, namespace: "default"}, data: #{index: `${i}`}});
}
let changes = c.apply(objects, #{quiet: true});
print(`applied ${changes.len()}`);
sleep(param("IDLE", "0s"));
"#;

/// Kills the child on drop, so a failed assertion leaves no process behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Established TCP connections held by process `pid` (from /proc).
fn established_connections(pid: u32) -> usize {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's descriptors")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .map(|line| {
                    line.split_whitespace()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        // Column 3 is the state (01: established), column 9 the socket's inode.
        .filter(|columns| columns.len() > 9 && columns[3] == "01" && inodes.contains(&columns[9]))
        .count()
}

#[test]
fn discovery_and_a_batch_share_one_http2_connection() {
    let env = TestEnv::start();
    let script = env.dir.path().join("apply.rhai");
    std::fs::write(&script, APPLY_THEN_IDLE).unwrap();
    let child = Command::new(meshshift_binary())
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args(["run", &script.to_string_lossy()])
        .args(["--set", "CONTEXT=sim-source", "--set", "IDLE=20s"])
        .env("NO_COLOR", "1")
        .env("MESHSHIFT_STATE_DIR", env.dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("meshshift runs");
    let mut child = Reaped(child);
    let mut first_line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    assert_eq!(first_line.trim(), "applied 40");
    // HTTP/1.1 would need a connection per request in flight (discovery alone fetches every
    // group version at once).
    assert_eq!(established_connections(child.0.id()), 1);
    assert_eq!(
        env.kubectl_ok(
            "sim-source",
            &[
                "get",
                "configmap",
                "transport-39",
                "-o",
                "jsonpath={.data.index}"
            ]
        ),
        "39"
    );
}

#[test]
fn a_plain_http_1_1_server_works_too() {
    let env = TestEnv::start();
    let proxy = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args(["--context", "sim-source", "proxy", "--port=0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl proxy starts");
    let mut proxy = Reaped(proxy);
    let mut banner = String::new();
    BufReader::new(proxy.0.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let address = banner
        .trim()
        .strip_prefix("Starting to serve on ")
        .unwrap_or_else(|| panic!("unexpected kubectl proxy banner: {banner}"))
        .to_string();
    let kubeconfig = plain_kubeconfig(env.dir.path(), "proxied", &address);
    let script = env.dir.path().join("apply.rhai");
    std::fs::write(&script, APPLY_THEN_IDLE).unwrap();
    let output = Command::new(meshshift_binary())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["run", &script.to_string_lossy(), "--set", "CONTEXT=proxied"])
        .env("NO_COLOR", "1")
        .env("MESHSHIFT_STATE_DIR", env.dir.path().join("state"))
        .output()
        .expect("meshshift runs");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "applied 40");
    assert_eq!(
        env.kubectl_ok(
            "sim-source",
            &[
                "get",
                "configmap",
                "transport-0",
                "-o",
                "jsonpath={.data.index}"
            ]
        ),
        "0"
    );
}

/// A kubeconfig whose one context, `name`, points at `http://{address}` without credentials.
fn plain_kubeconfig(dir: &std::path::Path, name: &str, address: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {name}\n\
             clusters: [{{name: {name}, cluster: {{server: \"http://{address}\"}}}}]\n\
             users: [{{name: anonymous, user: {{}}}}]\n\
             contexts: [{{name: {name}, context: {{cluster: {name}, user: anonymous}}}}]\n"
        ),
    )
    .unwrap();
    path
}

/// Accepts connections and never says a word; returns its address and a count of connections.
fn silent_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in listener.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(connection);
        }
    });
    (address, accepted)
}

/// `meshshift run` of a script that binds the `silent` context.
fn run_against_silent(kubeconfig: &std::path::Path, timeout: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("connect.rhai");
    std::fs::write(
        &script,
        "let c = cluster(\"silent\");\nprint(\"connected\");\n",
    )
    .unwrap();
    Command::new(meshshift_binary())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["run", &script.to_string_lossy()])
        .env("NO_COLOR", "1")
        .env("MESHSHIFT_STATE_DIR", dir.path().join("state"))
        .env("MESHSHIFT_REQUEST_TIMEOUT", timeout)
        .output()
        .expect("meshshift runs")
}

#[test]
fn a_server_that_never_answers_fails_after_the_request_timeout_without_retries() {
    let dir = tempfile::tempdir().unwrap();
    let (address, accepted) = silent_server();
    let kubeconfig = plain_kubeconfig(dir.path(), "silent", &address);
    let output = run_against_silent(&kubeconfig, "1s");
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains("connected"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "cannot reach http://{address}: no answer within 1.00s (MESHSHIFT_REQUEST_TIMEOUT)"
        )),
        "{stderr}"
    );
    // Retrying a request that got no answer would only wait again.
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_bad_request_timeout_is_named_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (address, accepted) = silent_server();
    let kubeconfig = plain_kubeconfig(dir.path(), "silent", &address);
    let output = run_against_silent(&kubeconfig, "soon");
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("MESHSHIFT_REQUEST_TIMEOUT: invalid duration `soon`"),
        "{stderr}"
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}
