//! Runs keep a journal and a report; `resume` continues a failed run without redoing its
//! finished steps; `--plan` and `exec`.

use crate::test::Test;

const RUNBOOK: &str = r#"
//! Two steps; the second fails while FAIL is set in the environment.
let answer = step("compute", || { info("computing"); 41 });
let total = step("check", || {
    if param("FAIL", false) { fail("the check failed"); }
    answer + 1
});
info(`total ${total}`);
"#;

#[test]
fn a_failed_run_resumes_without_redoing_finished_steps() {
    let first = Test::new()
        .runbook(RUNBOOK)
        .env("FAIL", "true")
        .status(1)
        .run();
    assert!(first.stdout.contains("computing"), "{}", first.stdout);
    let summary = first.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        summary.starts_with("run ")
            && summary.contains(" failed after ")
            && summary.contains("continue it with `meshshift resume`"),
        "{summary}"
    );
    assert!(
        first.stderr.contains("error: the check failed"),
        "{}",
        first.stderr
    );
    let runs = first.dir.path().join(".meshshift/runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(report.contains("| 1 | compute | done |"), "{report}");
    assert!(
        report.contains("| 2 | check | failed: the check failed |"),
        "{report}"
    );
    assert!(
        std::fs::read_to_string(run_dir.join("report.html"))
            .unwrap()
            .contains("<td>compute</td>")
    );

    // The same directory, FAIL no longer set: step one is replayed, step two runs.
    let resumed = std::process::Command::new(crate::test::meshshift_binary())
        .arg("resume")
        .current_dir(first.dir.path())
        .env("NO_COLOR", "1")
        .env("MESHSHIFT_STATE_DIR", first.dir.path().join(".meshshift"))
        .env_remove("FAIL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        resumed.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(
        !stdout.contains("computing"),
        "the finished step ran again:\n{stdout}"
    );
    assert!(stdout.contains("skipped: done in run "), "{stdout}");
    assert!(stdout.contains("total 42"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or_default()
            .contains(" succeeded after "),
        "{stdout}"
    );
}

#[test]
fn resume_without_runs_says_so() {
    Test::new()
        .args(&["resume"])
        .status(1)
        .stderr_contains(&["error: no runs to resume in `"])
        .run();
}

#[test]
fn exec_runs_only_allowed_programs_and_not_in_plan_mode() {
    Test::new()
        .runbook(r#"let r = exec("echo", ["hello"]); let out = r.stdout; out.trim(); print(out); print(r.status);"#)
        .args(&["--allow-exec", "echo"])
        .stdout("$ echo hello\nhello\n0\n")
        .run();
    Test::new()
        .runbook(r#"exec("echo", ["hello"]);"#)
        .status(1)
        .stderr_contains(&["error: running `echo` is not allowed: rerun with `--allow-exec echo`"])
        .run();
    // In plan mode only the host's read-only commands run; a script saying `mutates: false`
    // does not make a command read-only.
    Test::new()
        .runbook(r#"let r = exec("echo", ["changed"]); print(r.planned); let v = exec("echo", ["read"], #{mutates: false}); print(v.planned);"#)
        .args(&["--allow-exec", "echo", "--plan"])
        .stdout("$ echo changed   (plan: not run)\ntrue\n$ echo read   (plan: not run)\ntrue\n")
        .run();
    Test::new()
        .runbook(r#"let r = exec("false", []); print(r.status);"#)
        .args(&["--allow-exec", "false"])
        .stdout("$ false\n1\n")
        .run();
}

const SIM_RUNBOOK: &str = r#"
//! Writes on a simulated cluster, then stops while FAIL is set.
let c = cluster("sim-source");
let uid = step("write", || {
    c.apply(#{apiVersion: "v1", kind: "ConfigMap", metadata: #{name: "kept", namespace: "default"}, data: #{a: "1"}});
    c.get("Namespace", "kube-system").metadata.uid
});
step("check", || {
    if param("FAIL", false) { fail("stopped"); }
    if c.get("ConfigMap", "kept", "default") == () { fail("the ConfigMap written before the resume is gone"); }
    let now = c.get("Namespace", "kube-system").metadata.uid;
    if now != uid { fail(`another cluster: kube-system ${now}, was ${uid}`); }
    info("the same simulated clusters");
});
"#;

/// `resume` in the directory of `first`, with FAIL no longer set.
fn resume_in(first: &crate::test::Outcome) -> std::process::Output {
    std::process::Command::new(crate::test::meshshift_binary())
        .arg("resume")
        .current_dir(first.dir.path())
        .env("NO_COLOR", "1")
        .env("MESHSHIFT_STATE_DIR", first.dir.path().join(".meshshift"))
        .env_remove("FAIL")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn resume_of_a_simulated_run_continues_on_its_saved_clusters() {
    let first = Test::new()
        .runbook(SIM_RUNBOOK)
        .args(&["--sim", "--yes"])
        .env("FAIL", "true")
        .status(1)
        .run();
    let resumed = resume_in(&first);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&resumed.stdout),
        String::from_utf8_lossy(&resumed.stderr),
    );
    assert!(resumed.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "simulated clusters sim-source and sim-target restored from the resumed run and started"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("the same simulated clusters"), "{stdout}");
}

#[test]
fn resume_of_a_simulated_run_without_saved_clusters_is_refused() {
    let first = Test::new()
        .runbook(SIM_RUNBOOK)
        .args(&["--sim", "--yes"])
        .env("FAIL", "true")
        .status(1)
        .run();
    // As when the run was killed: its clusters never saved their objects.
    let runs = first.dir.path().join(".meshshift/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(run.join("sim/sim-source.json")).unwrap();
    let resumed = resume_in(&first);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot resume on the same simulated clusters:")
            && stderr.contains("sim/sim-source.json was not saved")
            && stderr.contains("start a new run with --sim"),
        "{stderr}"
    );
}
