//! Simulated Kubernetes clusters: an in-process API server that speaks the real REST API.
//!
//! Unmodified kubectl and kube-rs work against it, so code that manages clusters runs the
//! same way against simulated and real ones. This crate does not depend on meshshift, and
//! meshshift reaches it only over HTTPS and HTTP, through a kubeconfig and the `az` command
//! line; its own code uses it only to start it (`--sim`, `meshshift sim`).
//!
//! # Starting servers
//!
//! ```no_run
//! # async fn example() -> Result<(), meshshift_sim::SimError> {
//! use meshshift_sim::{ApiServer, ApiServerConfig, Sim};
//!
//! // One cluster on an ephemeral loopback port, with its own CA and bearer token.
//! let server = ApiServer::start(ApiServerConfig::named("sim-a")?).await?;
//! server.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig-a"))?;
//! println!("{} trusts {} bytes of CA", server.url(), server.ca_pem().len());
//! server.shutdown().await?;
//!
//! // `sim-source` and `sim-target` plus a kubeconfig with both contexts.
//! let pair = Sim::start_pair(std::path::Path::new("/tmp/kubeconfig"), |config| config).await?;
//! pair.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! [`command`] holds the `meshshift sim up | down | status` entry points, [`az`] the emulated
//! Azure CLI (`meshshift sim az`).
//!
//! # Complete environments
//!
//! [`Environment::start`] runs what `meshshift sim up`, `run --sim` and the tests use: both
//! API servers with their admission hooks, the scenario installed through the API, agents
//! and the mesh data plane, on the caller's Tokio runtime. It writes
//! `<state dir>/sim/kubeconfig` and `<state dir>/sim/state.json` (clusters, load balancer
//! listeners, port mappings), which `meshshift sim az` and `sim status` read.
//!
//! ```no_run
//! # async fn example() -> Result<(), meshshift_sim::SimError> {
//! use meshshift_sim::{Environment, EnvironmentOptions};
//!
//! let env = Environment::start(EnvironmentOptions::default()).await?;
//! println!("KUBECONFIG={}", env.kubeconfig.display());
//! for listener in env.listeners() {
//!     println!("{} {}/{} at http://{}", listener.cluster, listener.service.0, listener.service.1, listener.address);
//! }
//! env.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! **Scenario** ([`scenario`]): `sim-source` runs open-source Istio 1.30.2 (`istio-system`:
//! `istiod`, ConfigMap `istio`, the `istio-ingressgateway` LoadBalancer, the
//! `istio-sidecar-injector` webhook configuration), `sim-target` the AKS add-on at the
//! matching revision (`aks-istio-system`: `istiod-asm-1-30`, ConfigMap `istio-asm-1-30`, and
//! an empty `aks-istio-ingress` until `az aks mesh enable-ingress-gateway`). Both serve the
//! Istio CRDs and have one Node. The source's objects follow upstream's rendered default
//! install (chart labels, the stock MeshConfig with `rootNamespace` and
//! `defaultConfig.discoveryAddress`, which a copy to the add-on must drop). The version, the
//! source's MeshConfig (add `enableAutoMtls: true` for a precheck blocker) and native
//! sidecars are options (`sim up --istio-version --mesh-config --native-sidecars`).
//!
//! **Agents** ([`agents`]) work through the API with kube-rs, as controllers do: Deployments
//! get ReplicaSets named by the pod template's hash and Pods (`reviews-v1-5c7d8f9b6-x2kq9`),
//! template changes roll out (surge, then the old ReplicaSet scales to zero), statuses and
//! conditions are what `kubectl rollout status`, `kubectl wait --for=condition=Available` and
//! meshshift's `wait_rollout` read; StatefulSets and DaemonSets roll out on the single node;
//! pods become Running and Ready after [`EnvironmentOptions::pod_ready_delay`] (100 ms);
//! LoadBalancer Services get `127.<slot>.1.n` (source) or `127.<slot>.2.n` (target), the slot
//! being distinct per environment ([`addresses`]).
//!
//! **Admission** ([`hooks`], [`injection`]): sidecar injection on pod CREATE, selected by the
//! cluster's MutatingWebhookConfigurations exactly as Istio's chart writes them (so
//! `istio-injection` beats `istio.io/rev`, and the add-on, which has no default revision,
//! ignores `istio-injection=enabled`), plus the add-on's refusals on the target: ProxyConfig,
//! WorkloadEntry, WorkloadGroup, IstioOperator, WasmPlugin, and shared MeshConfig fields
//! outside its allowlist.
//!
//! **Data plane** ([`mesh`]): every LoadBalancer port serves HTTP on its loopback address (a
//! port that cannot be bound is served on a free port of the same address; the mapping is in
//! `state.json`, printed by `sim status`, and in the kubeconfig's cluster entry as the
//! extension [`kubeconfig::CONNECT_TO_EXTENSION`]). Gateways route by Gateway (selector, server port
//! = target port or port, hosts: another Host gets 404), VirtualService (the most specific
//! host's rules in order, URI exact/prefix/regex, headers, method, weights with Istio's
//! semantics, `retries` (Istio's default policy when absent), `timeout` (`504 upstream
//! request timeout`), `headers` request/response set/add/remove on routes and destinations,
//! `fault`, `directResponse`, `redirect`, `rewrite.uri`, `rewrite.authority`),
//! DestinationRule subsets and ServiceEntries (STATIC endpoints are forwarded to for real,
//! over loopback only, with the original Host). Pods labelled
//! `app: productpage|details|reviews|ratings` answer like bookinfo (the productpage names the
//! reviews pod its in-mesh call reached); pods labelled `app: echo`, and all others, run the
//! echo app ([`mesh::apps::echo`]: JSON naming the pod and the request's host, path, method
//! and headers). Routing changes reach the gateways after
//! [`EnvironmentOptions::propagation_delay`] (300 ms). `az aks delete` marks namespace
//! `kube-system` with `sim.meshshift.io/deleted=true`: the cluster's gateways stop listening.
//!
//! **Faults** in the data plane are Service annotations ([`mesh::faults`]):
//! `sim.meshshift.io/http-503-ratio`, `sim.meshshift.io/latency-ms`,
//! `sim.meshshift.io/drop-ratio`.
//!
//! # What is served
//!
//! - `/version`, `/healthz`, `/livez`, `/readyz` (these four without authentication, as on
//!   clusters that allow anonymous health checks); everything else needs the bearer token
//!   and answers `401` otherwise.
//! - Discovery: `/api`, `/apis`, group and resource lists (legacy and aggregated
//!   `apidiscovery.k8s.io/v2`), OpenAPI v3 documents declaring `fieldValidation` (so kubectl
//!   validates on the server side and needs no schemas) with CRD schemas for
//!   `kubectl explain`. `/openapi/v2` answers 404, which kubectl tolerates.
//! - Built-in kinds: Namespace, Pod, Service, Endpoints, ConfigMap, Secret, ServiceAccount,
//!   Node, Event, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
//!   CustomResourceDefinition, Mutating/ValidatingWebhookConfiguration, Lease, Role,
//!   RoleBinding, ClusterRole, ClusterRoleBinding. A stored CRD serves its kinds in every
//!   served version, gets `NamesAccepted`/`Established` conditions, and deleting it deletes
//!   its objects first.
//! - Verbs: get, list (label selectors with `in`/`notin`/`!key`, field selectors on
//!   `metadata.name`/`metadata.namespace` and per-kind fields such as `status.phase`,
//!   `limit`/`continue`), watch (from a resource version, bookmarks, `sendInitialEvents`,
//!   `timeoutSeconds`, `410 Expired` when the version left the change window), create
//!   (`generateName`), update (resourceVersion conflicts), JSON/merge/strategic merge patch,
//!   server-side apply with `managedFields` and conflicts, delete with finalizers and
//!   `propagationPolicy`, deletecollection, `dryRun=All`, `/status` and `/scale`.
//! - `Accept: ...;as=Table` answers with `meta.k8s.io/v1` Tables for `kubectl get`
//!   (`as=PartialObjectMetadata` with metadata only).
//! - `fieldValidation`: unknown fields (checked against the k8s-openapi types for built-in
//!   kinds and against the CRD schema for custom resources) are refused with `Strict`,
//!   dropped with a `Warning` header with `Warn` (the default) and dropped silently with
//!   `Ignore`; fields of the wrong type are refused.
//! - Defaulting as the real server does it for the common kinds (container, pod template,
//!   workload, Service, Job defaults), with ownership in `managedFields` following the same
//!   rules: decoding defaults belong to the writer, registry-set fields to nobody.
//!
//! Request bodies are JSON or YAML. kubectl's typed `create <kind>` generators send
//! protobuf; [`protobuf`] understands what they send for Namespaces, ConfigMaps, Secrets,
//! ServiceAccounts, Services and Deployments, and other protobuf bodies are refused with
//! `415` (`kubectl create -f` and `kubectl apply` send JSON and work for every kind).
//!
//! # Admission hooks
//!
//! [`admission::AdmissionHook`] is called on every create, update, patch and apply, after
//! defaulting and before validation and storage. It sees the request (kind, namespace,
//! operation, old object) and a read-only [`admission::ClusterView`], may change the object
//! (sidecar injection) or refuse the write with an [`status::ApiError`] (a managed add-on
//! refusing kinds it does not support):
//!
//! ```
//! use meshshift_sim::admission::{AdmissionHook, AdmissionRequest};
//! use meshshift_sim::status::ApiError;
//! use serde_json::Value;
//!
//! struct NoEnvoyFilters;
//!
//! impl AdmissionHook for NoEnvoyFilters {
//!     fn admit(&self, request: &AdmissionRequest<'_>, _object: &mut Value) -> Result<(), ApiError> {
//!         if request.kind == "EnvoyFilter" {
//!             return Err(ApiError::new(403, "Forbidden", "EnvoyFilter is not supported"));
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! Register hooks in [`ApiServerConfig::admission`].
//!
//! # Fault injection
//!
//! [`fault::FaultConfig`] (in [`ApiServerConfig::fault`]) injects random `500`/`503`/`429`
//! Status answers, latency, and dropped requests into API and discovery requests (never
//! into health checks). [`ApiServerConfig::named`] reads it from the environment:
//!
//! | variable | meaning |
//! | --- | --- |
//! | `MESHSHIFT_SIM_ERROR_RATE` | probability of an error answer, e.g. `0.05` |
//! | `MESHSHIFT_SIM_DROP_RATE` | probability of dropping the request (closed connection or reset stream) |
//! | `MESHSHIFT_SIM_LATENCY_MS` | added latency, `50` or a range `20-80` |
//!
//! Each variable can be given for one cluster by appending its name in upper case with
//! `_` for `-`: `MESHSHIFT_SIM_ERROR_RATE_SIM_TARGET=0.2`.
//!
//! # Limits and differences from a real server
//!
//! Bodies over 3 MiB are refused with `413`. Every write happens under one lock, so it is
//! applied completely or not at all. The clusters are single-stack IPv4 (Services get
//! addresses from `10.96.0.0/12`; `RequireDualStack` is refused), present themselves as
//! Kubernetes v1.33, and keep the last 10,000 changes for watches
//! ([`ApiServerConfig::watch_window`]). The API server itself does garbage collection of owned
//! objects, namespace deletion, CRD establishment and cleanup and default ServiceAccounts;
//! a bare [`ApiServer`] runs no controllers (Deployments create Pods only in an
//! [`Environment`], whose agents do that). There is no scheduler: controllers place pods on
//! the node themselves, and pods created directly keep an empty `spec.nodeName`. Endpoints
//! and EndpointSlices are not maintained; pods are deleted at once (no graceful
//! termination); the data plane speaks HTTP/1.1 only, without TLS. Validation covers names, labels,
//! the required fields and immutable fields users meet most, not every upstream rule; CEL
//! rules in CRDs (`x-kubernetes-validations`) are not evaluated; RBAC objects are stored as
//! they are and not enforced; OpenAPI documents describe custom resources fully but
//! built-in kinds only by name (so `kubectl explain` is useful for CRDs only).

pub mod addresses;
pub mod admission;
pub mod agents;
pub mod az;
pub mod cluster;
pub mod command;
pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod environment;
pub mod fault;
pub mod field_validation;
pub mod fieldset;
pub mod handler;
pub mod hooks;
pub mod http;
pub mod injection;
pub mod install;
pub mod kubeconfig;
pub mod managed;
pub mod mesh;
pub mod negotiate;
pub mod object;
pub mod openapi;
pub mod patch;
pub mod portforward;
pub mod protobuf;
pub mod registry;
pub mod resource;
pub mod router;
pub mod scenario;
pub mod schema;
pub mod selector;
pub mod server;
pub mod snapshot;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod validation;
pub mod watch;
pub mod workload;

pub use environment::{Environment, EnvironmentOptions, SimEnvironment};
pub use server::{
    ApiServer, ApiServerConfig, ApiServerHandle, SOURCE_NAME, Sim, SimError, TARGET_NAME,
};
