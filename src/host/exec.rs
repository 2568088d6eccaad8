//! Running external programs (the Azure CLI), only those allowed with `--allow-exec`.

use std::process::Stdio;
use std::time::Duration;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};

use crate::error::Error;
use crate::session::{Session, programs, raise};

/// Builds the `exec` host module.
pub fn module() -> Module {
    exported_module!(exec_functions)
}

use crate::host::{HostResult, check_keys, timeout_option};

/// What a finished program left.
struct Finished {
    status: i64,
    stdout: String,
    stderr: String,
}

async fn run_program(
    program: String,
    args: Vec<String>,
    input: Option<String>,
    timeout: Duration,
    kubeconfig: std::ffi::OsString,
) -> Result<Finished, String> {
    let mut command = tokio::process::Command::new(&program);
    // The session's clusters, not whatever the user's environment points at.
    command.env("KUBECONFIG", kubeconfig);
    command
        .args(&args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Ctrl-C drops this future; the program must not outlive it.
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("`{program}` is not installed (not found on PATH)"),
        _ => format!("cannot start `{program}`: {e}"),
    })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| format!("cannot write to `{program}`: {e}"))?;
    }
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "`{program}` did not finish within {}",
                crate::output::format_duration(timeout)
            )
        })?
        .map_err(|e| format!("`{program}` failed: {e}"))?;
    Ok(Finished {
        status: i64::from(output.status.code().unwrap_or(-1)),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The `KUBECONFIG` a child gets: a private file (0600, in the run's directory, else the state
/// directory) that sets the current context to the one context the script bound (or to none),
/// followed by the kubeconfig files the session reads. kubectl takes the current context from
/// the first file that sets one, so the user's current context never applies by accident.
fn child_kubeconfig(session: &Session) -> Result<std::ffi::OsString, Error> {
    let dir = match session.run() {
        Some(run) => run.dir.clone(),
        None => session.settings.state_dir.join("exec"),
    };
    let pin = dir.join("exec-kubeconfig");
    let written = crate::journal::create_private_dir(&dir).and_then(|()| {
        crate::files::write_atomic(
            &pin,
            programs::pinned_kubeconfig(&session.bound_contexts()).as_bytes(),
            true,
        )
    });
    written.map_err(|e| Error::WriteFile {
        path: pin.display().to_string(),
        reason: e.to_string(),
    })?;
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let files = programs::kubeconfig_files(
        session.settings.kubeconfig.as_deref(),
        std::env::var_os("KUBECONFIG").as_deref(),
        home.as_deref(),
    );
    std::env::join_paths(std::iter::once(pin).chain(files)).map_err(|e| Error::Other {
        message: format!("cannot pass the kubeconfig to a program: {e}"),
    })
}

#[export_module]
pub mod exec_functions {
    /// Runs a program allowed with `--allow-exec` (e.g. `az`) and returns `#{status, stdout,
    /// stderr}`; a non-zero status is a value, not an error. `--allow-exec` names are resolved
    /// on `PATH` when the run starts, and only those files run (by name, or by a path to the
    /// same file). The program gets the session's kubeconfig in `KUBECONFIG`, with the current
    /// context set to the one context the script bound (none when it bound several: name it with
    /// `--context`), never the user's current context. The command line
    /// is printed, shell-quoted and redacted, before it runs. In plan mode only the host's
    /// read-only commands run (`az version`, `az aks show`, `az aks mesh get-revisions`, …);
    /// any other is skipped and `planned` is `true`. Options: `timeout` (default `10m`),
    /// `input` (text for its standard input), `mutates` (kept for older runbooks: the host's
    /// list decides).
    ///
    /// # Example
    /// ```rhai,no_run
    /// let version = exec("az", ["version", "-o", "json"]);
    /// if version.status == 0 { info(parse_json(version.stdout)["azure-cli"]); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn exec(
        context: NativeCallContext,
        program: &str,
        args: Array,
        options: Map,
    ) -> HostResult<Map> {
        check_keys("exec", &options, &["timeout", "input", "mutates"])?;
        let session = Session::of(&context)?;
        let Some(command) = session.settings.programs.command_for(program) else {
            return Err(raise(Error::Other {
                message: format!(
                    "running `{program}` is not allowed: rerun with `--allow-exec {program}`"
                ),
            }));
        };
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let shown = crate::redact::text(&programs::shell_quote(
            &std::iter::once(program.to_string())
                .chain(args.iter().cloned())
                .collect::<Vec<_>>(),
        ));
        let mut result = Map::new();
        if session.is_plan() && !programs::is_read_only(program, &args) {
            session.out.info(&format!("$ {shown}   (plan: not run)"));
            session.push_event("planned-command", serde_json::json!({ "command": shown }));
            result.insert("status".into(), Dynamic::from_int(0));
            result.insert("stdout".into(), "".into());
            result.insert("stderr".into(), "".into());
            result.insert("planned".into(), true.into());
            return Ok(result);
        }
        session.out.info(&format!("$ {shown}"));
        let timeout = timeout_option("exec", &options, "10m")?;
        let input = options
            .get("input")
            .filter(|i| !i.is_unit())
            .map(|i| i.to_string());
        // The resolved file (or the emulation) runs, with the arguments after its own.
        let (program, prefix) = command.split_first().expect("a command has a program");
        let args = prefix.iter().cloned().chain(args).collect();
        let finished = session
            .block_on(run_program(
                program.clone(),
                args,
                input,
                timeout,
                child_kubeconfig(&session).map_err(raise)?,
            ))
            .map_err(raise)?
            .map_err(|message| raise(Error::Other { message }))?;
        result.insert("status".into(), Dynamic::from_int(finished.status));
        result.insert("stdout".into(), finished.stdout.into());
        result.insert("stderr".into(), finished.stderr.into());
        result.insert("planned".into(), false.into());
        Ok(result)
    }

    /// True when `program` may run (it was allowed with `--allow-exec`).
    ///
    /// # Example
    /// ```rhai
    /// if can_exec("az") { info("the Azure CLI may be used"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn can_exec(context: NativeCallContext, program: &str) -> HostResult<bool> {
        let session = Session::of(&context)?;
        Ok(session.settings.programs.command_for(program).is_some())
    }

    /// `exec` with default options.
    ///
    /// # Example
    /// ```rhai,no_run
    /// exec("az", ["aks", "get-credentials", "--resource-group", "rg", "--name", "aks-target"]);
    /// ```
    #[rhai_fn(name = "exec", return_raw)]
    pub fn exec_default(context: NativeCallContext, program: &str, args: Array) -> HostResult<Map> {
        exec(context, program, args, Map::new())
    }
}
