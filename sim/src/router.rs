//! Request paths of the Kubernetes API, parsed into routes (no I/O).

/// What a path addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/version`
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their sub-checks).
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`
    Resources {
        /// Group, empty for core.
        group: String,
        /// Version.
        version: String,
    },
    /// `/openapi/v2`
    OpenApiV2,
    /// `/openapi/v3`
    OpenApiV3Index,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`
    OpenApiV3 {
        /// Group, empty for core.
        group: String,
        /// Version.
        version: String,
    },
    /// A resource collection, object or subresource.
    Resource(ResourcePath),
    /// `/apis/authorization.k8s.io/v1/selfsubjectaccessreviews` (create only, nothing stored).
    SelfSubjectAccessReview,
    /// `/api/v1/namespaces/<ns>/pods/<name>/portforward` (a WebSocket upgrade).
    PodPortForward {
        /// Namespace.
        namespace: String,
        /// Pod name.
        pod: String,
    },
    /// `/api/v1/namespaces/<ns>/pods/<[scheme:]name[:port]>/proxy[/<path>]`.
    PodProxy {
        /// Namespace.
        namespace: String,
        /// Pod name.
        pod: String,
        /// The port named in the path (`None`: the pod's first port).
        port: Option<String>,
        /// The path on the pod, with its leading `/`.
        path: String,
    },
    /// Nothing is served here.
    NotFound,
}

/// The parts of a resource path.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ResourcePath {
    /// Group, empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace segment, if present.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub plural: String,
    /// Object name, if present.
    pub name: Option<String>,
    /// Subresource, if present.
    pub subresource: Option<String>,
    /// Whether the legacy `/watch/` prefix was used.
    pub watch_prefix: bool,
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses a request path.
pub fn route(path: &str) -> Route {
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<String> = trimmed
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["api", "v1"] => Route::Resources {
            group: String::new(),
            version: "v1".into(),
        },
        ["apis", group, version] => Route::Resources {
            group: group.to_string(),
            version: version.to_string(),
        },
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => Route::SelfSubjectAccessReview,
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", "api", version] => Route::OpenApiV3 {
            group: String::new(),
            version: version.to_string(),
        },
        ["openapi", "v3", "apis", group, version] => Route::OpenApiV3 {
            group: group.to_string(),
            version: version.to_string(),
        },
        [
            "api",
            "v1",
            "namespaces",
            namespace,
            "pods",
            pod,
            "portforward",
        ] => Route::PodPortForward {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
        },
        [
            "api",
            "v1",
            "namespaces",
            namespace,
            "pods",
            target,
            "proxy",
            rest @ ..,
        ] => {
            // `name`, `name:port` or `scheme:name:port`, as kube-apiserver's proxy takes it.
            let parts: Vec<&str> = target.split(':').collect();
            let (pod, port) = match parts.as_slice() {
                [name] => (*name, None),
                [name, port] => (*name, Some(port.to_string())),
                [_, name, port] => (*name, Some(port.to_string())),
                _ => return Route::NotFound,
            };
            Route::PodProxy {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                port: port.filter(|p| !p.is_empty()),
                path: format!("/{}", rest.join("/")),
            }
        }
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let base = ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        watch_prefix,
        ..ResourcePath::default()
    };
    let path = match rest {
        // The namespace object itself and its subresources.
        ["namespaces", name] => ResourcePath {
            plural: "namespaces".into(),
            name: Some(name.to_string()),
            ..base
        },
        ["namespaces", name, sub @ ("status" | "finalize")] => ResourcePath {
            plural: "namespaces".into(),
            name: Some(name.to_string()),
            subresource: Some(sub.to_string()),
            ..base
        },
        ["namespaces", namespace, plural] => ResourcePath {
            namespace: Some(namespace.to_string()),
            plural: plural.to_string(),
            ..base
        },
        ["namespaces", namespace, plural, name] => ResourcePath {
            namespace: Some(namespace.to_string()),
            plural: plural.to_string(),
            name: Some(name.to_string()),
            ..base
        },
        ["namespaces", namespace, plural, name, sub] => ResourcePath {
            namespace: Some(namespace.to_string()),
            plural: plural.to_string(),
            name: Some(name.to_string()),
            subresource: Some(sub.to_string()),
            ..base
        },
        [plural] => ResourcePath {
            plural: plural.to_string(),
            ..base
        },
        [plural, name] => ResourcePath {
            plural: plural.to_string(),
            name: Some(name.to_string()),
            ..base
        },
        [plural, name, sub] => ResourcePath {
            plural: plural.to_string(),
            name: Some(name.to_string()),
            subresource: Some(sub.to_string()),
            ..base
        },
        _ => return Route::NotFound,
    };
    if group.is_empty() && version != "v1" {
        return Route::NotFound;
    }
    Route::Resource(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_and_cluster_paths() {
        assert_eq!(
            route("/apis/apps/v1/namespaces/default/deployments/web/scale"),
            Route::Resource(ResourcePath {
                group: "apps".into(),
                version: "v1".into(),
                namespace: Some("default".into()),
                plural: "deployments".into(),
                name: Some("web".into()),
                subresource: Some("scale".into()),
                watch_prefix: false,
            })
        );
        let Route::Resource(ns) = route("/api/v1/namespaces/istio-system") else {
            panic!("namespace path");
        };
        assert_eq!(
            (ns.plural.as_str(), ns.name.as_deref()),
            ("namespaces", Some("istio-system"))
        );
        let Route::Resource(status) = route("/api/v1/namespaces/x/status") else {
            panic!("namespace status path");
        };
        assert_eq!(status.subresource.as_deref(), Some("status"));
        let Route::Resource(nodes) = route("/api/v1/nodes") else {
            panic!("cluster-scoped collection");
        };
        assert_eq!(nodes.namespace, None);
    }

    #[test]
    fn legacy_watch_prefix_and_discovery() {
        let Route::Resource(watch) = route("/api/v1/watch/namespaces/default/pods") else {
            panic!("watch path");
        };
        assert!(watch.watch_prefix);
        assert_eq!(watch.namespace.as_deref(), Some("default"));
        assert_eq!(
            route("/apis/networking.istio.io"),
            Route::Group("networking.istio.io".into())
        );
        assert_eq!(route("/readyz/ping"), Route::Health);
        assert_eq!(route("/nope"), Route::NotFound);
        assert_eq!(
            route("/api/v1/namespaces/istio-system/pods/gw-1:15090/proxy/stats/prometheus"),
            Route::PodProxy {
                namespace: "istio-system".into(),
                pod: "gw-1".into(),
                port: Some("15090".into()),
                path: "/stats/prometheus".into(),
            }
        );
        assert_eq!(
            route("/api/v1/namespaces/istio-system/pods/gw-1/portforward"),
            Route::PodPortForward {
                namespace: "istio-system".into(),
                pod: "gw-1".into(),
            }
        );
        assert_eq!(route("/api/v2/pods"), Route::NotFound);
    }
}
