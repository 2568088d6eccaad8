//! Every kind of bad input gets a clear message with its position, a non-zero exit, no panic.

use crate::test::Test;

#[test]
fn syntax_error_in_runbook() {
    Test::new()
        .runbook(
            "
            let a = 1;
            let b = ;
            ",
        )
        .status(1)
        .stderr(
            "
            error: syntax error: unexpected ';'
             --> runbook.rhai:2:9
              |
            2 | let b = ;
              |         ^
            ",
        )
        .run();
}

#[test]
fn syntax_error_in_imported_module_names_the_module() {
    Test::new()
        .write("lib/helpers.rhai", "fn ok() { 1 }\nfn broken( { 2 }\n")
        .runbook(
            r#"
            import "lib/helpers" as helpers;
            helpers::ok();
            "#,
        )
        .status(1)
        .stderr(
            r#"
            error: syntax error: expecting ')' to close the parameters list of function 'broken'
             --> lib/helpers.rhai:2:12
              |
            2 | fn broken( { 2 }
              |            ^
              = in module `lib/helpers.rhai`, imported from runbook.rhai:1:8
            "#,
        )
        .run();
}

#[test]
fn unknown_function_suggests_the_right_one() {
    Test::new()
        .runbook(
            r#"
            let objects = parse_manifest("kind: A");
            "#,
        )
        .status(1)
        .stderr(
            "
            error: unknown function `parse_manifest(string)`
             --> runbook.rhai:1:15
              |
            1 | let objects = parse_manifest(\"kind: A\");
              |               ^^^^^^^^^^^^^^
              = help: did you mean `parse_manifests`?
            ",
        )
        .run();
}

#[test]
fn wrong_argument_type_lists_the_real_signature() {
    Test::new()
        .runbook("load(42);")
        .status(1)
        .stderr(
            "
            error: `load` cannot take these arguments: called as `load(int)`, but it is `load(path: string) -> Objects`
             --> runbook.rhai:1:1
              |
            1 | load(42);
              | ^^^^
            ",
        )
        .run();
}

#[test]
fn missing_parameter_names_it_and_how_to_set_it() {
    Test::new()
        .runbook(
            r#"
            let source = param("SOURCE_CLUSTER");
            "#,
        )
        .args(&["--set", "SOURCE_CLUSTR=aks-a"])
        .env("SOURCE_CLUSTER", "")
        .status(1)
        .stderr_contains(&["error: missing parameter `SOURCE_CLUSTER`"])
        .run();
}

#[test]
fn missing_parameter_exact_message() {
    Test::new()
        .runbook(
            r#"
            info("start");
            let source = param("TARGET_RESOURCE_GROUP");
            "#,
        )
        .args(&["--set", "TARGET_RESOURCE_GRUOP=rg"])
        .status(1)
        .stdout("start\n")
        .stderr(
            r#"
            error: missing parameter `TARGET_RESOURCE_GROUP`
             --> runbook.rhai:2:14
              |
            2 | let source = param("TARGET_RESOURCE_GROUP");
              |              ^^^^^
              = help: did you mean `TARGET_RESOURCE_GRUOP`?
              = help: set it with `--set TARGET_RESOURCE_GROUP=VALUE` or the environment variable `TARGET_RESOURCE_GROUP`
            "#,
        )
        .run();
}

#[test]
fn set_without_equals() {
    Test::new()
        .runbook("info(1);")
        .args(&["--set", "SOURCE_CLUSTER"])
        .status(1)
        .stderr("error: `--set SOURCE_CLUSTER` is missing `=`: expected `--set NAME=VALUE`\n")
        .run();
}

#[test]
fn yaml_with_tab_indentation() {
    Test::new()
        .write("app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n")
        .runbook(r#"load("app.yaml");"#)
        .status(1)
        .stderr(
            r#"
            error: invalid manifest `app.yaml` (document 1): found character that cannot start any token (tabs cannot indent YAML; use spaces)
             --> app.yaml:4:1
              |
            4 |     name: x
              | ^
              = called from runbook.rhai:1:1
             --> runbook.rhai:1:1
              |
            1 | load("app.yaml");
              | ^^^^
            "#,
        )
        .run();
}

#[test]
fn yaml_with_unclosed_quote() {
    Test::new()
        .write("app.yaml", "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"x\n")
        .runbook(r#"load("app.yaml");"#)
        .status(1)
        .stderr_regex(r"(?s)^error: invalid manifest `app\.yaml` \(document 2\): found unexpected end of stream.*\n --> app\.yaml:\d+:\d+\n")
        .run();
}

#[test]
fn yaml_with_duplicate_keys() {
    Test::new()
        .write(
            "app.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: 1\n  k: 2\n",
        )
        .runbook(r#"load("app.yaml");"#)
        .status(1)
        .stderr_contains(&[
            "error: invalid manifest `app.yaml` (document 1): data: duplicate key `k`",
            " --> app.yaml:7:3",
            "7 |   k: 2",
        ])
        .run();
}

#[test]
fn document_without_kind() {
    Test::new()
        .write("app.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n")
        .runbook(r#"load("app.yaml");"#)
        .status(1)
        .stderr_contains(&[
            "error: invalid object in `app.yaml` (document 2): the object has no `kind`",
            " --> app.yaml:4:1",
        ])
        .run();
}

#[test]
fn fifty_megabyte_manifest_is_refused() {
    let test = Test::new();
    let big = test.path().join("big.yaml");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(50 * 1024 * 1024).unwrap();
    test.runbook(r#"load("big.yaml");"#)
        .status(1)
        .stderr_contains(&["error: `big.yaml` is 50.0 MiB but manifests are limited to 32.0 MiB"])
        .run();
}

#[test]
fn infinite_loop_stops_with_a_limit() {
    Test::new()
        .runbook("let n = 0;\nloop { n += 1; }\n")
        .status(1)
        .stderr_contains(&[
            "error: script stopped: more than 50000000 operations",
            " --> runbook.rhai:2:",
            "help: is there a loop that never ends?",
        ])
        .run();
}

#[test]
fn deep_recursion_stops_with_a_limit() {
    Test::new()
        .runbook("fn down(n) { down(n + 1) }\ndown(0);\n")
        .status(1)
        .stderr_contains(&[
            "error: script stopped: calls nested deeper than 64",
            "help: is there a recursion without a base case?",
        ])
        .run();
}

#[test]
fn missing_runbook_suggests_a_similar_file() {
    Test::new()
        .write("migrate.rhai", "info(1);")
        .args(&["run", "migrat.rhai"])
        .status(1)
        .stderr("error: runbook `migrat.rhai` not found\n  = help: did you mean `migrate.rhai`?\n")
        .run();
}

#[test]
fn thrown_errors_and_fail_exit_non_zero() {
    Test::new()
        .runbook(r#"fail("target revision asm-1-24 differs from source 1.25");"#)
        .status(1)
        .stderr_contains(&[
            "error: target revision asm-1-24 differs from source 1.25",
            " --> runbook.rhai:1:1",
        ])
        .run();
}

#[test]
fn no_panic_on_any_bad_input() {
    for source in [
        "let x = #{a: 1}; x.b.c = 1;",
        "let a = [1]; a[5]",
        "\"unterminated",
        "parse_yaml(\"a: [\")",
        "template(\"${X}\", #{})",
    ] {
        let outcome = Test::new().runbook(source).status(1).run();
        assert!(
            !outcome.stderr.contains("panicked"),
            "{source}: {}",
            outcome.stderr
        );
        assert!(
            outcome.stderr.starts_with("error: "),
            "{source}: {}",
            outcome.stderr
        );
    }
}
