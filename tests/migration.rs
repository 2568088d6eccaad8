//! The migration runbook end to end on simulated clusters: the main job from one command, a
//! detached simulator set up with kubectl alone and checked with kubectl and curl afterwards,
//! retirement, and the runs that must stop: a blocked kind, a revision mismatch, a target that
//! starts failing half-way, pods that were not injected.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::sim_env_support::{TestEnv, guide_source_setup, migrate, repo_path, text, vs_weights};
use crate::test::{Test, meshshift_binary};

const RUNBOOK: &str = "runbooks/migrate-oss-istio-to-aks.rhai";

/// Quicker settings for the runs that test something other than the shift's statistics.
const QUICK: &[&str] = &[
    "--set",
    "STEPS=50,100",
    "--set",
    "PROPAGATION=1s",
    "--set",
    "SOAK_SECONDS=0",
];

/// Some line holds all the parts, in order (table columns are padded).
fn has_line(text: &str, parts: &[&str]) -> bool {
    text.lines().any(|line| {
        let mut rest = line;
        parts.iter().all(|part| match rest.find(part) {
            Some(at) => {
                rest = &rest[at + part.len()..];
                true
            }
            None => false,
        })
    })
}

/// resourceVersions of everything a run could touch, per object.
fn versions(env: &TestEnv, context: &str) -> String {
    env.kubectl_ok(context, &[
        "get",
        "namespaces,configmaps,services,deployments,virtualservices,destinationrules,gateways,serviceentries",
        "-A",
        "-o",
        "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.resourceVersion}{\"\\n\"}{end}",
    ])
}

#[test]
fn the_main_job_runs_from_one_command_and_writes_its_report() {
    let outcome = Test::new()
        .args(&["run", &repo_path(RUNBOOK), "--sim", "--yes"])
        .stdout_contains(&[
            "simulated clusters sim-source and sim-target started",
            "==> [5] Prechecks",
            "maps to supported add-on revision asm-1-30",
            "1 namespaces labelled istio.io/rev=asm-1-30",
            "6 pods on the target run with istio-proxy",
            "10%: [",
            "25%: [",
            "50%: [",
            "100%: [",
            "All traffic through sim-source's ingress now reaches sim-target.",
            " succeeded after ",
        ])
        .run();
    let runs = outcome.dir.path().join(".meshshift/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("- outcome: **succeeded**"), "{report}");
    assert!(
        report.contains("## Prechecks") && report.contains("| info | revision | Istio 1.30.2 |"),
        "{report}"
    );
    let shift_rows = report
        .lines()
        .filter(|l| l.starts_with("| ") && l.ends_with(" | passed |"))
        .count();
    assert_eq!(shift_rows, 4, "{report}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert_eq!(
        html.matches("<title>observed ").count(),
        4,
        "four observed bars"
    );
}

#[test]
fn a_detached_simulator_set_up_with_kubectl_migrates_and_retires() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let binary = meshshift_binary();
    let meshshift = |args: &[&str], extra_env: &[(&str, &str)]| {
        let mut command = Command::new(&binary);
        command
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        command.output().expect("meshshift runs")
    };
    let up = meshshift(&["sim", "up", "--detach"], &[]);
    assert!(up.status.success(), "{:?}", text(&up));
    let _down = StopOnDrop(&binary, &state);
    let kubeconfig = state.join("sim/kubeconfig");
    let kubectl_in = |context: &str, args: &[&str]| {
        let output = Command::new("kubectl")
            .env("KUBECONFIG", &kubeconfig)
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
    };
    guide_source_setup(&|args| kubectl_in("sim-source", args));
    // As a user would with the Azure CLI (here the simulated one on PATH).
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let shim = bin.join("az");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nexec '{}' --state-dir '{}' sim az \"$@\"\n",
            binary.display(),
            state.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let enabled = Command::new("az")
        .env("PATH", &path)
        .args([
            "aks",
            "mesh",
            "enable-ingress-gateway",
            "-g",
            "rg",
            "-n",
            "sim-target",
            "--ingress-gateway-type",
            "external",
        ])
        .output()
        .unwrap();
    assert!(enabled.status.success(), "{:?}", text(&enabled));

    let kubeconfig_env = kubeconfig.to_string_lossy().into_owned();
    let runbook = repo_path(RUNBOOK);
    let run = meshshift(
        &[
            "run",
            &runbook,
            "--set",
            "SOURCE_CLUSTER=sim-source",
            "--set",
            "TARGET_CLUSTER=sim-target",
            "--yes",
            "--set",
            "STEPS=25,100",
        ],
        &[("KUBECONFIG", &kubeconfig_env)],
    );
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");

    // kubectl confirms the end state.
    let containers = kubectl_in(
        "sim-target",
        &[
            "get",
            "pods",
            "-n",
            "bookinfo",
            "-o",
            "jsonpath={range .items[*]}{.spec.containers[*].name}{\"\\n\"}{end}",
        ],
    );
    assert_eq!(containers.lines().count(), 6, "{containers}");
    assert!(
        containers
            .lines()
            .all(|l| l.split(' ').any(|c| c == "istio-proxy")),
        "{containers}"
    );
    assert_eq!(
        vs_weights(&|args| kubectl_in("sim-source", args)),
        "productpage=0 v2.example.com=100"
    );

    // The guide's own verification loop through the source gateway: only target pods answer.
    let gateway = kubectl_in(
        "sim-source",
        &[
            "get",
            "service",
            "istio-ingressgateway",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}:{.spec.ports[?(@.name==\"http2\")].port}",
        ],
    );
    let target_pods = kubectl_in(
        "sim-target",
        &[
            "get",
            "pods",
            "-n",
            "bookinfo",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    let mut served = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..100 {
        let page = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "5",
                &format!("http://{}/productpage", gateway.trim()),
            ])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&page.stdout);
        let pod = body
            .lines()
            .skip_while(|l| !l.contains("Reviews served by"))
            .nth(1)
            .unwrap_or("")
            .trim()
            .to_string();
        *served.entry(pod).or_default() += 1;
    }
    assert!(
        served
            .keys()
            .all(|pod| target_pods.split(' ').any(|p| p == pod)),
        "answers from: {served:?}"
    );

    // A second run retires the source: the temporary pieces go, then the (simulated) cluster.
    let retire = meshshift(
        &[
            "run",
            &runbook,
            "--set",
            "SOURCE_CLUSTER=sim-source",
            "--set",
            "TARGET_CLUSTER=sim-target",
            "--yes",
            "--set",
            "RETIRE_SOURCE=true",
            "--set",
            "CONFIRM=sim-source",
            "--allow-exec",
            "az",
            "--set",
            "TARGET_RESOURCE_GROUP=rg",
            "--set",
            "LOCATION=westeurope",
        ],
        &[("KUBECONFIG", &kubeconfig_env), ("PATH", &path)],
    );
    let (stdout, stderr) = text(&retire);
    assert!(retire.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("already sends 100% to the target"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ServiceEntry/bookinfo/target-cluster-http deleted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("$ az aks delete --resource-group rg --name sim-source --yes"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Azure: target sim-target in resource group rg, source sim-source in rg, location westeurope (from the kubeconfig unless set"
        ),
        "{stdout}"
    );
    let entries = kubectl_in(
        "sim-source",
        &["get", "serviceentries", "-n", "bookinfo", "-o", "name"],
    );
    assert_eq!(entries.trim(), "");
    let weights = kubectl_in(
        "sim-source",
        &[
            "get",
            "virtualservice",
            "bookinfo",
            "-n",
            "bookinfo",
            "-o",
            "jsonpath={range .spec.http[0].route[*]}{.destination.host} {end}",
        ],
    );
    assert_eq!(weights.trim(), "productpage");
    // The retired source's gateway no longer answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "2",
                &format!("http://{}/productpage", gateway.trim()),
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&page.stdout) == "000" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the retired source still answers"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops a detached simulator when the test ends, passing or not.
struct StopOnDrop<'a>(&'a Path, &'a Path);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.0)
            .arg("--state-dir")
            .arg(self.1)
            .args(["sim", "down"])
            .output();
    }
}

#[test]
fn a_blocked_kind_stops_at_prechecks_and_changes_nothing() {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    env.apply("sim-source", "bookinfo", "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: auth}\nspec: {url: 'oci://example.com/auth:1'}\n");
    let (source_before, target_before) =
        (versions(&env, "sim-source"), versions(&env, "sim-target"));
    let run = migrate(&env, QUICK);
    let (stdout, stderr) = text(&run);
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        has_line(
            &stdout,
            &[
                "blocker",
                "blocked kind",
                "WasmPlugin/bookinfo/auth",
                "the add-on refuses WasmPlugin objects"
            ]
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains("error: 1 blocker(s) found; nothing was changed"),
        "{stderr}"
    );
    assert_eq!(versions(&env, "sim-source"), source_before);
    assert_eq!(versions(&env, "sim-target"), target_before);
}

#[test]
fn a_revision_other_than_the_sources_stops() {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    let target_before = versions(&env, "sim-target");
    let mut args = QUICK.to_vec();
    args.extend(["--set", "ASM_REVISION=asm-1-29"]);
    let run = migrate(&env, &args);
    let (stdout, stderr) = text(&run);
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        has_line(
            &stdout,
            &[
                "blocker",
                "revision",
                "asm-1-29",
                "differs from the source's Istio 1.30.2 (asm-1-30)"
            ]
        ),
        "{stdout}"
    );
    assert!(
        has_line(
            &stdout,
            &[
                "blocker",
                "target",
                "the add-on runs [\"asm-1-30\"], not asm-1-29"
            ]
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains("error: 2 blocker(s) found; nothing was changed"),
        "{stderr}"
    );
    assert_eq!(versions(&env, "sim-target"), target_before);
}

#[test]
fn a_target_failing_at_25_percent_rolls_back_to_the_last_good_weights() {
    let env = Arc::new(TestEnv::start());
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    env.az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    // Break the target's productpage as soon as the source sends it 25%.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (env, done) = (env.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let weights = env.kubectl(
                    "sim-source",
                    &[
                        "get",
                        "virtualservice",
                        "bookinfo",
                        "-n",
                        "bookinfo",
                        "-o",
                        "jsonpath={.spec.http[0].route[1].weight}",
                    ],
                );
                if String::from_utf8_lossy(&weights.stdout).trim() == "25" {
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
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        })
    };
    let run = migrate(
        &env,
        &["--set", "STEPS=10,25,50,100", "--set", "SOAK_SECONDS=0"],
    );
    done.store(true, Ordering::SeqCst);
    assert!(watcher.join().unwrap(), "the shift never reached 25%");
    let (stdout, stderr) = text(&run);
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("step 25% failed: error rate"), "{stdout}");
    assert!(stderr.contains("traffic shift rolled back to"), "{stderr}");
    assert_eq!(
        vs_weights(&|args| env.kubectl_ok("sim-source", args)),
        "productpage=90 v2.example.com=10",
        "the last good step was 10%"
    );
}

#[test]
fn retiring_needs_a_shift_that_ends_at_100_percent() {
    Test::new()
        .args(&[
            "run",
            &repo_path(RUNBOOK),
            "--sim",
            "--yes",
            "--set",
            "STEPS=10,50",
            "--set",
            "RETIRE_SOURCE=true",
        ])
        .status(1)
        .stderr_contains(&[
            "error: RETIRE_SOURCE=true needs STEPS to end at 100 (got [10, 50]); nothing was changed",
        ])
        .run();
}

#[test]
fn pods_that_opt_out_of_injection_are_respected_not_reported_missing() {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    // One workload opts out of injection: it runs without istio-proxy on both clusters.
    env.kubectl_ok(
        "sim-source",
        &[
            "patch",
            "deployment",
            "ratings-v1",
            "-n",
            "bookinfo",
            "--type=merge",
            "-p",
            r#"{"spec":{"template":{"metadata":{"labels":{"sidecar.istio.io/inject":"false"}}}}}"#,
        ],
    );
    env.kubectl_ok(
        "sim-source",
        &[
            "rollout",
            "status",
            "deployment/ratings-v1",
            "-n",
            "bookinfo",
            "--timeout=60s",
        ],
    );
    env.az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    let run = migrate(&env, QUICK);
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(
        has_line(
            &stdout,
            &[
                "bookinfo/ratings-v1-",
                "opts out of injection (sidecar.istio.io/inject=false), as on the source"
            ]
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("5 pods on the target run with istio-proxy"),
        "{stdout}"
    );
}

/// The guide's source set-up exactly: bookinfo in `default`, labelled with kubectl.
fn guide_setup_in_default(env: &TestEnv) {
    env.kubectl_ok(
        "sim-source",
        &["label", "namespace", "default", "istio-injection=enabled"],
    );
    for file in [
        "bookinfo.yaml",
        "destination-rule-all.yaml",
        "bookinfo-gateway.yaml",
    ] {
        env.kubectl_ok(
            "sim-source",
            &[
                "apply",
                "-n",
                "default",
                "-f",
                &repo_path(&format!("runbooks/demo/{file}")),
            ],
        );
    }
    env.kubectl_ok(
        "sim-source",
        &[
            "wait",
            "--for=condition=Available",
            "deployment",
            "--all",
            "-n",
            "default",
            "--timeout=60s",
        ],
    );
}

#[test]
fn the_guides_layout_in_default_migrates_without_namespaces_and_the_guides_loop_sees_the_target() {
    let env = TestEnv::start();
    guide_setup_in_default(&env);
    env.az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    let run = migrate(&env, QUICK);
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "namespaces to move, found by their injection labels: [\"default\"] (NAMESPACES overrides)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "app found: VirtualService default/bookinfo on Gateway default/bookinfo-gateway"
        ),
        "{stdout}"
    );
    assert!(
        has_line(
            &stdout,
            &[
                "info",
                "namespace",
                "default",
                "moved; labelled istio-injection=enabled"
            ]
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("6 pods on the target run with istio-proxy"),
        "{stdout}"
    );
    // The simulated source runs a stock install's MeshConfig: the fields the add-on sets
    // itself are no blocker.
    for field in ["rootNamespace", "defaultConfig.discoveryAddress"] {
        assert!(
            has_line(
                &stdout,
                &[
                    "info",
                    "MeshConfig",
                    field,
                    "managed by the add-on",
                    "a stock value"
                ]
            ),
            "{stdout}"
        );
    }
    assert!(!has_line(&stdout, &["blocker"]), "{stdout}");
    // The API server's own Service was neither copied nor taken over.
    assert!(!stdout.contains("Service/default/kubernetes"), "{stdout}");
    let managers = env.kubectl_ok(
        "sim-target",
        &[
            "get",
            "service",
            "kubernetes",
            "-n",
            "default",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
    );
    assert!(!managers.contains("meshshift"), "managers: {managers}");
    let labels = env.kubectl_ok(
        "sim-target",
        &[
            "get",
            "namespace",
            "default",
            "-o",
            "jsonpath={.metadata.labels}",
        ],
    );
    assert!(
        labels.contains("\"istio.io/rev\":\"asm-1-30\"") && !labels.contains("istio-injection"),
        "{labels}"
    );

    // The guide's verification loop: 100 requests through the source's ingress, the pod after
    // "Reviews served by", and which cluster has it.
    let gateway = env.service_address("sim-source", "istio-system", "istio-ingressgateway");
    let target_pods = env.kubectl_ok(
        "sim-target",
        &[
            "get",
            "pods",
            "-n",
            "default",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    let mut served = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..100 {
        let (status, body) = env.get(&gateway, "/productpage", &[]);
        assert_eq!(status, 200, "{body}");
        let pod = crate::sim_env_support::reviews_pod(&body).unwrap_or_default();
        *served.entry(pod).or_default() += 1;
    }
    assert!(
        served
            .keys()
            .all(|pod| target_pods.split(' ').any(|p| p == pod)),
        "answers from: {served:?}"
    );
}

#[test]
#[ignore = "needs MESHSHIFT_FIXTURES: the shared upstream fixtures (.ci/run sets it)"]
fn a_stock_open_source_meshconfig_is_no_blocker() {
    let fixtures = crate::test::fixtures_dir();
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    // The istio ConfigMap exactly as the chart renders it for a default install.
    let rendered = std::fs::read_to_string(
        fixtures.join("istio/profiles/rendered-default-install-excerpt.yaml"),
    )
    .unwrap();
    let configmap = rendered
        .split("\n---")
        .find(|doc| doc.contains("\nkind: ConfigMap") && doc.contains("\n  name: istio\n"))
        .expect("the istio ConfigMap");
    env.kubectl_stdin(
        "sim-source",
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        configmap,
    );
    let run = crate::sim_env_support::meshshift(
        &env,
        &[
            "run",
            &repo_path("runbooks/precheck-aks-addon.rhai"),
            "--set",
            "SOURCE_CLUSTER=sim-source",
        ],
    );
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(!has_line(&stdout, &["blocker"]), "{stdout}");
    assert!(
        has_line(
            &stdout,
            &[
                "info",
                "MeshConfig",
                "defaultConfig.discoveryAddress",
                "managed by the add-on",
                "a stock value"
            ]
        ),
        "{stdout}"
    );
    // The excerpt's rootNamespace differs from the control plane's: a warning saying what changes.
    assert!(
        has_line(
            &stdout,
            &[
                "warning",
                "MeshConfig",
                "rootNamespace",
                "the target uses aks-istio-system instead of istio-control"
            ]
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("can move to the AKS Istio add-on"),
        "{stdout}"
    );
}

#[test]
fn a_meshconfig_field_the_add_on_refuses_blocks_until_its_loss_is_accepted() {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    env.kubectl_ok(
        "sim-source",
        &[
            "patch",
            "configmap",
            "istio",
            "-n",
            "istio-system",
            "--type=merge",
            "-p",
            r#"{"data":{"mesh":"accessLogFile: /dev/stdout\nenableAutoMtls: true\nprotocolDetectionTimeout: 5s\n"}}"#,
        ],
    );
    let precheck = |extra: &[&str]| {
        let runbook = repo_path("runbooks/precheck-aks-addon.rhai");
        let mut args = vec![
            "run",
            runbook.as_str(),
            "--set",
            "SOURCE_CLUSTER=sim-source",
        ];
        args.extend_from_slice(extra);
        let run = crate::sim_env_support::meshshift(&env, &args);
        let (stdout, stderr) = text(&run);
        (run.status.code(), stdout, stderr)
    };
    let (code, stdout, stderr) = precheck(&[]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        has_line(
            &stdout,
            &[
                "blocker",
                "MeshConfig",
                "protocolDetectionTimeout",
                "ACCEPT_MESHCONFIG_LOSS=protocolDetectionTimeout"
            ]
        ),
        "{stdout}"
    );
    assert!(
        has_line(
            &stdout,
            &["info", "MeshConfig", "enableAutoMtls", "Istio's default"]
        ),
        "{stdout}"
    );
    let (code, stdout, stderr) =
        precheck(&["--set", "ACCEPT_MESHCONFIG_LOSS=protocolDetectionTimeout"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        has_line(
            &stdout,
            &[
                "warning",
                "MeshConfig",
                "protocolDetectionTimeout",
                "loss accepted"
            ]
        ),
        "{stdout}"
    );
}

#[test]
fn azure_names_come_from_the_kubeconfig_cluster_entry_and_no_az_command_has_an_empty_argument() {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    // A context renamed as `az aks get-credentials --admin` or a user would: the cluster entry
    // keeps the AKS cluster's name.
    let renamed = env.dir.path().join("renamed-kubeconfig");
    std::fs::copy(env.kubeconfig(), &renamed).unwrap();
    let rename = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&renamed)
        .args(["config", "rename-context", "sim-target", "shop-prod-admin"])
        .output()
        .unwrap();
    assert!(rename.status.success(), "{:?}", text(&rename));
    let mappings: Vec<String> = env
        .env()
        .connect_to()
        .into_iter()
        .map(|(from, to)| format!("{from}={to}"))
        .collect();
    let run = Command::new(meshshift_binary())
        .arg("--state-dir")
        .arg(env.dir.path().join("state"))
        .arg("--kubeconfig")
        .arg(&renamed)
        .args([
            "run",
            &repo_path(RUNBOOK),
            "--yes",
            "--set",
            "SOURCE_CLUSTER=sim-source",
            "--set",
            "TARGET_CLUSTER=shop-prod-admin",
        ])
        .args(QUICK)
        .env("NO_COLOR", "1")
        .env("MESHSHIFT_CONNECT_TO", mappings.join(","))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&run);
    // The target's ingress gateway is not enabled: the run says the command to run.
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "run 'az aks mesh enable-ingress-gateway --resource-group <resource-group> --name sim-target --ingress-gateway-type external'"
        ),
        "{stderr}"
    );
    let command = stderr
        .lines()
        .find(|l| l.contains("az aks mesh"))
        .unwrap_or_default();
    assert!(!command.contains("  --"), "an empty argument: {command}");
}

#[test]
fn egress_gateways_and_a_plug_in_ca_are_reported_with_what_to_do() {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    env.apply(
        "sim-source",
        "istio-system",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: istio-egressgateway, labels: {app: istio-egressgateway, istio: egressgateway}}\nspec:\n  selector: {matchLabels: {app: istio-egressgateway, istio: egressgateway}}\n  template:\n    metadata: {labels: {app: istio-egressgateway, istio: egressgateway}}\n    spec: {containers: [{name: istio-proxy, image: docker.io/istio/proxyv2:1.30.2}]}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: cacerts}\nstringData: {ca-cert.pem: x, ca-key.pem: x, root-cert.pem: x, cert-chain.pem: x}\n",
    );
    let run = crate::sim_env_support::meshshift(
        &env,
        &[
            "run",
            &repo_path("runbooks/precheck-aks-addon.rhai"),
            "--set",
            "SOURCE_CLUSTER=sim-source",
        ],
    );
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(
        has_line(
            &stdout,
            &[
                "warning",
                "egress gateway",
                "Deployment/istio-system/istio-egressgateway",
                "az aks mesh enable-egress-gateway"
            ]
        ),
        "{stdout}"
    );
    assert!(
        has_line(
            &stdout,
            &[
                "warning",
                "plug-in CA",
                "Secret/istio-system/cacerts",
                "--key-vault-id"
            ]
        ),
        "{stdout}"
    );
}
