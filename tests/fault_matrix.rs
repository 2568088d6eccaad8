//! The fault matrix: the main job (the migration runbook, run by the meshshift binary)
//! against simulated clusters whose API servers and data plane fail as real ones do. Faults
//! are set with `meshshift sim fault` on the running simulator, some of them half-way
//! through the run. Each run must end succeeded, or rolled back to the last good weight
//! saying why, and leave both clusters as the fault-free run leaves them.
//!
//! One seed per row by default; `MESHSHIFT_FAULT_SEEDS="1 2 3 4 5"` runs more
//! (`scripts/fault-matrix.sh` runs the recorded matrix).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::Value;

use crate::sim_env_support::{TestEnv, guide_source_setup, repo_path, vs_weights};
use crate::test::meshshift_binary;

/// What to do to the simulator, and when.
struct Fault {
    /// Text of the run's output line after whose n-th (1-based) appearance the faults are
    /// set; `None`: before the run.
    after_line: Option<(&'static str, usize)>,
    /// Cluster (`None`: both) and settings.
    cluster: Option<&'static str>,
    settings: &'static [&'static str],
}

/// How the run must end.
#[derive(PartialEq)]
enum Expected {
    Succeeded,
    /// Rolled back to these source weights, with this reason in the output.
    RolledBack(&'static str, &'static str),
}

struct Outcome {
    /// The injected-fault counts of both clusters.
    injected: String,
    code: Option<i32>,
    output: String,
    state: Value,
    weights: String,
    seconds: f64,
}

fn seeds() -> Vec<u64> {
    std::env::var("MESHSHIFT_FAULT_SEEDS")
        .unwrap_or_else(|_| "1".into())
        .split_whitespace()
        .map(|s| s.parse().expect("MESHSHIFT_FAULT_SEEDS holds numbers"))
        .collect()
}

fn sim_fault(env: &TestEnv, cluster: Option<&str>, settings: &[String]) {
    let mut command = Command::new(meshshift_binary());
    command
        .arg("--state-dir")
        .arg(env.dir.path())
        .args(["sim", "fault"]);
    if let Some(cluster) = cluster {
        command.args(["--cluster", cluster]);
    }
    let output = command.args(settings).output().expect("meshshift runs");
    assert!(
        output.status.success(),
        "sim fault failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The objects of the app's namespace on `context`, without what the server generates
/// (uids, versions, timestamps, cluster IPs, status), sorted: what a copy must reproduce.
fn normalised_export(env: &TestEnv, context: &str) -> Value {
    let text = env.kubectl_ok(
        context,
        &[
            "get",
            "deployments,services,virtualservices,destinationrules,gateways,serviceentries,configmaps,serviceaccounts",
            "-n",
            "bookinfo",
            "-o",
            "json",
        ],
    );
    let list: Value = serde_json::from_str(&text).expect("kubectl answers JSON");
    let mut items: Vec<Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["metadata"]["name"] != "kube-root-ca.crt")
        .map(|item| {
            let mut spec = item["spec"].clone();
            if let Some(spec) = spec.as_object_mut() {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            serde_json::json!({
                "kind": item["kind"],
                "name": item["metadata"]["name"],
                "labels": item["metadata"]["labels"],
                "spec": spec,
                "data": item["data"],
            })
        })
        .collect();
    items.sort_by_key(|item| format!("{}/{}", item["kind"], item["name"]));
    Value::Array(items)
}

/// Sets up the source as the guide does, applies `faults` and runs the migration.
fn run(seed: u64, faults: &[Fault]) -> Outcome {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    let enabled = env
        .az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    assert_eq!(enabled.code, 0, "{}", enabled.stderr);
    let with_seed = |settings: &[&str]| {
        let mut all: Vec<String> = settings.iter().map(|s| s.to_string()).collect();
        all.push(format!("seed={seed}"));
        all
    };
    for fault in faults.iter().filter(|f| f.after_line.is_none()) {
        sim_fault(&env, fault.cluster, &with_seed(fault.settings));
    }
    let runbook = repo_path("runbooks/migrate-oss-istio-to-aks.rhai");
    let started = Instant::now();
    let mut child = Command::new(meshshift_binary())
        .arg("--state-dir")
        .arg(env.dir.path().join("state"))
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args(["run", runbook.as_str(), "--yes"])
        .args(["--set", "SOURCE_CLUSTER=sim-source"])
        .args([
            "--set",
            "TARGET_CLUSTER=sim-target",
            "--set",
            "SIMULATED=true",
        ])
        .args(["--set", "STEPS=25,50,100", "--set", "SAMPLE=400"])
        .args(["--set", "PROPAGATION=1s"])
        .env("NO_COLOR", "1")
        .env_remove("MESHSHIFT_CONNECT_TO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("meshshift runs");
    let stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut output = String::new();
    let mut pending: Vec<(&Fault, usize)> = faults
        .iter()
        .filter(|f| f.after_line.is_some())
        .map(|f| (f, 0))
        .collect();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("utf-8 output");
        output.push_str(&line);
        output.push('\n');
        let trimmed = line.trim_start();
        pending.retain_mut(|(fault, seen)| {
            let Some((text, nth)) = fault.after_line else {
                return false;
            };
            *seen += usize::from(trimmed.contains(text));
            let due = *seen == nth;
            if due {
                sim_fault(&env, fault.cluster, &with_seed(fault.settings));
            }
            !due
        });
    }
    let status = child.wait().expect("meshshift ends");
    let seconds = started.elapsed().as_secs_f64();
    output.push_str(&errors.join().unwrap_or_default());
    assert!(
        pending.is_empty(),
        "faults never set: the run printed:\n{output}"
    );
    // What was injected, per cluster (the control endpoint counts it).
    let mut injected = String::new();
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let shown = Command::new(meshshift_binary())
            .arg("--state-dir")
            .arg(env.dir.path())
            .args(["sim", "fault"])
            .output()
            .expect("meshshift runs");
        if !shown.status.success() {
            assert!(
                Instant::now() < deadline,
                "sim fault failed: {}\nthe run printed:\n{output}",
                String::from_utf8_lossy(&shown.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
            continue;
        }
        for line in String::from_utf8_lossy(&shown.stdout).lines() {
            if let Some((cluster, json)) = line.split_once(' ') {
                let answer: Value = serde_json::from_str(json.trim()).unwrap_or_default();
                injected.push_str(&format!("{cluster} {} ", answer["injected"]));
            }
        }
        // The state is read without faults (once an outage still under way has ended).
        let clear = Command::new(meshshift_binary())
            .arg("--state-dir")
            .arg(env.dir.path())
            .args(["sim", "fault", "--clear"])
            .output()
            .expect("meshshift runs");
        if clear.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sim fault --clear failed: {}\nthe run printed:\n{output}",
            String::from_utf8_lossy(&clear.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    Outcome {
        injected,
        code: status.code(),
        state: serde_json::json!({
            "source": normalised_export(&env, "sim-source"),
            "target": normalised_export(&env, "sim-target"),
        }),
        weights: vs_weights(&|args| env.kubectl_ok("sim-source", args)),
        output,
        seconds,
    }
}

/// The fault-free run's end state, computed once per test process.
fn fault_free() -> &'static Outcome {
    static FREE: OnceLock<Outcome> = OnceLock::new();
    FREE.get_or_init(|| {
        let outcome = run(0, &[]);
        assert_eq!(outcome.code, Some(0), "{}", outcome.output);
        outcome
    })
}

fn row(name: &str, faults: &[Fault], expected: Expected) {
    let free = fault_free();
    for seed in seeds() {
        let outcome = run(seed, faults);
        let context = format!("{name}, seed {seed}:\n{}", outcome.output);
        match expected {
            Expected::Succeeded => {
                assert_eq!(outcome.code, Some(0), "{context}");
                assert_eq!(outcome.weights, free.weights, "{context}");
            }
            Expected::RolledBack(weights, reason) => {
                assert_ne!(outcome.code, Some(0), "{context}");
                assert_eq!(outcome.weights, weights, "{context}");
                assert!(
                    outcome.output.contains(reason),
                    "{reason:?} missing: {context}"
                );
            }
        }
        // The source keeps its objects but the VirtualService, whose weights are checked
        // above; the target holds exactly what the fault-free copy made.
        assert_eq!(outcome.state["target"], free.state["target"], "{context}");
        let without_vs = |state: &Value| {
            let mut items = state["source"].as_array().cloned().unwrap_or_default();
            items.retain(|i| i["kind"] != "VirtualService" && i["kind"] != "ServiceEntry");
            items
        };
        assert_eq!(
            without_vs(&outcome.state),
            without_vs(&free.state),
            "{context}"
        );
        println!(
            "fault matrix: {name} seed {seed}: exit {:?} in {:.1} s; injected: {}",
            outcome.code,
            outcome.seconds,
            outcome.injected.trim()
        );
    }
}

#[test]
fn no_faults() {
    row("no faults", &[], Expected::Succeeded);
}

#[test]
fn api_errors_drops_and_jitter_on_both_clusters() {
    row(
        "5% API errors, 1% drops, 0-100 ms",
        &[Fault {
            after_line: None,
            cluster: None,
            settings: &[
                "api-error-rate=0.05",
                "api-drop-rate=0.01",
                "api-latency-ms=0-100",
            ],
        }],
        Expected::Succeeded,
    );
}

#[test]
fn watches_cut_every_two_seconds() {
    row(
        "watch cut every 2 s",
        &[Fault {
            after_line: None,
            cluster: None,
            settings: &["watch-cut-s=2"],
        }],
        Expected::Succeeded,
    );
}

#[test]
fn target_data_plane_failing_from_the_50_percent_step_rolls_back() {
    // 50%, not 20%: Istio's default retry policy (two retries on 503) turns 20% at the
    // target's gateway into 0.8% end to end, under the runbook's 1% gate at 50% and
    // around it at 100% (RELIABILITY.md has the measurement); 50% gives 12.5%.
    row(
        "target data plane 50% 503 from the 50% step",
        &[Fault {
            // The second change of the VirtualService starts the 50% step.
            after_line: Some(("VirtualService/bookinfo/bookinfo configured", 2)),
            cluster: Some("sim-target"),
            settings: &["http-503-ratio=0.5"],
        }],
        Expected::RolledBack("productpage=75 v2.example.com=25", "rolled back to 25"),
    );
}

#[test]
fn target_api_server_unreachable_for_ten_seconds_during_the_copy() {
    row(
        "target API unreachable 10 s during the copy",
        &[Fault {
            after_line: Some(("] Copy workloads", 1)),
            cluster: Some("sim-target"),
            settings: &["unreachable-s=10"],
        }],
        Expected::Succeeded,
    );
}
