//! Kubernetes label selectors: `app=reviews,version in (v1,v2),!canary,tier!=db`.

use std::collections::BTreeMap;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses kubectl's selector syntax. An empty string selects everything.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text)? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(Selector { requirements })
    }

    /// A selector that requires each `key=value`.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Selector {
        Selector {
            requirements: pairs
                .into_iter()
                .map(|(k, v)| Requirement::Equals(k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Does a label set satisfy this selector?
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|requirement| match requirement {
                Requirement::Equals(key, value) => labels.get(key) == Some(value),
                Requirement::NotEquals(key, value) => labels.get(key) != Some(value),
                Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
                Requirement::NotIn(key, values) => {
                    labels.get(key).is_none_or(|v| !values.contains(v))
                }
                Requirement::Exists(key) => labels.contains_key(key),
                Requirement::DoesNotExist(key) => !labels.contains_key(key),
            })
    }
}

/// Splits on commas that are not inside `( … )`.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, ch) in text.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("unexpected `)` in selector `{text}`"))?
            }
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unclosed `(` in selector `{text}`"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(valid_key(key.trim(), part)?));
    }
    for (operator, build) in [
        (
            "!=",
            Requirement::NotEquals as fn(String, String) -> Requirement,
        ),
        ("==", Requirement::Equals),
        ("=", Requirement::Equals),
    ] {
        if let Some((key, value)) = part.split_once(operator) {
            return Ok(build(
                valid_key(key.trim(), part)?,
                value.trim().to_string(),
            ));
        }
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let rest = words[1].trim();
        let (operator, list) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let list = list.trim();
        let values = list
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| format!("expected `(values)` after `{operator}` in `{part}`"))?;
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        let key = valid_key(words[0], part)?;
        return match operator {
            "in" => Ok(Requirement::In(key, values)),
            "notin" => Ok(Requirement::NotIn(key, values)),
            other => Err(format!(
                "unknown operator `{other}` in `{part}`: use =, !=, in, notin"
            )),
        };
    }
    Ok(Requirement::Exists(valid_key(part, part)?))
}

fn valid_key(key: &str, part: &str) -> Result<String, String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(key.to_string())
    } else {
        Err(format!("invalid label key `{key}` in `{part}`"))
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
    fn set_based_and_equality_requirements() {
        let selector =
            Selector::parse("app=reviews, version in (v1, v2),!canary,tier!=db").unwrap();
        assert!(selector.matches(&labels(&[("app", "reviews"), ("version", "v2")])));
        assert!(!selector.matches(&labels(&[("app", "reviews"), ("version", "v3")])));
        assert!(!selector.matches(&labels(&[
            ("app", "reviews"),
            ("version", "v1"),
            ("canary", "")
        ])));
    }

    #[test]
    fn notin_and_exists() {
        let selector = Selector::parse("env notin (prod),istio.io/rev").unwrap();
        assert!(selector.matches(&labels(&[("istio.io/rev", "asm-1-25")])));
        assert!(!selector.matches(&labels(&[("istio.io/rev", "x"), ("env", "prod")])));
        assert!(Selector::parse("").unwrap().matches(&labels(&[])));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(Selector::parse("a in (x").unwrap_err().contains("unclosed"));
        assert!(
            Selector::parse("a within (x)")
                .unwrap_err()
                .contains("unknown operator `within`")
        );
        assert!(
            Selector::parse("a b=c")
                .unwrap_err()
                .contains("invalid label key")
        );
    }
}
