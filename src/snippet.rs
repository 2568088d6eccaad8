//! Source snippets under error messages: `--> file:line:col`, the line, and a caret.

use crate::output::Style;

/// A place in a source file, with the line's text so an error can draw its own snippet
/// after the file is gone.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The text of that line, when known.
    pub text: Option<String>,
}

impl Location {
    /// Builds a location and looks up the line's text in `source`.
    pub fn in_source(file: &str, source: &str, line: usize, column: usize) -> Location {
        let text = source
            .lines()
            .nth(line.saturating_sub(1))
            .map(str::to_string);
        Location {
            file: file.to_string(),
            line,
            column,
            text,
        }
    }

    /// `file:line:col`.
    pub fn short(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Draws one location the way compilers do.
pub struct Snippet<'a> {
    location: &'a Location,
}

impl<'a> Snippet<'a> {
    pub fn new(location: &'a Location) -> Snippet<'a> {
        Snippet { location }
    }

    pub fn render(&self, style: &Style) -> String {
        let location = self.location;
        let number = location.line.to_string();
        let gutter = " ".repeat(number.len());
        let mut out = format!("{gutter}{} {}\n", style.dim("-->"), location.short());
        let Some(text) = &location.text else {
            return out;
        };
        // Tabs would misplace the caret; show them as four spaces and shift it accordingly.
        let mut shown = String::new();
        let mut caret_offset = 0;
        for (index, ch) in text.chars().enumerate() {
            let piece = if ch == '\t' {
                "    ".to_string()
            } else {
                ch.to_string()
            };
            if index + 1 < location.column {
                caret_offset += piece.chars().count();
            }
            shown.push_str(&piece);
        }
        let width = token_width(text, location.column);
        out.push_str(&format!("{gutter} {}\n", style.dim("|")));
        out.push_str(&format!(
            "{} {} {}\n",
            style.dim(&number),
            style.dim("|"),
            shown.trim_end()
        ));
        out.push_str(&format!(
            "{gutter} {} {}{}\n",
            style.dim("|"),
            " ".repeat(caret_offset),
            style.error(&"^".repeat(width))
        ));
        out
    }
}

/// Underlines the identifier that starts at `column` (one character otherwise).
fn token_width(text: &str, column: usize) -> usize {
    let rest: Vec<char> = text.chars().skip(column.saturating_sub(1)).collect();
    let identifier = rest
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_')
        .count();
    identifier.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_skips_tabs_and_underlines_identifiers() {
        let location = Location {
            file: "a.rhai".into(),
            line: 7,
            column: 2,
            text: Some("\tfoo(1)".into()),
        };
        assert_eq!(
            Snippet::new(&location).render(&Style::plain()),
            " --> a.rhai:7:2\n  |\n7 |     foo(1)\n  |     ^^^\n"
        );
    }

    #[test]
    fn location_without_text_only_names_the_place() {
        let location = Location {
            file: "a.rhai".into(),
            line: 1,
            column: 1,
            text: None,
        };
        assert_eq!(
            Snippet::new(&location).render(&Style::plain()),
            " --> a.rhai:1:1\n"
        );
    }

    #[test]
    fn in_source_takes_the_right_line() {
        let location = Location::in_source("f", "one\ntwo\nthree", 2, 1);
        assert_eq!(location.text.as_deref(), Some("two"));
        assert_eq!(Location::in_source("f", "one", 5, 1).text, None);
    }
}
