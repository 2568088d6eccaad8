//! Clusters for the conformance suite: the same scenarios run against every backend.
//!
//! - `simulator`: the simulated pair, started in this process; always runs.
//! - `v1_37`: two kube-apiserver v1.37 control planes (`tests/control-plane`), given as
//!   `MESHSHIFT_REAL_KUBECONFIG`.
//! - `v1_20`: two kube-apiserver v1.20 control planes (the shared `kube-apiserver` tool), given
//!   as `MESHSHIFT_V120_KUBECONFIG`.
//!
//! Each of the two is a `KUBECONFIG` list with the contexts `real-source`, whose
//! controller-manager runs, and `real-target`, without one. `.ci/run` starts all four planes and
//! exports both; their tests are `#[ignore]`d and fail, not pass, when run without them.
//!
//! The variables the ignored suites read:
//!
//! | variable | what |
//! |---|---|
//! | `MESHSHIFT_REAL_KUBECONFIG` | the v1.37 pair (conformance, `control_plane`) |
//! | `MESHSHIFT_V120_KUBECONFIG` | the v1.20 pair (conformance) |
//! | `MESHSHIFT_CONTROL_PLANE` | the v1.37 tool dir, `tests/control-plane` (identity, differential) |
//! | `MESHSHIFT_KUBE_APISERVER` | the v1.20 tool dir (identity) |
//! | `MESHSHIFT_FIXTURES` | the shared fixtures (`control_plane`: Istio and Gateway API CRDs) |

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fault_proxy::{self, Fault, FaultProxy};
use crate::sim_env_support::TestEnv;
use crate::test::{Test, repository_root};

/// One pair of clusters to run a scenario against.
#[derive(Clone)]
pub struct Backend {
    /// Value for `KUBECONFIG`.
    pub kubeconfig: String,
    pub source: &'static str,
    pub target: &'static str,
    /// Value for `KUBECONFIG` when kubectl checks or prepares: the servers themselves, past any
    /// fault proxy (kubectl is the independent client, not the one under test).
    pub kubectl_kubeconfig: String,
    /// The simulated pair, kept running while the backend lives.
    _simulator: Option<Arc<TestEnv>>,
    /// The fault proxies in front of the servers, and the directory of their kubeconfigs.
    proxies: Option<Arc<(Vec<FaultProxy>, tempfile::TempDir)>>,
}

impl Backend {
    /// The simulated pair.
    pub fn simulator() -> Backend {
        let env = TestEnv::start();
        let kubeconfig = env.kubeconfig().to_string_lossy().into_owned();
        Backend {
            kubectl_kubeconfig: kubeconfig.clone(),
            kubeconfig,
            source: "sim-source",
            target: "sim-target",
            _simulator: Some(Arc::new(env)),
            proxies: None,
        }
    }

    /// The two kube-apiserver v1.37 planes `.ci/run` starts.
    pub fn v1_37() -> Backend {
        Backend::real(
            "MESHSHIFT_REAL_KUBECONFIG",
            ".ci/run starts two kube-apiserver v1.37 planes (tests/control-plane) and sets it",
        )
    }

    /// The two kube-apiserver v1.20 planes `.ci/run` starts.
    pub fn v1_20() -> Backend {
        Backend::real(
            "MESHSHIFT_V120_KUBECONFIG",
            ".ci/run starts two kube-apiserver v1.20 planes and sets it",
        )
    }

    /// The v1.37 planes, each behind a [`FaultProxy`] seeded from `MESHSHIFT_FAULT_SEED`
    /// (default 1) and the scenario's name, so that each scenario meets its own faults.
    pub fn v1_37_through_faults(scenario: &str) -> Backend {
        let direct = Backend::v1_37();
        let base: u64 = std::env::var("MESHSHIFT_FAULT_SEED")
            .ok()
            .map(|s| s.parse().expect("MESHSHIFT_FAULT_SEED is a number"))
            .unwrap_or(1);
        // FNV-1a: stable across builds, unlike the standard hasher.
        let seed = scenario
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325 ^ base, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        let dir = tempfile::tempdir().unwrap();
        let (kubeconfig, proxies) =
            fault_proxy::proxied_kubeconfig(&direct.kubeconfig, dir.path(), seed);
        Backend {
            kubeconfig,
            proxies: Some(Arc::new((proxies, dir))),
            ..direct
        }
    }

    fn real(variable: &str, why: &str) -> Backend {
        let kubeconfig = crate::test::required_env(variable, why);
        Backend {
            kubectl_kubeconfig: kubeconfig.clone(),
            kubeconfig,
            source: "real-source",
            target: "real-target",
            _simulator: None,
            proxies: None,
        }
    }

    /// Every request the fault proxies saw (none without them).
    pub fn proxied_requests(&self) -> Vec<fault_proxy::Seen> {
        self.proxies
            .iter()
            .flat_map(|p| p.0.iter().flat_map(|proxy| proxy.seen()))
            .collect()
    }

    /// Through fault proxies: prints the faults injected and panics if a create or JSON patch
    /// reached a server twice, or if no request went through the proxies.
    pub fn assert_no_write_repeated(&self, scenario: &str) {
        let Some(proxies) = &self.proxies else {
            return;
        };
        let seen = self.proxied_requests();
        let seeds: Vec<_> = proxies.0.iter().map(|p| p.seed).collect();
        let counts = fault_proxy::faults(&seen);
        let writes: Vec<_> = seen
            .iter()
            .filter(|r| r.fault.forwarded() && !r.is_idempotent())
            .collect();
        let unsure = writes.iter().filter(|r| r.fault != Fault::None).count();
        eprintln!(
            "through faults: {scenario}: seeds {seeds:?}, {} requests, {} creates or JSON patches reached the servers ({unsure} of them with the answer lost), faults {counts:?}",
            seen.len(),
            writes.len()
        );
        let repeated = fault_proxy::repeated_writes(&seen);
        assert!(
            repeated.is_empty(),
            "writes made twice:\n{}",
            repeated.join("\n")
        );
        assert!(
            !seen.is_empty(),
            "no request went through the proxies: they are not in the path"
        );
    }
}

/// A conformance scenario `fn name(backend: &Backend)` as four tests: `name::on_the_simulator`,
/// `name::on_kube_apiserver_v1_37`, `name::on_kube_apiserver_v1_20` and
/// `name::on_kube_apiserver_v1_37_through_faults` (the v1.37 pair behind
/// [`crate::fault_proxy`]; the last three ignored unless their servers are provided).
macro_rules! conformance {
    ($name:ident) => {
        mod $name {
            #[test]
            fn on_the_simulator() {
                super::$name(&crate::cluster_support::Backend::simulator());
            }

            #[test]
            #[ignore = "needs MESHSHIFT_REAL_KUBECONFIG: two kube-apiserver v1.37 planes (.ci/run starts them)"]
            fn on_kube_apiserver_v1_37() {
                super::$name(&crate::cluster_support::Backend::v1_37());
            }

            #[test]
            #[ignore = "needs MESHSHIFT_V120_KUBECONFIG: two kube-apiserver v1.20 planes (.ci/run starts them)"]
            fn on_kube_apiserver_v1_20() {
                super::$name(&crate::cluster_support::Backend::v1_20());
            }

            #[test]
            #[ignore = "needs MESHSHIFT_REAL_KUBECONFIG: two kube-apiserver v1.37 planes (.ci/run starts them)"]
            fn on_kube_apiserver_v1_37_through_faults() {
                let backend = crate::cluster_support::Backend::v1_37_through_faults(stringify!($name));
                super::$name(&backend);
                backend.assert_no_write_repeated(stringify!($name));
            }
        }
    };
}
pub(crate) use conformance;

/// A namespace name no other test uses.
pub fn unique_namespace(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn demo_dir() -> PathBuf {
    repository_root().join("runbooks/demo")
}

pub fn istio_crds() -> PathBuf {
    repository_root().join("sim/src/assets/istio-crds.yaml")
}

impl Backend {
    /// A runbook run against this backend with `SOURCE`, `TARGET`, `NS`, `DEMO` and `CRDS` set.
    /// `--wait-lock`: the scenarios run at the same time, and on a real pair they share the
    /// clusters, whose run lock lets one run write at a time.
    pub fn test(&self, namespace: &str, source: &str) -> Test {
        Test::new()
            .env("KUBECONFIG", &self.kubeconfig)
            .runbook(source)
            .args(&[
                "--wait-lock",
                "--set",
                &format!("SOURCE={}", self.source),
                "--set",
                &format!("TARGET={}", self.target),
                "--set",
                &format!("NS={namespace}"),
                "--set",
                &format!("DEMO={}", demo_dir().display()),
                "--set",
                &format!("CRDS={}", istio_crds().display()),
            ])
    }

    /// Runs kubectl against one of this backend's contexts.
    pub fn kubectl(&self, context: &str, args: &[&str]) -> std::process::Output {
        std::process::Command::new("kubectl")
            // `kubectl config …` reads the kubeconfig under test; the rest talk to the servers.
            .env(
                "KUBECONFIG",
                if args.first() == Some(&"config") {
                    &self.kubeconfig
                } else {
                    &self.kubectl_kubeconfig
                },
            )
            .arg("--context")
            .arg(context)
            .args(args)
            .output()
            .expect("kubectl runs")
    }
}
