//! Safe runs on the simulator: names that would change a request are refused before anything
//! is sent; secrets planted in a migrated namespace and given as parameters appear nowhere in
//! the output or the state directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;

use crate::sim_env_support::{TestEnv, guide_source_setup, meshshift, migrate, text};

/// Runs `script` with `args` and returns (success, stdout, stderr).
fn run_script(env: &TestEnv, script: &str, args: &[&str]) -> (bool, String, String) {
    let path = env.dir.path().join("script.rhai");
    std::fs::write(&path, script).unwrap();
    let path = path.to_string_lossy().into_owned();
    let mut all = vec!["run", path.as_str(), "--yes"];
    all.extend_from_slice(args);
    let output = meshshift(env, &all);
    let (stdout, stderr) = text(&output);
    (output.status.success(), stdout, stderr)
}

#[test]
fn names_that_would_change_the_request_are_refused_before_anything_is_sent() {
    let env = TestEnv::start();
    env.kubectl_ok(
        "sim-source",
        &["create", "configmap", "victim", "-n", "default"],
    );
    for name in ["victim#x", "victim?x=1", "victim/x", "../victim", "Victim"] {
        for plan in [true, false] {
            let script =
                format!("cluster(\"sim-source\").delete(\"ConfigMap\", {name:?}, \"default\");\n");
            let args: &[&str] = if plan { &["--plan"] } else { &[] };
            let (ok, stdout, stderr) = run_script(&env, &script, args);
            assert!(!ok, "{name} plan={plan}: succeeded\n{stdout}\n{stderr}");
            assert!(
                stderr.contains(&format!("invalid ConfigMap name `{name}`"))
                    && stderr.contains("nothing was sent"),
                "{name} plan={plan}:\n{stderr}"
            );
            assert!(!stdout.contains("deleted"), "{stdout}");
            env.kubectl_ok(
                "sim-source",
                &["get", "configmap", "victim", "-n", "default"],
            );
        }
    }
    // The same for a namespace, a get, a patch and an apply.
    for script in [
        r#"cluster("sim-source").delete("ConfigMap", "victim", "default#x");"#,
        r#"cluster("sim-source").get("ConfigMap", "victim#x", "default");"#,
        r#"cluster("sim-source").patch("ConfigMap", "victim#x", "default", #{data: #{a: "b"}});"#,
        r#"cluster("sim-source").apply(#{apiVersion: "v1", kind: "ConfigMap", metadata: #{name: "victim#x", namespace: "default"}});"#,
    ] {
        let (ok, stdout, stderr) = run_script(&env, script, &[]);
        assert!(!ok, "{script}: succeeded\n{stdout}\n{stderr}");
        assert!(
            stderr.contains("invalid") && stderr.contains("nothing was sent"),
            "{script}:\n{stderr}"
        );
    }
    let data = env.kubectl_ok(
        "sim-source",
        &[
            "get",
            "configmap",
            "victim",
            "-n",
            "default",
            "-o",
            "jsonpath={.data}",
        ],
    );
    assert_eq!(data.trim(), "", "the ConfigMap was patched: {data}");
    // A valid delete still works.
    let (ok, stdout, stderr) = run_script(
        &env,
        r#"cluster("sim-source").delete("ConfigMap", "victim", "default");"#,
        &[],
    );
    assert!(ok, "{stdout}\n{stderr}");
}

/// Every file below `dir`, with its mode.
fn files_below(dir: &Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::symlink_metadata(&path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push((path, mode));
        }
    }
    found
}

#[test]
fn planted_secrets_appear_nowhere_in_output_or_state() {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok("sim-source", args));
    env.az("aks mesh enable-ingress-gateway -g rg -n sim-target --ingress-gateway-type external");
    let password = "planted-password-6f1c";
    let token = "planted-token-93ab";
    let api_token = "planted-api-token-5d2e";
    let webhook = "planted-webhook-77c1";
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // kubectl apply also keeps the data in the last-applied annotation.
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-credentials\n  namespace: bookinfo\n\
         data:\n  token: {}\nstringData:\n  password: {password}\n",
        b64(token)
    );
    let applied = env.kubectl_stdin("sim-source", &["apply", "-f", "-"], &secret);
    assert!(applied.status.success(), "{:?}", text(&applied));

    let mut output = String::new();
    let mut collect = |run: std::process::Output| {
        let (stdout, stderr) = text(&run);
        output.push_str(&stdout);
        output.push_str(&stderr);
        (run.status.success(), stdout, stderr)
    };
    // A script that shows the Secret every way a runbook could.
    let script = env.dir.path().join("show.rhai");
    std::fs::write(
        &script,
        r#"
let source = cluster("sim-source");
let s = source.get("Secret", "db-credentials", "bookinfo");
print(s);
print(s.data.token);
info(`annotations: ${s.metadata.annotations}`);
print(diff(#{old: s}, #{old: source.get("ConfigMap", "kube-root-ca.crt", "bookinfo")}));
let hook = param("WEBHOOK", "", #{secret: true});
print(`hook=${hook} token=${param("API_TOKEN")}`);
step("return the secret", || [s, s.metadata.annotations, hook]);
step("fail with it", || throw `leaked ${hook} ${parse_json(to_json(s)).data.token}`);
"#,
    )
    .unwrap();
    let set_api = format!("API_TOKEN={api_token}");
    let set_hook = format!("WEBHOOK={webhook}");
    let (ok, stdout, stderr) = collect(meshshift(
        &env,
        &[
            "run",
            &script.to_string_lossy(),
            "--yes",
            "--set",
            &set_api,
            "--set",
            &set_hook,
        ],
    ));
    assert!(!ok, "the script throws at the end\n{stdout}\n{stderr}");
    assert!(stdout.contains("hook=*** token=***"), "{stdout}");
    // The migration, with a secret parameter.
    let quick = [
        "--set",
        "STEPS=100",
        "--set",
        "PROPAGATION=1s",
        "--set",
        "SOAK_SECONDS=0",
        "--set",
        &set_api,
    ];
    let (ok, stdout, stderr) = collect(migrate(&env, &quick));
    assert!(ok, "{stdout}\n{stderr}");
    // The Secret was moved: the values exist, just not in any output.
    let copied = env.kubectl_ok(
        "sim-target",
        &[
            "get",
            "secret",
            "db-credentials",
            "-n",
            "bookinfo",
            "-o",
            "jsonpath={.data.token}",
        ],
    );
    assert_eq!(copied.trim(), b64(token));
    // A changed Secret copied again under --plan: the diff shows that it changed, not to what.
    let changed = secret.replace(password, "planted-changed-0b9d");
    let applied = env.kubectl_stdin("sim-source", &["apply", "-f", "-"], &changed);
    assert!(applied.status.success(), "{:?}", text(&applied));
    std::fs::write(
        &script,
        r#"
let objects = cluster("sim-source").export_objects(#{namespaces: ["bookinfo"], kinds: ["Secret"], secrets: true});
cluster("sim-target").apply(objects);
"#,
    )
    .unwrap();
    let (ok, stdout, stderr) = collect(meshshift(
        &env,
        &["run", &script.to_string_lossy(), "--yes", "--plan"],
    ));
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("*** (after)"), "{stdout}");

    let planted = [password, token, api_token, webhook, "planted-changed-0b9d"];
    let needles: Vec<String> = planted
        .iter()
        .flat_map(|p| [p.to_string(), b64(p)])
        .collect();
    for needle in &needles {
        assert!(
            !output.contains(needle.as_str()),
            "{needle} in the output:\n{output}"
        );
    }
    let state = env.dir.path().join("state");
    let files = files_below(&state);
    assert!(files.iter().any(|(p, _)| p.ends_with("journal.json")));
    for (path, mode) in &files {
        if path.is_dir() {
            if path.starts_with(state.join("runs")) {
                assert_eq!(*mode, 0o700, "{}", path.display());
            }
            continue;
        }
        let bytes = std::fs::read(path).unwrap();
        let content = String::from_utf8_lossy(&bytes);
        for needle in &needles {
            assert!(
                !content.contains(needle.as_str()),
                "{needle} in {}",
                path.display()
            );
        }
        if path.starts_with(state.join("runs")) {
            assert_eq!(*mode, 0o600, "{}", path.display());
        }
    }
}

/// About 30 KB of YAML aliases of aliases: fully expanded, gigabytes.
fn alias_bomb() -> String {
    let mut text = format!("a0: &a0 [{}]\n", "x".repeat(20_000));
    for level in 1..40 {
        let previous = format!("*a{}", level - 1);
        let list = vec![previous.as_str(); 20].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{list}]\n"));
    }
    text
}

#[test]
fn yaml_aliases_cannot_expand_without_bound() {
    let bomb = alias_bomb();
    assert!(bomb.len() < 40_000);
    let manifest = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bomb}}\n{bomb}");
    let started = std::time::Instant::now();
    crate::test::Test::new()
        .write("bomb.yaml", &manifest)
        .runbook(&format!(
            "let bomb = `{bomb}`;\ntry {{ parse_yaml(bomb); throw \"parsed\"; }} catch (e) {{ print(`parse_yaml: ${{e}}`); }}\nload(\"bomb.yaml\");\n"
        ))
        .status(1)
        .stdout_contains(&["parse_yaml: ", "expands to more than 16 times its size"])
        .stderr_contains(&["bomb.yaml", "expands to more than 16 times its size"])
        .run();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // The simulator's YAML request bodies too.
    let server = crate::sim_support::TestServer::start();
    let (code, status) = server.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some("application/yaml"),
        Some(manifest.into_bytes()),
    );
    assert!((400..500).contains(&code), "{code} {status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("expands to more than")),
        "{status}"
    );
}

#[test]
fn load_reads_devices_and_pipes_no_further_than_the_limit() {
    let test = crate::test::Test::new();
    let fifo = test.path().join("pipe.yaml");
    let path = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    // A writer that never stops (until the reader closes the pipe).
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let block = vec![b'#'; 1 << 20];
        let mut written = 0usize;
        while pipe.write_all(&block).is_ok() {
            written += block.len();
            if written > 256 << 20 {
                break;
            }
        }
        written
    });
    test.runbook(
        "try { load(\"/dev/zero\"); } catch (e) { print(`zero: ${e}`); }\nload(\"pipe.yaml\");\n",
    )
    .status(1)
    .stdout_contains(&["zero: ", "is larger than 32.0 MiB"])
    .stderr_contains(&[
        "error: `pipe.yaml` is larger than 32.0 MiB but manifests are limited to that",
    ])
    .run();
    let written = writer.join().unwrap();
    assert!(written < 64 << 20, "the pipe was read to {written} bytes");
}

#[test]
fn a_watch_timeout_of_any_size_is_served() {
    let server = crate::sim_support::TestServer::start();
    let watch = crate::sim_support::Watch::open(
        &server,
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=0&timeoutSeconds=18446744073709551615",
    );
    let (code, _) = server.post(
        "/api/v1/namespaces/default/configmaps",
        &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen"}}),
    );
    assert_eq!(code, 201);
    let mut names = Vec::new();
    while let Some(event) = watch.next(std::time::Duration::from_secs(10)) {
        names.push(
            event["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        if names.iter().any(|n| n == "seen") {
            break;
        }
    }
    assert!(names.iter().any(|n| n == "seen"), "{names:?}");
}

#[test]
fn requests_are_authenticated_before_faults_are_injected() {
    let failing = crate::sim_support::TestServer::start_with(|c| meshshift::sim::ApiServerConfig {
        fault: meshshift::sim::fault::FaultConfig {
            error_rate: 1.0,
            ..Default::default()
        },
        ..c
    });
    for _ in 0..6 {
        let (code, status) = failing.request_with(
            "GET",
            "/api/v1/namespaces/default/configmaps",
            None,
            None,
            Some("wrong-token"),
            None,
        );
        assert_eq!(
            (code, status["reason"].as_str()),
            (401, Some("Unauthorized"))
        );
        let (code, _) = failing.get("/api/v1/namespaces/default/configmaps");
        assert!([500, 503, 429].contains(&code), "{code}");
    }
}

/// A directory with an executable `name` that prints its arguments and `KUBECONFIG`.
fn fake_program(dir: &Path, name: &str, says: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join(name);
    std::fs::write(
        &file,
        format!("#!/bin/sh\necho \"{says} $* kubeconfig=$KUBECONFIG\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    file
}

#[test]
fn exec_runs_only_the_files_allowed_names_resolved_to() {
    let test = crate::test::Test::new();
    let bin = test.path().join("bin");
    let other = test.path().join("other");
    let allowed = fake_program(&bin, "tool", "allowed");
    fake_program(&other, "tool", "impostor");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let kubeconfig = test.path().join("session-kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    let outcome = test
        .runbook(&format!(
            r#"
let r = exec("tool", ["a b", "it's"]).stdout; r.trim(); print(r);
let r = exec("{allowed}", []).stdout; r.trim(); print(r);
print(can_exec("../other/tool"));
print(can_exec("{other}/tool"));
exec("../other/tool", []);
"#,
            allowed = allowed.display(),
            other = other.display()
        ))
        .args(&[
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
            "--allow-exec",
            "tool",
        ])
        .env("PATH", &path)
        .env("KUBECONFIG", "/elsewhere/config")
        .status(1)
        .stderr_contains(&["error: running `../other/tool` is not allowed"])
        .run();
    let canonical = std::fs::canonicalize(&allowed).unwrap();
    assert!(
        outcome
            .stderr
            .contains(&format!("exec: `tool` allowed as {}", canonical.display())),
        "{}",
        outcome.stderr
    );
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines[0], "$ tool 'a b' 'it'\\''s'", "{}", outcome.stdout);
    // The session's kubeconfig, after the run's file that pins the current context.
    let (pin, files) = lines[1]
        .strip_prefix("allowed a b it's kubeconfig=")
        .and_then(|value| value.split_once(':'))
        .unwrap_or_else(|| panic!("{}", outcome.stdout));
    assert!(pin.ends_with("/exec-kubeconfig"), "{pin}");
    assert_eq!(files, kubeconfig.display().to_string());
    assert!(
        lines[3].starts_with("allowed  kubeconfig="),
        "{}",
        outcome.stdout
    );
    assert_eq!(&lines[4..], ["false", "false"], "{}", outcome.stdout);
    // A name that is not on PATH stops the run before it starts.
    crate::test::Test::new()
        .runbook("print(1);")
        .args(&["--allow-exec", "no-such-tool-here"])
        .status(1)
        .stderr_contains(&["no executable `no-such-tool-here` found on PATH"])
        .run();
}

#[test]
fn exec_command_lines_are_redacted() {
    let test = crate::test::Test::new();
    let bin = test.path().join("bin");
    fake_program(&bin, "tool", "ran");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let outcome = test
        .runbook(r#"let t = param("API_TOKEN"); exec("tool", ["--token", t]);"#)
        .args(&[
            "--allow-exec",
            "tool",
            "--set",
            "API_TOKEN=exec-secret-4a1f",
        ])
        .env("PATH", &path)
        .run();
    assert!(
        outcome.stdout.contains("$ tool --token ***"),
        "{}",
        outcome.stdout
    );
    assert!(!outcome.stdout.contains("exec-secret-4a1f"));
}

#[test]
fn the_simulated_az_answers_under_any_path_and_plan_runs_only_read_only_commands() {
    crate::test::Test::new()
        .runbook(
            r#"
let v = exec("/usr/bin/az", ["version", "-o", "json"]);
print(`version planned=${v.planned} status=${v.status}`);
let d = exec("az", ["aks", "delete", "--resource-group", "rg", "--name", "sim-source", "--yes"]);
print(`delete planned=${d.planned}`);
"#,
        )
        .args(&["--plan", "--sim"])
        .stdout_contains(&["version planned=false status=0", "delete planned=true"])
        .run();
}

/// `meshshift` against `env`, started and not waited for.
fn spawn_meshshift(env: &TestEnv, args: &[&str]) -> std::process::Child {
    std::process::Command::new(crate::test::meshshift_binary())
        .arg("--state-dir")
        .arg(env.dir.path().join("state"))
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args(args)
        .env("NO_COLOR", "1")
        .env("USER", "runner")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("meshshift starts")
}

#[test]
fn a_second_run_on_the_same_cluster_fails_at_once_or_waits() {
    let env = TestEnv::start();
    let write = |name: &str, hold: &str| {
        let path = env.dir.path().join(format!("{name}.rhai"));
        std::fs::write(
            &path,
            format!(
                r#"
let c = cluster("sim-source");
c.apply(#{{apiVersion: "v1", kind: "ConfigMap", metadata: #{{name: "{name}", namespace: "default"}}}});
print("wrote {name}");
sleep("{hold}");
"#
            ),
        )
        .unwrap();
        path.to_string_lossy().into_owned()
    };
    let first = write("first", "5s");
    let second = write("second", "0s");
    let third = write("third", "0s");
    let holder = spawn_meshshift(&env, &["run", &first, "--yes"]);
    // Until the first run holds the lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while env
        .kubectl(
            "sim-source",
            &["get", "lease", "meshshift-run", "-n", "kube-system"],
        )
        .status
        .code()
        != Some(0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let waiter = spawn_meshshift(&env, &["run", &third, "--yes", "--wait-lock"]);
    let started = std::time::Instant::now();
    let refused = meshshift(&env, &["run", &second, "--yes"]);
    let (stdout, stderr) = text(&refused);
    assert!(!refused.status.success(), "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "it failed at once"
    );
    assert!(
        stderr.contains("another run holds this cluster: run ")
            && stderr.contains("-first by runner@")
            && stderr.contains(", since 20")
            && stderr.contains("--wait-lock"),
        "{stderr}"
    );
    assert!(!stdout.contains("wrote second"), "{stdout}");
    let first = holder.wait_with_output().unwrap();
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "{stdout}\n{stderr}");
    let waited = waiter.wait_with_output().unwrap();
    let (stdout, stderr) = text(&waited);
    assert!(waited.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("waiting for the run lock of `sim-source`: held by run "),
        "{stderr}"
    );
    assert!(stdout.contains("wrote third"), "{stdout}");
    // Released at the end; the second run never wrote.
    let lease = env.kubectl(
        "sim-source",
        &["get", "lease", "meshshift-run", "-n", "kube-system"],
    );
    assert!(!lease.status.success(), "the lease is released");
    let names = env.kubectl_ok(
        "sim-source",
        &[
            "get",
            "configmaps",
            "-n",
            "default",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    assert!(
        names.contains("first") && names.contains("third") && !names.contains("second"),
        "{names}"
    );
    // Three runs, three directories.
    let runs = std::fs::read_dir(env.dir.path().join("state/runs"))
        .unwrap()
        .count();
    assert_eq!(runs, 3);
}

#[test]
fn writes_of_a_batch_that_fails_half_way_are_in_the_report() {
    let env = TestEnv::start();
    // The Namespace is created; the ConfigMap in it then fails validation.
    let (ok, stdout, stderr) = run_script(
        &env,
        r#"
cluster("sim-source").apply([
    #{apiVersion: "v1", kind: "Namespace", metadata: #{name: "half"}},
    #{apiVersion: "v1", kind: "ConfigMap", metadata: #{name: "bad", namespace: "half"}, data: #{"no spaces allowed": "x"}},
]);
"#,
        &[],
    );
    assert!(!ok, "{stdout}\n{stderr}");
    env.kubectl_ok("sim-source", &["get", "namespace", "half"]);
    let runs = env.dir.path().join("state/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("- sim-source: Namespace/half created"),
        "{report}"
    );
}

const RESUMABLE: &str = r#"
step("bind", || { cluster("sim-source"); 1 });
print(`who=${param("WHO", "first")} exec=${can_exec("echo")}`);
step("maybe fail", || if param("FAIL", false) { fail("asked to fail"); });
"#;

#[test]
fn resume_takes_permissions_and_parameters_from_its_own_command_line() {
    let env = TestEnv::start();
    let (ok, stdout, stderr) = run_script(
        &env,
        RESUMABLE,
        &["--allow-exec", "echo", "--set", "FAIL=true"],
    );
    assert!(!ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("who=first exec=true"), "{stdout}");
    let resumed = meshshift(
        &env,
        &["resume", "--set", "FAIL=false", "--set", "WHO=second"],
    );
    let (stdout, stderr) = text(&resumed);
    assert!(resumed.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("who=second exec=false"), "{stdout}");
    assert!(
        stderr.contains("note: the interrupted run had --yes")
            && stderr.contains("note: the interrupted run allowed `exec` of `echo`"),
        "{stderr}"
    );
}

#[test]
fn resume_refuses_a_context_that_points_at_another_cluster() {
    let env = TestEnv::start();
    let (ok, stdout, stderr) = run_script(&env, RESUMABLE, &["--set", "FAIL=true"]);
    assert!(!ok, "{stdout}\n{stderr}");
    // sim-source now points at the target's cluster.
    let kubectl_config = |args: &[&str]| {
        let output = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(env.kubeconfig())
            .arg("config")
            .args(args)
            .output()
            .expect("kubectl runs");
        assert!(output.status.success(), "{:?}", text(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let target = |field: &str| {
        kubectl_config(&[
            "view",
            "-o",
            &format!("jsonpath={{.contexts[?(@.name==\"sim-target\")].context.{field}}}"),
        ])
    };
    let (cluster, user) = (target("cluster"), target("user"));
    kubectl_config(&[
        "set-context",
        "sim-source",
        &format!("--cluster={cluster}"),
        &format!("--user={user}"),
    ]);
    let resumed = meshshift(&env, &["resume", "--set", "FAIL=false"]);
    let (stdout, stderr) = text(&resumed);
    assert!(!resumed.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr
            .contains("context `sim-source` no longer points at the cluster the resumed run used"),
        "{stderr}"
    );
}

#[test]
fn a_simulated_run_leaves_private_files_only() {
    let outcome = crate::test::Test::new()
        .runbook(
            r#"
let c = cluster("sim-source");
c.apply(#{apiVersion: "v1", kind: "Secret", metadata: #{name: "planted", namespace: "default"},
          stringData: #{password: "sim-planted-secret-81c0"}});
print(c.get("Secret", "planted", "default"));
"#,
        )
        .args(&["--sim", "--yes"])
        .run();
    assert!(
        !outcome.stdout.contains("sim-planted-secret-81c0"),
        "{}",
        outcome.stdout
    );
    let runs = outcome.dir.path().join(".meshshift/runs");
    for (path, mode) in files_below(&runs) {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, expected, "{}", path.display());
    }
}

#[test]
fn creating_a_target_that_exists_already_skips_the_create() {
    // As after a run killed once `az aks create` succeeded: the cluster is there. The
    // simulated `az aks create` always fails, so a second create would stop the run.
    let runbook = crate::sim_env_support::repo_path("runbooks/migrate-oss-istio-to-aks.rhai");
    let outcome = crate::test::Test::new()
        .args(&[
            "run",
            &runbook,
            "--sim",
            "--yes",
            "--set",
            "CREATE_TARGET=true",
            "--set",
            "STEPS=100",
            "--set",
            "PROPAGATION=1s",
            "--set",
            "SOAK_SECONDS=0",
        ])
        .run();
    assert!(
        outcome
            .stdout
            .contains("$ az aks show --resource-group rg-simulated --name sim-target -o json")
            && outcome.stdout.contains(
                "AKS cluster sim-target in rg-simulated exists already: not created again"
            ),
        "{}\n{}",
        outcome.stdout,
        outcome.stderr
    );
    assert!(
        !outcome.stdout.contains("$ az aks create"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn exec_children_act_on_the_bound_context_never_the_users_current_one() {
    let env = TestEnv::start();
    // The user's kubeconfig points at the target; the script works on the source.
    let text_of = std::fs::read_to_string(env.kubeconfig()).unwrap();
    let users: String = text_of
        .lines()
        .filter(|line| !line.starts_with("current-context:"))
        .map(|line| format!("{line}\n"))
        .collect::<String>()
        + "current-context: sim-target\n";
    let user_kubeconfig = env.dir.path().join("user-kubeconfig");
    std::fs::write(&user_kubeconfig, users).unwrap();
    let script = env.dir.path().join("children.rhai");
    std::fs::write(
        &script,
        r#"
let source = cluster("sim-source");
let uid = source.get("Namespace", "kube-system").metadata.uid;
let seen = exec("kubectl", ["get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}"]);
info(`one bound: ${if seen.stdout == uid { "the source" } else { "another cluster: " + seen.stdout + seen.stderr }}`);
cluster("sim-target");
let seen = exec("kubectl", ["get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}"]);
info(`two bound: status ${seen.status}, ${seen.stdout}${seen.stderr}`);
let named = exec("kubectl", ["--context", "sim-source", "get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}"]);
info(`named: ${if named.stdout == uid { "the source" } else { "another cluster" }}`);
"#,
    )
    .unwrap();
    for explicit in [false, true] {
        let mut command = std::process::Command::new(crate::test::meshshift_binary());
        command
            .arg("--state-dir")
            .arg(env.dir.path().join("state"))
            .env("NO_COLOR", "1")
            .env("KUBECONFIG", &user_kubeconfig)
            .stdin(std::process::Stdio::null());
        if explicit {
            command.arg("--kubeconfig").arg(&user_kubeconfig);
        }
        let output = command
            .arg("run")
            .arg(&script)
            .args(["--allow-exec", "kubectl"])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("one bound: the source"), "{stdout}");
        assert!(
            stdout.contains("two bound: status 1")
                && stdout.contains("meshshift-no-default-context"),
            "{stdout}"
        );
        assert!(stdout.contains("named: the source"), "{stdout}");
    }
}

/// What the fault proxy saw, by kind of request (dry runs are not counted).
#[derive(Default)]
struct Seen {
    json_patches: std::sync::atomic::AtomicUsize,
    applies: std::sync::atomic::AtomicUsize,
    probe_gets: std::sync::atomic::AtomicUsize,
}

/// A plain-HTTP server in front of `context`'s API server that forwards every request, except
/// that it answers the first GET of ConfigMap `probe` with 500 without forwarding it, forwards
/// the first apply and then answers 500, and forwards every JSON patch and then answers 500
/// (for `probe`) or drops the connection (for `dropped`): the server did the work, the client
/// cannot know.
fn start_fault_proxy(
    kubeconfig: &Path,
    context: &str,
) -> (std::net::SocketAddr, std::sync::Arc<Seen>) {
    use http_body_util::BodyExt as _;
    use std::sync::atomic::Ordering;
    let seen = std::sync::Arc::new(Seen::default());
    let (sender, receiver) = std::sync::mpsc::channel();
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let context = context.to_string();
    let counts = seen.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let options = kube::config::KubeConfigOptions {
                context: Some(context),
                ..Default::default()
            };
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .unwrap();
            let client = kube::Client::try_from(config).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (client, counts) = (client.clone(), counts.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let (client, counts) = (client.clone(), counts.clone());
                            async move {
                                let (parts, body) = request.into_parts();
                                let bytes = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let content_type = parts
                                    .headers
                                    .get("content-type")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_string();
                                let path = parts.uri.path().to_string();
                                let dry_run =
                                    parts.uri.query().is_some_and(|q| q.contains("dryRun"));
                                let object =
                                    path.rsplit('/').next().unwrap_or_default().to_string();
                                // The run's own Lease is written as any run writes it.
                                let is_patch = parts.method == hyper::Method::PATCH
                                    && !dry_run
                                    && !path.contains("/leases/");
                                let json_patch = is_patch
                                    && content_type.starts_with("application/json-patch+json");
                                let apply =
                                    is_patch && content_type.starts_with("application/apply-patch");
                                if parts.method == hyper::Method::GET
                                    && object == "probe"
                                    && counts.probe_gets.fetch_add(1, Ordering::SeqCst) == 0
                                {
                                    return Ok::<_, std::io::Error>(server_error());
                                }
                                let first_apply =
                                    apply && counts.applies.fetch_add(1, Ordering::SeqCst) == 0;
                                if json_patch {
                                    counts.json_patches.fetch_add(1, Ordering::SeqCst);
                                }
                                let mut forward =
                                    http::Request::builder().method(parts.method.clone()).uri(
                                        parts
                                            .uri
                                            .path_and_query()
                                            .map(|p| p.as_str())
                                            .unwrap_or("/"),
                                    );
                                for (name, value) in &parts.headers {
                                    if name != "host" && name != "authorization" {
                                        forward = forward.header(name, value);
                                    }
                                }
                                let answer = client
                                    .send(
                                        forward
                                            .body(kube::client::Body::from(bytes.to_vec()))
                                            .unwrap(),
                                    )
                                    .await
                                    .map_err(std::io::Error::other)?;
                                if json_patch && object == "dropped" {
                                    return Err(std::io::Error::other(
                                        "connection dropped after the patch",
                                    ));
                                }
                                if json_patch || first_apply {
                                    return Ok(server_error());
                                }
                                let (mut answer_parts, answer_body) = answer.into_parts();
                                // The body is re-framed here.
                                answer_parts.headers.remove("transfer-encoding");
                                answer_parts.headers.remove("content-length");
                                let answer_bytes = answer_body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .map_err(std::io::Error::other)?;
                                Ok(hyper::Response::from_parts(
                                    answer_parts,
                                    http_body_util::Full::new(answer_bytes),
                                ))
                            }
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
    });
    (receiver.recv().unwrap(), seen)
}

fn server_error() -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    hyper::Response::builder()
        .status(500)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected after the work was done","code":500}"#,
        )))
        .unwrap()
}

#[test]
fn a_patch_the_server_may_have_applied_is_never_sent_twice_while_applies_and_reads_are_retried() {
    use std::sync::atomic::Ordering;
    let env = TestEnv::start();
    let (address, seen) = start_fault_proxy(&env.kubeconfig(), "sim-source");
    let sim_kubeconfig = std::fs::read_to_string(env.kubeconfig()).unwrap();
    let token = regex::Regex::new(r"token: (\S+)")
        .unwrap()
        .captures(&sim_kubeconfig)
        .unwrap()[1]
        .to_string();
    let kubeconfig = env.dir.path().join("proxied-kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: proxied, cluster: {{server: 'http://{address}'}}}}]\n\
             users: [{{name: u, user: {{token: {token}}}}}]\n\
             contexts: [{{name: proxied, context: {{cluster: proxied, user: u, namespace: default}}}}]\n\
             current-context: proxied\n"
        ),
    )
    .unwrap();
    let script = env.dir.path().join("retries.rhai");
    std::fs::write(
        &script,
        r#"
let c = cluster("proxied");
c.apply(#{apiVersion: "v1", kind: "ConfigMap", metadata: #{name: "probe", namespace: "default"}, data: #{n: "0"}});
c.apply(#{apiVersion: "v1", kind: "ConfigMap", metadata: #{name: "dropped", namespace: "default"}, data: #{n: "0"}});
info(`read ${c.get("ConfigMap", "probe", "default").data.n}`);
for name in ["probe", "dropped"] {
    let outcome = "patched";
    try {
        c.patch("ConfigMap", name, "default", [#{op: "add", path: "/data/added", value: "once"}], #{type: "json"});
    } catch (error) {
        outcome = "failed";
    }
    info(`json patch of ${name}: ${outcome}`);
}
"#,
    )
    .unwrap();
    let output = std::process::Command::new(crate::test::meshshift_binary())
        .arg("--state-dir")
        .arg(env.dir.path().join("state"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("run")
        .arg(&script)
        .arg("--yes")
        .env("NO_COLOR", "1")
        .env_remove("MESHSHIFT_CONNECT_TO")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // The apply that got a 500 after the server applied it was sent again, as was the read.
    assert_eq!(seen.applies.load(Ordering::SeqCst), 3, "{stdout}");
    assert!(seen.probe_gets.load(Ordering::SeqCst) >= 2, "{stdout}");
    assert!(stdout.contains("read 0"), "{stdout}");
    // Each JSON patch was sent once: the 500 and the dropped connection fail the call.
    assert_eq!(
        seen.json_patches.load(Ordering::SeqCst),
        2,
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("json patch of probe: failed"), "{stdout}");
    assert!(stdout.contains("json patch of dropped: failed"), "{stdout}");
    // The server did apply each of them, once.
    for name in ["probe", "dropped"] {
        let added = env.kubectl_ok(
            "sim-source",
            &[
                "get",
                "configmap",
                name,
                "-n",
                "default",
                "-o",
                "jsonpath={.data.added}",
            ],
        );
        assert_eq!(added, "once", "{name}");
    }
}
