//! The command line: version, list, check, doc, completions, definitions, parameters, Ctrl-C.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::test::{Test, meshshift_binary};

#[test]
fn version() {
    Test::new()
        .args(&["--version"])
        .stdout(&format!("meshshift {}\n", env!("CARGO_PKG_VERSION")))
        .run();
}

#[test]
fn list_shows_summary_and_parameters() {
    Test::new()
        .write(
            "runbooks/shift.rhai",
            "//! Shift traffic by hand.\n//! More text.\nlet c = param(\"CLUSTER\");\nlet steps = param(\"STEPS\", [10, 50]);\nlet c2 = param(\"CLUSTER\");\n",
        )
        .write("runbooks/broken.rhai", "//! Broken on purpose.\nlet = ;\n")
        .write("runbooks/notes.txt", "not a runbook")
        .args(&["list"])
        .stdout(
            "
            runbooks/broken.rhai
                Broken on purpose.
                does not compile: syntax error: expecting name of a variable (runbooks/broken.rhai:2:5)
            runbooks/shift.rhai
                Shift traffic by hand.
                parameters: CLUSTER, STEPS=[10, 50]
            ",
        )
        .run();
}

#[test]
fn check_finds_typos_without_running_anything() {
    Test::new()
        .write("lib/util.rhai", "fn double(x) { x * 2 }\n")
        .write(
            "runbook.rhai",
            "import \"lib/util\" as util;\nfail(\"this must not run\");\nlet x = util::double(2);\nlet y = util::tripple(2);\n",
        )
        .args(&["check", "runbook.rhai"])
        .status(1)
        .stderr(
            "
            error: unknown function `util::tripple`
             --> runbook.rhai:4:15
              |
            4 | let y = util::tripple(2);
              |               ^^^^^^^
            ",
        )
        .run();
}

#[test]
fn check_passes_valid_runbooks_and_their_imports() {
    Test::new()
        .write("lib/util.rhai", "fn double(x) { x * 2 }\n")
        .write("a.rhai", "import \"lib/util\" as util;\nimport \"assert\" as assert;\nassert::eq(util::double(2), 4, \"double\");\n")
        .write("b.rhai", "let f = |x| x + 1;\nlet objects = parse_yaml_all(\"a: 1\");\nfor o in objects { info(o.a); }\nf.call(1);\n")
        .args(&["check", "a.rhai", "b.rhai"])
        .stdout("ok  a.rhai\nok  b.rhai\n")
        .run();
}

#[test]
fn check_reports_a_missing_module() {
    Test::new()
        .write("a.rhai", "import \"asert\" as assert;\n")
        .args(&["check", "a.rhai"])
        .status(1)
        .stderr_contains(&["error: module `asert` not found", "did you mean `assert`?"])
        .run();
}

#[test]
fn doc_shows_one_function_with_its_example() {
    Test::new()
        .args(&["doc", "strip"])
        .stdout_contains(&["### `strip(value: any) -> any`", "server owns", "```rhai"])
        .run();
}

#[test]
fn doc_of_an_unknown_name_suggests() {
    Test::new()
        .args(&["doc", "lod"])
        .status(1)
        .stderr("error: unknown function `lod`\n  = help: did you mean `load`?\n")
        .run();
}

#[test]
fn completions_and_definitions() {
    let outcome = Test::new().args(&["completions", "bash"]).run();
    assert!(
        outcome.stdout.contains("_meshshift()"),
        "{}",
        &outcome.stdout[..200.min(outcome.stdout.len())]
    );
    let outcome = Test::new()
        .args(&["definitions", "--dir", "defs"])
        .stdout_regex(r"^wrote \d+ definition files to defs\n$")
        .run();
    let written: Vec<String> = std::fs::read_dir(outcome.dir.path().join("defs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        written.iter().any(|f| f.ends_with(".d.rhai")),
        "{written:?}"
    );
    let all: String = written
        .iter()
        .map(|f| std::fs::read_to_string(outcome.dir.path().join("defs").join(f)).unwrap())
        .collect();
    assert!(
        all.contains("fn load(path: string) -> Objects;"),
        "no load() definition"
    );
}

#[test]
fn parameters_come_from_set_then_environment_then_default() {
    Test::new()
        .runbook(
            r#"
            info(param("A", "default-a"));
            info(param("B", 1) + 1);
            info(param("C", false));
            info(param("D", [1, 2]));
            "#,
        )
        .args(&["--set", "A=from-set"])
        .env("A", "from-env")
        .env("B", "41")
        .stdout("from-set\n42\nfalse\n[1, 2]\n")
        .run();
}

#[test]
fn unused_set_parameters_are_reported() {
    Test::new()
        .runbook("info(param(\"USED\"));")
        .args(&["--set", "USED=1", "--set", "UNUSED=2"])
        .stdout("1\n")
        .stderr("warning: `--set UNUSED=…` was never read by the runbook\n")
        .run();
}

#[test]
fn print_and_steps_go_to_our_output() {
    Test::new()
        .runbook(
            r#"
            print("top");
            step("outer", || {
                print("inside");
                step("inner", || warn("careful"));
            });
            "#,
        )
        .stdout_regex(
            r"^top\n==> \[1\] outer\n    inside\n    ==> \[2\] inner\n        warning: careful\n        done in \d+\.\d\ds\n    done in \d+\.\d\ds\nrun \d{8}-\d{6}-\d{3}-runbook succeeded after \d+\.\d\ds \(report: \.meshshift/runs/\d{8}-\d{6}-\d{3}-runbook/report\.md\)\n$",
        )
        .run();
}

#[test]
fn confirm_without_terminal_refuses_and_yes_accepts() {
    Test::new()
        .runbook(r#"if confirm("Shift 25%?") { info("shifted"); }"#)
        .status(1)
        .stderr_contains(&["error: `Shift 25%? [y/N]` needs an answer but there is no terminal: rerun with `--yes` to accept"])
        .run();
    Test::new()
        .runbook(r#"if confirm("Shift 25%?") { info("shifted"); }"#)
        .args(&["--yes"])
        .stdout("Shift 25%? yes (--yes)\nshifted\n")
        .run();
}

#[test]
fn a_typed_confirmation_needs_the_name_itself_not_yes() {
    const DELETE: &str =
        r#"if confirm_typed("Delete prod", "prod") { info("deleted"); } else { info("kept"); }"#;
    Test::new()
        .runbook(DELETE)
        .args(&["--yes"])
        .status(1)
        .stderr_contains(&[
            "a typed confirmation needs a terminal or the name itself (--yes does not answer it): rerun with --set CONFIRM=prod",
        ])
        .run();
    Test::new()
        .runbook(DELETE)
        .args(&["--yes", "--set", "CONFIRM=prod"])
        .stdout("Delete prod: `prod` (CONFIRM)\ndeleted\n")
        .run();
    Test::new()
        .runbook(DELETE)
        .args(&["--set", "CONFIRM=staging"])
        .stdout("Delete prod: `staging` (CONFIRM)\nkept\n")
        .run();
}

#[test]
fn ctrl_c_stops_a_running_script_cleanly() {
    // Both the text form and the integer form (which shadows Rhai's uninterruptible built-in).
    for wait in ["sleep(\"30s\")", "sleep(30)"] {
        interrupt_during(wait);
    }
}

fn interrupt_during(wait: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wait.rhai"),
        format!("info(\"waiting\");\n{wait};\ninfo(\"not reached\");\n"),
    )
    .unwrap();
    let mut child = Command::new(meshshift_binary())
        .args(["run", "wait.rhai"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the script is inside sleep(), then interrupt.
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "still running 5 s after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr: {stderr}");
    assert_eq!(stdout, "waiting\n");
    assert!(stderr.contains("error: interrupted"), "{stderr}");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "took {:?}",
        sent.elapsed()
    );
}
