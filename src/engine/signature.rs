//! Rust signatures from Rhai's metadata as scripts see them (`load(path: string) -> array`),
//! for error messages, the reference and REPL hints.

/// `load(path: &str) -> Result<Array, Box<EvalAltResult>>` as `load(path: string) -> array`.
pub fn clean_signature_text(signature: &str) -> String {
    let (head, returns) = match signature.split_once(" -> ") {
        Some((head, returns)) => (head, Some(script_type(returns))),
        None => (signature, None),
    };
    let (name, params) = head.split_once('(').unwrap_or((head, ")"));
    let params = params.strip_suffix(')').unwrap_or(params);
    let params: Vec<String> = split_params(params)
        .into_iter()
        .map(|param| match param.split_once(':') {
            Some((name, kind)) => format!("{}: {}", name.trim(), script_type(kind)),
            None => param.trim().to_string(),
        })
        .collect();
    match returns.filter(|r| r != "()") {
        Some(returns) => format!("{name}({}) -> {returns}", params.join(", ")),
        None => format!("{name}({})", params.join(", ")),
    }
}

/// Splits parameters on commas outside `<…>`.
fn split_params(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for ch in text.chars() {
        match ch {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts
}

/// Rust type names in metadata, as script types.
pub fn script_type(rust: &str) -> String {
    let mut t = rust.trim().to_string();
    // `Result<T, E>` and aliases of it such as `HostResult<T>`: the script sees `T`.
    if let Some(inner) = t
        .strip_prefix("HostResult<")
        .and_then(|s| s.strip_suffix('>'))
        .map(str::to_string)
    {
        t = inner;
    }
    if let Some(inner) = t
        .strip_prefix("Result<")
        .and_then(|s| s.rsplit_once(','))
        .map(|(ok, _)| ok.to_string())
    {
        t = inner;
    }
    let t = t.replace("&mut ", "").replace('&', "");
    match t.trim() {
        "str" | "String" | "ImmutableString" => "string".into(),
        "i64" | "INT" => "int".into(),
        "f64" | "FLOAT" => "float".into(),
        "bool" => "bool".into(),
        "Array" | "rhai::Array" => "array".into(),
        "Map" | "rhai::Map" => "map".into(),
        "Dynamic" | "rhai::Dynamic" => "any".into(),
        "FnPtr" | "rhai::FnPtr" => "closure".into(),
        "()" => "()".into(),
        other => other.rsplit("::").next().unwrap_or(other).to_string(),
    }
}
