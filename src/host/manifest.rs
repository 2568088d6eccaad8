//! Manifest functions: YAML in and out, selecting, stripping, paths, labels, templates, diffs.
//! Pure: nothing here touches a cluster.

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};
use serde_json::Value;

use crate::error::Error;
use crate::host::invalid;
use crate::manifest::{self, path::Segment};
use crate::session::convert::{Objects, from_dynamic, to_dynamic};
use crate::session::{caller_directory, raise};

/// Builds the `manifest` host module.
pub fn module() -> Module {
    exported_module!(manifest_functions)
}

/// Converts an argument to JSON, or raises an error naming the function.
pub fn json_argument(function: &str, value: &Dynamic) -> Result<Value, Box<EvalAltResult>> {
    from_dynamic(value).map_err(|message| invalid(function, message))
}

fn objects_to_array(objects: Vec<Value>) -> Array {
    objects.into_iter().map(to_dynamic).collect()
}

fn parse_path(function: &str, path: &str) -> Result<Vec<Segment>, Box<EvalAltResult>> {
    manifest::path::parse(path).map_err(|message| {
        raise(Error::Path {
            path: path.to_string(),
            message: format!("{message} (in `{function}`)"),
        })
    })
}

/// The value at a path inside a Rhai value, or `()`.
fn dynamic_get(value: &Dynamic, path: &[Segment]) -> Dynamic {
    let mut current = value.clone();
    for segment in path {
        current = match segment {
            Segment::Key(key) => match current.read_lock::<Map>() {
                Some(map) => map.get(key.as_str()).cloned().unwrap_or(Dynamic::UNIT),
                None => return Dynamic::UNIT,
            },
            Segment::Index(index) => {
                if let Some(objects) = current.read_lock::<Objects>() {
                    let found = manifest::path::resolve_index(*index, objects.len())
                        .and_then(|position| objects.get(position));
                    match found {
                        Some(item) => item,
                        None => return Dynamic::UNIT,
                    }
                } else {
                    match current.read_lock::<Array>() {
                        Some(items) => match manifest::path::resolve_index(*index, items.len()) {
                            Some(position) => items[position].clone(),
                            None => return Dynamic::UNIT,
                        },
                        None => return Dynamic::UNIT,
                    }
                }
            }
        };
    }
    current
}

/// Sets a value at a path inside a Rhai map, creating maps on the way.
fn dynamic_set(
    target: &mut Dynamic,
    path: &[Segment],
    new: Dynamic,
    shown: &str,
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        *target = new;
        return Ok(());
    };
    if target.is_unit() {
        *target = Map::new().into();
    }
    match first {
        Segment::Key(key) => {
            let Some(mut map) = target.write_lock::<Map>() else {
                return Err(format!(
                    "cannot set `{key}` in `{shown}`: its parent is a {}",
                    target.type_name()
                ));
            };
            let entry = map.entry(key.as_str().into()).or_insert(Dynamic::UNIT);
            dynamic_set(entry, rest, new, shown)
        }
        Segment::Index(index) => {
            let type_name = target.type_name();
            let Some(mut items) = target.write_lock::<Array>() else {
                return Err(format!(
                    "cannot index [{index}] in `{shown}`: its parent is a {type_name}"
                ));
            };
            let len = items.len();
            let position = manifest::path::resolve_index(*index, len).ok_or_else(|| {
                format!("index [{index}] in `{shown}` is out of range (length {len})")
            })?;
            dynamic_set(&mut items[position], rest, new, shown)
        }
    }
}

/// Sets or removes (`()`) one key of `metadata.<field>` of a map.
fn set_metadata_entry(
    object: &mut Map,
    field: &str,
    key: &str,
    value: Dynamic,
) -> Result<(), String> {
    if key.is_empty() {
        return Err(format!("{field} keys cannot be empty"));
    }
    let metadata = object
        .entry("metadata".into())
        .or_insert_with(|| Map::new().into());
    if metadata.is_unit() {
        *metadata = Map::new().into();
    }
    let Some(mut metadata) = metadata.write_lock::<Map>() else {
        return Err("`metadata` is not a map".into());
    };
    let entries = metadata
        .entry(field.into())
        .or_insert_with(|| Map::new().into());
    if entries.is_unit() {
        *entries = Map::new().into();
    }
    let Some(mut entries) = entries.write_lock::<Map>() else {
        return Err(format!("`metadata.{field}` is not a map"));
    };
    if value.is_unit() {
        entries.remove(key);
    } else if value.is_string() {
        entries.insert(key.into(), value);
    } else {
        // Kubernetes label and annotation values are strings; say so rather than coerce quietly.
        return Err(format!(
            "the value of {field} `{key}` must be a string or () to remove it, found a {}",
            value.type_name()
        ));
    }
    Ok(())
}

/// Applies `set_metadata_entry` to a map or to every map in an array.
fn set_metadata_entries(
    target: &mut Dynamic,
    field: &str,
    entries: &Map,
    function: &str,
) -> Result<(), Box<EvalAltResult>> {
    let apply = |object: &mut Map| {
        for (key, value) in entries {
            set_metadata_entry(object, field, key, value.clone())
                .map_err(|m| invalid(function, m))?;
        }
        Ok::<(), Box<EvalAltResult>>(())
    };
    if let Some(mut object) = target.write_lock::<Map>() {
        return apply(&mut object);
    }
    let apply_to_item = |item: &mut Dynamic| {
        let Some(mut object) = item.write_lock::<Map>() else {
            return Err(invalid(
                function,
                "every item of the array must be an object (a map)",
            ));
        };
        apply(&mut object)
    };
    if let Some(mut items) = target.write_lock::<Array>() {
        return items.iter_mut().try_for_each(apply_to_item);
    }
    if let Some(mut objects) = target.write_lock::<Objects>() {
        return objects.update_each(apply_to_item);
    }
    Err(invalid(
        function,
        format!(
            "expected an object or an array of objects, found a {}",
            target.type_name()
        ),
    ))
}

#[export_module]
pub mod manifest_functions {
    /// Reads a YAML (multi-document) or JSON manifest file into a list of objects. `List`
    /// kinds are flattened. Every document must have `apiVersion` and `kind`. Relative paths are
    /// relative to the calling script's directory. Files over 32 MiB are refused.
    ///
    /// The list (`type_of` says `Objects`) keeps each object as compact text until the script
    /// reads it, so thousands of objects take about the file's size in memory. It works as an
    /// array of maps does: `len`, `objects[i]` (a map; assigning to it or to its fields
    /// writes back), `for`, `filter`, `map`, `+`, `+=`, every other array function, and every
    /// function that takes an array of objects (`apply`, `select`, `set_namespace`, `label`,
    /// `to_yaml`, …). `to_array()` gives a plain array of maps.
    ///
    /// # Example
    /// ```rhai,no_run
    /// let objects = load("bookinfo.yaml");
    /// info(`${objects.len()} objects, the first a ${objects[0].kind}`);
    /// for service in objects.filter(|o| o.kind == "Service") { info(service.metadata.name); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn load(context: NativeCallContext, path: &str) -> Result<Objects, Box<EvalAltResult>> {
        let resolved = caller_directory(&context).join(path);
        let mut objects = Objects::default();
        manifest::load_each(&resolved, |object| objects.push_json(object)).map_err(raise)?;
        Ok(objects)
    }

    /// Renders a map as pretty-printed JSON (replaces Rhai's compact built-in for maps).
    ///
    /// # Example
    /// ```rhai
    /// let m = #{b: 1};
    /// if m.to_json() != "{\n  \"b\": 1\n}" { throw m.to_json(); }
    /// ```
    #[rhai_fn(name = "to_json", return_raw)]
    pub fn map_to_json(map: &mut Map) -> Result<String, Box<EvalAltResult>> {
        to_json(Dynamic::from_map(map.clone()))
    }

    /// Parses Kubernetes objects from YAML or JSON text (like `load`, without the file).
    ///
    /// # Example
    /// ```rhai
    /// let objects = parse_manifests("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\n");
    /// if objects[0].metadata.name != "bookinfo" { throw "unexpected"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parse_manifests(text: &str) -> Result<Array, Box<EvalAltResult>> {
        manifest::parse_objects("<text>", text)
            .map(objects_to_array)
            .map_err(raise)
    }

    /// Parses one YAML (or JSON) document into a value of any shape. Fails on several documents.
    ///
    /// # Example
    /// ```rhai
    /// let mesh = parse_yaml("accessLogFile: /dev/stdout\ndefaultConfig:\n  holdApplicationUntilProxyStarts: true\n");
    /// if !mesh.defaultConfig.holdApplicationUntilProxyStarts { throw "unexpected"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parse_yaml(text: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let mut documents = manifest::yaml::parse_documents("<text>", text).map_err(raise)?;
        match documents.len() {
            0 => Ok(Dynamic::UNIT),
            1 => Ok(to_dynamic(documents.remove(0).value)),
            n => Err(invalid(
                "parse_yaml",
                format!("the text has {n} documents; use `parse_yaml_all` for several"),
            )),
        }
    }

    /// Parses every YAML document of a text into an array of values (empty documents skipped).
    ///
    /// # Example
    /// ```rhai
    /// let docs = parse_yaml_all("a: 1\n---\nb: 2\n");
    /// if docs.len() != 2 { throw "unexpected"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parse_yaml_all(text: &str) -> Result<Array, Box<EvalAltResult>> {
        manifest::yaml::parse_documents("<text>", text)
            .map(|docs| docs.into_iter().map(|d| to_dynamic(d.value)).collect())
            .map_err(raise)
    }

    /// Renders a value as YAML; an array of objects becomes a multi-document stream.
    ///
    /// # Example
    /// ```rhai
    /// let text = to_yaml(#{apiVersion: "v1", kind: "Namespace", metadata: #{name: "bookinfo"}});
    /// if !text.contains("name: bookinfo") { throw text; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn to_yaml(value: Dynamic) -> Result<String, Box<EvalAltResult>> {
        let json = json_argument("to_yaml", &value)?;
        Ok(match json {
            Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
                manifest::yaml::to_yaml_stream(&items)
            }
            other => manifest::yaml::to_yaml(&other),
        })
    }

    /// Renders a value as pretty-printed JSON.
    ///
    /// # Example
    /// ```rhai
    /// if to_json(#{a: [1, 2]}) != "{\n  \"a\": [\n    1,\n    2\n  ]\n}" { throw "unexpected"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn to_json(value: Dynamic) -> Result<String, Box<EvalAltResult>> {
        let json = json_argument("to_json", &value)?;
        serde_json::to_string_pretty(&json).map_err(|e| invalid("to_json", e.to_string()))
    }

    /// Picks objects by `kind` (a name or array of names, any case), `apiVersion`, `group`,
    /// `name` (`*` wildcards), `namespace` (one or several) and `labels` (a selector such as
    /// `"app=reviews,version in (v1,v2)"` or a map of required labels).
    ///
    /// # Example
    /// ```rhai
    /// let objects = parse_manifests("apiVersion: v1\nkind: Service\nmetadata: {name: reviews, labels: {app: reviews}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: reviews-v1, labels: {app: reviews}}\n");
    /// let services = select(objects, #{kind: "Service", labels: "app=reviews"});
    /// if services.len() != 1 { throw "unexpected"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn select(objects: Array, filter: Map) -> Result<Array, Box<EvalAltResult>> {
        let filter = select_filter(&filter)?;
        let mut selected = Array::new();
        for object in objects {
            let identity = identity_of(&object);
            if filter.matches(&identity) {
                selected.push(object);
            }
        }
        Ok(selected)
    }

    /// Returns a copy without what the API server owns: `status`, `uid`, `resourceVersion`,
    /// `generation`, `creationTimestamp`, `managedFields`, owner references, the last-applied
    /// annotation, a Service's cluster IPs and node ports, and so on. Works on one object or an
    /// array of objects.
    ///
    /// # Example
    /// ```rhai
    /// let live = #{apiVersion: "v1", kind: "ConfigMap", metadata: #{name: "a", uid: "123", resourceVersion: "9"}, status: #{}};
    /// let clean = strip(live);
    /// if clean.metadata.uid != () || clean.status != () { throw "not stripped"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn strip(value: Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
        let json = json_argument("strip", &value)?;
        Ok(to_dynamic(match json {
            Value::Array(items) => {
                Value::Array(items.into_iter().map(manifest::strip::strip).collect())
            }
            object => manifest::strip::strip(object),
        }))
    }

    /// Prints a map the way Rhai does, but with Secret values masked (so `print(secret)` and
    /// `${secret}` never show them).
    ///
    /// # Example
    /// ```rhai
    /// let secret = #{kind: "Secret", data: #{token: "c2VjcmV0"}};
    /// if `${secret}`.contains("c2VjcmV0") { throw "leaked"; }
    /// ```
    #[rhai_fn(name = "to_string", name = "to_debug", name = "print", name = "debug")]
    pub fn map_to_string(map: &mut Map) -> String {
        masked_for_printing(Dynamic::from_map(map.clone())).to_string()
    }

    /// Prints an array the way Rhai does, with Secret values masked.
    ///
    /// # Example
    /// ```rhai
    /// let objects = [#{kind: "Secret", data: #{token: "c2VjcmV0"}}];
    /// if `${objects}`.contains("c2VjcmV0") { throw "leaked"; }
    /// ```
    #[rhai_fn(name = "to_string", name = "to_debug", name = "print", name = "debug")]
    pub fn array_to_string(array: &mut Array) -> String {
        masked_for_printing(Dynamic::from_array(array.clone())).to_string()
    }

    /// Masks the values of Secrets (in `data` and `stringData`, and the last-applied
    /// annotation that repeats them) wherever they are nested, and every secret value the run
    /// has learnt (secret parameters, values of Secrets read), for printing.
    ///
    /// # Example
    /// ```rhai
    /// let secret = #{apiVersion: "v1", kind: "Secret", metadata: #{name: "s"}, data: #{token: "c2VjcmV0"}};
    /// if redact(secret).data.token != "***" { throw "not masked"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn redact(value: Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
        let json = json_argument("redact", &value)?;
        Ok(to_dynamic(crate::redact::value(&json)))
    }

    /// The value at a path such as `spec.ports[0].port` or `metadata.labels["istio.io/rev"]`,
    /// or `()` when any step is missing. Negative indexes count from the end.
    ///
    /// # Example
    /// ```rhai
    /// let service = #{spec: #{ports: [#{name: "http2", port: 80}]}};
    /// if get_path(service, "spec.ports[0].port") != 80 { throw "unexpected"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn get_path(value: Dynamic, path: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let segments = parse_path("get_path", path)?;
        Ok(dynamic_get(&value, &segments))
    }

    /// Sets the value at a path, creating missing maps on the way (indexes must exist). The
    /// object is changed in place.
    ///
    /// # Example
    /// ```rhai
    /// let ns = #{apiVersion: "v1", kind: "Namespace", metadata: #{name: "bookinfo"}};
    /// set_path(ns, "metadata.labels[\"istio.io/rev\"]", "asm-1-25");
    /// if ns.metadata.labels["istio.io/rev"] != "asm-1-25" { throw "unexpected"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn set_path(
        object: &mut Map,
        path: &str,
        value: Dynamic,
    ) -> Result<(), Box<EvalAltResult>> {
        let segments = parse_path("set_path", path)?;
        let mut target: Dynamic = std::mem::take(object).into();
        let result = dynamic_set(&mut target, &segments, value, path);
        *object = target.try_cast::<Map>().unwrap_or_default();
        result.map_err(|message| {
            raise(Error::Path {
                path: path.to_string(),
                message,
            })
        })
    }

    /// Puts every object of an array into a namespace, in place (Namespaces and other objects
    /// that can only be cluster-scoped are left alone; the server ignores namespaces on the
    /// rest). Rhai's `for` loops iterate over copies, so use this rather than a loop.
    ///
    /// # Example
    /// ```rhai
    /// let objects = parse_manifests("apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bookinfo}\n");
    /// set_namespace(objects, "bookinfo");
    /// if objects[0].metadata.namespace != "bookinfo" || objects[1].metadata.namespace != () { throw objects; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn set_namespace(objects: &mut Array, namespace: &str) -> Result<(), Box<EvalAltResult>> {
        objects
            .iter_mut()
            .try_for_each(|object| set_cluster_namespace(object, namespace))
    }

    /// Sets (or with `()` removes) a label on an object, or on every object of an array, in place.
    ///
    /// # Example
    /// ```rhai
    /// let ns = #{apiVersion: "v1", kind: "Namespace", metadata: #{name: "bookinfo", labels: #{"istio-injection": "enabled"}}};
    /// label(ns, "istio-injection", ());
    /// label(ns, "istio.io/rev", "asm-1-25");
    /// if ns.metadata.labels.len() != 1 { throw "unexpected"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn label(
        target: &mut Dynamic,
        key: &str,
        value: Dynamic,
    ) -> Result<(), Box<EvalAltResult>> {
        let mut entries = Map::new();
        entries.insert(key.into(), value);
        set_metadata_entries(target, "labels", &entries, "label")
    }

    /// Sets several labels at once from a map (`()` values remove).
    ///
    /// # Example
    /// ```rhai
    /// let pod = #{metadata: #{name: "p"}};
    /// label(pod, #{app: "reviews", version: "v1"});
    /// if pod.metadata.labels.app != "reviews" { throw "unexpected"; }
    /// ```
    #[rhai_fn(name = "label", return_raw)]
    pub fn label_map(target: &mut Dynamic, labels: Map) -> Result<(), Box<EvalAltResult>> {
        set_metadata_entries(target, "labels", &labels, "label")
    }

    /// Sets (or with `()` removes) an annotation on an object, or every object of an array.
    ///
    /// # Example
    /// ```rhai
    /// let pod = #{metadata: #{name: "p"}};
    /// annotate(pod, "sidecar.istio.io/inject", "true");
    /// if pod.metadata.annotations["sidecar.istio.io/inject"] != "true" { throw "unexpected"; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn annotate(
        target: &mut Dynamic,
        key: &str,
        value: Dynamic,
    ) -> Result<(), Box<EvalAltResult>> {
        let mut entries = Map::new();
        entries.insert(key.into(), value);
        set_metadata_entries(target, "annotations", &entries, "annotate")
    }

    /// Sets several annotations at once from a map (`()` values remove).
    ///
    /// # Example
    /// ```rhai
    /// let pod = #{metadata: #{name: "p"}};
    /// annotate(pod, #{team: "mesh"});
    /// if pod.metadata.annotations.team != "mesh" { throw "unexpected"; }
    /// ```
    #[rhai_fn(name = "annotate", return_raw)]
    pub fn annotate_map(target: &mut Dynamic, annotations: Map) -> Result<(), Box<EvalAltResult>> {
        set_metadata_entries(target, "annotations", &annotations, "annotate")
    }

    /// Replaces `${NAME}` in a text with values from a map (dotted names reach into nested
    /// maps: `${target.ip}`); `$$` is a literal `$`. A missing variable is an error naming its
    /// line and column in the template.
    ///
    /// # Example
    /// ```rhai
    /// let text = template("host: ${HOST}\naddress: ${target.ip}", #{HOST: "v2.example.com", target: #{ip: "10.0.0.7"}});
    /// if text != "host: v2.example.com\naddress: 10.0.0.7" { throw text; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn template(text: &str, variables: Map) -> Result<String, Box<EvalAltResult>> {
        let variables: Dynamic = variables.into();
        let lookup = |name: &str| {
            let segments: Vec<Segment> = name
                .split('.')
                .map(|s| Segment::Key(s.to_string()))
                .collect();
            let value = dynamic_get(&variables, &segments);
            if value.is_unit() {
                None
            } else if value.is_map() || value.is_array() {
                from_dynamic(&value).ok().map(|json| json.to_string())
            } else {
                Some(value.to_string())
            }
        };
        manifest::template::render(text, lookup).map_err(|error| {
            raise(Error::Template {
                message: error.message,
                at: crate::snippet::Location::in_source(
                    "<template>",
                    text,
                    error.line,
                    error.column,
                ),
            })
        })
    }

    /// Renders a kubectl JSONPath template against a value, exactly as
    /// `kubectl get -o jsonpath=...` prints it: text outside `{}` verbatim, several matches
    /// joined by spaces, `{range …}{end}` loops, filters such as `?(@.name=="http2")`; a missing
    /// key prints nothing.
    ///
    /// # Example
    /// ```rhai
    /// let svc = #{status: #{loadBalancer: #{ingress: [#{ip: "20.1.2.3"}]}},
    ///             spec: #{ports: [#{name: "status-port", port: 15021}, #{name: "http2", port: 80}]}};
    /// let address = jsonpath(svc, "{.status.loadBalancer.ingress[0].ip}:{.spec.ports[?(@.name==\"http2\")].port}");
    /// if address != "20.1.2.3:80" { throw address; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn jsonpath(value: Dynamic, template: &str) -> Result<String, Box<EvalAltResult>> {
        let json = json_argument("jsonpath", &value)?;
        manifest::jsonpath::render(template, &json).map_err(|error| {
            raise(Error::Path {
                path: template.to_string(),
                message: error.to_string(),
            })
        })
    }

    /// The values a single JSONPath expression matches (data, not text).
    ///
    /// # Example
    /// ```rhai
    /// let pods = #{items: [#{metadata: #{name: "reviews-v1-a"}}, #{metadata: #{name: "reviews-v2-b"}}]};
    /// let names = jsonpath_values(pods, "{.items[*].metadata.name}");
    /// if names != ["reviews-v1-a", "reviews-v2-b"] { throw names; }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn jsonpath_values(value: Dynamic, expression: &str) -> Result<Array, Box<EvalAltResult>> {
        let json = json_argument("jsonpath_values", &value)?;
        manifest::jsonpath::query(expression, &json)
            .map(|values| values.into_iter().map(to_dynamic).collect())
            .map_err(|error| {
                raise(Error::Path {
                    path: expression.to_string(),
                    message: error.to_string(),
                })
            })
    }

    /// A unified diff between two objects (or arrays of objects) rendered as YAML; empty when
    /// they are equal. Secret values are masked.
    ///
    /// # Example
    /// ```rhai
    /// let a = #{kind: "ConfigMap", data: #{mode: "a"}};
    /// let b = #{kind: "ConfigMap", data: #{mode: "b"}};
    /// if !diff(a, b).contains("+  mode: b") { throw diff(a, b); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn diff(before: Dynamic, after: Dynamic) -> Result<String, Box<EvalAltResult>> {
        let before = json_argument("diff", &before)?;
        let after = json_argument("diff", &after)?;
        Ok(manifest::diff::diff(&before, &after, "before", "after"))
    }
}

/// The filter of `select`, checked.
pub(crate) fn select_filter(filter: &Map) -> Result<manifest::select::Filter, Box<EvalAltResult>> {
    let filter_json =
        crate::session::convert::map_to_json(filter).map_err(|m| invalid("select", m))?;
    manifest::select::Filter::from_json(&filter_json).map_err(|m| invalid("select", m))
}

/// Puts one object into a namespace unless its kind is always cluster-scoped (`set_namespace`).
pub(crate) fn set_cluster_namespace(
    object: &mut Dynamic,
    namespace: &str,
) -> Result<(), Box<EvalAltResult>> {
    let Some(mut map) = object.write_lock::<Map>() else {
        return Err(invalid(
            "set_namespace",
            "every item must be an object (a map)",
        ));
    };
    let kind = map.get("kind").map(|k| k.to_string()).unwrap_or_default();
    if CLUSTER_SCOPED_KINDS.contains(&kind.as_str()) {
        return Ok(());
    }
    let metadata = map
        .entry("metadata".into())
        .or_insert_with(|| Map::new().into());
    if metadata.is_unit() {
        *metadata = Map::new().into();
    }
    if let Some(mut metadata) = metadata.write_lock::<Map>() {
        metadata.insert("namespace".into(), namespace.into());
    }
    Ok(())
}

/// Kinds that are always cluster-scoped (what `set_namespace` leaves alone).
pub const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "APIService",
    "IngressClass",
    "GatewayClass",
];

/// A copy of a value with every Secret's `data`/`stringData` values and its last-applied
/// annotation (which repeats them) replaced by `***`.
pub fn masked_for_printing(value: Dynamic) -> Dynamic {
    if let Some(map) = value.read_lock::<Map>() {
        let is_secret = map
            .get("kind")
            .is_some_and(|k| k.is_string() && k.to_string() == "Secret");
        let mut copy = Map::new();
        for (key, item) in map.iter() {
            let masked = if is_secret && (key == "data" || key == "stringData") {
                match item.read_lock::<Map>() {
                    Some(entries) => Dynamic::from_map(
                        entries
                            .keys()
                            .map(|k| (k.clone(), Dynamic::from("***")))
                            .collect(),
                    ),
                    None => item.clone(),
                }
            } else if is_secret && key == "metadata" {
                mask_last_applied(masked_for_printing(item.clone()))
            } else {
                masked_for_printing(item.clone())
            };
            copy.insert(key.clone(), masked);
        }
        return copy.into();
    }
    if let Some(items) = value.read_lock::<Array>() {
        return items
            .iter()
            .cloned()
            .map(masked_for_printing)
            .collect::<Array>()
            .into();
    }
    if let Some(objects) = value.read_lock::<Objects>() {
        return objects
            .iter()
            .map(masked_for_printing)
            .collect::<Array>()
            .into();
    }
    value
}

/// A Secret's metadata with its `kubectl.kubernetes.io/last-applied-configuration` masked.
fn mask_last_applied(metadata: Dynamic) -> Dynamic {
    let Some(mut fields) = metadata.read_lock::<Map>().map(|m| m.clone()) else {
        return metadata;
    };
    if let Some(annotations) = fields.get_mut("annotations")
        && let Some(mut entries) = annotations.read_lock::<Map>().map(|m| m.clone())
        && let Some(applied) = entries.get_mut(crate::redact::LAST_APPLIED)
    {
        *applied = Dynamic::from(crate::redact::MASK);
        *annotations = entries.into();
    }
    fields.into()
}

/// The identity fields of a Rhai object, read without converting the whole object.
pub fn identity_of(object: &Dynamic) -> manifest::select::Identity {
    let text = |path: &[&str]| {
        let segments: Vec<Segment> = path.iter().map(|s| Segment::Key(s.to_string())).collect();
        let value = dynamic_get(object, &segments);
        if value.is_string() {
            Some(value.to_string())
        } else {
            None
        }
    };
    let labels = dynamic_get(
        object,
        &[
            Segment::Key("metadata".into()),
            Segment::Key("labels".into()),
        ],
    );
    let labels = labels
        .read_lock::<Map>()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    manifest::select::Identity {
        api_version: text(&["apiVersion"]).unwrap_or_default(),
        kind: text(&["kind"]).unwrap_or_default(),
        name: text(&["metadata", "name"]).unwrap_or_default(),
        namespace: text(&["metadata", "namespace"]),
        labels,
    }
}
