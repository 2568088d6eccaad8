//! A mesh that is not the demo: a shop of echo pods behind a Gateway bound to
//! `shop.example.com`, a VirtualService with several kinds of rules (a header match, a prefix
//! with retries, a timeout and a request header, a subset split, a redirect), a secured
//! server whose TLS secret lives beside the ingress gateway, a Secret, a pod that opts out of
//! injection and a namespace that is not meshed. The shipped runbooks move it through their
//! documented parameters only; at every stop the rules are checked through the source's
//! ingress, and after the rollback the VirtualService is the one its owner wrote.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::sim_env_support::{TestEnv, binomial_bounds, migrate, repo_path, text};

/// Requests per check of the shop's 80/20 subset split.
const SPLIT_SAMPLE: u32 = 200;

const SHOP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy, labels: {istio-injection: disabled}}
---
apiVersion: v1
kind: Secret
metadata: {name: shop-db, namespace: shop}
type: Opaque
stringData: {password: s3cret-shop-db}
---
apiVersion: v1
kind: Secret
metadata: {name: shop-cert, namespace: istio-system}
type: kubernetes.io/tls
stringData: {tls.crt: not-a-real-certificate, tls.key: not-a-real-key}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: PERMISSIVE}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: envoy}]
    filter: {expression: "response.code >= 400"}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: shop, labels: {app: echo}}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  selector: {app: api}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v1, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo, version: v1}}
  template:
    metadata: {labels: {app: echo, version: v1}}
    spec: {containers: [{name: echo, image: registry.example.com/echo:1.0, ports: [{containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v2, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo, version: v2}}
  template:
    metadata: {labels: {app: echo, version: v2}}
    spec: {containers: [{name: echo, image: registry.example.com/echo:2.0, ports: [{containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: api, version: v1}}
  template:
    metadata: {labels: {app: api, version: v1}}
    spec: {containers: [{name: api, image: registry.example.com/api:1.0, ports: [{containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: stock-sync, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: stock-sync}}
  template:
    metadata: {labels: {app: stock-sync, sidecar.istio.io/inject: "false"}}
    spec: {containers: [{name: sync, image: registry.example.com/sync:1.0}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: batch, namespace: legacy}
spec:
  replicas: 1
  selector: {matchLabels: {app: batch}}
  template:
    metadata: {labels: {app: batch}}
    spec: {containers: [{name: batch, image: registry.example.com/batch:1.0}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: shop}
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shop-gateway, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [shop.example.com]
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: shop-cert}
    hosts: [shop.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: shop}
spec:
  hosts: [shop.example.com]
  gateways: [shop-gateway]
  http:
  - name: beta
    match:
    - headers:
        x-beta: {exact: "1"}
    route:
    - destination: {host: echo, subset: v2}
  - name: api
    match:
    - uri: {prefix: /api}
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}
    timeout: 5s
    headers:
      request:
        set: {x-route: api}
    route:
    - destination: {host: api, port: {number: 8080}}
  - name: old
    match:
    - uri: {exact: /old}
    redirect: {uri: /new}
  - name: split
    route:
    - destination: {host: echo, subset: v1}
      weight: 80
    - destination: {host: echo, subset: v2}
      weight: 20
"#;

/// One answer through an address, with its headers.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn request(env: &TestEnv, address: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let url = format!("http://{}{path}", env.served_at(address));
    let mut builder = env.http.get(url).timeout(Duration::from_secs(10));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    env.runtime.block_on(async move {
        match builder.send().await {
            Ok(response) => Answer {
                status: response.status().as_u16(),
                headers: response
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                    .collect(),
                body: response.text().await.unwrap_or_default(),
            },
            Err(error) => Answer {
                status: 0,
                headers: BTreeMap::new(),
                body: error.to_string(),
            },
        }
    })
}

const HOST: (&str, &str) = ("host", "shop.example.com");

/// Waits until route changes have reached the source's ingress: the attribution header the
/// shift used while checking its steps is gone from its answers.
fn settle(env: &TestEnv, ingress: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut clean = 0;
    while clean < 10 {
        let answer = request(env, ingress, "/", &[HOST]);
        if answer.status == 200 && !answer.headers.contains_key("x-meshshift-served-by") {
            clean += 1;
        } else {
            clean = 0;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the source's ingress still answers with the attribution header: {:?}",
            answer.headers
        );
    }
}

/// What the source's ingress does with the shop's rules: every rule holds, whichever cluster
/// answers. While a step is checked (`shifting`), every answer names the cluster that served it
/// in the attribution header; otherwise there is no such header. Returns how many split
/// answers each cluster gave.
#[track_caller]
fn check_rules(env: &TestEnv, ingress: &str, shifting: bool) -> BTreeMap<String, u32> {
    // The Gateway is bound to the shop's host.
    let other = request(env, ingress, "/", &[("host", "elsewhere.example.com")]);
    assert_eq!(other.status, 404, "another host: {}", other.body);
    // Header match: only v2.
    for _ in 0..10 {
        let beta = request(env, ingress, "/", &[HOST, ("x-beta", "1")]);
        assert_eq!(beta.status, 200, "{}", beta.body);
        assert_eq!(
            beta.json()["version"],
            "v2",
            "x-beta goes to v2: {}",
            beta.body
        );
        assert_eq!(beta.json()["host"], "shop.example.com", "{}", beta.body);
    }
    // Prefix with its request header.
    let api = request(env, ingress, "/api/items", &[HOST]);
    assert_eq!(api.status, 200, "{}", api.body);
    let body = api.json();
    assert!(
        body["pod"].as_str().unwrap_or_default().starts_with("api-"),
        "{}",
        api.body
    );
    assert_eq!(body["headers"]["x-route"], "api", "{}", api.body);
    // The redirect.
    let old = request(env, ingress, "/old", &[HOST]);
    assert_eq!(old.status, 301, "{}", old.body);
    assert!(
        old.headers
            .get("location")
            .is_some_and(|l| l.ends_with("/new")),
        "{:?}",
        old.headers
    );
    // The subset split: v1 gets 80% on either cluster, whatever the shift's weight.
    let mut versions = BTreeMap::<String, u32>::new();
    let mut clusters = BTreeMap::<String, u32>::new();
    for _ in 0..SPLIT_SAMPLE {
        let answer = request(env, ingress, "/", &[HOST]);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body = answer.json();
        *versions
            .entry(body["version"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
        *clusters
            .entry(body["cluster"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
        let served_by = answer.headers.get("x-meshshift-served-by");
        if shifting {
            let expected = if body["cluster"] == "sim-target" {
                "target"
            } else {
                "source"
            };
            assert_eq!(
                served_by.map(String::as_str),
                Some(expected),
                "{}",
                answer.body
            );
        } else {
            assert!(
                served_by.is_none(),
                "the attribution header stays only while a step is checked: {:?}",
                answer.headers
            );
        }
    }
    let v1 = versions.get("v1").copied().unwrap_or(0);
    let v2 = versions.get("v2").copied().unwrap_or(0);
    // A correct 80/20 split falls outside these bounds once in 100,000 checks; a split that
    // lost its subsets (50/50) or its order never falls inside. A fixed "v1 > 2 × v2" over
    // 100 requests failed a correct split about once in 1,400 checks.
    let (low, high) = binomial_bounds(u64::from(SPLIT_SAMPLE), 0.8, 1e-5);
    assert!(
        v1 + v2 == SPLIT_SAMPLE && (low..=high).contains(&u64::from(v1)),
        "v1 served {v1} of {SPLIT_SAMPLE}, expected {low}..={high}: {versions:?}"
    );
    clusters
}

fn vs_spec(env: &TestEnv, context: &str) -> Value {
    let json = env.kubectl_ok(
        context,
        &["get", "virtualservice", "shop", "-n", "shop", "-o", "json"],
    );
    serde_json::from_str::<Value>(&json).unwrap()["spec"].clone()
}

fn shift_args(steps: &str) -> Vec<String> {
    [
        "--set",
        "NAMESPACES=shop,legacy",
        "--set",
        &format!("STEPS={steps}"),
        "--set",
        "SOAK_SECONDS=0",
        "--set",
        "PROPAGATION=1s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_shop_that_is_not_bookinfo_moves_keeping_every_rule_and_rolls_back_to_its_own_spec() {
    let env = TestEnv::start();
    env.kubectl_stdin("sim-source", &["apply", "-f", "-"], SHOP);
    for namespace in ["shop", "legacy"] {
        env.kubectl_ok(
            "sim-source",
            &[
                "wait",
                "--for=condition=Available",
                "deployment",
                "--all",
                "-n",
                namespace,
                "--timeout=60s",
            ],
        );
    }
    env.az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    let ingress = env.service_address("sim-source", "istio-system", "istio-ingressgateway");
    let original = vs_spec(&env, "sim-source");
    let before = check_rules(&env, &ingress, false);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["sim-source"],
        "{before:?}"
    );

    // Half-way: 25%, then 50%. While the 25% step is checked, the rules hold too.
    let env = Arc::new(env);
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (env, done, ingress) = (env.clone(), done.clone(), ingress.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let shift = env.kubectl(
                    "sim-source",
                    &[
                        "get",
                        "virtualservice",
                        "shop",
                        "-n",
                        "shop",
                        "-o",
                        "jsonpath={.metadata.annotations.meshshift\\.io/shift}",
                    ],
                );
                let shift: Value = serde_json::from_slice(&shift.stdout).unwrap_or(Value::Null);
                if shift["weight"] == 25 && shift["header"].is_string() {
                    std::thread::sleep(Duration::from_millis(1200));
                    return Some(check_rules(&env, &ingress, true));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            None
        })
    };
    let args = shift_args("25,50");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = migrate(&env, &args);
    done.store(true, Ordering::SeqCst);
    let at_25 = watcher
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let at_25 = at_25.expect("the watcher saw the 25% step");
    assert!(at_25.contains_key("sim-target"), "{at_25:?}");
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "app found: VirtualService shop/shop on Gateway shop/shop-gateway",
        "the app is checked with GET / (Host shop.example.com), expecting 200",
        "1 namespaces labelled istio.io/rev=asm-1-30",
        "shop/stock-sync-",
        "opts out of injection (sidecar.istio.io/inject=false), as on the source",
        "legacy: not meshed on the source, so not on the target either",
        "1 Gateway TLS secret(s) copied to aks-istio-ingress: [\"shop-cert\"]",
        "25%: [",
        "50%: [",
        "1 mesh-wide resource(s) copied to aks-istio-system",
        "Telemetry/istio-system/mesh-default",
        "not carried over: [\"accessLogging.filter\"] not in the add-on's Telemetry allowlist",
        "sends 50% of its traffic to sim-target",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
    // The owner's spec is in the run's journal too.
    let runs = env.dir.path().join("state/runs");
    let journal = std::fs::read_dir(&runs)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("journal.json")).ok())
        .next()
        .expect("a journal");
    let journal: Value = serde_json::from_str(&journal).unwrap();
    let shift = journal["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["title"] == "Shift traffic to the target")
        .expect("the shift step");
    assert_eq!(shift["result"]["original_spec"], original);
    assert_eq!(
        shift["result"]["temporary"][0]["name"], "target-cluster-http",
        "the journal lists the temporary pieces: {shift}"
    );
    assert!(
        !stdout.contains("s3cret-shop-db"),
        "a Secret value was printed:\n{stdout}"
    );
    let shifted = env.kubectl_ok(
        "sim-source",
        &["get", "virtualservice", "shop", "-n", "shop", "-o", "json"],
    );
    assert!(
        !shifted.contains("x-meshshift-served-by"),
        "the attribution header is removed when the shift stops: {shifted}\n{stdout}"
    );
    settle(&env, &ingress);
    let halfway = check_rules(&env, &ingress, false);
    assert!(
        halfway.get("sim-source").copied().unwrap_or(0) > 0
            && halfway.get("sim-target").copied().unwrap_or(0) > 0,
        "both clusters answer at 50%: {halfway:?}"
    );
    // The target got the shop as its owner wrote it, its Secret, the TLS secret beside the
    // add-on's gateway; the unmeshed namespace as it was.
    assert_eq!(vs_spec(&env, "sim-target")["http"], original["http"]);
    let password = env.kubectl_ok(
        "sim-target",
        &[
            "get",
            "secret",
            "shop-db",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.password}",
        ],
    );
    assert!(!password.is_empty());
    env.kubectl_ok(
        "sim-target",
        &["get", "secret", "shop-cert", "-n", "aks-istio-ingress"],
    );
    env.kubectl_ok(
        "sim-target",
        &[
            "get",
            "peerauthentication",
            "default",
            "-n",
            "aks-istio-system",
        ],
    );
    let legacy = env.kubectl_ok(
        "sim-target",
        &[
            "get",
            "namespace",
            "legacy",
            "-o",
            "jsonpath={.metadata.labels}",
        ],
    );
    assert!(
        legacy.contains("\"istio-injection\":\"disabled\"") && !legacy.contains("istio.io/rev"),
        "{legacy}"
    );
    let containers = env.kubectl_ok(
        "sim-target",
        &[
            "get",
            "pods",
            "-n",
            "legacy",
            "-o",
            "jsonpath={.items[*].spec.containers[*].name}",
        ],
    );
    assert_eq!(
        containers.trim(),
        "batch",
        "no sidecar in the unmeshed namespace"
    );

    // Run again to finish: nothing of meshshift's own is copied to the target.
    let args = shift_args("100");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = migrate(&env, &args);
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "1 VirtualService(s) copied as their owner wrote them, without the traffic shift"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("All traffic through sim-source's ingress now reaches sim-target."),
        "{stdout}"
    );
    let entries = env.kubectl_ok("sim-target", &["get", "serviceentries", "-A", "-o", "name"]);
    assert_eq!(
        entries.trim(),
        "",
        "the temporary ServiceEntry is not copied"
    );
    assert_eq!(vs_spec(&env, "sim-target"), original);
    settle(&env, &ingress);
    let all = check_rules(&env, &ingress, false);
    assert_eq!(all.keys().collect::<Vec<_>>(), ["sim-target"], "{all:?}");

    // Roll back with the shipped runbook: the owner's VirtualService, exactly.
    let rollback = crate::sim_env_support::meshshift(
        &env,
        &[
            "run",
            &repo_path("runbooks/rollback-traffic.rhai"),
            "--yes",
            "--set",
            "SOURCE_CLUSTER=sim-source",
        ],
    );
    let (stdout, stderr) = text(&rollback);
    assert!(rollback.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("shop/shop routes as its owner wrote it again"),
        "{stdout}"
    );
    assert_eq!(vs_spec(&env, "sim-source"), original);
    let annotations = env.kubectl_ok(
        "sim-source",
        &[
            "get",
            "virtualservice",
            "shop",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.annotations}",
        ],
    );
    assert!(!annotations.contains("meshshift.io"), "{annotations}");
    let entries = env.kubectl_ok(
        "sim-source",
        &["get", "serviceentries", "-n", "shop", "-o", "name"],
    );
    assert_eq!(entries.trim(), "");
    settle(&env, &ingress);
    let back = check_rules(&env, &ingress, false);
    assert_eq!(back.keys().collect::<Vec<_>>(), ["sim-source"], "{back:?}");
}
