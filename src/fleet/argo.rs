//! The same plan as an Argo Workflow, for teams that run Argo: pure, like [`super::render`].
//!
//! Checked against Argo Workflows' published CRD (v4.0.5, `manifests/base/crds/full`) on a
//! real kube-apiserver by `tests/fleet.rs`. The shape:
//!
//! - the entrypoint `fleet` is a DAG with a task per wave, each depending on the one before
//!   (through its pause, when there is one);
//! - a wave is a template of its own with `parallelism` = the wave's concurrency, running the
//!   pair template over the wave's indexes (`withItems`);
//! - the pair template is the Job's pod: the same container and volumes, with the index in
//!   `JOB_COMPLETION_INDEX` (so `fleet pod` runs unchanged) and `retryStrategy.limit` = the
//!   Job's `backoffLimitPerIndex`;
//! - a pause is a `suspend` template: `suspend: {}` waits for `argo resume`, a duration
//!   resumes by itself.

use serde_json::{Value, json};

use super::file::{Fleet, Pause, Wave};
use super::render;

/// The Argo API version the Workflow is written for.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";
/// Retries of a pair's pod, as the Job's `backoffLimitPerIndex`.
const RETRIES: u32 = 2;

/// The Namespace, ServiceAccount, Role, RoleBinding and runbooks' ConfigMap that the Job
/// format renders, and a Workflow in place of the Jobs.
pub fn objects(fleet: &Fleet) -> Vec<Value> {
    let mut role = render::role(fleet);
    // Argo's executor (v3.4 and later) records each pod's outputs in WorkflowTaskResults
    // with the workflow's service account (Argo's docs, "Workflow RBAC").
    if let Some(rules) = role["rules"].as_array_mut() {
        rules.push(
            json!({"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"],
                          "verbs": ["create", "patch"]}),
        );
    }
    let mut objects = render::runner_objects(fleet, role);
    objects.push(workflow(fleet));
    objects
}

/// The Workflow's name: the fleet's (one Workflow per fleet, like one Job per wave).
pub fn workflow_name(fleet: &Fleet) -> String {
    fleet.name.clone()
}

fn wave_task(wave: &Wave) -> String {
    format!("wave-{}", wave.name)
}

/// The task and template of the pause after `wave`, if it has one.
fn pause_task(wave: &Wave) -> Option<String> {
    match wave.pause {
        Pause::None => None,
        Pause::Approval => Some(format!("approve-{}", wave.name)),
        Pause::For(_) => Some(format!("soak-{}", wave.name)),
    }
}

fn workflow(fleet: &Fleet) -> Value {
    let mut tasks = Vec::new();
    let mut templates = Vec::new();
    let mut before: Option<String> = None;
    let last = fleet.waves.len().saturating_sub(1);
    for (position, wave) in fleet.waves.iter().enumerate() {
        let mut task = json!({"name": wave_task(wave), "template": wave_task(wave)});
        if let Some(before) = &before {
            task["dependencies"] = json!([before]);
        }
        tasks.push(task);
        templates.push(wave_template(wave));
        templates.push(pair_template(fleet, wave));
        before = Some(wave_task(wave));
        // A pause after the last wave holds nothing back.
        if position == last {
            continue;
        }
        if let Some(name) = pause_task(wave) {
            tasks.push(json!({"name": name, "template": name,
                              "dependencies": [wave_task(wave)]}));
            let suspend = match wave.pause {
                // Argo reads a bare number as seconds.
                Pause::For(duration) => json!({"duration": duration.as_secs().to_string()}),
                _ => json!({}),
            };
            templates.push(json!({"name": name, "suspend": suspend}));
            before = Some(name);
        }
    }
    templates.insert(0, json!({"name": "fleet", "dag": {"tasks": tasks}}));
    json!({
        "apiVersion": API_VERSION, "kind": "Workflow",
        "metadata": render::metadata(fleet, &workflow_name(fleet)),
        "spec": {
            "entrypoint": "fleet",
            "serviceAccountName": render::service_account(fleet),
            "templates": templates,
        },
    })
}

/// A wave: the pair template over the wave's indexes, `concurrency` at a time.
fn wave_template(wave: &Wave) -> Value {
    let indexes: Vec<usize> = (0..wave.pairs.len()).collect();
    json!({
        "name": wave_task(wave),
        "parallelism": wave.concurrency,
        "dag": {"tasks": [{
            "name": "pair",
            "template": format!("pair-{}", wave.name),
            "withItems": indexes,
            "arguments": {"parameters": [{"name": "index", "value": "{{item}}"}]},
        }]},
    })
}

/// One pair of `wave`: the Job's pod, given its index as the Job controller would.
fn pair_template(fleet: &Fleet, wave: &Wave) -> Value {
    let (mut container, volumes) = render::pair_pod(fleet, wave);
    // Argo names the container of a container template `main` itself.
    if let Some(fields) = container.as_object_mut() {
        fields.remove("name");
    }
    if let Some(env) = container["env"].as_array_mut() {
        env.push(json!({"name": "JOB_COMPLETION_INDEX", "value": "{{inputs.parameters.index}}"}));
    }
    let mut labels = render::labels(fleet);
    labels[render::WAVE_LABEL] = json!(wave.name);
    json!({
        "name": format!("pair-{}", wave.name),
        "inputs": {"parameters": [{"name": "index"}]},
        "metadata": {"labels": labels},
        "retryStrategy": {"limit": RETRIES},
        "volumes": volumes,
        "container": container,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fleet() -> Fleet {
        let pair = crate::fleet::file::pair_for_tests;
        let wave = |name: &str, concurrency, pause, pairs: &[&str]| Wave {
            name: name.into(),
            concurrency,
            pause,
            pairs: pairs.iter().map(|p| pair(p)).collect(),
        };
        Fleet {
            name: "shop".into(),
            namespace: "fleet".into(),
            image: "img".into(),
            runbook: "m.rhai".into(),
            files: vec![("m.rhai".into(), "//! m".into())],
            waves: vec![
                wave("canary", 1, Pause::Approval, &["a"]),
                wave(
                    "eu",
                    2,
                    Pause::For(Duration::from_secs(600)),
                    &["b", "c", "d"],
                ),
                wave("rest", 3, Pause::Approval, &["e"]),
            ],
        }
    }

    fn template<'a>(workflow: &'a Value, name: &str) -> &'a Value {
        workflow["spec"]["templates"]
            .as_array()
            .expect("templates")
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no template {name}"))
    }

    #[test]
    fn waves_run_in_order_through_their_pauses_each_at_its_concurrency() {
        let objects = objects(&fleet());
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ConfigMap",
                "Workflow"
            ]
        );
        let workflow = &objects[5];
        assert_eq!(workflow["apiVersion"], "argoproj.io/v1alpha1");
        assert_eq!(workflow["spec"]["serviceAccountName"], "shop-runner");
        let tasks = &template(workflow, "fleet")["dag"]["tasks"];
        let order: Vec<(String, Value)> = tasks
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_string(),
                    t["dependencies"].clone(),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("wave-canary".to_string(), Value::Null),
                ("approve-canary".to_string(), json!(["wave-canary"])),
                ("wave-eu".to_string(), json!(["approve-canary"])),
                ("soak-eu".to_string(), json!(["wave-eu"])),
                ("wave-rest".to_string(), json!(["soak-eu"])),
            ],
            "the last wave's approval holds nothing back"
        );
        assert_eq!(template(workflow, "approve-canary")["suspend"], json!({}));
        assert_eq!(template(workflow, "soak-eu")["suspend"]["duration"], "600");
        let eu = template(workflow, "wave-eu");
        assert_eq!(eu["parallelism"], 2);
        assert_eq!(eu["dag"]["tasks"][0]["withItems"], json!([0, 1, 2]));
        // The pair's pod is the Job's, with the index given as the Job controller gives it.
        let jobs = render::objects(&fleet(), render::ServerVersion::NEWEST).unwrap();
        let eu_job = jobs
            .iter()
            .find(|o| render::is_wave_job(o) && o["metadata"]["name"] == "shop-eu")
            .expect("the eu Job");
        let job_pod = &eu_job["spec"]["template"]["spec"];
        let pair = template(workflow, "pair-eu");
        assert_eq!(pair["container"]["args"], job_pod["containers"][0]["args"]);
        assert_eq!(pair["volumes"], job_pod["volumes"]);
        assert_eq!(
            pair["container"]["env"][1],
            json!({"name": "JOB_COMPLETION_INDEX", "value": "{{inputs.parameters.index}}"})
        );
        assert_eq!(pair["retryStrategy"]["limit"], 2);
        // The executor may record results; the runner still may not create Jobs.
        let rules = objects[2]["rules"].as_array().unwrap();
        let verbs = |resource: &str| {
            rules
                .iter()
                .find(|r| r["resources"][0] == resource)
                .map(|r| r["verbs"].clone())
        };
        assert_eq!(
            verbs("workflowtaskresults"),
            Some(json!(["create", "patch"]))
        );
        assert_eq!(verbs("jobs"), Some(json!(["get", "list"])));
    }
}
