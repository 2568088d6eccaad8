//! Clusters for the conformance suite: the same scenarios run against every backend.
//!
//! - `simulator`: the simulated pair, started in this process; always runs.
//! - `real`: two upstream kube-apiservers started by `.ci/run`, which exports
//!   `MESHSHIFT_REAL_KUBECONFIG` (a `KUBECONFIG` list with contexts `real-source`, whose
//!   controller-manager runs, and `real-target`). Its tests are `#[ignore]`d without it, and
//!   fail, not pass, when run without it.

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

    /// The two real kube-apiservers `.ci/run` starts.
    pub fn real() -> Backend {
        let kubeconfig = crate::test::required_env(
            "MESHSHIFT_REAL_KUBECONFIG",
            ".ci/run starts two real kube-apiservers and sets it",
        );
        Backend {
            kubeconfig,
            source: "real-source",
            target: "real-target",
            _simulator: None,
        }
    }
}

/// A conformance scenario `fn name(backend: &Backend)` as two tests, `name::on_the_simulator`
/// and `name::on_a_real_kube_apiserver` (ignored unless the real servers are provided).
macro_rules! conformance {
    ($name:ident) => {
        mod $name {
            #[test]
            fn on_the_simulator() {
                super::$name(&crate::cluster_support::Backend::simulator());
            }

            #[test]
            #[ignore = "needs MESHSHIFT_REAL_KUBECONFIG: two real kube-apiservers (.ci/run starts them)"]
            fn on_a_real_kube_apiserver() {
                super::$name(&crate::cluster_support::Backend::real());
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
    pub fn test(&self, namespace: &str, source: &str) -> Test {
        Test::new()
            .env("KUBECONFIG", &self.kubeconfig)
            .runbook(source)
            .args(&[
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
