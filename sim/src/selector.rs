//! Label selectors (equality- and set-based) and field selectors, parsed from query strings.

use std::collections::BTreeMap;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq)]
pub enum Requirement {
    /// `key`
    Exists(String),
    /// `!key`
    DoesNotExist(String),
    /// `key=value`, `key==value`, `key in (a,b)`
    In(String, Vec<String>),
    /// `key!=value`, `key notin (a,b)`
    NotIn(String, Vec<String>),
    /// `key>5`
    GreaterThan(String, i64),
    /// `key<5`
    LessThan(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Open,
    Close,
    Comma,
    Greater,
    Less,
    End,
}

impl Token {
    fn literal(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Not => "!".into(),
            Token::Equals => "=".into(),
            Token::DoubleEquals => "==".into(),
            Token::NotEquals => "!=".into(),
            Token::In => "in".into(),
            Token::NotIn => "notin".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::Comma => ",".into(),
            Token::Greater => ">".into(),
            Token::Less => "<".into(),
            Token::End => String::new(),
        }
    }
}

fn tokenize(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '>' => {
                tokens.push(Token::Greater);
                i += 1;
            }
            '<' => {
                tokens.push(Token::Less);
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::NotEquals);
                i += 2;
            }
            '!' => {
                tokens.push(Token::Not);
                i += 1;
            }
            '=' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::DoubleEquals);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Equals);
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '(' | ')' | ',' | '!' | '=' | '<' | '>')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(match word.as_str() {
                    "in" => Token::In,
                    "notin" => Token::NotIn,
                    _ => Token::Ident(word),
                });
            }
        }
    }
    tokens.push(Token::End);
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.position).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        self.position += 1;
        token
    }

    fn error(found: &Token, expected: &str) -> String {
        format!(
            "unable to parse requirement: found '{}', expected: {expected}",
            found.literal()
        )
    }

    fn identifier(&mut self, expected: &str) -> Result<String, String> {
        match self.next() {
            Token::Ident(word) => Ok(word),
            // Keywords are fine as label values.
            Token::In => Ok("in".into()),
            Token::NotIn => Ok("notin".into()),
            other => Err(Parser::error(&other, expected)),
        }
    }

    fn value_set(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Token::Open => {}
            other => Err(Parser::error(&other, "'('"))?,
        }
        let mut values = Vec::new();
        loop {
            match self.peek().clone() {
                Token::Close => {
                    self.next();
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                Token::Comma => {
                    self.next();
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    if matches!(self.peek(), Token::Comma | Token::Close) {
                        values.push(String::new());
                    }
                }
                Token::Ident(_) | Token::In | Token::NotIn => {
                    values.push(self.identifier("identifier")?);
                    match self.peek() {
                        Token::Comma | Token::Close => {}
                        other => return Err(Parser::error(other, "',' or ')'")),
                    }
                }
                other => return Err(Parser::error(&other, "',' or ')'")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        if *self.peek() == Token::Not {
            self.next();
            let key = self.identifier("identifier after '!'")?;
            validate_key(&key)?;
            return Ok(Requirement::DoesNotExist(key));
        }
        let key = self.identifier("identifier")?;
        validate_key(&key)?;
        match self.peek().clone() {
            Token::Comma | Token::End => Ok(Requirement::Exists(key)),
            Token::Equals | Token::DoubleEquals | Token::NotEquals => {
                let op = self.next();
                let value = match self.peek().clone() {
                    Token::Comma | Token::End => String::new(),
                    _ => self.identifier("identifier")?,
                };
                validate_value(&value)?;
                if op == Token::NotEquals {
                    Ok(Requirement::NotIn(key, vec![value]))
                } else {
                    Ok(Requirement::In(key, vec![value]))
                }
            }
            Token::In | Token::NotIn => {
                let op = self.next();
                let values = self.value_set()?;
                for value in &values {
                    validate_value(value)?;
                }
                if op == Token::In {
                    Ok(Requirement::In(key, values))
                } else {
                    Ok(Requirement::NotIn(key, values))
                }
            }
            Token::Greater | Token::Less => {
                let op = self.next();
                let text = self.identifier("integer")?;
                let number: i64 = text.parse().map_err(|_| {
                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer".to_string()
                })?;
                if op == Token::Greater {
                    Ok(Requirement::GreaterThan(key, number))
                } else {
                    Ok(Requirement::LessThan(key, number))
                }
            }
            other => Err(Parser::error(&other, "'=', '!=', '==', 'in', notin'")),
        }
    }
}

fn validate_key(key: &str) -> Result<(), String> {
    if super::validation::is_qualified_name(key) {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

fn validate_value(value: &str) -> Result<(), String> {
    if super::validation::is_label_value(value) {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label value: {value:?}: at key: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

impl LabelSelector {
    /// Parses `labelSelector` syntax (`app=web,tier in (a,b),!canary`).
    pub fn parse(input: &str) -> Result<LabelSelector, String> {
        let mut parser = Parser {
            tokens: tokenize(input),
            position: 0,
        };
        let mut requirements = Vec::new();
        if *parser.peek() == Token::End {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                Token::End => break,
                Token::Comma => continue,
                other => return Err(Parser::error(&other, "','")),
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// A selector from a Kubernetes `LabelSelector` object (`matchLabels` and
    /// `matchExpressions`); unknown operators are refused.
    pub fn from_object(selector: &serde_json::Value) -> Result<LabelSelector, String> {
        use serde_json::Value;
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                let value = value.as_str().unwrap_or_default().to_string();
                requirements.push(Requirement::In(key.clone(), vec![value]));
            }
        }
        let expressions = selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for expression in expressions {
            let key = expression
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let values: Vec<String> = expression
                .get("values")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let requirement = match expression.get("operator").and_then(Value::as_str) {
                Some("In") => Requirement::In(key, values),
                Some("NotIn") => Requirement::NotIn(key, values),
                Some("Exists") => Requirement::Exists(key),
                Some("DoesNotExist") => Requirement::DoesNotExist(key),
                other => return Err(format!("unknown selector operator {other:?}")),
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether every requirement holds for `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::DoesNotExist(key) => !labels.contains_key(key),
            Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
            Requirement::GreaterThan(key, n) => labels
                .get(key)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            Requirement::LessThan(key, n) => labels
                .get(key)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// One `field=value` or `field!=value` term.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldRequirement {
    /// Field path (`metadata.name`).
    pub field: String,
    /// Wanted value.
    pub value: String,
    /// `!=` rather than `=`.
    pub negated: bool,
}

/// A parsed field selector.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector {
    /// The terms, all of which must hold.
    pub requirements: Vec<FieldRequirement>,
}

/// Field selectors each kind supports beyond `metadata.name` and `metadata.namespace`, and
/// whether its error message uses the older "field label not supported" wording.
pub fn selectable_fields(group: &str, kind: &str) -> (&'static [&'static str], bool) {
    match (group, kind) {
        ("", "Pod") => (
            &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ],
            true,
        ),
        ("", "Event") => (
            &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            true,
        ),
        ("", "Secret") => (&["type"], true),
        ("", "Namespace") => (&["status.phase"], true),
        ("", "Node") => (&["spec.unschedulable"], true),
        ("apps", "ReplicaSet") => (&["status.replicas"], false),
        ("batch", "Job") => (&["status.successful"], false),
        _ => (&[], false),
    }
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn split_unescaped(input: &str, separator: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in input.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

impl FieldSelector {
    /// Parses `fieldSelector` syntax, accepting only fields the kind supports.
    pub fn parse(input: &str, group: &str, kind: &str) -> Result<FieldSelector, String> {
        let mut requirements = Vec::new();
        if input.trim().is_empty() {
            return Ok(FieldSelector { requirements });
        }
        let (extra, old_wording) = selectable_fields(group, kind);
        for term in split_unescaped(input, ',') {
            let (field, value, negated) = if let Some(i) = term.find("!=") {
                (&term[..i], &term[i + 2..], true)
            } else if let Some(i) = term.find("==") {
                (&term[..i], &term[i + 2..], false)
            } else if let Some(i) = term.find('=') {
                (&term[..i], &term[i + 1..], false)
            } else {
                return Err(format!(
                    "invalid selector: '{input}'; can't understand '{term}'"
                ));
            };
            let field = field.trim().to_string();
            let known = field == "metadata.name"
                || field == "metadata.namespace"
                || extra.contains(&field.as_str());
            if !known {
                return Err(if old_wording {
                    format!("field label not supported: {field}")
                } else {
                    format!(
                        "{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    )
                });
            }
            requirements.push(FieldRequirement {
                field,
                value: unescape(value.trim()),
                negated,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether the object's fields satisfy every term; `lookup` gives a field's value.
    pub fn matches(&self, lookup: impl Fn(&str) -> String) -> bool {
        self.requirements
            .iter()
            .all(|r| (lookup(&r.field) == r.value) != r.negated)
    }

    /// Whether the selector has no terms.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_based_selectors_match() {
        let selector =
            LabelSelector::parse("app=reviews,version in (v1, v2),!canary,tier").expect("valid");
        assert!(selector.matches(&labels(&[
            ("app", "reviews"),
            ("version", "v2"),
            ("tier", "x")
        ])));
        assert!(!selector.matches(&labels(&[
            ("app", "reviews"),
            ("version", "v3"),
            ("tier", "x")
        ])));
        assert!(!selector.matches(&labels(&[
            ("app", "reviews"),
            ("version", "v1"),
            ("tier", "x"),
            ("canary", "1")
        ])));
        let notin = LabelSelector::parse("version notin (v1),app!=web").expect("valid");
        assert!(notin.matches(&labels(&[("app", "db")])));
        assert!(!notin.matches(&labels(&[("version", "v1")])));
    }

    #[test]
    fn kube_rs_encoding_of_prefixed_keys_parses() {
        let selector = LabelSelector::parse("app.kubernetes.io/name==web").expect("valid");
        assert!(selector.matches(&labels(&[("app.kubernetes.io/name", "web")])));
        assert!(LabelSelector::parse("").expect("empty is valid").is_empty());
    }

    #[test]
    fn malformed_selectors_are_rejected_with_the_go_wording() {
        let error = LabelSelector::parse("a in (x").expect_err("unterminated");
        assert_eq!(
            error,
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert!(LabelSelector::parse("a b").is_err());
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn field_selectors_know_their_fields() {
        let selector = FieldSelector::parse("metadata.name=web,status.phase!=Failed", "", "Pod")
            .expect("valid");
        assert!(selector.matches(|f| match f {
            "metadata.name" => "web".into(),
            _ => "Running".into(),
        }));
        let error = FieldSelector::parse("foo=bar", "", "ConfigMap").expect_err("unknown field");
        assert_eq!(
            error,
            "\"foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
    }
}
