//! The migration runbook end to end against a simulated environment, run by the meshshift
//! binary with the environment's kubeconfig: prechecks, the target's MeshConfig and gateway,
//! workloads copied and injected, the target tested, traffic shifted to it.

use crate::sim_env_support::{TestEnv, migrate, vs_weights};
use crate::sim_support::ok;

#[test]
fn the_migration_runbook_runs_end_to_end() {
    let env = TestEnv::start();
    // Without --allow-exec the runbook expects the target's gateway to be enabled already.
    let enabled = env
        .az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    assert_eq!(enabled.code, 0, "{}", enabled.stderr);
    let output = migrate(
        &env,
        &[
            "--set",
            "SIMULATED=true",
            // One statistical step, sampled enough to decide at 99.9% confidence.
            "--set",
            "STEPS=50,100",
            "--set",
            "SAMPLE=4000",
            "--set",
            "CONFIDENCE=0.999",
            "--set",
            "PROPAGATION=1s",
        ],
    );
    let stdout = ok(&output);
    for expected in [
        "6 pods running with istio-proxy",
        "ConfigMap/aks-istio-system/istio-shared-configmap-asm-1-30 created",
        "6 pods on the target run with istio-proxy",
        "answers 200: Simple Bookstore App",
        "All traffic through sim-source's ingress now reaches sim-target.",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    assert_eq!(
        vs_weights(&|args| env.kubectl_ok("sim-source", args)),
        "productpage=0 v2.example.com=100"
    );
    let proxies = env.kubectl_ok(
        "sim-target",
        &[
            "get",
            "pods",
            "-n",
            "bookinfo",
            "-o",
            "jsonpath={.items[*].spec.containers[1].name}",
        ],
    );
    assert_eq!(
        proxies
            .split_whitespace()
            .filter(|c| *c == "istio-proxy")
            .count(),
        6,
        "{proxies}"
    );
}
