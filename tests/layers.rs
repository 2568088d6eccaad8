//! The layering rules of docs/design.md, checked on the manifests and sources: the simulator
//! crate does not depend on meshshift, and inside meshshift a layer uses only the ones below.

use std::path::Path;

use crate::test::repository_root;

/// The `[dependencies]`-like tables of a Cargo manifest, as `(table, key, value)` lines.
fn dependencies(manifest: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut table = String::new();
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            table = line.trim_matches(['[', ']']).to_string();
        } else if table.contains("dependencies")
            && let Some((key, value)) = line.split_once('=')
        {
            found.push((
                table.clone(),
                key.trim().to_string(),
                value.trim().to_string(),
            ));
        }
    }
    found
}

/// Every `.rs` file below `dir`, with its text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path.display().to_string(), text));
            }
        }
    }
    found
}

/// Code lines (comments left out) of `text` that mention `needle` as a whole path segment
/// (`crate::host` matches `crate::host::x` and `crate::host;`, not `crate::hosts`).
fn code_mentions(text: &str, needle: &str) -> Vec<String> {
    let whole = |line: &str| {
        line.match_indices(needle).any(|(at, _)| {
            let next = line[at + needle.len()..].chars().next();
            !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .filter(|line| whole(line))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_simulator_crate_does_not_depend_on_meshshift() {
    let root = repository_root();
    for manifest in ["sim/Cargo.toml", "support/Cargo.toml"] {
        let deps = dependencies(&root.join(manifest));
        let on_meshshift: Vec<_> = deps
            .iter()
            .filter(|(_, key, value)| {
                key == "meshshift" || value.contains("path = \"..\"") || key == "meshshift-sim"
            })
            .collect();
        assert!(on_meshshift.is_empty(), "{manifest}: {on_meshshift:?}");
    }
    let sim_deps = dependencies(&root.join("sim/Cargo.toml"));
    assert!(
        sim_deps
            .iter()
            .any(|(_, key, value)| key == "meshshift-support" && value.contains("../support")),
        "{sim_deps:?}"
    );
    for (file, text) in sources(&root.join("sim/src")) {
        let uses = code_mentions(&text, "meshshift::");
        assert!(uses.is_empty(), "{file} uses meshshift: {uses:?}");
    }
}

#[test]
fn meshshift_reaches_the_simulator_only_to_start_it() {
    let root = repository_root();
    let allowed = ["src/bootstrap.rs", "src/subcommand.rs", "src/lib.rs"];
    for (file, text) in sources(&root.join("src")) {
        let relative = file
            .strip_prefix(&format!("{}/", root.display()))
            .unwrap_or(&file)
            .to_string();
        let uses = code_mentions(&text, "crate::sim");
        if !allowed.contains(&relative.as_str()) {
            assert!(uses.is_empty(), "{relative} uses the simulator: {uses:?}");
        }
    }
}

#[test]
fn lower_layers_do_not_use_higher_ones() {
    let root = repository_root();
    // Each module, with the modules above it that it must not use.
    let rules: &[(&str, &[&str])] = &[
        (
            "manifest",
            &["engine", "session", "host", "repl", "subcommand", "cluster"],
        ),
        (
            "traffic",
            &["engine", "session", "host", "repl", "subcommand", "cluster"],
        ),
        (
            "cluster",
            &["engine", "session", "host", "repl", "subcommand"],
        ),
        (
            "session",
            &["engine", "host", "repl", "subcommand", "doc", "runbook"],
        ),
        ("engine", &["host", "repl", "subcommand", "doc", "runbook"]),
        ("host", &["repl", "subcommand", "doc", "runbook"]),
        ("repl", &["subcommand"]),
    ];
    for (module, forbidden) in rules {
        let dir = root.join("src").join(module);
        assert!(dir.is_dir(), "src/{module} exists");
        for (file, text) in sources(&dir) {
            for above in *forbidden {
                let uses = code_mentions(&text, &format!("crate::{above}"));
                assert!(
                    uses.is_empty(),
                    "{file} ({module}) uses {above}, a layer above it: {uses:?}"
                );
            }
        }
    }
}
