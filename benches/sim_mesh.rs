//! Throughput and latency of the simulated mesh data plane: bookinfo's productpage through
//! the source's ingress gateway with 16 concurrent kept-alive clients, and the median cost of
//! forwarding a request to the other cluster through a ServiceEntry.
//!
//! Run with `cargo bench --bench sim_mesh` (optionally `-- --quick` for shorter runs). Needs
//! kubectl.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshshift::sim::{Environment, EnvironmentOptions, SimEnvironment};

fn kubectl(env: &SimEnvironment, cache: &Path, args: &[&str]) {
    let output = Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()))
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .env("KUBECACHEDIR", cache)
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn address(env: &SimEnvironment, cluster: &str, service: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(listener) = env
            .listeners()
            .into_iter()
            .find(|l| l.cluster == cluster && l.service.1 == service && l.address.ends_with(":80"))
        {
            return listener.bound;
        }
        assert!(Instant::now() < deadline, "{service} has no listener");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn install(env: &SimEnvironment, cache: &Path, context: &str, label: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    kubectl(
        env,
        cache,
        &[
            "--context",
            context,
            "label",
            "namespace",
            "default",
            label,
            "--overwrite",
        ],
    );
    for file in [
        "bookinfo.yaml",
        "destination-rule-all.yaml",
        "bookinfo-gateway.yaml",
    ] {
        let path = format!("{root}/runbooks/demo/{file}");
        kubectl(
            env,
            cache,
            &["--context", context, "apply", "-n", "default", "-f", &path],
        );
    }
    kubectl(
        env,
        cache,
        &[
            "--context",
            context,
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

async fn wait_ok(client: &reqwest::Client, url: &str, marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status() == 200
            && response.text().await.is_ok_and(|b| b.contains(marker))
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Requests per second with `clients` concurrent clients for `duration`, and the p50/p99
/// latency.
async fn throughput(
    url: &str,
    clients: usize,
    duration: Duration,
) -> (f64, Duration, Duration, u64) {
    let done = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let (url, done, errors) = (url.to_string(), done.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let sent = Instant::now();
                match client.get(&url).send().await {
                    Ok(response) if response.status() == 200 => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(duration).await;
    done.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (
        latencies.len() as f64 / elapsed,
        at(0.5),
        at(0.99),
        errors.load(Ordering::Relaxed),
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let cache = dir.path().join("kubectl-cache");
    let started = Instant::now();
    let env = server
        .block_on(Environment::start(EnvironmentOptions {
            state_dir: Some(dir.path().to_path_buf()),
            propagation_delay: Duration::from_millis(50),
            ..EnvironmentOptions::default()
        }))
        .expect("environment starts");
    println!(
        "environment started in {} ms",
        started.elapsed().as_millis()
    );
    let installed = Instant::now();
    install(&env, &cache, "sim-source", "istio-injection=enabled");
    println!(
        "demo installed and rolled out (kubectl) in {} ms",
        installed.elapsed().as_millis()
    );
    let source = address(&env, "sim-source", "istio-ingressgateway");
    let client = reqwest::Client::new();
    let url = format!("http://{source}/productpage");
    clients.block_on(wait_ok(&client, &url, "Reviews served by"));
    let duration = if quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    };
    for concurrency in [16usize, 1] {
        let (rate, p50, p99, errors) = clients.block_on(throughput(&url, concurrency, duration));
        println!(
            "source gateway /productpage, {concurrency:>2} clients: {rate:>8.0} req/s  p50 {:>6} µs  p99 {:>6} µs  errors {errors}",
            p50.as_micros(),
            p99.as_micros()
        );
    }
    let health = format!("http://{source}/api/v1/products");
    let (rate, p50, p99, _) = clients.block_on(throughput(&health, 16, duration));
    println!(
        "source gateway /api/v1/products, 16 clients: {rate:>8.0} req/s  p50 {:>6} µs  p99 {:>6} µs",
        p50.as_micros(),
        p99.as_micros()
    );

    // Cross-cluster: the target's gateway directly, and through the source's ServiceEntry.
    let az = server.block_on(meshshift::sim::az::run_async(
        &[
            "aks",
            "mesh",
            "enable-ingress-gateway",
            "-g",
            "rg",
            "-n",
            "sim-target",
            "--ingress-gateway-type",
            "external",
        ]
        .map(String::from),
        Some(&env.state_dir),
    ));
    assert_eq!(az.code, 0, "{}", az.stderr);
    install(&env, &cache, "sim-target", "istio.io/rev=asm-1-30");
    kubectl(
        &env,
        &cache,
        &[
            "--context",
            "sim-target",
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
    let target_listener = env
        .listeners()
        .into_iter()
        .find(|l| l.cluster == "sim-target" && l.address.ends_with(":80"))
        .expect("target gateway");
    let target_bound = target_listener.bound.clone();
    let (target_ip, target_port) = target_listener.address.split_once(':').expect("ip:port");
    let manifests = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: target-cluster-http, namespace: default}}\nspec:\n  hosts: [v2.example.com]\n  ports: [{{number: {target_port}, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  endpoints: [{{address: {target_ip}}}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: bookinfo, namespace: default}}\nspec:\n  hosts: [\"*\"]\n  gateways: [bookinfo-gateway]\n  http:\n  - match: [{{uri: {{prefix: /api/v1/products}}}}, {{uri: {{exact: /productpage}}}}]\n    route:\n    - {{destination: {{host: v2.example.com, port: {{number: {target_port}}}}}, weight: 100}}\n"
    );
    let file = dir.path().join("shift.yaml");
    std::fs::write(&file, manifests).expect("manifest written");
    let samples = if quick { 1000 } else { 4000 };
    let target_page = format!("http://{target_bound}/productpage");
    clients.block_on(wait_ok(&client, &target_page, "Reviews served by"));
    kubectl(
        &env,
        &cache,
        &[
            "--context",
            "sim-source",
            "apply",
            "-f",
            &file.to_string_lossy(),
        ],
    );
    // Wait until the source forwards (the page then names a target pod).
    let target_pods = Command::new("kubectl")
        .args([
            "--context",
            "sim-target",
            "get",
            "pods",
            "-n",
            "default",
            "-l",
            "app=reviews",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .env("KUBECONFIG", &env.kubeconfig)
        .env("KUBECACHEDIR", &cache)
        .output()
        .expect("kubectl");
    let target_pods = String::from_utf8_lossy(&target_pods.stdout).to_string();
    let served_by_target = |body: &str| {
        let pod = meshshift::traffic::extract::Extractor::Bookinfo
            .extract(body)
            .unwrap_or_default();
        !pod.is_empty() && target_pods.split_whitespace().any(|p| p == pod)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = clients
            .block_on(async { client.get(&url).send().await.ok()?.text().await.ok() })
            .unwrap_or_default();
        if served_by_target(&body) {
            break;
        }
        assert!(Instant::now() < deadline, "the source never forwarded");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Interleaved, so drift in the machine's load hits both paths alike.
    let (direct, forwarded, all_forwarded) = clients.block_on(async {
        let mut direct = Vec::with_capacity(samples);
        let mut forwarded = Vec::with_capacity(samples);
        let mut all_forwarded = true;
        for _ in 0..samples {
            let sent = Instant::now();
            let body = client
                .get(&target_page)
                .send()
                .await
                .expect("answer")
                .text()
                .await
                .expect("body");
            direct.push(sent.elapsed());
            all_forwarded &= body.contains("Reviews served by");
            let sent = Instant::now();
            let body = client
                .get(&url)
                .send()
                .await
                .expect("answer")
                .text()
                .await
                .expect("body");
            forwarded.push(sent.elapsed());
            all_forwarded &= served_by_target(&body);
        }
        direct.sort();
        forwarded.sort();
        (direct[samples / 2], forwarded[samples / 2], all_forwarded)
    });
    assert!(all_forwarded, "every source request reached the target");
    println!(
        "median /productpage over {samples} interleaved requests: target direct {} µs, through the source's ServiceEntry {} µs: forwarding adds {} µs",
        direct.as_micros(),
        forwarded.as_micros(),
        forwarded.as_micros().saturating_sub(direct.as_micros())
    );
    let (rate, p50, p99, errors) = clients.block_on(throughput(&url, 16, duration));
    println!(
        "source gateway /productpage forwarded to the target, 16 clients: {rate:>8.0} req/s  p50 {:>6} µs  p99 {:>6} µs  errors {errors}",
        p50.as_micros(),
        p99.as_micros()
    );
    server.block_on(env.shutdown()).expect("shutdown");
}
