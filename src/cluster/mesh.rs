//! Istio facts about objects, without I/O: sidecars (regular and native), control planes found
//! from istiod Deployments, and why a pod was or was not injected (the webhook rules of
//! open-source Istio and of the AKS add-on).

use std::collections::BTreeMap;

use serde_json::Value;

/// Namespaces whose pods Istio never injects.
pub const NEVER_INJECTED_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

/// True when a pod runs `istio-proxy`, as a container or as a native sidecar (an init
/// container with `restartPolicy: Always`).
pub fn has_sidecar(pod: &Value) -> bool {
    let named_proxy = |c: &&Value| c["name"] == "istio-proxy";
    let spec = &pod["spec"];
    spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| named_proxy(&c))
        || spec["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| named_proxy(&c) && c["restartPolicy"] == "Always")
}

/// An installed Istio control plane (an istiod Deployment).
#[derive(Debug, Clone, PartialEq)]
pub struct ControlPlane {
    pub namespace: String,
    pub deployment: String,
    /// `default` for an unrevisioned install.
    pub revision: String,
    /// From the `discovery` container's image tag (`1.25.2`).
    pub version: Option<String>,
    pub image: Option<String>,
    /// The AKS add-on (`aks-istio-system`, `istiod-asm-X-Y`).
    pub addon: bool,
}

impl ControlPlane {
    /// `1.25` from `1.25.2`.
    pub fn minor_version(&self) -> Option<String> {
        let version = self.version.as_ref()?;
        let mut parts = version.split('.');
        Some(format!("{}.{}", parts.next()?, parts.next()?))
    }

    /// The default revision's webhooks honour `istio-injection=enabled` and pod opt-in.
    pub fn is_default(&self) -> bool {
        !self.addon && self.revision == "default"
    }
}

/// The control planes among Deployments (any namespace).
pub fn control_planes(deployments: &[Value]) -> Vec<ControlPlane> {
    let mut planes: Vec<ControlPlane> = deployments
        .iter()
        .filter(|d| {
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            d["metadata"]["labels"]["app"] == "istiod"
                || name == "istiod"
                || name.starts_with("istiod-")
        })
        .map(|d| {
            let namespace = d["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let deployment = d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let addon = namespace == "aks-istio-system" || deployment.starts_with("istiod-asm-");
            let revision = d["metadata"]["labels"]["istio.io/rev"]
                .as_str()
                .map(str::to_string)
                .or_else(|| deployment.strip_prefix("istiod-").map(str::to_string))
                .unwrap_or_else(|| "default".to_string());
            let containers = d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let image = containers
                .iter()
                .find(|c| c["name"] == "discovery")
                .or_else(|| containers.first())
                .and_then(|c| c["image"].as_str())
                .map(str::to_string);
            let version = image.as_deref().and_then(version_from_image);
            ControlPlane {
                namespace,
                deployment,
                revision,
                version,
                image,
                addon,
            }
        })
        .collect();
    planes.sort_by(|a, b| {
        a.namespace
            .cmp(&b.namespace)
            .then(a.revision.cmp(&b.revision))
    });
    planes
}

/// `1.25.2` from `docker.io/istio/pilot:1.25.2`, `mcr.microsoft.com/oss/istio/pilot:v1.25.2-distroless`.
pub fn version_from_image(image: &str) -> Option<String> {
    let tag = image.rsplit_once(':')?.1;
    if tag.contains('/') {
        return None; // a registry port, not a tag
    }
    let tag = tag.trim_start_matches('v');
    let version: String = tag
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let version = version.trim_end_matches('.');
    (version.split('.').count() >= 2).then(|| version.to_string())
}

/// What decides whether a pod gets a sidecar.
#[derive(Debug, Clone, Default)]
pub struct InjectionContext<'a> {
    pub namespace: &'a str,
    pub namespace_labels: BTreeMap<String, String>,
    pub pod_labels: BTreeMap<String, String>,
    pub pod_annotations: BTreeMap<String, String>,
    pub host_network: bool,
}

/// The revision whose webhook injects such a pod, or why none does. Follows Istio's webhook
/// selectors: `istio-injection` on the namespace beats `istio.io/rev`; `sidecar.istio.io/inject`
/// on the pod (label before annotation) can opt out, and opt in only in an unlabelled namespace;
/// the AKS add-on installs no default revision, so `istio-injection=enabled` does nothing there.
pub fn injecting_revision(
    context: &InjectionContext,
    planes: &[ControlPlane],
) -> Result<String, String> {
    if NEVER_INJECTED_NAMESPACES.contains(&context.namespace) {
        return Err(format!(
            "pods in `{}` are never injected",
            context.namespace
        ));
    }
    if context.host_network {
        return Err("hostNetwork pods are never injected".into());
    }
    if planes.is_empty() {
        return Err("no Istio control plane (istiod) is installed".into());
    }
    let installed = || {
        planes
            .iter()
            .map(|p| p.revision.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pod_inject = context
        .pod_labels
        .get("sidecar.istio.io/inject")
        .or_else(|| context.pod_annotations.get("sidecar.istio.io/inject"))
        .map(String::as_str);
    if pod_inject == Some("false") {
        return Err("the pod opts out with `sidecar.istio.io/inject=false`".into());
    }
    let default = planes.iter().find(|p| p.is_default());
    let namespace_rev = context.namespace_labels.get("istio.io/rev");
    if let Some(value) = context.namespace_labels.get("istio-injection") {
        if value != "enabled" {
            return Err(format!(
                "namespace label `istio-injection={value}` disables injection"
            ));
        }
        return match default {
            Some(plane) => Ok(plane.revision.clone()),
            None => {
                let mut why = format!(
                    "namespace label `istio-injection=enabled` is ignored: no default revision is installed (installed: {}); label the namespace `istio.io/rev=<revision>` instead",
                    installed()
                );
                if namespace_rev.is_some() {
                    why.push_str(
                        " and remove `istio-injection`, which takes precedence over `istio.io/rev`",
                    );
                }
                Err(why)
            }
        };
    }
    if let Some(revision) = namespace_rev {
        return revision_if_installed(revision, planes, "namespace label", &installed());
    }
    if let Some(revision) = context.pod_labels.get("istio.io/rev") {
        return revision_if_installed(revision, planes, "pod label", &installed());
    }
    // Opting in is the webhook's object selector, which sees labels only: the annotation can
    // opt out (istiod reads it) but not in.
    let pod_label = context
        .pod_labels
        .get("sidecar.istio.io/inject")
        .map(String::as_str);
    match (pod_label, default) {
        (Some("true"), Some(plane)) => Ok(plane.revision.clone()),
        (None, Some(_)) if pod_inject == Some("true") => Err("the pod opts in with the `sidecar.istio.io/inject` annotation, which the webhook does not see: use the label, or label the namespace".into()),
        _ => Err("the namespace has no injection label (`istio.io/rev=<revision>` or `istio-injection=enabled`)".into()),
    }
}

fn revision_if_installed(
    revision: &str,
    planes: &[ControlPlane],
    place: &str,
    installed: &str,
) -> Result<String, String> {
    let known = planes
        .iter()
        .any(|p| p.revision == revision || (revision == "default" && p.is_default()));
    if known {
        Ok(revision.to_string())
    } else {
        Err(format!(
            "{place} `istio.io/rev={revision}` names a revision that is not installed (installed: {installed})"
        ))
    }
}

/// Why a running pod has no sidecar: the webhook would not inject it, or it was created before
/// injection was enabled and needs a restart.
pub fn explain_missing_sidecar(context: &InjectionContext, planes: &[ControlPlane]) -> String {
    match injecting_revision(context, planes) {
        Ok(revision) => format!(
            "injection is enabled (revision {revision}) but the pod was created before that; restart its workload"
        ),
        Err(why) => why,
    }
}

/// Labels (or annotations) of an object as a map of strings.
pub fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plane(revision: &str, addon: bool) -> ControlPlane {
        ControlPlane {
            namespace: if addon {
                "aks-istio-system".into()
            } else {
                "istio-system".into()
            },
            deployment: "istiod".into(),
            revision: revision.into(),
            version: Some("1.25.2".into()),
            image: None,
            addon,
        }
    }

    fn context<'a>(ns: &[(&str, &str)], pod: &[(&str, &str)]) -> InjectionContext<'a> {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        InjectionContext {
            namespace: "bookinfo",
            namespace_labels: map(ns),
            pod_labels: map(pod),
            ..Default::default()
        }
    }

    #[test]
    fn sidecars_regular_and_native() {
        assert!(has_sidecar(
            &json!({"spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}]}})
        ));
        assert!(has_sidecar(
            &json!({"spec": {"containers": [{"name": "app"}],
            "initContainers": [{"name": "istio-init"}, {"name": "istio-proxy", "restartPolicy": "Always"}]}})
        ));
        // An init container that runs to completion is not a sidecar.
        assert!(!has_sidecar(
            &json!({"spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "istio-proxy"}]}})
        ));
        assert!(!has_sidecar(
            &json!({"spec": {"containers": [{"name": "app"}]}})
        ));
    }

    #[test]
    fn control_planes_from_deployments() {
        let deployments = vec![
            json!({"metadata": {"name": "istiod", "namespace": "istio-system", "labels": {"app": "istiod", "istio.io/rev": "default"}},
                   "spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.25.2"}]}}}}),
            json!({"metadata": {"name": "istiod-asm-1-25", "namespace": "aks-istio-system", "labels": {"app": "istiod"}},
                   "spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": "mcr.microsoft.com/oss/istio/pilot:v1.25.3-distroless"}]}}}}),
            json!({"metadata": {"name": "reviews", "namespace": "bookinfo"}}),
        ];
        let planes = control_planes(&deployments);
        assert_eq!(planes.len(), 2);
        assert_eq!(
            (
                planes[0].revision.as_str(),
                planes[0].addon,
                planes[0].minor_version().as_deref()
            ),
            ("asm-1-25", true, Some("1.25"))
        );
        assert_eq!(
            (
                planes[1].revision.as_str(),
                planes[1].is_default(),
                planes[1].version.as_deref()
            ),
            ("default", true, Some("1.25.2"))
        );
    }

    #[test]
    fn image_versions() {
        assert_eq!(
            version_from_image("registry:5000/istio/pilot:1.24.0-beta.1").as_deref(),
            Some("1.24.0")
        );
        assert_eq!(version_from_image("registry:5000/istio/pilot"), None);
        assert_eq!(version_from_image("istio/pilot:latest"), None);
    }

    #[test]
    fn open_source_rules() {
        let planes = [plane("default", false), plane("canary", false)];
        assert_eq!(
            injecting_revision(&context(&[("istio-injection", "enabled")], &[]), &planes),
            Ok("default".into())
        );
        assert_eq!(
            injecting_revision(&context(&[("istio.io/rev", "canary")], &[]), &planes),
            Ok("canary".into())
        );
        // istio-injection beats istio.io/rev.
        assert_eq!(
            injecting_revision(
                &context(
                    &[("istio-injection", "enabled"), ("istio.io/rev", "canary")],
                    &[]
                ),
                &planes
            ),
            Ok("default".into())
        );
        assert!(
            injecting_revision(
                &context(
                    &[("istio-injection", "disabled")],
                    &[("sidecar.istio.io/inject", "true")]
                ),
                &planes
            )
            .unwrap_err()
            .contains("disables injection")
        );
        assert_eq!(
            injecting_revision(
                &context(&[], &[("sidecar.istio.io/inject", "true")]),
                &planes
            ),
            Ok("default".into())
        );
        assert_eq!(
            injecting_revision(&context(&[], &[("istio.io/rev", "canary")]), &planes),
            Ok("canary".into())
        );
        let mut annotated = context(&[], &[]);
        annotated
            .pod_annotations
            .insert("sidecar.istio.io/inject".into(), "true".into());
        assert!(
            injecting_revision(&annotated, &planes)
                .unwrap_err()
                .contains("annotation, which the webhook does not see")
        );
        assert!(
            injecting_revision(
                &context(
                    &[("istio-injection", "enabled")],
                    &[("sidecar.istio.io/inject", "false")]
                ),
                &planes
            )
            .unwrap_err()
            .contains("opts out")
        );
        assert!(
            injecting_revision(&context(&[], &[]), &planes)
                .unwrap_err()
                .contains("no injection label")
        );
        assert!(injecting_revision(&context(&[("istio.io/rev", "stable")], &[]), &planes)
            .unwrap_err()
            .contains("`istio.io/rev=stable` names a revision that is not installed (installed: default, canary)"));
    }

    #[test]
    fn addon_ignores_istio_injection() {
        let planes = [plane("asm-1-25", true)];
        assert_eq!(
            injecting_revision(&context(&[("istio.io/rev", "asm-1-25")], &[]), &planes),
            Ok("asm-1-25".into())
        );
        let why = injecting_revision(&context(&[("istio-injection", "enabled")], &[]), &planes)
            .unwrap_err();
        assert!(why.starts_with("namespace label `istio-injection=enabled` is ignored: no default revision is installed (installed: asm-1-25)"), "{why}");
        let both = injecting_revision(
            &context(
                &[("istio-injection", "enabled"), ("istio.io/rev", "asm-1-25")],
                &[],
            ),
            &planes,
        )
        .unwrap_err();
        assert!(both.contains("remove `istio-injection`"), "{both}");
        assert!(
            injecting_revision(
                &context(&[], &[("sidecar.istio.io/inject", "true")]),
                &planes
            )
            .is_err()
        );
    }

    #[test]
    fn never_injected_places() {
        let planes = [plane("default", false)];
        let mut system = context(&[("istio-injection", "enabled")], &[]);
        system.namespace = "kube-system";
        assert!(
            injecting_revision(&system, &planes)
                .unwrap_err()
                .contains("never injected")
        );
        let mut host = context(&[("istio-injection", "enabled")], &[]);
        host.host_network = true;
        assert!(
            injecting_revision(&host, &planes)
                .unwrap_err()
                .contains("hostNetwork")
        );
        assert_eq!(
            explain_missing_sidecar(&context(&[("istio-injection", "enabled")], &[]), &planes),
            "injection is enabled (revision default) but the pod was created before that; restart its workload"
        );
    }
}
