//! Throughput, latency and memory of the simulated API server, measured over loopback HTTPS
//! with a single client, plus kubectl timings against the simulator and (when
//! `MESHSHIFT_KUBE_APISERVER` is set) a real kube-apiserver.
//!
//! Run with `cargo bench --bench sim_api` (optionally `-- --quick` for fewer iterations).
//! `KUBECTL` names the kubectl binary (default `kubectl`); set it to one fixed version when
//! comparing servers, since version-dispatching kubectl wrappers pick a different client
//! per server version.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meshshift::sim::{ApiServer, ApiServerConfig, Sim};
use serde_json::{Value, json};

fn client(ca_pem: &str) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA")).expect("CA accepted");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .expect("client")
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "reviews", "version": "v1"}},
        "spec": {"containers": [{"name": "reviews", "image": "example.com/bookinfo/reviews:1.0",
                                 "ports": [{"containerPort": 9080}]}]}
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn kubectl_time(kubeconfig: &Path, cache: &Path, args: &[&str], runs: usize) -> Option<Duration> {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let output = Command::new(kubectl)
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", cache)
            .output()
            .ok()?;
        if !output.status.success() {
            eprintln!(
                "  kubectl {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return None;
        }
        samples.push(started.elapsed());
    }
    Some(median(samples))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct RealPlane {
    tool: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for RealPlane {
    fn drop(&mut self) {
        let _ = Command::new(self.tool.join("stop.sh"))
            .env("K8S_DIR", self.dir.path().join("plane"))
            .output();
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 5 } else { 1 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");

    // Start-up of the pair, as `meshshift sim up` does it.
    let mut startups = Vec::new();
    for i in 0..5 {
        let path = dir.path().join(format!("pair-{i}"));
        let started = Instant::now();
        let pair = runtime
            .block_on(Sim::start_pair(&path, |c| c))
            .expect("pair starts");
        startups.push(started.elapsed());
        runtime.block_on(pair.shutdown()).expect("pair stops");
    }
    println!(
        "start-up of sim-source + sim-target (median of 5): {:.1} ms",
        median(startups).as_secs_f64() * 1000.0
    );

    let server = runtime
        .block_on(ApiServer::start(
            ApiServerConfig::named("bench").expect("config"),
        ))
        .expect("server starts");
    let http = client(server.ca_pem());
    let base = server.url();
    let token = server.token().to_string();
    let configmaps = format!("{base}/api/v1/namespaces/default/configmaps");

    runtime.block_on(async {
        let seed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench"}, "data": {"k": "v"}});
        let response = http.post(&configmaps).bearer_auth(&token).header("content-type", "application/json").body(seed.to_string()).send().await.expect("create");
        assert_eq!(response.status(), 201);

        let gets = 10_000 / scale;
        let started = Instant::now();
        for _ in 0..gets {
            let response = http.get(format!("{configmaps}/bench")).bearer_auth(&token).send().await.expect("get");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("body");
        }
        let elapsed = started.elapsed();
        println!("GET one ConfigMap, sequential, HTTP/2: {:.0} requests/s ({gets} in {:.2} s)", gets as f64 / elapsed.as_secs_f64(), elapsed.as_secs_f64());

        let applies = 3_000 / scale;
        let started = Instant::now();
        for i in 0..applies {
            let config = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied-{}\n  labels: {{app: bench}}\ndata:\n  weight: \"{i}\"\n  mode: canary\n",
                i % 50
            );
            let response = http
                .patch(format!("{configmaps}/applied-{}?fieldManager=bench", i % 50))
                .bearer_auth(&token)
                .header("content-type", "application/apply-patch+yaml")
                .body(config)
                .send()
                .await
                .expect("apply");
            assert!(response.status().is_success());
            response.bytes().await.expect("body");
        }
        let elapsed = started.elapsed();
        println!("server-side apply (changing objects), sequential: {:.0} applies/s ({applies} in {:.2} s)", applies as f64 / elapsed.as_secs_f64(), elapsed.as_secs_f64());

        let unchanged = 2_000 / scale;
        let config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: steady\ndata:\n  mode: canary\n";
        let started = Instant::now();
        for _ in 0..unchanged {
            let response = http
                .patch(format!("{configmaps}/steady?fieldManager=bench"))
                .bearer_auth(&token)
                .header("content-type", "application/apply-patch+yaml")
                .body(config)
                .send()
                .await
                .expect("apply");
            assert!(response.status().is_success());
            response.bytes().await.expect("body");
        }
        let elapsed = started.elapsed();
        println!("server-side apply (unchanged object): {:.0} applies/s", unchanged as f64 / elapsed.as_secs_f64());
    });

    // 10,000 Pods: memory and listing.
    let pods_url = format!("{base}/api/v1/namespaces/default/pods");
    let count = 10_000 / scale;
    let before = rss_kib();
    runtime.block_on(async {
        let started = Instant::now();
        let mut batch = Vec::new();
        for i in 0..count {
            let request = http
                .post(&pods_url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(pod(&format!("reviews-{i:05}")).to_string())
                .send();
            batch.push(request);
            if batch.len() == 64 {
                for response in futures::future::join_all(batch.drain(..)).await {
                    assert_eq!(response.expect("create").status(), 201);
                }
            }
        }
        for response in futures::future::join_all(batch.drain(..)).await {
            assert_eq!(response.expect("create").status(), 201);
        }
        let elapsed = started.elapsed();
        println!(
            "create {count} Pods (64 in flight): {:.0} creates/s",
            count as f64 / elapsed.as_secs_f64()
        );
    });
    let after = rss_kib();
    println!(
        "resident memory for {count} stored Pods: {:.1} MiB (VmRSS {} -> {} KiB, includes the client and the change window)",
        (after.saturating_sub(before)) as f64 / 1024.0,
        before,
        after
    );
    runtime.block_on(async {
        let mut json_times = Vec::new();
        let mut table_times = Vec::new();
        let mut bytes = 0;
        for _ in 0..7 {
            let started = Instant::now();
            let response = http.get(&pods_url).bearer_auth(&token).send().await.expect("list");
            let body = response.bytes().await.expect("body");
            json_times.push(started.elapsed());
            bytes = body.len();
            let parsed: Value = serde_json::from_slice(&body).expect("json list");
            assert_eq!(parsed["items"].as_array().map(Vec::len), Some(count));
            let started = Instant::now();
            let response = http
                .get(&pods_url)
                .bearer_auth(&token)
                .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
                .send()
                .await
                .expect("table");
            response.bytes().await.expect("body");
            table_times.push(started.elapsed());
        }
        println!(
            "list {count} Pods as JSON ({:.1} MiB): {:.0} ms median (client receive included, parse excluded)",
            bytes as f64 / 1024.0 / 1024.0,
            median(json_times).as_secs_f64() * 1000.0
        );
        println!("list {count} Pods as a Table (kubectl get): {:.0} ms median", median(table_times).as_secs_f64() * 1000.0);
        let started = Instant::now();
        let response = http.get(format!("{pods_url}?labelSelector=app%3Dreviews,version+in+(v1)&limit=500")).bearer_auth(&token).send().await.expect("page");
        response.bytes().await.expect("body");
        println!("first page of 500 with a set-based selector: {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
    });

    // kubectl against the simulator and a real kube-apiserver.
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sim/bookinfo-mini.yaml");
    let manifest = manifest.to_string_lossy().into_owned();
    let commands: Vec<(&str, Vec<&str>)> = vec![
        ("kubectl get namespaces", vec!["get", "namespaces"]),
        (
            "kubectl apply -f (5 objects, unchanged)",
            vec!["apply", "-f", &manifest],
        ),
        (
            "kubectl apply --server-side -f (5 objects)",
            vec!["apply", "--server-side", "-f", &manifest],
        ),
        (
            "kubectl get deploy -o yaml",
            vec!["get", "deploy", "-o", "yaml"],
        ),
        (
            "kubectl label deploy reviews-v1 x=1 --overwrite",
            vec!["label", "deploy", "reviews-v1", "x=1", "--overwrite"],
        ),
    ];
    let sim_kubeconfig = dir.path().join("sim-kubeconfig");
    server
        .write_kubeconfig(&sim_kubeconfig)
        .expect("kubeconfig");
    let sim_cache = dir.path().join("sim-cache");
    kubectl_time(&sim_kubeconfig, &sim_cache, &["apply", "-f", &manifest], 1);
    let real = std::env::var_os("MESHSHIFT_KUBE_APISERVER")
        .filter(|v| !v.is_empty())
        .and_then(|tool| {
            let plane = RealPlane {
                tool: tool.into(),
                dir: tempfile::tempdir().expect("temporary directory"),
            };
            let output = Command::new(plane.tool.join("start.sh"))
                .env("K8S_NO_CM", "1")
                .env("K8S_DIR", plane.dir.path().join("plane"))
                .env("K8S_PORT", free_port().to_string())
                .env("ETCD_PORT", free_port().to_string())
                .env("ETCD_PEER_PORT", free_port().to_string())
                .env("K8S_CONTEXT", "real")
                .output()
                .ok()?;
            let kubeconfig = String::from_utf8_lossy(&output.stdout)
                .lines()
                .last()?
                .trim()
                .to_string();
            let cache = plane.dir.path().join("cache");
            kubectl_time(
                Path::new(&kubeconfig),
                &cache,
                &["apply", "-f", &manifest],
                1,
            )?;
            Some((plane, kubeconfig, cache))
        });
    if real.is_none() {
        println!("(MESHSHIFT_KUBE_APISERVER not set: kubectl timings against the simulator only)");
    }
    println!(
        "{:<50} {:>12} {:>16}",
        "kubectl command (median of 5, warm cache)", "simulator", "kube-apiserver"
    );
    for (label, args) in &commands {
        let sim_time = kubectl_time(&sim_kubeconfig, &sim_cache, args, 5);
        let real_time = real
            .as_ref()
            .and_then(|(_, kubeconfig, cache)| kubectl_time(Path::new(kubeconfig), cache, args, 5));
        let show = |d: Option<Duration>| {
            d.map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "-".into())
        };
        println!("{label:<50} {:>12} {:>16}", show(sim_time), show(real_time));
    }
    drop(real);
    runtime.block_on(server.shutdown()).expect("server stops");
}
