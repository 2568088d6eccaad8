//! The simulated API server over raw HTTPS: status codes, Status bodies, semantics.

use std::sync::Arc;
use std::time::Duration;

use meshshift::sim::admission::{AdmissionHook, AdmissionRequest};
use meshshift::sim::fault::FaultConfig;
use meshshift::sim::status::ApiError;
use serde_json::{Value, json};

use crate::sim_support::{TestServer, eventually, fixture, https_client, item_names};

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

fn deployment(name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": image}]}}
        }
    })
}

fn rv(object: &Value) -> String {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn discovery_lists_groups_resources_and_verbs() {
    let server = TestServer::start();
    let (code, core) = server.get("/api");
    assert_eq!((code, core["versions"].clone()), (200, json!(["v1"])));
    let (_, v1) = server.get("/api/v1");
    let configmaps = v1["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "configmaps"))
        .cloned()
        .expect("configmaps listed");
    assert_eq!(configmaps["shortNames"], json!(["cm"]));
    assert_eq!(configmaps["namespaced"], json!(true));
    assert!(
        configmaps["verbs"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("watch")))
    );
    let (_, groups) = server.get("/apis");
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for group in [
        "apps",
        "batch",
        "apiextensions.k8s.io",
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
    ] {
        assert!(names.contains(&group), "{group} missing from {names:?}");
    }
    let (code, apps) = server.get("/apis/apps/v1");
    assert_eq!(code, 200);
    let deploy = apps["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "deployments"))
        .expect("deployments");
    assert_eq!(deploy["categories"], json!(["all"]));
    let (code, _) = server.get("/apis/nope.example.com/v1");
    assert_eq!(code, 404);
}

#[test]
fn system_namespaces_exist_with_a_stable_kube_system_uid() {
    let server = TestServer::start_with(|c| meshshift::sim::ApiServerConfig {
        kube_system_uid: Some("11111111-2222-4333-8444-555555555555".into()),
        ..c
    });
    let (_, namespaces) = server.get("/api/v1/namespaces");
    let mut names = item_names(&namespaces);
    names.sort();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    let (_, kube_system) = server.get("/api/v1/namespaces/kube-system");
    assert_eq!(
        kube_system["metadata"]["uid"],
        "11111111-2222-4333-8444-555555555555"
    );
    let (code, account) = server.get("/api/v1/namespaces/default/serviceaccounts/default");
    assert_eq!(code, 200, "{account}");
}

#[test]
fn create_get_conflict_and_not_found_use_the_real_messages() {
    let server = TestServer::start();
    let (code, created) = server.post(CM, &configmap("app", json!({"k": "v"})));
    assert_eq!(code, 201, "{created}");
    assert!(
        created["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert!(created["metadata"]["creationTimestamp"].is_string());
    assert!(
        created["metadata"].get("generation").is_none(),
        "ConfigMaps have no generation"
    );
    let (code, again) = server.post(CM, &configmap("app", json!({})));
    assert_eq!(code, 409);
    assert_eq!(again["reason"], "AlreadyExists");
    assert_eq!(again["message"], "configmaps \"app\" already exists");

    let mut stale = created.clone();
    stale["data"]["k"] = json!("first");
    let (code, updated) = server.put(&format!("{CM}/app"), &stale);
    assert_eq!(code, 200);
    assert_ne!(rv(&updated), rv(&created));
    stale["data"]["k"] = json!("second");
    let (code, conflict) = server.put(&format!("{CM}/app"), &stale);
    assert_eq!(code, 409);
    assert_eq!(conflict["reason"], "Conflict");
    assert_eq!(
        conflict["message"],
        "Operation cannot be fulfilled on configmaps \"app\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let (code, missing) = server.get(&format!("{CM}/nope"));
    assert_eq!((code, missing["reason"].as_str()), (404, Some("NotFound")));
    assert_eq!(missing["message"], "configmaps \"nope\" not found");
    assert_eq!(
        missing["details"],
        json!({"name": "nope", "kind": "configmaps"})
    );
    let (code, missing_deploy) = server.get("/apis/apps/v1/namespaces/default/deployments/web");
    assert_eq!(code, 404);
    assert_eq!(
        missing_deploy["message"],
        "deployments.apps \"web\" not found"
    );
    let (code, no_namespace) = server.post(
        "/api/v1/namespaces/ghost/configmaps",
        &configmap("x", json!({})),
    );
    assert_eq!(code, 404);
    assert_eq!(no_namespace["message"], "namespaces \"ghost\" not found");
}

#[test]
fn invalid_names_and_mismatched_bodies_are_rejected() {
    let server = TestServer::start();
    let (code, invalid) = server.post(CM, &configmap("Bad_Name", json!({})));
    assert_eq!(code, 422);
    assert_eq!(invalid["reason"], "Invalid");
    assert!(
        invalid["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain")),
        "{invalid}"
    );
    assert_eq!(invalid["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(
        invalid["details"]["causes"][0]["reason"],
        "FieldValueInvalid"
    );

    let (code, nameless) = server.post(
        CM,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
    );
    assert_eq!(code, 422);
    assert_eq!(
        nameless["details"]["causes"][0]["reason"],
        "FieldValueRequired"
    );

    let mut other_namespace = configmap("x", json!({}));
    other_namespace["metadata"]["namespace"] = json!("kube-system");
    let (code, mismatch) = server.post(CM, &other_namespace);
    assert_eq!(code, 400);
    assert_eq!(
        mismatch["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );

    let (code, wrong_kind) = server.post(
        "/api/v1/namespaces/default/secrets",
        &configmap("x", json!({})),
    );
    assert_eq!(
        (code, wrong_kind["reason"].as_str()),
        (400, Some("BadRequest"))
    );
    let mut wrong_version = configmap("x", json!({}));
    wrong_version["apiVersion"] = json!("apps/v1");
    let (code, _) = server.post(CM, &wrong_version);
    assert_eq!(code, 400);

    let (code, service) = server.post(
        "/api/v1/namespaces/default/services",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a.b"},
                "spec": {"ports": [{"port": 80}]}}),
    );
    assert_eq!(code, 422, "Service names are DNS-1035 labels: {service}");
    let (_, list) = server.get(CM);
    assert_eq!(
        item_names(&list),
        ["kube-root-ca.crt"],
        "nothing stored by failed writes"
    );
}

#[test]
fn bad_input_gets_a_status_and_stores_nothing() {
    let server = TestServer::start();
    let (code, malformed) = server.request(
        "POST",
        CM,
        Some("application/json"),
        Some(b"{\"apiVersion\":\"v1\",".to_vec()),
    );
    assert_eq!(code, 400);
    assert_eq!(malformed["kind"], "Status");
    assert!(
        malformed["message"]
            .as_str()
            .is_some_and(|m| m.contains("json parse error")),
        "{malformed}"
    );

    let (code, yaml) = server.request(
        "POST",
        CM,
        Some("application/yaml"),
        Some(b"a: [b".to_vec()),
    );
    assert_eq!((code, yaml["reason"].as_str()), (400, Some("BadRequest")));
    let (code, from_yaml) = server.request(
        "POST",
        CM,
        Some("application/yaml"),
        Some(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-yaml}\n".to_vec()),
    );
    assert_eq!(code, 201, "YAML bodies are accepted: {from_yaml}");

    let (code, media) = server.request("POST", CM, Some("text/plain"), Some(b"{}".to_vec()));
    assert_eq!(
        (code, media["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, patch_media) = server.request(
        "PATCH",
        &format!("{CM}/from-yaml"),
        Some("application/json"),
        Some(b"{}".to_vec()),
    );
    assert_eq!(code, 415, "{patch_media}");

    let huge = configmap("huge", json!({"blob": "x".repeat(3 * 1024 * 1024)}));
    let (code, too_large) = server.post(CM, &huge);
    assert_eq!(
        (code, too_large["reason"].as_str()),
        (413, Some("RequestEntityTooLarge"))
    );

    let (code, unknown) = server.get("/api/v1/namespaces/default/widgets");
    assert_eq!(code, 404);
    assert_eq!(
        unknown["message"],
        "the server could not find the requested resource"
    );
    let (code, not_allowed) =
        server.request("PUT", CM, Some("application/json"), Some(b"{}".to_vec()));
    assert_eq!(
        (code, not_allowed["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );

    let (code, bad_selector) = server.get(&format!("{CM}?labelSelector=a+in+(x"));
    assert_eq!(code, 400);
    assert_eq!(
        bad_selector["message"],
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
    let (code, bad_field) = server.get(&format!("{CM}?fieldSelector=spec.x%3Dy"));
    assert_eq!(
        (code, bad_field["reason"].as_str()),
        (400, Some("BadRequest"))
    );

    let (code, _) = server.request(
        "POST",
        "/api/v1/namespaces/default/configmaps/from-yaml/status",
        None,
        None,
    );
    assert_eq!(code, 404, "ConfigMaps have no status subresource");

    let (_, list) = server.get(CM);
    assert_eq!(item_names(&list), ["from-yaml", "kube-root-ca.crt"]);
}

#[test]
fn requests_without_the_token_are_unauthorized() {
    let server = TestServer::start();
    let (code, status) = server.request_with("GET", CM, None, None, Some("wrong-token"), None);
    assert_eq!(
        (code, status["reason"].as_str()),
        (401, Some("Unauthorized"))
    );
    let (code, _) = server.request_with("GET", "/api", None, None, None, None);
    assert_eq!(code, 401);
    let (code, health) = server.request_with("GET", "/readyz", None, None, None, None);
    assert_eq!((code, health), (200, json!("ok")));
    let (code, version) = server.request_with("GET", "/version", None, None, None, None);
    assert_eq!((code, version["major"].as_str()), (200, Some("1")));
    let (code, _) = server.get(CM);
    assert_eq!(code, 200, "the right token still works");
}

#[test]
fn http2_is_negotiated_over_alpn() {
    let server = TestServer::start();
    let token = server.token();
    let url = format!("{}/api/v1/namespaces", server.url);
    for (http2, expected) in [
        (true, reqwest::Version::HTTP_2),
        (false, reqwest::Version::HTTP_11),
    ] {
        let client = https_client(server.handle().ca_pem(), http2);
        let version = server.runtime.block_on(async {
            let response = client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200);
            response.version()
        });
        assert_eq!(version, expected);
    }
}

#[test]
fn unknown_fields_are_refused_warned_about_or_dropped() {
    let server = TestServer::start();
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    let mut typo = deployment("web", "nginx");
    typo["spec"]["replica"] = json!(3);
    typo["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = json!("Always");
    let body = typo.to_string();
    let (code, _, strict) = server.request_warned(
        "POST",
        &format!("{deployments}?fieldValidation=Strict"),
        "application/json",
        &body,
    );
    assert_eq!((code, strict["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        strict["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.template.spec.containers[0].imagePolicy\", unknown field \"spec.replica\""
    );
    let (code, warnings, created) =
        server.request_warned("POST", deployments, "application/json", &body);
    assert_eq!(code, 201);
    assert_eq!(
        warnings,
        [
            "299 - \"unknown field \\\"spec.template.spec.containers[0].imagePolicy\\\"\"",
            "299 - \"unknown field \\\"spec.replica\\\"\""
        ]
    );
    assert!(
        created["spec"].get("replica").is_none(),
        "unknown fields are dropped"
    );
    let (code, warnings, _) = server.request_warned(
        "PATCH",
        &format!("{deployments}/web?fieldValidation=Ignore"),
        "application/merge-patch+json",
        r#"{"spec":{"paused":true,"pasued":true}}"#,
    );
    assert_eq!((code, warnings.len()), (200, 0));
    assert_eq!(
        server.get(&format!("{deployments}/web")).1["spec"].get("pasued"),
        None
    );

    let (code, _, wrong_type) = server.request_warned(
        "PATCH",
        &format!("{deployments}/web"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":"three"}}"#,
    );
    assert_eq!(
        (code, wrong_type["reason"].as_str()),
        (400, Some("BadRequest")),
        "{wrong_type}"
    );

    let apply =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\ndata: {a: b}\nextra: 1\n";
    let (code, _, refused) = server.request_warned(
        "PATCH",
        &format!("{CM}/applied?fieldManager=x&fieldValidation=Strict"),
        "application/apply-patch+yaml",
        apply,
    );
    // As kube-apiserver v1.37: server-side apply refuses an undeclared field whatever
    // fieldValidation says, with a 500 that is no API status (no reason).
    assert_eq!(code, 500);
    assert_eq!(
        refused["message"],
        "failed to create typed patch object (default/applied; /v1, Kind=ConfigMap): .extra: field not declared in schema"
    );
    assert!(refused.get("reason").is_none(), "{refused}");
    let (code, _, _) = server.request_warned(
        "POST",
        &format!("{CM}?fieldValidation=Lenient"),
        "application/json",
        &configmap("x", json!({})).to_string(),
    );
    assert_eq!(code, 400);
}

#[test]
fn custom_resources_are_pruned_to_their_schema() {
    let server = TestServer::start();
    let crd: Value = serde_yaml::from_str(
        &std::fs::read_to_string(fixture("routes-crd.yaml")).expect("fixture"),
    )
    .expect("yaml");
    assert_eq!(
        server
            .post(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                &crd
            )
            .0,
        201
    );
    let routes = "/apis/mesh.example.com/v1/namespaces/default/routes";
    let route = json!({"apiVersion": "mesh.example.com/v1", "kind": "Route", "metadata": {"name": "r"},
                       "spec": {"host": "reviews", "hostz": "typo", "subsets": [{"name": "v1", "weigth": 3}]},
                       "status": {"anything": {"goes": true}}});
    let (code, _, strict) = server.request_warned(
        "POST",
        &format!("{routes}?fieldValidation=Strict"),
        "application/json",
        &route.to_string(),
    );
    assert_eq!(code, 400);
    assert_eq!(
        strict["message"],
        "Route in version \"v1\" cannot be handled as a Route: strict decoding error: unknown field \"spec.hostz\", unknown field \"spec.subsets[0].weigth\""
    );
    let (code, warnings, created) =
        server.request_warned("POST", routes, "application/json", &route.to_string());
    assert_eq!((code, warnings.len()), (201, 2));
    assert_eq!(
        created["spec"],
        json!({"host": "reviews", "subsets": [{"name": "v1"}]})
    );
    let (code, _, lenient) = server.request_warned(
        "POST",
        "/apis/mesh.example.com/v1beta1/namespaces/default/routes?fieldValidation=Strict",
        "application/json",
        &json!({"apiVersion": "mesh.example.com/v1beta1", "kind": "Route", "metadata": {"name": "free"}, "spec": {"whatever": 1}}).to_string(),
    );
    assert_eq!(code, 201, "v1beta1 preserves unknown fields: {lenient}");
}

#[test]
fn delete_collection_removes_what_the_selector_matches() {
    let server = TestServer::start();
    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let mut object = configmap(name, json!({}));
        object["metadata"]["labels"] = json!({"app": app});
        server.post(CM, &object);
    }
    let (code, deleted) = server.delete(&format!("{CM}?labelSelector=app%3Dx"));
    assert_eq!(code, 200);
    assert_eq!(deleted["kind"], "ConfigMapList");
    assert_eq!(item_names(&deleted), ["a", "b"]);
    let (_, left) = server.get(CM);
    assert_eq!(item_names(&left), ["c", "kube-root-ca.crt"]);
    let (code, _) = server.request(
        "DELETE",
        &format!("{CM}?labelSelector=app&dryRun=All"),
        None,
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(
        item_names(&server.get(CM).1).len(),
        2,
        "dry run deleted nothing"
    );
    let (code, _) = server.post("/api/v1/configmaps", &configmap("nowhere", json!({})));
    assert_eq!(code, 405, "namespaced kinds are created inside a namespace");
    let (code, _) = server.get("/api/v1/configmaps/c");
    assert_eq!(code, 404);
    assert_eq!(
        server.get("/api/v1/configmaps").0,
        200,
        "listing across namespaces works"
    );
}

#[test]
fn generate_name_makes_unique_names() {
    let server = TestServer::start();
    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "job-"}});
    let (code, first) = server.post(CM, &body);
    let (_, second) = server.post(CM, &body);
    assert_eq!(code, 201);
    let first = first["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let second = second["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(first.starts_with("job-") && first.len() == 9, "{first}");
    assert_ne!(first, second);
}

#[test]
fn lists_filter_by_label_and_field_and_page() {
    let server = TestServer::start();
    for (name, labels) in [
        ("a", json!({"app": "reviews", "version": "v1"})),
        ("b", json!({"app": "reviews", "version": "v2"})),
        (
            "c",
            json!({"app": "reviews", "version": "v3", "canary": "true"}),
        ),
        ("d", json!({"app": "ratings"})),
    ] {
        let mut object = configmap(name, json!({}));
        object["metadata"]["labels"] = labels;
        assert_eq!(server.post(CM, &object).0, 201);
    }
    let names = |query: &str| {
        let (code, list) = server.get(&format!("{CM}?{query}"));
        assert_eq!(code, 200, "{query}: {list}");
        item_names(&list)
    };
    assert_eq!(names("labelSelector=app%3Dreviews"), ["a", "b", "c"]);
    assert_eq!(names("labelSelector=version+in+(v1,v3)"), ["a", "c"]);
    assert_eq!(
        names("labelSelector=app%3Dreviews,version+notin+(v1)"),
        ["b", "c"]
    );
    assert_eq!(names("labelSelector=!canary,app"), ["a", "b", "d"]);
    assert_eq!(names("labelSelector=canary"), ["c"]);
    assert_eq!(names("fieldSelector=metadata.name%3Db"), ["b"]);
    assert_eq!(
        names("fieldSelector=metadata.name!%3Db,metadata.namespace%3Ddefault&labelSelector=app"),
        ["a", "c", "d"]
    );

    let (_, page1) = server.get(&format!("{CM}?limit=2"));
    assert_eq!(item_names(&page1), ["a", "b"]);
    assert_eq!(page1["metadata"]["remainingItemCount"], 3);
    let token = page1["metadata"]["continue"]
        .as_str()
        .expect("continue token")
        .to_string();
    let (_, page2) = server.get(&format!("{CM}?limit=2&continue={token}"));
    assert_eq!(item_names(&page2), ["c", "d"]);
    let token = page2["metadata"]["continue"]
        .as_str()
        .expect("continue token")
        .to_string();
    let (_, page3) = server.get(&format!("{CM}?limit=2&continue={token}"));
    assert_eq!(item_names(&page3), ["kube-root-ca.crt"]);
    assert!(page3["metadata"].get("continue").is_none());
    let (code, _) = server.get(&format!("{CM}?continue=garbage"));
    assert_eq!(code, 400);

    let (_, everywhere) =
        server.get("/api/v1/configmaps?fieldSelector=metadata.name%3Dkube-root-ca.crt");
    assert_eq!(
        everywhere["items"].as_array().map(Vec::len),
        Some(4),
        "one per system namespace"
    );
    assert!(
        everywhere["items"][0].get("kind").is_none(),
        "built-in list items carry no kind"
    );
}

#[test]
fn pod_field_selectors_on_phase_and_node() {
    let server = TestServer::start();
    let pods = "/api/v1/namespaces/default/pods";
    for (name, node) in [("p1", "node-a"), ("p2", "node-b")] {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                         "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}});
        let (code, created) = server.post(pods, &pod);
        assert_eq!(code, 201, "{created}");
        assert_eq!(created["status"]["phase"], "Pending");
    }
    let (code, _) = server.patch(
        &format!("{pods}/p2/status"),
        "application/merge-patch+json",
        r#"{"status":{"phase":"Running"}}"#,
    );
    assert_eq!(code, 200);
    let (_, running) = server.get(&format!("{pods}?fieldSelector=status.phase%3DRunning"));
    assert_eq!(item_names(&running), ["p2"]);
    let (_, on_a) = server.get(&format!("{pods}?fieldSelector=spec.nodeName%3Dnode-a"));
    assert_eq!(item_names(&on_a), ["p1"]);
    let (code, unknown) = server.get(&format!("{pods}?fieldSelector=spec.image%3Dx"));
    assert_eq!(code, 400);
    assert_eq!(unknown["message"], "field label not supported: spec.image");
}

#[test]
fn patches_merge_json_and_strategic() {
    let server = TestServer::start();
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    let (code, created) = server.post(deployments, &deployment("web", "nginx:1"));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    let web = format!("{deployments}/web");

    let (code, merged) = server.patch(
        &web,
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"tier":"front"}}}"#,
    );
    assert_eq!(code, 200);
    assert_eq!(
        merged["metadata"]["labels"],
        json!({"app": "web", "tier": "front"})
    );
    assert_eq!(
        merged["metadata"]["generation"], 1,
        "metadata changes keep the generation"
    );

    let strategic =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"proxy","image":"envoy"}]}}}}"#;
    let (code, patched) = server.patch(&web, "application/strategic-merge-patch+json", strategic);
    assert_eq!(code, 200, "{patched}");
    let containers: Vec<&str> = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        containers,
        ["proxy", "main"],
        "strategic merge keeps existing containers"
    );
    assert_eq!(patched["metadata"]["generation"], 2);
    let delete_proxy =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"proxy","$patch":"delete"}]}}}}"#;
    let (_, after_delete) =
        server.patch(&web, "application/strategic-merge-patch+json", delete_proxy);
    assert_eq!(
        after_delete["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let (code, json_patched) = server.patch(
        &web,
        "application/json-patch+json",
        r#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
    );
    assert_eq!(
        (code, json_patched["spec"]["replicas"].clone()),
        (200, json!(3))
    );
    let (code, failed) = server.patch(
        &web,
        "application/json-patch+json",
        r#"[{"op":"remove","path":"/metadata/labels/nope"}]"#,
    );
    assert_eq!((code, failed["reason"].as_str()), (422, Some("Invalid")));

    let (code, unchanged) = server.patch(
        &web,
        "application/merge-patch+json",
        r#"{"spec":{"replicas":3}}"#,
    );
    assert_eq!(code, 200);
    assert_eq!(
        rv(&unchanged),
        rv(&json_patched),
        "a no-op patch keeps the resourceVersion"
    );

    let (code, stale) = server.patch(
        &web,
        "application/merge-patch+json",
        r#"{"metadata":{"resourceVersion":"1"},"spec":{"replicas":4}}"#,
    );
    assert_eq!((code, stale["reason"].as_str()), (409, Some("Conflict")));
    let (code, missing) = server.patch(
        &format!("{deployments}/nope"),
        "application/merge-patch+json",
        "{}",
    );
    assert_eq!(code, 404, "{missing}");
}

#[test]
fn server_side_apply_creates_keeps_unchanged_and_reports_conflicts() {
    let server = TestServer::start();
    let path = format!("{CM}/settings?fieldManager=deployer");
    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {team: mesh}\ndata:\n  mode: canary\n  weight: \"10\"\n";
    let (code, created) = server.patch(&path, "application/apply-patch+yaml", config);
    assert_eq!(code, 201, "{created}");
    let fields = &created["metadata"]["managedFields"][0];
    assert_eq!(fields["manager"], "deployer");
    assert_eq!(fields["operation"], "Apply");
    assert_eq!(
        fields["fieldsV1"],
        json!({"f:data": {"f:mode": {}, "f:weight": {}}, "f:metadata": {"f:labels": {"f:team": {}}}})
    );

    let (code, again) = server.patch(&path, "application/apply-patch+yaml", config);
    assert_eq!(code, 200);
    assert_eq!(
        rv(&again),
        rv(&created),
        "an unchanged apply does not bump the resourceVersion"
    );
    assert_eq!(
        again["metadata"]["managedFields"], created["metadata"]["managedFields"],
        "nor the managedFields time"
    );

    let (code, _) = server.patch(
        &format!("{CM}/settings?fieldManager=operator"),
        "application/merge-patch+json",
        r#"{"data":{"weight":"50"}}"#,
    );
    assert_eq!(code, 200);
    let (code, conflict) = server.patch(&path, "application/apply-patch+yaml", config);
    assert_eq!(code, 409);
    assert_eq!(conflict["reason"], "Conflict");
    assert_eq!(
        conflict["message"],
        "Apply failed with 1 conflict: conflict with \"operator\" using v1: .data.weight"
    );
    assert_eq!(conflict["details"]["causes"][0]["field"], ".data.weight");
    assert_eq!(
        conflict["details"]["causes"][0]["reason"],
        "FieldManagerConflict"
    );

    let (code, forced) = server.patch(
        &format!("{path}&force=true"),
        "application/apply-patch+yaml",
        config,
    );
    assert_eq!((code, forced["data"]["weight"].as_str()), (200, Some("10")));

    let smaller =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata:\n  mode: canary\n";
    let (_, pruned) = server.patch(&path, "application/apply-patch+yaml", smaller);
    assert_eq!(
        pruned["data"],
        json!({"mode": "canary"}),
        "fields no longer applied are removed"
    );
    assert!(pruned["metadata"].get("labels").is_none());

    let (code, no_manager) = server.patch(
        &format!("{CM}/settings"),
        "application/apply-patch+yaml",
        smaller,
    );
    assert_eq!(code, 422);
    assert_eq!(
        no_manager["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let (code, bad_yaml) = server.patch(&path, "application/apply-patch+yaml", "data: [oops");
    assert_eq!(code, 400, "{bad_yaml}");
}

#[test]
fn apply_of_a_deployment_merges_lists_by_key() {
    let server = TestServer::start();
    let path = "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=meshshift";
    let first = deployment("web", "nginx:1").to_string();
    let (code, created) = server.patch(path, "application/apply-patch+yaml", &first);
    assert_eq!(code, 201, "{created}");
    let container_key = "k:{\"name\":\"main\"}";
    assert!(created["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][container_key].is_object());
    let inject = r#"{"spec":{"template":{"spec":{"containers":[{"name":"istio-proxy","image":"proxyv2"}]}}}}"#;
    let (code, _) = server.patch(
        "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=injector",
        "application/strategic-merge-patch+json",
        inject,
    );
    assert_eq!(code, 200);
    let second = deployment("web", "nginx:2").to_string();
    let (code, applied) = server.patch(path, "application/apply-patch+yaml", &second);
    assert_eq!(code, 200, "{applied}");
    let containers = &applied["spec"]["template"]["spec"]["containers"];
    let images: Vec<&str> = containers
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect();
    assert_eq!(
        images.len(),
        2,
        "the injected container survives: {containers}"
    );
    assert!(images.contains(&"nginx:2") && images.contains(&"proxyv2"));
    assert_eq!(applied["metadata"]["generation"], 3);
}

#[test]
fn dry_run_answers_without_storing() {
    let server = TestServer::start();
    let (code, preview) = server.post(
        &format!("{CM}?dryRun=All"),
        &configmap("ghost", json!({"a": "1"})),
    );
    assert_eq!(code, 201);
    assert_eq!(preview["metadata"]["name"], "ghost");
    assert_eq!(server.get(&format!("{CM}/ghost")).0, 404);
    let (code, _) = server.post(CM, &configmap("real", json!({"a": "1"})));
    assert_eq!(code, 201);
    let (_, before) = server.get(&format!("{CM}/real"));
    let (code, patched) = server.patch(
        &format!("{CM}/real?dryRun=All"),
        "application/merge-patch+json",
        r#"{"data":{"a":"2"}}"#,
    );
    assert_eq!((code, patched["data"]["a"].as_str()), (200, Some("2")));
    let (code, applied) = server.patch(
        &format!("{CM}/real?dryRun=All&fieldManager=x&force=true"),
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: real}\ndata: {a: \"3\"}\n",
    );
    assert_eq!((code, applied["data"]["a"].as_str()), (200, Some("3")));
    let (code, _) = server.request("DELETE", &format!("{CM}/real?dryRun=All"), None, None);
    assert_eq!(code, 200);
    let (_, after) = server.get(&format!("{CM}/real"));
    assert_eq!(after, before, "dry runs changed nothing");
    let (code, bad) = server.post(&format!("{CM}?dryRun=Some"), &configmap("x", json!({})));
    assert_eq!(code, 422, "{bad}");
}

#[test]
fn status_subresource_separates_spec_and_status_writes() {
    let server = TestServer::start();
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    let mut body = deployment("web", "nginx:1");
    body["status"] = json!({"replicas": 7});
    let (_, created) = server.post(deployments, &body);
    assert!(
        created
            .get("status")
            .is_none_or(|s| s.get("replicas").is_none()),
        "status is dropped on create"
    );
    let (code, status_written) = server.patch(
        &format!("{deployments}/web/status"),
        "application/merge-patch+json",
        r#"{"status":{"readyReplicas":1},"spec":{"replicas":9}}"#,
    );
    assert_eq!(code, 200);
    assert_eq!(status_written["status"]["readyReplicas"], 1);
    assert_eq!(
        status_written["spec"]["replicas"], 1,
        "status writes ignore spec"
    );
    assert_eq!(status_written["metadata"]["generation"], 1);
    let (_, main_written) = server.patch(
        &format!("{deployments}/web"),
        "application/merge-patch+json",
        r#"{"status":{"readyReplicas":5},"spec":{"replicas":2}}"#,
    );
    assert_eq!(
        main_written["status"]["readyReplicas"], 1,
        "main writes ignore status"
    );
    assert_eq!(main_written["spec"]["replicas"], 2);
    assert_eq!(main_written["metadata"]["generation"], 2);

    let (code, scale) = server.get(&format!("{deployments}/web/scale"));
    assert_eq!(code, 200);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=web");
    let (code, scaled) = server.patch(
        &format!("{deployments}/web/scale"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":5}}"#,
    );
    assert_eq!((code, scaled["spec"]["replicas"].clone()), (200, json!(5)));
    assert_eq!(
        server.get(&format!("{deployments}/web")).1["spec"]["replicas"],
        5
    );
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let server = TestServer::start();
    let mut object = configmap("held", json!({}));
    object["metadata"]["finalizers"] = json!(["example.com/hold"]);
    assert_eq!(server.post(CM, &object).0, 201);
    let (code, deleting) = server.delete(&format!("{CM}/held"));
    assert_eq!(code, 200);
    assert!(
        deleting["metadata"]["deletionTimestamp"].is_string(),
        "{deleting}"
    );
    let (code, still) = server.get(&format!("{CM}/held"));
    assert_eq!(code, 200);
    let (code, refused) = server.patch(
        &format!("{CM}/held"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":["example.com/hold","example.com/more"]}}"#,
    );
    assert_eq!(code, 422, "no new finalizers while deleting: {refused}");
    let (code, _) = server.patch(
        &format!("{CM}/held"),
        "application/json-patch+json",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    );
    assert_eq!(code, 200);
    assert_eq!(
        server.get(&format!("{CM}/held")).0,
        404,
        "gone once the finalizers are: {still}"
    );
}

fn owned_replica_set(server: &TestServer, name: &str, owner: &Value) -> Value {
    let replica_set = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "labels": {"app": "web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": owner["metadata"]["name"],
                                          "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "main", "image": "nginx"}]}}}
    });
    let (code, created) = server.post("/apis/apps/v1/namespaces/default/replicasets", &replica_set);
    assert_eq!(code, 201, "{created}");
    created
}

#[test]
fn deletion_propagates_through_owner_references() {
    let server = TestServer::start();
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    let replica_sets = "/apis/apps/v1/namespaces/default/replicasets";
    for (policy, dependent_survives) in [
        ("Background", false),
        ("Foreground", false),
        ("Orphan", true),
    ] {
        let name = format!("web-{}", policy.to_lowercase());
        let (_, owner) = server.post(deployments, &deployment(&name, "nginx"));
        owned_replica_set(&server, &format!("{name}-rs"), &owner);
        let body = json!({"propagationPolicy": policy})
            .to_string()
            .into_bytes();
        let (code, _) = server.request(
            "DELETE",
            &format!("{deployments}/{name}"),
            Some("application/json"),
            Some(body),
        );
        assert_eq!(code, 200, "{policy}");
        assert_eq!(
            server.get(&format!("{deployments}/{name}")).0,
            404,
            "{policy}: owner gone"
        );
        let (code, dependent) = server.get(&format!("{replica_sets}/{name}-rs"));
        assert_eq!(code == 200, dependent_survives, "{policy}: {dependent}");
        if dependent_survives {
            assert!(
                dependent["metadata"].get("ownerReferences").is_none(),
                "orphans lose the reference"
            );
        }
    }
}

#[test]
fn deleting_a_namespace_deletes_its_contents() {
    let server = TestServer::start();
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    assert_eq!(server.post("/api/v1/namespaces", &namespace).0, 201);
    let (code, account) = server.get("/api/v1/namespaces/shop/serviceaccounts/default");
    assert_eq!(code, 200, "default ServiceAccount created: {account}");
    let mut held = configmap("held", json!({}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    assert_eq!(
        server.post("/api/v1/namespaces/shop/configmaps", &held).0,
        201
    );
    assert_eq!(
        server
            .post(
                "/api/v1/namespaces/shop/configmaps",
                &configmap("plain", json!({}))
            )
            .0,
        201
    );
    let (code, terminating) = server.delete("/api/v1/namespaces/shop");
    assert_eq!(code, 200);
    assert_eq!(terminating["status"]["phase"], "Terminating");
    let (_, remaining) = server.get("/api/v1/namespaces/shop/configmaps");
    assert_eq!(item_names(&remaining), ["held"]);
    let (code, forbidden) = server.post(
        "/api/v1/namespaces/shop/configmaps",
        &configmap("late", json!({})),
    );
    assert_eq!(
        (code, forbidden["reason"].as_str()),
        (403, Some("Forbidden"))
    );
    assert_eq!(
        server.get("/api/v1/namespaces/shop").1["status"]["phase"],
        "Terminating"
    );
    server.patch(
        "/api/v1/namespaces/shop/configmaps/held",
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    );
    assert_eq!(
        server.get("/api/v1/namespaces/shop").0,
        404,
        "namespace gone once empty"
    );
    let (code, _) = server.delete("/api/v1/namespaces/kube-system");
    assert_eq!(code, 403, "system namespaces cannot be deleted");
}

#[test]
fn secrets_merge_string_data_into_data() {
    let server = TestServer::start();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                        "data": {"user": "YWRtaW4="}, "stringData": {"password": "s3cret"}});
    let (code, created) = server.post("/api/v1/namespaces/default/secrets", &secret);
    assert_eq!(code, 201);
    assert_eq!(
        created["data"],
        json!({"user": "YWRtaW4=", "password": "czNjcmV0"})
    );
    assert!(created.get("stringData").is_none());
    assert_eq!(created["type"], "Opaque");
}

#[test]
fn crds_serve_their_kinds_until_deleted() {
    let server = TestServer::start();
    let crd: Value = serde_yaml::from_str(
        &std::fs::read_to_string(fixture("routes-crd.yaml")).expect("fixture"),
    )
    .expect("yaml");
    let (code, _) = server.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    );
    assert_eq!(code, 201);
    let (_, stored) = server
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/routes.mesh.example.com");
    let conditions: Vec<(String, String)> = stored["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or("").into(),
                c["status"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert!(
        conditions.contains(&("Established".into(), "True".into())),
        "{conditions:?}"
    );
    assert!(conditions.contains(&("NamesAccepted".into(), "True".into())));
    assert_eq!(stored["status"]["acceptedNames"]["kind"], "Route");

    let (code, group) = server.get("/apis/mesh.example.com");
    assert_eq!(code, 200);
    assert_eq!(group["preferredVersion"]["version"], "v1");
    let routes = "/apis/mesh.example.com/v1/namespaces/default/routes";
    let route = json!({"apiVersion": "mesh.example.com/v1", "kind": "Route", "metadata": {"name": "r1"},
                       "spec": {"host": "reviews", "weight": 10}});
    let (code, created) = server.post(routes, &route);
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    let (code, old_version) =
        server.get("/apis/mesh.example.com/v1beta1/namespaces/default/routes/r1");
    assert_eq!(
        (code, old_version["apiVersion"].as_str()),
        (200, Some("mesh.example.com/v1beta1"))
    );
    let (_, list) = server.get(routes);
    assert_eq!(
        list["items"][0]["kind"], "Route",
        "custom resource list items keep their kind"
    );
    let (code, strategic) = server.patch(
        &format!("{routes}/r1"),
        "application/strategic-merge-patch+json",
        "{}",
    );
    assert_eq!(
        code, 415,
        "no strategic merge patch for custom resources: {strategic}"
    );

    let (code, _) = server
        .delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/routes.mesh.example.com");
    assert_eq!(code, 200);
    assert_eq!(
        server
            .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/routes.mesh.example.com")
            .0,
        404
    );
    assert_eq!(server.get(routes).0, 404, "kind no longer served");
    assert_eq!(server.get("/apis/mesh.example.com").0, 404);
    let (code, _) = server.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    );
    assert_eq!(code, 201);
    let (_, relisted) = server.get(routes);
    assert!(
        item_names(&relisted).is_empty(),
        "objects were deleted with their CRD"
    );
}

#[test]
fn tables_for_kubectl_get() {
    let server = TestServer::start();
    server.post(
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment("web", "nginx:1"),
    );
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let (code, table) = server.request_with(
        "GET",
        "/apis/apps/v1/namespaces/default/deployments",
        None,
        None,
        Some(&server.token()),
        Some(accept),
    );
    assert_eq!(code, 200);
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter(|c| c["priority"] == 0)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Name", "Ready", "Up-to-date", "Available", "Age"]);
    assert_eq!(table["rows"][0]["cells"][0], "web");
    assert_eq!(table["rows"][0]["cells"][1], "0/1");
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let (_, single) = server.request_with(
        "GET",
        "/api/v1/namespaces/default",
        None,
        None,
        Some(&server.token()),
        Some(accept),
    );
    assert_eq!(
        single["rows"][0]["cells"],
        json!(["default", "Active", single["rows"][0]["cells"][2]])
    );
}

struct InjectAndRefuse;

impl AdmissionHook for InjectAndRefuse {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        if request.kind == "ConfigMap" && request.name == "forbidden" {
            return Err(ApiError::new(
                403,
                "Forbidden",
                "configmaps named forbidden are refused by policy",
            ));
        }
        if request.kind == "Pod" {
            let labels = request
                .cluster
                .get("", "namespaces", "", request.namespace)
                .and_then(|ns| {
                    ns["metadata"]["labels"]["istio-injection"]
                        .as_str()
                        .map(str::to_string)
                });
            if labels.as_deref() == Some("enabled")
                && let Some(containers) = object["spec"]["containers"].as_array_mut()
                && !containers.iter().any(|c| c["name"] == "istio-proxy")
            {
                containers.push(json!({"name": "istio-proxy", "image": "proxyv2:1.0"}));
            }
        }
        Ok(())
    }
}

#[test]
fn admission_hooks_mutate_and_refuse() {
    let server = TestServer::start_with(|c| meshshift::sim::ApiServerConfig {
        admission: vec![Arc::new(InjectAndRefuse)],
        ..c
    });
    server.patch(
        "/api/v1/namespaces/default",
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"istio-injection":"enabled"}}}"#,
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
                     "spec": {"containers": [{"name": "app", "image": "app:1"}]}});
    let (code, created) = server.post("/api/v1/namespaces/default/pods", &pod);
    assert_eq!(code, 201, "{created}");
    let proxy = &created["spec"]["containers"][1];
    assert_eq!(proxy["name"], "istio-proxy");
    assert_eq!(
        proxy["imagePullPolicy"], "IfNotPresent",
        "injected containers are defaulted"
    );
    let (code, refused) = server.post(CM, &configmap("forbidden", json!({})));
    assert_eq!(
        (code, refused["message"].as_str()),
        (
            403,
            Some("configmaps named forbidden are refused by policy")
        )
    );
    assert_eq!(server.get(&format!("{CM}/forbidden")).0, 404);
}

#[test]
fn injected_faults_answer_with_statuses_but_spare_health_checks() {
    let failing = TestServer::start_with(|c| meshshift::sim::ApiServerConfig {
        fault: FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        },
        ..c
    });
    for _ in 0..6 {
        let (code, status) = failing.get(CM);
        assert!([500, 503, 429].contains(&code), "{code}");
        assert_eq!(status["kind"], "Status");
    }
    assert_eq!(
        failing
            .request_with("GET", "/readyz", None, None, None, None)
            .0,
        200
    );

    let dropping = TestServer::start_with(|c| meshshift::sim::ApiServerConfig {
        fault: FaultConfig {
            drop_rate: 1.0,
            ..FaultConfig::default()
        },
        ..c
    });
    let token = dropping.token();
    let client = https_client(dropping.handle().ca_pem(), false);
    let url = format!("{}{CM}", dropping.url);
    let outcome = dropping.runtime.block_on(async {
        client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .map(|r| r.status())
    });
    assert!(
        outcome.is_err(),
        "dropped requests get no answer: {outcome:?}"
    );

    let slow = TestServer::start_with(|c| meshshift::sim::ApiServerConfig {
        fault: FaultConfig {
            latency: Duration::from_millis(150),
            ..FaultConfig::default()
        },
        ..c
    });
    let started = std::time::Instant::now();
    assert_eq!(slow.get(CM).0, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn snapshots_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let snapshot = dir.path().join("sim-test.json");
    let uid = {
        let server = TestServer::start_with(|c| meshshift::sim::ApiServerConfig {
            snapshot: Some(snapshot.clone()),
            ..c
        });
        assert_eq!(
            server.post(CM, &configmap("kept", json!({"a": "1"}))).0,
            201
        );
        server.get("/api/v1/namespaces/kube-system").1["metadata"]["uid"].clone()
    };
    eventually(Duration::from_secs(5), "snapshot file", || {
        snapshot.exists().then_some(())
    });
    let server = TestServer::start_with(|c| meshshift::sim::ApiServerConfig {
        snapshot: Some(snapshot.clone()),
        ..c
    });
    let (code, kept) = server.get(&format!("{CM}/kept"));
    assert_eq!((code, kept["data"]["a"].as_str()), (200, Some("1")));
    assert_eq!(
        server.get("/api/v1/namespaces/kube-system").1["metadata"]["uid"],
        uid,
        "same cluster identity"
    );
    let (code, next) = server.post(CM, &configmap("next", json!({})));
    assert_eq!(code, 201);
    assert!(rv(&next).parse::<u64>().expect("number") > rv(&kept).parse::<u64>().expect("number"));
}

fn summary(watch: &crate::sim_support::Watch) -> (String, String) {
    crate::sim_support::event_summary(&watch.expect())
}

fn pair(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

#[test]
fn watches_stream_changes_in_order_from_a_version() {
    let server = TestServer::start();
    let (_, first) = server.post(CM, &configmap("w1", json!({})));
    let watch = crate::sim_support::Watch::open(
        &server,
        &format!("{CM}?watch=true&resourceVersion={}", rv(&first)),
    );
    server.post(CM, &configmap("w2", json!({})));
    server.patch(
        &format!("{CM}/w1"),
        "application/merge-patch+json",
        r#"{"data":{"a":"1"}}"#,
    );
    server.delete(&format!("{CM}/w2"));
    assert_eq!(summary(&watch), pair("ADDED", "w2"));
    assert_eq!(summary(&watch), pair("MODIFIED", "w1"));
    let deleted = watch.expect();
    assert_eq!(
        crate::sim_support::event_summary(&deleted),
        pair("DELETED", "w2")
    );
    assert_eq!(deleted["object"]["kind"], "ConfigMap");

    let from_start = crate::sim_support::Watch::open(&server, &format!("{CM}?watch=1"));
    let mut initial: Vec<(String, String)> = (0..2).map(|_| summary(&from_start)).collect();
    initial.sort();
    assert_eq!(
        initial,
        [pair("ADDED", "kube-root-ca.crt"), pair("ADDED", "w1")]
    );

    let legacy = crate::sim_support::Watch::open(
        &server,
        &format!(
            "/api/v1/watch/namespaces/default/configmaps/w1?resourceVersion={}",
            rv(&first)
        ),
    );
    assert_eq!(summary(&legacy), pair("MODIFIED", "w1"));
}

#[test]
fn watches_follow_selectors_as_objects_enter_and_leave_them() {
    let server = TestServer::start();
    let watch = crate::sim_support::Watch::open(
        &server,
        &format!("{CM}?watch=true&labelSelector=track%3Dyes&resourceVersion=1"),
    );
    server.post(CM, &configmap("x", json!({})));
    server.patch(
        &format!("{CM}/x"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"track":"yes"}}}"#,
    );
    server.patch(
        &format!("{CM}/x"),
        "application/merge-patch+json",
        r#"{"data":{"a":"1"}}"#,
    );
    server.patch(
        &format!("{CM}/x"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"track":"no"}}}"#,
    );
    assert_eq!(summary(&watch), pair("ADDED", "x"));
    assert_eq!(summary(&watch), pair("MODIFIED", "x"));
    assert_eq!(summary(&watch), pair("DELETED", "x"));
    let named = crate::sim_support::Watch::open(
        &server,
        &format!("{CM}?watch=true&fieldSelector=metadata.name%3Dy&resourceVersion=1"),
    );
    server.post(CM, &configmap("z", json!({})));
    server.post(CM, &configmap("y", json!({})));
    assert_eq!(summary(&named), pair("ADDED", "y"));
}

#[test]
fn watches_send_bookmarks_initial_event_markers_and_time_out() {
    let server = TestServer::start_with(|c| meshshift::sim::ApiServerConfig {
        bookmark_interval: Duration::from_millis(200),
        ..c
    });
    let now = server.get(CM).1["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let watch = crate::sim_support::Watch::open(
        &server,
        &format!(
            "{CM}?watch=true&allowWatchBookmarks=true&resourceVersion={now}&timeoutSeconds=30"
        ),
    );
    let bookmark = watch.expect();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    assert!(bookmark["object"]["metadata"]["resourceVersion"].is_string());

    let streaming = crate::sim_support::Watch::open(
        &server,
        &format!(
            "{CM}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
        ),
    );
    assert_eq!(summary(&streaming), pair("ADDED", "kube-root-ca.crt"));
    let end = streaming.expect();
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    let short = crate::sim_support::Watch::open(
        &server,
        &format!("{CM}?watch=true&resourceVersion={now}&timeoutSeconds=1"),
    );
    let started = std::time::Instant::now();
    assert!(
        short.next(Duration::from_secs(10)).is_none(),
        "no events, then the stream ends"
    );
    assert!(started.elapsed() < Duration::from_secs(9));
}

#[test]
fn watches_from_versions_outside_the_window_get_410_expired() {
    let server = TestServer::start_with(|c| meshshift::sim::ApiServerConfig {
        watch_window: 3,
        ..c
    });
    for i in 0..6 {
        server.post(CM, &configmap(&format!("c{i}"), json!({})));
    }
    let watch =
        crate::sim_support::Watch::open(&server, &format!("{CM}?watch=true&resourceVersion=2"));
    let error = watch.expect();
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["kind"], "Status");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert!(
        error["object"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("too old resource version: 2 ("))
    );
    assert!(
        watch.next(Duration::from_secs(5)).is_none(),
        "the stream ends after the error"
    );
}

/// Established TCP connections whose local port is `port`: the server side of this test
/// server's connections (other tests in the process use other ports).
fn established_connections(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && fields.get(3) == Some(&"01")
        })
        .count()
}

#[test]
fn disconnected_watch_clients_do_not_leak_or_wedge_the_server() {
    let server = TestServer::start();
    let port = server.handle().address().port();
    for round in 0..3 {
        let watches: Vec<_> = (0..20)
            .map(|_| {
                let client = https_client(server.handle().ca_pem(), round % 2 == 0);
                let request = client
                    .get(format!("{}{CM}?watch=true", server.url))
                    .bearer_auth(server.token());
                server.runtime.spawn(async move {
                    if let Ok(mut response) = request.send().await {
                        let _ = response.chunk().await;
                    }
                    // Dropping the response here hangs up mid-stream.
                })
            })
            .collect();
        for watch in watches {
            let _ = server.runtime.block_on(watch);
        }
    }
    for i in 0..5 {
        assert_eq!(
            server
                .post(CM, &configmap(&format!("after-{i}"), json!({})))
                .0,
            201
        );
    }
    let (code, list) = server.get(CM);
    assert_eq!(code, 200);
    assert_eq!(item_names(&list).len(), 6);
    // The measurement sees connections while watches are held open...
    let held: Vec<_> = (0..5)
        .map(|_| {
            let client = https_client(server.handle().ca_pem(), false);
            let request = client
                .get(format!("{}{CM}?watch=true", server.url))
                .bearer_auth(server.token());
            server
                .runtime
                .block_on(request.send())
                .expect("watch opened")
        })
        .collect();
    eventually(
        Duration::from_secs(10),
        "held watches to be counted",
        || (established_connections(port) >= 5).then_some(()),
    );
    drop(held);
    // ...and only the test's own pooled client connection remains once they are gone.
    eventually(
        Duration::from_secs(10),
        "connections of abandoned watches to close",
        || (established_connections(port) <= 1).then_some(()),
    );
}
