//! Sidecar injection in the simulated clusters: the simulator's rules (Istio's webhook
//! selectors and istiod's checks) agree with meshshift's own explanation logic on every
//! case, and each rule holds live at admission.

use std::collections::BTreeMap;

use meshshift::cluster::mesh::{self, ControlPlane, InjectionContext};
use meshshift::sim::injection::{self, injector_configuration};
use serde_json::json;

use crate::sim_env_support::TestEnv;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn plane(revision: &str, addon: bool) -> ControlPlane {
    ControlPlane {
        namespace: if addon {
            "aks-istio-system".into()
        } else {
            "istio-system".into()
        },
        deployment: if addon {
            format!("istiod-{revision}")
        } else {
            "istiod".into()
        },
        revision: revision.into(),
        version: Some("1.30.2".into()),
        image: None,
        addon,
    }
}

type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, &'static str)>,
);

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let namespace_labels: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("istio-injection", "enabled")],
        vec![("istio-injection", "disabled")],
        vec![("istio.io/rev", "default")],
        vec![("istio.io/rev", "asm-1-30")],
        vec![("istio.io/rev", "canary")],
        vec![("istio-injection", "enabled"), ("istio.io/rev", "asm-1-30")],
    ];
    let pod_labels: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("sidecar.istio.io/inject", "true")],
        vec![("sidecar.istio.io/inject", "false")],
        vec![("istio.io/rev", "asm-1-30")],
        vec![("istio.io/rev", "default")],
        vec![
            ("sidecar.istio.io/inject", "true"),
            ("istio.io/rev", "asm-1-30"),
        ],
    ];
    for namespace in ["bookinfo", "kube-system"] {
        for ns in &namespace_labels {
            for pod in &pod_labels {
                cases.push((namespace, ns.clone(), pod.clone()));
            }
        }
    }
    cases
}

fn compare(configuration: serde_json::Value, planes: &[ControlPlane]) -> usize {
    let webhooks = injection::webhooks(&[configuration]);
    let annotation_cases: [Vec<(&str, &str)>; 3] = [
        vec![],
        vec![("sidecar.istio.io/inject", "true")],
        vec![("sidecar.istio.io/inject", "false")],
    ];
    let mut injected = 0;
    for (namespace, ns, pod_labels) in cases() {
        for annotations in &annotation_cases {
            let pod = json!({"metadata": {"labels": labels(&pod_labels), "annotations": labels(annotations)},
                             "spec": {"containers": [{"name": "app"}]}});
            let simulated = injection::injecting_revision(&webhooks, namespace, &labels(&ns), &pod);
            let explained = mesh::injecting_revision(
                &InjectionContext {
                    namespace,
                    namespace_labels: labels(&ns),
                    pod_labels: labels(&pod_labels),
                    pod_annotations: labels(annotations),
                    ..InjectionContext::default()
                },
                planes,
            )
            .ok();
            assert_eq!(
                simulated, explained,
                "namespace {namespace} {ns:?}, pod labels {pod_labels:?}, annotations {annotations:?}"
            );
            injected += usize::from(simulated.is_some());
        }
    }
    injected
}

#[test]
fn the_simulator_and_meshshift_agree_on_who_gets_a_sidecar() {
    let open_source = compare(
        injector_configuration("default", true, ("istio-system", "istiod"), ""),
        &[plane("default", false)],
    );
    let addon = compare(
        injector_configuration(
            "asm-1-30",
            false,
            ("aks-istio-system", "istiod-asm-1-30"),
            "",
        ),
        &[plane("asm-1-30", true)],
    );
    assert!(open_source > addon && addon > 0, "{open_source} vs {addon}");
}

#[test]
fn each_injection_rule_holds_at_admission() {
    let env = TestEnv::start();
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        // context, namespace label, pod labels, pod annotations, injected
        (
            "sim-source",
            "istio-injection=enabled",
            "{app: web}",
            "{}",
            true,
        ),
        (
            "sim-source",
            "istio.io/rev=default",
            "{app: web}",
            "{}",
            true,
        ),
        (
            "sim-source",
            "istio-injection=disabled",
            "{app: web, sidecar.istio.io/inject: \"true\"}",
            "{}",
            false,
        ),
        (
            "sim-source",
            "istio-injection=enabled",
            "{app: web, sidecar.istio.io/inject: \"false\"}",
            "{}",
            false,
        ),
        (
            "sim-source",
            "none=x",
            "{app: web, sidecar.istio.io/inject: \"true\"}",
            "{}",
            true,
        ),
        ("sim-source", "none=x", "{app: web}", "{}", false),
        (
            "sim-source",
            "istio.io/rev=asm-1-30",
            "{app: web}",
            "{}",
            false,
        ),
        (
            "sim-source",
            "istio-injection=enabled",
            "{app: web}",
            "{sidecar.istio.io/nativeSidecar: \"true\"}",
            true,
        ),
        (
            "sim-target",
            "istio.io/rev=asm-1-30",
            "{app: web}",
            "{}",
            true,
        ),
        (
            "sim-target",
            "istio-injection=enabled",
            "{app: web}",
            "{}",
            false,
        ),
        (
            "sim-target",
            "none=x",
            "{app: web, istio.io/rev: asm-1-30}",
            "{}",
            true,
        ),
        (
            "sim-target",
            "none=x",
            "{app: web, sidecar.istio.io/inject: \"true\"}",
            "{}",
            false,
        ),
    ];
    for (index, (context, label, pod_labels, annotations, expected)) in cases.iter().enumerate() {
        let namespace = format!("case-{index}");
        env.kubectl_ok(context, &["create", "namespace", &namespace]);
        env.kubectl_ok(context, &["label", "namespace", &namespace, label]);
        let manifest = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web, labels: {pod_labels}, annotations: {annotations}}}\nspec:\n  containers: [{{name: web, image: nginx}}]\n"
        );
        env.apply(context, &namespace, &manifest);
        let pod = env.kubectl_ok(
            context,
            &["get", "pod", "web", "-n", &namespace, "-o", "json"],
        );
        let pod: serde_json::Value = serde_json::from_str(&pod).expect("pod json");
        assert_eq!(
            mesh::has_sidecar(&pod),
            *expected,
            "case {index}: {context} {label} {pod_labels} {annotations}"
        );
        if annotations.contains("nativeSidecar") {
            assert_eq!(pod["spec"]["initContainers"][1]["restartPolicy"], "Always");
            assert_eq!(pod["spec"]["containers"].as_array().map(Vec::len), Some(1));
        }
    }
    // Only on CREATE: labelling a namespace later changes nothing until a restart.
    env.kubectl_ok("sim-source", &["create", "namespace", "later"]);
    env.apply("sim-source", "later", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n");
    env.kubectl_ok(
        "sim-source",
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "later",
            "--timeout=30s",
        ],
    );
    env.kubectl_ok(
        "sim-source",
        &["label", "namespace", "later", "istio-injection=enabled"],
    );
    let containers = || {
        env.kubectl_ok(
            "sim-source",
            &[
                "get",
                "pods",
                "-n",
                "later",
                "-o",
                "jsonpath={.items[*].spec.containers[*].name}",
            ],
        )
    };
    assert_eq!(containers(), "web");
    env.kubectl_ok(
        "sim-source",
        &["rollout", "restart", "deployment/web", "-n", "later"],
    );
    env.kubectl_ok(
        "sim-source",
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "later",
            "--timeout=30s",
        ],
    );
    assert_eq!(containers(), "web istio-proxy");
}
