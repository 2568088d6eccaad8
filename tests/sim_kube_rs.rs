//! kube-rs against the simulated API server: the client path runbooks use.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{Discovery, Scope};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::json;

use crate::sim_support::{TestServer, fixture};

async fn client(server_kubeconfig: &std::path::Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(server_kubeconfig).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(
        kubeconfig,
        &KubeConfigOptions {
            context: Some("sim-test".into()),
            ..KubeConfigOptions::default()
        },
    )
    .await
    .expect("kubeconfig usable");
    Client::try_from(config).expect("client builds")
}

fn manifests(name: &str) -> Vec<DynamicObject> {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("object"))
        .collect()
}

fn api_status(error: kube::Error) -> kube::core::Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other}"),
    }
}

async fn install_routes_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_yaml::from_str(
        &std::fs::read_to_string(fixture("routes-crd.yaml")).expect("fixture"),
    )
    .expect("CRD");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("CRD created");
    let established = await_condition(
        crds,
        "routes.mesh.example.com",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(10), established)
        .await
        .expect("CRD established in time")
        .expect("watch works");
}

#[test]
fn discovery_finds_built_in_and_custom_kinds() {
    let server = TestServer::start();
    server.runtime.block_on(async {
        let client = client(&server.kubeconfig).await;
        install_routes_crd(&client).await;
        let route = GroupVersionKind::gvk("mesh.example.com", "v1", "Route");
        let deployment = GroupVersionKind::gvk("apps", "v1", "Deployment");
        let legacy = Discovery::new(client.clone())
            .run()
            .await
            .expect("discovery");
        let aggregated = Discovery::new(client.clone())
            .run_aggregated()
            .await
            .expect("aggregated discovery");
        for discovery in [&legacy, &aggregated] {
            let (resource, capabilities) = discovery.resolve_gvk(&route).expect("Route resolved");
            assert_eq!(resource.plural, "routes");
            assert_eq!(capabilities.scope, Scope::Namespaced);
            assert!(
                capabilities
                    .subresources
                    .iter()
                    .any(|(s, _)| s.plural == "status")
            );
            let (resource, capabilities) = discovery
                .resolve_gvk(&deployment)
                .expect("Deployment resolved");
            assert_eq!(resource.plural, "deployments");
            assert!(capabilities.supports_operation("watch"));
            assert!(
                capabilities
                    .subresources
                    .iter()
                    .any(|(s, _)| s.plural == "scale")
            );
        }
        let old_version = GroupVersionKind::gvk("mesh.example.com", "v1beta1", "Route");
        assert!(
            legacy.resolve_gvk(&old_version).is_some(),
            "every served version is discoverable"
        );
    });
}

#[test]
fn server_side_apply_of_dynamic_objects_creates_then_keeps_them() {
    let server = TestServer::start();
    server.runtime.block_on(async {
        let client = client(&server.kubeconfig).await;
        let discovery = Discovery::new(client.clone()).run().await.expect("discovery");
        let params = PatchParams::apply("meshshift");
        let apply_all = |objects: Vec<DynamicObject>| {
            let client = client.clone();
            let discovery = &discovery;
            let params = params.clone();
            async move {
                let mut versions = Vec::new();
                for object in objects {
                    let gvk = GroupVersionKind::try_from(object.types.as_ref().expect("typed")).expect("gvk");
                    let (resource, _) = discovery.resolve_gvk(&gvk).expect("served kind");
                    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
                    let name = object.metadata.name.clone().expect("named");
                    let applied = api.patch(&name, &params, &Patch::Apply(&object)).await.expect("applied");
                    versions.push(applied.metadata.resource_version.expect("versioned"));
                }
                versions
            }
        };
        let first = apply_all(manifests("bookinfo-mini.yaml")).await;
        let second = apply_all(manifests("bookinfo-mini.yaml")).await;
        assert_eq!(first, second, "re-applying the same objects changes nothing");

        let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
        let reviews = deployments.get("reviews-v1").await.expect("deployment exists");
        let managers: Vec<String> = reviews
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.manager)
            .collect();
        assert_eq!(managers, ["meshshift"]);

        let scale = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "reviews-v1"}, "spec": {"replicas": 4}});
        deployments
            .patch("reviews-v1", &PatchParams::apply("autoscaler"), &Patch::Apply(&scale))
            .await
            .map(|_| ())
            .map_err(api_status)
            .map(|()| panic!("taking over replicas from meshshift must conflict"))
            .unwrap_or_else(|status| {
                assert_eq!(status.code, 409);
                assert_eq!(status.reason, "Conflict");
                assert_eq!(status.message, "Apply failed with 1 conflict: conflict with \"meshshift\": .spec.replicas");
            });
        let forced = deployments
            .patch("reviews-v1", &PatchParams::apply("autoscaler").force(), &Patch::Apply(&scale))
            .await
            .expect("forced apply");
        assert_eq!(forced.spec.and_then(|s| s.replicas), Some(4));
        let dry = deployments
            .patch("reviews-v1", &PatchParams::apply("pauser").dry_run(), &Patch::Apply(&json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "reviews-v1"}, "spec": {"paused": true}
            })))
            .await
            .expect("dry-run apply");
        assert_eq!(dry.spec.and_then(|s| s.paused), Some(true));
        let live = deployments.get("reviews-v1").await.expect("deployment exists");
        assert_eq!(live.spec.and_then(|s| s.paused), None, "dry run stored nothing");

        // Applying less as the same manager removes what it no longer applies: here the
        // selector and template, which the server then refuses as invalid.
        let shrunk = deployments
            .patch("reviews-v1", &PatchParams::apply("meshshift").dry_run(), &Patch::Apply(&json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "reviews-v1"}, "spec": {"paused": true}
            })))
            .await
            .map(|_| ())
            .expect_err("dropping required fields is invalid");
        let status = api_status(shrunk);
        assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
        assert!(status.message.contains("spec.selector: Required value"), "{}", status.message);
    });
}

type Events =
    futures::stream::BoxStream<'static, Result<watcher::Event<ConfigMap>, watcher::Error>>;

async fn next(events: &mut Events) -> watcher::Event<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(10), events.try_next())
        .await
        .expect("watcher event in time")
        .expect("watcher ok")
        .expect("stream open")
}

#[test]
fn watcher_follows_changes_and_restarts_cleanly() {
    let server = TestServer::start();
    server.runtime.block_on(async {
        let client = client(&server.kubeconfig).await;
        let configmaps: Api<ConfigMap> = Api::default_namespaced(client.clone());
        let config = watcher::Config::default().labels("watched=yes");
        let mut events: Events = watcher(configmaps.clone(), config).boxed();
        assert!(matches!(next(&mut events).await, watcher::Event::Init));
        assert!(matches!(next(&mut events).await, watcher::Event::InitDone));
        let object: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "w", "labels": {"watched": "yes"}}, "data": {"a": "1"}
        }))
        .expect("configmap");
        configmaps
            .create(&PostParams::default(), &object)
            .await
            .expect("created");
        match next(&mut events).await {
            watcher::Event::Apply(cm) => assert_eq!(cm.metadata.name.as_deref(), Some("w")),
            other => panic!("expected Apply, got {other:?}"),
        }
        configmaps
            .patch(
                "w",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"a": "2"}})),
            )
            .await
            .expect("patched");
        match next(&mut events).await {
            watcher::Event::Apply(cm) => {
                assert_eq!(
                    cm.data.and_then(|d| d.get("a").cloned()).as_deref(),
                    Some("2")
                )
            }
            other => panic!("expected Apply, got {other:?}"),
        }
        configmaps
            .delete("w", &DeleteParams::default())
            .await
            .expect("deleted");
        assert!(matches!(next(&mut events).await, watcher::Event::Delete(_)));

        let streaming = watcher::Config::default()
            .labels("watched=yes")
            .streaming_lists();
        let mut stream = watcher(configmaps.clone(), streaming).boxed();
        let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("in time");
        assert!(matches!(first, Ok(Some(watcher::Event::Init))), "{first:?}");
        let done = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("in time");
        assert!(
            matches!(done, Ok(Some(watcher::Event::InitDone))),
            "streaming lists end with InitDone: {done:?}"
        );
    });
}

#[test]
fn await_condition_sees_finalized_deletion() {
    let server = TestServer::start();
    server.runtime.block_on(async {
        let client = client(&server.kubeconfig).await;
        let configmaps: Api<ConfigMap> = Api::default_namespaced(client.clone());
        let object: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]}
        }))
        .expect("configmap");
        let created = configmaps
            .create(&PostParams::default(), &object)
            .await
            .expect("created");
        let uid = created.metadata.uid.clone().expect("uid");
        configmaps
            .delete("held", &DeleteParams::default())
            .await
            .expect("delete accepted");
        let gone = await_condition(configmaps.clone(), "held", conditions::is_deleted(&uid));
        tokio::pin!(gone);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut gone)
                .await
                .is_err(),
            "still held by its finalizer"
        );
        configmaps
            .patch(
                "held",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
            .expect("finalizer removed");
        tokio::time::timeout(Duration::from_secs(10), gone)
            .await
            .expect("deleted in time")
            .expect("watch works");
    });
}

#[test]
fn typed_apis_list_with_selectors_and_report_errors() {
    let server = TestServer::start();
    server.runtime.block_on(async {
        let client = client(&server.kubeconfig).await;
        let pods: Api<Pod> = Api::default_namespaced(client.clone());
        for (name, version) in [("r1", "v1"), ("r2", "v2"), ("r3", "v3")] {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"app": "reviews", "version": version}},
                "spec": {"containers": [{"name": "main", "image": "reviews"}]}
            }))
            .expect("pod");
            pods.create(&PostParams::default(), &pod)
                .await
                .expect("created");
        }
        let selected = pods
            .list(&ListParams::default().labels("app=reviews,version in (v1,v2)"))
            .await
            .expect("list");
        let names: Vec<String> = selected
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        assert_eq!(names, ["r1", "r2"]);
        let paged = pods
            .list(&ListParams::default().limit(2))
            .await
            .expect("first page");
        assert_eq!(paged.items.len(), 2);
        let token = paged.metadata.continue_.expect("continue token");
        let rest = pods
            .list(&ListParams::default().limit(2).continue_token(&token))
            .await
            .expect("second page");
        assert_eq!(rest.items.len(), 1);

        let missing = api_status(pods.get("nope").await.expect_err("not found"));
        assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
        assert_eq!(missing.message, "pods \"nope\" not found");
        let mut stale = pods.get("r1").await.expect("exists");
        stale.metadata.resource_version = Some("1".into());
        let conflict = api_status(
            pods.replace("r1", &PostParams::default(), &stale)
                .await
                .expect_err("stale"),
        );
        assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
        let kube_system = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
            .get("kube-system")
            .await
            .expect("kube-system");
        assert!(kube_system.metadata.uid.is_some_and(|u| u.len() == 36));
    });
}
