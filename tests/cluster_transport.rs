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
    let kubeconfig = env.dir.path().join("proxied.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: proxied\n\
             clusters: [{{name: proxied, cluster: {{server: \"http://{address}\"}}}}]\n\
             users: [{{name: anonymous, user: {{}}}}]\n\
             contexts: [{{name: proxied, context: {{cluster: proxied, user: anonymous}}}}]\n"
        ),
    )
    .unwrap();
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
