//! The script reference, built from the doc comments of host functions (Rust `///` in the
//! plugin modules) and stdlib functions (Rhai `///`): `meshshift doc`, `docs/reference.md`,
//! the REPL's `:help`, editor definitions, and the examples test.

pub use crate::engine::signature::{clean_signature_text, script_type};
use std::path::Path;

use rhai::{Engine, FnAccess};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::host;
use crate::stdlib;
use crate::suggestion::did_you_mean;

/// One documented function (one overload).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDoc {
    /// Host module name (`manifest`) or stdlib import name (`traffic`).
    pub module: String,
    /// How scripts call it: `load` for host functions, `traffic::shift` for stdlib ones.
    pub call_name: String,
    pub signature: String,
    /// The doc comment without comment markers (Markdown).
    pub doc: String,
}

impl FunctionDoc {
    /// The first sentence of the doc, on one line.
    pub fn summary(&self) -> String {
        let paragraph: Vec<&str> = self
            .doc
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect();
        let paragraph = paragraph.join(" ");
        match paragraph.find(". ") {
            Some(end) => paragraph[..=end].to_string(),
            None => paragraph,
        }
    }

    /// The ```rhai examples in the doc: (code, runnable) — `rhai,no_run` blocks need a cluster
    /// or a file and are only compiled.
    pub fn examples(&self) -> Vec<(String, bool)> {
        let mut examples = Vec::new();
        let mut current: Option<(String, bool)> = None;
        for line in self.doc.lines() {
            let trimmed = line.trim();
            match &mut current {
                None if trimmed.starts_with("```rhai") => {
                    current = Some((String::new(), !trimmed.contains("no_run")));
                }
                Some(_) if trimmed == "```" => examples.extend(current.take()),
                Some((code, _)) => {
                    code.push_str(line);
                    code.push('\n');
                }
                None => {}
            }
        }
        examples
    }
}

/// A group of functions.
#[derive(Debug, Clone)]
pub struct ModuleDoc {
    pub name: String,
    pub summary: String,
    /// `import "x" as x;` is needed (stdlib) or not (host).
    pub is_stdlib: bool,
    pub functions: Vec<FunctionDoc>,
}

/// The whole reference.
#[derive(Debug, Clone)]
pub struct Reference {
    pub modules: Vec<ModuleDoc>,
}

impl Reference {
    /// Builds the reference from the registered host modules and the embedded stdlib.
    pub fn build() -> Reference {
        let mut modules = Vec::new();
        for module in host::MODULES {
            let mut engine = Engine::new_raw();
            engine.register_global_module((module.build)().into());
            modules.push(ModuleDoc {
                name: module.name.to_string(),
                summary: module.summary.to_string(),
                is_stdlib: false,
                functions: host_functions(&engine, module.name),
            });
        }
        let engine = crate::engine::parsing_engine();
        for (name, text) in stdlib::MODULES {
            let Ok(ast) = engine.compile(text) else {
                continue;
            };
            let summary = crate::runbook::summary(text).unwrap_or_default();
            let mut functions: Vec<FunctionDoc> = ast
                .iter_functions()
                .filter(|f| f.access != FnAccess::Private && !f.name.starts_with("anon$"))
                .map(|f| FunctionDoc {
                    module: name.to_string(),
                    call_name: format!("{name}::{}", f.name),
                    signature: format!("{name}::{}({})", f.name, f.params.join(", ")),
                    doc: strip_comment_markers(&f.comments),
                })
                .collect();
            // The AST keeps functions in a hash map; sort for a stable reference.
            functions.sort_by(|a, b| a.signature.cmp(&b.signature));
            modules.push(ModuleDoc {
                name: name.to_string(),
                summary,
                is_stdlib: true,
                functions,
            });
        }
        Reference { modules }
    }

    /// Every function of every module.
    pub fn functions(&self) -> impl Iterator<Item = &FunctionDoc> {
        self.modules.iter().flat_map(|m| m.functions.iter())
    }

    /// `meshshift doc`: one line per function.
    pub fn overview(&self) -> String {
        let mut out =
            String::from("meshshift script reference (`meshshift doc NAME` shows one function)\n");
        for module in &self.modules {
            out.push('\n');
            if module.is_stdlib {
                out.push_str(&format!(
                    "{} (stdlib: import \"{}\" as {};): {}\n",
                    module.name, module.name, module.name, module.summary
                ));
            } else {
                out.push_str(&format!("{}: {}\n", module.name, module.summary));
            }
            for function in &module.functions {
                out.push_str(&format!(
                    "  {}\n      {}\n",
                    function.signature,
                    function.summary()
                ));
            }
        }
        out
    }

    /// `meshshift doc NAME`: every overload of a function, or a whole module.
    pub fn lookup(&self, name: &str) -> Result<String> {
        if let Some(module) = self.modules.iter().find(|m| m.name == name) {
            return Ok(module_markdown(module));
        }
        let matching: Vec<&FunctionDoc> =
            self.functions().filter(|f| f.call_name == name).collect();
        if matching.is_empty() {
            let candidates: Vec<&str> = self
                .functions()
                .map(|f| f.call_name.as_str())
                .chain(self.modules.iter().map(|m| m.name.as_str()))
                .collect();
            return Err(Error::UnknownFunction {
                signature: name.to_string(),
                at: None,
                suggestion: did_you_mean(name, candidates),
            });
        }
        Ok(matching
            .iter()
            .map(|f| function_markdown(f))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// `docs/reference.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "# meshshift script reference\n\nGenerated by `meshshift doc --markdown`; edit the doc comments, not this file.\n\n",
        );
        out.push_str("Host functions are always available. Stdlib modules are imported by name, e.g. `import \"traffic\" as traffic;`.\n\n");
        for module in &self.modules {
            out.push_str(&module_markdown(module));
            out.push('\n');
        }
        out.trim_end().to_string() + "\n"
    }
}

fn module_markdown(module: &ModuleDoc) -> String {
    let mut out = if module.is_stdlib {
        format!(
            "## stdlib `{}`\n\n{}\n\n`import \"{}\" as {};`\n\n",
            module.name, module.summary, module.name, module.name
        )
    } else {
        format!("## {}\n\n{}\n\n", module.name, module.summary)
    };
    for function in &module.functions {
        out.push_str(&function_markdown(function));
        out.push('\n');
    }
    out
}

fn function_markdown(function: &FunctionDoc) -> String {
    format!(
        "### `{}`\n\n{}\n",
        function.signature,
        function.doc.trim_end()
    )
}

/// Host functions of an engine holding one module, from Rhai's metadata.
fn host_functions(engine: &Engine, module: &str) -> Vec<FunctionDoc> {
    let json: Value = engine
        .gen_fn_metadata_to_json(false)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut functions: Vec<FunctionDoc> = json["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let name = f["name"].as_str()?;
            let comments: Vec<&str> = f["docComments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            Some(FunctionDoc {
                module: module.to_string(),
                call_name: name.to_string(),
                signature: clean_signature(f),
                doc: strip_comment_markers(&comments),
            })
        })
        .collect();
    functions.sort_by(|a, b| {
        a.call_name
            .cmp(&b.call_name)
            .then(a.signature.cmp(&b.signature))
    });
    functions
}

/// `load(path: string) -> array` from Rhai's metadata (Rust types as script authors know them).
fn clean_signature(function: &Value) -> String {
    let name = function["name"].as_str().unwrap_or_default();
    let params: Vec<String> = function["params"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let param = p["name"].as_str().unwrap_or("_");
            match p["type"].as_str() {
                Some(t) => format!("{param}: {}", script_type(t)),
                None => param.to_string(),
            }
        })
        .collect();
    let returns = function["returnType"]
        .as_str()
        .map(script_type)
        .unwrap_or_default();
    if returns.is_empty() || returns == "()" {
        format!("{name}({})", params.join(", "))
    } else {
        format!("{name}({}) -> {returns}", params.join(", "))
    }
}

/// Rhai writes a function's return type as its Rust declaration says (`HostResult<Map>`,
/// `Result<Array, Box<EvalAltResult>>`); editors want the type a script sees (`map`, `array`).
fn script_return_types(definitions: &str) -> String {
    definitions
        .split_inclusive('\n')
        .map(|line| {
            let (body, end) = line
                .strip_suffix(";\n")
                .map_or((line, ""), |body| (body, ";\n"));
            match body.rsplit_once(" -> ") {
                Some((head, returns))
                    if !end.is_empty() && head.trim_start().starts_with("fn ") =>
                {
                    format!("{head} -> {}{end}", script_type(returns))
                }
                _ => line.to_string(),
            }
        })
        .collect()
}

/// Removes `///` and `/** */` markers, keeping the Markdown inside.
fn strip_comment_markers(comments: &[&str]) -> String {
    let mut lines = Vec::new();
    for comment in comments {
        for line in comment.lines() {
            let line = line.trim_start();
            let text = line
                .strip_prefix("///")
                .or_else(|| line.strip_prefix("/**"))
                .or_else(|| line.strip_prefix("*/"))
                .or_else(|| line.strip_prefix('*'))
                .unwrap_or(line);
            let text = text.strip_suffix("*/").unwrap_or(text);
            lines.push(text.strip_prefix(' ').unwrap_or(text).to_string());
        }
    }
    lines.join("\n").trim().to_string()
}

/// Writes `.d.rhai` files for editors: host functions, and each stdlib module as a module.
pub fn write_definitions(dir: &Path) -> Result<usize> {
    let mut engine = Engine::new();
    host::register(&mut engine);
    for (name, text) in stdlib::MODULES {
        let helper = crate::engine::parsing_engine();
        if let Ok(ast) = helper.compile(text) {
            let mut module = (**ast.shared_lib()).clone();
            module.build_index();
            engine.register_static_module(*name, module.into());
        }
    }
    let definitions = engine.definitions();
    let files: Vec<(String, String)> = definitions.iter_files().collect();
    std::fs::create_dir_all(dir).map_err(|e| Error::WriteFile {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, script_return_types(text)).map_err(|e| Error::WriteFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_extracted_with_their_run_mode() {
        let function = FunctionDoc {
            module: "m".into(),
            call_name: "f".into(),
            signature: "f()".into(),
            doc: "Does f.\n\n# Example\n```rhai\nf();\n```\n```rhai,no_run\nload(\"x\");\n```"
                .into(),
        };
        assert_eq!(
            function.examples(),
            vec![("f();\n".into(), true), ("load(\"x\");\n".into(), false)]
        );
        assert_eq!(function.summary(), "Does f.");
    }

    #[test]
    fn definitions_show_the_types_scripts_see() {
        assert_eq!(
            script_return_types(
                "/// Loads.\nfn load(path: string) -> Result<Array, Box<EvalAltResult>>;\n\
                 fn get(c: Cluster) -> HostResult<Map >;\nfn f() -> bool;\n"
            ),
            "/// Loads.\nfn load(path: string) -> array;\nfn get(c: Cluster) -> map;\nfn f() -> bool;\n"
        );
    }

    #[test]
    fn script_types_read_like_rhai() {
        assert_eq!(script_type("&str"), "string");
        assert_eq!(script_type("Result<Array, Box<EvalAltResult>>"), "array");
        assert_eq!(script_type("&mut Map"), "map");
        assert_eq!(script_type("HostResult<Array>"), "array");
        assert_eq!(script_type("i64"), "int");
        assert_eq!(
            clean_signature_text("load(path: &str) -> Result<Array, Box<EvalAltResult>>"),
            "load(path: string) -> array"
        );
        assert_eq!(
            clean_signature_text("label(target: &mut Dynamic, labels: Map)"),
            "label(target: any, labels: map)"
        );
    }
}
