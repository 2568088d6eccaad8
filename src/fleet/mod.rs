//! Fleets: many source/target pairs moved in waves by Kubernetes Jobs in a management cluster.
//!
//! - [`file`]: the fleet file, read strictly and validated as a whole;
//! - [`render`]: the objects that run it (pure);
//! - [`management`]: the management cluster's client (in-cluster or kubeconfig);
//! - [`pod`]: what one Job index runs: its pair, with state kept in the management cluster;
//! - [`status`]: one row per pair, from the journals kept there.
//!
//! The commands here (`fleet render | apply | approve | status | pod`) are the I/O around them.

pub mod argo;
pub mod file;
pub mod management;
pub mod pod;
pub mod render;
pub mod status;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use file::{Fleet, Pause};
use management::Access;
use render::ServerVersion;

/// The field manager of everything `fleet apply` writes.
pub const FIELD_MANAGER: &str = "meshshift-fleet";
/// The annotation `fleet approve` sets on a wave's Job: the next wave may start.
pub const APPROVED_ANNOTATION: &str = "meshshift.io/approved";
const POLL: Duration = Duration::from_secs(2);

fn other(message: String) -> Error {
    Error::Other { message }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| other(format!("cannot start the async runtime: {e}")))
}

/// The rendered objects as YAML documents.
pub fn to_yaml(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_yaml::to_string(o).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// What `fleet render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One Indexed Job per wave, created by `fleet apply` and the conductor.
    Jobs,
    /// One Argo Workflow running the waves.
    ArgoWorkflow,
}

/// `fleet render`: prints the objects for a server of `version` (default the newest).
pub fn render_command(path: &Path, version: Option<&str>, format: Format) -> Result<()> {
    let fleet = file::load(path)?;
    if format == Format::ArgoWorkflow {
        print!("{}", to_yaml(&argo::objects(&fleet)));
        return Ok(());
    }
    let version = match version {
        Some(text) => ServerVersion::parse(text).ok_or_else(|| {
            other(format!(
                "--kubernetes-version `{text}`: expected e.g. `1.37` or `v1.29.4`"
            ))
        })?,
        None => ServerVersion::NEWEST,
    };
    let objects = render::objects(&fleet, version).map_err(other)?;
    print!("{}", to_yaml(&objects));
    Ok(())
}

async fn server_version(client: &kube::Client) -> Result<ServerVersion> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|e| other(format!("management cluster: cannot read its version: {e}")))?;
    ServerVersion::parse(&format!("{}.{}", info.major, info.minor)).ok_or_else(|| {
        other(format!(
            "management cluster: unreadable version {}.{}",
            info.major, info.minor
        ))
    })
}

async fn apply_object(client: &kube::Client, object: &Value) -> Result<()> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "Namespace" => "namespaces",
        "ServiceAccount" => "serviceaccounts",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ConfigMap" => "configmaps",
        "Job" => "jobs",
        other_kind => return Err(other(format!("cannot apply a {other_kind}"))),
    };
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|e| other(format!("cannot apply {kind} {name}: {e}")))?;
    Ok(())
}

/// Where a wave's Job stands.
#[derive(Debug, PartialEq)]
enum JobState {
    Missing,
    Running,
    Complete {
        finished: Option<jiff::Timestamp>,
        approved: bool,
    },
    Failed(String),
}

async fn job_state(jobs: &Api<Job>, name: &str) -> Result<JobState> {
    let Some(job) = jobs
        .get_opt(name)
        .await
        .map_err(|e| other(format!("cannot read Job {name}: {e}")))?
    else {
        return Ok(JobState::Missing);
    };
    let status = job.status.unwrap_or_default();
    let condition = |kind: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind && c.status == "True")
            .cloned()
    };
    if let Some(failed) = condition("Failed") {
        let indexes = status.failed_indexes.clone().unwrap_or_default();
        return Ok(JobState::Failed(format!(
            "{}{}",
            failed.message.unwrap_or_default(),
            if indexes.is_empty() {
                String::new()
            } else {
                format!(" (failed indexes: {indexes})")
            }
        )));
    }
    if condition("Complete").is_some() {
        let approved = job
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(APPROVED_ANNOTATION);
        let finished = status
            .completion_time
            .and_then(|t| t.0.to_string().parse::<jiff::Timestamp>().ok());
        return Ok(JobState::Complete { finished, approved });
    }
    Ok(JobState::Running)
}

/// `fleet apply`: creates the fleet's objects, then each wave's Job once the previous wave
/// finished and its pause is over (approved, or its soak time passed). It can be stopped and
/// run again: Jobs that exist are left as they are.
pub fn apply_command(path: &Path, access: &Access, wait: bool) -> Result<()> {
    let fleet = file::load(path)?;
    runtime()?.block_on(apply(&fleet, access, wait))
}

async fn apply(fleet: &Fleet, access: &Access, wait: bool) -> Result<()> {
    let client = management::client(access).await?;
    let version = server_version(&client).await?;
    let objects = render::objects(fleet, version).map_err(other)?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &fleet.namespace);
    for object in objects.iter().filter(|o| !render::is_wave_job(o)) {
        if object["kind"] == "Job" {
            // A Job's pod template cannot change: the conductor's is created once.
            create_job(&jobs, object).await?;
        } else {
            apply_object(&client, object).await?;
        }
    }
    println!(
        "applied the fleet `{}` in namespace {} (Kubernetes {}.{})",
        fleet.name, fleet.namespace, version.major, version.minor
    );
    advance(&client, &render::schedule(fleet, version), wait).await
}

/// Creates `object` (a Job) unless one of its name exists; true when this call created it.
async fn create_job(jobs: &Api<Job>, object: &Value) -> Result<bool> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let job: Job =
        serde_json::from_value(object.clone()).map_err(|e| other(format!("Job {name}: {e}")))?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match jobs.create(&params, &job).await {
        Ok(_) => Ok(true),
        // `fleet apply` and the conductor may both get there.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(other(format!("cannot create Job {name}: {e}"))),
    }
}

/// Creates each wave's Job once the previous wave finished and its pause is over (approved,
/// or its soak time passed). With `wait`, stays until every Job is created; without, says
/// what the next wave waits for and returns. Jobs that exist are left as they are, so it can
/// be stopped and run again. `fleet apply` and the conductor both advance the waves here.
async fn advance(client: &kube::Client, schedule: &render::Schedule, wait: bool) -> Result<()> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), &schedule.namespace);
    let mut previous: Option<(&render::ScheduledWave, Pause, String)> = None;
    for wave in &schedule.waves {
        let name = wave.job["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some((before, pause, before_job)) = &previous {
            let mut told = false;
            // The previous wave must have finished, and its pause be over.
            loop {
                match job_state(&jobs, before_job).await? {
                    JobState::Failed(reason) => {
                        return Err(other(format!(
                            "wave `{}` failed: {reason}; wave `{}` is not started",
                            before.name, wave.name
                        )));
                    }
                    JobState::Complete { finished, approved } => {
                        let waited = match pause {
                            Pause::None => true,
                            Pause::Approval => approved,
                            Pause::For(soak) => finished.is_some_and(|t| {
                                jiff::Timestamp::now().duration_since(t).unsigned_abs() >= *soak
                            }),
                        };
                        if waited {
                            break;
                        }
                    }
                    JobState::Running | JobState::Missing => {}
                }
                if !told {
                    let what = match pause {
                        Pause::Approval => format!(
                            "to finish and be approved: `meshshift fleet approve {}`",
                            before.name
                        ),
                        _ => "to finish and its pause to pass".into(),
                    };
                    let then = if wait {
                        String::new()
                    } else {
                        format!(
                            "; the conductor (Job {}) creates it then, or run `meshshift fleet apply` again",
                            render::conductor_name(&schedule.fleet)
                        )
                    };
                    println!(
                        "wave `{}` waits for wave `{}` ({what}){then}",
                        wave.name, before.name
                    );
                    told = true;
                }
                if !wait {
                    return Ok(());
                }
                tokio::time::sleep(POLL).await;
            }
        }
        if create_job(&jobs, &wave.job).await? {
            println!(
                "wave `{}`: created Job {name} ({} pairs, {} at a time)",
                wave.name, wave.job["spec"]["completions"], wave.job["spec"]["parallelism"]
            );
        } else {
            println!("wave `{}`: Job {name} exists", wave.name);
        }
        previous = Some((wave, wave.pause().map_err(other)?, name));
    }
    Ok(())
}

/// `fleet conduct`: the conductor, in the management cluster with its service account.
/// Advances the waves of the schedule at `path` as `fleet apply --wait` does, and ends when
/// the last wave's Job is created.
pub fn conduct_command(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::ReadFile {
        path: crate::files::display_path(path),
        reason: e.to_string(),
    })?;
    let schedule: render::Schedule = serde_json::from_str(&text).map_err(|e| {
        other(format!(
            "{}: not a fleet schedule: {e}",
            crate::files::display_path(path)
        ))
    })?;
    runtime()?.block_on(async {
        let client = management::client(&Access::InCluster).await?;
        println!(
            "conducting the fleet `{}` in namespace {}: {} waves",
            schedule.fleet,
            schedule.namespace,
            schedule.waves.len()
        );
        advance(&client, &schedule, true).await?;
        println!("every wave's Job is created; the conductor is done");
        Ok(())
    })
}

/// `fleet approve WAVE`: marks the wave's Job approved, so the next wave may start.
pub fn approve_command(path: &Path, wave: &str, access: &Access) -> Result<()> {
    let fleet = file::load(path)?;
    let Some(found) = fleet.waves.iter().find(|w| w.name == wave) else {
        let known: Vec<&str> = fleet.waves.iter().map(|w| w.name.as_str()).collect();
        return Err(other(format!(
            "no wave `{wave}` in the fleet (waves: {})",
            known.join(", ")
        )));
    };
    let name = render::job_name(&fleet, found);
    runtime()?.block_on(async {
        let client = management::client(access).await?;
        let jobs: Api<Job> = Api::namespaced(client, &fleet.namespace);
        let patch = json!({"metadata": {"annotations": {
            APPROVED_ANNOTATION: jiff::Timestamp::now().to_string()}}});
        jobs.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| other(format!("cannot approve wave `{wave}` (Job {name}): {e}")))?;
        println!("approved wave `{wave}`: the next wave starts once it finished");
        Ok(())
    })
}
