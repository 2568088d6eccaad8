//! What `meshshift check` and `meshshift list` learn from a compiled script without running it:
//! the modules it imports, the functions it calls (so typos surface before a run), and the
//! parameters it reads.

use std::collections::{BTreeMap, BTreeSet};

use rhai::{AST, ASTNode, Expr, Position, Stmt};

/// One call site.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `istio` for `istio::precheck(...)`, empty otherwise.
    pub namespace: String,
    pub name: String,
    pub position: Position,
    pub is_method: bool,
}

/// One `param("NAME"[, default])`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamUse {
    pub name: String,
    /// The default as written, when it is a literal.
    pub default: Option<String>,
    pub position: Position,
}

/// Everything found in one script.
#[derive(Debug, Default)]
pub struct Analysis {
    /// alias -> (import path, position)
    pub imports: BTreeMap<String, (String, Position)>,
    pub calls: Vec<Call>,
    pub params: Vec<ParamUse>,
    /// Names declared as variables or parameters (a variable may hold a function pointer).
    pub variables: BTreeSet<String>,
    /// Functions the script defines.
    pub functions: BTreeSet<String>,
}

/// Keywords that look like calls but are not registered functions.
pub const KEYWORD_CALLS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_fn",
    "is_def_var",
    "eval",
    "this",
    "fn_ptr",
];

/// Walks the whole AST, function bodies included.
pub fn analyse(ast: &AST) -> Analysis {
    let mut analysis = Analysis::default();
    for function in ast.iter_functions() {
        analysis.functions.insert(function.name.to_string());
        analysis
            .variables
            .extend(function.params.iter().map(|p| p.to_string()));
    }
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Stmt(Stmt::Import(import, pos))) => {
                if let Expr::StringConstant(target, _) = &import.0 {
                    let alias = import.1.name.to_string();
                    analysis.imports.insert(alias, (target.to_string(), *pos));
                }
            }
            Some(ASTNode::Stmt(Stmt::Var(var, _, _))) => {
                analysis.variables.insert(var.0.name.to_string());
            }
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos)))
            | Some(ASTNode::Expr(Expr::FnCall(call, pos)))
                if call.op_token.is_none() =>
            {
                record_call(&mut analysis, call, *pos, false);
            }
            Some(ASTNode::Expr(Expr::MethodCall(call, pos))) => {
                record_call(&mut analysis, call, *pos, true);
            }
            Some(ASTNode::Stmt(Stmt::For(for_loop, _))) => {
                analysis.variables.insert(for_loop.0.name.to_string());
                if let Some(counter) = &for_loop.1 {
                    analysis.variables.insert(counter.name.to_string());
                }
            }
            _ => {}
        }
        true
    });
    analysis
}

fn record_call(
    analysis: &mut Analysis,
    call: &rhai::FnCallExpr,
    position: Position,
    is_method: bool,
) {
    let namespace = call.namespace.to_string();
    let name = call.name.to_string();
    if namespace.is_empty()
        && name == "param"
        && let Some(Expr::StringConstant(param, _)) = call.args.first()
    {
        analysis.params.push(ParamUse {
            name: param.to_string(),
            default: call.args.get(1).map(literal_text),
            position,
        });
    }
    analysis.calls.push(Call {
        namespace,
        name,
        position,
        is_method,
    });
}

/// A default as the runbook author wrote it (literals only).
fn literal_text(expr: &Expr) -> String {
    match expr {
        Expr::StringConstant(s, _) => format!("{:?}", s.as_str()),
        Expr::IntegerConstant(i, _) => i.to_string(),
        Expr::FloatConstant(f, _) => f.to_string(),
        Expr::BoolConstant(b, _) => b.to_string(),
        Expr::CharConstant(c, _) => format!("'{c}'"),
        Expr::Unit(_) => "()".into(),
        Expr::Array(items, _) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(literal_text)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Expr::DynamicConstant(value, _) => value.to_string(),
        _ => "…".into(),
    }
}
