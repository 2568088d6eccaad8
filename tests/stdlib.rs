//! Stdlib tests written in Rhai: every `tests/stdlib/*.rhai` runs through the binary and must
//! finish with `ok`.

use crate::test::{Test, repository_root};

#[test]
fn stdlib_rhai_tests_pass() {
    let dir = repository_root().join("tests/stdlib");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no stdlib tests in {}", dir.display());
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = Test::new().write(&name, source).args(&["run", &name]).run();
        assert!(
            outcome.stdout.trim_end().ends_with("ok"),
            "{name} did not finish with ok:\n{}",
            outcome.stdout
        );
    }
}
