//! A loaded runbook as `:run` executes it: its top-level statements, each cut from the text so
//! that it is compiled on its own against the scope it runs in, and the `step(...)` calls each
//! statement makes, directly, in its closures, or through the runbook's functions and those
//! of the modules it imports.
//!
//! Why not run the runbook's own AST a piece at a time: Rhai compiles a variable reference to
//! an offset from the end of the scope, counting the variables the script declared before it.
//! Those offsets hold only when every earlier statement ran, in order, in a scope nothing else
//! added to. Between two `:run`s the REPL's scope holds the user's variables too, and a step
//! selected out of order skips declarations, so offsets compiled for the whole script read the
//! wrong variable or run off the scope.

use std::collections::HashMap;

use rhai::{AST, ASTNode, Engine, Expr, FnPtr, Module, Position, ScriptFuncDef, Shared, Stmt};

use super::lexer::{TokenKind, definitions, tokenize};
use crate::error::{Error, Result};
use crate::suggestion::did_you_mean;

/// One top-level statement of a runbook, with the comments before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Line and column (1-based) where its text starts in the runbook.
    pub line: usize,
    pub column: usize,
    /// Its text; function definitions in it are blanked (they are loaded with the runbook).
    pub text: String,
}

impl Statement {
    /// The text where it stands in the runbook (blank lines and columns before it), so that
    /// positions in its errors are the runbook's.
    pub fn positioned(&self) -> String {
        let mut out = "\n".repeat(self.line.saturating_sub(1));
        out.push_str(&" ".repeat(self.column.saturating_sub(1)));
        out.push_str(&self.text);
        out
    }

    /// The text as a saved session holds it: without the runbook's `//!` summary and without
    /// the blank runs left where functions were.
    pub fn saved_text(&self) -> String {
        let mut out: Vec<&str> = Vec::new();
        for line in self.text.lines() {
            let line = line.trim_end();
            if line.trim_start().starts_with("//!") {
                continue;
            }
            if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
                continue;
            }
            out.push(line);
        }
        out.join("\n").trim().to_string()
    }
}

/// Cuts a runbook into its top-level statements. `ast` is the runbook compiled whole; each
/// statement starts after the last top-level `;` or `}` before its first token.
pub fn split_statements(text: &str, ast: &AST) -> Vec<Statement> {
    let blanked = blank_definitions(text);
    let mut ends = Vec::new();
    let mut depth = 0isize;
    for token in tokenize(&blanked) {
        match token.kind {
            TokenKind::Punct('(' | '[' | '{') => depth += 1,
            TokenKind::Punct(closing @ (')' | ']' | '}')) => {
                depth -= 1;
                if depth == 0 && closing == '}' {
                    ends.push(token.end);
                }
            }
            TokenKind::Punct(';') if depth == 0 => ends.push(token.end),
            _ => {}
        }
    }
    let lines = line_starts(&blanked);
    let mut starts: Vec<usize> = ast
        .statements()
        .iter()
        .filter_map(first_position)
        .map(|pos| offset_of(&blanked, &lines, pos))
        .map(|offset| ends.iter().rev().find(|end| **end <= offset).copied())
        .map(Option::unwrap_or_default)
        .collect();
    if starts.is_empty() {
        return Vec::new();
    }
    // Comments and the summary before the first statement go with it.
    starts[0] = 0;
    starts.sort_unstable();
    starts.dedup();
    let mut statements = Vec::new();
    for (index, start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(blanked.len());
        let line = lines.partition_point(|l| *l <= *start);
        statements.push(Statement {
            line,
            column: blanked[lines[line - 1]..*start].chars().count() + 1,
            text: blanked[*start..end].to_string(),
        });
    }
    statements
}

/// The text with every function definition replaced by spaces (line breaks kept).
fn blank_definitions(text: &str) -> String {
    let mut out = text.to_string();
    for (start, end, _) in definitions(text).into_iter().rev() {
        let blank: String = text[start..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(start..end, &blank);
    }
    out
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(at, _)| at + 1))
        .collect()
}

/// The byte offset of a position (columns count characters).
fn offset_of(text: &str, lines: &[usize], pos: Position) -> usize {
    let line = pos.line().unwrap_or(1).max(1);
    let Some(start) = lines.get(line - 1).copied() else {
        return text.len();
    };
    let column = pos.position().unwrap_or(1).max(1);
    text[start..]
        .char_indices()
        .nth(column - 1)
        .map_or(text.len(), |(at, _)| start + at)
}

/// The earliest position in a statement (an expression statement's own position is that of
/// its operator, `a.b()` at the `.`).
fn first_position(statement: &Stmt) -> Option<Position> {
    let single = AST::new([statement.clone()], Module::new());
    let mut first: Option<Position> = None;
    single.walk(&mut |path: &[ASTNode]| {
        let pos = match path.last() {
            Some(ASTNode::Stmt(stmt)) => stmt.position(),
            Some(ASTNode::Expr(expr)) => expr.start_position(),
            _ => Position::NONE,
        };
        let key = |p: Position| (p.line().unwrap_or(0), p.position().unwrap_or(0));
        if !pos.is_none() && first.is_none_or(|f| key(pos) < key(f)) {
            first = Some(pos);
        }
        true
    });
    first
}

/// One `step(...)` call a runbook makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCall {
    /// The title, or `…` when it is computed (`step(\`shift ${w}%\`, …)`).
    pub title: String,
    pub line: usize,
    /// The imported module the call is in (`demo/setup`), if not in the runbook.
    pub module: Option<String>,
    /// The function through which its statement reaches it (`demo::install`), if any.
    pub via: Option<String>,
    /// The top-level statement that runs it.
    pub statement: usize,
}

/// A module the runbook imports: alias, path, and the module.
pub type Import = (String, String, Shared<Module>);

/// Every step the runbook's statements run, in order.
pub fn find_steps(
    parser: &Engine,
    statements: &[Statement],
    runbook: &AST,
    imports: &[Import],
) -> Vec<StepCall> {
    let mut finder = Finder {
        runbook: functions_by_name(runbook.iter_fn_def()),
        modules: imports
            .iter()
            .map(|(alias, path, module)| {
                let functions = module.iter_script_fn_info().map(|(.., def)| def);
                (alias.clone(), path.clone(), functions_by_name(functions))
            })
            .collect(),
        found: Vec::new(),
        visiting: Vec::new(),
    };
    let mut steps = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        let Ok(ast) = parser.compile(statement.positioned()) else {
            continue;
        };
        let saved = finder.runbook.clone();
        finder.runbook.extend(functions_by_name(ast.iter_fn_def()));
        finder.visit(
            None,
            &AST::new(ast.statements().to_vec(), Module::new()),
            None,
        );
        finder.runbook = saved;
        steps.extend(finder.found.drain(..).map(|found| StepCall {
            title: found.title,
            line: found.line,
            module: found.module,
            via: found.via,
            statement: index,
        }));
    }
    steps
}

fn functions_by_name<'a>(
    functions: impl Iterator<Item = &'a Shared<ScriptFuncDef>>,
) -> HashMap<String, Shared<ScriptFuncDef>> {
    functions
        .map(|def| (def.name.to_string(), def.clone()))
        .collect()
}

struct Found {
    title: String,
    line: usize,
    module: Option<String>,
    via: Option<String>,
}

enum Event {
    Step(String, usize),
    /// A call (or a closure's function pointer): namespace root, name.
    Call(Option<String>, String),
}

struct Finder {
    runbook: HashMap<String, Shared<ScriptFuncDef>>,
    modules: Vec<(String, String, HashMap<String, Shared<ScriptFuncDef>>)>,
    found: Vec<Found>,
    /// Functions being visited (module index, name): recursion stops here.
    visiting: Vec<(Option<usize>, String)>,
}

impl Finder {
    /// Collects the steps of `ast`'s statements, which are in the runbook (`place` None) or in
    /// an imported module.
    fn visit(&mut self, place: Option<usize>, ast: &AST, via: Option<&str>) {
        for event in events(ast) {
            let (title, line, namespace, name) = match event {
                Event::Step(title, line) => (Some(title), line, None, String::new()),
                Event::Call(namespace, name) => (None, 0, namespace, name),
            };
            if let Some(title) = title {
                self.found.push(Found {
                    title,
                    line,
                    module: place.map(|m| self.modules[m].1.clone()),
                    via: via.map(str::to_string),
                });
                continue;
            }
            let target = match (&namespace, place) {
                (None, None) => self.runbook.get(&name).map(|def| (None, def.clone())),
                (None, Some(m)) => self.modules[m]
                    .2
                    .get(&name)
                    .map(|def| (Some(m), def.clone())),
                (Some(root), None) => self
                    .modules
                    .iter()
                    .position(|(alias, ..)| alias == root)
                    .and_then(|m| {
                        self.modules[m]
                            .2
                            .get(&name)
                            .map(|def| (Some(m), def.clone()))
                    }),
                // A module's own imports are not followed.
                (Some(_), Some(_)) => None,
            };
            let Some((target_place, def)) = target else {
                continue;
            };
            let key = (target_place, name.clone());
            if self.visiting.contains(&key) {
                continue;
            }
            let named = match target_place {
                Some(m) => format!("{}::{name}", self.modules[m].0),
                None => name.clone(),
            };
            let via = via
                .map(str::to_string)
                .or_else(|| (!name.starts_with("anon$")).then_some(named));
            let mut body = Module::new();
            body.set_script_fn(def);
            self.visiting.push(key);
            self.visit(
                target_place,
                &AST::new(Vec::<Stmt>::new(), body),
                via.as_deref(),
            );
            self.visiting.pop();
        }
    }
}

/// Step calls and function calls in the order they appear (the walk visits a call before its
/// arguments, so a step's closure comes right after the step).
fn events(ast: &AST) -> Vec<Event> {
    let mut events = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos)))
            | Some(ASTNode::Expr(Expr::FnCall(call, pos)))
            | Some(ASTNode::Expr(Expr::MethodCall(call, pos))) => Some((call, pos)),
            Some(ASTNode::Expr(Expr::DynamicConstant(value, _))) => {
                if let Some(pointer) = value.read_lock::<FnPtr>() {
                    events.push(Event::Call(None, pointer.fn_name().to_string()));
                }
                None
            }
            _ => None,
        };
        if let Some((call, pos)) = call {
            let namespace = (!call.namespace.is_empty()).then(|| call.namespace.root().to_string());
            if call.name == "step" && namespace.is_none() && call.args.len() == 2 {
                let title = match &call.args[0] {
                    Expr::StringConstant(title, _) => title.to_string(),
                    _ => "…".to_string(),
                };
                events.push(Event::Step(title, pos.line().unwrap_or(0)));
            } else {
                events.push(Event::Call(namespace, call.name.to_string()));
            }
        }
        true
    });
    events
}

/// Finds the step a user named: its number in `:steps`, its exact title, or a unique start of
/// a title (case-insensitive).
pub fn select<'a>(steps: &'a [StepCall], wanted: &str) -> Result<&'a StepCall> {
    let wanted = wanted.trim().trim_matches('"');
    if let Ok(number) = wanted.parse::<usize>() {
        return steps
            .get(number.wrapping_sub(1))
            .ok_or_else(|| Error::Other {
                message: format!(
                    "there is no step {number}: the runbook has {} steps (`:steps` lists them)",
                    steps.len()
                ),
            });
    }
    if let Some(exact) = steps.iter().find(|s| s.title == wanted) {
        return Ok(exact);
    }
    let lower = wanted.to_lowercase();
    let starting: Vec<&StepCall> = steps
        .iter()
        .filter(|s| s.title.to_lowercase().starts_with(&lower))
        .collect();
    match starting.as_slice() {
        [one] => Ok(one),
        [] => {
            let suggestion = did_you_mean(wanted, steps.iter().map(|s| s.title.as_str()))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(Error::Other {
                message: format!("no step `{wanted}` in the loaded runbook{suggestion}"),
            })
        }
        many => Err(Error::Other {
            message: format!(
                "`{wanted}` names several steps: {}",
                many.iter()
                    .map(|s| format!("`{}`", s.title))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// The `:steps` listing; steps of statements before `next` have run.
pub fn format_steps(name: &str, steps: &[StepCall], next: usize) -> String {
    if steps.is_empty() {
        return format!("{name} has no step(...) calls (`:run` runs it to the end)");
    }
    let mut out =
        format!("steps of {name} (`:run N` runs the runbook up to step N, `:run` to its end):\n");
    for (index, step) in steps.iter().enumerate() {
        let place = match (&step.module, &step.via) {
            (Some(module), Some(via)) => format!("line {} of {module}, in {via}", step.line),
            (None, Some(via)) => format!("line {}, in {via}", step.line),
            (Some(module), None) => format!("line {} of {module}", step.line),
            (None, None) => format!("line {}", step.line),
        };
        let done = if step.statement < next { "  done" } else { "" };
        out.push_str(&format!(
            "  {:>2}  {}  ({place}){done}\n",
            index + 1,
            step.title
        ));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNBOOK: &str = r#"//! A summary.
let ns = "bookinfo";
fn helper(n) { step("inside helper", || n) }
step("prechecks", || { step("nested", || 2); });
print("between"); fn unused() { step("never", || 0) }
let copied = step("copy", || 3);
for w in [10, 50] { step(`shift ${w}%`, || w); }
if ns != "" {
    helper(1)
} else { 0 }
source.apply(#{kind: "x"});
step("retire", || 4)
"#;

    fn loaded() -> (Vec<Statement>, Vec<StepCall>) {
        let parser = crate::engine::parsing_engine();
        let ast = parser.compile(RUNBOOK).unwrap();
        let statements = split_statements(RUNBOOK, &ast);
        let steps = find_steps(&parser, &statements, &ast, &[]);
        (statements, steps)
    }

    #[test]
    fn statements_are_cut_where_they_start_and_keep_their_positions() {
        let (statements, _) = loaded();
        let texts: Vec<String> = statements.iter().map(Statement::saved_text).collect();
        assert_eq!(
            texts,
            vec![
                "let ns = \"bookinfo\";",
                "step(\"prechecks\", || { step(\"nested\", || 2); });",
                "print(\"between\");",
                "let copied = step(\"copy\", || 3);",
                "for w in [10, 50] { step(`shift ${w}%`, || w); }",
                "if ns != \"\" {\n    helper(1)\n} else { 0 }",
                "source.apply(#{kind: \"x\"});",
                "step(\"retire\", || 4)",
            ]
        );
        let positions: Vec<(usize, usize)> =
            statements.iter().map(|s| (s.line, s.column)).collect();
        // A statement starts right after the one before it, on the same line.
        assert_eq!(positions[0], (1, 1));
        assert_eq!(positions[3], (5, 18));
        // Compiled on its own, a statement's positions are the runbook's.
        let parser = crate::engine::parsing_engine();
        let error = parser
            .compile(
                Statement {
                    text: "let = 1;".into(),
                    line: 7,
                    column: 5,
                }
                .positioned(),
            )
            .unwrap_err();
        assert_eq!(error.position().line(), Some(7));
    }

    #[test]
    fn steps_are_found_in_statements_closures_and_called_functions() {
        let (_, steps) = loaded();
        let found: Vec<(&str, usize, Option<&str>)> = steps
            .iter()
            .map(|s| (s.title.as_str(), s.statement, s.via.as_deref()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("prechecks", 1, None),
                ("nested", 1, None),
                ("copy", 3, None),
                ("…", 4, None),
                ("inside helper", 5, Some("helper")),
                ("retire", 7, None),
            ]
        );
        assert_eq!(steps[4].line, 3);
    }

    #[test]
    fn every_shipped_runbook_splits_into_statements_that_compile_alone() {
        let parser = crate::engine::parsing_engine();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rhai") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let ast = parser.compile(&text).unwrap();
            let statements = split_statements(&text, &ast);
            assert_eq!(statements.len(), ast.statements().len(), "{path:?}");
            for statement in &statements {
                let alone = parser.compile(statement.positioned());
                assert!(alone.is_ok(), "{path:?}: {alone:?}\n{}", statement.text);
                assert_eq!(alone.unwrap().statements().len(), 1, "{}", statement.text);
            }
            checked += 1;
        }
        assert!(checked >= 4);
    }

    #[test]
    fn steps_are_selected_by_number_title_or_start() {
        let (_, steps) = loaded();
        assert_eq!(select(&steps, "copy").unwrap().statement, 3);
        assert_eq!(select(&steps, "6").unwrap().title, "retire");
        assert_eq!(select(&steps, "pre").unwrap().title, "prechecks");
        assert_eq!(select(&steps, "inside").unwrap().statement, 5);
        let message = |s: &str| select(&steps, s).unwrap_err().message();
        assert!(
            message("copyy").contains("did you mean `copy`?"),
            "{}",
            message("copyy")
        );
        assert!(message("9").contains("has 6 steps"));
        let listing = format_steps("r.rhai", &steps, 4);
        assert!(listing.contains("   3  copy  (line 6)  done"), "{listing}");
        assert!(
            listing.contains("   5  inside helper  (line 3, in helper)\n"),
            "{listing}"
        );
    }
}
