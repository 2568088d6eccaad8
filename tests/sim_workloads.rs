//! Workload agents of a simulated environment, seen through kubectl: Deployments,
//! StatefulSets and DaemonSets roll out, pods get hashed names, a node, IPs and Ready, and
//! meshshift's own rollout check agrees.

use meshshift::cluster::conditions::is_rolled_out;
use regex::Regex;

use crate::sim_env_support::TestEnv;

const SOURCE: &str = "sim-source";

fn object(env: &TestEnv, kind: &str, name: &str) -> serde_json::Value {
    serde_json::from_str(&env.kubectl_ok(SOURCE, &["get", kind, name, "-n", "apps", "-o", "json"]))
        .expect("json")
}

#[test]
fn deployments_stateful_sets_and_daemon_sets_roll_out() {
    let env = TestEnv::start();
    env.kubectl_ok(SOURCE, &["create", "namespace", "apps"]);
    let nodes = env.kubectl_ok(SOURCE, &["get", "nodes", "-o", "jsonpath={.items[*].metadata.name} {.items[*].status.conditions[0].type}={.items[*].status.conditions[0].status}"]);
    assert_eq!(nodes, "sim-source-worker Ready=True");
    env.apply(SOURCE, "apps", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx:1}]}\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  replicas: 2\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: db, image: postgres:16}]}\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec: {containers: [{name: agent, image: agent:1}]}\n");
    for workload in ["deployment/web", "statefulset/db", "daemonset/agent"] {
        let status = env.kubectl_ok(
            SOURCE,
            &["rollout", "status", workload, "-n", "apps", "--timeout=60s"],
        );
        assert!(
            // kubectl says "partitioned roll out complete" for StatefulSets (partition 0).
            status.contains("successfully rolled out")
                || status.contains("roll out complete")
                || status.contains("rolling update complete"),
            "{workload}: {status}"
        );
    }
    env.kubectl_ok(
        SOURCE,
        &[
            "wait",
            "deployment/web",
            "-n",
            "apps",
            "--for=condition=Available",
            "--timeout=30s",
        ],
    );
    for (kind, name) in [
        ("deployment", "web"),
        ("statefulset", "db"),
        ("daemonset", "agent"),
    ] {
        assert_eq!(
            is_rolled_out(&object(&env, kind, name)),
            Ok(()),
            "{kind}/{name}"
        );
    }
    let pods = env.kubectl_ok(SOURCE, &["get", "pods", "-n", "apps", "-l", "app=web", "-o",
                                        "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.status.phase}{\"\\n\"}{end}"]);
    let name = Regex::new("^web-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5} sim-source-worker 10\\.244\\.[0-9]+\\.[0-9]+ Running$").expect("regex");
    assert_eq!(pods.lines().count(), 3, "{pods}");
    assert!(pods.lines().all(|l| name.is_match(l)), "{pods}");
    let owner = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "pods",
            "-n",
            "apps",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[0].metadata.ownerReferences[0].kind}",
        ],
    );
    assert_eq!(owner, "ReplicaSet");
    let db = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "pods",
            "-n",
            "apps",
            "-l",
            "app=db",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    assert_eq!(db, "db-0 db-1");

    // Template changes roll out; scaling to zero and back works.
    env.kubectl_ok(
        SOURCE,
        &[
            "set",
            "image",
            "statefulset/db",
            "db=postgres:17",
            "-n",
            "apps",
        ],
    );
    env.kubectl_ok(
        SOURCE,
        &[
            "rollout",
            "status",
            "statefulset/db",
            "-n",
            "apps",
            "--timeout=60s",
        ],
    );
    let images = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "pods",
            "-n",
            "apps",
            "-l",
            "app=db",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
    );
    assert_eq!(images, "postgres:17 postgres:17");
    env.kubectl_ok(
        SOURCE,
        &[
            "set",
            "image",
            "deployment/web",
            "web=nginx:2",
            "-n",
            "apps",
        ],
    );
    env.kubectl_ok(
        SOURCE,
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "apps",
            "--timeout=60s",
        ],
    );
    let images = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "pods",
            "-n",
            "apps",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
    );
    assert_eq!(images, "nginx:2 nginx:2 nginx:2");
    env.kubectl_ok(
        SOURCE,
        &["scale", "deployment/web", "-n", "apps", "--replicas=0"],
    );
    env.kubectl_ok(
        SOURCE,
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "apps",
            "--timeout=60s",
        ],
    );
    crate::sim_support::eventually(
        std::time::Duration::from_secs(30),
        "web scaled to zero",
        || {
            env.kubectl_ok(
                SOURCE,
                &["get", "pods", "-n", "apps", "-l", "app=web", "-o", "name"],
            )
            .is_empty()
            .then_some(())
        },
    );
    env.kubectl_ok(
        SOURCE,
        &["scale", "deployment/web", "-n", "apps", "--replicas=2"],
    );
    env.kubectl_ok(
        SOURCE,
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "apps",
            "--timeout=60s",
        ],
    );
    assert_eq!(is_rolled_out(&object(&env, "deployment", "web")), Ok(()));
}
