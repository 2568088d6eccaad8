//! `meshshift sim az`: the Azure CLI commands a migration uses, answered for the simulated
//! clusters. Cluster names (`--name`) are the kubeconfig contexts (`sim-source`,
//! `sim-target`); any resource group is accepted. Everything goes through the clusters'
//! Kubernetes API, as the add-on's own controllers would.
//!
//! | command | what it does |
//! | --- | --- |
//! | `az version` | `{"azure-cli": "2.67.0", …}` |
//! | `az aks mesh get-revisions --location L` | revisions `asm-1-29` and `asm-1-30` |
//! | `az aks mesh enable-ingress-gateway -g RG -n C --ingress-gateway-type external\|internal` | creates the add-on's gateway Deployment and LoadBalancer Service in `aks-istio-ingress` |
//! | `az aks mesh disable-ingress-gateway …` | removes them |
//! | `az aks show -g RG -n C [--query serviceMeshProfile]` | the cluster, its mesh profile read from the cluster |
//! | `az aks get-credentials -g RG -n C` | succeeds: the kubeconfig already has the context |
//! | `az aks delete -g RG -n C --yes` | marks the cluster deleted: its gateways stop serving |
//! | `az aks create …` | fails: creating clusters is not simulated |
//!
//! Global options `-o json|tsv|table|none`, `--query <dotted.path>`, `--only-show-errors`,
//! `--verbose`, `--debug`, `--subscription`, `--no-wait` are understood. Other commands exit
//! with code 2 and say they are not simulated; unknown clusters exit with code 3
//! (`ResourceNotFound`), like the real CLI.

use std::collections::BTreeMap;
use std::path::Path;

use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::agents::informer::{DEPLOYMENTS, NAMESPACES, SERVICES};
use super::mesh::agent::DELETED_ANNOTATION;

/// The Azure CLI version the emulation reports.
pub const AZURE_CLI_VERSION: &str = "2.67.0";

/// Exit code, standard output and standard error of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzOutcome {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl AzOutcome {
    fn ok(stdout: String) -> AzOutcome {
        AzOutcome {
            code: 0,
            stdout,
            stderr: String::new(),
        }
    }

    fn error(code: i32, message: impl Into<String>) -> AzOutcome {
        AzOutcome {
            code,
            stdout: String::new(),
            stderr: format!("ERROR: {}\n", message.into()),
        }
    }
}

/// A parsed command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AzArguments {
    /// Command words (`aks`, `mesh`, `get-revisions`).
    pub words: Vec<String>,
    /// Options with values, by long name without dashes.
    pub options: BTreeMap<String, String>,
    /// Options without values.
    pub flags: Vec<String>,
}

const VALUE_OPTIONS: &[&str] = &[
    "name",
    "resource-group",
    "location",
    "output",
    "query",
    "subscription",
    "ingress-gateway-type",
    "revision",
    "kubernetes-version",
    "file",
    "context",
];

/// Parses `az` arguments (short options `-n -g -l -o -y` included).
pub fn parse(args: &[String]) -> Result<AzArguments, String> {
    let mut parsed = AzArguments::default();
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        let long = match arg.as_str() {
            "-n" => Some("name".to_string()),
            "-g" => Some("resource-group".to_string()),
            "-l" => Some("location".to_string()),
            "-o" => Some("output".to_string()),
            "-y" => Some("yes".to_string()),
            other => other.strip_prefix("--").map(str::to_string),
        };
        match long {
            None if arg.starts_with('-') => return Err(format!("unrecognized argument: {arg}")),
            None => parsed.words.push(arg.clone()),
            Some(name) => {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (name, None),
                };
                if VALUE_OPTIONS.contains(&name.as_str()) {
                    let value = match inline {
                        Some(value) => value,
                        None => iter
                            .next()
                            .cloned()
                            .ok_or_else(|| format!("argument --{name}: expected one argument"))?,
                    };
                    parsed.options.insert(name, value);
                } else {
                    parsed.flags.push(name);
                }
            }
        }
    }
    Ok(parsed)
}

/// `az aks mesh get-revisions`: the revisions the simulated region offers.
pub fn revisions() -> Value {
    let compatible = |versions: &[&str]| {
        json!([
            {"name": "KubernetesOfficial", "versions": versions},
            {"name": "AKSLongTermSupport", "versions": versions},
        ])
    };
    json!({"meshRevisions": [
        {"revision": "asm-1-29", "upgrades": ["asm-1-30"], "compatibleWith": compatible(&["1.31", "1.32", "1.33", "1.34", "1.35", "1.36"])},
        {"revision": "asm-1-30", "upgrades": [], "compatibleWith": compatible(&["1.32", "1.33", "1.34", "1.35", "1.36"])},
    ]})
}

/// Applies a `--query` written as a dotted path with optional indices
/// (`serviceMeshProfile.istio.revisions[0]`); JMESPath beyond that is not supported.
pub fn query(value: &Value, path: &str) -> Result<Value, String> {
    let mut current = value.clone();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indices) = part
            .split_once('[')
            .map_or((part, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            current = current.get(name).cloned().unwrap_or(Value::Null);
        }
        for index in indices
            .split('[')
            .map(|i| i.trim_end_matches(']'))
            .filter(|i| !i.is_empty())
        {
            let index: usize = index.parse().map_err(|_| format!("--query: `{path}` is not supported by the simulator (dotted paths and [n] only)"))?;
            current = current.get(index).cloned().unwrap_or(Value::Null);
        }
    }
    Ok(current)
}

/// Renders a result in an output format (`json` indented like az, `tsv`, `none`; `table` and
/// `yaml` fall back to JSON and YAML).
pub fn render(value: &Value, output: &str) -> String {
    match output {
        "none" => String::new(),
        "tsv" => match value {
            Value::Null => String::new(),
            Value::String(s) => format!("{s}\n"),
            Value::Array(items) => items.iter().map(|i| render(i, "tsv")).collect(),
            Value::Object(map) => {
                let fields: Vec<String> = map
                    .values()
                    .filter(|v| !v.is_object() && !v.is_array())
                    .map(super::object::scalar_text)
                    .collect();
                format!("{}\n", fields.join("\t"))
            }
            other => format!("{other}\n"),
        },
        "yaml" | "yamlc" => serde_yaml::to_string(value).unwrap_or_default(),
        _ => format!(
            "{}\n",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
    }
}

fn output_of(arguments: &AzArguments, value: &Value) -> AzOutcome {
    let value = match arguments.options.get("query") {
        Some(path) => match query(value, path) {
            Ok(value) => value,
            Err(why) => return AzOutcome::error(2, why),
        },
        None => value.clone(),
    };
    let output = arguments
        .options
        .get("output")
        .map(String::as_str)
        .unwrap_or("json");
    AzOutcome::ok(render(&value, output))
}

/// Runs one `az` command against the simulator whose state is in `state_dir` (default:
/// `MESHSHIFT_STATE_DIR`, else `.meshshift`). Builds its own runtime: call it from
/// synchronous code (inside a runtime, use [`run_async`]).
pub fn run(args: &[String], state_dir: Option<&Path>) -> AzOutcome {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run_async(args, state_dir)),
        Err(error) => AzOutcome::error(1, format!("cannot start the async runtime: {error}")),
    }
}

/// [`run`] on the caller's runtime.
pub async fn run_async(args: &[String], state_dir: Option<&Path>) -> AzOutcome {
    let arguments = match parse(args) {
        Ok(arguments) => arguments,
        Err(why) => return AzOutcome::error(2, why),
    };
    let words: Vec<&str> = arguments.words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["version"] => output_of(
            &arguments,
            &json!({"azure-cli": AZURE_CLI_VERSION, "azure-cli-core": AZURE_CLI_VERSION,
                                                    "azure-cli-telemetry": "1.1.0", "extensions": {}}),
        ),
        ["aks", "mesh", "get-revisions"] => {
            if !arguments.options.contains_key("location") {
                return AzOutcome::error(2, "the following arguments are required: --location/-l");
            }
            output_of(&arguments, &revisions())
        }
        ["aks", "create"] => AzOutcome::error(
            1,
            "`az aks create` is not simulated: creating clusters is not possible here; the simulated clusters are sim-source and sim-target (started by `meshshift sim up`)",
        ),
        ["aks", "show"]
        | ["aks", "get-credentials"]
        | ["aks", "delete"]
        | ["aks", "mesh", "enable-ingress-gateway"]
        | ["aks", "mesh", "disable-ingress-gateway"] => {
            cluster_command(&arguments, &words, state_dir).await
        }
        _ => AzOutcome::error(
            2,
            format!(
                "`az {}` is not simulated by meshshift (simulated: version, aks show, aks get-credentials, aks delete, aks create (refused), aks mesh get-revisions, aks mesh enable-ingress-gateway, aks mesh disable-ingress-gateway)",
                arguments.words.join(" ")
            ),
        ),
    }
}

fn not_found(resource_group: &str, name: &str) -> AzOutcome {
    AzOutcome::error(
        3,
        format!(
            "(ResourceNotFound) The Resource 'Microsoft.ContainerService/managedClusters/{name}' under resource group '{resource_group}' was not found."
        ),
    )
}

async fn cluster_command(
    arguments: &AzArguments,
    words: &[&str],
    state_dir: Option<&Path>,
) -> AzOutcome {
    let (Some(name), Some(group)) = (
        arguments.options.get("name"),
        arguments.options.get("resource-group"),
    ) else {
        return AzOutcome::error(
            2,
            "the following arguments are required: --resource-group/-g, --name/-n",
        );
    };
    let dir = match super::command::sim_dir(state_dir) {
        Ok(dir) => dir,
        Err(error) => return AzOutcome::error(1, error.to_string()),
    };
    let kubeconfig_path = dir.join("kubeconfig");
    let Ok(kubeconfig) = kube::config::Kubeconfig::read_from(&kubeconfig_path) else {
        return AzOutcome::error(
            1,
            format!(
                "no simulated clusters in {}: start them with `meshshift sim up`",
                dir.display()
            ),
        );
    };
    if !kubeconfig.contexts.iter().any(|c| &c.name == name) {
        return not_found(group, name);
    }
    let options = kube::config::KubeConfigOptions {
        context: Some(name.clone()),
        ..Default::default()
    };
    let client = match kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map(kube::Client::try_from)
    {
        Ok(Ok(client)) => client,
        _ => return AzOutcome::error(1, format!("cannot reach cluster {name}")),
    };
    let namespaces = super::agents::api(&client, NAMESPACES, "");
    let deleted = match namespaces.get("kube-system").await {
        Ok(ns) => ns
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DELETED_ANNOTATION))
            .is_some_and(|v| v == "true"),
        Err(_) => {
            return AzOutcome::error(
                1,
                format!("cluster {name} does not answer: is `meshshift sim up` still running?"),
            );
        }
    };
    if deleted {
        return not_found(group, name);
    }
    match words {
        ["aks", "get-credentials"] => AzOutcome::ok(format!(
            "Merged \"{name}\" as current context in {}\n",
            kubeconfig_path.display()
        )),
        ["aks", "delete"] => {
            if !arguments.flags.iter().any(|f| f == "yes") {
                return AzOutcome::error(
                    1,
                    "the command requires confirmation and there is no terminal: pass --yes",
                );
            }
            let patch = json!({"metadata": {"annotations": {DELETED_ANNOTATION: "true"}}});
            match namespaces
                .patch(
                    "kube-system",
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => AzOutcome::ok(String::new()),
                Err(error) => AzOutcome::error(1, format!("deleting {name}: {error}")),
            }
        }
        ["aks", "show"] => match managed_cluster(&client, name, group).await {
            Ok(cluster) => output_of(arguments, &cluster),
            Err(why) => AzOutcome::error(1, why),
        },
        ["aks", "mesh", action] => {
            let kind = arguments
                .options
                .get("ingress-gateway-type")
                .map(|k| k.to_ascii_lowercase());
            let Some(kind) = kind.filter(|k| k == "external" || k == "internal") else {
                return AzOutcome::error(2, "--ingress-gateway-type must be external or internal");
            };
            let profile = match mesh_profile(&client).await {
                Ok(profile) => profile,
                Err(why) => return AzOutcome::error(1, why),
            };
            let Some(version) = profile.version.clone() else {
                return AzOutcome::error(
                    1,
                    format!(
                        "(BadRequest) Istio based Azure service mesh is not enabled on managed cluster {name}; enable it with `az aks mesh enable`"
                    ),
                );
            };
            let objects = super::scenario::addon_ingress_gateway(&version, &kind);
            let result = if *action == "enable-ingress-gateway" {
                super::install::apply_all(&client, &objects).await
            } else {
                let mut result = Ok(());
                for object in &objects {
                    let kind_of = if object["kind"] == "Service" {
                        SERVICES
                    } else {
                        DEPLOYMENTS
                    };
                    let name = object["metadata"]["name"].as_str().unwrap_or_default();
                    let api = super::agents::api(&client, kind_of, "aks-istio-ingress");
                    if let Err(error) = api.delete(name, &DeleteParams::default()).await
                        && !matches!(&error, kube::Error::Api(status) if status.code == 404)
                    {
                        result = Err(error.to_string());
                    }
                }
                result
            };
            if let Err(why) = result {
                return AzOutcome::error(1, why);
            }
            match managed_cluster(&client, name, group).await {
                Ok(cluster) => output_of(arguments, &cluster),
                Err(why) => AzOutcome::error(1, why),
            }
        }
        _ => AzOutcome::error(2, "not simulated"),
    }
}

/// What the add-on installed on a cluster.
struct MeshProfile {
    revisions: Vec<String>,
    version: Option<String>,
    gateways: Vec<Value>,
}

async fn mesh_profile(client: &kube::Client) -> Result<MeshProfile, String> {
    let deployments = super::agents::api(client, DEPLOYMENTS, "aks-istio-system");
    let planes = deployments
        .list(&ListParams::default().labels("app=istiod"))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut revisions = Vec::new();
    let mut version = None;
    for plane in &planes {
        let value = serde_json::to_value(plane).unwrap_or(Value::Null);
        if let Some(revision) = value
            .pointer("/metadata/labels/istio.io~1rev")
            .and_then(Value::as_str)
        {
            revisions.push(revision.to_string());
        }
        let image = value
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some((_, tag)) = image.rsplit_once(':') {
            version = Some(
                tag.trim_start_matches('v')
                    .trim_end_matches("-distroless")
                    .to_string(),
            );
        }
    }
    revisions.sort();
    let services: kube::Api<DynamicObject> =
        super::agents::api(client, SERVICES, "aks-istio-ingress");
    let mut gateways = Vec::new();
    for (kind, mode) in [("external", "External"), ("internal", "Internal")] {
        if services
            .get_opt(&format!("aks-istio-ingressgateway-{kind}"))
            .await
            .ok()
            .flatten()
            .is_some()
        {
            gateways.push(json!({"enabled": true, "mode": mode}));
        }
    }
    Ok(MeshProfile {
        revisions,
        version,
        gateways,
    })
}

async fn managed_cluster(client: &kube::Client, name: &str, group: &str) -> Result<Value, String> {
    let profile = mesh_profile(client).await?;
    let mesh = if profile.revisions.is_empty() {
        json!({"mode": "Disabled"})
    } else {
        json!({"mode": "Istio", "istio": {"revisions": profile.revisions,
               "components": {"ingressGateways": profile.gateways, "proxyRedirectionMechanism": "InitContainers"}}})
    };
    Ok(json!({
        "id": format!("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}"),
        "name": name,
        "resourceGroup": group,
        "location": "simulated",
        "type": "Microsoft.ContainerService/ManagedClusters",
        "kubernetesVersion": "1.33",
        "currentKubernetesVersion": "1.33.2",
        "provisioningState": "Succeeded",
        "powerState": {"code": "Running"},
        "serviceMeshProfile": mesh,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_like_az() {
        let parsed = parse(&args("aks mesh enable-ingress-gateway -g rg --name sim-target --ingress-gateway-type=external -o json")).expect("parses");
        assert_eq!(parsed.words, vec!["aks", "mesh", "enable-ingress-gateway"]);
        assert_eq!(parsed.options["resource-group"], "rg");
        assert_eq!(parsed.options["ingress-gateway-type"], "external");
        assert!(parse(&args("aks show --name")).is_err());
        assert_eq!(
            parse(&args("aks delete -y")).expect("parses").flags,
            vec!["yes"]
        );
    }

    #[test]
    fn answers_without_a_cluster() {
        let version = run(&args("version -o json"), None);
        assert_eq!(version.code, 0);
        let parsed: Value = serde_json::from_str(&version.stdout).expect("json");
        assert_eq!(parsed["azure-cli"], AZURE_CLI_VERSION);
        let revisions = run(
            &args(
                "aks mesh get-revisions --location westeurope --query meshRevisions[1].revision -o tsv",
            ),
            None,
        );
        assert_eq!(revisions.stdout, "asm-1-30\n");
        let other = run(&args("network vnet list"), None);
        assert_eq!(other.code, 2);
        assert!(
            other
                .stderr
                .contains("`az network vnet list` is not simulated"),
            "{}",
            other.stderr
        );
        let create = run(&args("aks create -g rg -n x"), None);
        assert_eq!(create.code, 1);
        assert!(create.stderr.contains("not simulated"));
    }
}
