//! The main job killed with SIGKILL at points of the run, on a detached simulator
//! (`meshshift sim up --detach`), then `meshshift resume`: it must end in the state an
//! uninterrupted run ends in (a normalised export of both clusters, read with kubectl), and no
//! traffic weight may be accepted without a passed verification at that weight (the journal's
//! `shift-step` events). The points are step boundaries and time offsets inside the copy and
//! inside each traffic step. CI runs 10 of them; `MESHSHIFT_CRASH_POINTS=50` (see
//! scripts/crash-matrix.sh) runs the full matrix and prints the numbers.
//! Also here: a resumed traffic step verifies the weight it reached before going on, and rolls
//! back when that check fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::sim_env_support::{repo_path, text};
use crate::test::meshshift_binary;

const RUNBOOK: &str = "runbooks/migrate-oss-istio-to-aks.rhai";
const STEPS: [i64; 4] = [10, 25, 50, 100];
/// The main job: the demo app installed on the source, then the migration with the default
/// steps (`SIMULATED=true` installs the app as `--sim` would; `az` is the simulator's).
const JOB: &[&str] = &[
    "--yes",
    "--allow-exec",
    "az",
    "--set",
    "SOURCE_CLUSTER=sim-source",
    "--set",
    "TARGET_CLUSTER=sim-target",
    "--set",
    "SIMULATED=true",
    "--set",
    "TARGET_RESOURCE_GROUP=rg",
    "--set",
    "LOCATION=westeurope",
    "--set",
    "PROPAGATION=1s",
    "--set",
    "SOAK_SECONDS=0",
];
/// The output line that sets a traffic weight (the first one is 10%, the fifth drops the
/// attribution header at 100%).
const WEIGHT_SET: &str = "VirtualService/bookinfo/bookinfo configured";

/// A detached simulator in its own state directory, stopped when dropped.
struct DetachedSim {
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl DetachedSim {
    /// A fresh detached simulator; one more try when the first does not start (on a loaded
    /// machine it may miss its 60 s readiness bound).
    fn up() -> DetachedSim {
        match DetachedSim::try_up() {
            Ok(sim) => sim,
            Err(first) => DetachedSim::try_up()
                .unwrap_or_else(|second| panic!("sim up failed twice:\n{first}\n{second}")),
        }
    }

    fn try_up() -> Result<DetachedSim, String> {
        let dir = tempfile::tempdir().unwrap();
        // The script runs the matrix on a copy of the binary, so that builds can go on.
        let binary = std::env::var_os("MESHSHIFT_CRASH_BINARY")
            .map(PathBuf::from)
            .unwrap_or_else(meshshift_binary);
        let sim = DetachedSim { dir, binary };
        // The Azure CLI as a user would have it: here the simulator's, on PATH.
        let bin = sim.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let shim = bin.join("az");
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\nexec '{}' --state-dir '{}' sim az \"$@\"\n",
                sim.binary.display(),
                sim.state().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let up = sim
            .command(&["sim", "up", "--detach", "--fresh"])
            .output()
            .unwrap();
        if !up.status.success() {
            let log = std::fs::read_to_string(sim.state().join("sim/sim.log")).unwrap_or_default();
            return Err(format!("{:?}\n{log}", text(&up)));
        }
        Ok(sim)
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.state().join("sim/kubeconfig")
    }

    /// `meshshift` with this simulator's state directory, kubeconfig and `az`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--state-dir")
            .arg(self.state())
            .args(args)
            .env("NO_COLOR", "1")
            .env("KUBECONFIG", self.kubeconfig())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.dir.path().join("bin").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env_remove("MESHSHIFT_CONNECT_TO")
            .stdin(Stdio::null());
        command
    }

    fn job(&self, extra: &[&str]) -> Command {
        let runbook = repo_path(RUNBOOK);
        let mut args = vec!["run", runbook.as_str()];
        args.extend_from_slice(JOB);
        args.extend_from_slice(extra);
        self.command(&args)
    }

    fn resume(&self) -> Output {
        self.command(&["resume", "--yes", "--allow-exec", "az"])
            .output()
            .unwrap()
    }

    fn kubectl(&self, context: &str, args: &[&str]) -> String {
        let output = Command::new("kubectl")
            .env("KUBECONFIG", self.kubeconfig())
            .arg("--context")
            .arg(context)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "kubectl {args:?}: {:?}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The share the source's VirtualService sends to the target (0 when not shifted).
    fn shifted_weight(&self) -> i64 {
        let vs = self.kubectl(
            "sim-source",
            &[
                "get",
                "virtualservices.networking.istio.io",
                "-n",
                "bookinfo",
                "--ignore-not-found",
                "-o",
                "json",
            ],
        );
        let list: Value = serde_json::from_str(&vs).unwrap_or(json!({}));
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|vs| vs["metadata"]["annotations"]["meshshift.io/shift"].as_str())
            .filter_map(|shift| serde_json::from_str::<Value>(shift).ok())
            .filter_map(|shift| shift["weight"].as_i64())
            .next()
            .unwrap_or(0)
    }

    /// Both clusters as the comparison sees them: what a run writes, without what every
    /// simulator or every write makes different (uids, versions, times, addresses, pod names).
    fn export(&self) -> BTreeMap<String, Value> {
        let mut objects = BTreeMap::new();
        for context in ["sim-source", "sim-target"] {
            let listed = self.kubectl(
                context,
                &[
                    "get",
                    "namespaces,configmaps,secrets,services,serviceaccounts,deployments,pods,\
                     gateways.networking.istio.io,virtualservices.networking.istio.io,\
                     destinationrules.networking.istio.io,serviceentries.networking.istio.io",
                    "-A",
                    "-o",
                    "json",
                ],
            );
            let list: Value = serde_json::from_str(&listed).unwrap();
            for item in list["items"].as_array().unwrap() {
                let (key, value) = normalise(context, item);
                if let Some(Value::Number(count)) = objects.get(&key) {
                    let count = count.as_u64().unwrap_or(0) + 1;
                    objects.insert(key, json!(count));
                } else {
                    objects.insert(key, value);
                }
            }
        }
        objects
    }

    /// The journal of the newest run (a resumed run carries the events of those before it).
    fn last_journal(&self) -> Value {
        let runs = self.state().join("runs");
        let mut ids: Vec<String> = std::fs::read_dir(&runs)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        let last = ids.last().expect("a run directory");
        serde_json::from_str(
            &std::fs::read_to_string(runs.join(last).join("journal.json")).unwrap(),
        )
        .unwrap()
    }
}

impl Drop for DetachedSim {
    fn drop(&mut self) {
        let _ = self.command(&["sim", "down"]).output();
    }
}

/// One object as compared: its key and what matters of it. Pods are counted by their
/// deployment and containers (their names are random).
fn normalise(context: &str, item: &Value) -> (String, Value) {
    let kind = item["kind"].as_str().unwrap_or_default();
    let namespace = item["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = item["metadata"]["name"].as_str().unwrap_or_default();
    if kind == "Pod" {
        let containers: Vec<&str> = item["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let app = item["metadata"]["labels"]["app"].as_str().unwrap_or(name);
        let version = item["metadata"]["labels"]["version"]
            .as_str()
            .unwrap_or_default();
        return (
            format!("{context} Pod {namespace}/{app}-{version} {containers:?}"),
            json!(1),
        );
    }
    let mut object = item.clone();
    let map = object.as_object_mut().unwrap();
    map.remove("status");
    if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "ownerReferences",
        ] {
            metadata.remove(field);
        }
    }
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        for field in ["clusterIP", "clusterIPs", "healthCheckNodePort"] {
            spec.remove(field);
        }
        for port in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(port) = port.as_object_mut() {
                port.remove("nodePort");
            }
        }
    }
    // Secret values and CA bundles differ between simulators: their keys are compared.
    let per_simulator = kind == "Secret"
        || (kind == "ConfigMap" && ["kube-root-ca.crt", "istio-ca-root-cert"].contains(&name));
    if per_simulator && let Some(data) = map.get_mut("data").and_then(Value::as_object_mut) {
        for value in data.values_mut() {
            *value = json!("…");
        }
    }
    // Load balancer addresses and API server ports are the simulator's to choose.
    let text = object.to_string();
    let addresses = regex::Regex::new(r"127\.\d+\.([12])\.\d+").unwrap();
    let ports = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let text = addresses.replace_all(&text, "127.slot.$1.x");
    let text = ports.replace_all(&text, "127.0.0.1:port");
    (
        format!("{context} {kind} {namespace}/{name}"),
        serde_json::from_str(&text).unwrap(),
    )
}

/// Where a run is killed: `delay` after the `nth` (from 1) output line containing `line`.
#[derive(Clone, Debug)]
struct Point {
    line: &'static str,
    nth: usize,
    delay: Duration,
}

impl Point {
    fn at(line: &'static str, nth: usize, delay_ms: u64) -> Point {
        Point {
            line,
            nth,
            delay: Duration::from_millis(delay_ms),
        }
    }

    fn name(&self) -> String {
        format!(
            "{:?} #{} +{}ms",
            self.line,
            self.nth,
            self.delay.as_millis()
        )
    }
}

const STEP_HEADERS: [&str; 11] = [
    "==> [1] ",
    "==> [2] ",
    "==> [3] ",
    "==> [4] ",
    "==> [5] ",
    "==> [6] ",
    "==> [7] ",
    "==> [8] ",
    "==> [9] ",
    "==> [10] ",
    "==> [11] ",
];
const COPY: &str = "==> [7] ";
const VERDICT: &str = "     pass: n=";

/// The 10 points CI runs: boundaries of the main steps, inside the copy, and inside the
/// traffic steps (between setting a weight and its verdict, and just after a verdict).
fn ci_points() -> Vec<Point> {
    vec![
        Point::at(STEP_HEADERS[1], 1, 0),
        Point::at(STEP_HEADERS[4], 1, 0),
        Point::at(STEP_HEADERS[5], 1, 0),
        Point::at(COPY, 1, 120),
        Point::at(STEP_HEADERS[7], 1, 0),
        Point::at(STEP_HEADERS[9], 1, 0),
        Point::at(WEIGHT_SET, 1, 300),
        Point::at(VERDICT, 1, 0),
        Point::at(WEIGHT_SET, 3, 600),
        Point::at(WEIGHT_SET, 5, 0),
    ]
}

/// The full matrix: every step boundary, offsets inside the copy, and offsets inside each
/// traffic step (after the weight is set, and after its verdict).
fn all_points() -> Vec<Point> {
    let mut points: Vec<Point> = STEP_HEADERS.iter().map(|h| Point::at(h, 1, 0)).collect();
    for delay in [30, 60, 100, 150, 200, 250, 300, 350, 450, 600] {
        points.push(Point::at(COPY, 1, delay));
    }
    for nth in 1..=4 {
        // Later steps' offsets land in the next step; after the last weight the run ends
        // within about half a second, so its points stay inside the propagation gate's wait
        // (at least the simulator's 0.3 s propagation).
        let delays: &[u64] = if nth < 4 {
            &[0, 150, 400, 700, 900]
        } else {
            &[0, 75, 150, 225, 275]
        };
        for delay in delays {
            points.push(Point::at(WEIGHT_SET, nth, *delay));
        }
        // The run ends about 20 ms after the last verdict: later points are never reached.
        let after_verdict: &[u64] = if nth < 4 { &[0, 20] } else { &[0] };
        for delay in after_verdict {
            points.push(Point::at(VERDICT, nth, *delay));
        }
    }
    points.push(Point::at(WEIGHT_SET, 1, 1100));
    points.push(Point::at(WEIGHT_SET, 5, 0));
    points
}

/// Runs the job, and kills it with SIGKILL at `point`. Returns its output and whether it was
/// killed (a point the run never reached lets it finish).
fn run_killed_at(sim: &DetachedSim, point: &Point) -> (bool, String) {
    let mut child = sim
        .job(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut seen = 0;
    let mut output = String::new();
    let mut killed = false;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        output.push_str(&line);
        output.push('\n');
        if line.contains(point.line) {
            seen += 1;
            if seen == point.nth {
                std::thread::sleep(point.delay);
                let kill = Command::new("kill").args(["-9", &pid]).status().unwrap();
                killed = kill.success();
                break;
            }
        }
    }
    for line in lines.map_while(Result::ok) {
        output.push_str(&line);
        output.push('\n');
    }
    let status = child.wait().unwrap();
    // A run that ended on its own before the signal was not killed.
    let killed = killed && std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
    (killed, output)
}

/// Every weight the shift accepted had a passed verification at that weight, each step's
/// weight was reached only after the previous one passed, and a resumed run verified the
/// weight it found (`reached`) before any other.
fn check_verifications(journal: &Value, reached: i64) -> Result<(), String> {
    let events: Vec<&Value> = journal["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "shift-step")
        .collect();
    let passed_at = |weight: i64, before: usize| {
        events[..before]
            .iter()
            .any(|e| e["data"]["weight"] == weight && e["data"]["passed"] == true)
    };
    for weight in STEPS {
        if !passed_at(weight, events.len()) {
            return Err(format!("{weight}% was never verified: {events:?}"));
        }
    }
    for (index, event) in events.iter().enumerate() {
        let weight = event["data"]["weight"].as_i64().unwrap_or(-1);
        if let Some(at) = STEPS.iter().position(|s| *s == weight)
            && at > 0
            && !passed_at(STEPS[at - 1], index)
        {
            return Err(format!(
                "{weight}% was set before {}% passed: {events:?}",
                STEPS[at - 1]
            ));
        }
    }
    if events.last().map(|e| &e["data"]["weight"]) != Some(&json!(100)) {
        return Err(format!("the last verification is not at 100%: {events:?}"));
    }
    let run_id = journal["run_id"].as_str().unwrap_or_default();
    let first_resumed = events.iter().find(|e| e["run_id"] == run_id);
    if reached > 0
        && let Some(first) = first_resumed
        && first["data"]["weight"] != reached
    {
        return Err(format!(
            "the resumed run found {reached}% but first verified {}",
            first["data"]["weight"]
        ));
    }
    Ok(())
}

/// What differs between two exports, object by object.
fn differences(expected: &BTreeMap<String, Value>, got: &BTreeMap<String, Value>) -> Vec<String> {
    let mut keys: Vec<&String> = expected.keys().chain(got.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| expected.get(*key) != got.get(*key))
        .map(|key| {
            format!(
                "{key}:\n  uninterrupted: {}\n  resumed:       {}",
                expected
                    .get(key)
                    .map(Value::to_string)
                    .unwrap_or("-".into()),
                got.get(key).map(Value::to_string).unwrap_or("-".into())
            )
        })
        .collect()
}

#[test]
fn killed_at_any_point_and_resumed_ends_as_an_uninterrupted_run() {
    let points = match std::env::var("MESHSHIFT_CRASH_POINTS").ok() {
        Some(count) => {
            let count: usize = count.parse().expect("MESHSHIFT_CRASH_POINTS is a number");
            let all = all_points();
            assert!(
                count <= all.len(),
                "MESHSHIFT_CRASH_POINTS: at most {} points are defined",
                all.len()
            );
            all.into_iter().take(count).collect()
        }
        None => ci_points(),
    };
    let baseline = {
        let sim = DetachedSim::up();
        let run = sim.job(&[]).output().unwrap();
        let (stdout, stderr) = text(&run);
        assert!(run.status.success(), "{stdout}\n{stderr}");
        check_verifications(&sim.last_journal(), 0)
            .unwrap_or_else(|e| panic!("uninterrupted run: {e}"));
        sim.export()
    };
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut not_reached = 0;
    for point in &points {
        let sim = DetachedSim::up();
        let (killed, output) = run_killed_at(&sim, point);
        if !killed {
            not_reached += 1;
            failures.push(format!(
                "{}: the run finished before the point\n{output}",
                point.name()
            ));
            continue;
        }
        let reached = sim.shifted_weight();
        let started = Instant::now();
        let resumed = sim.resume();
        let recovery = started.elapsed();
        slowest = slowest.max(recovery);
        let (stdout, stderr) = text(&resumed);
        if !resumed.status.success() {
            failures.push(format!(
                "{}: resume failed\n{stdout}\n{stderr}",
                point.name()
            ));
            continue;
        }
        let different = differences(&baseline, &sim.export());
        if !different.is_empty() {
            failures.push(format!(
                "{}: the end state differs:\n{}",
                point.name(),
                different.join("\n")
            ));
            continue;
        }
        if let Err(problem) = check_verifications(&sim.last_journal(), reached) {
            failures.push(format!("{} (reached {reached}%): {problem}", point.name()));
            continue;
        }
        eprintln!(
            "crash point {}: killed at {reached}%, resumed in {} ms",
            point.name(),
            recovery.as_millis()
        );
    }
    eprintln!(
        "crash matrix: {} points, {} passed, {} not reached, slowest recovery {} ms",
        points.len(),
        points.len() - failures.len(),
        not_reached,
        slowest.as_millis()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The job killed between setting 10% and verifying it.
fn killed_at_ten_percent(sim: &DetachedSim) {
    let (killed, output) = run_killed_at(sim, &Point::at(WEIGHT_SET, 1, 200));
    assert!(killed, "{output}");
    assert_eq!(sim.shifted_weight(), 10, "{output}");
    let journal = sim.last_journal();
    assert!(
        !journal["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "shift-step"),
        "10% was killed before its verdict: {journal}"
    );
}

#[test]
fn a_resumed_shift_verifies_the_weight_it_reached_first() {
    let sim = DetachedSim::up();
    killed_at_ten_percent(&sim);
    let resumed = sim.resume();
    let (stdout, stderr) = text(&resumed);
    assert!(resumed.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "bookinfo already sends 10% to the target: verifying 10% before going on (a failure goes back to 0%)"
        ),
        "{stdout}"
    );
    check_verifications(&sim.last_journal(), 10).unwrap();
}

#[test]
fn a_resumed_shift_whose_reached_weight_fails_rolls_back() {
    let sim = DetachedSim::up();
    killed_at_ten_percent(&sim);
    // The target stops serving the app while the run is down. Its gateways take the change at
    // once (no propagation delay), so it has reached them before the resume samples: the
    // source's gate waits for the source's gateways only.
    let fault = sim
        .command(&[
            "sim",
            "fault",
            "--cluster",
            "sim-target",
            "propagation-ms=0",
        ])
        .output()
        .unwrap();
    assert!(fault.status.success(), "{:?}", text(&fault));
    sim.kubectl(
        "sim-target",
        &[
            "delete",
            "virtualservices.networking.istio.io",
            "bookinfo",
            "-n",
            "bookinfo",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let resumed = sim.resume();
    let (stdout, stderr) = text(&resumed);
    assert_eq!(resumed.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("traffic shift rolled back to 0 after 10%"),
        "{stdout}\n{stderr}"
    );
    // The owner's routes are back: nothing goes to the target.
    assert_eq!(sim.shifted_weight(), 0);
    let routes = sim.kubectl(
        "sim-source",
        &[
            "get",
            "virtualservices.networking.istio.io",
            "bookinfo",
            "-n",
            "bookinfo",
            "-o",
            "jsonpath={range .spec.http[0].route[*]}{.destination.host} {end}",
        ],
    );
    assert_eq!(routes.trim(), "productpage");
    let journal = sim.last_journal();
    let steps: Vec<&Value> = journal["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "shift-step")
        .collect();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["data"]["weight"], 10);
    assert_eq!(steps[0]["data"]["passed"], false);
}
