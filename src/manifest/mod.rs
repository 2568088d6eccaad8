//! Manifests: pure transforms of Kubernetes objects held as `serde_json::Value`. Nothing here
//! talks to a cluster; the only I/O is [`load`] reading the file it is given.

pub mod diff;
pub mod jsonpath;
pub mod path;
pub mod select;
pub mod selector;
pub mod strip;
pub mod template;
pub mod yaml;

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::snippet::Location;

/// Manifest files larger than this are refused: far beyond any real manifest, and it keeps a
/// mistaken `load("/var/log/huge")` from exhausting memory.
pub const MAX_MANIFEST_BYTES: u64 = 32 * 1024 * 1024;

/// Reads a YAML or JSON manifest file into Kubernetes objects (`List` kinds flattened).
pub fn load(path: &Path) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    load_each(path, |object| objects.push(object))?;
    Ok(objects)
}

/// [`load`] one object at a time.
pub fn load_each(path: &Path, each: impl FnMut(Value)) -> Result<()> {
    let shown = crate::files::display_path(path);
    let metadata = std::fs::metadata(path).map_err(|error| Error::ReadFile {
        path: shown.clone(),
        reason: error.to_string(),
    })?;
    if metadata.is_dir() {
        return Err(Error::ReadFile {
            path: shown,
            reason: "it is a directory".into(),
        });
    }
    if metadata.len() > MAX_MANIFEST_BYTES {
        return Err(Error::FileTooLarge {
            path: shown,
            size: metadata.len(),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    // The length of a device or a pipe says nothing (`/dev/zero` is 0 bytes long): read at
    // most one byte past the limit, whatever the file is.
    let read_error = |error: std::io::Error| Error::ReadFile {
        path: shown.clone(),
        reason: error.to_string(),
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(read_error)?,
            MAX_MANIFEST_BYTES + 1,
        ),
        &mut bytes,
    )
    .map_err(read_error)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(Error::FileTooLarge {
            path: shown,
            size: bytes.len() as u64,
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| Error::ReadFile {
        path: shown.clone(),
        reason: "stream did not contain valid UTF-8".into(),
    })?;
    for_each_object(&shown, &text, each)
}

/// Parses manifest text into Kubernetes objects: every document must be a mapping with
/// `apiVersion` and `kind`; `List` kinds are flattened into their items.
pub fn parse_objects(file: &str, text: &str) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for_each_object(file, text, |object| objects.push(object))?;
    Ok(objects)
}

/// [`parse_objects`] one object at a time: each is handed over as soon as it is parsed.
pub fn for_each_object(file: &str, text: &str, mut each: impl FnMut(Value)) -> Result<()> {
    yaml::for_each_document(file, text, |document| {
        // The location is only worked out for an error: finding a line is a scan of the text.
        let line = document.line;
        let problem = |message: String| Error::ManifestObject {
            file: file.to_string(),
            document: document.index,
            message,
            at: Some(Location::in_source(file, text, line, 1)),
        };
        check_object(&document.value).map_err(problem)?;
        let is_list = document.value["kind"]
            .as_str()
            .is_some_and(|k| k.ends_with("List"))
            && document.value.get("items").is_some();
        if is_list {
            let Value::Object(mut list) = document.value else {
                unreachable!("checked above")
            };
            let Some(Value::Array(items)) = list.remove("items") else {
                return Err(problem("`items` of a List must be a sequence".into()));
            };
            for (position, item) in items.into_iter().enumerate() {
                check_object(&item).map_err(|m| problem(format!("item {}: {m}", position + 1)))?;
                each(item);
            }
        } else {
            each(document.value);
        }
        Ok(())
    })
}

/// What every object needs before anything can apply it.
fn check_object(value: &Value) -> std::result::Result<(), String> {
    let Some(object) = value.as_object() else {
        return Err(format!(
            "expected a mapping (a Kubernetes object), found {}",
            describe(value)
        ));
    };
    for field in ["apiVersion", "kind"] {
        match object.get(field) {
            None => return Err(format!("the object has no `{field}`")),
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            Some(other) => {
                return Err(format!(
                    "`{field}` must be a non-empty string, found {}",
                    describe(other)
                ));
            }
        }
    }
    if let Some(metadata) = object.get("metadata")
        && !metadata.is_object()
    {
        return Err(format!(
            "`metadata` must be a mapping, found {}",
            describe(metadata)
        ));
    }
    Ok(())
}

/// "a sequence", "the string `x`": for messages about values of the wrong shape.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Array(_) => "a sequence".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// `kind/namespace/name` (or `kind/name`) for messages.
pub fn object_label(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("?");
    let name = object["metadata"]["name"].as_str().unwrap_or("?");
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => format!("{kind}/{namespace}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_flattened() {
        let objects = parse_objects(
            "l.yaml",
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n",
        )
        .unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(object_label(&objects[1]), "Secret/b");
    }

    #[test]
    fn a_document_without_kind_names_document_and_line() {
        let error = parse_objects(
            "app.yaml",
            "apiVersion: v1\nkind: A\n---\napiVersion: v1\nmetadata: {name: x}\n",
        )
        .unwrap_err();
        let Error::ManifestObject {
            document,
            message,
            at,
            ..
        } = &error
        else {
            panic!("{error:?}")
        };
        assert_eq!(*document, 2);
        assert_eq!(message, "the object has no `kind`");
        assert_eq!(at.as_ref().map(|a| a.line), Some(3));
    }

    #[test]
    fn scalars_are_not_objects() {
        let error = parse_objects("x.yaml", "just text\n").unwrap_err();
        assert!(
            error
                .message()
                .contains("expected a mapping (a Kubernetes object), found the string `just text`")
        );
    }
}
