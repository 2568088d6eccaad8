//! The traffic primitives on the simulated mesh: `sample` + `attribute` + `split_check`
//! through the source's ingress gateway while its VirtualService sends 10% to the target
//! cluster, as the AKS guide sets it up. A correct 90/10 split passes, a 50/50 split checked
//! against 90/10 fails, and 10 requests cannot decide. (A target that starts answering 503
//! during `shift` is in `migration.rs`: the gate trips and kubectl sees the weights restored.)

use crate::sim_env_support::{
    TestEnv, guide_source_setup, meshshift, migrate, repo_path, text, vs_weights,
};

/// Samples the source gateway, attributes the answers and checks them against 90/10.
const CHECK: &str = r#"
let source = cluster("sim-source");
let target = cluster("sim-target");
let address = source.service_address("istio-system", "istio-ingressgateway", "http2");
let s = sample(`http://${address}/productpage`, #{count: param("COUNT", 0), concurrency: 16, extract: "bookinfo"});
let split = attribute(s, #{source: source, target: target}, "bookinfo");
let check = split_check(#{source: split.source, target: split.target}, #{source: 90, target: 10},
                        #{confidence: 0.95});
print(`verdict=${check.verdict} source=${split.source} target=${split.target} unknown=${split.unknown} errors=${s.error_count} required=${check.required_sample}`);
"#;

/// An environment whose source sends 10% of its ingress traffic to the target, reached by
/// the migration runbook stopped at its first step.
fn ninety_ten() -> TestEnv {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    env.az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    let run = migrate(
        &env,
        &[
            "--set",
            "STEPS=10",
            "--set",
            "SOAK_SECONDS=0",
            "--set",
            "PROPAGATION=1s",
        ],
    );
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sim-source's ingress sends 10% of its traffic to sim-target"),
        "a partial shift is not a hand-over: {stdout}"
    );
    assert!(!stdout.contains("All traffic through"), "{stdout}");
    assert_eq!(weights(&env), "productpage=90 v2.example.com=10");
    env
}

/// The VirtualService's destinations and weights, read with kubectl.
fn weights(env: &TestEnv) -> String {
    vs_weights(&|args| env.kubectl_ok("sim-source", args))
}

/// Runs CHECK with COUNT requests; returns its one line of output.
fn check(env: &TestEnv, count: u32) -> String {
    let script = env.dir.path().join("check.rhai");
    std::fs::write(&script, CHECK).unwrap();
    let output = meshshift(
        env,
        &[
            "run",
            &script.to_string_lossy(),
            "--set",
            &format!("COUNT={count}"),
        ],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
        .lines()
        .find(|line| line.starts_with("verdict="))
        .unwrap_or_else(|| panic!("no verdict in\n{stdout}"))
        .to_string()
}

/// The integer after `name=` in a CHECK line.
fn field(line: &str, name: &str) -> u64 {
    line.split(' ')
        .find_map(|part| part.strip_prefix(&format!("{name}=")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[test]
fn ninety_ten_passes_fifty_fifty_fails_and_ten_requests_cannot_decide() {
    let env = ninety_ten();

    let line = check(&env, 1000);
    assert!(line.starts_with("verdict=pass "), "{line}");
    assert_eq!(
        field(&line, "source") + field(&line, "target"),
        1000,
        "{line}"
    );
    assert_eq!((field(&line, "unknown"), field(&line, "errors")), (0, 0));
    // 1,000 draws at 10%: the 99.9% range is about 70..130.
    let target = field(&line, "target");
    assert!((70..=130).contains(&target), "{line}");

    let line = check(&env, 10);
    assert!(line.starts_with("verdict=inconclusive "), "{line}");
    assert!(field(&line, "required") > 10, "{line}");

    // Half the traffic to the target, still checked against 90/10.
    env.kubectl_ok(
        "sim-source",
        &[
            "patch",
            "virtualservice",
            "bookinfo",
            "-n",
            "bookinfo",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/http/0/route/0/weight","value":50},{"op":"replace","path":"/spec/http/0/route/1/weight","value":50}]"#,
        ],
    );
    assert_eq!(weights(&env), "productpage=50 v2.example.com=50");
    // Routes reach the gateway after the simulated propagation delay; a sample that straddles
    // it is a mixture, so the measured one comes after the change has been seen.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while field(&check(&env, 200), "target") < 60 {
        assert!(
            std::time::Instant::now() < deadline,
            "the 50/50 weights never reached the gateway"
        );
    }
    let line = check(&env, 1000);
    assert!(line.starts_with("verdict=fail "), "{line}");
    let target = field(&line, "target");
    assert!((400..=600).contains(&target), "{line}");
}

/// `shift` to 50% while the target answers 503, with a gate that looks at the split only.
const SHIFT: &str = r#"
import "traffic" as traffic;
let source = cluster("sim-source");
let target = cluster("sim-target");
let address = source.service_address("istio-system", "istio-ingressgateway", "http2");
try {
    traffic::shift(#{cluster: source, vs: "bookinfo", namespace: "bookinfo",
                     from: "productpage:9080", to: "v2.example.com:80", steps: [50],
                     propagation: "1s", sample: 100, url: `http://${address}/productpage`,
                     clusters: #{source: source, target: target}, pods_namespace: "bookinfo",
                     gate: |result| if result.check.verdict == "pass" { "" } else {
                         `${result.first_check.total} then ${result.check.total}: ${result.check.reason}`
                     }});
    print("shifted");
} catch (error) {
    print(`stopped: ${error}`);
}
"#;

#[test]
fn a_failed_split_is_confirmed_by_a_fresh_sample_before_the_rollback() {
    let env = ninety_ten();
    env.kubectl_ok(
        "sim-target",
        &[
            "annotate",
            "service",
            "productpage",
            "-n",
            "bookinfo",
            "sim.meshshift.io/http-503-ratio=1",
        ],
    );
    let script = env.dir.path().join("shift.rhai");
    std::fs::write(&script, SHIFT).unwrap();
    let output = meshshift(&env, &["run", &script.to_string_lossy(), "--yes"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // Only the source answers: the first sample fails, and so does the confirmation.
    assert!(
        stdout.contains("failed (p=") && stdout.contains("fresh requests"),
        "{stdout}"
    );
    let stopped = stdout
        .lines()
        .find(|line| line.starts_with("stopped: traffic shift rolled back to"))
        .unwrap_or_else(|| panic!("no rollback in\n{stdout}"));
    let sizes: Vec<u64> = stopped
        .split(" after 50%: ")
        .nth(1)
        .and_then(|reason| reason.split(':').next())
        .map(|sizes| {
            sizes
                .split(" then ")
                .map(|n| n.trim().parse().unwrap())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(sizes.len(), 2, "{stopped}");
    assert!(sizes[1] > sizes[0], "the confirmation is larger: {stopped}");
    assert_eq!(weights(&env), "productpage=90 v2.example.com=10");
}

#[test]
fn the_rollback_runbook_routes_everything_back_to_the_source() {
    let env = ninety_ten();
    let runbook = repo_path("runbooks/rollback-traffic.rhai");
    let output = meshshift(
        &env,
        &[
            "run",
            &runbook,
            "--yes",
            "--set",
            "SOURCE_CLUSTER=sim-source",
        ],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // The VirtualService is the guide's again: its own destination, with its port and no weight.
    assert_eq!(weights(&env), "productpage=");
    assert!(
        stdout.contains("bookinfo/bookinfo routes as its owner wrote it again"),
        "{stdout}"
    );
    let annotations = env.kubectl_ok(
        "sim-source",
        &[
            "get",
            "virtualservice",
            "bookinfo",
            "-n",
            "bookinfo",
            "-o",
            "jsonpath={.metadata.annotations}",
        ],
    );
    assert!(!annotations.contains("meshshift.io"), "{annotations}");
    let port = env.kubectl_ok(
        "sim-source",
        &[
            "get",
            "virtualservice",
            "bookinfo",
            "-n",
            "bookinfo",
            "-o",
            "jsonpath={.spec.http[0].route[0].destination.port.number}",
        ],
    );
    assert_eq!(port, "9080");
    let entries = env.kubectl_ok(
        "sim-source",
        &["get", "serviceentries", "-n", "bookinfo", "-o", "name"],
    );
    assert_eq!(entries.trim(), "");
}

/// Probes the source's ingress with and without binding the cluster first.
const PROBE_MAPPED: &str = r#"
let address = param("ADDRESS");
let before = http_get(`http://${address}/productpage`, #{timeout: "2s"});
print(`unbound=${before.status}`);
let source = cluster("sim-source");
let after = http_get(`http://${address}/productpage`, #{timeout: "2s"});
print(`bound=${after.status} ${after.error ?? ""}`);
"#;

#[test]
fn mapped_load_balancer_ports_reach_a_session_through_the_kubeconfig_of_its_clusters() {
    let env = TestEnv::start_with(|o| meshshift::sim::EnvironmentOptions {
        map_ports: true,
        ..o
    });
    let address = env.service_address("sim-source", "istio-system", "istio-ingressgateway");
    let served = env.served_at(&address);
    assert_ne!(served, address, "the port is mapped");
    // The mapping is in the cluster entry, where kubectl keeps (and ignores) tool data.
    let view = env.kubectl_ok("sim-source", &["config", "view", "-o", "json"]);
    let config: serde_json::Value = serde_json::from_str(&view).unwrap();
    let source_entry = config["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sim-source")
        .unwrap();
    assert_eq!(
        source_entry["cluster"]["extensions"][0]["name"],
        "connect-to.meshshift.io"
    );
    assert_eq!(
        source_entry["cluster"]["extensions"][0]["extension"][&address],
        served.as_str()
    );
    let script = env.dir.path().join("probe.rhai");
    std::fs::write(&script, PROBE_MAPPED).unwrap();
    let output = meshshift(
        &env,
        &[
            "run",
            &script.to_string_lossy(),
            "--yes",
            "--set",
            &format!("ADDRESS={address}"),
        ],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // Nothing process-wide: before the script binds the cluster, the address is not mapped.
    assert!(stdout.contains("unbound=0"), "{stdout}");
    // After it, the gateway answers (no route is configured yet: Envoy's 404).
    assert!(stdout.contains("bound=404 "), "{stdout}");
}
