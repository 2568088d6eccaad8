//! A small, forgiving Rhai tokenizer for the REPL: highlighting, finding what the cursor is in
//! for completion, and cutting inputs into definitions and statements for `:save`. It never
//! fails: unterminated strings and comments become tokens that run to the end of the text.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Keyword,
    Identifier,
    Number,
    /// A string or character literal; `closed` is false when the text ends inside it.
    Text {
        quote: char,
        closed: bool,
    },
    Comment,
    Whitespace,
    /// Any other single character: brackets, operators, `.`, `,`, `;`, `#`.
    Punct(char),
}

/// One token: its kind and byte range in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token's text.
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        &source[self.start..self.end]
    }
}

/// Rhai's keywords (and the reserved names scripts see as keywords).
pub const KEYWORDS: &[&str] = &[
    "let",
    "const",
    "fn",
    "private",
    "if",
    "else",
    "switch",
    "while",
    "loop",
    "for",
    "in",
    "do",
    "until",
    "break",
    "continue",
    "return",
    "throw",
    "try",
    "catch",
    "import",
    "export",
    "as",
    "true",
    "false",
    "this",
    "global",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_fn",
    "is_def_var",
    "type_of",
    "print",
    "debug",
    "eval",
];

/// Splits `text` into tokens covering every byte.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, ch)) = chars.peek() {
        let kind = if ch.is_whitespace() {
            skip_while(&mut chars, char::is_whitespace);
            TokenKind::Whitespace
        } else if text[start..].starts_with("//") {
            skip_while(&mut chars, |c| c != '\n');
            TokenKind::Comment
        } else if text[start..].starts_with("/*") {
            chars.next();
            chars.next();
            skip_block_comment(text, &mut chars);
            TokenKind::Comment
        } else if ch == '"' || ch == '`' || ch == '\'' {
            chars.next();
            let closed = skip_string(&mut chars, ch);
            TokenKind::Text { quote: ch, closed }
        } else if ch.is_ascii_digit() {
            skip_number(text, &mut chars);
            TokenKind::Number
        } else if ch.is_alphabetic() || ch == '_' {
            skip_while(&mut chars, |c| c.is_alphanumeric() || c == '_');
            let end = chars.peek().map_or(text.len(), |&(i, _)| i);
            if KEYWORDS.contains(&&text[start..end]) {
                TokenKind::Keyword
            } else {
                TokenKind::Identifier
            }
        } else {
            chars.next();
            TokenKind::Punct(ch)
        };
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        tokens.push(Token { kind, start, end });
    }
    tokens
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

fn skip_while(chars: &mut Chars, keep: impl Fn(char) -> bool) {
    while chars.next_if(|&(_, c)| keep(c)).is_some() {}
}

fn skip_block_comment(text: &str, chars: &mut Chars) {
    for (index, _) in chars.by_ref() {
        if text[..index + 1].ends_with("*/") {
            return;
        }
    }
}

/// Skips to the closing quote (honouring `\` escapes); false when the text ends first.
fn skip_string(chars: &mut Chars, quote: char) -> bool {
    let mut escaped = false;
    for (_, c) in chars.by_ref() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == quote => return true,
            _ => {}
        }
    }
    false
}

fn skip_number(text: &str, chars: &mut Chars) {
    while let Some(&(index, c)) = chars.peek() {
        let decimal_point = c == '.'
            && text[index + 1..]
                .chars()
                .next()
                .is_some_and(|n| n.is_ascii_digit());
        if c.is_ascii_alphanumeric() || c == '_' || decimal_point {
            chars.next();
        } else {
            return;
        }
    }
}

/// Tokens without whitespace and comments.
pub fn significant(tokens: &[Token]) -> Vec<Token> {
    tokens
        .iter()
        .copied()
        .filter(|t| !matches!(t.kind, TokenKind::Whitespace | TokenKind::Comment))
        .collect()
}

/// A top-level piece of an input: a function definition or a run of statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `Some((name, parameter count))` for `fn name(...) { ... }`.
    pub function: Option<(String, usize)>,
    pub text: String,
}

/// Cuts script text into function definitions (with their doc comments) and the statements
/// between them, in order.
pub fn split_items(text: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut statements_start = 0;
    for (start, end, signature) in definitions(text) {
        push_statements(&mut items, &text[statements_start..start]);
        items.push(Item {
            function: Some(signature),
            text: text[start..end].to_string(),
        });
        statements_start = end;
    }
    push_statements(&mut items, &text[statements_start..]);
    items
}

/// The function definitions of a script, in order: the byte range of each (with its doc
/// comments) and its name and arity.
pub fn definitions(text: &str) -> Vec<(usize, usize, (String, usize))> {
    let tokens = tokenize(text);
    let mut found = Vec::new();
    let mut index = 0;
    let mut depth = 0isize;
    while index < tokens.len() {
        let definition = if depth == 0 {
            definition_at(text, &tokens, index)
        } else {
            None
        };
        let Some((start, end, signature)) = definition else {
            depth += bracket_depth(&tokens[index..=index]);
            index += 1;
            continue;
        };
        found.push((
            doc_comment_start(text, &tokens, start),
            tokens[end].end,
            signature,
        ));
        index = end + 1;
    }
    found
}

fn push_statements(items: &mut Vec<Item>, text: &str) {
    if !text.trim().is_empty() {
        items.push(Item {
            function: None,
            text: text.trim().to_string(),
        });
    }
}

/// A definition starting at token `index` (`fn` or `private fn`, outside any bracket): its
/// first token's byte offset, the index of its closing `}` token, and its name and arity.
fn definition_at(
    text: &str,
    tokens: &[Token],
    index: usize,
) -> Option<(usize, usize, (String, usize))> {
    let mut cursor = index;
    let start = tokens[cursor].start;
    if tokens[cursor].kind != TokenKind::Keyword {
        return None;
    }
    if tokens[cursor].text(text) == "private" {
        cursor = next_significant(tokens, cursor + 1)?;
    }
    if tokens[cursor].text(text) != "fn" {
        return None;
    }
    let name_index = next_significant(tokens, cursor + 1)?;
    if tokens[name_index].kind != TokenKind::Identifier {
        return None;
    }
    let open_paren = next_significant(tokens, name_index + 1)?;
    let close_paren = matching_close(tokens, open_paren)?;
    let parameters = tokens[open_paren + 1..close_paren]
        .iter()
        .filter(|t| t.kind == TokenKind::Identifier)
        .count();
    let open_brace = next_significant(tokens, close_paren + 1)?;
    let close_brace = matching_close(tokens, open_brace)?;
    let name = tokens[name_index].text(text).to_string();
    Some((start, close_brace, (name, parameters)))
}

/// Includes the `///` or `/** */` comments right before a definition.
fn doc_comment_start(text: &str, tokens: &[Token], start: usize) -> usize {
    let mut begin = start;
    for token in tokens.iter().rev().filter(|t| t.end <= start) {
        match token.kind {
            TokenKind::Whitespace if token.text(text).matches('\n').count() <= 1 => {}
            TokenKind::Comment
                if token.text(text).starts_with("///") || token.text(text).starts_with("/**") =>
            {
                begin = token.start;
            }
            _ => break,
        }
    }
    begin
}

fn next_significant(tokens: &[Token], from: usize) -> Option<usize> {
    (from..tokens.len())
        .find(|&i| !matches!(tokens[i].kind, TokenKind::Whitespace | TokenKind::Comment))
}

/// The index of the bracket closing the one at `open`.
fn matching_close(tokens: &[Token], open: usize) -> Option<usize> {
    let TokenKind::Punct(opening) = tokens[open].kind else {
        return None;
    };
    if !matches!(opening, '(' | '[' | '{') {
        return None;
    }
    let mut depth = 0usize;
    for (index, token) in tokens.iter().enumerate().skip(open) {
        match token.kind {
            TokenKind::Punct('(' | '[' | '{') => depth += 1,
            TokenKind::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

/// How many brackets are open after these tokens.
pub fn bracket_depth(tokens: &[Token]) -> isize {
    tokens.iter().fold(0, |depth, token| match token.kind {
        TokenKind::Punct('(' | '[' | '{') => depth + 1,
        TokenKind::Punct(')' | ']' | '}') => depth - 1,
        _ => depth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(TokenKind, String)> {
        significant(&tokenize(text))
            .iter()
            .map(|t| (t.kind, t.text(text).to_string()))
            .collect()
    }

    #[test]
    fn tokens_cover_strings_numbers_comments_and_keywords() {
        let text = "let x = \"a\\\"b\" + 1.5; // note\nx.len()";
        assert_eq!(
            kinds(text),
            vec![
                (TokenKind::Keyword, "let".into()),
                (TokenKind::Identifier, "x".into()),
                (TokenKind::Punct('='), "=".into()),
                (
                    TokenKind::Text {
                        quote: '"',
                        closed: true
                    },
                    "\"a\\\"b\"".into()
                ),
                (TokenKind::Punct('+'), "+".into()),
                (TokenKind::Number, "1.5".into()),
                (TokenKind::Punct(';'), ";".into()),
                (TokenKind::Identifier, "x".into()),
                (TokenKind::Punct('.'), ".".into()),
                (TokenKind::Identifier, "len".into()),
                (TokenKind::Punct('('), "(".into()),
                (TokenKind::Punct(')'), ")".into()),
            ]
        );
        let all: String = tokenize(text).iter().map(|t| t.text(text)).collect();
        assert_eq!(all, text);
    }

    #[test]
    fn unterminated_strings_run_to_the_end() {
        let text = "c.get(\"Depl";
        let last = *tokenize(text).last().unwrap();
        assert_eq!(
            last.kind,
            TokenKind::Text {
                quote: '"',
                closed: false
            }
        );
        assert_eq!(last.text(text), "\"Depl");
    }

    #[test]
    fn items_separate_definitions_from_statements() {
        let text = "let a = 1;\n/// Doubles.\nfn double(x) { if x > 0 { x * 2 } else { 0 } }\nprint(double(a));\nprivate fn two(a, b) { a }";
        let items = split_items(text);
        assert_eq!(
            items,
            vec![
                Item {
                    function: None,
                    text: "let a = 1;".into()
                },
                Item {
                    function: Some(("double".into(), 1)),
                    text: "/// Doubles.\nfn double(x) { if x > 0 { x * 2 } else { 0 } }".into()
                },
                Item {
                    function: None,
                    text: "print(double(a));".into()
                },
                Item {
                    function: Some(("two".into(), 2)),
                    text: "private fn two(a, b) { a }".into()
                },
            ]
        );
    }

    #[test]
    fn closures_and_strings_are_not_definitions() {
        let items = split_items("let f = |x| x + 1; print(\"fn g() {}\");");
        assert_eq!(items.len(), 1);
        assert!(items[0].function.is_none());
    }
}
