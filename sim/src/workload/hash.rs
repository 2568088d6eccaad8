//! Names of controller-made objects: the `pod-template-hash` of a pod template and the
//! alphabet Kubernetes draws generated names from.

use serde_json::Value;

/// Characters Kubernetes uses in generated names and encoded hashes: no vowels (no words)
/// and no characters that look alike (`0`/`o`, `1`/`l`, `3`/`e`).
pub const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// 32-bit FNV-1a, the hash the Deployment controller uses for pod templates.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Maps each character of `text` into [`NAME_ALPHABET`], as `rand.SafeEncodeString` does,
/// so the decimal form of a hash becomes `5c7d8f9b6`-like text.
pub fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|b| NAME_ALPHABET[usize::from(b) % NAME_ALPHABET.len()] as char)
        .collect()
}

/// The `pod-template-hash` of a pod template: FNV-1a over a canonical serialisation (keys
/// sorted, so field order does not matter) plus the collision count, encoded safely. The
/// template's own `pod-template-hash` label is left out, as the controller adds it after
/// hashing.
pub fn template_hash(template: &Value, collision_count: u32) -> String {
    let mut template = template.clone();
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("pod-template-hash");
    }
    let mut bytes = Vec::new();
    write_canonical(&template, &mut bytes);
    if collision_count > 0 {
        bytes.extend_from_slice(&collision_count.to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// JSON with object keys sorted, so equal values always give equal bytes.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(key.clone()).to_string().as_bytes());
                out.push(b':');
                if let Some(inner) = map.get(key) {
                    write_canonical(inner, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fnv_matches_the_reference_values() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn hashes_are_stable_and_ignore_key_order_and_their_own_label() {
        let a = json!({"metadata": {"labels": {"app": "reviews", "version": "v1"}},
                       "spec": {"containers": [{"name": "reviews", "image": "r:1"}]}});
        let b = json!({"spec": {"containers": [{"image": "r:1", "name": "reviews"}]},
                       "metadata": {"labels": {"version": "v1", "app": "reviews",
                                               "pod-template-hash": "xyz"}}});
        let hash = template_hash(&a, 0);
        assert_eq!(hash, template_hash(&b, 0));
        assert!(hash.len() >= 6 && hash.len() <= 10, "{hash}");
        assert!(hash.bytes().all(|c| NAME_ALPHABET.contains(&c)), "{hash}");
        let restarted = json!({"metadata": {"labels": {"app": "reviews", "version": "v1"},
                                            "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
                               "spec": {"containers": [{"name": "reviews", "image": "r:1"}]}});
        assert_ne!(hash, template_hash(&restarted, 0));
        assert_ne!(
            hash,
            template_hash(&a, 1),
            "a collision count changes the hash"
        );
    }
}
