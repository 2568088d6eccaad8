//! `:save FILE`: the session as a runbook. Statements that succeeded, typed or run from the
//! loaded runbook by `:run`, are kept in order, failed ones are dropped, and every function
//! definition in effect is kept (once, in its latest version), including the loaded runbook's
//! functions the saved code calls.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use super::lexer::{Item, TokenKind, significant, split_items, tokenize};

/// One evaluated input, or one statement of the loaded runbook that `:run` executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub text: String,
    pub outcome: Outcome,
    pub from_runbook: bool,
}

/// How an input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Compiled, but failed while running (its function definitions still took effect).
    Failed,
    /// Did not compile: nothing of it took effect.
    Rejected,
}

/// The runbook loaded with `:load` (or on the command line).
#[derive(Debug, Clone)]
pub struct Loaded<'a> {
    pub name: &'a str,
    pub text: &'a str,
    /// Its top-level imports as `(path, alias)` (its functions may use the aliases).
    pub imports: Vec<(String, String)>,
}

/// Renders the saved runbook. `header` is the `//!` summary line's text.
pub fn render(header: &str, entries: &[Entry], loaded: Option<Loaded>) -> String {
    let mut definitions = Definitions::default();
    let mut statements = Vec::new();
    for entry in entries.iter().filter(|e| e.outcome != Outcome::Rejected) {
        for item in split_items(&entry.text) {
            match item.function {
                Some(signature) => definitions.insert(signature, item.text, Origin::Session),
                None if entry.outcome == Outcome::Succeeded => {
                    statements.push(terminated(&item.text))
                }
                None => {}
            }
        }
    }
    let mut imports = Vec::new();
    if let Some(loaded) = &loaded {
        let used = definitions.add_used_runbook_functions(loaded.text, &statements);
        if used {
            imports = loaded
                .imports
                .iter()
                .map(|(path, alias)| format!("import {path:?} as {alias};"))
                // The runbook's own import statements may have run already.
                .filter(|import| !statements.iter().any(|s| s.trim() == import))
                .collect();
        }
    }
    let mut out = format!("//! {header}\n");
    if let Some(loaded) = loaded {
        let ran = entries
            .iter()
            .any(|e| e.from_runbook && e.outcome == Outcome::Succeeded);
        if ran {
            out.push_str(&format!(
                "//! Holds the statements of {} that `:run` executed, in order with the inputs.\n",
                loaded.name
            ));
        }
        out.push_str(&format!("//! Uses functions of {}.\n", loaded.name));
    }
    for section in [imports, definitions.texts(), statements] {
        if !section.is_empty() {
            out.push('\n');
            out.push_str(&section.join("\n"));
            out.push('\n');
        }
    }
    out
}

/// The text with each `import "PATH"` of a file (not a stdlib module) pointing from `to` to
/// the file it pointed to from `from`.
pub fn rebase_imports(text: &str, from: &Path, to: &Path) -> String {
    let tokens = tokenize(text);
    let significant = significant(&tokens);
    let mut out = text.to_string();
    for pair in significant.windows(2).rev() {
        let (keyword, path) = (pair[0], pair[1]);
        if keyword.kind != TokenKind::Keyword
            || keyword.text(text) != "import"
            || !matches!(
                path.kind,
                TokenKind::Text {
                    quote: '"',
                    closed: true
                }
            )
        {
            continue;
        }
        let literal = path.text(text);
        let old = &literal[1..literal.len() - 1];
        let new = rebase(old, from, to);
        if new != old {
            out.replace_range(path.start..path.end, &format!("{new:?}"));
        }
    }
    out
}

/// An import path relative to `from` as seen from `to` (stdlib modules and absolute paths
/// stay as they are).
pub fn rebase(path: &str, from: &Path, to: &Path) -> String {
    if crate::stdlib::get(path).is_some() || Path::new(path).is_absolute() || from == to {
        return path.to_string();
    }
    let absolute = |p: &Path| {
        std::env::current_dir()
            .map(|cwd| cwd.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let target = normalize(&absolute(&from.join(path)));
    let base = normalize(&absolute(to));
    let common = target
        .components()
        .zip(base.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut relative = PathBuf::new();
    for _ in base.components().skip(common) {
        relative.push("..");
    }
    for part in target.components().skip(common) {
        relative.push(part);
    }
    relative.to_string_lossy().replace('\\', "/")
}

/// `a/./b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Session,
    Runbook,
}

/// Function definitions by (name, arity): the latest one wins, first-seen order is kept.
#[derive(Default)]
struct Definitions {
    order: Vec<(String, usize)>,
    texts: HashMap<(String, usize), (String, Origin)>,
}

impl Definitions {
    fn insert(&mut self, signature: (String, usize), text: String, origin: Origin) {
        if !self.texts.contains_key(&signature) {
            self.order.push(signature.clone());
        }
        self.texts.insert(signature, (text, origin));
    }

    /// Adds the runbook's functions that saved code calls (directly or through each other),
    /// unless the session redefined them. Returns whether any was added.
    fn add_used_runbook_functions(&mut self, runbook: &str, statements: &[String]) -> bool {
        let runbook_functions: Vec<Item> = split_items(runbook)
            .into_iter()
            .filter(|item| item.function.is_some())
            .collect();
        let mut called: BTreeSet<String> = statements.iter().flat_map(|s| identifiers(s)).collect();
        for (text, _) in self.texts.values() {
            called.extend(identifiers(text));
        }
        let mut added = false;
        loop {
            let mut grew = false;
            for item in &runbook_functions {
                let Some(signature) = &item.function else {
                    continue;
                };
                if self.texts.contains_key(signature) || !called.contains(&signature.0) {
                    continue;
                }
                called.extend(identifiers(&item.text));
                self.insert(signature.clone(), item.text.clone(), Origin::Runbook);
                grew = true;
                added = true;
            }
            if !grew {
                return added;
            }
        }
    }

    /// Runbook functions first (they are the older code), then the session's.
    fn texts(&self) -> Vec<String> {
        let by_origin = |origin: Origin| {
            self.order
                .iter()
                .filter_map(move |signature| self.texts.get(signature))
                .filter(move |(_, o)| *o == origin)
                .map(|(text, _)| text.clone())
        };
        by_origin(Origin::Runbook)
            .chain(by_origin(Origin::Session))
            .collect()
    }
}

fn identifiers(text: &str) -> Vec<String> {
    tokenize(text)
        .into_iter()
        .filter(|t| t.kind == TokenKind::Identifier)
        .map(|t| t.text(text).to_string())
        .collect()
}

/// Ends a statement with `;`: an expression typed without one (`#{a: 1}`, `x + 1`) must not
/// run into the next. Rhai accepts the `;` after a block too.
fn terminated(text: &str) -> String {
    let tokens = tokenize(text);
    match significant(&tokens).last() {
        Some(last) if last.kind != TokenKind::Punct(';') => {
            format!("{};{}", &text[..last.end], &text[last.end..])
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str, outcome: Outcome) -> Entry {
        Entry {
            text: text.into(),
            outcome,
            from_runbook: false,
        }
    }

    #[test]
    fn keeps_successes_and_latest_definitions_drops_failures() {
        let entries = [
            entry("let a = 2", Outcome::Succeeded),
            entry("fn f(x) { x + 1 }", Outcome::Succeeded),
            entry("fn g() { 1 } g() + undefined_var", Outcome::Failed),
            entry("let b = ;", Outcome::Rejected),
            entry(
                "fn f(x) { x + 2 }\nprint(f(a)) // shows 4",
                Outcome::Succeeded,
            ),
            entry("if a > 1 { print(\"big\") }", Outcome::Succeeded),
        ];
        let text = render("Saved from a meshshift REPL session.", &entries, None);
        assert_eq!(
            text,
            "//! Saved from a meshshift REPL session.\n\n\
             fn f(x) { x + 2 }\nfn g() { 1 }\n\n\
             let a = 2;\nprint(f(a)); // shows 4\nif a > 1 { print(\"big\") };\n"
        );
        crate::engine::parsing_engine().compile(&text).unwrap();
    }

    #[test]
    fn imports_of_files_point_from_where_the_session_is_saved() {
        let text = "import \"traffic\" as t;\nimport \"demo/setup\" as demo; // \"x\"\n";
        assert_eq!(
            rebase_imports(text, Path::new("runbooks"), Path::new("")),
            "import \"traffic\" as t;\nimport \"runbooks/demo/setup\" as demo; // \"x\"\n"
        );
        assert_eq!(
            rebase("demo/setup", Path::new("runbooks"), Path::new("saved/here")),
            "../../runbooks/demo/setup"
        );
        assert_eq!(rebase("lib", Path::new("a"), Path::new("a")), "lib");
    }

    #[test]
    fn brings_along_the_runbook_functions_it_calls() {
        let runbook = "//! Migrate.\nimport \"traffic\" as traffic;\nfn check(c) { helper(c) }\nfn helper(c) { c }\nfn unused() { 0 }\nfn redefined() { 1 }\nstep(\"a\", || check(1));\n";
        let entries = [
            entry("fn redefined() { 2 }", Outcome::Succeeded),
            entry("check(3)", Outcome::Succeeded),
        ];
        let loaded = Loaded {
            name: "migrate.rhai",
            text: runbook,
            imports: vec![("traffic".into(), "traffic".into())],
        };
        let text = render("Saved.", &entries, Some(loaded));
        assert_eq!(
            text,
            "//! Saved.\n//! Uses functions of migrate.rhai.\n\n\
             import \"traffic\" as traffic;\n\n\
             fn check(c) { helper(c) }\nfn helper(c) { c }\nfn redefined() { 2 }\n\n\
             check(3);\n"
        );
    }
}
