//! The propagation gate on the simulated mesh: the shift reads every source gateway pod's
//! routes through `pods/portforward` and samples only once each serves the new weights; a pod
//! that never converges fails the step, named, and the weights go back. The gateway pods'
//! counters (`pods/proxy`, `:15090/stats/prometheus`) count what they routed.

use std::time::Duration;

use crate::sim_env_support::{TestEnv, guide_source_setup, meshshift, migrate, text, vs_weights};

const SOURCE: &str = "sim-source";

/// The seconds after which the step's pods were seen serving its weights: the numbers in
/// `live after <s> s` of the lines after `step`'s weight change.
fn live_after(stdout: &str) -> Vec<f64> {
    stdout
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find("(live after ")? + "(live after ".len()..];
            rest.split(' ').next()?.parse::<f64>().ok()
        })
        .collect()
}

/// The guide's source (bookinfo through the source's ingress) and the target's add-on ingress
/// gateway, on simulated clusters whose gateways take `propagation_delay` to receive changes.
fn guide_with_target_gateway(propagation_delay: Duration) -> TestEnv {
    let env = TestEnv::start_with(|o| meshshift::sim::EnvironmentOptions {
        propagation_delay,
        ..o
    });
    guide_source_setup(&|args| env.kubectl_ok(SOURCE, args));
    env.az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    env
}

#[test]
fn under_a_five_second_delay_no_step_samples_before_its_weights_are_live() {
    let env = guide_with_target_gateway(Duration::from_secs(5));
    let run = migrate(
        &env,
        &[
            "--set",
            "STEPS=10,50",
            "--set",
            "SOAK_SECONDS=0",
            "--set",
            "PROPAGATION=1s",
        ],
    );
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    // One line per gateway pod and step; a change cannot be live before the 5 s delay, so
    // any pod seen live earlier would mean the gate read something else than the new weights.
    let seconds = live_after(&stdout);
    assert_eq!(seconds.len(), 2, "one gateway pod, two steps:\n{stdout}");
    for s in &seconds {
        assert!(*s >= 5.0, "a pod was seen live after {s} s:\n{stdout}");
    }
    assert!(
        stdout.contains("v2.example.com 10") && stdout.contains("v2.example.com 50"),
        "the pods' weights are reported:\n{stdout}"
    );
    // The check that follows the gate saw the new split (with the old one live, the target
    // would have answered nothing at 10%).
    assert!(!stdout.contains("not converged"), "{stdout}");
    assert_eq!(
        vs_weights(&|args| env.kubectl_ok(SOURCE, args)),
        "productpage=50 v2.example.com=50"
    );
}

#[test]
fn a_gateway_pod_that_never_converges_fails_the_step_and_is_named() {
    let env = guide_with_target_gateway(Duration::from_millis(200));
    env.kubectl_ok(
        SOURCE,
        &[
            "scale",
            "deployment",
            "istio-ingressgateway",
            "-n",
            "istio-system",
            "--replicas=2",
        ],
    );
    env.kubectl_ok(
        SOURCE,
        &[
            "wait",
            "--for=condition=Available",
            "deployment",
            "istio-ingressgateway",
            "-n",
            "istio-system",
            "--timeout=60s",
        ],
    );
    let pods = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "pods",
            "-n",
            "istio-system",
            "-l",
            "istio=ingressgateway",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    let pods: Vec<&str> = pods.split_whitespace().collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let stuck = pods[1];
    env.kubectl_ok(
        SOURCE,
        &[
            "annotate",
            "pod",
            stuck,
            "-n",
            "istio-system",
            "sim.meshshift.io/propagation-delay=never",
        ],
    );
    let run = migrate(
        &env,
        &[
            "--set",
            "STEPS=10",
            "--set",
            "SOAK_SECONDS=0",
            "--set",
            "PROPAGATION_TIMEOUT=3s",
        ],
    );
    let (stdout, stderr) = text(&run);
    assert!(!run.status.success(), "{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    assert!(
        all.contains(&format!("gateway pod {stuck} (serves")),
        "the stuck pod is named:\n{all}"
    );
    assert!(
        all.contains("did not serve the 10% weights within 3s"),
        "{all}"
    );
    assert!(
        !all.contains(&format!("gateway pod {} (serves", pods[0])),
        "the pod that converged is not blamed:\n{all}"
    );
    // The step never sampled: it failed before, and the weights went back.
    assert!(
        !stdout.lines().any(|l| l.trim_start().starts_with("10%: ")),
        "{stdout}"
    );
    assert!(
        !vs_weights(&|args| env.kubectl_ok(SOURCE, args)).contains("v2.example.com"),
        "the weights were restored"
    );
}

/// Reads the gate and the counters directly: `wait_propagation` sees each pod's weights,
/// `gateway_counters` counts the requests each routed.
const READ: &str = r#"
let source = cluster("sim-source");
let vs = source.get("VirtualService", "bookinfo", "bookinfo");
let gate = wait_propagation(source, vs, #{namespace: "istio-system", timeout: "20s"});
print(`converged=${gate.converged} refused=${gate.refused}`);
for p in gate.pods { print(`pod ${p.pod}: ${p.seen}`); }
let address = source.service_address("istio-system", "istio-ingressgateway", "http2");
let s = sample(`http://${address}/productpage`, #{count: 50, concurrency: 4});
let counters = gateway_counters(source, #{namespace: "istio-system"});
let total = 0;
for pod in counters.pods.keys() {
    let c = counters.pods[pod]["outbound|9080||productpage.bookinfo.svc.cluster.local"];
    if c != () { total += c.total; print(`counted ${pod} ${c.total} ${c.xx_2}`); }
}
print(`ok=${s.ok} total=${total}`);
"#;

#[test]
fn gateway_routes_and_counters_are_read_through_the_api_server() {
    let env = TestEnv::start_with(|o| meshshift::sim::EnvironmentOptions {
        propagation_delay: Duration::from_millis(50),
        ..o
    });
    guide_source_setup(&|args| env.kubectl_ok(SOURCE, args));
    // kubectl asks the same question the prechecks ask (a SelfSubjectAccessReview).
    for (verb, resource) in [("create", "pods/portforward"), ("get", "pods/proxy")] {
        assert_eq!(
            env.kubectl_ok(
                SOURCE,
                &["auth", "can-i", verb, resource, "-n", "istio-system"]
            )
            .trim(),
            "yes"
        );
    }
    let script = env.dir.path().join("read.rhai");
    std::fs::write(&script, READ).unwrap();
    let output = meshshift(&env, &["run", &script.to_string_lossy()]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("converged=true refused=\n"), "{stdout}");
    assert!(stdout.contains(": productpage.bookinfo 100"), "{stdout}");
    // Every answered request was counted once, by the pod that routed it.
    let ok: u64 = stdout
        .split("ok=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(ok, 50, "{stdout}");
    assert!(stdout.contains("total=50"), "{stdout}");
}

#[test]
fn passive_evidence_reads_the_users_split_from_the_gateway_counters() {
    let env = guide_with_target_gateway(Duration::from_millis(200));
    let gateway = env.service_address(SOURCE, "istio-system", "istio-ingressgateway");
    // The users: a steady background load through the source's gateway for the whole run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let served = env.served_at(&gateway);
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(mut stream) = std::net::TcpStream::connect(&served) {
                    use std::io::{Read, Write};
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.write_all(
                        b"GET /productpage HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
                    );
                    let _ = stream.read_to_end(&mut Vec::new());
                    sent += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            sent
        })
    };
    let run = migrate(
        &env,
        &[
            "--set",
            "STEPS=50",
            "--set",
            "SOAK_SECONDS=0",
            "--set",
            "EVIDENCE=passive",
            "--set",
            "PASSIVE_WINDOW=30s",
        ],
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sent = load.join().unwrap();
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(sent > 50, "the background load ran ({sent} requests)");
    assert!(
        stdout.contains("evidence: passive counters pass ("),
        "the verdict rests on the counters:\n{stdout}"
    );
}

#[test]
fn sequential_sampling_decides_each_step_and_says_at_what_cost() {
    let env = guide_with_target_gateway(Duration::from_millis(100));
    let run = migrate(
        &env,
        &[
            "--set",
            "STEPS=10,50",
            "--set",
            "SOAK_SECONDS=0",
            "--set",
            "SEQUENTIAL=true",
        ],
    );
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    // The prechecks say which evidence the shift will have.
    assert!(
        stdout.contains("pods/portforward in istio-system")
            && stdout
                .contains("allowed: each step waits until every gateway pod serves its weights"),
        "{stdout}"
    );
    assert!(stdout.contains("pods/proxy in istio-system"), "{stdout}");
    // Each verdict says how many requests it took; looks are 100, 200, 400, ... requests.
    let costs: Vec<u64> = stdout
        .lines()
        .filter_map(|l| {
            let rest =
                &l[l.find("evidence: synthetic pass (")? + "evidence: synthetic pass (".len()..];
            rest.split(' ').next()?.parse().ok()
        })
        .collect();
    assert_eq!(costs.len(), 2, "{stdout}");
    for n in costs {
        assert!(
            [100, 200, 400, 800, 1600, 3200, 4000].contains(&n),
            "{n} is not a look of the sequential test:\n{stdout}"
        );
    }
}
