//! `template(text, vars)`: `${NAME}` substitution that fails on a missing variable.

/// A template problem, with its place in the template text.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Replaces `${NAME}` (names may be dotted: `${target.ip}`) with `lookup(name)`; `$$` is a
/// literal `$`. A missing variable or an unclosed `${` is an error naming line and column.
pub fn render(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    let (mut line, mut column) = (1, 1);
    while let Some((_, ch)) = chars.next() {
        let (here_line, here_column) = (line, column);
        advance(ch, &mut line, &mut column);
        if ch != '$' {
            out.push(ch);
            continue;
        }
        match chars.peek().map(|(_, c)| *c) {
            Some('$') => {
                chars.next();
                column += 1;
                out.push('$');
            }
            Some('{') => {
                chars.next();
                column += 1;
                let mut name = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    advance(c, &mut line, &mut column);
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                let error = |message: String| TemplateError {
                    message,
                    line: here_line,
                    column: here_column,
                };
                if !closed {
                    return Err(error("`${` is never closed with `}`".into()));
                }
                let name = name.trim();
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-');
                if !valid {
                    return Err(error(format!("`${{{name}}}` is not a variable name")));
                }
                match lookup(name) {
                    Some(value) => out.push_str(&value),
                    None => return Err(error(format!("variable `{name}` is not set"))),
                }
            }
            _ => out.push('$'),
        }
    }
    Ok(out)
}

fn advance(ch: char, line: &mut usize, column: &mut usize) {
    if ch == '\n' {
        *line += 1;
        *column = 1;
    } else {
        *column += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "NS" => Some("bookinfo".into()),
            "target.ip" => Some("10.0.0.7".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_escapes() {
        assert_eq!(
            render("ns: ${NS}\naddress: ${ target.ip }\ncost: $$5 $x", vars).unwrap(),
            "ns: bookinfo\naddress: 10.0.0.7\ncost: $5 $x"
        );
    }

    #[test]
    fn missing_variables_name_their_place() {
        let error = render("a: 1\nb: ${MISSING}", vars).unwrap_err();
        assert_eq!(
            error,
            TemplateError {
                message: "variable `MISSING` is not set".into(),
                line: 2,
                column: 4
            }
        );
        assert_eq!(
            render("x ${NS", vars).unwrap_err().message,
            "`${` is never closed with `}`"
        );
        assert_eq!(
            render("${a b}", vars).unwrap_err().message,
            "`${a b}` is not a variable name"
        );
    }
}
