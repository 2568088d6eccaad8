//! A validated fleet as the Kubernetes objects that run it in a management cluster: pure, so
//! `fleet render` prints exactly what `fleet apply` creates.

use serde_json::{Value, json};

use super::file::{Fleet, Pause, Wave};

/// Where the pod finds its files: its working directory holds `fleet/` (the ConfigMap) and
/// `kubeconfigs/<index>/{source,target}` (the Secrets), so its arguments are relative paths
/// and the same command runs unchanged from a copy of that layout.
pub const WORKING_DIR: &str = "/etc/meshshift";
/// The plan the pods read: each wave's pairs in index order, with their parameters.
pub const PLAN_KEY: &str = "plan.json";
/// The label every object of a fleet carries.
pub const FLEET_LABEL: &str = "meshshift.io/fleet";
/// The label of a wave's Job (and its pods).
pub const WAVE_LABEL: &str = "meshshift.io/wave";
/// The annotation holding a wave's pause (`none`, `approval`, seconds as `600s`).
pub const PAUSE_ANNOTATION: &str = "meshshift.io/pause";
/// The conductor's ConfigMap key holding the [`Schedule`].
pub const SCHEDULE_KEY: &str = "schedule.json";

/// The management cluster's Kubernetes version, as far as rendering depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    /// The version `fleet render` assumes unless told: the newest this was checked against.
    pub const NEWEST: ServerVersion = ServerVersion {
        major: 1,
        minor: 37,
    };

    /// Parses `1.37`, `v1.37.0` or a server's `minor` of `37+`.
    pub fn parse(text: &str) -> Option<ServerVersion> {
        let mut parts = text.trim().trim_start_matches('v').split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.trim_end_matches('+').parse().ok()?;
        Some(ServerVersion { major, minor })
    }

    fn at_least(self, minor: u32) -> bool {
        self.major > 1 || (self.major == 1 && self.minor >= minor)
    }
}

/// Names derived from the fleet's.
pub fn service_account(fleet: &Fleet) -> String {
    format!("{}-runner", fleet.name)
}

/// The ConfigMap holding the runbook and the plan.
pub fn runbooks_config_map(fleet: &Fleet) -> String {
    format!("{}-runbooks", fleet.name)
}

/// The conductor's ServiceAccount, Role, RoleBinding, ConfigMap and Job (a wave may not be
/// called `conductor`).
pub fn conductor(fleet: &Fleet) -> String {
    conductor_name(&fleet.name)
}

/// [`conductor`] from the fleet's name.
pub fn conductor_name(fleet: &str) -> String {
    format!("{fleet}-conductor")
}

/// What advancing the waves needs: each wave's pause and Job, in order. `fleet apply` builds it
/// from the fleet file; the conductor reads it from its ConfigMap.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    pub fleet: String,
    pub namespace: String,
    pub waves: Vec<ScheduledWave>,
}

/// One wave of a [`Schedule`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduledWave {
    pub name: String,
    /// As in the fleet file: `none`, `approval`, or seconds as `600s`.
    pub pause: String,
    pub job: Value,
}

impl ScheduledWave {
    /// The pause after this wave; an unreadable one is an error naming it.
    pub fn pause(&self) -> Result<Pause, String> {
        match self.pause.as_str() {
            "none" => Ok(Pause::None),
            "approval" => Ok(Pause::Approval),
            text => crate::duration::parse_duration(text)
                .map(Pause::For)
                .map_err(|reason| format!("wave `{}`: pause `{text}`: {reason}", self.name)),
        }
    }
}

/// The waves' Jobs for a server of `version`, with their pauses.
pub fn schedule(fleet: &Fleet, version: ServerVersion) -> Schedule {
    Schedule {
        fleet: fleet.name.clone(),
        namespace: fleet.namespace.clone(),
        waves: fleet
            .waves
            .iter()
            .map(|wave| ScheduledWave {
                name: wave.name.clone(),
                pause: pause_text(&wave.pause),
                job: job(fleet, wave, version),
            })
            .collect(),
    }
}

/// True for the Job of a wave (not the conductor's).
pub fn is_wave_job(object: &Value) -> bool {
    object["kind"] == "Job" && object["metadata"]["labels"][WAVE_LABEL].is_string()
}

/// The Job of `wave`.
pub fn job_name(fleet: &Fleet, wave: &Wave) -> String {
    format!("{}-{}", fleet.name, wave.name)
}

/// Every object of the fleet, in the order they are applied (the Jobs last, wave by wave).
/// Fails when the server cannot run Indexed Jobs.
pub fn objects(fleet: &Fleet, version: ServerVersion) -> Result<Vec<Value>, String> {
    // completionMode: Indexed is beta (on by default) from 1.22; 1.21 had it behind a gate.
    if !version.at_least(22) {
        return Err(format!(
            "Kubernetes {}.{} has no Indexed Jobs (completionMode: Indexed is on by default from 1.22); the management cluster needs 1.22 or later",
            version.major, version.minor
        ));
    }
    let mut objects = runner_objects(fleet, role(fleet));
    let schedule = schedule(fleet, version);
    objects.extend(conductor_objects(fleet, &schedule));
    objects.extend(schedule.waves.into_iter().map(|w| w.job));
    Ok(objects)
}

/// The conductor: a Job in the management cluster that creates each wave's Job when
/// `fleet apply` would, so that waves advance without anyone's workstation. It alone may
/// create Jobs; the pairs' pods may not.
fn conductor_objects(fleet: &Fleet, schedule: &Schedule) -> Vec<Value> {
    let name = conductor(fleet);
    let schedule = serde_json::to_string_pretty(schedule).unwrap_or_default();
    let mut conductor_labels = labels(fleet);
    conductor_labels["app.kubernetes.io/component"] = json!("conductor");
    let container = json!({
        "name": "conductor",
        "image": fleet.image,
        "workingDir": WORKING_DIR,
        "args": ["fleet", "conduct", "--schedule", format!("conductor/{SCHEDULE_KEY}")],
        "volumeMounts": [{"name": "schedule", "mountPath": format!("{WORKING_DIR}/conductor"),
                          "readOnly": true}],
        "securityContext": security_context(),
    });
    let mut job_metadata = metadata(fleet, &name);
    job_metadata["labels"] = conductor_labels.clone();
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(fleet, &name)}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": metadata(fleet, &name),
            // Reading a wave's Job to see whether it finished and was approved; creating the
            // next. No patch: approving stays with `fleet approve`.
            "rules": [{"apiGroups": ["batch"], "resources": ["jobs"],
                       "verbs": ["get", "list", "watch", "create"]}],
        }),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": metadata(fleet, &name),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
               "subjects": [{"kind": "ServiceAccount", "name": name,
                             "namespace": fleet.namespace}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(fleet, &name),
               "data": {SCHEDULE_KEY: schedule}}),
        json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": job_metadata,
            "spec": {
                // Retries an API error or a restarted node; a failed wave fails it for good
                // after these.
                "backoffLimit": 6,
                "template": {
                    "metadata": {"labels": conductor_labels},
                    "spec": {
                        "serviceAccountName": name,
                        "restartPolicy": "OnFailure",
                        "containers": [container],
                        "volumes": [{"name": "schedule", "configMap": {"name": name}}],
                    },
                },
            },
        }),
    ]
}

/// The Namespace, the pods' ServiceAccount with `role` bound to it, and the runbooks'
/// ConfigMap: what every format renders before the objects that run the waves.
pub(crate) fn runner_objects(fleet: &Fleet, role: Value) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": fleet.namespace, "labels": labels(fleet)}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": metadata(fleet, &service_account(fleet))}),
        role,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": metadata(fleet, &service_account(fleet)),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": service_account(fleet)},
               "subjects": [{"kind": "ServiceAccount", "name": service_account(fleet),
                             "namespace": fleet.namespace}]}),
        config_map(fleet),
    ]
}

pub(crate) fn labels(fleet: &Fleet) -> Value {
    json!({"app.kubernetes.io/name": "meshshift", FLEET_LABEL: fleet.name})
}

pub(crate) fn metadata(fleet: &Fleet, name: &str) -> Value {
    json!({"name": name, "namespace": fleet.namespace, "labels": labels(fleet)})
}

/// Only what a pod does in the management cluster: its journal and report ConfigMaps, the
/// Lease that keeps two pods off one pair, and reading its Job.
pub(crate) fn role(fleet: &Fleet) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": metadata(fleet, &service_account(fleet)),
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"],
             "verbs": ["get", "list", "watch", "create", "update", "patch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["get", "create", "update", "patch", "delete"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]},
        ],
    })
}

/// The plan the pods read: per wave, its pairs in index order.
pub fn plan(fleet: &Fleet) -> Value {
    json!({
        "fleet": fleet.name,
        "namespace": fleet.namespace,
        "runbook": fleet.runbook,
        "waves": fleet.waves.iter().map(|w| json!({
            "name": w.name,
            "pairs": w.pairs.iter().map(|p| json!({
                "name": p.name, "parameters": p.parameters,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn config_map(fleet: &Fleet) -> Value {
    let plan = serde_json::to_string_pretty(&plan(fleet)).unwrap_or_default();
    let mut data = serde_json::Map::new();
    for (path, text) in &fleet.files {
        data.insert(super::file::file_key(path), json!(text));
    }
    data.insert(PLAN_KEY.into(), json!(plan));
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": metadata(fleet, &runbooks_config_map(fleet)),
        "data": data,
    })
}

/// The ConfigMap's keys back at their paths (`demo__setup.rhai` at `demo/setup.rhai`).
fn config_map_items(fleet: &Fleet) -> Vec<Value> {
    let mut items: Vec<Value> = fleet
        .files
        .iter()
        .map(|(path, _)| json!({"key": super::file::file_key(path), "path": path}))
        .collect();
    items.push(json!({"key": PLAN_KEY, "path": PLAN_KEY}));
    items
}

pub(crate) fn pause_text(pause: &Pause) -> String {
    match pause {
        Pause::None => "none".into(),
        Pause::Approval => "approval".into(),
        Pause::For(duration) => format!("{}s", duration.as_secs()),
    }
}

/// The pod of a wave's pair: its container (running `fleet pod` for the index it is given)
/// and volumes. The Job and the Argo Workflow run the same pod.
pub(crate) fn pair_pod(fleet: &Fleet, wave: &Wave) -> (Value, Vec<Value>) {
    // Pair i's kubeconfigs at kubeconfigs/<i>/source and /target: the pod of index i reads
    // only its own, though the volume holds the wave's (a pod template is shared by indexes).
    let sources: Vec<Value> = wave
        .pairs
        .iter()
        .enumerate()
        .flat_map(|(index, pair)| {
            [("source", &pair.source), ("target", &pair.target)].map(|(side, cluster)| {
                json!({"secret": {"name": cluster.secret,
                                  "items": [{"key": cluster.key, "path": format!("{index}/{side}")}]}})
            })
        })
        .collect();
    let container = json!({
        "name": "meshshift",
        "image": fleet.image,
        "workingDir": WORKING_DIR,
        "args": ["fleet", "pod", "--plan", format!("fleet/{PLAN_KEY}"), "--wave", wave.name,
                 "--kubeconfigs", "kubeconfigs", "--state-in-cluster"],
        "env": [{"name": "MESHSHIFT_STATE_DIR", "value": "/var/lib/meshshift"}],
        "volumeMounts": [
            {"name": "fleet", "mountPath": format!("{WORKING_DIR}/fleet"), "readOnly": true},
            {"name": "kubeconfigs", "mountPath": format!("{WORKING_DIR}/kubeconfigs"), "readOnly": true},
            {"name": "state", "mountPath": "/var/lib/meshshift"},
        ],
        "securityContext": security_context(),
    });
    let volumes = vec![
        json!({"name": "fleet", "configMap": {"name": runbooks_config_map(fleet),
                                              "items": config_map_items(fleet)}}),
        json!({"name": "kubeconfigs", "projected": {"defaultMode": 0o400, "sources": sources}}),
        json!({"name": "state", "emptyDir": {}}),
    ];
    (container, volumes)
}

fn security_context() -> Value {
    json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
           "runAsNonRoot": true, "runAsUser": 65532, "capabilities": {"drop": ["ALL"]}})
}

fn job(fleet: &Fleet, wave: &Wave, version: ServerVersion) -> Value {
    let mut wave_labels = labels(fleet);
    wave_labels[WAVE_LABEL] = json!(wave.name);
    let (container, volumes) = pair_pod(fleet, wave);
    let mut spec = json!({
        "completionMode": "Indexed",
        "completions": wave.pairs.len(),
        "parallelism": wave.concurrency,
        "template": {
            "metadata": {"labels": wave_labels},
            "spec": {
                "serviceAccountName": service_account(fleet),
                "restartPolicy": "Never",
                "containers": [container],
                "volumes": volumes,
            },
        },
    });
    // A replaced pod resumes its pair; a pair that keeps failing must not hold up the others.
    // backoffLimitPerIndex is on by default from 1.29 (beta; GA in 1.33).
    if version.at_least(29) {
        spec["backoffLimitPerIndex"] = json!(2);
    } else {
        spec["backoffLimit"] = json!(2 * wave.pairs.len());
    }
    let mut metadata = metadata(fleet, &job_name(fleet, wave));
    metadata["labels"] = wave_labels;
    metadata["annotations"] = json!({PAUSE_ANNOTATION: pause_text(&wave.pause)});
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> Fleet {
        let pair = crate::fleet::file::pair_for_tests;
        Fleet {
            name: "shop".into(),
            namespace: "fleet".into(),
            image: "img".into(),
            runbook: "m.rhai".into(),
            files: vec![
                ("m.rhai".into(), "//! m".into()),
                ("demo/a.yaml".into(), "a: 1".into()),
            ],
            waves: vec![Wave {
                name: "w".into(),
                concurrency: 2,
                pause: Pause::Approval,
                pairs: vec![pair("a"), pair("b"), pair("c")],
            }],
        }
    }

    #[test]
    fn a_wave_is_one_indexed_job_whose_index_i_mounts_pair_i() {
        let objects = objects(&fleet(), ServerVersion::NEWEST).expect("renders");
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
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ConfigMap",
                "Job",
                "Job"
            ]
        );
        let job = &objects[10];
        assert!(is_wave_job(job) && !is_wave_job(&objects[9]));
        assert_eq!(job["spec"]["completionMode"], "Indexed");
        assert_eq!(job["spec"]["completions"], 3);
        assert_eq!(job["spec"]["parallelism"], 2);
        assert_eq!(job["spec"]["backoffLimitPerIndex"], 2);
        assert_eq!(job["metadata"]["annotations"][PAUSE_ANNOTATION], "approval");
        let sources = &job["spec"]["template"]["spec"]["volumes"][1]["projected"]["sources"];
        assert_eq!(sources[2]["secret"]["name"], "b-s");
        assert_eq!(sources[2]["secret"]["items"][0]["path"], "1/source");
        let items = &job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"];
        assert_eq!(
            items[1],
            json!({"key": "demo__a.yaml", "path": "demo/a.yaml"})
        );
        assert_eq!(objects[4]["data"]["demo__a.yaml"], "a: 1");
    }

    #[test]
    fn the_conductor_alone_may_create_jobs_and_reads_the_waves_jobs_from_its_schedule() {
        let objects = objects(&fleet(), ServerVersion::NEWEST).expect("renders");
        let verbs = |role: &Value| -> Vec<(String, Value)> {
            role["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["resources"][0].as_str().unwrap().to_string(),
                        r["verbs"].clone(),
                    )
                })
                .collect()
        };
        let runner_jobs = verbs(&objects[2])
            .into_iter()
            .find(|(resource, _)| resource == "jobs")
            .expect("a jobs rule");
        assert_eq!(runner_jobs.1, json!(["get", "list"]));
        assert_eq!(objects[6]["metadata"]["name"], "shop-conductor");
        assert_eq!(
            verbs(&objects[6]),
            [(
                "jobs".to_string(),
                json!(["get", "list", "watch", "create"])
            )]
        );
        let conductor = &objects[9];
        let pod = &conductor["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "shop-conductor");
        assert_eq!(
            pod["containers"][0]["args"],
            json!(["fleet", "conduct", "--schedule", "conductor/schedule.json"])
        );
        // The schedule holds each wave's Job exactly as rendered, and its pause.
        let schedule: Schedule =
            serde_json::from_str(objects[8]["data"][SCHEDULE_KEY].as_str().unwrap()).unwrap();
        assert_eq!(schedule.waves.len(), 1);
        assert_eq!(schedule.waves[0].job, objects[10]);
        assert_eq!(schedule.waves[0].pause(), Ok(Pause::Approval));
        let soak = ScheduledWave {
            pause: "600s".into(),
            ..schedule.waves[0].clone()
        };
        assert_eq!(
            soak.pause(),
            Ok(Pause::For(std::time::Duration::from_secs(600)))
        );
        let bad = ScheduledWave {
            pause: "soon".into(),
            ..schedule.waves[0].clone()
        };
        assert!(bad.pause().unwrap_err().contains("pause `soon`"));
    }

    #[test]
    fn older_servers_get_what_they_support() {
        let v128 = ServerVersion::parse("v1.28.3").expect("parses");
        let objects = objects(&fleet(), v128).expect("renders");
        assert!(objects[10]["spec"].get("backoffLimitPerIndex").is_none());
        assert_eq!(objects[10]["spec"]["backoffLimit"], 6);
        let v120 = ServerVersion::parse("1.20").expect("parses");
        let error = super::objects(&fleet(), v120).expect_err("no Indexed Jobs");
        assert!(error.contains("no Indexed Jobs"), "{error}");
    }
}
