//! Objects cross between Rust (`serde_json::Value`) and Rhai (`Dynamic` maps and arrays) here,
//! so scripts edit manifests with plain map syntax (`obj.metadata.name`).

pub mod objects;

use rhai::{Array, Dynamic, Map};
use serde_json::{Number, Value};

pub use objects::Objects;

/// Converts a JSON value into a Rhai value, consuming it so large manifests are not held twice.
pub fn to_dynamic(value: Value) -> Dynamic {
    Converter::default().convert(value)
}

/// Converts many values, sharing one copy of each short string that repeats (`TCP`, `v1`, a
/// namespace): manifests repeat the same few values thousands of times.
#[derive(Default)]
pub struct Converter {
    strings: std::collections::HashMap<String, rhai::ImmutableString>,
}

/// Strings longer than this are rarely repeated; sharing them would only cost lookups.
const SHARED_STRING_MAX: usize = 40;

impl Converter {
    /// Converts one value.
    pub fn convert(&mut self, value: Value) -> Dynamic {
        match value {
            Value::Null => Dynamic::UNIT,
            Value::Bool(b) => b.into(),
            Value::Number(n) => number_to_dynamic(&n),
            Value::String(s) if s.len() <= SHARED_STRING_MAX => {
                let shared = self
                    .strings
                    .entry(s)
                    .or_insert_with_key(|s| s.as_str().into());
                Dynamic::from(shared.clone())
            }
            Value::String(s) => s.into(),
            Value::Array(items) => {
                let array: Array = items.into_iter().map(|item| self.convert(item)).collect();
                array.into()
            }
            Value::Object(fields) => {
                // A Secret crossing into a script: its values are masked in all output from now.
                let fields = if fields.get("kind").is_some_and(|k| k == "Secret") {
                    let secret = Value::Object(fields);
                    crate::redact::learn(&secret);
                    match secret {
                        Value::Object(fields) => fields,
                        _ => unreachable!("still an object"),
                    }
                } else {
                    fields
                };
                let mut map = Map::new();
                for (key, value) in fields {
                    map.insert(key.into(), self.convert(value));
                }
                map.into()
            }
        }
    }
}

fn number_to_dynamic(n: &Number) -> Dynamic {
    if let Some(i) = n.as_i64() {
        Dynamic::from_int(i)
    } else {
        // u64 above i64::MAX and real numbers both become floats.
        Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Converts a Rhai value into JSON; functions, closures and host handles have no JSON form.
pub fn from_dynamic(value: &Dynamic) -> Result<Value, String> {
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Some(b) = value.clone().try_cast::<bool>() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::Number(i.into()));
    }
    if let Ok(f) = value.as_float() {
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("the number `{f}` has no JSON form"));
    }
    if value.is_string() {
        return Ok(Value::String(
            value.clone().into_string().unwrap_or_default(),
        ));
    }
    if value.is_char() {
        return Ok(Value::String(
            value.as_char().map(String::from).unwrap_or_default(),
        ));
    }
    if value.is_array() {
        let array = value.read_lock::<Array>().ok_or("array is locked")?;
        return array
            .iter()
            .map(from_dynamic)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if value.is_map() {
        return map_to_json(&*value.read_lock::<Map>().ok_or("map is locked")?);
    }
    if let Some(objects) = value.read_lock::<Objects>() {
        return objects.to_json();
    }
    if value.is_blob() {
        return Err("a BLOB has no YAML or JSON form; convert it to a string first".into());
    }
    Err(format!(
        "a value of type `{}` has no YAML or JSON form",
        value.type_name()
    ))
}

/// Converts a map into a JSON object (the common case for Kubernetes objects).
pub fn map_to_json(map: &Map) -> Result<Value, String> {
    let mut object = serde_json::Map::with_capacity(map.len());
    for (key, value) in map {
        object.insert(key.to_string(), from_dynamic(value)?);
    }
    let object = Value::Object(object);
    // A Secret a script built (its values from parameters, files, …): learn them too.
    if object["kind"] == "Secret" {
        crate::redact::learn(&object);
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_nested_objects() {
        let value = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "productpage", "labels": {"app": "productpage"}},
            "spec": {"ports": [{"port": 9080, "name": "http"}], "ratio": 0.5, "headless": false, "x": null}
        });
        let back = from_dynamic(&to_dynamic(value.clone())).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn refuses_values_without_json_form() {
        let error = from_dynamic(&Dynamic::from(rhai::FnPtr::new("f").unwrap())).unwrap_err();
        assert!(error.contains("has no YAML or JSON form"), "{error}");
        assert!(from_dynamic(&Dynamic::from_float(f64::NAN)).is_err());
    }
}
