//! The simulator's API faults as a client meets them, through real HTTP and kubectl: stale
//! updates answered 409, watches cut, the control endpoint, and the simulator's own
//! requests exempt.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::sim_support::{TestServer, ok};
use meshshift::sim::fault::{CONTROL_PATH, FaultConfig};

fn configmap(version: Option<&str>) -> Vec<u8> {
    let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}});
    if let Some(version) = version {
        object["metadata"]["resourceVersion"] = json!(version);
    }
    serde_json::to_vec(&object).expect("JSON")
}

#[test]
fn updates_with_a_resource_version_meet_conflicts_and_the_control_endpoint_counts_them() {
    let server = TestServer::start_with(|config| meshshift::sim::server::ApiServerConfig {
        fault: FaultConfig {
            conflict_rate: 1.0,
            ..FaultConfig::default()
        },
        ..config
    });
    let path = "/api/v1/namespaces/default/configmaps";
    let (code, created) = server.request(
        "POST",
        path,
        Some("application/json"),
        Some(configmap(None)),
    );
    assert_eq!(code, 201, "{created}");
    let version = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("version");
    let (code, answer) = server.request(
        "PUT",
        &format!("{path}/c"),
        Some("application/json"),
        Some(configmap(Some(version))),
    );
    assert_eq!(code, 409, "{answer}");
    assert_eq!(answer["reason"], "Conflict");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("the object has been modified; please apply your changes to the latest version and try again")),
        "{answer}"
    );
    // An unconditional update is not a stale one.
    let (code, answer) = server.request(
        "PUT",
        &format!("{path}/c"),
        Some("application/json"),
        Some(configmap(None)),
    );
    assert_eq!(code, 200, "{answer}");
    let (code, faults) = server.request("GET", CONTROL_PATH, None, None);
    assert_eq!(code, 200, "{faults}");
    assert_eq!(faults["conflictRate"], 1.0);
    assert_eq!(faults["injected"]["conflicts"], 1);
    // Without the token the control endpoint says nothing.
    let (code, _) = server.request_with("GET", CONTROL_PATH, None, None, Some("wrong"), None);
    assert_eq!(code, 401);
    // A change through it takes effect at once; an unknown setting is refused by name.
    let change = json!({"clear": true, "settings": ["api-error-rate=1"]});
    let (code, faults) = server.request(
        "PUT",
        CONTROL_PATH,
        Some("application/json"),
        Some(change.to_string().into_bytes()),
    );
    assert_eq!(
        (
            code,
            faults["conflictRate"].clone(),
            faults["apiErrorRate"].clone()
        ),
        (200, json!(0.0), json!(1.0))
    );
    let (code, _) = server.request("GET", "/api/v1/namespaces", None, None);
    assert!(matches!(code, 500 | 503 | 429), "{code}");
    let bad = json!({"settings": ["api-errors=1"]});
    let (code, answer) = server.request(
        "PUT",
        CONTROL_PATH,
        Some("application/json"),
        Some(bad.to_string().into_bytes()),
    );
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("unknown fault \"api-errors\"")),
        "{answer}"
    );
}

#[test]
fn watches_end_at_the_cut_and_kubectl_sees_the_stream_close() {
    let server = TestServer::start_with(|config| meshshift::sim::server::ApiServerConfig {
        fault: FaultConfig {
            watch_cut: Some(Duration::from_secs(1)),
            ..FaultConfig::default()
        },
        ..config
    });
    let started = Instant::now();
    let output = server.kubectl(&["get", "namespaces", "--watch", "--request-timeout=20s"]);
    let elapsed = started.elapsed();
    let listed = ok(&output);
    assert!(listed.contains("kube-system"), "{listed}");
    assert!(
        elapsed < Duration::from_secs(10),
        "the watch ran {elapsed:?}"
    );
    let (_, faults) = server.request("GET", CONTROL_PATH, None, None);
    assert!(
        faults["injected"]["watchCuts"].as_u64() >= Some(1),
        "{faults}"
    );
}

#[test]
fn the_simulators_own_requests_are_exempt() {
    let server = TestServer::start_with(|config| meshshift::sim::server::ApiServerConfig {
        fault: FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        },
        ..config
    });
    let client = server.handle();
    let runtime = crate::sim_support::runtime();
    let entry = client.kubeconfig_entry();
    let listed: Value = runtime.block_on(async {
        let agent = meshshift::sim::agents::client(&entry)
            .await
            .expect("client");
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(agent);
        serde_json::to_value(
            namespaces
                .list(&Default::default())
                .await
                .expect("served")
                .items,
        )
        .expect("JSON")
    });
    assert!(
        listed.as_array().is_some_and(|items| !items.is_empty()),
        "{listed}"
    );
    let (code, _) = server.request("GET", "/api/v1/namespaces", None, None);
    assert!(
        matches!(code, 500 | 503 | 429),
        "a client is faulted: {code}"
    );
}
