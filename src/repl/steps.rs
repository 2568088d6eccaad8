//! The `step("title", …)` calls of a loaded runbook, found by walking its AST, and which
//! top-level statements `:run STEP` executes.

use rhai::{AST, ASTNode, Expr, Module, Stmt};

use crate::error::{Error, Result};
use crate::suggestion::did_you_mean;

/// One `step(...)` call of a runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCall {
    /// The title, or `…` when it is computed (`step(\`shift ${w}%\`, …)`).
    pub title: String,
    pub line: usize,
    /// The top-level statement holding the call; `None` inside a function or closure body
    /// (a nested step), which `:run` cannot select.
    pub statement: Option<usize>,
}

/// Every step call: top-level ones in statement order, then nested ones by line.
pub fn find_steps(ast: &AST) -> Vec<StepCall> {
    let mut steps = Vec::new();
    for (index, statement) in ast.statements().iter().enumerate() {
        let single = AST::new([statement.clone()], Module::new());
        steps.extend(
            step_calls(&single)
                .into_iter()
                .map(|(title, line)| StepCall {
                    title,
                    line,
                    statement: Some(index),
                }),
        );
    }
    let functions_only = AST::new([], ast.shared_lib().clone());
    let mut nested: Vec<StepCall> = step_calls(&functions_only)
        .into_iter()
        .map(|(title, line)| StepCall {
            title,
            line,
            statement: None,
        })
        .collect();
    nested.sort_by_key(|s| s.line);
    steps.extend(nested);
    steps
}

/// (title, line) of each `step` call in an AST.
fn step_calls(ast: &AST) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos)))
            | Some(ASTNode::Expr(Expr::FnCall(call, pos))) => Some((call, pos)),
            _ => None,
        };
        if let Some((call, pos)) = call
            && call.name == "step"
            && call.namespace.is_empty()
            && call.args.len() == 2
        {
            let title = match &call.args[0] {
                Expr::StringConstant(title, _) => title.to_string(),
                _ => "…".to_string(),
            };
            found.push((title, pos.line().unwrap_or(0)));
        }
        true
    });
    found
}

/// Finds the top-level step a user named: its number in `:steps`, its exact title, or a
/// unique start of a title (case-insensitive).
pub fn select<'a>(steps: &'a [StepCall], wanted: &str) -> Result<&'a StepCall> {
    let top_level: Vec<&StepCall> = steps.iter().filter(|s| s.statement.is_some()).collect();
    let wanted = wanted.trim().trim_matches('"');
    if let Ok(number) = wanted.parse::<usize>() {
        return top_level
            .get(number.wrapping_sub(1))
            .copied()
            .ok_or_else(|| Error::Other {
                message: format!(
                    "there is no step {number}: the runbook has {} top-level steps (`:steps` lists them)",
                    top_level.len()
                ),
            });
    }
    if let Some(exact) = top_level.iter().find(|s| s.title == wanted) {
        return Ok(exact);
    }
    let lower = wanted.to_lowercase();
    let starting: Vec<&&StepCall> = top_level
        .iter()
        .filter(|s| s.title.to_lowercase().starts_with(&lower))
        .collect();
    match starting.as_slice() {
        [one] => Ok(one),
        [] => Err(not_found(steps, wanted)),
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

fn not_found(steps: &[StepCall], wanted: &str) -> Error {
    if let Some(nested) = steps
        .iter()
        .find(|s| s.statement.is_none() && s.title == wanted)
    {
        return Error::Other {
            message: format!(
                "step `{wanted}` (line {}) is inside a function or another step; `:run` runs top-level steps",
                nested.line
            ),
        };
    }
    let suggestion = did_you_mean(wanted, steps.iter().map(|s| s.title.as_str()))
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Error::Other {
        message: format!("no step `{wanted}` in the loaded runbook{suggestion}"),
    }
}

/// The top-level statements `:run` executes for `target`: every statement up to and including
/// the target's, except those holding other steps.
pub fn statements_to_run(steps: &[StepCall], target: &StepCall) -> Vec<usize> {
    let Some(last) = target.statement else {
        return Vec::new();
    };
    let holding_steps: Vec<usize> = steps.iter().filter_map(|s| s.statement).collect();
    (0..=last)
        .filter(|index| *index == last || !holding_steps.contains(index))
        .collect()
}

/// The `:steps` listing.
pub fn format_steps(name: &str, steps: &[StepCall]) -> String {
    if steps.is_empty() {
        return format!("{name} has no step(...) calls");
    }
    let mut out = format!("steps of {name} (`:run N` runs the runbook up to step N):\n");
    let mut number = 0;
    for step in steps {
        match step.statement {
            Some(_) => {
                number += 1;
                out.push_str(&format!(
                    "  {number:>2}  {}  (line {})\n",
                    step.title, step.line
                ));
            }
            None => out.push_str(&format!(
                "   -  {}  (line {}, nested)\n",
                step.title, step.line
            )),
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNBOOK: &str = r#"
let ns = "bookinfo";
fn helper() { step("inside helper", || 1) }
step("prechecks", || { step("nested", || 2); });
print("between");
let copied = step("copy", || 3);
for w in [10, 50] { step(`shift ${w}%`, || w); }
step("retire", || 4);
"#;

    fn steps() -> Vec<StepCall> {
        let ast = crate::engine::parsing_engine().compile(RUNBOOK).unwrap();
        find_steps(&ast)
    }

    #[test]
    fn finds_top_level_and_nested_steps() {
        let titles: Vec<(String, Option<usize>)> = steps()
            .into_iter()
            .map(|s| (s.title, s.statement))
            .collect();
        assert_eq!(
            titles,
            vec![
                ("prechecks".into(), Some(1)),
                ("copy".into(), Some(3)),
                ("…".into(), Some(4)),
                ("retire".into(), Some(5)),
                ("inside helper".into(), None),
                ("nested".into(), None),
            ]
        );
    }

    #[test]
    fn run_skips_other_steps_but_keeps_plain_statements() {
        let steps = steps();
        let copy = select(&steps, "copy").unwrap();
        assert_eq!(statements_to_run(&steps, copy), vec![0, 2, 3]);
        let retire = select(&steps, "4").unwrap();
        assert_eq!(statements_to_run(&steps, retire), vec![0, 2, 5]);
        assert_eq!(select(&steps, "pre").unwrap().title, "prechecks");
    }

    #[test]
    fn unknown_and_nested_steps_are_explained() {
        let steps = steps();
        let message = |s: &str| select(&steps, s).unwrap_err().message();
        assert!(message("nested").contains("inside a function or another step"));
        assert!(
            message("copyy").contains("did you mean `copy`?"),
            "{}",
            message("copyy")
        );
        assert!(message("9").contains("has 4 top-level steps"));
    }
}
