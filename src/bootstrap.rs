//! Opening a session for `run` and `repl`: the tokio runtime, parameters and settings, the
//! simulated clusters when asked for, and Ctrl-C handling. The one place both commands start
//! from, so neither imports the other.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::output::Output;
use crate::session::{Params, Session, Settings};

/// The tokio runtime host functions block on. Built by hand: Rhai runs on this thread.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("meshshift-io")
        .build()
        .map_err(|e| Error::Other {
            message: format!("cannot start the async runtime: {e}"),
        })
}

/// How `run` and `repl` open a session.
pub struct SessionOptions<'a> {
    pub set: &'a [String],
    pub plan: bool,
    pub assume_yes: bool,
    pub allow_exec: Vec<String>,
    pub kubeconfig: Option<PathBuf>,
    pub state_dir: PathBuf,
    /// Start the simulated clusters, with their state in `simulation_dir`.
    pub sim: bool,
    pub simulation_dir: PathBuf,
    /// Save the simulated clusters' objects in `simulation_dir` when they stop (a run's
    /// clusters, so that `resume` continues on them).
    pub keep_simulation: bool,
    /// Start the simulated clusters from the objects a run saved in this directory (`resume`
    /// of a `--sim` run); refused when it saved none.
    pub restore_simulation_from: Option<PathBuf>,
    /// Ctrl-C presses, while a cancelled input is still stopping, that quit meshshift.
    pub presses_to_quit: u32,
}

/// What `run` and `repl` share: parameters, the runtime, settings, the simulated clusters when
/// asked for, the session printing to stdout, and Ctrl-C handling.
pub fn open_session(
    options: SessionOptions,
) -> Result<(tokio::runtime::Runtime, Simulation, Arc<Session>)> {
    let mut params = Params::from_set_arguments(options.set)?;
    let runtime = runtime()?;
    let mut settings = Settings {
        plan: options.plan,
        assume_yes: options.assume_yes,
        allow_exec: options.allow_exec,
        kubeconfig: options.kubeconfig,
        state_dir: options.state_dir,
        interactive: std::io::IsTerminal::is_terminal(&std::io::stdin()),
        exec_aliases: Default::default(),
        programs: Default::default(),
        connect_to: std::env::var("MESHSHIFT_CONNECT_TO").unwrap_or_default(),
    };
    let simulation = Simulation::start_if(
        options.sim.then_some(SimulationStart {
            dir: &options.simulation_dir,
            keep: options.keep_simulation,
            restore_from: options.restore_simulation_from.as_deref(),
        }),
        &runtime,
        &mut settings,
        &mut params,
    )?;
    // `--allow-exec` names are resolved once, now: `exec` runs these files and no others.
    settings.programs = crate::session::programs::Programs::resolve(
        &settings.allow_exec,
        settings.exec_aliases.clone(),
        std::env::var_os("PATH").as_deref(),
    )
    .map_err(|message| Error::Other { message })?;
    for allowed in settings.programs.allowed() {
        eprintln!(
            "exec: `{}` allowed as {}",
            allowed.name,
            crate::session::programs::shell_quote(&allowed.runs)
        );
    }
    // The kubeconfig's credentials never leave the process in any output.
    let source = crate::cluster::KubeconfigSource {
        path: settings.kubeconfig.clone(),
    };
    for credential in source.credentials() {
        crate::redact::remember(&credential);
    }
    let session = Session::new(
        runtime.handle().clone(),
        settings,
        params,
        Arc::new(Output::stdout()),
    );
    install_ctrl_c(&runtime, &session, options.presses_to_quit);
    Ok((runtime, simulation, session))
}

/// The simulated clusters of a `--sim` session (none without `--sim`).
pub struct Simulation(Option<crate::sim::SimEnvironment>);

/// Where simulated clusters keep their state, and where they start from.
pub struct SimulationStart<'a> {
    pub dir: &'a Path,
    /// Save the objects in `dir` when the clusters stop.
    pub keep: bool,
    /// A directory whose saved objects the clusters start from.
    pub restore_from: Option<&'a Path>,
}

/// The files the simulated clusters save their objects in, below a run's directory.
const SNAPSHOTS: [&str; 2] = ["sim/sim-source.json", "sim/sim-target.json"];

/// Copies the objects a run's simulated clusters saved into `dir`, so that they start from
/// them; refuses when that run saved none (it was killed, or kept no state).
fn restore_snapshots(from: &Path, dir: &Path) -> Result<()> {
    if let Some(missing) = SNAPSHOTS.iter().find(|file| !from.join(file).is_file()) {
        return Err(Error::Other {
            message: format!(
                "cannot resume on the same simulated clusters: {} was not saved (the run was \
                 killed before its clusters stopped, or it predates saved simulations); \
                 start a new run with --sim",
                crate::files::display_path(&from.join(missing))
            ),
        });
    }
    for file in SNAPSHOTS {
        let copy = std::fs::read(from.join(file))
            .and_then(|bytes| crate::files::write_atomic(&dir.join(file), &bytes, true));
        copy.map_err(|e| Error::WriteFile {
            path: dir.join(file).display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

impl Simulation {
    /// With `start`, starts `sim-source` and `sim-target` with their state in its `dir`
    /// (restored from a run's saved objects when asked), points the session's kubeconfig and
    /// `az` at them and sets the parameters the shipped runbooks read (their defaults only:
    /// `--set` wins).
    pub fn start_if(
        start: Option<SimulationStart>,
        runtime: &tokio::runtime::Runtime,
        settings: &mut Settings,
        params: &mut Params,
    ) -> Result<Simulation> {
        let Some(start) = start else {
            return Ok(Simulation(None));
        };
        let dir = start.dir;
        if let Some(from) = start.restore_from {
            restore_snapshots(from, dir)?;
        }
        let options = crate::sim::EnvironmentOptions {
            state_dir: Some(dir.to_path_buf()),
            persist: start.keep || start.restore_from.is_some(),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let environment = runtime
            .block_on(crate::sim::Environment::start(options))
            .map_err(|error| Error::Other {
                message: format!("cannot start the simulated clusters: {error}"),
            })?;
        println!(
            "simulated clusters sim-source and sim-target {} in {} (kubeconfig: {})",
            if start.restore_from.is_some() {
                "restored from the resumed run and started"
            } else {
                "started"
            },
            crate::output::format_duration(started.elapsed()),
            crate::files::display_path(&environment.kubeconfig)
        );
        settings.kubeconfig = Some(environment.kubeconfig.clone());
        settings
            .exec_aliases
            .insert("az".into(), environment.az_command.clone());
        if !settings.allow_exec.iter().any(|p| p == "az") {
            settings.allow_exec.push("az".into());
        }
        params.set_default_value("SOURCE_CLUSTER", "sim-source");
        params.set_default_value("TARGET_CLUSTER", "sim-target");
        params.set_default_value("SIMULATED", "true");
        // The Azure CLI arguments the guide's runbooks pass to `az`; the simulated one accepts any.
        params.set_default_value("TARGET_RESOURCE_GROUP", "rg-simulated");
        params.set_default_value("LOCATION", "simulated");
        Ok(Simulation(Some(environment)))
    }

    /// Stops the simulated clusters, if any; a failure to stop is only a warning.
    pub fn stop(self, runtime: &tokio::runtime::Runtime) {
        if let Some(environment) = self.0
            && let Err(error) = runtime.block_on(environment.shutdown())
        {
            eprintln!("warning: the simulated clusters did not stop cleanly: {error}");
        }
    }
}

/// Ctrl-C stops the running input (the session's cancel switch, which host functions select
/// on); `presses_to_quit` more presses while it is still stopping exit at once.
fn install_ctrl_c(runtime: &tokio::runtime::Runtime, session: &Arc<Session>, presses_to_quit: u32) {
    let cancel = session.cancel.clone();
    // The handler is registered here, by a first poll, not when the task first runs: until then
    // a Ctrl-C would still end the process (the default action), and a loaded machine can take
    // a while to schedule the task.
    let mut next_press = Box::pin(tokio::signal::ctrl_c());
    let pressed_already = runtime.block_on(std::future::poll_fn(|context| {
        std::task::Poll::Ready(std::future::Future::poll(next_press.as_mut(), context).is_ready())
    }));
    if pressed_already {
        // A finished future cannot be polled again; the handler stays registered.
        next_press = Box::pin(tokio::signal::ctrl_c());
    }
    runtime.spawn(async move {
        let mut while_stopping = 0;
        loop {
            if next_press.as_mut().await.is_err() {
                return;
            }
            next_press = Box::pin(tokio::signal::ctrl_c());
            if !cancel.is_cancelled() {
                while_stopping = 0;
                if presses_to_quit == 1 {
                    eprintln!("\ninterrupting (Ctrl-C again to quit at once)");
                }
                cancel.cancel();
                continue;
            }
            while_stopping += 1;
            if while_stopping >= presses_to_quit {
                std::process::exit(130);
            }
            eprintln!("\nstill stopping (Ctrl-C once more quits meshshift)");
        }
    });
}
