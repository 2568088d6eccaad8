//! Helpers for tests of complete simulated environments: one in-process environment per
//! test (its own state directory and loopback slot), kubectl against its contexts, curl and
//! an HTTP client that honour its port mappings.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use meshshift::sim::{Environment, EnvironmentOptions, SimEnvironment};

use crate::sim_support::{kubectl, ok};
use crate::test::meshshift_binary;

/// The repository's runbooks directory.
pub fn repo_path(relative: &str) -> String {
    crate::test::repository_root()
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

/// A running environment for one test.
pub struct TestEnv {
    pub runtime: tokio::runtime::Runtime,
    pub env: Option<SimEnvironment>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl TestEnv {
    /// An environment with default options (mapped ports, so the mapping is always used).
    pub fn start() -> TestEnv {
        TestEnv::start_with(|options| options)
    }

    /// An environment whose options `configure` adjusts.
    pub fn start_with(configure: impl FnOnce(EnvironmentOptions) -> EnvironmentOptions) -> TestEnv {
        let runtime = crate::sim_support::runtime();
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = configure(EnvironmentOptions {
            state_dir: Some(dir.path().to_path_buf()),
            ..EnvironmentOptions::default()
        });
        let env = runtime
            .block_on(Environment::start(options))
            .expect("environment starts");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(32)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        TestEnv {
            runtime,
            env: Some(env),
            dir,
            http,
        }
    }

    pub fn env(&self) -> &SimEnvironment {
        self.env.as_ref().expect("environment running")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.env().kubeconfig.clone()
    }

    /// kubectl with `--context <context>`.
    pub fn kubectl(&self, context: &str, args: &[&str]) -> Output {
        let mut all = vec!["--context", context];
        all.extend_from_slice(args);
        kubectl(
            &self.kubeconfig(),
            &self.dir.path().join("kubectl-cache"),
            &all,
            None,
        )
    }

    /// kubectl with `input` on stdin.
    pub fn kubectl_stdin(&self, context: &str, args: &[&str], input: &str) -> Output {
        let mut all = vec!["--context", context];
        all.extend_from_slice(args);
        kubectl(
            &self.kubeconfig(),
            &self.dir.path().join("kubectl-cache"),
            &all,
            Some(input),
        )
    }

    /// stdout of a successful kubectl.
    #[track_caller]
    pub fn kubectl_ok(&self, context: &str, args: &[&str]) -> String {
        ok(&self.kubectl(context, args))
    }

    /// Applies a manifest from stdin.
    #[track_caller]
    pub fn apply(&self, context: &str, namespace: &str, manifest: &str) -> String {
        ok(&self.kubectl_stdin(context, &["apply", "-n", namespace, "-f", "-"], manifest))
    }

    /// `ip:port` of a LoadBalancer Service's named port, read with kubectl as the guide does.
    pub fn service_address(&self, context: &str, namespace: &str, service: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ip = self.kubectl_ok(
                context,
                &[
                    "get",
                    "service",
                    service,
                    "-n",
                    namespace,
                    "-o",
                    "jsonpath={.status.loadBalancer.ingress[0].ip}",
                ],
            );
            let port = self.kubectl_ok(
                context,
                &[
                    "get",
                    "service",
                    service,
                    "-n",
                    namespace,
                    "-o",
                    "jsonpath={.spec.ports[?(@.name==\"http2\")].port}",
                ],
            );
            if !ip.is_empty() && !port.is_empty() {
                return format!("{ip}:{port}");
            }
            assert!(
                Instant::now() < deadline,
                "{service} got no load balancer address"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// curl's `--connect-to` arguments for the environment's port mappings.
    pub fn connect_to_args(&self) -> Vec<String> {
        self.env()
            .connect_to()
            .into_iter()
            .flat_map(|(from, to)| ["--connect-to".to_string(), format!("{from}:{to}")])
            .collect()
    }

    /// Where `address` (`ip:port`) is really served.
    pub fn served_at(&self, address: &str) -> String {
        self.env()
            .connect_to()
            .into_iter()
            .find(|(from, _)| from == address)
            .map(|(_, to)| to)
            .unwrap_or_else(|| address.to_string())
    }

    /// GET `http://<address><path>` with extra headers: status and body (status 0 when no
    /// answer came).
    pub fn get(&self, address: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let url = format!("http://{}{path}", self.served_at(address));
        let mut request = self.http.get(url).timeout(Duration::from_secs(10));
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            request = request.header("host", address);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.runtime.block_on(async move {
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (status, response.text().await.unwrap_or_default())
                }
                Err(_) => (0, String::new()),
            }
        })
    }

    /// A request to `http://<address><path>` with extra headers: status, response headers
    /// (lower-case names) and body (status 0 when no answer came).
    pub fn send(
        &self,
        method: &str,
        address: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, String) {
        let url = format!("http://{}{path}", self.served_at(address));
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, url)
            .timeout(Duration::from_secs(10));
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            request = request.header("host", address);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.runtime.block_on(async move {
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response
                        .headers()
                        .iter()
                        .map(|(n, v)| {
                            (
                                n.as_str().to_string(),
                                v.to_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect();
                    (status, headers, response.text().await.unwrap_or_default())
                }
                Err(_) => (0, Vec::new(), String::new()),
            }
        })
    }

    /// Polls GET until `check` accepts the answer, failing after `timeout`.
    #[track_caller]
    pub fn get_until(
        &self,
        address: &str,
        path: &str,
        timeout: Duration,
        check: impl Fn(u16, &str) -> bool,
    ) -> (u16, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self.get(address, path, &[]);
            if check(status, &body) {
                return (status, body);
            }
            assert!(
                Instant::now() < deadline,
                "GET {address}{path} never gave the expected answer; last: {status} {}",
                body.chars().take(300).collect::<String>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `meshshift sim az` in-process against this environment.
    pub fn az(&self, args: &str) -> meshshift::sim::az::AzOutcome {
        let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
        let state_dir = self.env().state_dir.clone();
        self.runtime
            .block_on(meshshift::sim::az::run_async(&args, Some(&state_dir)))
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(env) = self.env.take() {
            let _ = self.runtime.block_on(env.shutdown());
        }
    }
}

/// The reviews pod names on a bookinfo page.
pub fn reviews_pod(body: &str) -> Option<String> {
    meshshift::traffic::extract::Extractor::Bookinfo.extract(body)
}

/// The smallest `lo` and largest `hi` with P(X < lo) and P(X > hi) each below `alpha / 2`
/// for X ~ Binomial(n, p): the two-sided acceptance interval of a count.
pub fn binomial_bounds(n: u64, p: f64, alpha: f64) -> (u64, u64) {
    let mut pmf = vec![0.0f64; (n + 1) as usize];
    for k in 0..=n {
        let mut log = 0.0;
        for i in 0..k {
            log += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
        }
        pmf[k as usize] = (log + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()).exp();
    }
    let mut lo = 0;
    let mut tail = 0.0;
    while lo < n && tail + pmf[lo as usize] < alpha / 2.0 {
        tail += pmf[lo as usize];
        lo += 1;
    }
    let mut hi = n;
    let mut tail = 0.0;
    while hi > 0 && tail + pmf[hi as usize] < alpha / 2.0 {
        tail += pmf[hi as usize];
        hi -= 1;
    }
    (lo, hi)
}

/// stdout and stderr as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `meshshift` against an in-process environment, through its kubeconfig alone (which also
/// carries its port mappings).
pub fn meshshift(env: &TestEnv, args: &[&str]) -> Output {
    Command::new(meshshift_binary())
        .arg("--state-dir")
        .arg(env.dir.path().join("state"))
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("MESHSHIFT_CONNECT_TO")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("meshshift runs")
}

/// kubectl's arguments that print bookinfo's VirtualService routes as `host=weight host=weight`.
const VS_WEIGHTS: &[&str] = &[
    "get",
    "virtualservice",
    "bookinfo",
    "-n",
    "bookinfo",
    "-o",
    "jsonpath={range .spec.http[0].route[*]}{.destination.host}={.weight} {end}",
];

/// bookinfo's VirtualService weights on the source, read with kubectl: `productpage=90 v2.example.com=10`.
pub fn vs_weights(kubectl: &dyn Fn(&[&str]) -> String) -> String {
    kubectl(VS_WEIGHTS).trim().to_string()
}

/// The migration runbook from sim-source to sim-target on `env`, with `extra` arguments.
pub fn migrate(env: &TestEnv, extra: &[&str]) -> Output {
    let runbook = repo_path("runbooks/migrate-oss-istio-to-aks.rhai");
    let mut args = vec![
        "run",
        runbook.as_str(),
        "--yes",
        "--set",
        "SOURCE_CLUSTER=sim-source",
        "--set",
        "TARGET_CLUSTER=sim-target",
    ];
    args.extend_from_slice(extra);
    meshshift(env, &args)
}

/// The AKS guide's source set-up, with kubectl only.
pub fn guide_source_setup(kubectl: &dyn Fn(&[&str]) -> String) {
    kubectl(&["create", "namespace", "bookinfo"]);
    kubectl(&["label", "namespace", "bookinfo", "istio-injection=enabled"]);
    for file in [
        "bookinfo.yaml",
        "destination-rule-all.yaml",
        "bookinfo-gateway.yaml",
    ] {
        kubectl(&[
            "apply",
            "-n",
            "bookinfo",
            "-f",
            &repo_path(&format!("runbooks/demo/{file}")),
        ]);
    }
    kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment",
        "--all",
        "-n",
        "bookinfo",
        "--timeout=60s",
    ]);
}
