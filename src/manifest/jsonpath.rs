//! kubectl's JSONPath template language (`kubectl get -o jsonpath=...`) over `serde_json::Value`.
//!
//! A template is literal text with actions in braces, e.g. `{.status.loadBalancer.ingress[0].ip}`
//! or `{range .items[*]}{.metadata.name}{"\n"}{end}`. [`render`] prints a template the way kubectl
//! prints it; [`query`] evaluates one expression and returns the matched values.
//!
//! The semantics are those of `k8s.io/client-go/util/jsonpath` with missing keys allowed, which
//! is how `kubectl get -o jsonpath` runs it: a missing key yields nothing, while an out-of-range
//! index, indexing or filtering something that is not an array, and comparing values of different
//! types are errors, with kubectl's messages. Filters have no `&&`, `||` or `=~`, as in kubectl.
//! Where kubectl fails or misbehaves, this module differs:
//! - `['a.b']` reads the literal key `a.b` when the object has it, and otherwise `.a.b`, which is
//!   how kubectl always reads it (so both `labels['istio.io/rev']` and `['metadata.name']` work);
//! - `["a"]` works like `['a']`; quoted keys may hold `]`, `,` and escaped quotes; subscripts may
//!   have spaces around them (`[ 0 ]`); filters may nest; a string ending in an escaped backslash
//!   (`"a\\"`) parses (kubectl: unterminated string);
//! - a `{range}` without `{end}` (kubectl repeats the rest of the template), `[]` (kubectl: `[0]`),
//!   an unknown filter operator, and `range`/`end` anywhere but alone at the start of an action
//!   are parse errors;
//! - integers and floats compare by value (kubectl: "incompatible types for comparison");
//! - filtering `null` yields nothing, an empty selection (`[*]` of `[]`) no longer drops the
//!   matches of the arrays after it, and `.*` yields nothing for a string (kubectl: its bytes);
//! - object members are visited in document order by `.*` and `..` (kubectl: random order), while
//!   printed objects have their keys sorted exactly as kubectl prints them.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Number, Value};

/// How deeply `{range}` blocks and filters may nest, so no template can exhaust the stack.
const MAX_NESTING: usize = 64;

/// A template that could not be parsed or evaluated, with the position of the problem.
///
/// ```text
/// render("{.items[0", &pods)  =>  JsonPathError { message: "unterminated array", column: 8 }
/// its Display form            =>  "unterminated array at column 8"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPathError {
    /// What went wrong, lower-case and without a trailing period, e.g. `unclosed action`.
    pub message: String,
    /// 1-based position, in characters (not bytes), of the problem in the template.
    pub column: usize,
}

impl JsonPathError {
    /// An error at the 0-based character index `index`.
    fn new(message: impl Into<String>, index: usize) -> Self {
        Self {
            message: message.into(),
            column: index + 1,
        }
    }
}

impl fmt::Display for JsonPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.message, self.column)
    }
}

impl std::error::Error for JsonPathError {}

/// Renders a kubectl-style template against `value`, exactly as `kubectl get -o jsonpath=...`
/// prints it.
///
/// Text outside braces is printed verbatim and quoted strings inside braces print unescaped.
/// Each expression prints its matches separated by one space: strings raw, numbers and booleans
/// as text, `null` as `null`, objects and arrays as compact JSON with sorted keys (Go's
/// `json.Marshal`). `{range expression}...{end}` repeats its body with `@` (and `$`) bound to
/// each match in turn. A missing key prints nothing.
///
/// ```text
/// render(r#"{.spec.ports[?(@.name=="http2")].port}"#, &service)         => Ok("80")
/// render(r#"{range .items[*]}{.metadata.name}{"\n"}{end}"#, &pod_list)  => Ok("web-0\nweb-1\n")
/// render("{end}", &pod_list)
///     => Err(JsonPathError { message: "not in range, nothing to end".into(), column: 1 })
/// ```
///
/// # Errors
///
/// A syntax error anywhere in the template, and the evaluation errors kubectl reports: an index
/// out of bounds, indexing or filtering a value that is not an array, a filter comparing values
/// of different types or a side matching several values.
pub fn render(template: &str, value: &Value) -> Result<String, JsonPathError> {
    let chars: Vec<char> = template.chars().collect();
    let nodes = parse_template(&chars)?;
    let mut out = String::new();
    render_nodes(&nodes, value, &mut out)?;
    Ok(out)
}

/// Evaluates a single expression against `value` and returns the matched values themselves.
///
/// The braces and a leading `$` or `@` are optional: `{.spec.ports[*].port}`,
/// `.spec.ports[*].port` and `$.spec.ports[*].port` are the same query. A missing key gives an
/// empty vector. Text around the expression, several actions, or `{range}`/`{end}` are errors.
///
/// ```text
/// query(".spec.ports[*].port", &service)      => Ok(vec![json!(15021), json!(80), json!(443)])
/// query("{.metadata.labels}", &service)       => Ok(vec![json!({"app": "istio-ingressgateway"})])
/// query("{.status.nothing[0].ip}", &service)  => Ok(vec![])
/// ```
///
/// # Errors
///
/// The errors of [`render`], and a template that is not a single expression.
pub fn query(expression: &str, value: &Value) -> Result<Vec<Value>, JsonPathError> {
    let chars: Vec<char> = expression.chars().collect();
    let start = chars
        .iter()
        .position(|c| !c.is_whitespace())
        .unwrap_or(chars.len());
    let end = chars
        .iter()
        .rposition(|c| !c.is_whitespace())
        .map_or(start, |i| i + 1);
    let parser = Parser { chars: &chars };
    let steps = if chars.get(start) == Some(&'{') {
        let (parts, next) = parser.parse_parts(start + 1, end, Stop::Brace(start), 0)?;
        if next < end {
            return Err(JsonPathError::new("query takes a single expression", next));
        }
        match classify(parts)? {
            Action::Print(steps) => steps,
            Action::Range(_) | Action::End => {
                return Err(JsonPathError::new(
                    "query takes an expression, not range or end",
                    start,
                ));
            }
        }
    } else {
        let (parts, _) = parser.parse_parts(start, end, Stop::End, 0)?;
        parts.into_iter().filter_map(Part::into_step).collect()
    };
    Ok(eval(&steps, vec![value])?.into_iter().cloned().collect())
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

/// One element of a template.
#[derive(Debug)]
enum Node {
    /// Literal text between actions.
    Text(String),
    /// `{expression}`: prints the matches.
    Print(Vec<Step>),
    /// `{range expression}body{end}`: renders `body` once per match.
    Range { steps: Vec<Step>, body: Vec<Node> },
}

/// One step of an expression; each maps the current list of values to a new list.
#[derive(Debug)]
struct Step {
    kind: StepKind,
    /// 0-based character index of the step in the template, for runtime errors.
    at: usize,
}

#[derive(Debug)]
enum StepKind {
    /// `.name`: the member of every object.
    Field(String),
    /// `['key']`; `path` holds the dotted reading of a key containing unescaped dots.
    Key {
        key: String,
        path: Option<Vec<String>>,
    },
    /// `.*`: every member or element.
    Wildcard,
    /// `..`: every non-empty container below and including each value.
    Recursive,
    /// `[i]`, `[a:b:c]`, `[*]`.
    Slice(Slice),
    /// `[0,2]`, `['a','b']`: each member applied to all values, results concatenated.
    Union(Vec<Step>),
    /// `[?(...)]`.
    Filter(Box<Filter>),
    /// A quoted string: yields itself once whatever the input, as kubectl's text node does.
    Text(Value),
    /// A number or boolean: yields itself once per input value.
    Literal(Value),
}

/// Array selection with kubectl's parameters: `[i]` is `[i:i+1]`, negative bounds count from
/// the end, and bounds are checked rather than clamped.
#[derive(Debug)]
struct Slice {
    start: Option<i64>,
    end: SliceEnd,
    step: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
enum SliceEnd {
    /// `[a:]`: the length.
    Open,
    /// `[a:b]`.
    Given(i64),
    /// `[a]`: `a + 1`, where a derived `0` (from `[-1]`) means the length.
    Derived(i64),
}

#[derive(Debug)]
struct Filter {
    left: Vec<Step>,
    /// The operator, the right operand and the operator's index; `None` is an existence test.
    comparison: Option<(Op, Vec<Step>, usize)>,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parser

/// A parsed piece of an action: a step, or the `range`/`end` keyword at an index.
enum Part {
    Step(Step),
    Range(usize),
    End(usize),
}

impl Part {
    fn into_step(self) -> Option<Step> {
        match self {
            Part::Step(step) => Some(step),
            Part::Range(_) | Part::End(_) => None,
        }
    }
}

/// What an action turned out to be.
enum Action {
    Print(Vec<Step>),
    Range(Vec<Step>),
    End,
}

/// Where the expression being parsed stops.
#[derive(Clone, Copy)]
enum Stop {
    /// At the `}` closing the action whose `{` is at this index.
    Brace(usize),
    /// At the end of the given range (filter operands, queries without braces).
    End,
}

fn parse_template(chars: &[char]) -> Result<Vec<Node>, JsonPathError> {
    let parser = Parser { chars };
    // Open `{range}` blocks: their expression, their index, and the nodes that precede them.
    let mut open: Vec<(Vec<Step>, usize, Vec<Node>)> = Vec::new();
    let mut nodes = Vec::new();
    let mut text = String::new();
    let mut pos = 0;
    while let Some(&c) = chars.get(pos) {
        if c != '{' {
            text.push(c);
            pos += 1;
            continue;
        }
        if !text.is_empty() {
            nodes.push(Node::Text(std::mem::take(&mut text)));
        }
        let (parts, next) = parser.parse_parts(pos + 1, chars.len(), Stop::Brace(pos), 0)?;
        match classify(parts)? {
            Action::Print(steps) => nodes.push(Node::Print(steps)),
            Action::Range(steps) => {
                if open.len() >= MAX_NESTING {
                    return Err(JsonPathError::new("ranges nested too deeply", pos));
                }
                open.push((steps, pos, std::mem::take(&mut nodes)));
            }
            Action::End => {
                let Some((steps, _, outer)) = open.pop() else {
                    return Err(JsonPathError::new("not in range, nothing to end", pos));
                };
                let body = std::mem::replace(&mut nodes, outer);
                nodes.push(Node::Range { steps, body });
            }
        }
        pos = next;
    }
    if !text.is_empty() {
        nodes.push(Node::Text(text));
    }
    if let Some((_, at, _)) = open.last() {
        return Err(JsonPathError::new("unclosed range, missing {end}", *at));
    }
    Ok(nodes)
}

/// Sorts an action into print, range or end. kubectl accepts the keywords anywhere in an action
/// with odd results; here `range` must come first and `end` must stand alone.
fn classify(parts: Vec<Part>) -> Result<Action, JsonPathError> {
    let count = parts.len();
    let mut range = false;
    let mut steps = Vec::with_capacity(count);
    for (i, part) in parts.into_iter().enumerate() {
        match part {
            Part::Step(step) => steps.push(step),
            Part::Range(_) if i == 0 => range = true,
            Part::Range(at) => return Err(JsonPathError::new("range must start its action", at)),
            Part::End(_) if count == 1 => return Ok(Action::End),
            Part::End(at) => return Err(JsonPathError::new("end must stand alone", at)),
        }
    }
    Ok(if range {
        Action::Range(steps)
    } else {
        Action::Print(steps)
    })
}

/// Characters that end a field name or keyword (kubectl's `isTerminator`).
fn is_terminator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
    )
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Indices into the template's characters; every method takes the exclusive `end` it may read to.
struct Parser<'c> {
    chars: &'c [char],
}

impl Parser<'_> {
    fn at(&self, pos: usize, end: usize) -> Option<char> {
        if pos < end {
            self.chars.get(pos).copied()
        } else {
            None
        }
    }

    fn starts_with(&self, pos: usize, end: usize, prefix: &str) -> bool {
        prefix
            .chars()
            .enumerate()
            .all(|(i, c)| self.at(pos + i, end) == Some(c))
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars
            .get(from..to)
            .unwrap_or_default()
            .iter()
            .collect()
    }

    /// Parses steps from `pos` until `stop`; returns them and the index just past the action.
    fn parse_parts(
        &self,
        mut pos: usize,
        end: usize,
        stop: Stop,
        depth: usize,
    ) -> Result<(Vec<Part>, usize), JsonPathError> {
        let mut parts: Vec<Part> = Vec::new();
        loop {
            let Some(c) = self.at(pos, end) else {
                return match stop {
                    Stop::Brace(open) => Err(JsonPathError::new("unclosed action", open)),
                    Stop::End => Ok((parts, pos)),
                };
            };
            if c == '}' && matches!(stop, Stop::Brace(_)) {
                return Ok((parts, pos + 1));
            }
            if self.starts_with(pos, end, "[?(") {
                let (part, next) = self.parse_filter(pos, end, depth)?;
                parts.push(part);
                pos = next;
                continue;
            }
            if self.starts_with(pos, end, "..") {
                if let Some(Part::Step(Step {
                    kind: StepKind::Recursive,
                    ..
                })) = parts.last()
                {
                    return Err(JsonPathError::new(
                        "invalid multiple recursive descent",
                        pos,
                    ));
                }
                parts.push(Part::Step(Step {
                    kind: StepKind::Recursive,
                    at: pos,
                }));
                pos += 2;
                // `..name` is recursive descent followed by the field `name`.
                if self.at(pos, end).is_some_and(is_alphanumeric) {
                    let (part, next) = self.parse_field(pos, end, pos);
                    parts.push(part);
                    pos = next;
                }
                continue;
            }
            let (part, next) = match c {
                '\r' | '\n' => {
                    return Err(match stop {
                        Stop::Brace(open) => JsonPathError::new("unclosed action", open),
                        Stop::End => JsonPathError::new("unexpected line break", pos),
                    });
                }
                // `@` and `$` both name the current value, as in kubectl; neither is a step.
                ' ' | '@' | '$' => {
                    pos += 1;
                    continue;
                }
                '[' => self.parse_bracket(pos, end)?,
                '"' | '\'' => self.parse_quoted(pos, end)?,
                '.' => self.parse_field(pos + 1, end, pos),
                '+' | '-' => self.parse_number(pos, end)?,
                c if c.is_ascii_digit() => self.parse_number(pos, end)?,
                c if is_alphanumeric(c) => self.parse_identifier(pos, end, stop)?,
                c => return Err(unrecognized(c, pos)),
            };
            parts.push(part);
            pos = next;
        }
    }

    /// A field name from `start` up to a terminator; `\` makes the next character literal, so
    /// `.istio\.io/rev` is the key `istio.io/rev`.
    fn parse_field(&self, start: usize, end: usize, at: usize) -> (Part, usize) {
        let mut name = String::new();
        let mut escaped = false;
        let mut pos = start;
        while let Some(c) = self.at(pos, end) {
            if c == '\\' {
                escaped = true;
                if let Some(next) = self.at(pos + 1, end) {
                    name.push(next);
                }
                pos += 2;
                continue;
            }
            if is_terminator(c) {
                break;
            }
            name.push(c);
            pos += 1;
        }
        let kind = if name == "*" && !escaped {
            StepKind::Wildcard
        } else {
            StepKind::Field(name)
        };
        (Part::Step(Step { kind, at }), pos.min(end))
    }

    fn parse_identifier(
        &self,
        start: usize,
        end: usize,
        stop: Stop,
    ) -> Result<(Part, usize), JsonPathError> {
        let mut pos = start;
        while self.at(pos, end).is_some_and(|c| !is_terminator(c)) {
            pos += 1;
        }
        let word = self.text(start, pos);
        let literal = |b: bool| {
            Part::Step(Step {
                kind: StepKind::Literal(Value::Bool(b)),
                at: start,
            })
        };
        let part = match (word.as_str(), stop) {
            ("true", _) => literal(true),
            ("false", _) => literal(false),
            ("range", Stop::Brace(_)) => Part::Range(start),
            ("end", Stop::Brace(_)) => Part::End(start),
            _ => {
                return Err(JsonPathError::new(
                    format!("unrecognized identifier {word}"),
                    start,
                ));
            }
        };
        Ok((part, pos))
    }

    /// A number literal: an optional sign, then digits and dots; an integer if it fits in i64.
    fn parse_number(&self, start: usize, end: usize) -> Result<(Part, usize), JsonPathError> {
        let mut pos = start + 1;
        while self
            .at(pos, end)
            .is_some_and(|c| c == '.' || c.is_ascii_digit())
        {
            pos += 1;
        }
        let text = self.text(start, pos);
        let value = match text.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => match text.parse::<f64>().ok().and_then(Number::from_f64) {
                Some(n) => Value::Number(n),
                None => {
                    return Err(JsonPathError::new(
                        format!("cannot parse number {text}"),
                        start,
                    ));
                }
            },
        };
        Ok((
            Part::Step(Step {
                kind: StepKind::Literal(value),
                at: start,
            }),
            pos,
        ))
    }

    /// Index just past the quote closing the quoted text opening at `open`, if it closes before
    /// `end` and before a line break.
    fn skip_quoted(&self, open: usize, end: usize, quote: char) -> Option<usize> {
        let mut pos = open + 1;
        loop {
            match self.at(pos, end)? {
                '\n' => return None,
                '\\' => {
                    pos += if self.at(pos + 1, end).is_some_and(|c| c != '\n') {
                        2
                    } else {
                        1
                    }
                }
                c if c == quote => return Some(pos + 1),
                _ => pos += 1,
            }
        }
    }

    /// A quoted string literal with Go's escapes (`\n`, `\t`, `\"`, `\u00e9`, ...).
    fn parse_quoted(&self, start: usize, end: usize) -> Result<(Part, usize), JsonPathError> {
        let quote = self.at(start, end).unwrap_or('"');
        let Some(next) = self.skip_quoted(start, end, quote) else {
            return Err(JsonPathError::new("unterminated quoted string", start));
        };
        let content = self.chars.get(start + 1..next - 1).unwrap_or_default();
        let text = unquote(content, quote, start + 1)?;
        Ok((
            Part::Step(Step {
                kind: StepKind::Text(Value::String(text)),
                at: start,
            }),
            next,
        ))
    }

    /// `[...]`: an index, slice, `*`, quoted key or union, up to the first `]` outside quotes.
    fn parse_bracket(&self, start: usize, end: usize) -> Result<(Part, usize), JsonPathError> {
        let mut pos = start + 1;
        loop {
            match self.at(pos, end) {
                None | Some('\n') => return Err(JsonPathError::new("unterminated array", start)),
                Some(']') => break,
                Some(quote @ ('\'' | '"')) => {
                    pos = self
                        .skip_quoted(pos, end, quote)
                        .ok_or_else(|| JsonPathError::new("unterminated array", start))?;
                }
                Some(_) => pos += 1,
            }
        }
        let mut members = Vec::new();
        let mut from = start + 1;
        let mut i = from;
        while let Some(c) = self.at(i, pos) {
            match c {
                '\'' | '"' => i = self.skip_quoted(i, pos, c).unwrap_or(pos),
                ',' => {
                    members.push((from, i));
                    i += 1;
                    from = i;
                }
                _ => i += 1,
            }
        }
        members.push((from, pos));
        let kind = if members.len() == 1 {
            self.parse_subscript(start + 1, pos, start)?
        } else {
            let mut steps = Vec::with_capacity(members.len());
            for (from, to) in members {
                let (from, to) = self.trim(from, to);
                steps.push(Step {
                    kind: self.parse_subscript(from, to, from)?,
                    at: from,
                });
            }
            StepKind::Union(steps)
        };
        Ok((Part::Step(Step { kind, at: start }), pos + 1))
    }

    fn trim(&self, mut from: usize, mut to: usize) -> (usize, usize) {
        while from < to && self.at(from, to) == Some(' ') {
            from += 1;
        }
        while to > from && self.at(to - 1, to) == Some(' ') {
            to -= 1;
        }
        (from, to)
    }

    /// One subscript (a union member or a whole bracket): `*`, a quoted key or a slice.
    fn parse_subscript(
        &self,
        from: usize,
        to: usize,
        at: usize,
    ) -> Result<StepKind, JsonPathError> {
        let (from, to) = self.trim(from, to);
        let text = self.text(from, to);
        let invalid = || JsonPathError::new(format!("invalid array index {text}"), at);
        if text.is_empty() {
            return Err(JsonPathError::new("empty array index", at));
        }
        if text == "*" {
            return Ok(StepKind::Slice(Slice {
                start: None,
                end: SliceEnd::Open,
                step: None,
            }));
        }
        if let Some(quote @ ('\'' | '"')) = self.at(from, to) {
            if self.skip_quoted(from, to, quote) != Some(to) {
                return Err(invalid());
            }
            return Ok(key_step(
                self.chars.get(from + 1..to - 1).unwrap_or_default(),
            ));
        }
        // kubectl's slice syntax: ^(-?\d*)(:-?\d*)?(:-?\d*)?$
        let pieces: Vec<&str> = text.split(':').collect();
        let well_formed = |p: &&str| {
            p.strip_prefix('-')
                .unwrap_or(p)
                .chars()
                .all(|c| c.is_ascii_digit())
        };
        if pieces.len() > 3 || !pieces.iter().all(well_formed) {
            return Err(invalid());
        }
        let number = |piece: &str| -> Result<Option<i64>, JsonPathError> {
            if piece.is_empty() {
                return Ok(None);
            }
            piece
                .parse::<i64>()
                .map(Some)
                .map_err(|_| JsonPathError::new(format!("array index {piece} is not a number"), at))
        };
        let start = number(pieces.first().copied().unwrap_or(""))?;
        let end = match pieces.get(1) {
            None => SliceEnd::Derived(start.unwrap_or(0).saturating_add(1)),
            Some(piece) => number(piece)?.map_or(SliceEnd::Open, SliceEnd::Given),
        };
        let step = match pieces.get(2) {
            None => None,
            Some(piece) => number(piece)?,
        };
        if step.is_some_and(|s| s <= 0) {
            return Err(JsonPathError::new("step must be > 0", at));
        }
        Ok(StepKind::Slice(Slice { start, end, step }))
    }

    /// `[?(condition)]` starting at `start`; the condition ends at the first `)` outside quotes
    /// and nested parentheses, which must be followed by `]`.
    fn parse_filter(
        &self,
        start: usize,
        end: usize,
        depth: usize,
    ) -> Result<(Part, usize), JsonPathError> {
        if depth >= MAX_NESTING {
            return Err(JsonPathError::new("filters nested too deeply", start));
        }
        let unterminated = || JsonPathError::new("unterminated filter", start);
        let body = start + 3;
        let mut pos = body;
        let mut parens = 0usize;
        loop {
            match self.at(pos, end) {
                None | Some('\n') => return Err(unterminated()),
                Some(quote @ ('\'' | '"')) => {
                    pos = self.skip_quoted(pos, end, quote).ok_or_else(unterminated)?;
                }
                Some('\\') => pos += 2,
                Some('(') => {
                    parens += 1;
                    pos += 1;
                }
                Some(')') if parens == 0 => break,
                Some(')') => {
                    parens -= 1;
                    pos += 1;
                }
                Some(_) => pos += 1,
            }
        }
        if self.at(pos + 1, end) != Some(']') {
            return Err(JsonPathError::new("unclosed array expect ]", pos + 1));
        }
        let filter = self.parse_condition(body, pos, depth + 1)?;
        Ok((
            Part::Step(Step {
                kind: StepKind::Filter(Box::new(filter)),
                at: start,
            }),
            pos + 2,
        ))
    }

    /// `left op right` or a bare path (an existence test). Like kubectl, the operator is the first
    /// run of `!<>=` (here: outside quotes and brackets) with text on both sides; otherwise the
    /// whole condition is an existence test, where stray operator characters are reported.
    fn parse_condition(
        &self,
        from: usize,
        to: usize,
        depth: usize,
    ) -> Result<Filter, JsonPathError> {
        let (mut brackets, mut parens) = (0usize, 0usize);
        let mut operator = None;
        let mut pos = from;
        while let Some(c) = self.at(pos, to) {
            match c {
                '\'' | '"' => {
                    pos = self.skip_quoted(pos, to, c).unwrap_or(to);
                    continue;
                }
                '\\' => pos += 1,
                '[' => brackets += 1,
                ']' => brackets = brackets.saturating_sub(1),
                '(' => parens += 1,
                ')' => parens = parens.saturating_sub(1),
                '!' | '<' | '>' | '=' if brackets == 0 && parens == 0 => {
                    let mut op_end = pos;
                    while self.at(op_end, to).is_some_and(|c| "!<>=~".contains(c)) {
                        op_end += 1;
                    }
                    operator = Some((pos, op_end));
                    break;
                }
                _ => {}
            }
            pos += 1;
        }
        let steps = |from, to| -> Result<Vec<Step>, JsonPathError> {
            let (parts, _) = self.parse_parts(from, to, Stop::End, depth)?;
            Ok(parts.into_iter().filter_map(Part::into_step).collect())
        };
        match operator {
            Some((op_start, op_end)) if op_start > from && op_end < to => {
                let text = self.text(op_start, op_end);
                let op = match text.as_str() {
                    "==" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    _ => {
                        let message = format!("unrecognized filter operator {text}");
                        return Err(JsonPathError::new(message, op_start));
                    }
                };
                let left = steps(from, op_start)?;
                let right = steps(op_end, to)?;
                Ok(Filter {
                    left,
                    comparison: Some((op, right, op_start)),
                })
            }
            _ => Ok(Filter {
                left: steps(from, to)?,
                comparison: None,
            }),
        }
    }
}

fn unrecognized(c: char, at: usize) -> JsonPathError {
    // Go's %#U: the code point, then the character itself when printable.
    let message = if c.is_control() {
        format!("unrecognized character in action: U+{:04X}", u32::from(c))
    } else {
        format!(
            "unrecognized character in action: U+{:04X} '{c}'",
            u32::from(c)
        )
    };
    JsonPathError::new(message, at)
}

/// A quoted bracket key. `\` makes the next character literal, as in field names. A key with
/// unescaped dots also keeps its dotted path, which is how kubectl reads it.
fn key_step(raw: &[char]) -> StepKind {
    let mut segments = vec![String::new()];
    let mut key = String::new();
    let mut chars = raw.iter();
    while let Some(&c) = chars.next() {
        let (c, literal) = if c == '\\' {
            match chars.next() {
                Some(&next) => (next, true),
                None => break,
            }
        } else {
            (c, false)
        };
        key.push(c);
        if c == '.' && !literal {
            segments.push(String::new());
        } else if let Some(last) = segments.last_mut() {
            last.push(c);
        }
    }
    let path = (segments.len() > 1).then_some(segments);
    StepKind::Key { key, path }
}

/// Go's `strconv.Unquote` escapes over the characters between the quotes; `offset` is the index
/// of the first of them.
fn unquote(content: &[char], quote: char, offset: usize) -> Result<String, JsonPathError> {
    fn push_char(bytes: &mut Vec<u8>, c: char) {
        bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
    fn digits(content: &[char], from: usize, count: usize, radix: u32) -> Option<u32> {
        let text = content.get(from..from + count)?;
        text.iter()
            .try_fold(0u32, |acc, c| Some(acc * radix + c.to_digit(radix)?))
    }
    let mut bytes = Vec::with_capacity(content.len());
    let mut i = 0;
    while let Some(&c) = content.get(i) {
        if c != '\\' {
            push_char(&mut bytes, c);
            i += 1;
            continue;
        }
        let bad = JsonPathError::new("invalid escape sequence in quoted string", offset + i);
        let Some(&escape) = content.get(i + 1) else {
            return Err(bad);
        };
        i += 2;
        let simple = match escape {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '\'' | '"' if escape == quote => Some(escape as u8),
            _ => None,
        };
        if let Some(byte) = simple {
            bytes.push(byte);
            continue;
        }
        match escape {
            // `\xHH` and `\OOO` are single bytes, as in Go.
            'x' => {
                let byte = digits(content, i, 2, 16).and_then(|v| u8::try_from(v).ok());
                bytes.push(byte.ok_or(bad)?);
                i += 2;
            }
            '0'..='7' => {
                let byte = digits(content, i - 1, 3, 8).and_then(|v| u8::try_from(v).ok());
                bytes.push(byte.ok_or(bad)?);
                i += 2;
            }
            'u' | 'U' => {
                let count = if escape == 'u' { 4 } else { 8 };
                let c = digits(content, i, count, 16)
                    .and_then(char::from_u32)
                    .ok_or(bad)?;
                push_char(&mut bytes, c);
                i += count;
            }
            _ => return Err(bad),
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| JsonPathError::new("quoted string is not valid utf-8", offset))
}

// ---------------------------------------------------------------------------------------------
// Evaluation

fn render_nodes(nodes: &[Node], current: &Value, out: &mut String) -> Result<(), JsonPathError> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Print(steps) => {
                for (i, value) in eval(steps, vec![current])?.into_iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    write_text(value, out);
                }
            }
            Node::Range { steps, body } => {
                for item in eval(steps, vec![current])? {
                    render_nodes(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval<'a>(steps: &'a [Step], input: Vec<&'a Value>) -> Result<Vec<&'a Value>, JsonPathError> {
    steps
        .iter()
        .try_fold(input, |values, step| eval_step(step, values))
}

fn eval_step<'a>(step: &'a Step, input: Vec<&'a Value>) -> Result<Vec<&'a Value>, JsonPathError> {
    let mut out = Vec::new();
    match &step.kind {
        // A missing key, or a field of a non-object, yields nothing (kubectl's allowMissingKeys).
        StepKind::Field(name) => out.extend(input.into_iter().filter_map(|v| v.get(name.as_str()))),
        StepKind::Key { key, path } => {
            for value in input {
                let found = value.get(key.as_str()).or_else(|| {
                    let path = path.as_ref()?;
                    path.iter()
                        .try_fold(value, |v, segment| v.get(segment.as_str()))
                });
                out.extend(found);
            }
        }
        StepKind::Wildcard => {
            for value in input {
                match value {
                    Value::Object(map) => out.extend(map.values()),
                    Value::Array(items) => out.extend(items),
                    _ => {}
                }
            }
        }
        StepKind::Recursive => {
            for value in input {
                descend(value, &mut out);
            }
        }
        StepKind::Slice(slice) => {
            for value in input {
                match value {
                    Value::Array(items) => slice.select(items, step.at, &mut out)?,
                    Value::Null => {}
                    other => {
                        let message = format!("{} is not array or slice", type_name(other));
                        return Err(JsonPathError::new(message, step.at));
                    }
                }
            }
        }
        StepKind::Union(members) => {
            for member in members {
                out.extend(eval_step(member, input.clone())?);
            }
        }
        StepKind::Filter(filter) => {
            for value in input {
                let items = match value {
                    Value::Array(items) => items,
                    Value::Null => continue,
                    other => {
                        let kind = type_name(other);
                        let message =
                            format!("{kind} is not array or slice and cannot be filtered");
                        return Err(JsonPathError::new(message, step.at));
                    }
                };
                for item in items {
                    if filter.matches(item, step.at)? {
                        out.push(item);
                    }
                }
            }
        }
        StepKind::Text(text) => out.push(text),
        StepKind::Literal(literal) => out.extend(input.iter().map(|_| literal)),
    }
    Ok(out)
}

/// Pushes `root` and everything below it that has children, depth first in document order.
/// kubectl walks strings as byte arrays, so a non-empty string counts as having children.
fn descend<'a>(root: &'a Value, out: &mut Vec<&'a Value>) {
    let mut stack = vec![root];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) if !map.is_empty() => {
                out.push(value);
                stack.extend(map.values().rev());
            }
            Value::Array(items) if !items.is_empty() => {
                out.push(value);
                stack.extend(items.iter().rev());
            }
            Value::String(s) if !s.is_empty() => out.push(value),
            _ => {}
        }
    }
}

impl Slice {
    /// kubectl's bounds rules: an empty selection is always fine, otherwise both ends must lie
    /// within the array (no clamping) and the start must not pass the end.
    fn select<'a>(
        &self,
        items: &'a [Value],
        at: usize,
        out: &mut Vec<&'a Value>,
    ) -> Result<(), JsonPathError> {
        let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
        let mut start = self.start.unwrap_or(0);
        if start < 0 {
            start = start.saturating_add(len);
        }
        let (mut end, derived) = match self.end {
            SliceEnd::Open => (len, false),
            SliceEnd::Given(end) => (end, false),
            SliceEnd::Derived(end) => (end, true),
        };
        if end < 0 || (end == 0 && derived) {
            end = end.saturating_add(len);
        }
        if start == end {
            return Ok(());
        }
        let out_of_bounds = |index: i64| {
            let message = format!("array index out of bounds: index {index}, length {len}");
            JsonPathError::new(message, at)
        };
        if !(0..len).contains(&start) {
            return Err(out_of_bounds(start));
        }
        if !(0..=len).contains(&end) {
            return Err(out_of_bounds(end.saturating_sub(1)));
        }
        if start > end {
            let message = format!("starting index {start} is greater than ending index {end}");
            return Err(JsonPathError::new(message, at));
        }
        let start = usize::try_from(start).unwrap_or(0);
        let end = usize::try_from(end).unwrap_or(0);
        let step = usize::try_from(self.step.unwrap_or(1)).unwrap_or(1).max(1);
        out.extend(
            items
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .step_by(step),
        );
        Ok(())
    }
}

impl Filter {
    fn matches(&self, item: &Value, at: usize) -> Result<bool, JsonPathError> {
        let Some((op, right, op_at)) = &self.comparison else {
            // kubectl ignores evaluation errors in an existence test.
            return Ok(eval(&self.left, vec![item]).is_ok_and(|found| !found.is_empty()));
        };
        // An operand that matches nothing (a missing key) rejects the item without an error.
        let Some(left) = single(&eval(&self.left, vec![item])?, at)? else {
            return Ok(false);
        };
        let Some(right) = single(&eval(right, vec![item])?, at)? else {
            return Ok(false);
        };
        compare(left, right, *op).map_err(|message| JsonPathError::new(message, *op_at))
    }
}

fn single<'a>(values: &[&'a Value], at: usize) -> Result<Option<&'a Value>, JsonPathError> {
    match values {
        [] => Ok(None),
        [value] => Ok(Some(*value)),
        _ => Err(JsonPathError::new(
            "can only compare one element at a time",
            at,
        )),
    }
}

/// A value as Go's template comparison functions see it.
enum Comparable<'v> {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'v str),
}

/// Go's text/template `eq`/`lt` rules, which kubectl uses: only scalars compare, of the same
/// kind (here integers and floats compare by value), and booleans only for (in)equality.
fn compare(left: &Value, right: &Value, op: Op) -> Result<bool, &'static str> {
    fn comparable(value: &Value) -> Result<Comparable<'_>, &'static str> {
        match value {
            Value::Bool(b) => Ok(Comparable::Bool(*b)),
            Value::String(s) => Ok(Comparable::Str(s)),
            Value::Number(n) => Ok(match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Comparable::Int(i128::from(i)),
                (None, Some(u)) => Comparable::Int(i128::from(u)),
                (None, None) => Comparable::Float(n.as_f64().unwrap_or(f64::NAN)),
            }),
            Value::Null | Value::Array(_) | Value::Object(_) => Err("invalid type for comparison"),
        }
    }
    let ordering = match (comparable(left)?, comparable(right)?) {
        (Comparable::Bool(a), Comparable::Bool(b)) => match op {
            Op::Eq => return Ok(a == b),
            Op::Ne => return Ok(a != b),
            _ => return Err("invalid type for comparison"),
        },
        (Comparable::Str(a), Comparable::Str(b)) => Some(a.cmp(b)),
        (Comparable::Int(a), Comparable::Int(b)) => Some(a.cmp(&b)),
        (Comparable::Float(a), Comparable::Float(b)) => a.partial_cmp(&b),
        (Comparable::Int(a), Comparable::Float(b)) => (a as f64).partial_cmp(&b),
        (Comparable::Float(a), Comparable::Int(b)) => a.partial_cmp(&(b as f64)),
        _ => return Err("incompatible types for comparison"),
    };
    Ok(ordering.is_some_and(|ordering| op.holds(ordering)))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------------------------
// Output, byte for byte as kubectl (Go's fmt.Fprint for scalars, json.Marshal for containers)

fn write_text(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&format_number(n, false)),
        Value::Array(_) | Value::Object(_) => write_json(value, out),
    }
}

/// Compact JSON as Go's `json.Marshal` writes it: object keys sorted, `<`, `>` and `&` escaped.
fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&format_number(n, true)),
        Value::String(s) => write_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => push_unicode_escape(c, out),
            c if u32::from(c) < 0x20 => push_unicode_escape(c, out),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `\u` and four lower-case hex digits, for characters of the Basic Multilingual Plane.
fn push_unicode_escape(c: char, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let code = u32::from(c);
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[((code >> shift) & 0xf) as usize]));
    }
}

/// kubectl holds integers as int64 and everything else (fractions, integers beyond int64) as
/// float64, which Go prints with `%v` as text and in `json.Marshal`'s own style inside JSON.
fn format_number(n: &Number, json: bool) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sign = if f < 0.0 { "-" } else { "" };
    let (digits, point) = decimal_digits(f);
    let exponent = point - 1;
    if json {
        let abs = f.abs();
        if !(1e-6..1e21).contains(&abs) {
            let mut text = exponent_form(&digits, exponent);
            // encoding/json drops the padding zero of a negative exponent: 1e-07 becomes 1e-7.
            if let Some(i) = text.find("e-0") {
                text.remove(i + 2);
            }
            return format!("{sign}{text}");
        }
        format!("{sign}{}", plain_form(&digits, point))
    } else if (-4..6).contains(&exponent) {
        // `%v` is `%g` with the shortest digits, which switches to an exponent from 1e+06 on.
        format!("{sign}{}", plain_form(&digits, point))
    } else {
        format!("{sign}{}", exponent_form(&digits, exponent))
    }
}

/// The shortest round-trip digits of a finite, non-zero `f`, and the position of the decimal
/// point: `|f| = 0.DIGITS × 10^point`.
fn decimal_digits(f: f64) -> (String, i32) {
    let text = format!("{:e}", f.abs());
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text.as_str(), "0"));
    let digits = mantissa.chars().filter(char::is_ascii_digit).collect();
    (
        digits,
        exponent.parse::<i32>().unwrap_or(0).saturating_add(1),
    )
}

/// `d.ddde±XX`, with at least two exponent digits as Go writes them.
fn exponent_form(digits: &str, exponent: i32) -> String {
    let (first, rest) = digits.split_at(digits.len().min(1));
    let dot = if rest.is_empty() { "" } else { "." };
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{first}{dot}{rest}e{sign}{:02}", exponent.unsigned_abs())
}

/// Positional notation for `0.DIGITS × 10^point`.
fn plain_form(digits: &str, point: i32) -> String {
    let zeros = |n: u32| "0".repeat(usize::try_from(n).unwrap_or(0));
    if point <= 0 {
        return format!("0.{}{digits}", zeros(point.unsigned_abs()));
    }
    let point = usize::try_from(point).unwrap_or(0);
    match (digits.get(..point), digits.get(point..)) {
        (Some(whole), Some(fraction)) if !fraction.is_empty() => format!("{whole}.{fraction}"),
        _ => {
            let missing = point.saturating_sub(digits.len());
            format!("{digits}{}", zeros(u32::try_from(missing).unwrap_or(0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "istio-ingressgateway",
                "namespace": "aks-istio-ingress",
                "labels": {
                    "istio.io/rev": "asm-1-22",
                    "app": "istio-ingressgateway",
                    "app.kubernetes.io/name": "gateway"
                },
                "annotations": {
                    "service.beta.kubernetes.io/azure-load-balancer-internal": "false"
                }
            },
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "10.0.12.34",
                "ports": [
                    {"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
                    {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 8080},
                    {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"}
                ],
                "selector": {"istio": "ingressgateway", "app": "istio-ingressgateway"}
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "20.62.145.7"}]}}
        })
    }

    fn pods() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": ""},
            "items": [
                {
                    "metadata": {
                        "name": "productpage-v1-6b746f74dc-x2x7k",
                        "labels": {"app": "productpage", "version": "v1"}
                    },
                    "spec": {"containers": [
                        {"name": "productpage", "image": "istio/examples-bookinfo-productpage-v1"},
                        {"name": "istio-proxy", "image": "mcr.microsoft.com/oss/istio/proxyv2"}
                    ]},
                    "status": {
                        "phase": "Running",
                        "podIP": "10.244.0.12",
                        "containerStatuses": [
                            {"name": "istio-proxy", "ready": true, "restartCount": 0},
                            {"name": "productpage", "ready": true, "restartCount": 2}
                        ]
                    }
                },
                {
                    "metadata": {
                        "name": "ratings-v1-5f9699cfdf-hx8rd",
                        "labels": {"app": "ratings", "version": "v1"}
                    },
                    "spec": {"containers": [
                        {"name": "ratings", "image": "istio/examples-bookinfo-ratings-v1"}
                    ]},
                    "status": {"phase": "Pending"}
                },
                {
                    "metadata": {
                        "name": "reviews-v2-7d79d5bd5d-8zzqd",
                        "labels": {"app": "reviews", "version": "v2"}
                    },
                    "spec": {"containers": [
                        {"name": "reviews", "image": "istio/examples-bookinfo-reviews-v2"},
                        {"name": "istio-proxy", "image": "mcr.microsoft.com/oss/istio/proxyv2"}
                    ]},
                    "status": {"phase": "Running", "podIP": "10.244.0.17"}
                }
            ]
        })
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "reviews-v2",
                "namespace": "bookinfo",
                "generation": 4,
                "annotations": {"deployment.kubernetes.io/revision": "3"}
            },
            "spec": {
                "replicas": 3,
                "template": {
                    "metadata": {"labels": {"app": "reviews", "sidecar.istio.io/inject": "true"}},
                    "spec": {"containers": [{
                        "name": "reviews",
                        "env": [{"name": "LOG_DIR", "value": "/var/log/reviews"}],
                        "resources": {"limits": {"cpu": "500m"}}
                    }]}
                }
            },
            "status": {
                "replicas": 3,
                "readyReplicas": 2,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "a)b==c"}
                ]
            }
        })
    }

    fn ok(template: &str, value: &Value) -> String {
        match render(template, value) {
            Ok(text) => text,
            Err(e) => panic!("{template:?} failed: {e}"),
        }
    }

    fn err(template: &str, value: &Value) -> (String, usize) {
        match render(template, value) {
            Ok(text) => panic!("{template:?} rendered {text:?}, expected an error"),
            Err(e) => (e.message, e.column),
        }
    }

    // --- the AKS guide's commands

    #[test]
    fn aks_load_balancer_ip() {
        assert_eq!(
            ok("{.status.loadBalancer.ingress[0].ip}", &service()),
            "20.62.145.7"
        );
    }

    #[test]
    fn aks_port_by_name() {
        assert_eq!(
            ok(r#"{.spec.ports[?(@.name=="http2")].port}"#, &service()),
            "80"
        );
    }

    #[test]
    fn aks_item_names() {
        assert_eq!(
            ok("{.items[*].metadata.name}", &pods()),
            concat!(
                "productpage-v1-6b746f74dc-x2x7k ratings-v1-5f9699cfdf-hx8rd ",
                "reviews-v2-7d79d5bd5d-8zzqd"
            )
        );
    }

    #[test]
    fn aks_range_name_and_phase() {
        let template = r#"{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#;
        assert_eq!(
            ok(template, &pods()),
            "productpage-v1-6b746f74dc-x2x7k\tRunning\n\
             ratings-v1-5f9699cfdf-hx8rd\tPending\n\
             reviews-v2-7d79d5bd5d-8zzqd\tRunning\n"
        );
    }

    // --- paths

    #[test]
    fn text_outside_actions_is_verbatim() {
        let out = ok(
            "ip: {.status.loadBalancer.ingress[0].ip} } done\n",
            &service(),
        );
        assert_eq!(out, "ip: 20.62.145.7 } done\n");
        assert_eq!(ok("no actions at all", &service()), "no actions at all");
        assert_eq!(ok("", &service()), "");
    }

    #[test]
    fn root_and_current_markers() {
        let svc = service();
        assert_eq!(ok("{$.metadata.name}", &svc), "istio-ingressgateway");
        assert_eq!(ok("{@.metadata.name}", &svc), "istio-ingressgateway");
        assert_eq!(ok("{ .metadata.name }", &svc), "istio-ingressgateway");
        assert_eq!(
            ok("{.metadata.name}{.metadata.namespace}", &svc),
            "istio-ingressgatewayaks-istio-ingress"
        );
    }

    #[test]
    fn whole_value_prints_as_sorted_json() {
        let value = json!({"b": [1, {"z": null, "a": true}], "a": "x"});
        let expected = r#"{"a":"x","b":[1,{"a":true,"z":null}]}"#;
        assert_eq!(ok("{@}", &value), expected);
        assert_eq!(ok("{$}", &value), expected);
        assert_eq!(ok("{}", &value), expected);
    }

    #[test]
    fn bracket_keys_with_dots_and_slashes() {
        let svc = service();
        assert_eq!(ok("{.metadata.labels['istio.io/rev']}", &svc), "asm-1-22");
        assert_eq!(
            ok(r#"{.metadata.labels["istio.io/rev"]}"#, &svc),
            "asm-1-22"
        );
        assert_eq!(
            ok("{['metadata']['labels']['app']}", &svc),
            "istio-ingressgateway"
        );
        assert_eq!(ok(r"{.metadata.labels['istio\.io/rev']}", &svc), "asm-1-22");
    }

    #[test]
    fn escaped_dots_in_field_names() {
        let svc = service();
        assert_eq!(ok(r"{.metadata.labels.istio\.io/rev}", &svc), "asm-1-22");
        let template =
            r"{.metadata.annotations.service\.beta\.kubernetes\.io/azure-load-balancer-internal}";
        assert_eq!(ok(template, &svc), "false");
        let deploy = deployment();
        assert_eq!(
            ok(
                r"{.spec.template.metadata.labels.sidecar\.istio\.io/inject}",
                &deploy
            ),
            "true"
        );
    }

    #[test]
    fn dotted_bracket_key_falls_back_to_kubectl_path() {
        // kubectl reads ['metadata.name'] as .metadata.name, which still applies with no such key.
        let list = pods();
        assert_eq!(
            ok("{.items[0]['metadata.name']}", &list),
            "productpage-v1-6b746f74dc-x2x7k"
        );
        assert_eq!(
            ok("{.items[1:]['metadata.name', 'status.phase']}", &list),
            "ratings-v1-5f9699cfdf-hx8rd reviews-v2-7d79d5bd5d-8zzqd Pending Running"
        );
    }

    #[test]
    fn quoted_keys_may_hold_brackets_and_commas() {
        let value = json!({"a,b": 1, "x]": 2, "it's": 3});
        assert_eq!(ok("{['a,b']}", &value), "1");
        assert_eq!(ok("{['x]']}", &value), "2");
        assert_eq!(ok(r"{['it\'s']}", &value), "3");
        assert_eq!(ok(r#"{["it's"]}"#, &value), "3");
    }

    #[test]
    fn indexes_and_negative_indexes() {
        let svc = service();
        assert_eq!(ok("{.spec.ports[0].name}", &svc), "status-port");
        assert_eq!(ok("{.spec.ports[-1].name}", &svc), "https");
        assert_eq!(ok("{.spec.ports[-3].name}", &svc), "status-port");
    }

    #[test]
    fn slices_and_steps() {
        let svc = service();
        assert_eq!(ok("{.spec.ports[1:3].port}", &svc), "80 443");
        assert_eq!(ok("{.spec.ports[:2].port}", &svc), "15021 80");
        assert_eq!(ok("{.spec.ports[::2].port}", &svc), "15021 443");
        assert_eq!(ok("{.spec.ports[-2:].port}", &svc), "80 443");
        assert_eq!(ok("{.spec.ports[0:-1].port}", &svc), "15021 80");
        assert_eq!(ok("{.spec.ports[1:3:5].port}", &svc), "80");
        assert_eq!(ok("{.spec.ports[3:3].port}", &svc), "");
        // kubectl stops at the empty array and prints only "1".
        assert_eq!(ok("{[*][*]}", &json!([[1], [], [2]])), "1 2");
    }

    #[test]
    fn wildcards() {
        let svc = service();
        assert_eq!(ok("{.spec.ports[*].port}", &svc), "15021 80 443");
        assert_eq!(ok("{.spec.ports.*.port}", &svc), "15021 80 443");
        // Object members come in document order (kubectl's order is random).
        assert_eq!(
            ok("{.spec.ports[0].*}", &svc),
            "status-port 15021 TCP 15021"
        );
        assert_eq!(
            ok("{.spec.selector.*}", &svc),
            "ingressgateway istio-ingressgateway"
        );
        assert_eq!(ok("{.metadata.name.*}", &svc), "");
    }

    #[test]
    fn unions() {
        let svc = service();
        assert_eq!(ok("{.spec.ports[0,2].name}", &svc), "status-port https");
        assert_eq!(ok("{.spec.ports[0, -1].port}", &svc), "15021 443");
        assert_eq!(ok("{.spec.ports[1]['name','port']}", &svc), "http2 80");
        // Each member runs over every input before the next member, as in kubectl.
        assert_eq!(
            ok("{.spec.ports[0:2]['name','port']}", &svc),
            "status-port http2 15021 80"
        );
    }

    #[test]
    fn recursive_descent() {
        assert_eq!(ok("{..ip}", &service()), "20.62.145.7");
        assert_eq!(ok("{..podIP}", &pods()), "10.244.0.12 10.244.0.17");
        assert_eq!(ok("{.items[0]..ready}", &pods()), "true true");
        assert_eq!(ok("{...ip}", &service()), "20.62.145.7");
        // Leaves are not containers: only the array itself is printed.
        assert_eq!(ok("{..}", &json!([1, 2, 3])), "[1,2,3]");
    }

    // --- filters

    #[test]
    fn filter_comparisons() {
        let svc = service();
        assert_eq!(ok("{.spec.ports[?(@.port==80)].name}", &svc), "http2");
        assert_eq!(
            ok(r#"{.spec.ports[?(@.name!="http2")].name}"#, &svc),
            "status-port https"
        );
        assert_eq!(ok("{.spec.ports[?(@.port<443)].name}", &svc), "http2");
        assert_eq!(ok("{.spec.ports[?(@.port<=443)].port}", &svc), "80 443");
        assert_eq!(ok("{.spec.ports[?(@.port>443)].name}", &svc), "status-port");
        assert_eq!(
            ok("{.spec.ports[?(@.port >= 443)].port}", &svc),
            "15021 443"
        );
        assert_eq!(ok("{.spec.ports[?(@.name<'i')].name}", &svc), "http2 https");
        assert_eq!(ok("{.spec.ports[?(@.port==80.0)].name}", &svc), "http2");
    }

    #[test]
    fn filter_on_nested_paths_booleans_and_bare_paths() {
        let list = pods();
        let by_app = r#"{.items[?(@.metadata.labels.app=="ratings")].metadata.name}"#;
        assert_eq!(ok(by_app, &list), "ratings-v1-5f9699cfdf-hx8rd");
        let running = r#"{range .items[?(.status.phase=="Running")]}{.metadata.name} {end}"#;
        assert_eq!(
            ok(running, &list),
            "productpage-v1-6b746f74dc-x2x7k reviews-v2-7d79d5bd5d-8zzqd "
        );
        let ready = "{.items[0].status.containerStatuses[?(@.ready==true)].name}";
        assert_eq!(ok(ready, &list), "istio-proxy productpage");
        assert_eq!(ok("{[?(@<5)]}", &json!([2, 6, 3, 7])), "2 3");
    }

    #[test]
    fn filter_existence() {
        let list = pods();
        assert_eq!(
            ok("{.items[?(@.status.podIP)].status.podIP}", &list),
            "10.244.0.12 10.244.0.17"
        );
        let value = json!([{"id": "a", "z": null}, {"id": "b"}]);
        assert_eq!(ok("{[?(@.z)].id}", &value), "a");
    }

    #[test]
    fn filter_literals_may_contain_operators_and_parentheses() {
        let deploy = deployment();
        assert_eq!(
            ok(
                r#"{.status.conditions[?(@.reason=="a)b==c")].type}"#,
                &deploy
            ),
            "Progressing"
        );
        assert_eq!(
            ok(
                "{.status.conditions[?(@.type=='Available')].status}",
                &deploy
            ),
            "True"
        );
        let env = concat!(
            r#"{.spec.template.spec.containers[?(@.name=="reviews")]"#,
            r#".env[?(@.name=="LOG_DIR")].value}"#
        );
        assert_eq!(ok(env, &deploy), "/var/log/reviews");
    }

    #[test]
    fn filter_compares_two_paths_and_skips_missing_operands() {
        let value = json!([{"a": 1, "b": 1, "n": "x"}, {"a": 1, "b": 2, "n": "y"}, {"n": "z"}]);
        assert_eq!(ok("{[?(@.a==@.b)].n}", &value), "x");
        let list = pods();
        assert_eq!(
            ok(
                r#"{.items[?(@.status.podIP=="10.244.0.17")].metadata.name}"#,
                &list
            ),
            "reviews-v2-7d79d5bd5d-8zzqd"
        );
    }

    #[test]
    fn nested_filters() {
        let list = pods();
        let template = r#"{.items[?(@.spec.containers[?(@.name=="istio-proxy")])].metadata.name}"#;
        assert_eq!(
            ok(template, &list),
            "productpage-v1-6b746f74dc-x2x7k reviews-v2-7d79d5bd5d-8zzqd"
        );
    }

    #[test]
    fn filter_type_errors_match_kubectl() {
        let svc = service();
        // targetPort is a number on two ports and a name on the third.
        let (message, column) = err("{.spec.ports[?(@.targetPort==8443)].name}", &svc);
        assert_eq!(
            (message.as_str(), column),
            ("incompatible types for comparison", 28)
        );
        let value = json!([{"a": null}]);
        assert_eq!(
            err("{[?(@.a==1)]}", &value).0,
            "invalid type for comparison"
        );
        let value = json!([{"a": true}]);
        assert_eq!(
            err("{[?(@.a<true)]}", &value).0,
            "invalid type for comparison"
        );
        let (message, column) = err("{.items[?(@..name=='x')]}", &pods());
        assert_eq!(
            (message.as_str(), column),
            ("can only compare one element at a time", 8)
        );
    }

    #[test]
    fn and_or_are_not_supported() {
        let (message, column) = err(
            r#"{.spec.ports[?(@.port>1 && @.port<100)].name}"#,
            &service(),
        );
        assert_eq!(message, "unrecognized character in action: U+0026 '&'");
        assert_eq!(column, 25);
    }

    // --- literals and ranges

    #[test]
    fn string_literals_unescape() {
        let v = json!({});
        assert_eq!(
            ok(r#"{"\n"}{"\t"}{'single'}{"{"}{"}"}"#, &v),
            "\n\tsingle{}"
        );
        assert_eq!(
            ok(r#"{"caf\u00e9 \x41\101 \"q\" \\"}"#, &v),
            "café AA \"q\" \\"
        );
        assert_eq!(ok(r"{'it\'s'}", &v), "it's");
    }

    #[test]
    fn number_and_bool_literals() {
        let v = json!({});
        assert_eq!(
            ok("{1} {-2} {1.50} {true} {false}", &v),
            "1 -2 1.5 true false"
        );
        // A quoted string always prints; a number prints once per current value.
        assert_eq!(ok(r#"{.missing "x"}|{.missing 1}"#, &v), "x|");
    }

    #[test]
    fn nested_ranges() {
        let template =
            r#"{range .items[*]}{.metadata.name}:{range .spec.containers[*]}{.name},{end};{end}"#;
        assert_eq!(
            ok(template, &pods()),
            "productpage-v1-6b746f74dc-x2x7k:productpage,istio-proxy,;\
             ratings-v1-5f9699cfdf-hx8rd:ratings,;\
             reviews-v2-7d79d5bd5d-8zzqd:reviews,istio-proxy,;"
        );
    }

    #[test]
    fn range_edge_cases() {
        let list = pods();
        // Text after {end} is evaluated against the outer value again.
        let template = "{range .items[0:2]}{.metadata.labels.app}, {end}{.kind}";
        assert_eq!(ok(template, &list), "productpage, ratings, List");
        assert_eq!(ok("{range .missing[*]}{.x}{end}done", &list), "done");
        assert_eq!(
            ok(
                r#"{range .items[*]}{range .spec.nothing[*]}x{end}{end}"#,
                &list
            ),
            ""
        );
        assert_eq!(
            ok("{range.items[*]}{.status.phase},{end}", &list),
            "Running,Pending,Running,"
        );
        // Without [*] the range runs once, over the array itself.
        assert_eq!(
            ok("{range .spec.ports}{[1].name}{end}", &service()),
            "http2"
        );
        // Inside a range `$` is the current item, as in kubectl.
        assert_eq!(
            ok("{range .items[1:2]}{$.status.phase}{end}", &list),
            "Pending"
        );
    }

    // --- output formatting

    #[test]
    fn objects_and_arrays_print_as_go_json() {
        let svc = service();
        assert_eq!(
            ok("{.metadata.labels}", &svc),
            concat!(
                r#"{"app":"istio-ingressgateway","app.kubernetes.io/name":"gateway","#,
                r#""istio.io/rev":"asm-1-22"}"#
            )
        );
        assert_eq!(
            ok("{.status.loadBalancer.ingress}", &svc),
            r#"[{"ip":"20.62.145.7"}]"#
        );
        assert_eq!(
            ok("{.spec.ports[0:2].name} {.spec.selector}", &svc),
            r#"status-port http2 {"app":"istio-ingressgateway","istio":"ingressgateway"}"#
        );
        let value = json!({"s": "<a href=\"x\">&\n\u{1}\u{2028}</a>", "e": {}, "l": []});
        assert_eq!(
            ok("{@}", &value),
            r#"{"e":{},"l":[],"s":"\u003ca href=\"x\"\u003e\u0026\n\u0001\u2028\u003c/a\u003e"}"#
        );
        assert_eq!(ok("{.s}", &value), "<a href=\"x\">&\n\u{1}\u{2028}</a>");
    }

    #[test]
    fn scalars_print_like_go() {
        let value = json!({
            "null": null, "t": true, "int": -42, "two": 2.0, "half": 0.5,
            "million": 1e6, "big": 1.5e300, "tiny": 1e-7, "small": 0.0001, "huge": 1e21,
            "u64": u64::MAX, "negzero": -0.0
        });
        assert_eq!(
            ok("{.null} {.t} {.int} {.two} {.half}", &value),
            "null true -42 2 0.5"
        );
        assert_eq!(
            ok("{.million} {.big} {.tiny} {.small}", &value),
            "1e+06 1.5e+300 1e-07 0.0001"
        );
        assert_eq!(ok("{.u64} {.negzero}", &value), "1.8446744073709552e+19 -0");
        let array = json!({"a": [1e6, 1.5e300, 1e-7, 0.0001, 1e21, 2.0, 123456.789]});
        assert_eq!(
            ok("{.a}", &array),
            "[1000000,1.5e+300,1e-7,0.0001,1e+21,2,123456.789]"
        );
    }

    #[test]
    fn missing_keys_print_nothing() {
        let svc = service();
        assert_eq!(ok("before-{.hello}after", &svc), "before-after");
        assert_eq!(ok("{.spec.ports[*].nodePort}", &svc), "");
        let pending = json!({"status": {"loadBalancer": {}}});
        assert_eq!(ok("{.status.loadBalancer.ingress[0].ip}", &pending), "");
        assert_eq!(
            ok(
                "{.status.loadBalancer.ingress[0].ip}",
                &json!({"status": null})
            ),
            ""
        );
        assert_eq!(ok("{.}", &svc), "");
    }

    // --- runtime errors

    #[test]
    fn out_of_range_index_is_an_error_as_in_kubectl() {
        let list = pods();
        let (message, column) = err("{.items[5].metadata.name}", &list);
        assert_eq!(
            (message.as_str(), column),
            ("array index out of bounds: index 5, length 3", 8)
        );
        assert_eq!(
            err("{.items[-4]}", &list).0,
            "array index out of bounds: index -1, length 3"
        );
        assert_eq!(
            err("{.items[0:5]}", &list).0,
            "array index out of bounds: index 4, length 3"
        );
        assert_eq!(
            err("{.items[2:1]}", &list).0,
            "starting index 2 is greater than ending index 1"
        );
        let empty = json!({"status": {"loadBalancer": {"ingress": []}}});
        let (message, _) = err("{.status.loadBalancer.ingress[0].ip}", &empty);
        assert_eq!(message, "array index out of bounds: index 0, length 0");
    }

    #[test]
    fn indexing_or_filtering_a_non_array_is_an_error() {
        let svc = service();
        let (message, column) = err("{.metadata[0]}", &svc);
        assert_eq!(
            (message.as_str(), column),
            ("object is not array or slice", 11)
        );
        assert_eq!(
            err("{.metadata.name[*]}", &svc).0,
            "string is not array or slice"
        );
        let (message, column) = err("{.spec[?(@.type)]}", &svc);
        assert_eq!(
            (message.as_str(), column),
            ("object is not array or slice and cannot be filtered", 7)
        );
    }

    // --- parse errors

    #[test]
    fn parse_errors_name_their_column() {
        let v = service();
        let cases: &[(&str, &str, usize)] = &[
            ("ip: {.status.loadBalancer", "unclosed action", 5),
            ("{.a\n}", "unclosed action", 1),
            (r#"x{"abc}"#, "unterminated quoted string", 3),
            ("{.items[0", "unterminated array", 8),
            ("{.items[?(@.a==1]}", "unterminated filter", 8),
            ("{.items[?(@.a==1)}", "unclosed array expect ]", 18),
            ("{.items[?(@.a<>1)]}", "unrecognized filter operator <>", 14),
            (
                "{.items[?(@.a=~'x')]}",
                "unrecognized filter operator =~",
                14,
            ),
            ("{.items[1:x]}", "invalid array index 1:x", 8),
            ("{.items[name]}", "invalid array index name", 8),
            ("{.items[1:2:3:4]}", "invalid array index 1:2:3:4", 8),
            ("{.items[::0]}", "step must be > 0", 8),
            ("{.items[-]}", "array index - is not a number", 8),
            ("{.items[]}", "empty array index", 8),
            ("{.items[0,]}", "empty array index", 11),
            ("{....name}", "invalid multiple recursive descent", 4),
            ("{..*}", "unrecognized character in action: U+002A '*'", 4),
            ("{.a\t}", "unrecognized character in action: U+0009", 4),
            ("{hello}", "unrecognized identifier hello", 2),
            ("{1.2.3}", "cannot parse number 1.2.3", 2),
            (r#"{"\q"}"#, "invalid escape sequence in quoted string", 3),
            (r#"{"\'"}"#, "invalid escape sequence in quoted string", 3),
            (r#"{"\xff"}"#, "quoted string is not valid utf-8", 3),
        ];
        for (template, message, column) in cases {
            let (got, at) = err(template, &v);
            assert_eq!(
                (got.as_str(), at),
                (*message, *column),
                "template {template:?}"
            );
        }
    }

    #[test]
    fn range_and_end_must_pair() {
        let list = pods();
        assert_eq!(
            err("{.kind}{end}", &list),
            ("not in range, nothing to end".into(), 8)
        );
        let redundant = "{range .items[*]}{.kind}{end}{end}";
        assert_eq!(
            err(redundant, &list),
            ("not in range, nothing to end".into(), 30)
        );
        let unclosed = "a{range .items[*]}{range .spec.containers[*]}{.name}{end}";
        assert_eq!(
            err(unclosed, &list),
            ("unclosed range, missing {end}".into(), 2)
        );
        assert_eq!(
            err("{.items range}", &list),
            ("range must start its action".into(), 9)
        );
        assert_eq!(
            err("{range .items[*]}{end .x}", &list),
            ("end must stand alone".into(), 19)
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let (message, column) = err("héllo → {.a", &json!({}));
        assert_eq!((message.as_str(), column), ("unclosed action", 9));
    }

    #[test]
    fn error_display_and_trait() {
        let e = render("ip: {.status", &service()).unwrap_err();
        assert_eq!(e.to_string(), "unclosed action at column 5");
        let boxed: Box<dyn std::error::Error> = Box::new(e.clone());
        assert_eq!(boxed.to_string(), e.to_string());
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowed() {
        let filters = format!("{{{}{}}}", "[?(@".repeat(200), ")]".repeat(200));
        assert_eq!(err(&filters, &json!([])).0, "filters nested too deeply");
        let ranges = format!("{}{}", "{range @}".repeat(100), "{end}".repeat(100));
        assert_eq!(err(&ranges, &json!([])).0, "ranges nested too deeply");
        let fine = format!("{}x{}", "{range @}".repeat(10), "{end}".repeat(10));
        assert_eq!(ok(&fine, &json!(1)), "x");
    }

    // --- query

    #[test]
    fn query_returns_values() {
        let svc = service();
        let ports = vec![json!(15021), json!(80), json!(443)];
        assert_eq!(query("{.spec.ports[*].port}", &svc), Ok(ports.clone()));
        assert_eq!(query(".spec.ports[*].port", &svc), Ok(ports.clone()));
        assert_eq!(query("  $.spec.ports[*].port\n", &svc), Ok(ports));
        let e = query("spec.ports", &svc).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.column),
            ("unrecognized identifier spec", 1)
        );
        assert_eq!(
            query(r#".spec.ports[?(@.name=="http2")]"#, &svc),
            Ok(vec![
                json!({"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 8080})
            ])
        );
        assert_eq!(
            query("{.status.loadBalancer.ingress[0].ip}", &svc),
            Ok(vec![json!("20.62.145.7")])
        );
        assert_eq!(query("{@}", &svc), Ok(vec![svc.clone()]));
    }

    #[test]
    fn query_missing_is_empty() {
        let svc = service();
        assert_eq!(query(".status.nothing[0].ip", &svc), Ok(vec![]));
        assert_eq!(query("{.metadata.labels['no/such']}", &svc), Ok(vec![]));
    }

    #[test]
    fn query_rejects_templates() {
        let svc = service();
        let e = query("{.a}{.b}", &svc).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.column),
            ("query takes a single expression", 5)
        );
        let e = query("name: {.a}", &svc).unwrap_err();
        assert_eq!(e.message, "unrecognized identifier name:");
        let e = query("{range .items[*]}", &svc).unwrap_err();
        assert_eq!(e.message, "query takes an expression, not range or end");
        let e = query(".spec.ports[0", &svc).unwrap_err();
        assert_eq!((e.message.as_str(), e.column), ("unterminated array", 12));
        let e = query("{.spec", &svc).unwrap_err();
        assert_eq!((e.message.as_str(), e.column), ("unclosed action", 1));
    }

    // --- robustness

    /// Deterministic xorshift, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % 1_000_003).unwrap_or(0)
        }
    }

    #[test]
    fn random_templates_never_panic() {
        // Template fragments separated by `|`, plus the line breaks that cannot sit in the list.
        const FRAGMENTS: &str = concat!(
            r#"{|}|[|]|[?(|)]|(|)|@|$|.|..|*|'|"|\|,|:|-|+|0|1|-1|99999999999999999999|"#,
            r#"==|!=|<|>=|=~|range|end|true| |é|items|metadata|name|\u12|\x|1.5|::|\.|"#,
            r#"spec|ports|&&"#
        );
        let pieces: Vec<&str> = FRAGMENTS.split('|').chain(["\n", "\t", "\r"]).collect();
        let odd = json!([1, "a", null, [], {}, [[2]], {"": {"items": [true]}}]);
        let values = [service(), pods(), deployment(), odd, json!(null)];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..20_000 {
            let len = rng.next() % 16;
            let template: String = (0..len)
                .map(|_| pieces[rng.next() % pieces.len()])
                .collect();
            let value = &values[round % values.len()];
            let _ = render(&template, value);
            let _ = query(&template, value);
        }
    }

    #[test]
    fn truncated_templates_never_panic() {
        let templates = [
            r#"{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#,
            r#"{.spec.ports[?(@.name=="http2")].port} and {.metadata.labels['istio.io/rev']}"#,
            r#"{.items[?(@.spec.containers[?(@.name=='x\'y')])]..image}{"\u00e9\x41"}"#,
            r"{.a[1:-1:2]}{.b[0, 'c', -1]}{.istio\.io/rev}{1.5}{-3}{true}",
        ];
        let list = pods();
        for template in templates {
            let chars: Vec<char> = template.chars().collect();
            for cut in 0..=chars.len() {
                let head: String = chars[..cut].iter().collect();
                let tail: String = chars[cut..].iter().collect();
                let _ = render(&head, &list);
                let _ = render(&tail, &list);
                let _ = query(&head, &list);
            }
        }
    }
}
