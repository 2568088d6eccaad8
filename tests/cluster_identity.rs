//! A handle is pinned to its cluster: when another cluster answers at the same address, with
//! the same CA and token, writes are refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use meshshift::cluster::effects::{Mutation, WriteOptions};
use meshshift::cluster::{Cluster, KubeconfigSource};
use serde_json::json;

use crate::test::{free_port, required_env};

/// A control plane started by the shared `start.sh`, stopped (and wiped) on drop.
struct Plane {
    tool: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Plane {
    fn start(tool: &Path, dir: &Path, [port, etcd_port, peer_port]: [u16; 3]) -> (Plane, PathBuf) {
        let output = Command::new(tool.join("start.sh"))
            .env("K8S_DIR", dir)
            .env("K8S_PORT", port.to_string())
            .env("ETCD_PORT", etcd_port.to_string())
            .env("ETCD_PEER_PORT", peer_port.to_string())
            .env("K8S_CONTEXT", "pinned")
            .env("K8S_NO_CM", "1")
            .output()
            .expect("start.sh runs");
        assert!(
            output.status.success(),
            "start.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let kubeconfig = String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        (
            Plane {
                tool: tool.to_path_buf(),
                dir: dir.to_path_buf(),
                port,
            },
            PathBuf::from(kubeconfig),
        )
    }

    fn stop(&self) {
        let _ = Command::new(self.tool.join("stop.sh"))
            .env("K8S_DIR", &self.dir)
            .env("K8S_PORT", self.port.to_string())
            .output();
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.stop();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
#[ignore = "needs MESHSHIFT_CONTROL_PLANE: the kube-apiserver v1.37 tool, tests/control-plane (.ci/run sets it)"]
fn a_different_cluster_behind_the_same_context_is_refused_v1_37() {
    refuses_a_different_cluster(PathBuf::from(required_env(
        "MESHSHIFT_CONTROL_PLANE",
        ".ci/run builds tests/control-plane and sets it",
    )));
}

#[test]
#[ignore = "needs MESHSHIFT_KUBE_APISERVER: the kube-apiserver v1.20 tool (.ci/run sets it)"]
fn a_different_cluster_behind_the_same_context_is_refused_v1_20() {
    refuses_a_different_cluster(PathBuf::from(required_env(
        "MESHSHIFT_KUBE_APISERVER",
        ".ci/run builds the kube-apiserver v1.20 tool and sets it",
    )));
}

/// Both tools keep the same `start.sh`/`stop.sh` conventions and a plane's CA and token in
/// `pki/` of its state dir, so one scenario serves both.
fn refuses_a_different_cluster(tool: PathBuf) {
    let work = tempfile::tempdir().unwrap();
    // Three separate free ports: the two tools' tests run at the same time.
    let ports = [free_port(), free_port(), free_port()];
    let first = work.path().join("first");
    let (plane, kubeconfig) = Plane::start(&tool, &first, ports);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let source = KubeconfigSource {
        path: Some(kubeconfig.clone()),
    };
    let handle = runtime
        .block_on(Cluster::connect(&source, Some("pinned"), None))
        .expect("connect");
    let configmap = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pin", "namespace": "default"}, "data": {"a": "1"}});
    runtime
        .block_on(handle.mutate(
            Mutation::Apply(vec![configmap.clone()]),
            &WriteOptions::default(),
        ))
        .expect("first write");

    // Same address, CA and token; a fresh store, hence a new kube-system uid.
    plane.stop();
    let second = work.path().join("second");
    copy_dir(&first.join("pki"), &second.join("pki"));
    let (_replacement, _) = Plane::start(&tool, &second, ports);
    let error = runtime
        .block_on(handle.mutate(Mutation::Apply(vec![configmap]), &WriteOptions::default()))
        .expect_err("the write must be refused");
    let text = error.to_string();
    assert!(
        text.contains("is no longer the cluster this handle was bound to"),
        "{text}"
    );
    assert!(text.contains("refusing to act"), "{text}");
    // A new handle on the same context binds to the new cluster and may write.
    let rebound = runtime
        .block_on(Cluster::connect(&source, Some("pinned"), None))
        .expect("rebind");
    assert_ne!(
        rebound.identity().kube_system_uid,
        handle.identity().kube_system_uid
    );
    assert_eq!(
        rebound.identity().ca_fingerprint,
        handle.identity().ca_fingerprint
    );
}
