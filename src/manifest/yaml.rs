//! Multi-document YAML and JSON into `serde_json::Value`, with positions in every error and
//! duplicate keys rejected (a plain `serde_json::Value` would silently keep the last one).

use serde::de::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::snippet::Location;
use meshshift_support::yaml::Node;

/// One parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based index in the file.
    pub index: usize,
    /// 1-based line where the document starts (best effort).
    pub line: usize,
    pub value: Value,
}

/// Parses YAML (one or more `---`-separated documents) or JSON (when the text starts with `{`
/// or `[`). Empty documents are skipped; indexes still count them.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<Document>, Error> {
    let mut documents = Vec::new();
    for_each_document(file, text, |document| {
        documents.push(document);
        Ok(())
    })?;
    Ok(documents)
}

/// [`parse_documents`] one document at a time, so a caller can convert and drop each one
/// before the next is parsed (large manifests are never held twice).
pub fn for_each_document(
    file: &str,
    text: &str,
    mut each: impl FnMut(Document) -> Result<(), Error>,
) -> Result<(), Error> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        for document in parse_json(file, text)? {
            each(document)?;
        }
        return Ok(());
    }
    let starts = document_start_lines(text);
    for (offset, deserializer) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = offset + 1;
        // Aliases of aliases must not expand without bound (the budget covers the whole text).
        let budget = meshshift_support::yaml::Budget::start(text.len());
        let value = Node::<true>::deserialize(deserializer);
        drop(budget);
        let value = value.map_err(|error| {
            let message = yaml_message(&error);
            let at = error.location().map(|l| {
                // serde points at the mapping that holds a duplicate; point at the duplicate.
                let (line, column) = duplicate_key_name(&message)
                    .and_then(|key| locate_duplicate(text, l.line(), l.column(), key))
                    .unwrap_or((l.line(), l.column()));
                Location::in_source(file, text, line, column)
            });
            Error::ManifestSyntax {
                file: file.to_string(),
                document: index,
                message,
                at,
            }
        })?;
        if value.0.is_null() {
            continue;
        }
        let line = starts.get(offset).copied().unwrap_or(1);
        each(Document {
            index,
            line,
            value: value.0,
        })?;
    }
    Ok(())
}

fn parse_json(file: &str, text: &str) -> Result<Vec<Document>, Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = Node::<true>::deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|error| Error::ManifestSyntax {
            file: file.to_string(),
            document: 1,
            message: json_message(&error),
            at: Some(Location::in_source(
                file,
                text,
                error.line(),
                error.column(),
            )),
        })?;
    Ok(vec![Document {
        index: 1,
        line: 1,
        value: value.0,
    }])
}

/// libyaml's wording, without the position suffix we show separately.
fn yaml_message(error: &serde_yaml::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    };
    if text.contains("found character that cannot start any token") {
        format!("{text} (tabs cannot indent YAML; use spaces)")
    } else {
        text
    }
}

fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.find(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

fn duplicate_key_name(message: &str) -> Option<&str> {
    let start = message.find("duplicate key `")? + "duplicate key `".len();
    let end = message[start..].find('`')? + start;
    Some(&message[start..end])
}

/// The second `key:` of the block mapping that starts at (line, column).
fn locate_duplicate(text: &str, line: usize, column: usize, key: &str) -> Option<(usize, usize)> {
    let indent = column.checked_sub(1)?;
    let mut seen = 0;
    for (offset, content) in text.lines().enumerate().skip(line.checked_sub(1)?) {
        let leading = content.len() - content.trim_start_matches(' ').len();
        let body = content.trim_start_matches(' ');
        if body.is_empty() || body.starts_with('#') || leading > indent {
            continue;
        }
        if leading < indent {
            break;
        }
        let body = body.strip_prefix("- ").unwrap_or(body);
        let name = body
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(|c| c == '"' || c == '\'');
        if name == key && body.contains(':') {
            seen += 1;
            if seen == 2 {
                return Some((offset + 1, indent + 1));
            }
        }
    }
    None
}

/// Lines where documents begin: line 1, and each `---` that follows content.
fn document_start_lines(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    let mut has_content = false;
    let mut first_marker = true;
    for (index, line) in text.lines().enumerate() {
        let is_marker =
            line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace);
        if is_marker {
            // Only a `---` before any content opens the first document instead of a new one.
            if first_marker && !has_content {
                starts[0] = index + 1;
            } else {
                starts.push(index + 1);
            }
            first_marker = false;
            has_content = false;
        } else if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            has_content = true;
        }
    }
    starts
}

/// Renders a value as YAML.
pub fn to_yaml(value: &Value) -> String {
    serde_yaml::to_string(value)
        .unwrap_or_else(|error| format!("# cannot render as YAML: {error}\n"))
}

/// Renders several objects as one multi-document YAML stream.
pub fn to_yaml_stream(values: &[Value]) -> String {
    values.iter().map(to_yaml).collect::<Vec<_>>().join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Vec<Document>, Error> {
        parse_documents("app.yaml", text)
    }

    #[test]
    fn multi_document_yaml_with_empty_documents() {
        let docs = parse("---\nkind: A\n---\n---\nkind: B\nlist: [1, 2]\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].index, docs[0].line), (1, 1));
        assert_eq!((docs[1].index, docs[1].line), (3, 4));
        assert_eq!(docs[1].value, json!({"kind": "B", "list": [1, 2]}));
    }

    #[test]
    fn yaml_1_1_words_stay_strings() {
        let docs = parse("data:\n  on: yes\n  mode: '010'\n  port: 010\n").unwrap();
        assert_eq!(docs[0].value["data"]["on"], json!("yes"));
        assert_eq!(docs[0].value["data"]["mode"], json!("010"));
    }

    #[test]
    fn tab_indentation_names_line_and_column() {
        let error = parse("kind: Pod\nmetadata:\n\tname: x\n").unwrap_err();
        let Error::ManifestSyntax {
            document,
            at: Some(at),
            message,
            ..
        } = &error
        else {
            panic!("{error:?}")
        };
        assert_eq!(*document, 1);
        assert_eq!((at.line, at.column), (3, 1));
        assert!(message.contains("tabs cannot indent YAML"), "{message}");
    }

    #[test]
    fn unclosed_quote_is_an_error_with_position() {
        let error = parse("kind: Pod\nmetadata:\n  name: \"x\n").unwrap_err();
        assert!(
            matches!(error, Error::ManifestSyntax { at: Some(_), .. }),
            "{error:?}"
        );
    }

    #[test]
    fn duplicate_keys_are_rejected_with_position() {
        let error = parse("kind: Pod\nmetadata:\n  name: a\n  name: b\n").unwrap_err();
        let Error::ManifestSyntax { message, at, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(message, "metadata: duplicate key `name`");
        assert_eq!(at.as_ref().map(|a| (a.line, a.column)), Some((4, 3)));
    }

    #[test]
    fn json_documents_and_errors() {
        let docs = parse("{\"kind\": \"List\", \"items\": []}").unwrap();
        assert_eq!(docs[0].value["kind"], json!("List"));
        let error = parse("{\n  \"kind\": \"Pod\",\n  \"kind\": \"X\"\n}").unwrap_err();
        let Error::ManifestSyntax { message, at, .. } = &error else {
            panic!("{error:?}")
        };
        assert!(message.contains("duplicate key `kind`"), "{message}");
        assert_eq!(at.as_ref().map(|a| a.line), Some(3));
    }

    #[test]
    fn yaml_round_trips() {
        let value = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"on": "yes", "multi": "a\nb\n", "n": "010"}});
        let back = parse(&to_yaml(&value)).unwrap();
        assert_eq!(back[0].value, value);
    }
}
