//! Running external programs (the Azure CLI), only those allowed with `--allow-exec`.

use std::process::Stdio;
use std::time::Duration;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};

use crate::error::Error;
use crate::session::{Session, raise};

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
) -> Result<Finished, String> {
    let mut command = tokio::process::Command::new(&program);
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

/// Whether `program` may run: its file name must be in `--allow-exec`.
fn allowed(session: &Session, program: &str) -> bool {
    let name = std::path::Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    session
        .settings
        .allow_exec
        .iter()
        .any(|a| a == name || a == program)
}

#[export_module]
pub mod exec_functions {
    /// Runs a program allowed with `--allow-exec` (e.g. `az`) and returns `#{status, stdout,
    /// stderr}`; a non-zero status is a value, not an error. Options: `timeout` (default
    /// `10m`), `input` (text for its standard input), `mutates` (default `true`: in plan mode the
    /// program is not run and `planned` is `true`; pass `false` for read-only commands). The
    /// command line is printed before it runs.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let version = exec("az", ["version", "-o", "json"], #{mutates: false});
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
        if !allowed(&session, program) {
            return Err(raise(Error::Other {
                message: format!(
                    "running `{program}` is not allowed: rerun with `--allow-exec {program}`"
                ),
            }));
        }
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let shown = std::iter::once(program.to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let mutates = options
            .get("mutates")
            .and_then(|m| m.as_bool().ok())
            .unwrap_or(true);
        let mut result = Map::new();
        if mutates && session.is_plan() {
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
        // An alias (e.g. the simulated clusters' own `az`) runs instead, with the same arguments.
        let (program, args) = match session
            .settings
            .exec_aliases
            .get(program)
            .and_then(|a| a.split_first())
        {
            Some((alias, prefix)) => (alias.clone(), prefix.iter().cloned().chain(args).collect()),
            None => (program.to_string(), args),
        };
        let finished = session
            .block_on(run_program(program, args, input, timeout))
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
        Ok(allowed(&session, program))
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
