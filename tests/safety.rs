//! Safe runs on the simulator: names that would change a request are refused before anything
//! is sent.

use crate::sim_env_support::{TestEnv, meshshift, text};

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
