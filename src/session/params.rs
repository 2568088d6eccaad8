//! Runbook parameters: `param(name)` reads `--set NAME=VALUE`, then the environment, then the
//! default; values are converted to the type of the default.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use rhai::{Array, Dynamic};

use crate::error::{Error, Result};
use crate::suggestion::did_you_mean;

/// Parameter values of one session.
pub struct Params {
    set: BTreeMap<String, String>,
    use_environment: bool,
    /// Names `param` was asked for (to find `--set` names nothing read).
    read: Mutex<BTreeSet<String>>,
    /// Names read with `secret: true`: their values are masked everywhere and not journaled.
    secret: Mutex<BTreeSet<String>>,
}

impl Params {
    /// Parses `--set` arguments (`NAME=VALUE`).
    pub fn from_set_arguments(arguments: &[String]) -> Result<Params> {
        let mut set = BTreeMap::new();
        for argument in arguments {
            let Some((name, value)) = argument.split_once('=') else {
                return Err(Error::SetWithoutEquals {
                    argument: argument.clone(),
                });
            };
            if name.trim().is_empty() {
                return Err(Error::SetWithoutName {
                    argument: argument.clone(),
                });
            }
            // Secret by name (`API_TOKEN`): masked in all output before anything is printed.
            if crate::redact::is_secret_name(name.trim()) {
                crate::redact::remember(value);
            }
            set.insert(name.trim().to_string(), value.to_string());
        }
        Ok(Params {
            set,
            use_environment: true,
            read: Mutex::default(),
            secret: Mutex::default(),
        })
    }

    /// Parameters that ignore the environment (tests).
    pub fn isolated(set: BTreeMap<String, String>) -> Params {
        Params {
            set,
            use_environment: false,
            read: Mutex::default(),
            secret: Mutex::default(),
        }
    }

    /// Adds a value unless `--set` gave one (`--sim` pointing runbooks at the simulated
    /// contexts).
    pub fn set_default_value(&mut self, name: &str, value: &str) {
        self.set
            .entry(name.to_string())
            .or_insert_with(|| value.to_string());
    }

    /// `param(name)` / `param(name, default)`.
    pub fn get(&self, name: &str, default: Option<&Dynamic>) -> Result<Dynamic> {
        self.get_marked(name, default, false)
    }

    /// `param(name, default, #{secret: true})`: a secret value (as are those of parameters
    /// named like `*TOKEN*`, `*PASSWORD*`, `*SECRET*`, `*KEY*`) is masked in all output and
    /// left out of the journal.
    pub fn get_marked(
        &self,
        name: &str,
        default: Option<&Dynamic>,
        secret: bool,
    ) -> Result<Dynamic> {
        let raw = self.set.get(name).cloned().or_else(|| {
            // An empty environment variable counts as unset, as shells make those easily.
            if self.use_environment {
                std::env::var(name).ok().filter(|v| !v.is_empty())
            } else {
                None
            }
        });
        let value = match (raw, default) {
            (Some(raw), Some(default)) => convert_like(name, &raw, default)?,
            (Some(raw), None) => raw.into(),
            (None, Some(default)) => default.clone(),
            (None, None) => {
                return Err(Error::MissingParameter {
                    name: name.to_string(),
                    suggestion: did_you_mean(name, self.set.keys().map(String::as_str)),
                });
            }
        };
        self.read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
        if secret || crate::redact::is_secret_name(name) {
            self.secret
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string());
            if let Some(raw) = self.set.get(name) {
                crate::redact::remember(raw);
            }
            crate::redact::remember(&value.to_string());
        }
        Ok(value)
    }

    /// A parameter whose value is secret: by its name, or read with `secret: true`.
    pub fn is_secret(&self, name: &str) -> bool {
        crate::redact::is_secret_name(name)
            || self
                .secret
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(name)
    }

    /// `--set` names that the runbook never read (likely typos).
    pub fn unused(&self) -> Vec<String> {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        self.set
            .keys()
            .filter(|name| !read.contains(*name))
            .cloned()
            .collect()
    }
}

/// Converts a textual value to the type of `default`.
fn convert_like(name: &str, raw: &str, default: &Dynamic) -> Result<Dynamic> {
    let bad = |expected: &str| Error::BadParameter {
        name: name.to_string(),
        value: raw.to_string(),
        expected: expected.to_string(),
    };
    if default.is_int() {
        return raw
            .trim()
            .replace('_', "")
            .parse::<i64>()
            .map(Dynamic::from_int)
            .map_err(|_| bad("an integer"));
    }
    if default.is_float() {
        return raw
            .trim()
            .parse::<f64>()
            .map(Dynamic::from_float)
            .map_err(|_| bad("a number"));
    }
    if default.is_bool() {
        return match raw.trim().to_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Ok(true.into()),
            "false" | "no" | "0" | "off" => Ok(false.into()),
            _ => Err(bad("`true` or `false`")),
        };
    }
    if default.is_array() {
        let element = default
            .read_lock::<Array>()
            .and_then(|a| a.first().cloned());
        let mut items = Array::new();
        for piece in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let item = match &element {
                Some(first) => convert_like(name, piece, first).map_err(|_| {
                    bad(&format!("a comma-separated list of {}", type_phrase(first)))
                })?,
                None => piece.into(),
            };
            items.push(item);
        }
        return Ok(items.into());
    }
    if default.is_map() {
        let json: serde_json::Value =
            serde_json::from_str(raw).map_err(|_| bad("a JSON object"))?;
        if !json.is_object() {
            return Err(bad("a JSON object"));
        }
        return Ok(crate::session::convert::to_dynamic(json));
    }
    Ok(raw.into())
}

fn type_phrase(value: &Dynamic) -> &'static str {
    if value.is_int() {
        "integers"
    } else if value.is_float() {
        "numbers"
    } else if value.is_bool() {
        "booleans"
    } else {
        "strings"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[&str]) -> Params {
        let args: Vec<String> = pairs.iter().map(|s| s.to_string()).collect();
        let mut p = Params::from_set_arguments(&args).unwrap();
        p.use_environment = false;
        p
    }

    #[test]
    fn set_beats_default_and_is_converted_to_its_type() {
        let p = params(&["STEPS=10, 50,100", "SOAK=5", "RETIRE=yes", "NAME=x=y"]);
        let steps = p
            .get("STEPS", Some(&vec![Dynamic::from_int(1)].into()))
            .unwrap();
        assert_eq!(steps.to_string(), "[10, 50, 100]");
        assert_eq!(
            p.get("SOAK", Some(&Dynamic::from_int(0)))
                .unwrap()
                .as_int()
                .unwrap(),
            5
        );
        assert!(
            p.get("RETIRE", Some(&false.into()))
                .unwrap()
                .as_bool()
                .unwrap()
        );
        assert_eq!(p.get("NAME", None).unwrap().to_string(), "x=y");
        assert_eq!(p.get("OTHER", Some(&"d".into())).unwrap().to_string(), "d");
        assert_eq!(p.unused(), Vec::<String>::new());
    }

    #[test]
    fn errors_name_the_parameter() {
        let p = params(&["SOURCE_CLUSTR=a", "SOAK=abc"]);
        let missing = p.get("SOURCE_CLUSTER", None).unwrap_err();
        assert_eq!(missing.message(), "missing parameter `SOURCE_CLUSTER`");
        assert!(
            matches!(missing, Error::MissingParameter { suggestion: Some(ref s), .. } if s == "SOURCE_CLUSTR")
        );
        let bad = p.get("SOAK", Some(&Dynamic::from_int(3))).unwrap_err();
        assert_eq!(
            bad.message(),
            "parameter `SOAK` is `abc`, expected an integer"
        );
    }

    #[test]
    fn set_arguments_need_a_name_and_equals() {
        assert!(matches!(
            Params::from_set_arguments(&["FOO".into()]),
            Err(Error::SetWithoutEquals { .. })
        ));
        assert!(matches!(
            Params::from_set_arguments(&["=x".into()]),
            Err(Error::SetWithoutName { .. })
        ));
    }
}
