//! The reference: complete, documented with examples, and `docs/reference.md` up to date.

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
