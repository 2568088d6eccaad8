//! What the kube-apiserver v1.37 control plane (`tests/control-plane`) adds over v1.20: Istio's
//! CRDs with their CEL rules as published, Gateway API's experimental CRDs, and Indexed Jobs run
//! by the controller-manager.
//!
//! Needs `MESHSHIFT_REAL_KUBECONFIG` (the v1.37 pair, see `cluster_support`) and
//! `MESHSHIFT_FIXTURES` (the CRDs are read in place from `istio/crds/`).

use crate::cluster_support::{Backend, unique_namespace};
use crate::test::{Test, fixtures_dir};

/// A runbook against the v1.37 pair with `TARGET`, `SOURCE`, `NS` and `CRDS` (the fixtures'
/// CRD directory) set.
fn runbook(namespace: &str, source: &str) -> Test {
    let backend = Backend::v1_37();
    let crds = fixtures_dir().join("istio/crds");
    Test::new()
        .env("KUBECONFIG", &backend.kubeconfig)
        .runbook(source)
        .args(&[
            // The tests here and the conformance scenarios share the pair and its run lock.
            "--wait-lock",
            "--set",
            &format!("SOURCE={}", backend.source),
            "--set",
            &format!("TARGET={}", backend.target),
            "--set",
            &format!("NS={namespace}"),
            "--set",
            &format!("CRDS={}", crds.display()),
        ])
}

#[test]
#[ignore = "needs MESHSHIFT_REAL_KUBECONFIG and MESHSHIFT_FIXTURES (.ci/run provides them)"]
fn istio_crds_apply_unstripped_and_their_cel_rules_refuse_invalid_resources() {
    let namespace = unique_namespace("cel");
    // VirtualService v1: http[].timeout carries
    // `duration(self) >= duration('1ms')` with the message "must be a valid duration greater
    // than 1ms". v1.20 knows no CEL (x-kubernetes-validations is v1.25+), which is why the old
    // tool stripped these rules.
    let outcome = runbook(
        &namespace,
        r#"
        let c = cluster(param("TARGET"));
        let ns = param("NS");
        let crds = load(param("CRDS") + "/crd-all.gen.yaml");
        let rules = to_json(crds).contains("x-kubernetes-validations");
        print(`${crds.len()} CRDs, with CEL rules: ${rules}`);
        let applied = c.apply(crds, #{quiet: true});
        // Created, or configured where the stripped copies other suites apply are present.
        print(applied.filter(|r| ["created", "configured", "unchanged"].contains(r.action)).len());
        c.wait("CustomResourceDefinition", "virtualservices.networking.istio.io", "", "Established", "30s");
        c.apply(#{apiVersion: "v1", kind: "Namespace", metadata: #{name: ns}}, #{quiet: true});
        let vs = #{apiVersion: "networking.istio.io/v1", kind: "VirtualService",
                   metadata: #{name: "reviews", namespace: ns},
                   spec: #{hosts: ["reviews"], http: [#{timeout: "5s", route: [#{destination: #{host: "reviews"}}]}]}};
        c.apply(vs);
        vs.spec.http[0].timeout = "0s";
        c.apply(vs);
        "#,
    )
    .status(1)
    .run();
    assert!(
        outcome
            .stdout
            .starts_with("15 CRDs, with CEL rules: true\n15\n"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains(&format!("VirtualService/{namespace}/reviews created\n")),
        "{}",
        outcome.stdout
    );
    let expected = format!(
        "error: cluster `real-target`: nothing was applied: VirtualService/{namespace}/reviews failed validation (server-side dry run): VirtualService.networking.istio.io \"reviews\" is invalid: spec.http[0].timeout: Invalid value: \"0s\": must be a valid duration greater than 1ms"
    );
    assert!(
        outcome.stderr.contains(&expected),
        "expected:\n{expected}\nstderr:\n{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains(
            "= help: caused by: spec.http[0].timeout: Invalid value: \"0s\": must be a valid duration greater than 1ms"
        ),
        "{}",
        outcome.stderr
    );
}

#[test]
#[ignore = "needs MESHSHIFT_REAL_KUBECONFIG and MESHSHIFT_FIXTURES (.ci/run provides them)"]
fn gateway_api_experimental_crds_apply() {
    let namespace = unique_namespace("gwapi");
    runbook(
        &namespace,
        r#"
        let c = cluster(param("TARGET"));
        let crds = load(param("CRDS") + "/gateway-api-crd-v1.6.0-experimental.yaml");
        let applied = c.apply(crds, #{quiet: true});
        print(applied.len() == crds.len() && applied.all(|r| ["created", "configured", "unchanged"].contains(r.action)));
        print(c.wait("CustomResourceDefinition", "httproutes.gateway.networking.k8s.io", "", "Established", "30s").kind);
        "#,
    )
    .stdout("true\nCustomResourceDefinition\n")
    .run();
}

#[test]
#[ignore = "needs MESHSHIFT_REAL_KUBECONFIG (.ci/run provides it)"]
fn an_indexed_job_gets_its_pods_from_the_controller_manager() {
    let namespace = unique_namespace("indexed");
    runbook(
        &namespace,
        r#"
        let c = cluster(param("SOURCE"));
        let ns = param("NS");
        c.apply([
            #{apiVersion: "v1", kind: "Namespace", metadata: #{name: ns}},
            #{apiVersion: "batch/v1", kind: "Job", metadata: #{name: "shards", namespace: ns},
              spec: #{completionMode: "Indexed", completions: 3, parallelism: 3,
                      template: #{spec: #{restartPolicy: "Never", containers: [#{name: "c", image: "busybox"}]}}}},
        ], #{quiet: true});
        print(c.get("Job", "shards", ns).spec.completionMode);
        let pods = [];
        for attempt in 0..300 {
            pods = c.list("Pod", #{namespace: ns});
            if pods.len() == 3 { break; }
            sleep(0.1);
        }
        let indexes = pods.map(|p| p.metadata.annotations["batch.kubernetes.io/job-completion-index"]);
        indexes.sort();
        print(indexes);
        "#,
    )
    .stdout("Indexed\n[\"0\", \"1\", \"2\"]\n")
    .run();
}
