//! Unmodified kubectl against the simulated API server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::sim_support::{TestServer, failed, fixture, ok};
use crate::test::{fixtures_dir, yaml_files};

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn jsonpath(server: &TestServer, args: &[&str], path: &str) -> String {
    let expression = format!("jsonpath={path}");
    let mut all: Vec<&str> = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", &expression]);
    ok(&server.kubectl(&all))
}

#[test]
fn apply_client_side_then_unchanged_then_server_side() {
    let server = TestServer::start();
    let manifest = path_arg(&fixture("bookinfo-mini.yaml"));
    let created = ok(&server.kubectl(&["apply", "-f", &manifest]));
    for line in [
        "service/reviews created",
        "serviceaccount/bookinfo-reviews created",
        "deployment.apps/reviews-v1 created",
        "deployment.apps/productpage-v1 created",
    ] {
        assert!(created.contains(line), "{line} missing from:\n{created}");
    }
    let again = ok(&server.kubectl(&["apply", "-f", &manifest]));
    assert_eq!(again.matches("unchanged").count(), 5, "{again}");

    let versions = || {
        jsonpath(
            &server,
            &["deploy,svc,sa", "-l", "app"],
            "{range .items[*]}{.metadata.resourceVersion} {end}",
        )
    };
    let before_ssa = versions();
    let applied = ok(&server.kubectl(&["apply", "--server-side", "-f", &manifest]));
    assert_eq!(
        applied.matches("serverside-applied").count(),
        5,
        "{applied}"
    );
    let after_first = versions();
    let reapplied = ok(&server.kubectl(&["apply", "--server-side", "-f", &manifest]));
    assert_eq!(reapplied.matches("serverside-applied").count(), 5);
    assert_eq!(
        versions(),
        after_first,
        "an unchanged server-side apply keeps resourceVersions"
    );
    assert!(!before_ssa.is_empty());
    let managers = jsonpath(
        &server,
        &["deploy", "reviews-v1"],
        "{.metadata.managedFields[*].manager}",
    );
    assert!(managers.split(' ').any(|m| m == "kubectl"), "{managers}");
}

#[test]
fn kubectl_validation_refuses_unknown_fields_unless_turned_off() {
    let server = TestServer::start();
    let typo =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo}\ndata: {a: b}\ndatta: {c: d}\n";
    let refused = failed(&server.kubectl_stdin(&["apply", "-f", "-"], typo));
    assert!(
        refused.contains("strict decoding error: unknown field \"datta\""),
        "{refused}"
    );
    let applied = server.kubectl_stdin(&["apply", "--validate=warn", "-f", "-"], typo);
    let warned = String::from_utf8_lossy(&applied.stderr).into_owned();
    ok(&applied);
    assert!(warned.contains("unknown field \"datta\""), "{warned}");
    assert_eq!(jsonpath(&server, &["cm", "typo"], "{.data.a}"), "b");
}

#[test]
fn get_prints_tables_yaml_json_and_jsonpath() {
    let server = TestServer::start();
    ok(&server.kubectl(&["apply", "-f", &path_arg(&fixture("bookinfo-mini.yaml"))]));
    let table = ok(&server.kubectl(&["get", "deployments"]));
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(
        table.contains("reviews-v1") && table.contains("0/1"),
        "{table}"
    );
    let wide = ok(&server.kubectl(&["get", "deployments", "-o", "wide"]));
    assert!(
        wide.contains("example.com/bookinfo/reviews-v1:1.0"),
        "{wide}"
    );
    let services = ok(&server.kubectl(&["get", "svc", "reviews"]));
    assert!(
        services.contains("CLUSTER-IP") && services.contains("9080/TCP"),
        "{services}"
    );

    let yaml = ok(&server.kubectl(&["get", "deploy", "reviews-v1", "-o", "yaml"]));
    let parsed: serde_json::Value = serde_yaml::from_str(&yaml).expect("yaml output");
    assert_eq!(
        parsed["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"],
        "TCP"
    );
    assert_eq!(parsed["metadata"]["generation"], 1);
    let json = ok(&server.kubectl(&["get", "svc", "-o", "json"]));
    let list: serde_json::Value = serde_json::from_str(&json).expect("json output");
    assert_eq!(list["kind"], "List");
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(3),
        "kubernetes, reviews, productpage"
    );
    assert_eq!(
        jsonpath(&server, &["svc", "reviews"], "{.spec.ports[0].targetPort}"),
        "9080"
    );
    let by_label = jsonpath(
        &server,
        &["deploy", "-l", "app in (reviews,ratings),version=v1"],
        "{.items[*].metadata.name}",
    );
    assert_eq!(by_label, "reviews-v1");
    let failure = failed(&server.kubectl(&["get", "deploy", "nope"]));
    assert!(
        failure.contains("deployments.apps \"nope\" not found"),
        "{failure}"
    );
}

#[test]
fn label_annotate_and_patch_in_every_format() {
    let server = TestServer::start();
    ok(&server.kubectl(&["apply", "-f", &path_arg(&fixture("bookinfo-mini.yaml"))]));
    ok(&server.kubectl(&["label", "deploy", "reviews-v1", "tier=backend"]));
    ok(&server.kubectl(&["annotate", "deploy", "reviews-v1", "owner=mesh-team"]));
    assert_eq!(
        jsonpath(
            &server,
            &["deploy", "reviews-v1"],
            "{.metadata.labels.tier}"
        ),
        "backend"
    );
    assert_eq!(
        jsonpath(
            &server,
            &["deploy", "reviews-v1"],
            "{.metadata.annotations.owner}"
        ),
        "mesh-team"
    );
    let clash = failed(&server.kubectl(&["label", "deploy", "reviews-v1", "tier=frontend"]));
    assert!(clash.contains("already has a value"), "{clash}");
    ok(&server.kubectl(&["label", "deploy", "reviews-v1", "tier-"]));
    assert_eq!(
        jsonpath(
            &server,
            &["deploy", "reviews-v1"],
            "{.metadata.labels.tier}"
        ),
        ""
    );

    ok(&server.kubectl(&[
        "patch",
        "deploy",
        "reviews-v1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ]));
    ok(&server.kubectl(&[
        "patch",
        "deploy",
        "reviews-v1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/patched","value":"json"}]"#,
    ]));
    let strategic = r#"{"spec":{"template":{"spec":{"containers":[{"name":"reviews","env":[{"name":"MODE","value":"canary"}]}]}}}}"#;
    ok(&server.kubectl(&[
        "patch",
        "deploy",
        "reviews-v1",
        "--type",
        "strategic",
        "-p",
        strategic,
    ]));
    assert_eq!(
        jsonpath(&server, &["deploy", "reviews-v1"], "{.spec.replicas}"),
        "3"
    );
    assert_eq!(
        jsonpath(
            &server,
            &["deploy", "reviews-v1"],
            "{.metadata.labels.patched}"
        ),
        "json"
    );
    assert_eq!(
        jsonpath(
            &server,
            &["deploy", "reviews-v1"],
            "{.spec.template.spec.containers[0].env[*].name}"
        ),
        "MODE LOG_DIR",
        "strategic merge keeps the existing variable"
    );
    let bad = failed(&server.kubectl(&[
        "patch",
        "deploy",
        "reviews-v1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/spec/nope"}]"#,
    ]));
    assert!(bad.contains("Invalid") || bad.contains("invalid"), "{bad}");

    ok(&server.kubectl(&["rollout", "restart", "deploy/reviews-v1"]));
    let restarted = jsonpath(
        &server,
        &["deploy", "reviews-v1"],
        "{.spec.template.metadata.annotations}",
    );
    assert!(
        restarted.contains("kubectl.kubernetes.io/restartedAt"),
        "{restarted}"
    );
    ok(&server.kubectl(&["scale", "deploy/reviews-v1", "--replicas=5"]));
    assert_eq!(
        jsonpath(&server, &["deploy", "reviews-v1"], "{.spec.replicas}"),
        "5"
    );
    assert_eq!(
        jsonpath(&server, &["deploy", "reviews-v1"], "{.metadata.generation}"),
        "5"
    );
}

#[test]
fn delete_and_wait_for_delete_follow_finalizers() {
    let server = TestServer::start();
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n";
    ok(&server.kubectl_stdin(&["apply", "-f", "-"], held));
    ok(&server.kubectl(&["delete", "cm", "held", "--wait=false"]));
    let still = jsonpath(&server, &["cm", "held"], "{.metadata.deletionTimestamp}");
    assert!(!still.is_empty(), "marked for deletion");
    let mut waiter = Command::new("kubectl")
        .args(["wait", "--for=delete", "cm/held", "--timeout=20s"])
        .env("KUBECONFIG", &server.kubeconfig)
        .env("KUBECACHEDIR", server.dir.path().join("kubectl-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl wait starts");
    ok(&server.kubectl(&[
        "patch",
        "cm",
        "held",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]));
    let status = waiter.wait().expect("kubectl wait ends");
    assert!(status.success(), "kubectl wait --for=delete succeeded");
    failed(&server.kubectl(&["get", "cm", "held"]));

    ok(&server.kubectl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n"));
    let deleted = ok(&server.kubectl(&["delete", "namespace", "shop", "--timeout=20s"]));
    assert!(deleted.contains("namespace \"shop\" deleted"), "{deleted}");
    failed(&server.kubectl(&["get", "ns", "shop"]));
    ok(&server.kubectl(&[
        "delete",
        "-f",
        &path_arg(&fixture("bookinfo-mini.yaml")),
        "--ignore-not-found",
    ]));
}

#[test]
fn get_watch_prints_events_as_they_happen() {
    let server = TestServer::start();
    let mut child = Command::new("kubectl")
        .args(["get", "configmaps", "--watch", "--output-watch-events"])
        .env("KUBECONFIG", &server.kubeconfig)
        .env("KUBECACHEDIR", server.dir.path().join("kubectl-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w starts");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a line from kubectl get -w")
    };
    let header = next();
    assert!(
        header.starts_with("EVENT") && header.contains("NAME"),
        "{header}"
    );
    assert!(next().contains("kube-root-ca.crt"), "initial list");
    ok(&server.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched}\ndata: {a: b}\n",
    ));
    let added = next();
    assert!(
        added.starts_with("ADDED") && added.contains("watched"),
        "{added}"
    );
    ok(&server.kubectl(&["delete", "cm", "watched"]));
    let deleted = next();
    assert!(
        deleted.starts_with("DELETED") && deleted.contains("watched"),
        "{deleted}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn crds_appear_in_api_resources_get_and_explain() {
    let server = TestServer::start();
    ok(&server.kubectl(&["apply", "-f", &path_arg(&fixture("routes-crd.yaml"))]));
    ok(&server.kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "crd/routes.mesh.example.com",
        "--timeout=20s",
    ]));
    let resources = ok(&server.kubectl(&["api-resources", "--api-group", "mesh.example.com"]));
    let row = resources
        .lines()
        .find(|l| l.starts_with("routes"))
        .unwrap_or_else(|| panic!("routes missing from:\n{resources}"));
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        columns,
        ["routes", "rt", "mesh.example.com/v1", "true", "Route"]
    );
    ok(&server.kubectl(&["apply", "-f", &path_arg(&fixture("routes.yaml"))]));
    let table = ok(&server.kubectl(&["get", "rt"]));
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "HOST", "WEIGHT", "AGE"]);
    assert!(
        table.lines().any(|l| l
            .split_whitespace()
            .take(3)
            .eq(["reviews", "reviews", "90"])),
        "{table}"
    );
    let by_category = ok(&server.kubectl(&["get", "mesh", "-o", "name"]));
    assert_eq!(
        by_category.lines().collect::<Vec<_>>(),
        [
            "route.mesh.example.com/productpage",
            "route.mesh.example.com/reviews"
        ],
        "category lookup"
    );
    let explained = ok(&server.kubectl(&["explain", "routes.spec"]));
    assert!(
        explained.contains("Where traffic for a host goes."),
        "{explained}"
    );
    assert!(
        explained.contains("host") && explained.contains("The destination host."),
        "{explained}"
    );
    ok(&server.kubectl(&[
        "apply",
        "--server-side",
        "-f",
        &path_arg(&fixture("routes.yaml")),
    ]));
    ok(&server.kubectl(&["delete", "crd", "routes.mesh.example.com"]));
    let gone = failed(&server.kubectl(&["get", "routes.mesh.example.com"]));
    assert!(
        gone.contains("the server doesn't have a resource type") || gone.contains("not found"),
        "{gone}"
    );
}

#[test]
fn typed_create_commands_send_protobuf_that_is_understood() {
    let server = TestServer::start();
    ok(&server.kubectl(&["create", "namespace", "team-a"]));
    ok(&server.kubectl(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team-a",
        "--from-literal=mode=canary",
    ]));
    ok(&server.kubectl(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "team-a",
        "--from-literal=token=abc",
    ]));
    ok(&server.kubectl(&["create", "serviceaccount", "runner", "-n", "team-a"]));
    ok(&server.kubectl(&[
        "create",
        "deployment",
        "web",
        "-n",
        "team-a",
        "--image=nginx:1.27",
        "--replicas=2",
        "--port=80",
    ]));
    ok(&server.kubectl(&[
        "create",
        "service",
        "clusterip",
        "web",
        "-n",
        "team-a",
        "--tcp=80:8080",
    ]));
    assert_eq!(
        jsonpath(&server, &["cm", "settings", "-n", "team-a"], "{.data.mode}"),
        "canary"
    );
    assert_eq!(
        jsonpath(
            &server,
            &["secret", "creds", "-n", "team-a"],
            "{.data.token}"
        ),
        "YWJj"
    );
    assert_eq!(
        jsonpath(
            &server,
            &["deploy", "web", "-n", "team-a"],
            "{.spec.replicas} {.spec.template.spec.containers[0].ports[0].containerPort}"
        ),
        "2 80"
    );
    assert_eq!(
        jsonpath(
            &server,
            &["svc", "web", "-n", "team-a"],
            "{.spec.ports[0].targetPort}"
        ),
        "8080"
    );
    assert_eq!(
        jsonpath(
            &server,
            &["sa", "runner", "-n", "team-a"],
            "{.metadata.name}"
        ),
        "runner"
    );
}

#[test]
fn diff_and_server_side_dry_run_change_nothing() {
    let server = TestServer::start();
    let manifest = path_arg(&fixture("bookinfo-mini.yaml"));
    ok(&server.kubectl(&["apply", "-f", &manifest]));
    let version = jsonpath(
        &server,
        &["deploy", "reviews-v1"],
        "{.metadata.resourceVersion}",
    );
    let edited = std::fs::read_to_string(fixture("bookinfo-mini.yaml"))
        .expect("fixture")
        .replace("reviews-v1:1.0", "reviews-v1:2.0");
    let dir = tempfile::tempdir().expect("temporary directory");
    let edited_path = dir.path().join("edited.yaml");
    std::fs::write(&edited_path, edited).expect("write");
    let diff = server.kubectl(&["diff", "-f", &path_arg(&edited_path)]);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "kubectl diff exits 1 when there are differences"
    );
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(
        text.contains("+        image: example.com/bookinfo/reviews-v1:2.0"),
        "{text}"
    );
    ok(&server.kubectl(&["apply", "--dry-run=server", "-f", &path_arg(&edited_path)]));
    assert_eq!(
        jsonpath(
            &server,
            &["deploy", "reviews-v1"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "example.com/bookinfo/reviews-v1:1.0"
    );
    assert_eq!(
        jsonpath(
            &server,
            &["deploy", "reviews-v1"],
            "{.metadata.resourceVersion}"
        ),
        version
    );
}

/// What applying one upstream file must do on a cluster that has the Istio and Gateway API
/// CRDs and the namespaces the file names.
enum Expect {
    /// Every object is created; a server-side re-apply then succeeds or, when listed,
    /// reports exactly these conflicts (as the real server does).
    Applies {
        server_side_conflicts: &'static [&'static str],
    },
    /// kubectl fails, and its error output contains each of these.
    Fails(&'static [&'static str]),
}

fn upstream_expectation(relative: &str) -> Expect {
    match relative {
        // Documentation and Helm values, not Kubernetes objects.
        "analysis/messages.yaml"
        | "analysis/testdata/common-meshconfig.yaml"
        | "bookinfo/swagger.yaml" => Expect::Fails(&["apiVersion not set, kind not set"]),
        r if r.starts_with("profiles/helm-values/") => {
            Expect::Fails(&["apiVersion not set, kind not set"])
        }
        // IstioOperator and cert-manager have no CRDs in the fixtures, as on a real cluster.
        "bookinfo/demo-profile-no-gateways.yaml"
        | "resources/samples-open-telemetry-loki-iop.yaml" => Expect::Fails(&[
            "no matches for kind \"IstioOperator\" in version \"install.istio.io/v1alpha1\"",
        ]),
        r if r.starts_with("profiles/")
            && r != "profiles/rendered-default-install-excerpt.yaml" =>
        {
            Expect::Fails(&[
                "no matches for kind \"IstioOperator\" in version \"install.istio.io/v1alpha1\"",
            ])
        }
        "bookinfo/kube/bookinfo-certificate.yaml" => Expect::Fails(&[
            "no matches for kind \"ClusterIssuer\" in version \"certmanager.k8s.io/v1alpha1\"",
            "no matches for kind \"Certificate\" in version \"certmanager.k8s.io/v1alpha1\"",
        ]),
        // Deliberately broken inputs for istioctl analyze that the API server itself rejects.
        "analysis/testdata/deprecation.yaml" => Expect::Fails(&[
            "no matches for kind \"QuotaSpec\" in version \"config.istio.io/v1alpha2\"",
        ]),
        "analysis/testdata/peerauthentication-crd.yaml" => Expect::Fails(&[
            "no matches for kind \"CustomResourceDefinition\" in version \"apiextensions.k8s.io/v1beta1\"",
        ]),
        "analysis/testdata/gateway-secrets.yaml" => Expect::Fails(&[
            "Pod \"custom-gateway\" is invalid: spec.containers: Required value",
            "Gateway.networking.istio.io \"defaultgateway-bogusCredentialName\" is invalid: metadata.name: Invalid value",
        ]),
        "analysis/testdata/misannotated.yaml" => Expect::Fails(&[
            "Pod \"invalid-annotations\" is invalid: spec.containers[0].image: Required value",
        ]),
        "analysis/testdata/sidecar-selector.yaml" => {
            Expect::Fails(&["Pod \"productpage\" is invalid: spec.containers: Required value"])
        }
        "analysis/testdata/webhook.yaml" => {
            Expect::Fails(&["Service \"istiod\" is invalid: spec.ports: Required value"])
        }
        // Dual-stack variants need a dual-stack cluster; the simulated ones are IPv4 only.
        r if r.starts_with("bookinfo/kube/") && r.ends_with("-dualstack.yaml") => Expect::Fails(&[
            "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services",
            "spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster",
        ]),
        // Defaulting adds `scope: "*"` to the atomic `rules` lists, so the live value no
        // longer equals the last client-side configuration and the real server refuses to
        // hand those fields to kubectl's server-side apply; this message is the real one.
        "profiles/rendered-default-install-excerpt.yaml" => Expect::Applies {
            server_side_conflicts: &[
                "Apply failed with 4 conflicts: conflicts with \"kubectl-client-side-apply\" using admissionregistration.k8s.io/v1:",
                "- .webhooks[name=\"namespace.sidecar-injector.istio.io\"].rules",
                "- .webhooks[name=\"rev.object.sidecar-injector.istio.io\"].rules",
            ],
        },
        _ => Expect::Applies {
            server_side_conflicts: &[],
        },
    }
}

fn namespaces_in(text: &str) -> Vec<String> {
    let mut namespaces: Vec<String> = serde_yaml::Deserializer::from_str(text)
        .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
        .filter_map(|doc: serde_json::Value| {
            doc["metadata"]["namespace"].as_str().map(str::to_string)
        })
        .collect();
    namespaces.sort();
    namespaces.dedup();
    namespaces
}

/// The CRDs of the upstream bundles, parsed once.
fn upstream_crds(files: &[PathBuf]) -> Vec<serde_json::Value> {
    files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).expect("CRD bundle");
            serde_yaml::Deserializer::from_str(&text)
                .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
                .filter(|doc: &serde_json::Value| doc["kind"] == "CustomResourceDefinition")
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Files that must each get their own cluster: they define objects another file in the same
/// directory defines differently in a way a real server refuses as an update (a Pod spec),
/// or they are checked for a specific server-side apply outcome.
const OWN_CLUSTER: &[&str] = &[
    "analysis/testdata/injection.yaml",
    "profiles/rendered-default-install-excerpt.yaml",
];

/// Applies one group of upstream files to a fresh cluster with the upstream CRDs and the
/// namespaces the files name: the files expected to apply go through one client-side and
/// one server-side `kubectl apply` (as `kubectl apply -f dir/` would), the others are
/// applied one by one and must fail as expected. The CRDs are installed over the API
/// directly (kubectl apply of them is covered elsewhere) to keep the test fast.
fn check_upstream_group(base: &Path, files: &[PathBuf], crds: &[serde_json::Value]) -> Vec<String> {
    let relative = |file: &Path| {
        file.strip_prefix(base)
            .unwrap_or(file)
            .to_string_lossy()
            .into_owned()
    };
    let server = TestServer::start();
    let mut failures = Vec::new();
    for crd in crds {
        let (code, answer) = server.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd,
        );
        if code != 201 {
            failures.push(format!("CRD {}: {code} {answer}", crd["metadata"]["name"]));
        }
    }
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for namespace in namespaces_in(&text) {
            let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
            let _ = server.post("/api/v1/namespaces", &body);
        }
    }
    let mut applying: Vec<String> = Vec::new();
    let mut conflicts_expected: &[&str] = &[];
    for file in files {
        match upstream_expectation(&relative(file)) {
            Expect::Applies {
                server_side_conflicts,
            } => {
                applying.push(path_arg(file));
                if !server_side_conflicts.is_empty() {
                    conflicts_expected = server_side_conflicts;
                }
            }
            Expect::Fails(needles) => {
                let output = server.kubectl(&["apply", "-f", &path_arg(file)]);
                let stderr = String::from_utf8_lossy(&output.stderr);
                if output.status.success() {
                    failures.push(format!(
                        "{}: expected a failure, but it applied",
                        relative(file)
                    ));
                } else if let Some(missing) = needles.iter().find(|n| !stderr.contains(*n)) {
                    failures.push(format!(
                        "{}: expected {missing:?} in: {stderr}",
                        relative(file)
                    ));
                }
            }
        }
    }
    if applying.is_empty() {
        return failures;
    }
    let with_files = |first: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = first.iter().map(|a| a.to_string()).collect();
        for file in &applying {
            args.push("-f".into());
            args.push(file.clone());
        }
        args
    };
    let names = applying.join(", ");
    let client_side = with_files(&["apply"]);
    let output = server.kubectl(&client_side.iter().map(String::as_str).collect::<Vec<_>>());
    if !output.status.success() {
        failures.push(format!(
            "[{names}]: expected to apply, got: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
        return failures;
    }
    let server_side = with_files(&["apply", "--server-side"]);
    let again = server.kubectl(&server_side.iter().map(String::as_str).collect::<Vec<_>>());
    let again_stderr = String::from_utf8_lossy(&again.stderr);
    match (again.status.success(), conflicts_expected) {
        (true, []) => {}
        (false, []) => failures.push(format!(
            "[{names}]: server-side re-apply failed: {again_stderr}"
        )),
        (true, _) => failures.push(format!("[{names}]: expected server-side apply conflicts")),
        (false, needles) => {
            if let Some(missing) = needles.iter().find(|n| !again_stderr.contains(*n)) {
                failures.push(format!(
                    "[{names}]: expected {missing:?} in: {again_stderr}"
                ));
            }
        }
    }
    failures
}

#[test]
#[ignore = "needs MESHSHIFT_FIXTURES: the shared upstream fixtures (.ci/run sets it)"]
fn upstream_istio_manifests_apply_as_on_a_real_server() {
    let fixtures = fixtures_dir();
    let base = fixtures.join("istio");
    let crds = upstream_crds(&[
        base.join("crds/crd-all.gen.yaml"),
        base.join("crds/gateway-api-crd-v1.6.0-experimental.yaml"),
    ]);
    assert!(crds.len() > 25, "expected the Istio and Gateway API CRDs");
    let mut files = Vec::new();
    yaml_files(&base, &mut files);
    files.retain(|f| !f.starts_with(base.join("crds")));
    assert!(
        files.len() > 50,
        "expected the upstream manifests under {}",
        base.display()
    );
    let mut groups: std::collections::BTreeMap<String, Vec<PathBuf>> =
        std::collections::BTreeMap::new();
    for file in files {
        let relative = file
            .strip_prefix(&base)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        let key = if OWN_CLUSTER.contains(&relative.as_str()) {
            relative
        } else {
            file.parent().map(path_arg).unwrap_or_default()
        };
        groups.entry(key).or_default().push(file);
    }
    let groups: Vec<Vec<PathBuf>> = groups.into_values().collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (base, crds, groups, next) = (&base, &crds, &groups, &next);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(group) = groups.get(index) else {
                            return failures;
                        };
                        failures.extend(check_upstream_group(base, group, crds));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} unexpected outcomes:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
#[ignore = "needs MESHSHIFT_FIXTURES: the shared upstream fixtures (.ci/run sets it)"]
fn upstream_istio_crds_establish_and_serve_every_version() {
    let fixtures = fixtures_dir();
    let server = TestServer::start();
    let crds = fixtures.join("istio/crds/crd-all.gen.yaml");
    ok(&server.kubectl(&["apply", "-f", &path_arg(&crds)]));
    ok(&server.kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "crd",
        "--all",
        "--timeout=20s",
    ]));
    let resources = ok(&server.kubectl(&[
        "api-resources",
        "--api-group",
        "networking.istio.io",
        "-o",
        "name",
    ]));
    for name in [
        "virtualservices.networking.istio.io",
        "destinationrules.networking.istio.io",
        "gateways.networking.istio.io",
        "serviceentries.networking.istio.io",
        "sidecars.networking.istio.io",
        "envoyfilters.networking.istio.io",
    ] {
        assert!(
            resources.lines().any(|l| l == name),
            "{name} missing:\n{resources}"
        );
    }
    let versions = ok(&server.kubectl(&["api-versions"]));
    for version in [
        "networking.istio.io/v1",
        "networking.istio.io/v1beta1",
        "networking.istio.io/v1alpha3",
        "security.istio.io/v1",
        "telemetry.istio.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == version),
            "{version} missing:\n{versions}"
        );
    }
    let by_kind = fixtures.join("istio/resources/by-kind");
    ok(&server.kubectl(&[
        "apply",
        "-f",
        &path_arg(&by_kind.join("networking-v1alpha3-VirtualService.yaml")),
    ]));
    let listed = ok(&server.kubectl(&[
        "get",
        "virtualservices.v1.networking.istio.io",
        "-A",
        "-o",
        "name",
    ]));
    assert!(
        !listed.trim().is_empty(),
        "objects written in v1alpha3 are listed in v1"
    );
}

#[test]
fn detached_simulator_serves_kubectl_until_down() {
    let binary = crate::test::meshshift_binary();
    let dir = tempfile::tempdir().expect("temporary directory");
    let state = path_arg(dir.path());
    let run = |args: &[&str]| {
        let output = Command::new(&binary)
            .args(args)
            .args(["--state-dir", &state])
            .output()
            .expect("simulator command runs");
        ok(&output)
    };
    let up = run(&["sim", "up", "--detach"]);
    assert!(
        up.contains("sim-source") && up.contains("sim-target"),
        "{up}"
    );
    let kubeconfig = dir.path().join("sim/kubeconfig");
    let cache = dir.path().join("kubectl-cache");
    let contexts = ok(&crate::sim_support::kubectl(
        &kubeconfig,
        &cache,
        &["config", "get-contexts", "-o", "name"],
        None,
    ));
    assert_eq!(
        contexts.lines().collect::<Vec<_>>(),
        ["sim-source", "sim-target"]
    );
    ok(&crate::sim_support::kubectl(
        &kubeconfig,
        &cache,
        &["--context", "sim-target", "create", "namespace", "kept"],
        None,
    ));
    let status = run(&["sim", "status"]);
    assert!(
        status.contains("sim-source") && status.matches(" ready").count() == 2,
        "{status}"
    );
    let down = run(&["sim", "down"]);
    assert!(down.contains("stopped"), "{down}");
    assert!(run(&["sim", "status"]).contains("not running"));
    run(&["sim", "up", "--detach"]);
    let namespaces = ok(&crate::sim_support::kubectl(
        &kubeconfig,
        &cache,
        &[
            "--context",
            "sim-target",
            "get",
            "namespace",
            "kept",
            "-o",
            "name",
        ],
        None,
    ));
    assert_eq!(
        namespaces.trim(),
        "namespace/kept",
        "objects survive a restart"
    );
    run(&["sim", "down"]);
}

/// `default/kubernetes` as kube-apiserver's kubernetesservice controller keeps it: fields owned
/// by "kube-apiserver" (an Update), so another manager's apply that changes the target port
/// conflicts with the message the real server gives; forcing takes the field over. Every
/// namespace gets `kube-root-ca.crt` from "kube-controller-manager". The owned fields, the
/// message and the ConfigMap's manager are those of a real kube-apiserver and
/// kube-controller-manager (v1.20, which has no `internalTrafficPolicy` yet).
#[test]
fn the_kubernetes_service_is_owned_by_kube_apiserver() {
    let server = TestServer::start();
    let (status, service) = server.get("/api/v1/namespaces/default/services/kubernetes");
    assert_eq!(status, 200, "{service}");
    assert_eq!(service["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(service["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(
        service["spec"]["ports"],
        serde_json::json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}])
    );
    let managed = &service["metadata"]["managedFields"];
    assert_eq!(managed.as_array().map(Vec::len), Some(1), "{managed}");
    assert_eq!(managed[0]["manager"], "kube-apiserver");
    assert_eq!(managed[0]["operation"], "Update");
    assert_eq!(managed[0]["apiVersion"], "v1");
    let spec = &managed[0]["fieldsV1"]["f:spec"];
    for field in [
        "f:clusterIP",
        "f:ipFamilyPolicy",
        "f:sessionAffinity",
        "f:type",
    ] {
        assert!(spec.get(field).is_some(), "{field} not owned: {spec}");
    }
    assert!(
        spec["f:ports"]["k:{\"port\":443,\"protocol\":\"TCP\"}"]
            .get("f:targetPort")
            .is_some(),
        "{spec}"
    );
    let changed = "apiVersion: v1\nkind: Service\nmetadata: {name: kubernetes, namespace: default}\nspec:\n  ports: [{name: https, port: 443, protocol: TCP, targetPort: 8443}]\n";
    let refused = server.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=meshshift",
            "-f",
            "-",
        ],
        changed,
    );
    assert!(
        failed(&refused).contains(
            "Apply failed with 1 conflict: conflict with \"kube-apiserver\" using v1: .spec.ports[port=443,protocol=\"TCP\"].targetPort"
        ),
        "{}",
        failed(&refused)
    );
    let (_, unchanged) = server.get("/api/v1/namespaces/default/services/kubernetes");
    assert_eq!(unchanged["spec"]["ports"][0]["targetPort"], 6443);
    ok(&server.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=meshshift",
            "--force-conflicts",
            "-f",
            "-",
        ],
        changed,
    ));
    let (_, forced) = server.get("/api/v1/namespaces/default/services/kubernetes");
    assert_eq!(forced["spec"]["ports"][0]["targetPort"], 8443);

    ok(&server.kubectl(&["create", "namespace", "shop"]));
    let (status, root_ca) = server.get("/api/v1/namespaces/shop/configmaps/kube-root-ca.crt");
    assert_eq!(status, 200, "{root_ca}");
    assert!(
        root_ca["data"]["ca.crt"]
            .as_str()
            .is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----")),
        "{root_ca}"
    );
    assert_eq!(
        root_ca["metadata"]["managedFields"][0]["manager"],
        "kube-controller-manager"
    );
}
