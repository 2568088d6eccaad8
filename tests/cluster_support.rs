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

use crate::sim_env_support::TestEnv;
use crate::test::{Test, repository_root};

/// One pair of clusters to run a scenario against.
#[derive(Clone)]
pub struct Backend {
    /// Value for `KUBECONFIG`.
    pub kubeconfig: String,
    pub source: &'static str,
    pub target: &'static str,
    /// The simulated pair, kept running while the backend lives.
    _simulator: Option<Arc<TestEnv>>,
}

impl Backend {
    /// The simulated pair.
    pub fn simulator() -> Backend {
        let env = TestEnv::start();
        Backend {
            kubeconfig: env.kubeconfig().to_string_lossy().into_owned(),
            source: "sim-source",
            target: "sim-target",
            _simulator: Some(Arc::new(env)),
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

    fn real(variable: &str, why: &str) -> Backend {
        Backend {
            kubeconfig: crate::test::required_env(variable, why),
            source: "real-source",
            target: "real-target",
            _simulator: None,
        }
    }
}

/// A conformance scenario `fn name(backend: &Backend)` as three tests: `name::on_the_simulator`,
/// `name::on_kube_apiserver_v1_37` and `name::on_kube_apiserver_v1_20` (both ignored unless
/// their servers are provided).
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
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--context")
            .arg(context)
            .args(args)
            .output()
            .expect("kubectl runs")
    }
}
