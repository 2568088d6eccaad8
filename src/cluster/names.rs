//! Object names and namespaces as the API server checks them, and request path segments.
//!
//! A name is checked before any request about it is sent: a name with `#`, `?` or `/` in it
//! would otherwise change the request (everything after `#` is dropped, `dryRun=All`
//! included, so a planned delete of `victim#x` deleted `victim`). Every segment is also
//! percent-encoded when a path is built, for the names the server allows that are not plain
//! (RBAC names such as `system:controller:x`).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is encoded in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// The rule the API server applies to the names of a kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NameRule {
    /// RFC 1123 label: at most 63 lowercase alphanumerics or `-`, alphanumeric at both ends
    /// (Namespaces, Services).
    Label,
    /// RFC 1123 subdomain: at most 253 characters, labels joined by `.` (most kinds, custom
    /// resources included).
    Subdomain,
    /// Any path segment: not `.` or `..`, no `/` or `%` (RBAC roles and bindings).
    PathSegment,
}

impl NameRule {
    /// The rule for a kind of a group (`""` for the core group).
    pub fn of(group: &str, kind: &str) -> NameRule {
        match (group, kind) {
            ("", "Namespace" | "Service") => NameRule::Label,
            ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
            _ => NameRule::Subdomain,
        }
    }

    /// Why `name` breaks the rule, or `None` when it does not.
    pub fn violation(self, name: &str) -> Option<String> {
        if name.is_empty() {
            return Some("a name may not be empty".into());
        }
        match self {
            NameRule::Label => (!is_label(name)).then(|| {
                "a lowercase RFC 1123 label must consist of at most 63 lower case alphanumeric \
                 characters or '-', and must start and end with an alphanumeric character"
                    .to_string()
            }),
            NameRule::Subdomain => (!is_subdomain(name)).then(|| {
                "a lowercase RFC 1123 subdomain must consist of at most 253 lower case \
                 alphanumeric characters, '-' or '.', and must start and end with an \
                 alphanumeric character"
                    .to_string()
            }),
            NameRule::PathSegment => {
                if name == "." || name == ".." {
                    Some(format!("a name may not be `{name}`"))
                } else if name.contains('/') || name.contains('%') {
                    Some("a name may not contain '/' or '%'".into())
                } else {
                    None
                }
            }
        }
    }
}

fn is_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

fn is_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_subdomain_part)
}

/// A part of a subdomain between dots: a label without the 63-character limit, as the API
/// server's regular expression has it.
fn is_subdomain_part(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Checks the name of an object of `kind` in `group`: `Err` says which name and why.
pub fn check_name(group: &str, kind: &str, name: &str) -> Result<(), String> {
    match NameRule::of(group, kind).violation(name) {
        Some(why) => Err(format!(
            "invalid {kind} name `{}`: {why}; nothing was sent",
            name.escape_debug()
        )),
        None => Ok(()),
    }
}

/// Checks a namespace name (an RFC 1123 label).
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    match NameRule::Label.violation(namespace) {
        Some(why) => Err(format!(
            "invalid namespace `{}`: {why}; nothing was sent",
            namespace.escape_debug()
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules_of_their_kind() {
        for name in [
            "reviews",
            "reviews-v1",
            "a.b.c",
            "0abc",
            "istio-ca-root-cert",
        ] {
            assert_eq!(check_name("", "ConfigMap", name), Ok(()), "{name}");
        }
        for name in [
            "victim#x",
            "victim?dryRun=All",
            "../x",
            "a/b",
            "Upper",
            "-a",
            "a-",
            "a..b",
            "",
            &"a".repeat(254),
        ] {
            let error = check_name("", "ConfigMap", name).unwrap_err();
            assert!(error.contains("invalid ConfigMap name"), "{error}");
        }
        assert!(check_name("", "Service", "a.b").is_err());
        assert!(check_name("", "Namespace", &"a".repeat(64)).is_err());
        assert!(check_name("apps", "Deployment", &"a".repeat(64)).is_ok());
        // The server is lenient with RBAC names: only '/', '%', '.' and '..' are refused.
        let rbac = "rbac.authorization.k8s.io";
        assert!(check_name(rbac, "ClusterRole", "system:controller:x").is_ok());
        assert!(check_name(rbac, "Role", "a/b").is_err());
        assert!(check_name(rbac, "Role", "..").is_err());
        assert!(check_namespace("bookinfo").is_ok());
        assert!(check_namespace("book#info").is_err());
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("reviews-v1.a_b~"), "reviews-v1.a_b~");
        assert_eq!(
            segment("system:controller:x#y?z/w%"),
            "system%3Acontroller%3Ax%23y%3Fz%2Fw%25"
        );
    }
}
