//! `run --plan` rehearses a whole run: later steps see what earlier steps would have written,
//! nothing waits or sends traffic, nothing changes, and the run ends with its plan.

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sim_env_support::{TestEnv, guide_source_setup, repo_path, text};
use crate::test::{Test, meshshift_binary};

/// The resourceVersion of every object of every listable kind, one line per object.
fn all_versions(env: &TestEnv, context: &str) -> String {
    let kinds = env.kubectl_ok(context, &["api-resources", "--verbs=list", "-o", "name"]);
    let kinds: Vec<&str> = kinds.lines().filter(|k| !k.is_empty()).collect();
    assert!(kinds.len() > 20, "{kinds:?}");
    let listed = env.kubectl_ok(
        context,
        &[
            "get",
            &kinds.join(","),
            "-A",
            "-o",
            "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.resourceVersion}{\"\\n\"}{end}",
        ],
    );
    let mut lines: Vec<&str> = listed.lines().collect();
    lines.sort();
    lines.join("\n")
}

/// A listener that counts the connections made to it.
fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer);
        }
    });
    (address, count)
}

#[test]
fn a_plan_of_the_migration_completes_every_step_changes_nothing_and_sends_nothing() {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    env.az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    let source_gateway = env.service_address("sim-source", "istio-system", "istio-ingressgateway");
    let target_gateway = env.service_address(
        "sim-target",
        "aks-istio-ingress",
        "aks-istio-ingressgateway-external",
    );
    // Any request meshshift sent to either gateway would arrive here instead.
    let (trap, connections) = counting_listener();
    let connect_to = format!("{source_gateway}={trap},{target_gateway}={trap}");
    let source_before = all_versions(&env, "sim-source");
    let target_before = all_versions(&env, "sim-target");

    let started = std::time::Instant::now();
    let output = Command::new(meshshift_binary())
        .arg("--state-dir")
        .arg(env.dir.path().join("state"))
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args([
            "run",
            &repo_path("runbooks/migrate-oss-istio-to-aks.rhai"),
            "--plan",
            "--yes",
            "--set",
            "SOURCE_CLUSTER=sim-source",
            "--set",
            "TARGET_CLUSTER=sim-target",
        ])
        .env("NO_COLOR", "1")
        .env("MESHSHIFT_CONNECT_TO", &connect_to)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("meshshift runs");
    let elapsed = started.elapsed();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for part in [
        "] Prechecks",
        "Shift traffic to the target",
        "10%: planned (no requests sent; taken as a pass)",
        "100%: planned (no requests sent; taken as a pass)",
        "Plan (nothing was changed):",
        "  sim-source: ",
        "  sim-target: ",
        "    create Namespace/bookinfo",
        "    create ServiceEntry/bookinfo/target-cluster-http",
        "    change VirtualService/bookinfo/bookinfo",
        "  traffic to the target: 10%, 25%, 50%, 100% (no requests sent)",
        " succeeded after ",
    ] {
        assert!(
            stdout.contains(part),
            "missing {part:?}\n{stdout}\n{stderr}"
        );
    }
    // The shift step read the VirtualService its previous step planned (the bug this fixes
    // stopped at "is not in virtual service").
    assert!(!stdout.contains("is not in virtual service"), "{stdout}");
    assert!(elapsed.as_secs() < 30, "the plan took {elapsed:?}");

    let runs = env.dir.path().join("state/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("plan.json")).unwrap()).unwrap();
    let mut clusters: Vec<&str> = plan["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    clusters.sort();
    assert_eq!(clusters, ["sim-source", "sim-target"], "{plan:#}");
    let weights: Vec<f64> = plan["traffic"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["weight"].as_f64().unwrap())
        .collect();
    assert_eq!(weights, [10.0, 25.0, 50.0, 100.0]);
    let writes_on = |name: &str| {
        plan["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cluster"] == name)
            .unwrap()["writes"]
            .clone()
    };
    let source_writes = writes_on("sim-source");
    assert!(
        source_writes
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["kind"] == "VirtualService"
                && w["diff"].as_str().unwrap().contains("v2.example.com")),
        "{plan:#}"
    );
    // bookinfo exists on the source: every write there was validated by the server; on the
    // target the namespace is planned, so its objects were validated in `default`.
    for write in source_writes.as_array().unwrap() {
        assert!(write["note"].is_null(), "{write:#}");
    }
    assert!(
        writes_on("sim-target")
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["note"] == "validated in namespace default: namespace planned"),
        "{plan:#}"
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("## Plan") && report.contains("### sim-target"),
        "{report}"
    );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("<h2>Plan</h2>") && html.contains("<h3>sim-target</h3>"),
        "{html}"
    );

    assert_eq!(all_versions(&env, "sim-source"), source_before);
    assert_eq!(all_versions(&env, "sim-target"), target_before);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "requests reached a gateway"
    );
    println!("plan of the migration: {elapsed:?}");
}

#[test]
fn every_shipped_runbook_completes_under_run_sim_plan() {
    let mut runbooks: Vec<String> = std::fs::read_dir(repo_path("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    runbooks.sort();
    assert!(runbooks.len() >= 4, "{runbooks:?}");
    for runbook in &runbooks {
        let outcome = Test::new()
            .args(&["run", runbook, "--sim", "--plan", "--yes"])
            .stdout_contains(&["Plan (nothing was changed):", " succeeded after "])
            .run();
        let runs = outcome.dir.path().join(".meshshift/runs");
        let run = std::fs::read_dir(&runs)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert!(run.join("plan.json").is_file(), "{runbook}");
    }
}

/// `(cluster, "action Kind/namespace/name")` for every write, sorted: a batch is written
/// CRDs first, then Namespaces, then the rest, and planned in the order it was given.
fn sorted(mut writes: Vec<(String, String)>) -> Vec<(String, String)> {
    writes.sort();
    writes
}

#[test]
fn the_plans_writes_are_the_writes_of_the_real_run_from_the_same_state() {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    env.az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    let planned = crate::sim_env_support::migrate(&env, &["--plan"]);
    let (stdout, stderr) = text(&planned);
    assert!(planned.status.success(), "{stdout}\n{stderr}");
    let runs = env.dir.path().join("state/runs");
    let only_run = || {
        std::fs::read_dir(&runs)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    };
    let plan_dir = only_run();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plan_dir.join("plan.json")).unwrap())
            .unwrap();
    let mut plan_writes = Vec::new();
    for cluster in plan["clusters"].as_array().unwrap() {
        for write in cluster["writes"].as_array().unwrap() {
            let place = match write["namespace"].as_str() {
                Some(namespace) => format!(
                    "{}/{namespace}/{}",
                    write["kind"].as_str().unwrap(),
                    write["name"].as_str().unwrap()
                ),
                None => format!(
                    "{}/{}",
                    write["kind"].as_str().unwrap(),
                    write["name"].as_str().unwrap()
                ),
            };
            plan_writes.push((
                cluster["cluster"].as_str().unwrap().to_string(),
                format!("{} {place}", write["action"].as_str().unwrap()),
            ));
        }
    }
    std::fs::remove_dir_all(&plan_dir).unwrap();

    let real = crate::sim_env_support::migrate(&env, &[]);
    let (stdout, stderr) = text(&real);
    assert!(real.status.success(), "{stdout}\n{stderr}");
    let report = std::fs::read_to_string(only_run().join("report.md")).unwrap();
    // The report lists every change that was not `unchanged`: `- cluster: Kind/ns/name action`.
    let real_writes: Vec<(String, String)> = report
        .lines()
        .filter_map(|line| {
            let (cluster, rest) = line.strip_prefix("- ")?.split_once(": ")?;
            let (place, action) = rest.rsplit_once(' ')?;
            let action = match action {
                "created" => "create",
                "configured" | "patched" => "change",
                "deleted" => "delete",
                _ => return None,
            };
            Some((cluster.to_string(), format!("{action} {place}")))
        })
        .collect();
    assert!(!real_writes.is_empty(), "{report}");
    assert_eq!(sorted(plan_writes), sorted(real_writes));
}

#[test]
fn later_reads_see_planned_creates_patches_and_deletes_and_planned_namespaces_are_validated_elsewhere()
 {
    let outcome = Test::new()
        .runbook(
            r#"
            let c = cluster("sim-source");
            step("Plan a namespace and a ConfigMap in it", || {
                c.apply([#{apiVersion: "v1", kind: "Namespace", metadata: #{name: "planned"}},
                         #{apiVersion: "v1", kind: "ConfigMap", metadata: #{name: "one", namespace: "planned"}, data: #{a: "1"}}], #{quiet: true});
            });
            step("Read and change what was planned", || {
                if c.get("Namespace", "planned") == () { throw "the planned namespace is not seen"; }
                c.apply(#{apiVersion: "v1", kind: "ConfigMap", metadata: #{name: "two", namespace: "planned"}, data: #{b: "2"}}, #{quiet: true});
                c.patch("ConfigMap", "one", "planned", #{data: #{a: "patched"}}, #{quiet: true});
                let names = c.list("ConfigMap", #{namespace: "planned"}).map(|o| o.metadata.name);
                names.sort();
                print(`listed: ${names}`);
                print(`one: ${c.get("ConfigMap", "one", "planned").data.a}`);
                c.delete("ConfigMap", "two", "planned", #{quiet: true});
                print(`two after delete: ${c.get("ConfigMap", "two", "planned")}`);
                print(`waited: ${c.wait("ConfigMap", "one", "planned", "deleted", "1m") == ()}`);
            });
            step("Plan a Secret", || {
                c.apply(#{apiVersion: "v1", kind: "Secret", metadata: #{name: "s", namespace: "planned"},
                          stringData: #{password: "hunter2-in-the-clear"}});
            });
            step("Plan an invalid object in a planned namespace", || {
                try {
                    c.apply(#{apiVersion: "apps/v1", kind: "Deployment", metadata: #{name: "bad", namespace: "planned"},
                              spec: #{replicas: "three"}});
                } catch (error) {
                    print(`refused: ${error.message}`);
                }
            });
            "#,
        )
        .args(&["--sim", "--plan"])
        .stdout_contains(&[
            "listed: [\"one\", \"two\"]",
            "one: patched",
            "two after delete: \n",
            "would wait for ConfigMap one to be deleted",
            "refused: cluster `sim-source`: nothing was applied: Deployment/planned/bad failed validation (server-side dry run in namespace `default`, as its own is planned)",
            "  sim-source: 4 to create, 1 to change, 1 to delete, 0 unchanged",
            "    create Secret/planned/s (validated in namespace default: namespace planned)",
            "    create ConfigMap/planned/two (validated in namespace default: namespace planned)",
            "    change ConfigMap/planned/one",
            "    delete ConfigMap/planned/two",
        ])
        .run();
    // Secret values are masked in what is printed, the plan and the report.
    assert!(!outcome.stdout.contains("hunter2"), "{}", outcome.stdout);
    let runs = outcome.dir.path().join(".meshshift/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for file in ["plan.json", "report.md", "report.html"] {
        let text = std::fs::read_to_string(run.join(file)).unwrap();
        assert!(
            text.contains("Secret") && !text.contains("hunter2"),
            "{file}: {text}"
        );
    }
}
