//! Cluster functions: `cluster("ctx")` handles and their methods. Every write goes through
//! [`Cluster::mutate`]; in plan mode (`run --plan`, `:plan on`) writes are server-side dry runs
//! that print their diffs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};
use serde_json::Value;

use crate::cluster::conditions::Condition;
use crate::cluster::effects::{Change, Mutation, PatchType, Target, WriteOptions};
use crate::cluster::overlay::planned_address;
use crate::cluster::read::{ExportFilter, ListQuery};
use crate::cluster::{ChangeSink, Cluster, KubeconfigSource, mesh, summary};
use crate::error::Error;
use crate::host::flow::duration_argument;
use crate::host::manifest::json_argument;
use crate::host::{HostResult, check_keys, timeout_option};
use crate::session::convert::{Objects, from_dynamic, to_dynamic};
use crate::session::{Session, raise};

/// Builds the `cluster` host module.
pub fn module() -> Module {
    exported_module!(cluster_functions)
}

/// Registers the `Cluster` type and its properties.
pub fn register_types(engine: &mut rhai::Engine) {
    engine
        .register_type_with_name::<Cluster>("Cluster")
        .register_get("name", |c: &mut Cluster| c.context().to_string())
        .register_get("server", |c: &mut Cluster| c.server().to_string())
        .register_get("kubeconfig_cluster", |c: &mut Cluster| {
            c.kubeconfig_cluster().to_string()
        })
        .register_get("namespace", |c: &mut Cluster| c.namespace().to_string())
        .register_get("identity", |c: &mut Cluster| {
            let identity = c.identity();
            let mut map = Map::new();
            map.insert("server".into(), identity.server.clone().into());
            map.insert(
                "ca_fingerprint".into(),
                identity.ca_fingerprint.clone().into(),
            );
            map.insert(
                "kube_system_uid".into(),
                identity.kube_system_uid.clone().into(),
            );
            map
        })
        .register_fn("to_string", |c: &mut Cluster| {
            format!("cluster(\"{}\") at {}", c.context(), c.server())
        })
        .register_fn("to_debug", |c: &mut Cluster| {
            format!("cluster(\"{}\") at {}", c.context(), c.server())
        });
}

/// Handles of a session, by context: binding a context twice gives the same handle.
#[derive(Default)]
struct Registry {
    handles: Mutex<HashMap<String, Cluster>>,
}

/// The handles a session has bound so far, by context name (for REPL completion and `:clusters`).
pub fn bound_clusters(session: &Session) -> Vec<(String, Cluster)> {
    let registry = session.extension("clusters", Registry::default);
    let handles = registry.handles.lock().unwrap_or_else(|e| e.into_inner());
    let mut bound: Vec<(String, Cluster)> = handles
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    bound.sort_by(|a, b| a.0.cmp(&b.0));
    bound
}

fn bind(context: &NativeCallContext, name: Option<&str>) -> HostResult<Cluster> {
    let session = Session::of(context)?;
    let registry = session.extension("clusters", Registry::default);
    let source = KubeconfigSource {
        path: session.settings.kubeconfig.clone(),
    };
    let key = match name {
        Some(name) => name.to_string(),
        None => source.contexts().map_err(raise)?.1.unwrap_or_default(),
    };
    if let Some(handle) = registry
        .handles
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
    {
        return Ok(handle.clone());
    }
    let weak: Weak<Session> = Arc::downgrade(&session);
    let sink: ChangeSink = Arc::new(move |change: &Change| {
        if let Some(session) = weak.upgrade() {
            session
                .record
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .changes
                .push(change.clone());
        }
    });
    let handle = session
        .block_on(Cluster::connect(&source, name, Some(sink)))
        .and_then(|r| r)
        .map_err(raise)?;
    // Planned writes only make sense while planning (`:plan off` in the REPL forgets them).
    let planned = handle.clone();
    session.on_plan_off(move || planned.overlay().clear());
    session.note_bound_context(handle.context());
    if let Some(run) = session.run() {
        // A resumed run continues on the clusters it started on, or not at all.
        let identity = handle.identity();
        run.pin_cluster(
            handle.context(),
            crate::journal::ClusterIdentity {
                server: identity.server.clone(),
                ca_fingerprint: identity.ca_fingerprint.clone(),
                kube_system_uid: identity.kube_system_uid.clone(),
            },
        )
        .map_err(|message| raise(handle.error(message, vec![])))?;
        // A run takes each cluster's run lock before its first write there.
        if let Some(lock) = run.lock.clone() {
            handle.set_run_lock(lock);
        }
    }
    registry
        .handles
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, handle.clone());
    Ok(handle)
}

/// Runs cluster work on the session's runtime.
fn run<T: Send>(
    context: &NativeCallContext,
    work: impl std::future::Future<Output = crate::error::Result<T>> + Send,
) -> HostResult<T> {
    let session = Session::of(context)?;
    session.block_on(work).and_then(|r| r).map_err(raise)
}

fn namespace_argument(namespace: &str) -> Option<&str> {
    (!namespace.is_empty()).then_some(namespace)
}

fn objects_argument(function: &str, objects: &Dynamic) -> HostResult<Vec<Value>> {
    match json_argument(function, objects)? {
        Value::Array(items) => Ok(items),
        object @ Value::Object(_) => Ok(vec![object]),
        other => Err(raise(Error::InvalidArgument {
            function: function.into(),
            message: format!(
                "expected an object or an array of objects, found {}",
                crate::manifest::describe(&other)
            ),
        })),
    }
}

fn flag(map: &Map, key: &str) -> bool {
    map.get(key).and_then(|v| v.as_bool().ok()).unwrap_or(false)
}

fn write_options(session: &Session, map: &Map) -> WriteOptions {
    WriteOptions {
        dry_run: session.is_plan() || flag(map, "dry_run"),
        overlay: session.is_plan(),
        force: flag(map, "force"),
        ..WriteOptions::default()
    }
}

/// Prints what a write did and returns it as an array of maps.
fn report(session: &Session, changes: &[Change], quiet: bool) -> Array {
    if !quiet {
        for line in summary::lines(changes) {
            session.out.info(&line);
        }
    }
    changes
        .iter()
        .map(|change| to_dynamic(serde_json::json!(summary::ChangeRecord::from(change))))
        .collect()
}

type BoxedWork<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = crate::error::Result<T>> + Send + 'a>>;

fn wait_with_spinner<'a, T: Send>(
    context: &NativeCallContext,
    what: String,
    work: impl FnOnce(Arc<dyn Fn(&str) + Send + Sync>) -> BoxedWork<'a, T>,
) -> HostResult<T> {
    let session = Session::of(context)?;
    let spinner = Arc::new(session.out.spinner(&what));
    let for_progress = spinner.clone();
    let progress: Arc<dyn Fn(&str) + Send + Sync> =
        Arc::new(move |seen: &str| for_progress.set_message(seen));
    let result = session.block_on(work(progress)).and_then(|r| r);
    spinner.finish();
    result.map_err(raise)
}

#[export_module]
pub mod cluster_functions {
    /// Binds a handle to a kubeconfig context (`--kubeconfig`, else `$KUBECONFIG`, else
    /// `~/.kube/config`) and pins it to that cluster's identity (server, CA fingerprint,
    /// `kube-system` uid): writes refuse to run if the cluster behind it changes. Binding the
    /// same context twice gives the same handle. Properties: `name` (the context), `server`,
    /// `namespace`, `identity`, `kubeconfig_cluster` (the kubeconfig's cluster entry, which
    /// `az aks get-credentials` names after the AKS cluster even for `--admin` contexts).
    ///
    /// # Example
    /// ```rhai,no_run
    /// let source = cluster("aks-source");
    /// let target = cluster("aks-target");
    /// info(`${source.name} at ${source.server}, cluster entry ${source.kubeconfig_cluster}`);
    /// ```
    #[rhai_fn(name = "cluster", return_raw)]
    pub fn cluster_named(context: NativeCallContext, name: &str) -> HostResult<Cluster> {
        bind(&context, Some(name))
    }

    /// A handle on the kubeconfig's current context.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let c = cluster();
    /// ```
    #[rhai_fn(name = "cluster", return_raw)]
    pub fn cluster_current(context: NativeCallContext) -> HostResult<Cluster> {
        bind(&context, None)
    }

    /// The context names of the kubeconfig.
    ///
    /// # Example
    /// ```rhai,no_run
    /// info(contexts());
    /// ```
    #[rhai_fn(return_raw)]
    pub fn contexts(context: NativeCallContext) -> HostResult<Array> {
        let session = Session::of(&context)?;
        let source = KubeconfigSource {
            path: session.settings.kubeconfig.clone(),
        };
        let (names, _) = source.contexts().map_err(raise)?;
        Ok(names.into_iter().map(Dynamic::from).collect())
    }

    /// One object by kind (`Deployment`, `deploy`, `vs`, `gateways.networking.istio.io`) and name,
    /// in the context's namespace or the one given; `()` when it does not exist.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let vs = cluster("aks-source").get("VirtualService", "bookinfo", "default");
    /// if vs == () { fail("no VirtualService bookinfo"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn get(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> HostResult<Dynamic> {
        let c = cluster.clone();
        let found = run(&context, async move {
            c.get(kind, name, namespace_argument(namespace)).await
        })?;
        Ok(found.map(to_dynamic).unwrap_or(Dynamic::UNIT))
    }

    /// One object of a cluster-scoped kind, or in the context's namespace.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let ns = cluster().get("Namespace", "bookinfo");
    /// ```
    #[rhai_fn(name = "get", return_raw)]
    pub fn get_default_namespace(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        name: &str,
    ) -> HostResult<Dynamic> {
        get(context, cluster, kind, name, "")
    }

    /// Objects of a kind in every namespace.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let gateways = cluster().list("Gateway");
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list_all(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
    ) -> HostResult<Array> {
        list(context, cluster, kind, Map::new())
    }

    /// Objects of a kind, filtered by `namespace` (absent: all namespaces), `labels` (a selector
    /// such as `"app=reviews,version in (v1,v2)"`) and `fields` (`"metadata.name=x"`).
    ///
    /// # Example
    /// ```rhai,no_run
    /// let reviews = cluster().list("Deployment", #{namespace: "bookinfo", labels: "app=reviews"});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn list(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        filter: Map,
    ) -> HostResult<Array> {
        check_keys("list", &filter, &["namespace", "labels", "fields"])?;
        let text = |key: &str| {
            filter
                .get(key)
                .filter(|v| !v.is_unit())
                .map(|v| v.to_string())
        };
        let query = ListQuery {
            namespace: text("namespace"),
            labels: text("labels"),
            fields: text("fields"),
            ..Default::default()
        };
        let c = cluster.clone();
        let items = run(&context, async move { c.list(kind, &query).await })?;
        Ok(items.into_iter().map(to_dynamic).collect())
    }

    /// Pods of a namespace.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let pods = cluster().pods("bookinfo");
    /// ```
    #[rhai_fn(name = "pods", return_raw)]
    pub fn pods_all(
        context: NativeCallContext,
        cluster: &mut Cluster,
        namespace: &str,
    ) -> HostResult<Array> {
        pods(context, cluster, namespace, "")
    }

    /// Pods of a namespace matching a label selector.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let reviews = cluster().pods("bookinfo", "app=reviews");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn pods(
        context: NativeCallContext,
        cluster: &mut Cluster,
        namespace: &str,
        selector: &str,
    ) -> HostResult<Array> {
        let c = cluster.clone();
        let selector = (!selector.is_empty()).then(|| selector.to_string());
        let items = run(&context, async move {
            c.pods(namespace, selector.as_deref()).await
        })?;
        Ok(items.into_iter().map(to_dynamic).collect())
    }

    /// True when a pod runs `istio-proxy`, as a container or as a native sidecar (an init
    /// container with `restartPolicy: Always`).
    ///
    /// # Example
    /// ```rhai
    /// let pod = #{spec: #{containers: [#{name: "reviews"}], initContainers: [#{name: "istio-proxy", restartPolicy: "Always"}]}};
    /// if !has_sidecar(pod) { throw "native sidecar not seen"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn has_sidecar(pod: Dynamic) -> HostResult<bool> {
        Ok(mesh::has_sidecar(&json_argument("has_sidecar", &pod)?))
    }

    /// Which pods of a namespace lack `istio-proxy`, and why: the namespace's labels, a
    /// revision that is not installed, `istio-injection` on the AKS add-on, or a pod created
    /// before injection was enabled. Pods that opt out (`sidecar.istio.io/inject=false`) are
    /// not missing anything: they are listed in `opted_out`. Returns `#{namespace, pods,
    /// injected, missing: [#{pod, reason}], opted_out: [pod], new_pods_revision,
    /// new_pods_reason}`.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let report = cluster("aks-target").injection_report("bookinfo");
    /// for m in report.missing { warn(`${m.pod}: ${m.reason}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn injection_report(
        context: NativeCallContext,
        cluster: &mut Cluster,
        namespace: &str,
    ) -> HostResult<Dynamic> {
        let c = cluster.clone();
        run(&context, async move { c.injection_report(namespace).await }).map(to_dynamic)
    }

    /// `ip:port` of a LoadBalancer Service's port with this name, waiting up to 2 minutes for
    /// an address (IP or hostname). In plan mode it does not wait: without an address it
    /// prints so and returns `192.0.2.1:<port>` (a documentation-only address that is never
    /// routed; port 80 when the Service does not exist yet).
    ///
    /// # Example
    /// ```rhai,no_run
    /// let address = cluster().service_address("istio-system", "istio-ingressgateway", "http2");
    /// ```
    #[rhai_fn(name = "service_address", return_raw)]
    pub fn service_address_default(
        context: NativeCallContext,
        cluster: &mut Cluster,
        namespace: &str,
        name: &str,
        port_name: &str,
    ) -> HostResult<String> {
        service_address(
            context,
            cluster,
            namespace,
            name,
            port_name,
            Dynamic::from("2m".to_string()),
        )
    }

    /// `ip:port` of a LoadBalancer Service's named port, waiting up to `timeout`.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let address = cluster().service_address("aks-istio-ingress", "aks-istio-ingressgateway-external", "http2", "5m");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn service_address(
        context: NativeCallContext,
        cluster: &mut Cluster,
        namespace: &str,
        name: &str,
        port_name: &str,
        timeout: Dynamic,
    ) -> HostResult<String> {
        let timeout = duration_argument("service_address", &timeout)?;
        let c = cluster.clone();
        let session = Session::of(&context)?;
        if session.is_plan() {
            // Plan mode: no controller assigns addresses to planned Services; do not wait.
            let lookup = c.clone();
            let exists = run(&context, async move {
                lookup.get("Service", name, Some(namespace)).await
            })?
            .is_some();
            if !exists {
                // A planned command (such as `az aks mesh enable-ingress-gateway`) may create it.
                let planned = planned_address(None);
                session.out.info(&format!(
                    "would wait for Service {namespace}/{name}, which does not exist yet (plan: {planned})"
                ));
                return Ok(planned);
            }
            let (port, address, _) = run(&context, async move {
                c.load_balancer_address(namespace, name, port_name).await
            })?;
            return Ok(address.map(|a| format!("{a}:{port}")).unwrap_or_else(|| {
                let planned = planned_address(Some(port));
                session.out.info(&format!(
                    "would wait for a load balancer address of {namespace}/{name} (plan: {planned})"
                ));
                planned
            }));
        }
        let what = format!("waiting for an address of {namespace}/{name}");
        wait_with_spinner(&context, what, move |_| {
            Box::pin(async move { c.service_address(namespace, name, port_name, timeout).await })
        })
    }

    /// The Istio control plane found on the cluster: `#{version, minor, revision, namespace, addon,
    /// mesh, mesh_configmap, revisions, control_planes}`, or `()` when no istiod runs.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let istio = cluster("aks-source").istio();
    /// info(`Istio ${istio.version} (revision ${istio.revision}) in ${istio.namespace}`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn istio(context: NativeCallContext, cluster: &mut Cluster) -> HostResult<Dynamic> {
        let c = cluster.clone();
        let found = run(&context, async move { c.istio().await })?;
        Ok(found.map(to_dynamic).unwrap_or(Dynamic::UNIT))
    }

    /// Objects of some namespaces, stripped of server-owned fields and ready to apply to another
    /// cluster (`export` itself is a Rhai keyword). Options: `namespaces` (required), `kinds` (default: workloads, Services,
    /// ConfigMaps, ServiceAccounts, RBAC, PVCs, HPAs, PDBs and every namespaced Istio kind),
    /// `exclude` (`"ConfigMap"` or `"ConfigMap/name"`), `secrets` (include Secrets; they are masked
    /// whenever printed), `page_size` (objects per list page, default 500). Each kind is listed
    /// once across the cluster when the namespaces asked for are at least half of it, else once
    /// per namespace; several kinds at a time. Returns the compact list `load` returns.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let objects = cluster("aks-source").export_objects(#{namespaces: ["bookinfo"]});
    /// cluster("aks-target").apply(objects);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn export_objects(
        context: NativeCallContext,
        cluster: &mut Cluster,
        filter: Map,
    ) -> HostResult<Objects> {
        check_keys(
            "export_objects",
            &filter,
            &["namespaces", "kinds", "exclude", "secrets", "page_size"],
        )?;
        let page_size = match filter.get("page_size") {
            None => None,
            Some(size) => match size.as_int() {
                Ok(size) if size > 0 => Some(size as usize),
                _ => {
                    return Err(raise(Error::InvalidArgument {
                        function: "export_objects".into(),
                        message: format!("`page_size` must be a positive integer, found {size}"),
                    }));
                }
            },
        };
        let strings = |key: &str| -> Vec<String> {
            match filter.get(key) {
                Some(v) if v.is_array() => v
                    .read_lock::<Array>()
                    .map(|a| a.iter().map(|x| x.to_string()).collect())
                    .unwrap_or_default(),
                Some(v) if v.is_string() => vec![v.to_string()],
                _ => Vec::new(),
            }
        };
        let export_filter = ExportFilter {
            namespaces: strings("namespaces"),
            kinds: strings("kinds"),
            exclude: strings("exclude"),
            secrets: flag(&filter, "secrets"),
            page_size,
        };
        let c = cluster.clone();
        let exported = run(&context, async move { c.export(&export_filter).await })?;
        let mut objects = Objects::default();
        exported
            .into_iter()
            .for_each(|object| objects.push_json(object));
        Ok(objects)
    }

    /// Server-side apply (field manager `meshshift`) of an object or array of objects; CRDs
    /// first (waiting until established), then Namespaces, then the rest, several at a time.
    /// The batch is validated by a server-side dry run before anything is written. Prints and
    /// returns each object's outcome: `created`, `configured` or `unchanged`.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let report = cluster("aks-target").apply(load("bookinfo.yaml"));
    /// ```
    #[rhai_fn(name = "apply", return_raw)]
    pub fn apply_default(
        context: NativeCallContext,
        cluster: &mut Cluster,
        objects: Dynamic,
    ) -> HostResult<Array> {
        apply(context, cluster, objects, Map::new())
    }

    /// `apply` with options: `dry_run` (server-side dry run; returns diffs, Secret values
    /// masked), `force` (take over fields other managers own), `quiet` (print nothing).
    ///
    /// # Example
    /// ```rhai,no_run
    /// let planned = cluster().apply(load("app.yaml"), #{dry_run: true});
    /// for p in planned { if p.diff != "" { print(p.diff); } }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn apply(
        context: NativeCallContext,
        cluster: &mut Cluster,
        objects: Dynamic,
        settings: Map,
    ) -> HostResult<Array> {
        check_keys("apply", &settings, &["dry_run", "force", "quiet"])?;
        let session = Session::of(&context)?;
        let objects = objects_argument("apply", &objects)?;
        let write = write_options(&session, &settings);
        let c = cluster.clone();
        let changes = run(&context, async move {
            c.mutate(Mutation::Apply(objects), &write).await
        })?;
        Ok(report(&session, &changes, flag(&settings, "quiet")))
    }

    /// Patches one object: a merge patch by default; options `type` (`merge`, `json`,
    /// `strategic`) and `dry_run`.
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster().patch("Service", "aks-istio-ingressgateway-external", "aks-istio-ingress", #{spec: #{externalTrafficPolicy: "Local"}});
    /// ```
    #[rhai_fn(name = "patch", return_raw)]
    pub fn patch_default(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        name: &str,
        namespace: &str,
        patch: Dynamic,
    ) -> HostResult<Map> {
        self::patch(context, cluster, kind, name, namespace, patch, Map::new())
    }

    /// `patch` with options (`type`, `dry_run`).
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster().patch("Deployment", "reviews-v1", "bookinfo", [#{op: "replace", path: "/spec/replicas", value: 2}], #{type: "json"});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn patch(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        name: &str,
        namespace: &str,
        patch: Dynamic,
        settings: Map,
    ) -> HostResult<Map> {
        check_keys("patch", &settings, &["type", "dry_run", "quiet"])?;
        let session = Session::of(&context)?;
        let patch_type = match settings.get("type") {
            Some(t) => PatchType::parse(&t.to_string()).map_err(|m| {
                raise(Error::InvalidArgument {
                    function: "patch".into(),
                    message: m,
                })
            })?,
            None => PatchType::Merge,
        };
        let patch = json_argument("patch", &patch)?;
        let target = Target {
            kind: kind.into(),
            name: name.into(),
            namespace: namespace_argument(namespace).map(str::to_string),
        };
        let write = write_options(&session, &settings);
        let c = cluster.clone();
        let changes = run(&context, async move {
            c.mutate(
                Mutation::Patch {
                    target,
                    patch,
                    patch_type,
                },
                &write,
            )
            .await
        })?;
        let reported = report(&session, &changes, flag(&settings, "quiet"));
        Ok(reported
            .into_iter()
            .next()
            .and_then(|d| d.try_cast::<Map>())
            .unwrap_or_default())
    }

    /// Sets labels of a live object; a `()` value removes the label.
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster("aks-target").label("Namespace", "bookinfo", "", #{"istio.io/rev": "asm-1-25", "istio-injection": ()});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn label(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        name: &str,
        namespace: &str,
        labels: Map,
    ) -> HostResult<Map> {
        self::patch(
            context,
            cluster,
            kind,
            name,
            namespace,
            metadata_patch("labels", labels),
            Map::new(),
        )
    }

    /// Sets annotations of a live object; a `()` value removes the annotation.
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster().annotate("Deployment", "reviews-v1", "bookinfo", #{"team": "mesh"});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn annotate(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        name: &str,
        namespace: &str,
        annotations: Map,
    ) -> HostResult<Map> {
        self::patch(
            context,
            cluster,
            kind,
            name,
            namespace,
            metadata_patch("annotations", annotations),
            Map::new(),
        )
    }

    /// `{metadata: {<field>: values}}`, the merge patch behind `label` and `annotate`.
    fn metadata_patch(field: &str, values: Map) -> Dynamic {
        let mut metadata = Map::new();
        metadata.insert(field.into(), values.into());
        let mut patch = Map::new();
        patch.insert("metadata".into(), metadata.into());
        patch.into()
    }

    /// Rollout restart of a Deployment, StatefulSet or DaemonSet (as `kubectl rollout restart`):
    /// new pods are created, which is how relabelled namespaces get their sidecars.
    ///
    /// # Example
    /// ```rhai,no_run
    /// for d in cluster().list("Deployment", #{namespace: "bookinfo"}) { cluster().restart("Deployment", d.metadata.name, "bookinfo"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn restart(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> HostResult<Map> {
        let now = jiff::Timestamp::now().to_string();
        let patch: Value = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
        self::patch(
            context,
            cluster,
            kind,
            name,
            namespace,
            to_dynamic(patch),
            Map::new(),
        )
    }

    /// Deletes one object (a missing object is reported as `absent`, not an error).
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster().delete("ServiceEntry", "target-cluster-http", "default");
    /// ```
    #[rhai_fn(name = "delete", return_raw)]
    pub fn delete_one(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> HostResult<Array> {
        delete_one_with(context, cluster, kind, name, namespace, Map::new())
    }

    /// Deletes one object with options: `wait` (until it is gone), `timeout` (default `2m`),
    /// `dry_run`.
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster().delete("Namespace", "bookinfo", "", #{wait: true, timeout: "5m"});
    /// ```
    #[rhai_fn(name = "delete", return_raw)]
    pub fn delete_one_with(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        name: &str,
        namespace: &str,
        settings: Map,
    ) -> HostResult<Array> {
        let target = Target {
            kind: kind.into(),
            name: name.into(),
            namespace: namespace_argument(namespace).map(str::to_string),
        };
        delete_targets(&context, cluster, vec![target], settings)
    }

    /// Deletes the given objects (maps with `kind`, `metadata.name` and `metadata.namespace`).
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster().delete(load("temporary.yaml"));
    /// ```
    #[rhai_fn(name = "delete", return_raw)]
    pub fn delete_objects(
        context: NativeCallContext,
        cluster: &mut Cluster,
        objects: Array,
    ) -> HostResult<Array> {
        delete_objects_with(context, cluster, objects, Map::new())
    }

    /// Deletes the given objects with options (`wait`, `timeout`, `dry_run`).
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster().delete(load("temporary.yaml"), #{wait: true});
    /// ```
    #[rhai_fn(name = "delete", return_raw)]
    pub fn delete_objects_with(
        context: NativeCallContext,
        cluster: &mut Cluster,
        objects: Array,
        settings: Map,
    ) -> HostResult<Array> {
        let mut targets = Vec::new();
        for object in &objects {
            let json = from_dynamic(object).map_err(|m| {
                raise(Error::InvalidArgument {
                    function: "delete".into(),
                    message: m,
                })
            })?;
            let kind = json["kind"].as_str().unwrap_or_default();
            let api_version = json["apiVersion"].as_str().unwrap_or_default();
            let name = json["metadata"]["name"].as_str().unwrap_or_default();
            if kind.is_empty() || name.is_empty() {
                return Err(raise(Error::InvalidArgument {
                    function: "delete".into(),
                    message: "every object needs `kind` and `metadata.name`".into(),
                }));
            }
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            let kind = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            targets.push(Target {
                kind,
                name: name.into(),
                namespace: json["metadata"]["namespace"].as_str().map(str::to_string),
            });
        }
        delete_targets(&context, cluster, targets, settings)
    }

    /// Waits until an object meets a condition, as `kubectl wait --for` spells them:
    /// `Available`, `Ready`, `Established`, `condition=X`, `deleted`, `rollout`,
    /// `jsonpath={.status.phase}=Running`. Shows progress on a terminal; on timeout fails with
    /// what it last saw. Returns the object (`()` for `deleted`). In plan mode it checks once
    /// (planned objects included) and, when a controller would have to act, prints what it
    /// would wait for and returns what it found.
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster().wait("Deployment", "productpage-v1", "bookinfo", "Available", "2m");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn wait(
        context: NativeCallContext,
        cluster: &mut Cluster,
        kind: &str,
        name: &str,
        namespace: &str,
        condition: &str,
        timeout: Dynamic,
    ) -> HostResult<Dynamic> {
        let condition = Condition::parse(condition).map_err(|m| {
            raise(Error::InvalidArgument {
                function: "wait".into(),
                message: m,
            })
        })?;
        let timeout = duration_argument("wait", &timeout)?;
        let c = cluster.clone();
        let session = Session::of(&context)?;
        if session.is_plan() {
            // Plan mode: what the overlay decides passes at once; what needs a controller is
            // only announced.
            let found = run(&context, async move {
                c.get(kind, name, namespace_argument(namespace)).await
            })?;
            if !condition.is_met(found.as_ref()) {
                session.out.info(&format!(
                    "would wait for {kind} {name} to be {condition} (plan: not waited for)"
                ));
            }
            return Ok(found.map(to_dynamic).unwrap_or(Dynamic::UNIT));
        }
        let what = format!("{kind} {name}: {condition}");
        let found = wait_with_spinner(&context, what, move |progress| {
            Box::pin(async move {
                c.wait_for(
                    kind,
                    name,
                    namespace_argument(namespace),
                    &condition,
                    timeout,
                    &*progress,
                )
                .await
            })
        })?;
        Ok(found.map(to_dynamic).unwrap_or(Dynamic::UNIT))
    }

    /// Waits (up to 5 minutes) until every Deployment, StatefulSet and DaemonSet of a namespace
    /// has rolled out; returns how many there are. In plan mode it does not wait: it prints
    /// what it would wait for.
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster("aks-target").wait_rollout("bookinfo");
    /// ```
    #[rhai_fn(name = "wait_rollout", return_raw)]
    pub fn wait_rollout_default(
        context: NativeCallContext,
        cluster: &mut Cluster,
        namespace: &str,
    ) -> HostResult<i64> {
        wait_rollout(context, cluster, namespace, Dynamic::from("5m".to_string()))
    }

    /// Waits until a namespace's workloads have rolled out, up to `timeout`.
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster("aks-target").wait_rollout("bookinfo", "10m");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn wait_rollout(
        context: NativeCallContext,
        cluster: &mut Cluster,
        namespace: &str,
        timeout: Dynamic,
    ) -> HostResult<i64> {
        let timeout = duration_argument("wait_rollout", &timeout)?;
        let c = cluster.clone();
        let session = Session::of(&context)?;
        if session.is_plan() {
            let (total, pending) =
                run(&context, async move { c.rollout_pending(namespace).await })?;
            if !pending.is_empty() {
                session.out.info(&format!(
                    "would wait for the rollout of {} of {total} workloads in {namespace} (plan: not waited for)",
                    pending.len()
                ));
            }
            return Ok(total as i64);
        }
        let what = format!("rollout of {namespace}");
        let count = wait_with_spinner(&context, what, move |progress| {
            Box::pin(async move { c.wait_rollout(namespace, timeout, &*progress).await })
        })?;
        Ok(count as i64)
    }

    /// Waits (up to 10 minutes) until every Deployment, StatefulSet and DaemonSet of all the
    /// given namespaces has rolled out, all at once, following them with watches; returns how
    /// many workloads there are.
    ///
    /// # Example
    /// ```rhai,no_run
    /// cluster("aks-target").wait_rollouts(["bookinfo", "shop", "payments"]);
    /// ```
    #[rhai_fn(name = "wait_rollouts", return_raw)]
    pub fn wait_rollouts_default(
        context: NativeCallContext,
        cluster: &mut Cluster,
        namespaces: Array,
    ) -> HostResult<i64> {
        wait_rollouts(
            context,
            cluster,
            namespaces,
            Dynamic::from("10m".to_string()),
        )
    }

    /// Waits until the workloads of many namespaces have rolled out, up to `timeout`. The
    /// namespaces are waited for concurrently, by one watch per workload kind, so the wait
    /// ends when the slowest rollout does. A terminal shows a bar ("41/61 namespaces rolled
    /// out, slowest: ns-17 (reviews-v3 1/2 ready)"). On timeout it fails naming every workload
    /// that is not ready and why: its status, its conditions, its pods' waiting reasons. In
    /// plan mode it does not wait: it prints what it would wait for.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let moved = ["bookinfo", "shop"];
    /// let workloads = cluster("aks-target").wait_rollouts(moved, "10m");
    /// print(`${workloads} workloads rolled out`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn wait_rollouts(
        context: NativeCallContext,
        cluster: &mut Cluster,
        namespaces: Array,
        timeout: Dynamic,
    ) -> HostResult<i64> {
        let timeout = duration_argument("wait_rollouts", &timeout)?;
        let namespaces: Vec<String> = namespaces
            .into_iter()
            .map(|n| {
                n.into_immutable_string()
                    .map(|s| s.to_string())
                    .map_err(|found| {
                        raise(Error::InvalidArgument {
                            function: "wait_rollouts".into(),
                            message: format!("namespaces must be strings, found {found}"),
                        })
                    })
            })
            .collect::<HostResult<_>>()?;
        let c = cluster.clone();
        let session = Session::of(&context)?;
        if session.is_plan() {
            let names = namespaces.clone();
            let pending = run(&context, async move {
                let mut found = Vec::new();
                for namespace in &names {
                    let (total, pending) = c.rollout_pending(namespace).await?;
                    found.push((total, pending.len()));
                }
                Ok(found)
            })?;
            let total: usize = pending.iter().map(|(t, _)| t).sum();
            let waiting: usize = pending.iter().map(|(_, p)| p).sum();
            if waiting > 0 {
                session.out.info(&format!(
                    "would wait for the rollout of {waiting} of {total} workloads in {} namespaces (plan: not waited for)",
                    namespaces.len()
                ));
            }
            return Ok(total as i64);
        }
        let bar = session
            .out
            .progress_bar(namespaces.len() as u64, "rollouts");
        let shown = std::sync::atomic::AtomicUsize::new(0);
        let progress = |now: &crate::cluster::wait::RolloutProgress| {
            let before = shown.swap(now.done, std::sync::atomic::Ordering::Relaxed);
            bar.inc(now.done.saturating_sub(before) as u64);
            bar.set_message(
                &now.slowest
                    .as_ref()
                    .map(|s| format!("slowest: {s}"))
                    .unwrap_or_default(),
            );
        };
        let result = run(&context, async {
            c.wait_rollouts(&namespaces, timeout, &progress).await
        });
        bar.finish();
        Ok(result? as i64)
    }
}

fn delete_targets(
    context: &NativeCallContext,
    cluster: &mut Cluster,
    targets: Vec<Target>,
    settings: Map,
) -> HostResult<Array> {
    check_keys(
        "delete",
        &settings,
        &["wait", "timeout", "dry_run", "quiet"],
    )?;
    let session = Session::of(context)?;
    let wait = if flag(&settings, "wait") {
        Some(timeout_option("delete", &settings, "2m")?)
    } else {
        None
    };
    let write = write_options(&session, &settings);
    let c = cluster.clone();
    let changes = run(context, async move {
        c.mutate(Mutation::Delete { targets, wait }, &write).await
    })?;
    Ok(report(&session, &changes, flag(&settings, "quiet")))
}
