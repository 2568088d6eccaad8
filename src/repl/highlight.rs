//! Colours for the input line: keywords, strings, numbers and comments, and the command word
//! of a meta-command. Only used when colour is on (a terminal without `NO_COLOR`).

use super::input::is_meta_command;
use super::lexer::{TokenKind, tokenize};
use crate::output::ansi;

const KEYWORD: &str = "35";
const STRING: &str = "32";
const NUMBER: &str = "33";
const COMMENT: &str = "2";
const COMMAND: &str = "1;36";

/// The line with ANSI colours.
pub fn highlight(line: &str) -> String {
    if is_meta_command(line) {
        return highlight_command(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    for token in tokenize(line) {
        let text = token.text(line);
        match colour_of(token.kind) {
            Some(code) => out.push_str(&ansi(code, text)),
            None => out.push_str(text),
        }
    }
    out
}

fn colour_of(kind: TokenKind) -> Option<&'static str> {
    match kind {
        TokenKind::Keyword => Some(KEYWORD),
        TokenKind::Text { .. } => Some(STRING),
        TokenKind::Number => Some(NUMBER),
        TokenKind::Comment => Some(COMMENT),
        _ => None,
    }
}

fn highlight_command(line: &str) -> String {
    let end = line
        .trim_start()
        .find(' ')
        .map_or(line.len(), |i| i + line.len() - line.trim_start().len());
    ansi(COMMAND, &line[..end]) + &line[end..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_keywords_strings_numbers_and_comments() {
        assert_eq!(
            highlight("let x = \"a\" + 1; // n"),
            "\x1b[35mlet\x1b[0m x = \x1b[32m\"a\"\x1b[0m + \x1b[33m1\x1b[0m; \x1b[2m// n\x1b[0m"
        );
        assert_eq!(highlight(":help sample"), "\x1b[1;36m:help\x1b[0m sample");
    }
}
