//! Library log lines and errors through the binary: no ANSI codes when the output is not a
//! terminal (or `NO_COLOR` is set), and an error said once.

use std::process::Command;

use crate::test::{Test, meshshift_binary};

/// Lists the source's namespaces against a simulated pair whose source fails every client
/// request with 500, 503 or 429.
fn failing_run(test: &Test, extra_env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(meshshift_binary());
    command
        .current_dir(test.path())
        .args(["run", "list.rhai", "--sim", "--yes"])
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env("MESHSHIFT_SIM_FAULTS_SIM_SOURCE", "api-error-rate=1 seed=7")
        .stdin(std::process::Stdio::null());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let output = command.output().expect("meshshift runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn test_dir() -> Test {
    Test::new().write(
        "list.rhai",
        "let c = cluster(\"sim-source\");\nprint(c.list(\"Namespace\", #{}).len());\n",
    )
}

#[test]
fn a_failing_cluster_is_reported_once_without_colour_codes() {
    let test = test_dir();
    let (code, stdout, stderr) = failing_run(&test, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stdout}{stderr}"
    );
    // kube's own per-request lines ("failed with status 503") stay out: meshshift retried
    // those requests and says what failed once.
    assert!(!stderr.contains("failed with status"), "{stderr}");
    let first = stderr
        .lines()
        .find(|line| line.starts_with("error"))
        .unwrap_or_default();
    assert!(
        first.starts_with("error: cluster `sim-source`: cannot reach https://127.0.0.1:"),
        "{stderr}"
    );
    let cause = first.rsplit(": ").next().unwrap_or_default();
    assert_eq!(
        stderr.matches(cause).count(),
        1,
        "{cause:?} repeated in:\n{stderr}"
    );
}

#[test]
fn library_log_lines_asked_for_with_rust_log_carry_no_colour_codes() {
    let test = test_dir();
    let (code, stdout, stderr) = failing_run(&test, &[("RUST_LOG", "debug")]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("DEBUG hyper") || stderr.contains("DEBUG kube"),
        "library lines shown when asked for: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}
