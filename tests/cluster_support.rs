//! Clusters for the conformance suite: the same scenarios run against every backend available.
//!
//! - `real`: two upstream kube-apiservers (v1.20) started by `.ci/run`, which exports
//!   `MESHSHIFT_REAL_KUBECONFIG` (a `KUBECONFIG` list with contexts `real-source`, whose
//!   controller-manager runs, and `real-target`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::test::{Test, repository_root, skip};

/// One pair of clusters to run a scenario against.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Value for `KUBECONFIG`.
    pub kubeconfig: String,
    pub source: &'static str,
    pub target: &'static str,
}

/// Every backend this run can use; says on stderr which are skipped and why.
pub fn backends(test: &str) -> Vec<Backend> {
    let mut found = Vec::new();
    match std::env::var("MESHSHIFT_REAL_KUBECONFIG") {
        Ok(kubeconfig) if !kubeconfig.is_empty() => found.push(Backend {
            kubeconfig,
            source: "real-source",
            target: "real-target",
        }),
        _ => skip(
            &format!("{test} on a real kube-apiserver"),
            "MESHSHIFT_REAL_KUBECONFIG is not set (.ci/run starts two and sets it)",
        ),
    }
    found
}

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
    repository_root().join("src/sim/assets/istio-crds.yaml")
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
