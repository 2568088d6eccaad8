//! The command line, as clap parses it. Raw flags only; `subcommand` gives them meaning.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run Kubernetes service-mesh migrations as editable Rhai runbooks.
#[derive(Debug, Parser)]
#[command(name = "meshshift", version, about, long_about = None, max_term_width = 100)]
pub struct Arguments {
    #[command(subcommand)]
    pub command: Command,

    /// Kubeconfig file to use instead of `$KUBECONFIG` or `~/.kube/config`.
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Where runs, reports and simulator state are kept [default: .meshshift]
    #[arg(long, global = true, value_name = "DIR", env = "MESHSHIFT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a runbook.
    Run(RunArguments),
    /// Continue an interrupted run from its journal (default: the last run).
    Resume {
        /// The run to continue, as shown by `meshshift run` (a directory under <state dir>/runs).
        run_id: Option<String>,
        /// Answer yes to every confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Set a parameter (repeatable), over the journal's: secret parameters, which the
        /// journal does not keep, are given again here or in the environment.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// When another run holds a cluster's run lock, wait for it instead of failing.
        #[arg(long)]
        wait_lock: bool,
        /// Programs the runbook may run through `exec`: not taken from the interrupted run,
        /// given again.
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        allow_exec: Vec<String>,
    },
    /// Parse and compile runbooks and their imports without running anything.
    Check {
        /// Runbook files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List runbooks with their summary and the parameters they read.
    List {
        /// Directory to look in.
        #[arg(default_value = "runbooks", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Show the reference of host and stdlib functions.
    Doc {
        /// One function (`load`, `traffic::shift`) or module (`manifest`).
        name: Option<String>,
        /// The whole reference as Markdown (what docs/reference.md holds).
        #[arg(long, conflicts_with = "name")]
        markdown: bool,
    },
    /// Start an interactive session on the same engine as `run`.
    Repl(ReplArguments),
    /// Simulated source and target clusters on loopback.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Many cluster pairs in waves, run by Kubernetes Jobs in a management cluster.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Write `.d.rhai` definition files for editor completion.
    Definitions {
        /// Directory to write into.
        #[arg(long, default_value = ".rhai/definitions", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `meshshift run`.
#[derive(Debug, Args)]
pub struct RunArguments {
    /// The runbook.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Set a parameter (repeatable): `--set SOURCE_CLUSTER=aks-source`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Change nothing: writes become server-side dry runs that show their diffs.
    #[arg(long)]
    pub plan: bool,
    /// Start simulated source and target clusters in-process and run against them.
    #[arg(long)]
    pub sim: bool,
    /// Answer yes to every confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Programs the runbook may run through `exec` (comma-separated, e.g. `az`).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub allow_exec: Vec<String>,
    /// When another run holds a cluster's run lock, wait for it instead of failing.
    #[arg(long)]
    pub wait_lock: bool,
}

/// `meshshift repl`.
#[derive(Debug, Args)]
pub struct ReplArguments {
    /// A runbook whose functions to preload (its top-level statements do not run).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Set a parameter (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Start simulated clusters in-process.
    #[arg(long)]
    pub sim: bool,
    /// Programs `exec` may run (comma-separated).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub allow_exec: Vec<String>,
}

/// `meshshift sim ...`.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Start `sim-source` and `sim-target` and write <state dir>/sim/kubeconfig.
    Up {
        /// Return once both clusters answer, leaving them running in the background.
        #[arg(long)]
        detach: bool,
        /// Start empty instead of restoring the objects saved when they last stopped.
        #[arg(long)]
        fresh: bool,
        /// Istio version of both clusters' control planes (default 1.30.2).
        #[arg(long, value_name = "VERSION")]
        istio_version: Option<String>,
        /// A file with the source's MeshConfig (`data.mesh` of ConfigMap istio-system/istio).
        #[arg(long, value_name = "FILE")]
        mesh_config: Option<PathBuf>,
        /// Inject istio-proxy as a native sidecar (an init container with restartPolicy Always).
        #[arg(long)]
        native_sidecars: bool,
        /// Serve load balancer ports on free high ports and publish the mapping, even as root.
        #[arg(long)]
        map_ports: bool,
        /// Start N numbered pairs (contexts sim-source-1, sim-target-1, …), at most 127.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=127))]
        pairs: Option<u8>,
    },
    /// Stop simulated clusters started with `--detach`.
    Down,
    /// Show what runs where.
    Status,
    /// Show or change the injected faults of a running simulator (`sim fault --cluster
    /// sim-target http-503-ratio=0.2`; settings are listed in the README's Faults section).
    Fault {
        /// Only this cluster (repeatable; default: all).
        #[arg(long = "cluster", value_name = "NAME")]
        clusters: Vec<String>,
        /// The settings are the data-plane faults of this Service (`namespace/name`).
        #[arg(long, value_name = "NS/NAME")]
        service: Option<String>,
        /// Remove all faults first.
        #[arg(long)]
        clear: bool,
        /// `name=value` settings; none shows the faults in force.
        #[arg(value_name = "SETTING")]
        settings: Vec<String>,
    },
    /// Answer Azure CLI commands for the simulated clusters (`sim az aks show -g rg -n sim-target`).
    Az {
        /// The `az` arguments.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "AZ_ARGS"
        )]
        args: Vec<String>,
    },
}

/// `meshshift fleet ...` (docs/fleet.md).
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Print the Kubernetes objects that run the fleet (YAML).
    Render {
        #[arg(value_name = "FLEET.yaml")]
        file: PathBuf,
        /// The management cluster's version the objects are for [default: 1.37].
        #[arg(long, value_name = "VERSION")]
        kubernetes_version: Option<String>,
        /// `jobs` (one Indexed Job per wave) or `argo-workflow` (one Argo Workflow).
        #[arg(long, default_value = "jobs", value_parser = ["jobs", "argo-workflow"])]
        format: String,
    },
    /// Create the fleet's objects, then each wave's Job once the previous one finished.
    Apply {
        #[arg(value_name = "FLEET.yaml")]
        file: PathBuf,
        /// The management cluster's kubeconfig context [default: the current one].
        #[arg(long)]
        context: Option<String>,
        /// Stay until every wave's Job is created (waiting for waves and approvals).
        #[arg(long)]
        wait: bool,
    },
    /// Let the wave after WAVE start (for waves with `pause: approval`).
    Approve {
        #[arg(value_name = "FLEET.yaml")]
        file: PathBuf,
        wave: String,
        #[arg(long)]
        context: Option<String>,
    },
    /// One row per pair, from the journals kept in the management cluster.
    Status {
        #[arg(value_name = "FLEET.yaml")]
        file: PathBuf,
        #[arg(long)]
        context: Option<String>,
        /// Keep updating every two seconds.
        #[arg(long)]
        watch: bool,
        /// Output format: `table` or `json`.
        #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
    /// Create each wave's Job once the previous wave finished and its pause is over, as the
    /// fleet's conductor Job does in the management cluster (in-cluster configuration).
    #[command(hide = true)]
    Conduct {
        /// The schedule from the conductor's ConfigMap.
        #[arg(long, value_name = "FILE")]
        schedule: PathBuf,
    },
    /// Run one pair as the pod of an Indexed Job does (index from JOB_COMPLETION_INDEX).
    #[command(hide = true)]
    Pod {
        #[arg(long, value_name = "FILE")]
        plan: PathBuf,
        #[arg(long)]
        wave: String,
        /// Directory holding `<index>/source` and `<index>/target` kubeconfigs.
        #[arg(long, value_name = "DIR")]
        kubeconfigs: PathBuf,
        /// Keep the journal and report in ConfigMaps of the management cluster (in-cluster
        /// configuration) and resume from them.
        #[arg(long)]
        state_in_cluster: bool,
    },
}
