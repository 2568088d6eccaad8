//! Patch formats the server accepts: JSON patch, JSON merge patch, strategic merge patch and
//! server-side apply (the last one lives in [`crate::managed`], on top of
//! [`structured`]).

pub mod strategic;
pub mod structured;

use serde_json::Value;

use super::status::ApiError;

/// The patch media types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type for a Content-Type header value.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// Applies an RFC 6902 JSON patch.
pub fn apply_json_patch(original: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let patch: json_patch::Patch =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut document = original.clone();
    json_patch::patch(&mut document, &patch).map_err(|_| ApiError::unprocessable())?;
    Ok(document)
}

/// Applies an RFC 7386 JSON merge patch.
pub fn apply_merge_patch(original: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let patch: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut document = original.clone();
    json_patch::merge(&mut document, &patch);
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_map_to_patch_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn json_patch_failures_are_unprocessable() {
        let original = json!({"metadata": {"name": "x"}});
        let error = apply_json_patch(
            &original,
            br#"[{"op":"remove","path":"/metadata/labels/nope"}]"#,
        )
        .expect_err("path does not exist");
        assert_eq!(error.code, 422);
        let patched = apply_json_patch(
            &original,
            br#"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]"#,
        )
        .expect("valid patch");
        assert_eq!(patched["metadata"]["labels"]["a"], "b");
        assert_eq!(
            apply_json_patch(&original, b"{")
                .expect_err("not json")
                .code,
            400
        );
    }

    #[test]
    fn merge_patch_removes_nulls() {
        let original = json!({"data": {"a": "1", "b": "2"}});
        let patched =
            apply_merge_patch(&original, br#"{"data":{"a":null,"c":"3"}}"#).expect("valid");
        assert_eq!(patched["data"], json!({"b": "2", "c": "3"}));
    }
}
