//! YAML with a bound on what aliases expand to. An alias repeats its anchor's node, and
//! aliases of aliases multiply: a 30 KB file of them expands to gigabytes. Every value built
//! from YAML here, and in meshshift's manifest reader, is charged against a budget
//! proportional to the text ([`Budget`]); past it, parsing fails instead of allocating.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// What a document may expand to: this many times its text, plus [`EXPANSION_FLOOR`] bytes.
pub const EXPANSION_FACTOR: usize = 16;
/// Bytes every document may expand to, however short its text.
pub const EXPANSION_FLOOR: usize = 1 << 20;
/// What a node costs besides its text (a scalar, a sequence, a mapping).
const NODE_COST: usize = 16;

thread_local! {
    static REMAINING: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The expansion budget of the document being parsed on this thread.
pub struct Budget {
    previous: Option<usize>,
}

impl Budget {
    /// Starts a budget for a document parsed from `text_len` bytes (ended when dropped).
    pub fn start(text_len: usize) -> Budget {
        let limit = text_len
            .saturating_mul(EXPANSION_FACTOR)
            .saturating_add(EXPANSION_FLOOR);
        Budget {
            previous: REMAINING.with(|r| r.replace(Some(limit))),
        }
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        REMAINING.with(|r| r.set(self.previous));
    }
}

/// Charges a node of `bytes` of text against the current budget (none: nothing to charge).
pub fn charge<E: de::Error>(bytes: usize) -> Result<(), E> {
    REMAINING.with(|remaining| match remaining.get() {
        None => Ok(()),
        Some(left) => match left.checked_sub(bytes.saturating_add(NODE_COST)) {
            Some(rest) => {
                remaining.set(Some(rest));
                Ok(())
            }
            None => Err(E::custom(format!(
                "the document expands to more than {EXPANSION_FACTOR} times its size \
                 (aliases of aliases?): refused"
            ))),
        },
    })
}

/// Parses one YAML document into JSON, bounded.
pub fn from_str(text: &str) -> Result<Value, serde_yaml::Error> {
    let _budget = Budget::start(text.len());
    Node::<false>::deserialize(serde_yaml::Deserializer::from_str(text)).map(|n| n.0)
}

/// [`from_str`] of bytes.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_yaml::Error> {
    let _budget = Budget::start(bytes.len());
    Node::<false>::deserialize(serde_yaml::Deserializer::from_slice(bytes)).map(|n| n.0)
}

/// A JSON value built from YAML or JSON within the expansion budget. With
/// `REFUSE_DUPLICATES`, a mapping with a key twice is an error (manifests); without, the last
/// one wins (as kube-apiserver decodes request bodies when validation is not strict).
pub struct Node<const REFUSE_DUPLICATES: bool>(pub Value);

impl<'de, const R: bool> Deserialize<'de> for Node<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor::<R>).map(Node)
    }
}

struct NodeVisitor<const REFUSE_DUPLICATES: bool>;

impl<'de, const R: bool> Visitor<'de> for NodeVisitor<R> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        charge::<E>(0)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        charge::<E>(0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        charge::<E>(0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        charge::<E>(0)?;
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("the number `{v}` has no JSON form")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        charge::<E>(v.len())?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        charge::<E>(v.len())?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        charge::<E>(0)?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        charge::<E>(0)?;
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Node::<R>::deserialize(deserializer).map(|v| v.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        charge::<A::Error>(0)?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Node<R>>()? {
            items.push(item.0);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        charge::<A::Error>(0)?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<StrictKey>()? {
            if R && map.contains_key(&key.0) {
                return Err(de::Error::custom(format!("duplicate key `{}`", key.0)));
            }
            let value = access.next_value::<Node<R>>()?;
            map.insert(key.0, value.0);
        }
        Ok(Value::Object(map))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(de::Error::custom(
            "YAML tags such as `!Thing` are not supported",
        ))
    }
}

/// Mapping keys: YAML allows numbers and booleans; Kubernetes objects only use strings.
struct StrictKey(String);

impl<'de> Deserialize<'de> for StrictKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyVisitor).map(StrictKey)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key (string, number or boolean)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        charge::<E>(v.len())?;
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        charge::<E>(v.len())?;
        Ok(v)
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// About 30 KB of aliases of aliases: without a bound, gigabytes.
    pub fn alias_bomb() -> String {
        let mut text = format!("a0: &a0 [\"{}\"]\n", "x".repeat(20_000));
        for level in 1..40 {
            let previous = format!("*a{}", level - 1);
            let list = vec![previous.as_str(); 20].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{list}]\n"));
        }
        text
    }

    #[test]
    fn aliases_expand_within_a_bound() {
        let text = alias_bomb();
        assert!(text.len() < 40_000);
        let error = from_str(&text).unwrap_err().to_string();
        assert!(error.contains("expands to more than"), "{error}");
        // A few aliases are fine.
        let value = from_str("base: &b {x: 1}\none: *b\ntwo: *b\n").unwrap();
        assert_eq!(value["two"]["x"], 1);
        assert_eq!(from_slice(b"a: [1, true, ~]").unwrap()["a"][1], true);
    }
}
