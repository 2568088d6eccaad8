//! Paths into objects: `spec.ports[0].port`, `metadata.labels["istio.io/rev"]`.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Key(String),
    /// Negative indexes count from the end.
    Index(i64),
}

/// Parses `a.b[0].c`, with `["key.with.dots"]` or `['key']` for keys that contain `.` or `[`.
pub fn parse(path: &str) -> Result<Vec<Segment>, String> {
    let chars: Vec<char> = path.chars().collect();
    let mut segments = Vec::new();
    let mut i = 0;
    let mut expect_key = true;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                if expect_key {
                    return Err(format!("empty key at column {}", i + 1));
                }
                expect_key = true;
                i += 1;
            }
            '[' => {
                let close = chars[i..].iter().position(|c| *c == ']').map(|p| p + i);
                let quote = chars
                    .get(i + 1)
                    .copied()
                    .filter(|c| *c == '"' || *c == '\'');
                if let Some(quote) = quote {
                    let end = chars[i + 2..]
                        .iter()
                        .position(|c| *c == quote)
                        .map(|p| p + i + 2);
                    let Some(end) = end else {
                        return Err(format!("unterminated quote at column {}", i + 2));
                    };
                    if chars.get(end + 1) != Some(&']') {
                        return Err(format!("expected `]` at column {}", end + 2));
                    }
                    segments.push(Segment::Key(chars[i + 2..end].iter().collect()));
                    i = end + 2;
                } else {
                    let Some(close) = close else {
                        return Err(format!("unclosed `[` at column {}", i + 1));
                    };
                    let inner: String = chars[i + 1..close].iter().collect();
                    let index = inner.trim().parse::<i64>().map_err(|_| {
                        format!(
                            "`[{inner}]` at column {} is not an index; quote keys: `[\"{inner}\"]`",
                            i + 1
                        )
                    })?;
                    segments.push(Segment::Index(index));
                    i = close + 1;
                }
                expect_key = false;
            }
            _ => {
                if !expect_key {
                    return Err(format!("expected `.` or `[` at column {}", i + 1));
                }
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                segments.push(Segment::Key(chars[start..i].iter().collect()));
                expect_key = false;
            }
        }
    }
    if segments.is_empty() {
        return Err("the path is empty".into());
    }
    if expect_key {
        return Err("the path ends with `.`".into());
    }
    Ok(segments)
}

/// Resolves a possibly negative index against a length.
pub fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let resolved = if index < 0 { len as i64 + index } else { index };
    (0..len as i64)
        .contains(&resolved)
        .then_some(resolved as usize)
}

/// The value at `path`, if every step exists.
pub fn get<'a>(value: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |current, segment| match segment {
            Segment::Key(key) => current.get(key),
            Segment::Index(index) => {
                let items = current.as_array()?;
                items.get(resolve_index(*index, items.len())?)
            }
        })
}

/// Sets the value at `path`, creating missing mappings on the way. Indexes must exist.
pub fn set(value: &mut Value, path: &[Segment], new: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("the path is empty".into());
    };
    let mut current = value;
    for (step, segment) in parents.iter().enumerate() {
        current = step_into(current, segment, step)?;
    }
    match last {
        Segment::Key(key) => {
            if current.is_null() {
                *current = Value::Object(Default::default());
            }
            let Some(object) = current.as_object_mut() else {
                return Err(format!(
                    "cannot set key `{key}`: the parent is not a mapping"
                ));
            };
            object.insert(key.clone(), new);
        }
        Segment::Index(index) => {
            let Some(items) = current.as_array_mut() else {
                return Err(format!(
                    "cannot set index [{index}]: the parent is not a sequence"
                ));
            };
            let len = items.len();
            let Some(position) = resolve_index(*index, len) else {
                return Err(format!("index [{index}] is out of range (length {len})"));
            };
            items[position] = new;
        }
    }
    Ok(())
}

fn step_into<'a>(
    current: &'a mut Value,
    segment: &Segment,
    step: usize,
) -> Result<&'a mut Value, String> {
    match segment {
        Segment::Key(key) => {
            if current.is_null() {
                *current = Value::Object(Default::default());
            }
            let Some(object) = current.as_object_mut() else {
                return Err(format!(
                    "step {}: `{key}` is not inside a mapping",
                    step + 1
                ));
            };
            Ok(object.entry(key.clone()).or_insert(Value::Null))
        }
        Segment::Index(index) => {
            let Some(items) = current.as_array_mut() else {
                return Err(format!(
                    "step {}: [{index}] is not inside a sequence",
                    step + 1
                ));
            };
            let len = items.len();
            let position = resolve_index(*index, len)
                .ok_or_else(|| format!("index [{index}] is out of range (length {len})"))?;
            Ok(&mut items[position])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_keys_indexes_and_quoted_keys() {
        assert_eq!(
            parse(r#"metadata.labels["istio.io/rev"]"#).unwrap(),
            vec![
                Segment::Key("metadata".into()),
                Segment::Key("labels".into()),
                Segment::Key("istio.io/rev".into())
            ]
        );
        assert_eq!(
            parse("spec.ports[-1].port").unwrap(),
            vec![
                Segment::Key("spec".into()),
                Segment::Key("ports".into()),
                Segment::Index(-1),
                Segment::Key("port".into())
            ]
        );
    }

    #[test]
    fn reports_malformed_paths_with_columns() {
        assert_eq!(parse("a..b").unwrap_err(), "empty key at column 3");
        assert_eq!(
            parse("a[x]").unwrap_err(),
            "`[x]` at column 2 is not an index; quote keys: `[\"x\"]`"
        );
        assert_eq!(
            parse("a[\"x]").unwrap_err(),
            "unterminated quote at column 3"
        );
        assert_eq!(parse("a.").unwrap_err(), "the path ends with `.`");
        assert_eq!(parse("").unwrap_err(), "the path is empty");
    }

    #[test]
    fn gets_and_sets() {
        let mut object = json!({"spec": {"ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            get(&object, &parse("spec.ports[1].port").unwrap()),
            Some(&json!(443))
        );
        assert_eq!(get(&object, &parse("spec.ports[5].port").unwrap()), None);
        set(
            &mut object,
            &parse("spec.ports[-1].port").unwrap(),
            json!(8443),
        )
        .unwrap();
        set(
            &mut object,
            &parse("metadata.labels[\"istio.io/rev\"]").unwrap(),
            json!("asm-1-25"),
        )
        .unwrap();
        assert_eq!(object["spec"]["ports"][1]["port"], json!(8443));
        assert_eq!(
            object["metadata"]["labels"]["istio.io/rev"],
            json!("asm-1-25")
        );
        assert!(
            set(&mut object, &parse("spec.ports[9]").unwrap(), json!(1))
                .unwrap_err()
                .contains("out of range")
        );
    }
}
