//! Is an input complete? Rhai's own parser decides: an open block, an unfinished expression
//! or an open back-tick string means "keep reading"; any other syntax error is real and is
//! shown at once.

use rhai::{Engine, ParseErrorType, Position};

/// What to do with the text typed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// Evaluate it (it parses, or its error is a real one).
    Complete,
    /// Read another line first.
    Incomplete,
}

/// Decides whether `text` can be evaluated yet. Meta-commands (`:help`) are always complete.
pub fn completeness(engine: &Engine, text: &str) -> Completeness {
    if text.trim().is_empty() || is_meta_command(text) {
        return Completeness::Complete;
    }
    // Rhai accepts a block comment left open at the end; the user is still typing it.
    if ends_in_open_comment(text) {
        return Completeness::Incomplete;
    }
    match engine.compile(text) {
        Ok(_) => Completeness::Complete,
        Err(error) if is_unfinished(error.err_type(), error.position(), text) => {
            Completeness::Incomplete
        }
        Err(_) => Completeness::Complete,
    }
}

/// True for a line that starts with `:` (a REPL command, not Rhai).
pub fn is_meta_command(text: &str) -> bool {
    text.trim_start().starts_with(':')
}

fn ends_in_open_comment(text: &str) -> bool {
    super::lexer::tokenize(text).last().is_some_and(|token| {
        let comment = token.text(text);
        token.kind == super::lexer::TokenKind::Comment
            && comment.starts_with("/*")
            && !comment.ends_with("*/")
    })
}

/// An error caused by the text ending too early, not by a mistake in it.
fn is_unfinished(error: &ParseErrorType, position: Position, text: &str) -> bool {
    match error {
        ParseErrorType::UnexpectedEOF => true,
        // An open back-tick string may span lines; `"` strings may not.
        ParseErrorType::BadInput(rhai::LexError::UnterminatedString) => {
            text.matches('`').count() % 2 == 1
        }
        // `fn f() {`, `[1,`, `foo(`, `x.`: the parser wanted more at the very end. A missing
        // token in the middle (`foo(1 2)`) is a real error.
        _ => is_at_end(text, position),
    }
}

/// True when nothing but whitespace follows `position` in `text`.
fn is_at_end(text: &str, position: Position) -> bool {
    let (Some(line), Some(column)) = (position.line(), position.position()) else {
        return true;
    };
    let Some(line_text) = text.split('\n').nth(line - 1) else {
        return true;
    };
    let line_start = text
        .split('\n')
        .take(line - 1)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    let offset = line_text
        .char_indices()
        .nth(column - 1)
        .map_or(line_start + line_text.len(), |(i, _)| line_start + i);
    text.get(offset..).is_none_or(|rest| rest.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Completeness {
        completeness(&crate::engine::parsing_engine(), text)
    }

    #[test]
    fn open_blocks_and_unfinished_expressions_are_incomplete() {
        for text in [
            "fn f(x) {",
            "if true {\n  print(1);",
            "let a = [1,",
            "foo(",
            "#{a: ",
            "let x = `abc",
            "x.",
            "1 +",
            "/* note",
            "if a { 1 } else {",
        ] {
            assert_eq!(check(text), Completeness::Incomplete, "{text:?}");
        }
    }

    #[test]
    fn complete_inputs_and_real_errors_are_evaluated() {
        for text in [
            "let a = 1",
            "fn f(x) { x }",
            "if true {\n  1\n}",
            "let a = ;",
            "foo(1 2)",
            "\"abc",
            ":help sample",
            "",
            "let s = `a\nb`;",
        ] {
            assert_eq!(check(text), Completeness::Complete, "{text:?}");
        }
    }
}
