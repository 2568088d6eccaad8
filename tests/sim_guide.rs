//! The AKS migration guide's own steps against a simulated environment, with kubectl and curl
//! only: install the demo on the source, check injection on both clusters, restart a
//! rollout, then split traffic 90/10 with the guide's ServiceEntry and VirtualService and
//! count the pods that served 100 requests, as the guide's shell loop does.

use std::process::Command;
use std::time::Duration;

use crate::sim_env_support::{TestEnv, binomial_bounds, repo_path};
use crate::sim_support::ok;

const SOURCE: &str = "sim-source";
const TARGET: &str = "sim-target";

/// Installs the demo into `default` the guide's way: label, app, destination rules, gateway.
fn install_demo(env: &TestEnv, context: &str, label: &str) {
    env.kubectl_ok(
        context,
        &["label", "namespace", "default", label, "--overwrite"],
    );
    for file in [
        "runbooks/demo/bookinfo.yaml",
        "runbooks/demo/destination-rule-all.yaml",
        "runbooks/demo/bookinfo-gateway.yaml",
    ] {
        env.kubectl_ok(context, &["apply", "-n", "default", "-f", &repo_path(file)]);
    }
    env.kubectl_ok(
        context,
        &[
            "wait",
            "-n",
            "default",
            "--for=condition=Available",
            "deployment",
            "--all",
            "--timeout=60s",
        ],
    );
}

fn curl(env: &TestEnv, url: &str) -> String {
    let mut command = Command::new("curl");
    command
        .args(["-s", "--max-time", "10"])
        .args(env.connect_to_args())
        .arg(url);
    ok(&command.output().expect("curl runs"))
}

fn containers_of_pods(env: &TestEnv, context: &str, namespace: &str) -> Vec<String> {
    env.kubectl_ok(
        context,
        &[
            "get",
            "pods",
            "-n",
            namespace,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}:{.spec.containers[*].name}{\"\\n\"}{end}",
        ],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn the_guides_source_setup_works_with_kubectl_and_curl() {
    let env = TestEnv::start_with(|o| meshshift::sim::EnvironmentOptions {
        map_ports: true,
        ..o
    });
    install_demo(&env, SOURCE, "istio-injection=enabled");
    let pods = containers_of_pods(&env, SOURCE, "default");
    assert_eq!(pods.len(), 6, "{pods:?}");
    assert!(
        pods.iter().all(|p| p.ends_with(" istio-proxy")),
        "every pod has istio-proxy: {pods:?}"
    );
    assert!(
        pods.iter().any(|p| p.starts_with("reviews-v2-")),
        "{pods:?}"
    );
    let ready = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "pods",
            "-n",
            "default",
            "-o",
            "jsonpath={.items[*].status.containerStatuses[*].ready}",
        ],
    );
    assert!(!ready.contains("false"), "{ready}");

    let address = env.service_address(SOURCE, "istio-system", "istio-ingressgateway");
    assert!(
        address.starts_with("127.") && address.ends_with(":80"),
        "{address}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let page = loop {
        let page = curl(&env, &format!("http://{address}/productpage"));
        if page.contains("<title>Simple Bookstore App</title>")
            || std::time::Instant::now() > deadline
        {
            break page;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        page.contains("<title>Simple Bookstore App</title>"),
        "{page}"
    );
    assert_eq!(page.matches("Reviews served by: \n").count(), 2);

    // kubectl rollout restart + rollout status replace the pods.
    let before = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "pods",
            "-n",
            "default",
            "-l",
            "app=reviews,version=v1",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    env.kubectl_ok(
        SOURCE,
        &[
            "rollout",
            "restart",
            "deployment/reviews-v1",
            "-n",
            "default",
        ],
    );
    let status = env.kubectl_ok(
        SOURCE,
        &[
            "rollout",
            "status",
            "deployment/reviews-v1",
            "-n",
            "default",
            "--timeout=60s",
        ],
    );
    assert!(status.contains("successfully rolled out"), "{status}");
    let after = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "pods",
            "-n",
            "default",
            "-l",
            "app=reviews,version=v1",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    assert_ne!(before, after);
    assert_eq!(
        after.split_whitespace().count(),
        1,
        "the old pod is gone: {after}"
    );
    let sets = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "replicasets",
            "-n",
            "default",
            "-l",
            "app=reviews,version=v1",
            "-o",
            "jsonpath={.items[*].spec.replicas}",
        ],
    );
    let mut replicas: Vec<&str> = sets.split_whitespace().collect();
    replicas.sort();
    assert_eq!(
        replicas,
        vec!["0", "1"],
        "the old ReplicaSet is scaled to zero"
    );

    // kubectl scale.
    env.kubectl_ok(
        SOURCE,
        &[
            "scale",
            "deployment/ratings-v1",
            "-n",
            "default",
            "--replicas=3",
        ],
    );
    env.kubectl_ok(
        SOURCE,
        &[
            "rollout",
            "status",
            "deployment/ratings-v1",
            "-n",
            "default",
            "--timeout=60s",
        ],
    );
    let ratings = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "pods",
            "-n",
            "default",
            "-l",
            "app=ratings",
            "-o",
            "name",
        ],
    );
    assert_eq!(ratings.lines().count(), 3, "{ratings}");
}

#[test]
fn the_target_injects_only_with_the_revision_label() {
    let env = TestEnv::start();
    let pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: web}}}}\nspec:\n  containers: [{{name: web, image: nginx}}]\n"
        )
    };
    env.kubectl_ok(TARGET, &["create", "namespace", "legacy"]);
    env.kubectl_ok(
        TARGET,
        &["label", "namespace", "legacy", "istio-injection=enabled"],
    );
    env.apply(TARGET, "legacy", &pod("web"));
    env.kubectl_ok(TARGET, &["create", "namespace", "shop"]);
    env.kubectl_ok(
        TARGET,
        &["label", "namespace", "shop", "istio.io/rev=asm-1-30"],
    );
    env.apply(TARGET, "shop", &pod("web"));
    for ns in ["legacy", "shop"] {
        env.kubectl_ok(
            TARGET,
            &[
                "wait",
                "-n",
                ns,
                "--for=condition=Ready",
                "pod/web",
                "--timeout=30s",
            ],
        );
    }
    let containers = |ns: &str| {
        env.kubectl_ok(
            TARGET,
            &[
                "get",
                "pod",
                "web",
                "-n",
                ns,
                "-o",
                "jsonpath={.spec.containers[*].name}",
            ],
        )
    };
    assert_eq!(
        containers("legacy"),
        "web",
        "istio-injection=enabled does nothing on the add-on"
    );
    assert_eq!(containers("shop"), "web istio-proxy");
    let image = env.kubectl_ok(
        TARGET,
        &[
            "get",
            "pod",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.containers[1].image}",
        ],
    );
    assert_eq!(
        image,
        "mcr.microsoft.com/oss/istio/proxyv2:v1.30.2-distroless"
    );
    let rev = env.kubectl_ok(
        TARGET,
        &[
            "get",
            "pod",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.annotations.istio\\.io/rev}",
        ],
    );
    assert_eq!(rev, "asm-1-30");
    // The add-on refuses the kinds it blocks.
    let refused = crate::sim_support::failed(&env.kubectl_stdin(TARGET, &["apply", "-n", "shop", "-f", "-"],
        "apiVersion: networking.istio.io/v1beta1\nkind: ProxyConfig\nmetadata: {name: pc}\nspec: {concurrency: 2}\n"));
    assert!(
        refused.contains("denied the request") && refused.contains("ProxyConfig"),
        "{refused}"
    );
    // The source accepts it.
    env.apply(SOURCE, "default", "apiVersion: networking.istio.io/v1beta1\nkind: ProxyConfig\nmetadata: {name: pc}\nspec: {concurrency: 2}\n");
}

#[test]
fn the_guides_ninety_ten_split_counts_out_near_ninety_ten() {
    let env = TestEnv::start_with(|o| meshshift::sim::EnvironmentOptions {
        map_ports: true,
        ..o
    });
    install_demo(&env, SOURCE, "istio-injection=enabled");
    let enabled = env.az("aks mesh enable-ingress-gateway --resource-group rg --name sim-target --ingress-gateway-type external");
    assert_eq!(enabled.code, 0, "{}", enabled.stderr);
    install_demo(&env, TARGET, "istio.io/rev=asm-1-30");
    // The target's Gateway selects the add-on's gateway, as the guide's adapted manifests do.
    env.kubectl_ok(
        TARGET,
        &[
            "patch",
            "gateway",
            "bookinfo-gateway",
            "-n",
            "default",
            "--type",
            "merge",
            "-p",
            "{\"spec\":{\"selector\":{\"istio\":\"aks-istio-ingressgateway-external\"}}}",
        ],
    );
    let target = env.service_address(
        TARGET,
        "aks-istio-ingress",
        "aks-istio-ingressgateway-external",
    );
    env.get_until(&target, "/productpage", Duration::from_secs(20), |s, b| {
        s == 200 && b.contains("Simple Bookstore App")
    });
    let (target_ip, target_port) = target.split_once(':').expect("ip:port");
    let service_entry = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: target-cluster-http}}\nspec:\n  hosts: [v2.example.com]\n  location: MESH_EXTERNAL\n  ports: [{{number: {target_port}, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  endpoints: [{{address: {target_ip}}}]\n"
    );
    env.apply(SOURCE, "default", &service_entry);
    let virtual_service = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: bookinfo}}\nspec:\n  hosts: [\"*\"]\n  gateways: [bookinfo-gateway]\n  http:\n  - match:\n    - uri: {{exact: /productpage}}\n    - uri: {{prefix: /static}}\n    - uri: {{exact: /login}}\n    - uri: {{exact: /logout}}\n    - uri: {{prefix: /api/v1/products}}\n    route:\n    - destination: {{host: productpage, port: {{number: 9080}}}}\n      weight: 90\n    - destination: {{host: v2.example.com, port: {{number: {target_port}}}}}\n      weight: 10\n"
    );
    env.apply(SOURCE, "default", &virtual_service);
    let source = env.service_address(SOURCE, "istio-system", "istio-ingressgateway");
    // Wait out the propagation: a target pod shows up.
    let target_pods = env.kubectl_ok(
        TARGET,
        &[
            "get",
            "pods",
            "-n",
            "default",
            "-l",
            "app=reviews",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !target_pods.split_whitespace().any(|p| {
        crate::sim_env_support::reviews_pod(&env.get(&source, "/productpage", &[]).1).as_deref()
            == Some(p)
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "no request reached the target"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The guide's loop, verbatim in spirit: 100 requests, the line after "Reviews served by",
    // counted per pod, each pod looked up in each cluster with kubectl.
    let script = r#"
for i in $(seq 1 100); do
  curl -s $CONNECT "http://$GATEWAY/productpage" | grep -A1 "Reviews served by" | tail -1 | tr -d ' '
done | sort | uniq -c | while read count pod; do
  for context in sim-source sim-target; do
    if kubectl --context "$context" get pod "$pod" -n default >/dev/null 2>&1; then
      echo "$context $count $pod"
    fi
  done
done
"#;
    let output = Command::new("bash")
        .args(["-c", script])
        .env("KUBECONFIG", env.kubeconfig())
        .env("KUBECACHEDIR", env.dir.path().join("kubectl-cache"))
        .env("CONNECT", env.connect_to_args().join(" "))
        .env("GATEWAY", &source)
        .output()
        .expect("bash runs");
    let report = ok(&output);
    let mut counts = std::collections::BTreeMap::new();
    for line in report.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [context, count, _pod] = parts.as_slice() {
            *counts.entry(context.to_string()).or_insert(0u64) +=
                count.parse::<u64>().expect("count");
        }
    }
    let source_count = counts.get("sim-source").copied().unwrap_or(0);
    let target_count = counts.get("sim-target").copied().unwrap_or(0);
    assert_eq!(
        source_count + target_count,
        100,
        "every request attributed:\n{report}"
    );
    let (low, high) = binomial_bounds(100, 0.1, 0.001);
    assert!(
        (low..=high).contains(&target_count),
        "target served {target_count}, expected {low}..={high}:\n{report}"
    );
}
