//! `Objects`: a list of Kubernetes objects that keeps each one as compact JSON text until a
//! script touches it. A Rhai map costs at least one B-tree node (about 450 bytes) and an object
//! is a dozen maps, so 5,000 loaded objects held as maps take ten times the file's size; as
//! text they take about its size. Reading an item (`objects[0]`, `for o in objects`) gives a
//! real map, converted then; writing one (`objects[0] = o`, `objects[0].x = 1`) stores the map.

use std::sync::Arc;

use rhai::{Array, Dynamic};
use serde_json::{Number, Value};

use super::{from_dynamic, to_dynamic};

/// Objects nested deeper than this are kept as maps: the JSON reader refuses text nested
/// past 128 levels, and no Kubernetes object comes near.
const COMPACT_DEPTH_MAX: usize = 100;

/// A list of objects, each kept compact until read (see the module comment).
#[derive(Clone, Default)]
pub struct Objects {
    items: Vec<Item>,
}

#[derive(Clone)]
enum Item {
    /// JSON text whose conversion gives exactly the map the object would have been.
    Compact(Arc<str>),
    /// A value a script put there (or an object too deep to keep as text).
    Value(Dynamic),
}

impl Objects {
    /// Adds a parsed object, compactly.
    pub fn push_json(&mut self, mut object: Value) {
        if depth(&object) > COMPACT_DEPTH_MAX {
            self.items.push(Item::Value(to_dynamic(object)));
            return;
        }
        // What `to_dynamic` would learn from a Secret, learnt now: the text is not a map yet.
        if object.get("kind").is_some_and(|k| k == "Secret") {
            crate::redact::learn(&object);
        }
        normalise(&mut object);
        self.items.push(Item::Compact(object.to_string().into()));
    }

    /// Adds any script value.
    pub fn push(&mut self, value: Dynamic) {
        self.items.push(Item::Value(value));
    }

    /// Adds every item of another list.
    pub fn append(&mut self, other: Objects) {
        self.items.extend(other.items);
    }

    /// Adds every item of an array.
    pub fn append_array(&mut self, array: Array) {
        self.items.extend(array.into_iter().map(Item::Value));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item at `index` as a script sees it (a fresh map for a compact object).
    pub fn get(&self, index: usize) -> Option<Dynamic> {
        self.items.get(index).map(Item::to_dynamic)
    }

    /// Replaces the item at `index` (false when out of range).
    pub fn set(&mut self, index: usize, value: Dynamic) -> bool {
        match self.items.get_mut(index) {
            Some(item) => {
                *item = Item::Value(value);
                true
            }
            None => false,
        }
    }

    /// Every item as a script sees it, one at a time.
    pub fn iter(&self) -> impl Iterator<Item = Dynamic> + '_ {
        self.items.iter().map(Item::to_dynamic)
    }

    /// The items `keep` says yes to, still compact.
    pub fn retained(
        &self,
        mut keep: impl FnMut(usize, Dynamic) -> Result<bool, Box<rhai::EvalAltResult>>,
    ) -> Result<Objects, Box<rhai::EvalAltResult>> {
        let mut kept = Objects::default();
        for (index, item) in self.items.iter().enumerate() {
            if keep(index, item.to_dynamic())? {
                kept.items.push(item.clone());
            }
        }
        Ok(kept)
    }

    /// Changes every item through its map; a compact item is written back as JSON, so `change`
    /// must put in JSON values only (a Rhai character would come back a string): label and
    /// namespace changes put in strings.
    pub fn update_each(
        &mut self,
        mut change: impl FnMut(&mut Dynamic) -> Result<(), Box<rhai::EvalAltResult>>,
    ) -> Result<(), Box<rhai::EvalAltResult>> {
        for item in &mut self.items {
            match item {
                Item::Value(value) => change(value)?,
                Item::Compact(_) => {
                    let mut value = item.to_dynamic();
                    change(&mut value)?;
                    *item = match from_dynamic(&value) {
                        Ok(mut json) if value.is_map() => {
                            normalise(&mut json);
                            Item::Compact(json.to_string().into())
                        }
                        _ => Item::Value(value),
                    };
                }
            }
        }
        Ok(())
    }

    /// Every item as a map (or whatever value it holds): the array `load` used to return.
    pub fn to_array(&self) -> Array {
        self.iter().collect()
    }

    /// A list holding an array's items.
    pub fn from_array(array: Array) -> Objects {
        let mut objects = Objects::default();
        objects.append_array(array);
        objects
    }

    /// Every item as JSON, without building maps for compact ones.
    pub fn to_json(&self) -> Result<Value, String> {
        self.items
            .iter()
            .map(|item| match item {
                Item::Compact(text) => Ok(parse_compact(text)),
                Item::Value(value) => from_dynamic(value),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }
}

impl Item {
    fn to_dynamic(&self) -> Dynamic {
        match self {
            Item::Compact(text) => to_dynamic(parse_compact(text)),
            Item::Value(value) => value.clone(),
        }
    }
}

/// Reads text `push_json` wrote (valid JSON, nested at most `COMPACT_DEPTH_MAX` levels).
fn parse_compact(text: &str) -> Value {
    serde_json::from_str(text).expect("compact objects are JSON this module wrote")
}

impl IntoIterator for Objects {
    type Item = Dynamic;
    type IntoIter = Box<dyn Iterator<Item = Dynamic>>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.items.into_iter().map(|item| item.to_dynamic()))
    }
}

/// Makes JSON equal, key order included, to what a round trip through a Rhai map gives:
/// keys sorted (a Rhai map is a B-tree) and integers beyond `i64` as floats.
pub fn normalise(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.sort_keys();
            fields.values_mut().for_each(normalise);
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        Value::Number(n) if n.as_i64().is_none() => {
            if let Some(float) = n.as_f64().and_then(Number::from_f64) {
                *n = float;
            }
        }
        _ => {}
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "labels": {"version": 1, "app": "web"}},
            "spec": {"replicas": 2, "ratio": 0.5, "big": 18446744073709551615u64, "none": null,
                     "containers": [{"name": "web", "ports": [{"containerPort": 80}]}]}
        })
    }

    #[test]
    fn a_compact_object_reads_back_as_the_map_it_would_have_been() {
        let mut objects = Objects::default();
        objects.push_json(sample());
        let eager = to_dynamic(sample());
        let lazy = objects.get(0).unwrap();
        assert_eq!(lazy.to_string(), eager.to_string());
        // JSON straight from the text equals JSON from the map, key order included.
        let from_map = from_dynamic(&eager).unwrap().to_string();
        assert_eq!(objects.to_json().unwrap()[0].to_string(), from_map);
    }

    #[test]
    fn updates_keep_compact_items_compact_and_values_as_given() {
        let mut objects = Objects::default();
        objects.push_json(sample());
        objects.push(Dynamic::from('x'));
        objects
            .update_each(|value| {
                if let Some(mut map) = value.write_lock::<rhai::Map>() {
                    map.insert("touched".into(), true.into());
                }
                Ok(())
            })
            .unwrap();
        assert!(matches!(objects.items[0], Item::Compact(_)));
        assert!(matches!(objects.items[1], Item::Value(_)));
        assert_eq!(objects.to_json().unwrap()[0]["touched"], true);
        assert_eq!(objects.get(1).unwrap().as_char().unwrap(), 'x');
    }

    #[test]
    fn deep_objects_are_kept_as_maps() {
        let mut deep = json!(1);
        for _ in 0..(COMPACT_DEPTH_MAX + 5) {
            deep = json!({ "a": deep });
        }
        let mut objects = Objects::default();
        objects.push_json(deep.clone());
        assert!(matches!(objects.items[0], Item::Value(_)));
        assert_eq!(objects.to_json().unwrap()[0], deep);
    }
}
