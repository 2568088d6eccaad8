//! Runbook flow: parameters, steps, output, prompts and waiting.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use crate::error::Error;
use crate::journal::JournalStep;
use crate::session::{Session, StepOutcome, StepRecord, raise};

/// Builds the `flow` host module.
pub fn module() -> Module {
    exported_module!(flow_functions)
}

/// What went wrong, in one line, for step result lines.
pub fn short_message(
    context: &NativeCallContext,
    session: &Session,
    error: &EvalAltResult,
) -> String {
    let file = context.call_source().unwrap_or("<script>");
    crate::engine::script_error::from_eval_error_ref(error, file, session, context.engine())
        .message()
}

/// A value as `print` shows it: through the script-visible `to_string`, so host types print
/// their own way and Secret values are masked.
pub fn display(context: &NativeCallContext, value: Dynamic) -> String {
    if value.is_string() {
        return value.to_string();
    }
    context
        .call_fn::<rhai::ImmutableString>("to_string", (value.clone(),))
        .map(|s| s.to_string())
        .unwrap_or_else(|_| value.to_string())
}

/// Parses a duration argument given as text (`"30s"`) or a number of seconds.
pub fn duration_argument(function: &str, value: &Dynamic) -> Result<Duration, Box<EvalAltResult>> {
    let parsed = if let Ok(seconds) = value.as_int() {
        crate::duration::parse_duration(&seconds.to_string())
    } else if let Ok(seconds) = value.as_float() {
        crate::duration::parse_duration(&seconds.to_string())
    } else if value.is_string() {
        crate::duration::parse_duration(&value.to_string())
    } else {
        Err(format!(
            "expected a duration like `30s`, got a value of type `{}`",
            value.type_name()
        ))
    };
    parsed.map_err(|message| {
        raise(Error::InvalidArgument {
            function: function.into(),
            message,
        })
    })
}

#[export_module]
pub mod flow_functions {
    /// Reads a runbook parameter: from `--set NAME=VALUE`, else the environment variable `NAME`.
    /// Fails, naming the parameter, when neither is set.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let source = param("SOURCE_CLUSTER");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn param(context: NativeCallContext, name: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let session = Session::of(&context)?;
        session.params.get(name, None).map_err(raise)
    }

    /// Reads a runbook parameter with a default. A value from `--set` or the environment is
    /// converted to the type of the default: integers, floats, booleans (`true`/`yes`/`1`),
    /// comma-separated arrays, or JSON objects for maps.
    ///
    /// # Example
    /// ```rhai
    /// let steps = param("STEPS", [10, 25, 50, 100]);   // --set STEPS=5,50,100
    /// let soak = param("SOAK", "2s");
    /// ```
    #[rhai_fn(name = "param", return_raw)]
    pub fn param_with_default(
        context: NativeCallContext,
        name: &str,
        default: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let session = Session::of(&context)?;
        session.params.get(name, Some(&default)).map_err(raise)
    }

    /// Reads a runbook parameter with a default and options: `secret` (`true`: the value is
    /// masked in all output, the journal and the reports, and a resumed run needs it again
    /// from `--set` or the environment; parameters named like `*TOKEN*`, `*PASSWORD*`,
    /// `*SECRET*` or `*KEY*` are secret without it).
    ///
    /// # Example
    /// ```rhai
    /// let webhook = param("WEBHOOK_URL", "", #{secret: true});
    /// ```
    #[rhai_fn(name = "param", return_raw)]
    pub fn param_with_options(
        context: NativeCallContext,
        name: &str,
        default: Dynamic,
        options: Map,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        crate::host::check_keys("param", &options, &["secret"])?;
        let secret = options
            .get("secret")
            .and_then(|s| s.as_bool().ok())
            .unwrap_or(false);
        let session = Session::of(&context)?;
        session
            .params
            .get_marked(name, Some(&default), secret)
            .map_err(raise)
    }

    /// Prints a line of runbook output (indented under the current step).
    ///
    /// # Example
    /// ```rhai
    /// info(`moving ${3} namespaces`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn info(context: NativeCallContext, message: Dynamic) -> Result<(), Box<EvalAltResult>> {
        Session::of(&context)?.out.info(&display(&context, message));
        Ok(())
    }

    /// Prints a warning line.
    ///
    /// # Example
    /// ```rhai
    /// warn("EnvoyFilter objects are outside the add-on's support");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn warn(context: NativeCallContext, message: Dynamic) -> Result<(), Box<EvalAltResult>> {
        Session::of(&context)?.out.warn(&display(&context, message));
        Ok(())
    }

    /// Stops the runbook with an error message (exit code 1). Inside `step`, the step fails.
    ///
    /// # Example
    /// ```rhai
    /// if 1 + 1 != 2 { fail("arithmetic is broken"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn fail(message: Dynamic) -> Result<(), Box<EvalAltResult>> {
        Err(raise(Error::Failed {
            message: message.to_string(),
        }))
    }

    /// Runs `body` as a named step: prints a numbered header, then `done in 1.23s` or
    /// `failed after …` with the reason, and records the step for the run report. Returns what
    /// `body` returns; an error inside fails the step and the runbook.
    ///
    /// # Example
    /// ```rhai
    /// let answer = step("compute", || 6 * 7);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn step(
        context: NativeCallContext,
        title: &str,
        body: FnPtr,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let session = Session::of(&context)?;
        let number = session.next_step_number();
        session.out.begin_step(number, title);
        let occurrence = session.run().map(|run| run.occurrence(title)).unwrap_or(0);
        if let Some((run_id, done)) = session.run().and_then(|run| run.replay(title, occurrence)) {
            session.out.skip_step(&format!("done in run {run_id}"));
            record_step(
                &session,
                number,
                title,
                Duration::ZERO,
                StepOutcome::Skipped(format!("done in run {run_id}")),
            );
            if let Some(run) = session.run() {
                run.record_step(JournalStep {
                    number,
                    message: Some(format!("replayed from {run_id}")),
                    ..done.clone()
                });
            }
            return Ok(done
                .result
                .map(crate::session::convert::to_dynamic)
                .unwrap_or(Dynamic::UNIT));
        }
        session.enter_step(number);
        let started = Instant::now();
        let result = body.call_within_context::<Dynamic>(&context, ());
        let elapsed = started.elapsed();
        session.leave_step();
        let failure = result
            .as_ref()
            .err()
            .map(|error| short_message(&context, &session, error));
        session.out.end_step(elapsed, failure.as_deref());
        if let Some(run) = session.run() {
            let recorded = result
                .as_ref()
                .ok()
                .map(crate::session::convert::from_dynamic);
            let replayable = matches!(recorded, Some(Ok(_)));
            run.record_step(JournalStep {
                number,
                title: title.to_string(),
                outcome: if failure.is_some() {
                    "failed".into()
                } else {
                    "done".into()
                },
                elapsed_ms: elapsed.as_millis() as u64,
                result: recorded.and_then(Result::ok),
                replayable,
                message: failure.clone(),
            });
        }
        let outcome = match failure {
            None => StepOutcome::Done,
            Some(reason) => StepOutcome::Failed(reason),
        };
        record_step(&session, number, title, elapsed, outcome);
        result
    }

    /// Waits for a duration (`"500ms"`, `"30s"`, `"2m"`, or a number of seconds). Ctrl-C
    /// interrupts it. In plan mode it does not wait and prints what it skipped.
    ///
    /// # Example
    /// ```rhai
    /// sleep("10ms");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn sleep(context: NativeCallContext, duration: Dynamic) -> Result<(), Box<EvalAltResult>> {
        let session = Session::of(&context)?;
        let duration = duration_argument("sleep", &duration)?;
        if session.is_plan() {
            session.out.info(&format!(
                "sleep {} (plan: skipped)",
                crate::output::format_duration(duration)
            ));
            return Ok(());
        }
        session
            .block_on(async move { tokio::time::sleep(duration).await })
            .map_err(raise)
    }

    /// Waits for a number of seconds. Replaces Rhai's built-in `sleep`, which Ctrl-C could not
    /// interrupt.
    ///
    /// # Example
    /// ```rhai
    /// sleep(0);
    /// ```
    #[rhai_fn(name = "sleep", return_raw)]
    pub fn sleep_seconds(
        context: NativeCallContext,
        seconds: i64,
    ) -> Result<(), Box<EvalAltResult>> {
        sleep(context, Dynamic::from_int(seconds))
    }

    /// Waits for a fractional number of seconds, interruptible by Ctrl-C.
    ///
    /// # Example
    /// ```rhai
    /// sleep(0.01);
    /// ```
    #[rhai_fn(name = "sleep", return_raw)]
    pub fn sleep_fractional_seconds(
        context: NativeCallContext,
        seconds: f64,
    ) -> Result<(), Box<EvalAltResult>> {
        sleep(context, Dynamic::from_float(seconds))
    }

    /// Asks a yes/no question on the terminal and returns the answer. With `--yes` it answers
    /// yes without asking; without a terminal (and without `--yes`) it fails rather than guess.
    ///
    /// # Example
    /// ```rhai,no_run
    /// if confirm("Shift 25% of traffic to the target?") { info("shifting"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn confirm(context: NativeCallContext, question: &str) -> Result<bool, Box<EvalAltResult>> {
        let session = Session::of(&context)?;
        if session.settings.assume_yes {
            session.out.info(&format!("{question} yes (--yes)"));
            return Ok(true);
        }
        let answer = ask(&session, &format!("{question} [y/N] "))?;
        Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
    }

    /// Asks the user to type `expected` (e.g. a cluster name) before something destructive.
    /// `--yes` alone does not answer it: without a terminal the name must be given as
    /// `--set CONFIRM=<expected>`, so a run started with `--yes` cannot destroy what nobody
    /// named.
    ///
    /// # Example
    /// ```rhai,no_run
    /// if confirm_typed("Type the source cluster's name to delete it", "aks-source") { info("deleting"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn confirm_typed(
        context: NativeCallContext,
        question: &str,
        expected: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        let session = Session::of(&context)?;
        let given = session
            .params
            .get("CONFIRM", Some(&Dynamic::UNIT))
            .map_err(raise)?;
        if !given.is_unit() {
            let given = given.to_string();
            session
                .out
                .info(&format!("{question}: `{given}` (CONFIRM)"));
            return Ok(given == expected);
        }
        if session.settings.assume_yes || !session.settings.interactive {
            return Err(raise(crate::error::Error::Other {
                message: format!(
                    "{question}: a typed confirmation needs a terminal or the name itself (--yes does not answer it): rerun with --set CONFIRM={expected}"
                ),
            }));
        }
        let answer = ask(&session, &format!("{question} (type `{expected}`): "))?;
        Ok(answer.trim() == expected)
    }

    /// A duration (`"90s"`, `"2m"`, `"500ms"`) in seconds.
    ///
    /// # Example
    /// ```rhai
    /// if duration_seconds("1m30s") != 90.0 { throw "arithmetic"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn duration_seconds(duration: Dynamic) -> Result<f64, Box<EvalAltResult>> {
        duration_argument("duration_seconds", &duration).map(|d| d.as_secs_f64())
    }

    /// Today's date in the local time zone, as `YYYY-MM-DD`.
    ///
    /// # Example
    /// ```rhai
    /// if today().len() != 10 { throw today(); }
    /// ```
    pub fn today() -> String {
        jiff::Zoned::now().date().to_string()
    }

    /// True when questions can be asked: standard input is a terminal.
    ///
    /// # Example
    /// ```rhai
    /// if is_interactive() { info("answers will be asked for"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn is_interactive(context: NativeCallContext) -> Result<bool, Box<EvalAltResult>> {
        let session = Session::of(&context)?;
        Ok(session.settings.interactive && std::io::stdin().is_terminal())
    }

    /// Records data for the run report under a kind (`"shift-step"` feeds the split chart),
    /// tagged with the step that is running.
    ///
    /// # Example
    /// ```rhai
    /// record_event("note", #{message: "prechecks passed"});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn record_event(
        context: NativeCallContext,
        kind: &str,
        data: Dynamic,
    ) -> Result<(), Box<EvalAltResult>> {
        let session = Session::of(&context)?;
        let data = crate::session::convert::from_dynamic(&data).map_err(|message| {
            raise(Error::InvalidArgument {
                function: "record_event".into(),
                message,
            })
        })?;
        // Into the report and, in a run, the journal at once (a resumed run reads it back).
        session.push_event(kind, data);
        Ok(())
    }

    /// The data of every `record_event(kind, …)` so far, oldest first: in a run, those of this
    /// run and of the runs it resumes (from the journal); in the REPL, this session's.
    ///
    /// # Example
    /// ```rhai
    /// record_event("note", #{weight: 10, passed: true});
    /// let passed = recorded_events("note").filter(|e| e.passed);
    /// if passed.len() != 1 || passed[0].weight != 10 { throw passed; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn recorded_events(
        context: NativeCallContext,
        kind: &str,
    ) -> Result<Array, Box<EvalAltResult>> {
        let session = Session::of(&context)?;
        Ok(session
            .events(kind)
            .into_iter()
            .map(crate::session::convert::to_dynamic)
            .collect())
    }

    /// True when mutations are dry runs (`run --plan`, or `:plan on` in the REPL).
    ///
    /// # Example
    /// ```rhai
    /// if is_plan() { info("nothing will change"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn is_plan(context: NativeCallContext) -> Result<bool, Box<EvalAltResult>> {
        Ok(Session::of(&context)?.is_plan())
    }

    /// Formats rows (maps) as an aligned text table with the given columns; missing cells are
    /// blank.
    ///
    /// # Example
    /// ```rhai
    /// let rows = [#{kind: "WasmPlugin", severity: "blocker"}, #{kind: "EnvoyFilter", severity: "warning"}];
    /// info(table(rows, ["severity", "kind"]));
    /// ```
    pub fn table(rows: Array, columns: Array) -> String {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                let map = row
                    .read_lock::<Map>()
                    .map(|m| m.clone())
                    .unwrap_or_default();
                columns
                    .iter()
                    .map(|c| map.get(c.as_str()).map(cell_text).unwrap_or_default())
                    .collect()
            })
            .collect();
        crate::output::format_table(&columns, &cells)
    }
}

fn record_step(
    session: &Session,
    number: usize,
    title: &str,
    elapsed: Duration,
    outcome: StepOutcome,
) {
    session
        .record
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .steps
        .push(StepRecord {
            number,
            title: title.to_string(),
            elapsed,
            outcome,
        });
}

fn cell_text(value: &Dynamic) -> String {
    if value.is_unit() {
        String::new()
    } else {
        value.to_string()
    }
}

/// Reads one answer from the terminal.
fn ask(session: &Session, prompt: &str) -> Result<String, Box<EvalAltResult>> {
    if !session.settings.interactive || !std::io::stdin().is_terminal() {
        return Err(raise(Error::Other {
            message: format!(
                "`{}` needs an answer but there is no terminal: rerun with `--yes` to accept",
                prompt.trim_end().trim_end_matches(':')
            ),
        }));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{prompt}");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| {
            raise(Error::Other {
                message: format!("cannot read the answer: {e}"),
            })
        })?;
    Ok(answer)
}
