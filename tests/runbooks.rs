//! The shipped runbooks: every one checks clean, and `list` shows them with their parameters.

use crate::test::{Test, repository_root};

fn shipped() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repository_root().join("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_runbook_checks_clean() {
    let files = shipped();
    assert!(files.len() >= 4, "{files:?}");
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let outcome = Test::new().args(&args).run();
    assert_eq!(
        outcome
            .stdout
            .lines()
            .filter(|l| l.starts_with("ok  "))
            .count(),
        files.len(),
        "{}",
        outcome.stdout
    );
    // The demo module the runbooks import checks too.
    Test::new()
        .args(&[
            "check",
            &repository_root()
                .join("runbooks/demo/setup.rhai")
                .display()
                .to_string(),
        ])
        .run();
}

#[test]
fn list_shows_every_runbook_with_summary_and_parameters() {
    let outcome = Test::new()
        .args(&[
            "list",
            &repository_root().join("runbooks").display().to_string(),
        ])
        .run();
    for (name, parameter) in [
        ("migrate-oss-istio-to-aks.rhai", "TARGET_RESOURCE_GROUP"),
        ("precheck-aks-addon.rhai", "ASM_REVISION"),
        ("rollback-traffic.rhai", "VIRTUAL_SERVICE"),
        ("setup-source-demo.rhai", "NAMESPACE=\"bookinfo\""),
    ] {
        let block: String = outcome
            .stdout
            .split("\n")
            .skip_while(|l| !l.ends_with(name))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            block.contains("parameters: ") && block.contains(parameter),
            "{name}:\n{}",
            outcome.stdout
        );
        assert!(!block.contains("does not compile"), "{block}");
    }
}
