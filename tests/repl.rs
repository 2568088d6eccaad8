//! `meshshift repl`: on a pseudo-terminal (state across inputs, multi-line input, completion,
//! Ctrl-C) and from a pipe (line by line, errors, exit status), `:help`, and `:save` producing
//! a runbook that `check` and `run` accept.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::pty::Pty;
use crate::test::{Test, meshshift_binary, required_env};

/// A fresh prompt: line redraws while typing show the prompt too, but never after a newline.
const PROMPT: &str = "\nmeshshift> ";

fn repl(dir: &Path, env: &[(&str, &str)]) -> Pty {
    let mut pty = Pty::spawn(dir, &["repl"], env);
    pty.expect(PROMPT);
    eprintln!("repl start-up to prompt: {:?}", pty.started.elapsed());
    pty
}

#[test]
fn functions_persist_and_blocks_continue_across_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = repl(dir.path(), &[]);
    pty.send("fn double(x) { x * 2 }\r");
    pty.expect(PROMPT);
    pty.send("let base = double(20);\r");
    pty.expect(PROMPT);
    pty.send("double(base + 1)\r");
    // Results are computed, never typed, so the echo cannot match them.
    pty.expect("82");
    pty.expect(PROMPT);
    pty.send("if double(1) == 2 {\r");
    pty.send("  print(\"multi\" + \"-line ok\");\r");
    pty.send("}\r");
    pty.expect("multi-line ok");
    pty.expect(PROMPT);
    pty.send("let a = ;\r");
    pty.expect("error: syntax error");
    pty.expect("^");
    pty.expect(PROMPT);
    pty.send(":history\r");
    pty.expect("   1  fn double(x) { x * 2 }");
    pty.expect("   4  if double(1) == 2 {");
    pty.expect(PROMPT);
    pty.send("\x04");
    assert_eq!(pty.wait_exit(), 0);
    let history = std::fs::read_to_string(dir.path().join(".meshshift/repl_history")).unwrap();
    assert!(history.contains("fn double(x) { x * 2 }"), "{history}");
}

#[test]
fn tab_completes_host_functions_and_map_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = repl(dir.path(), &[]);
    // A unique completion fills in the name; evaluating it shows what the line held.
    pty.send("spl\t\r");
    pty.expect("unknown variable `split_check`");
    pty.expect(PROMPT);
    pty.send("let pod = #{metadata: #{name: \"reviews-v1\", labels: #{app: \"reviews\"}}};\r");
    pty.expect(PROMPT);
    pty.send("pod.metadata.lab\t.app + \"!\"\r");
    pty.expect("reviews!");
    pty.expect(PROMPT);
}

#[test]
#[ignore = "needs MESHSHIFT_REAL_KUBECONFIG: a real kube-apiserver (.ci/run starts one)"]
fn tab_completes_namespaces_from_a_real_api_server() {
    let kubeconfig = required_env(
        "MESHSHIFT_REAL_KUBECONFIG",
        ".ci/run starts a real kube-apiserver and sets it",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut pty = repl(dir.path(), &[("KUBECONFIG", &kubeconfig)]);
    // Contexts come from the kubeconfig.
    pty.send("let c = cluster(\"real-sou\t\")\r");
    pty.expect(PROMPT);
    pty.send(":clusters\r");
    pty.expect("https://127.0.0.1:");
    pty.expect(PROMPT);
    // A handle's properties and methods complete after `.`.
    pty.send("c.ident\t.server.len() > 8\r");
    pty.expect("true");
    pty.expect(PROMPT);
    pty.send("c.wait_roll\t");
    pty.expect("wait_rollout");
    pty.send("\x03");
    pty.expect(PROMPT);
    // Namespaces, kinds and object names come from the server; a fetch slower than the
    // completion's wait answers on a later Tab.
    pty.send("c.pods(\"kube-pub");
    tab_until(&mut pty, "kube-public");
    pty.send("\").len()\r");
    pty.expect(PROMPT);
    pty.send("c.get(\"Namesp");
    tab_until(&mut pty, "Namespace");
    pty.send("\", \"kube-node-le");
    tab_until(&mut pty, "kube-node-lease");
    pty.send("\").metadata.name.len()\r");
    // `kube-node-lease` has 15 characters.
    pty.expect("15");
    pty.expect(PROMPT);
    assert!(!pty.plain().contains("error"), "{}", pty.plain());
}

/// Presses Tab until `text` shows up (the cache may still be fetching).
fn tab_until(pty: &mut Pty, text: &str) {
    for _ in 0..50 {
        pty.send("\t");
        if pty.wait_for(text, Duration::from_millis(200)) {
            return;
        }
    }
    panic!("Tab never completed {text:?}\n{}", pty.plain());
}

#[test]
fn ctrl_c_stops_a_sleep_and_returns_to_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = repl(dir.path(), &[]);
    pty.send("let kept = 7;\r");
    pty.expect(PROMPT);
    pty.send("print(\"sleep\" + \"ing\"); sleep(30); print(\"not \" + \"reached\");\r");
    pty.expect("sleeping");
    // Give the input time to reach `sleep` (print and sleep are one input, so it is close).
    std::thread::sleep(Duration::from_millis(200));
    let interrupted = std::time::Instant::now();
    pty.send("\x03");
    pty.expect("error: interrupted");
    pty.expect(PROMPT);
    let back = interrupted.elapsed();
    eprintln!("Ctrl-C to prompt: {back:?}");
    assert!(back < Duration::from_secs(1), "took {back:?}");
    assert!(!pty.plain().contains("not reached"));
    // The session goes on with its state.
    pty.send("kept * 6\r");
    pty.expect("42");
    pty.expect(PROMPT);
    // Ctrl-C at the prompt clears the line.
    pty.send("this is not rhai\x03");
    pty.expect(PROMPT);
    pty.send("kept + 1\r");
    pty.expect("8");
    pty.expect(PROMPT);
}

#[test]
fn piped_input_runs_line_by_line_and_fails_at_the_end() {
    Test::new()
        .args(&["repl"])
        .stdin(
            "let a = 1;\nundefined_thing\nprint(a + 1)\nlet m = [1,\n  2];\nm.len()\nfn f(x) {\n  x * 10\n}\nf(m[1])\n",
        )
        .status(1)
        .stdout("2\n2\n20\n")
        .stderr(
            "
            error: unknown variable `undefined_thing`
             --> <input 2>:1:1
              |
            1 | undefined_thing
              | ^^^^^^^^^^^^^^^
            error: 1 of 7 inputs failed
            ",
        )
        .run();
}

#[test]
fn piped_input_that_all_succeeds_exits_zero_and_prints_objects_readably() {
    Test::new()
        .args(&["repl"])
        .stdin(concat!(
            "let objects = parse_manifests(\"apiVersion: v1\\nkind: Secret\\nmetadata: {name: db, namespace: app}\\nstringData: {password: hunter2}\\n---\\napiVersion: apps/v1\\nkind: Deployment\\nmetadata: {name: web, namespace: app}\\nspec: {replicas: 3}\\nstatus: {readyReplicas: 2}\\n\");\n",
            "objects[0]\n",
            "objects\n",
            "\"plain text\"\n",
        ))
        .stdout(
            "
            apiVersion: v1
            kind: Secret
            metadata:
              name: db
              namespace: app
            stringData:
              password: '***'
            KIND        NAMESPACE  NAME  STATUS
            Secret      app        db
            Deployment  app        web   2/3 ready
            plain text
            ",
        )
        .run();
}

#[test]
fn help_shows_a_functions_signature_and_example() {
    Test::new()
        .args(&["repl"])
        .stdin(":help sample\n:help\n")
        .stdout_contains(&[
            "### `sample(url: string, options: map) -> map`",
            "# Example",
            "let s = sample(\"http://",
            ":run STEP",
            "up to and including",
        ])
        .run();
}

#[test]
fn saved_sessions_check_and_run() {
    let outcome = Test::new()
        .write("lib.rhai", "fn triple(x) { x * 3 }\nstep(\"first\", || print(\"step one\"));\nstep(\"second\", || print(\"step two\"));\n")
        .args(&["repl", "lib.rhai"])
        .stdin(concat!(
            "let base = triple(2);\n",
            "fn describe(n) {\n  `n is ${n}`\n}\n",
            "no_such_function(base)\n",
            "#{kind: \"ConfigMap\", metadata: #{name: \"x\"}}\n",
            "print(describe(base + 1))\n",
            ":steps\n",
            ":run second\n",
            ":save saved.rhai\n",
        ))
        .status(1)
        .stdout_contains(&[
            "n is 7",
            "1  first  (line 2)",
            "2  second  (line 3)",
            "step one",
            "step two",
            "saved ",
        ])
        .run();
    let dir = outcome.dir.path();
    let saved = std::fs::read_to_string(dir.join("saved.rhai")).unwrap();
    assert!(
        saved.starts_with("//! Saved from a meshshift REPL session"),
        "{saved}"
    );
    assert!(!saved.contains("no_such_function"), "{saved}");
    assert!(saved.contains("fn triple(x)"), "{saved}");
    let check = meshshift(dir, &["check", "saved.rhai"]);
    assert_eq!(check.0, 0, "{saved}\n{}", check.2);
    let run = meshshift(dir, &["run", "saved.rhai"]);
    assert_eq!(run.0, 0, "{saved}\n{}", run.2);
    // The runbook's statements that `:run` executed are part of the session, after the inputs
    // before them.
    let order: Vec<Option<usize>> = ["n is 7", "step one", "step two"]
        .iter()
        .map(|text| run.1.find(text))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", run.1);
}

#[test]
fn sim_starts_both_clusters_sets_their_parameters_and_stops_them_at_exit() {
    let outcome = Test::new()
        .args(&["repl", "--sim"])
        .stdin(
            "let source = cluster(param(\"SOURCE_CLUSTER\"));\n\
             source.get(\"Namespace\", \"istio-system\").metadata.name + \"!\"\n\
             let target = cluster(param(\"TARGET_CLUSTER\"));\n\
             target.name + \"?\"\n\
             exec(\"az\", [\"aks\", \"mesh\", \"get-revisions\", \"--location\", param(\"LOCATION\")]).status\n",
        )
        .stdout_contains(&[
            "simulated clusters sim-source and sim-target started",
            "istio-system!",
            "sim-target?",
        ])
        .run();
    // `az` runs the simulated CLI, which answers this command.
    assert!(
        outcome.stdout.lines().any(|line| line == "0"),
        "{}",
        outcome.stdout
    );
    // The API servers stop when the REPL ends: nothing listens on the kubeconfig's ports.
    let state = outcome.dir.path().join(".meshshift");
    let sim_dir = std::fs::read_dir(&state)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("repl-sim-")
        })
        .expect("a repl-sim state directory");
    let kubeconfig = std::fs::read_to_string(sim_dir.join("sim/kubeconfig")).unwrap();
    let servers: Vec<&str> = kubeconfig
        .lines()
        .filter_map(|line| line.trim().strip_prefix("server: "))
        .collect();
    assert_eq!(servers.len(), 2, "{kubeconfig}");
    for server in servers {
        let address = server
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        assert!(
            std::net::TcpStream::connect(address).is_err(),
            "{server} still accepts connections after the REPL ended"
        );
    }
}

#[test]
fn sim_completes_namespaces_of_the_simulated_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = Pty::spawn(dir.path(), &["repl", "--sim"], &[]);
    pty.expect(PROMPT);
    pty.send("let c = cluster(\"sim-sou\t\")\r");
    pty.expect(PROMPT);
    pty.send("c.pods(\"istio-sys");
    tab_until(&mut pty, "istio-system");
    pty.send("\").len() > 0\r");
    pty.expect("true");
    pty.expect(PROMPT);
    pty.send("\x04");
    assert_eq!(pty.wait_exit(), 0);
}

/// Runs the binary in `dir`: (exit code, stdout, stderr).
fn meshshift(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(meshshift_binary())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `:run` of a later step straight after `:load`, then the next steps one `:run` at a time, with
/// an input of the user's own between them that reads the runbook's variables.
#[test]
fn runs_the_migration_step_by_step_from_a_pipe() {
    let runbook = crate::sim_env_support::repo_path("runbooks/migrate-oss-istio-to-aks.rhai");
    let outcome = Test::new()
        .args(&["repl", "--sim", "--set", "SOAK_SECONDS=0"])
        .stdin(&format!(
            ":load {runbook}\n:run Target\n`${{source.name}} -> ${{target_address.len() > 0}}`\n:run Copy\n:run Verify\n"
        ))
        .run();
    for title in [
        "Prechecks",
        "Target: the add-on",
        "Copy workloads",
        "Verify sidecar injection",
    ] {
        assert_eq!(
            outcome.stdout.matches(&format!("] {title}")).count(),
            1,
            "{title}\n{}",
            outcome.stdout
        );
    }
    assert!(
        outcome.stdout.contains("sim-source -> true"),
        "{}",
        outcome.stdout
    );
    assert!(!outcome.stderr.contains("Arc<"), "{}", outcome.stderr);
}

/// Types one input and waits for `shows` and then the next prompt.
#[track_caller]
fn step_through(pty: &mut Pty, input: &str, shows: &[&str]) {
    let started = std::time::Instant::now();
    pty.send(&format!("{input}\r"));
    for text in shows {
        pty.expect(text);
    }
    pty.expect(PROMPT);
    eprintln!("{input}: {:?}", started.elapsed());
}

/// Starts `repl --sim` on a terminal in `dir` with the shift's parameters.
fn sim_repl(dir: &Path, set: &[&str]) -> Pty {
    let mut args = vec!["repl", "--sim"];
    for setting in set {
        args.extend(["--set", setting]);
    }
    let mut pty = Pty::spawn(dir, &args, &[]);
    pty.expect(PROMPT);
    pty
}

/// `meshshift check` and then `meshshift run --sim` of a saved session in `dir`, against
/// fresh simulated clusters.
fn check_and_run_saved(dir: &Path, file: &str, set: &[&str]) {
    let saved = std::fs::read_to_string(dir.join(file)).unwrap();
    let check = meshshift(dir, &["check", file]);
    assert_eq!(check.0, 0, "{saved}\n{}", check.2);
    let mut args = vec!["run", file, "--sim", "--yes"];
    for setting in set {
        args.extend(["--set", setting]);
    }
    let started = std::time::Instant::now();
    let run = meshshift(dir, &args);
    assert_eq!(run.0, 0, "{saved}\n{}\n{}", run.1, run.2);
    eprintln!("meshshift run {file} --sim: {:?}", started.elapsed());
}

/// The migration as a person walks it in the REPL: `:load`, each step with `:run`, their own
/// inputs between the steps using the runbook's variables, Ctrl-C during the shift, the shift
/// continued, `:save`; the saved session checks and runs against fresh simulated clusters.
#[test]
fn walks_the_migration_one_step_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let runbook = crate::sim_env_support::repo_path("runbooks/migrate-oss-istio-to-aks.rhai");
    let mut pty = sim_repl(dir.path(), &["SOAK_SECONDS=2", "SAMPLE=60"]);
    step_through(&mut pty, &format!(":load {runbook}"), &["12 steps"]);
    step_through(
        &mut pty,
        ":steps",
        &[
            "Install the demo app  (line 28 of ",
            "10  Shift traffic to the target",
        ],
    );
    // The demo's set-up runs first: its steps are the runbook's too.
    step_through(
        &mut pty,
        ":run Prechecks",
        &["] Install the demo app", "] Prechecks", "done in"],
    );
    step_through(&mut pty, "`revision ${revision}`", &["revision asm-1-30"]);
    step_through(&mut pty, ":run Prechecks", &["already ran"]);
    step_through(
        &mut pty,
        ":run Target",
        &["] Target: the add-on", "done in"],
    );
    step_through(&mut pty, "target_address.split(\":\").len() * 10", &["20"]);
    step_through(&mut pty, ":run Copy", &["] Copy workloads", "done in"]);
    step_through(
        &mut pty,
        ":run Verify",
        &["] Verify sidecar injection", "done in"],
    );
    step_through(&mut pty, ":run Test", &["] Test the target", "done in"]);
    // The target's page, sampled by hand and attributed to the clusters.
    step_through(
        &mut pty,
        "let page = http_get(`http://${target_address}${app_path}`); `status ${page.status * 2}`",
        &["status 400"],
    );
    // (The sampling bar stays on its line: a result after it keeps the prompt on a fresh one.)
    step_through(
        &mut pty,
        "let s = sample(`http://${target_address}${app_path}`, #{count: 40, extract: \"bookinfo\"}); s.total * 2",
        &["80"],
    );
    step_through(
        &mut pty,
        "let split = attribute(s, #{source: source, target: target}, app_namespace); `on the source: ${split.source * 3}`",
        &["on the source: 0"],
    );
    step_through(
        &mut pty,
        "route_weights(source.get(\"VirtualService\", vs_name, app_namespace)).values()",
        &["[100]"],
    );
    // Ctrl-C during the shift stops it; the session goes on.
    pty.send(":run Shift\r");
    pty.expect("] Shift traffic to the target");
    pty.expect("Send 10% of traffic to the target? [y/N]");
    pty.send("y\r");
    std::thread::sleep(Duration::from_millis(300));
    pty.send("\x03");
    pty.expect("interrupted");
    pty.expect(PROMPT);
    step_through(&mut pty, "`still ${source.name}`", &["still sim-source"]);
    step_through(
        &mut pty,
        "route_weights(source.get(\"VirtualService\", vs_name, app_namespace))[`${temporary_host}:80`] < 100",
        &["true"],
    );
    // The shift verifies the weight it reached, then continues from it.
    pty.send(":run Shift\r");
    pty.expect("] Shift traffic to the target");
    pty.expect("already sends 10% to the target: verifying 10% before going on");
    for weight in [10, 25, 50, 100] {
        pty.expect(&format!("Send {weight}% of traffic to the target? [y/N]"));
        pty.send("y\r");
        pty.expect(&format!("{weight}%: "));
    }
    pty.expect("done in");
    pty.expect(PROMPT);
    step_through(&mut pty, ":run Hand", &["All traffic through"]);
    step_through(
        &mut pty,
        "route_weights(source.get(\"VirtualService\", vs_name, app_namespace))[`${temporary_host}:80`] * 2",
        &["200"],
    );
    step_through(
        &mut pty,
        ":run",
        &["migrate-oss-istio-to-aks.rhai ran to its end"],
    );
    step_through(&mut pty, ":run", &["has run to its end"]);
    step_through(&mut pty, ":save walk.rhai", &["saved "]);
    pty.send("\x04");
    assert_eq!(pty.wait_exit(), 0);
    assert!(!pty.plain().contains("Arc<"), "{}", pty.plain());
    check_and_run_saved(dir.path(), "walk.rhai", &["SOAK_SECONDS=0"]);
}

/// The rollback runbook walked the same way after a shift to 50%.
#[test]
fn walks_the_rollback_one_step_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let migration = crate::sim_env_support::repo_path("runbooks/migrate-oss-istio-to-aks.rhai");
    let rollback = crate::sim_env_support::repo_path("runbooks/rollback-traffic.rhai");
    let set = ["SOAK_SECONDS=0", "SAMPLE=60", "STEPS=50"];
    let mut pty = sim_repl(dir.path(), &set);
    step_through(&mut pty, &format!(":load {migration}"), &["12 steps"]);
    pty.send(":run Shift\r");
    pty.expect("Send 50% of traffic to the target? [y/N]");
    pty.send("y\r");
    pty.expect("50%: ");
    pty.expect("done in");
    pty.expect(PROMPT);
    step_through(&mut pty, &format!(":load {rollback}"), &["2 steps"]);
    step_through(
        &mut pty,
        ":steps",
        &[
            "1  Send everything back to the source  (line 27)",
            "2  Remove the ServiceEntry",
        ],
    );
    step_through(
        &mut pty,
        "route_weights(source.get(\"VirtualService\", vs_name, app_namespace)).len() * 10",
        &["20"],
    );
    step_through(
        &mut pty,
        ":run Send",
        &["] Send everything back", "done in"],
    );
    step_through(
        &mut pty,
        "route_weights(source.get(\"VirtualService\", \"bookinfo\", namespace)).values()",
        &["[100]"],
    );
    step_through(
        &mut pty,
        ":run Remove",
        &["] Remove the ServiceEntry", "done in"],
    );
    step_through(
        &mut pty,
        "`entry gone: ${source.get(\"ServiceEntry\", entry, namespace) == ()}`",
        &["entry gone: true"],
    );
    step_through(&mut pty, ":save rollback.rhai", &["saved "]);
    pty.send(":quit\r");
    assert_eq!(pty.wait_exit(), 0);
    check_and_run_saved(dir.path(), "rollback.rhai", &set);
}

/// What the property test does next.
#[derive(Debug, Clone)]
enum Action {
    Load(String),
    /// `:run STEP` (`:run!` with `again`); `None` runs to the end.
    Run(Option<String>, bool),
    Plan(bool),
    Input(&'static str),
}

/// Inputs of a user's own: the runbooks' variables read, captured by closures (which shares
/// them in the scope) and used in conditions, and a few mistakes.
const INPUTS: &[&str] = &[
    "source.name",
    "`${revision} ${target_address}`",
    "let weights = route_weights(source.get(\"VirtualService\", vs_name, app_namespace)); weights",
    "let keep = || [source, target, steps]; keep().len()",
    "let captured = || create_target; if create_target { 1 } else { 2 }",
    "let text = \"x\"; let f = || text; if text { 1 }",
    "attribute(sample(`http://${target_address}${app_path}`, #{count: 5, extract: \"bookinfo\"}), #{source: source, target: target}, app_namespace)",
    "let source = cluster(\"sim-source\");",
    "namespaces.len() + steps.len()",
    "undefined_variable + 1",
    "let broken = ;",
];

/// Random sequences of `:load`, `:run STEP` (any order, repeated, `:run!`), `:run`,
/// `:plan on|off` and inputs of the user's own over every shipped runbook, driven in-process on
/// simulated clusters: no sequence panics, and every error is a meshshift error that says what
/// the script did, naming no Rust type. Fixed seed and case budget.
#[test]
fn random_sessions_over_the_shipped_runbooks_never_panic() {
    use meshshift::engine::{self, Resolver, resolver::ResolveMode};
    use meshshift::repl::workspace::Workspace;
    use meshshift::session::{Params, Session, Settings};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const SEED: u64 = 19;
    const CASES: usize = 8;
    const ACTIONS: usize = 14;
    let mut runbooks: Vec<String> =
        std::fs::read_dir(crate::test::repository_root().join("runbooks"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "rhai"))
            .map(|path| path.to_string_lossy().into_owned())
            .collect();
    runbooks.sort();
    assert!(runbooks.len() >= 4, "{runbooks:?}");
    let mut rng = StdRng::seed_from_u64(SEED);
    let started = std::time::Instant::now();
    let mut counts = (0, 0);
    for case in 0..CASES {
        let env = crate::sim_env_support::TestEnv::start_with(|options| {
            meshshift::sim::EnvironmentOptions {
                executable: Some(meshshift_binary()),
                ..options
            }
        });
        let settings = Settings {
            kubeconfig: Some(env.kubeconfig()),
            state_dir: env.dir.path().join("state"),
            allow_exec: vec!["az".into()],
            exec_aliases: [("az".to_string(), env.env().az_command.clone())].into(),
            ..Settings::default()
        };
        let set: Vec<String> = ["SOAK_SECONDS=0", "SAMPLE=60", "STEPS=50,100"]
            .map(String::from)
            .to_vec();
        let mut params = Params::from_set_arguments(&set).unwrap();
        for (name, value) in [
            ("SOURCE_CLUSTER", "sim-source"),
            ("TARGET_CLUSTER", "sim-target"),
            ("SIMULATED", "true"),
            ("TARGET_RESOURCE_GROUP", "rg-simulated"),
            ("LOCATION", "simulated"),
        ] {
            params.set_default_value(name, value);
        }
        let session = Session::new(
            env.runtime.handle().clone(),
            settings,
            params,
            std::sync::Arc::new(meshshift::output::Output::buffer()),
        );
        let resolver = Resolver::new(ResolveMode::Evaluate, session.source_map());
        let engine = engine::build_engine(&session, resolver.clone());
        let mut workspace = Workspace::new(engine, session.clone(), resolver);
        let mut done: Vec<Action> = Vec::new();
        for _ in 0..ACTIONS {
            let steps: Vec<String> = workspace
                .loaded()
                .map(|l| l.steps.iter().map(|s| s.title.clone()).collect())
                .unwrap_or_default();
            let action = match rng.random_range(0..12) {
                // Every case starts with a runbook; every shipped one is the first of some case.
                _ if done.is_empty() => Action::Load(runbooks[case % runbooks.len()].clone()),
                0 => Action::Load(runbooks[rng.random_range(0..runbooks.len())].clone()),
                1..=6 if !steps.is_empty() => {
                    let pick = &steps[rng.random_range(0..steps.len())];
                    let step = match rng.random_range(0..10) {
                        // By number (some past the last), by a start of a title, or no step.
                        0 | 1 => (rng.random_range(0..steps.len() + 2) + 1).to_string(),
                        2 | 3 => pick.chars().take(5).collect(),
                        4 => "no such step".to_string(),
                        _ => pick.clone(),
                    };
                    Action::Run(Some(step), rng.random_bool(0.15))
                }
                1..=7 => Action::Run(None, false),
                8 => Action::Plan(rng.random_bool(0.3)),
                _ => Action::Input(INPUTS[rng.random_range(0..INPUTS.len())]),
            };
            done.push(action.clone());
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &action {
                    Action::Load(path) => workspace.load(Path::new(path)).map(|_| ()),
                    Action::Run(step, again) => {
                        workspace.run_to(step.as_deref(), *again).map(|_| ())
                    }
                    Action::Plan(on) => {
                        session.set_plan(*on);
                        Ok(())
                    }
                    Action::Input(text) => workspace.evaluate(text).map(|_| ()),
                }));
            let result = outcome
                .unwrap_or_else(|_| panic!("seed {SEED}, case {case}: panicked after {done:#?}"));
            match result {
                Ok(()) => counts.0 += 1,
                Err(error) => {
                    counts.1 += 1;
                    let shown = error.render(&meshshift::output::Style::detect(false));
                    for rust in ["Arc<", "RwLock", "alloc::", "core::", "rhai::", "Dynamic"] {
                        assert!(
                            !shown.contains(rust),
                            "seed {SEED}, case {case}: {shown}\nafter {done:#?}"
                        );
                    }
                }
            }
        }
    }
    eprintln!(
        "{CASES} cases of {ACTIONS} actions: {} succeeded, {} failed as meshshift errors, in {:?}",
        counts.0,
        counts.1,
        started.elapsed()
    );
}

#[test]
fn repl_results_never_show_a_planted_secret_value() {
    use base64::Engine as _;
    let password = "repl-planted-9f3e2a";
    let token = "repl-token-77ab21c";
    let outcome = Test::new()
        .args(&["repl", "--sim", "--set", &format!("API_TOKEN={token}")])
        .stdin(concat!(
            "let c = cluster(\"sim-source\");\n",
            "c.apply(#{apiVersion: \"v1\", kind: \"Secret\", metadata: #{name: \"planted\", namespace: \"default\"}, stringData: #{password: \"repl-planted-9f3e2a\"}});\n",
            "let s = c.get(\"Secret\", \"planted\", \"default\");\n",
            "s.data.password\n",
            "s.data\n",
            "#{nested: [s]}\n",
            "`it is ${s.data.password}`\n",
            "param(\"API_TOKEN\")\n",
            "[param(\"API_TOKEN\"), 1]\n",
        ))
        .run();
    let encoded = base64::engine::general_purpose::STANDARD.encode(password);
    for planted in [password, encoded.as_str(), token] {
        assert!(
            !outcome.stdout.contains(planted) && !outcome.stderr.contains(planted),
            "{planted} shown:\n{}\n{}",
            outcome.stdout,
            outcome.stderr
        );
    }
    // Each of the six results was shown, masked.
    assert!(
        outcome.stdout.matches("***").count() >= 6,
        "{}",
        outcome.stdout
    );
}
