//! The reference: complete, documented with examples, and `docs/reference.md` up to date; the
//! README's scripts pass `check`.

use crate::test::{Test, repository_root};

#[test]
fn reference_md_is_up_to_date() {
    let outcome = Test::new().args(&["doc", "--markdown"]).run();
    let path = repository_root().join("docs/reference.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == outcome.stdout,
        "docs/reference.md is stale: regenerate it with `cargo run -q -- doc --markdown > docs/reference.md`"
    );
}

#[test]
fn every_script_visible_function_has_a_doc_and_an_example() {
    let reference = meshshift::doc::Reference::build();
    let mut missing = Vec::new();
    for function in reference.functions() {
        if function.doc.is_empty() || function.examples().is_empty() {
            missing.push(function.signature.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "functions without a doc comment and example: {missing:?}"
    );
    assert!(reference.functions().count() > 20);
}

#[test]
fn readme_scripts_pass_check() {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```rhai\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(
        blocks.len() >= 2,
        "README.md has {} rhai blocks",
        blocks.len()
    );
    let mut test = Test::new();
    let mut files = vec!["check".to_string()];
    for (index, block) in blocks.iter().enumerate() {
        let name = format!("readme-{index}.rhai");
        test = test.write(&name, block);
        files.push(name);
    }
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    test.args(&files)
        .stdout_contains(&["ok  readme-0.rhai", "ok  readme-1.rhai"])
        .run();
}
