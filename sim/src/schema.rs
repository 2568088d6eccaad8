//! Field shapes: how each part of an object merges.
//!
//! Strategic merge patch and server-side apply both need to know, for every field, whether it
//! is a struct (named fields), a map (keys are data, like labels), a list merged by key (such
//! as containers by `name`), a set, or atomic (replaced as a whole). Built-in kinds get a
//! hand-written table of the fields that matter; custom resources derive their shape from
//! the CRD's OpenAPI schema (`x-kubernetes-list-type`, `x-kubernetes-map-type`, ...).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

/// The merge shape of one field.
#[derive(Clone, Debug)]
pub enum Shape {
    /// Named fields; fields not listed are [`Shape::Untyped`].
    Struct(Arc<StructShape>),
    /// A string-keyed map whose keys are data (labels, `data` of a ConfigMap).
    Map(Arc<Shape>),
    /// A list with merge semantics.
    List(Arc<ListShape>),
    /// Replaced as a whole: scalars, atomic structs and maps.
    Atomic,
    /// Structure not described: objects merge field by field, lists are atomic.
    Untyped,
}

/// The fields of a struct.
#[derive(Clone, Debug, Default)]
pub struct StructShape {
    /// Declared fields with their shapes.
    pub fields: HashMap<String, Shape>,
    /// Strategic merge patch `retainKeys`: keys not in the patch are dropped (union types).
    pub retain_keys: bool,
}

/// How list items are identified when merging.
#[derive(Clone, Debug, PartialEq)]
pub enum ListKind {
    /// The whole list is replaced.
    Atomic,
    /// Scalars merged as a set.
    Set,
    /// Objects merged by the values of these key fields.
    Map(Vec<String>),
}

/// A list field.
#[derive(Clone, Debug)]
pub struct ListShape {
    /// Identity of items.
    pub kind: ListKind,
    /// Shape of each item.
    pub item: Shape,
}

impl Shape {
    /// The shape of field `name` inside this one.
    pub fn field(&self, name: &str) -> Shape {
        match self {
            Shape::Struct(s) => s.fields.get(name).cloned().unwrap_or(Shape::Untyped),
            Shape::Map(element) => (**element).clone(),
            Shape::Untyped => Shape::Untyped,
            Shape::Atomic | Shape::List(_) => Shape::Atomic,
        }
    }

    /// The shape of the items of this list.
    pub fn item(&self) -> Shape {
        match self {
            Shape::List(list) => list.item.clone(),
            Shape::Untyped => Shape::Untyped,
            _ => Shape::Atomic,
        }
    }

    /// The list semantics, atomic unless declared otherwise.
    pub fn list_kind(&self) -> ListKind {
        match self {
            Shape::List(list) => list.kind.clone(),
            _ => ListKind::Atomic,
        }
    }

    /// The strategic merge patch merge key: the first list-map key.
    pub fn merge_key(&self) -> Option<String> {
        match self.list_kind() {
            ListKind::Map(keys) => keys.first().cloned(),
            _ => None,
        }
    }

    /// Whether this struct uses strategic merge patch `retainKeys`.
    pub fn retains_keys(&self) -> bool {
        matches!(self, Shape::Struct(s) if s.retain_keys)
    }

    /// Whether keys below this node are data keys rather than declared fields.
    pub fn is_map(&self) -> bool {
        matches!(self, Shape::Map(_))
    }

    /// Whether the node is replaced as a whole.
    pub fn is_atomic(&self) -> bool {
        matches!(self, Shape::Atomic)
    }
}

fn structure(fields: Vec<(&str, Shape)>) -> Shape {
    Shape::Struct(Arc::new(StructShape {
        fields: fields
            .into_iter()
            .map(|(name, shape)| (name.to_string(), shape))
            .collect(),
        retain_keys: false,
    }))
}

fn retaining(fields: Vec<(&str, Shape)>) -> Shape {
    match structure(fields) {
        Shape::Struct(s) => Shape::Struct(Arc::new(StructShape {
            fields: s.fields.clone(),
            retain_keys: true,
        })),
        other => other,
    }
}

fn map_of(element: Shape) -> Shape {
    Shape::Map(Arc::new(element))
}

fn string_map() -> Shape {
    map_of(Shape::Atomic)
}

fn keyed(keys: &[&str], item: Shape) -> Shape {
    Shape::List(Arc::new(ListShape {
        kind: ListKind::Map(keys.iter().map(|k| k.to_string()).collect()),
        item,
    }))
}

fn set() -> Shape {
    Shape::List(Arc::new(ListShape {
        kind: ListKind::Set,
        item: Shape::Atomic,
    }))
}

fn conditions() -> Shape {
    keyed(&["type"], Shape::Untyped)
}

/// `metadata` of every object.
pub fn object_meta() -> Shape {
    structure(vec![
        ("labels", string_map()),
        ("annotations", string_map()),
        ("finalizers", set()),
        ("ownerReferences", keyed(&["uid"], Shape::Untyped)),
        ("managedFields", Shape::Atomic),
    ])
}

fn container() -> Shape {
    structure(vec![
        (
            "ports",
            keyed(&["containerPort", "protocol"], Shape::Untyped),
        ),
        (
            "env",
            keyed(
                &["name"],
                structure(vec![(
                    "valueFrom",
                    structure(vec![
                        ("configMapKeyRef", Shape::Atomic),
                        ("secretKeyRef", Shape::Atomic),
                        ("fieldRef", Shape::Atomic),
                        ("resourceFieldRef", Shape::Atomic),
                    ]),
                )]),
            ),
        ),
        ("volumeMounts", keyed(&["mountPath"], Shape::Untyped)),
        ("volumeDevices", keyed(&["devicePath"], Shape::Untyped)),
        (
            "resources",
            structure(vec![
                ("limits", string_map()),
                ("requests", string_map()),
                ("claims", keyed(&["name"], Shape::Untyped)),
            ]),
        ),
    ])
}

fn pod_spec() -> Shape {
    structure(vec![
        ("containers", keyed(&["name"], container())),
        ("initContainers", keyed(&["name"], container())),
        ("ephemeralContainers", keyed(&["name"], container())),
        ("volumes", keyed(&["name"], retaining(vec![]))),
        ("imagePullSecrets", keyed(&["name"], Shape::Untyped)),
        ("hostAliases", keyed(&["ip"], Shape::Untyped)),
        (
            "topologySpreadConstraints",
            keyed(&["topologyKey", "whenUnsatisfiable"], Shape::Untyped),
        ),
        ("schedulingGates", keyed(&["name"], Shape::Untyped)),
        ("resourceClaims", keyed(&["name"], Shape::Untyped)),
        ("nodeSelector", string_map()),
        ("overhead", string_map()),
    ])
}

fn pod_template() -> Shape {
    structure(vec![("metadata", object_meta()), ("spec", pod_spec())])
}

fn workload(spec_extra: Vec<(&str, Shape)>) -> Shape {
    let mut spec = vec![("selector", Shape::Atomic), ("template", pod_template())];
    spec.extend(spec_extra);
    structure(vec![
        ("metadata", object_meta()),
        ("spec", structure(spec)),
        ("status", structure(vec![("conditions", conditions())])),
    ])
}

fn plain() -> Shape {
    structure(vec![("metadata", object_meta())])
}

fn builtin_shapes() -> HashMap<&'static str, Shape> {
    let mut shapes = HashMap::new();
    shapes.insert(
        "Pod",
        structure(vec![
            ("metadata", object_meta()),
            ("spec", pod_spec()),
            (
                "status",
                structure(vec![
                    ("conditions", conditions()),
                    ("podIPs", keyed(&["ip"], Shape::Untyped)),
                    ("hostIPs", keyed(&["ip"], Shape::Untyped)),
                ]),
            ),
        ]),
    );
    shapes.insert(
        "Service",
        structure(vec![
            ("metadata", object_meta()),
            (
                "spec",
                structure(vec![
                    ("ports", keyed(&["port", "protocol"], Shape::Untyped)),
                    ("selector", Shape::Atomic),
                ]),
            ),
            (
                "status",
                structure(vec![
                    ("conditions", conditions()),
                    ("loadBalancer", Shape::Untyped),
                ]),
            ),
        ]),
    );
    for kind in ["ConfigMap", "Secret"] {
        shapes.insert(
            kind,
            structure(vec![
                ("metadata", object_meta()),
                ("data", string_map()),
                ("binaryData", string_map()),
                ("stringData", string_map()),
            ]),
        );
    }
    shapes.insert(
        "ServiceAccount",
        structure(vec![
            ("metadata", object_meta()),
            ("secrets", keyed(&["name"], Shape::Untyped)),
        ]),
    );
    shapes.insert(
        "Namespace",
        structure(vec![
            ("metadata", object_meta()),
            ("status", structure(vec![("conditions", conditions())])),
        ]),
    );
    shapes.insert(
        "Node",
        structure(vec![
            ("metadata", object_meta()),
            ("spec", structure(vec![("podCIDRs", set())])),
            (
                "status",
                structure(vec![
                    ("conditions", conditions()),
                    ("addresses", keyed(&["type"], Shape::Untyped)),
                    ("capacity", string_map()),
                    ("allocatable", string_map()),
                ]),
            ),
        ]),
    );
    shapes.insert(
        "Deployment",
        workload(vec![(
            "strategy",
            retaining(vec![("rollingUpdate", Shape::Untyped)]),
        )]),
    );
    shapes.insert("ReplicaSet", workload(vec![]));
    shapes.insert(
        "StatefulSet",
        workload(vec![("volumeClaimTemplates", Shape::Atomic)]),
    );
    shapes.insert("DaemonSet", workload(vec![]));
    shapes.insert("Job", workload(vec![]));
    shapes.insert(
        "CustomResourceDefinition",
        structure(vec![
            ("metadata", object_meta()),
            ("status", structure(vec![("conditions", conditions())])),
        ]),
    );
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        shapes.insert(
            kind,
            structure(vec![
                ("metadata", object_meta()),
                ("webhooks", keyed(&["name"], Shape::Untyped)),
            ]),
        );
    }
    shapes
}

/// The shape of a built-in kind (a plain object with metadata when not in the table).
pub fn builtin(kind: &str) -> Shape {
    static SHAPES: OnceLock<HashMap<&'static str, Shape>> = OnceLock::new();
    SHAPES
        .get_or_init(builtin_shapes)
        .get(kind)
        .cloned()
        .unwrap_or_else(plain)
}

/// The shape described by a CRD version's `openAPIV3Schema`, with `metadata` as for every
/// object.
pub fn from_crd_schema(schema: Option<&Value>) -> Shape {
    let Some(schema) = schema else {
        return plain();
    };
    match from_openapi(schema) {
        Shape::Struct(s) => {
            let mut fields = s.fields.clone();
            fields.insert("metadata".into(), object_meta());
            Shape::Struct(Arc::new(StructShape {
                fields,
                retain_keys: false,
            }))
        }
        _ => plain(),
    }
}

fn from_openapi(schema: &Value) -> Shape {
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return Shape::Atomic;
    }
    let type_name = schema.get("type").and_then(Value::as_str).unwrap_or("");
    match type_name {
        "array" => {
            let item = schema
                .get("items")
                .map(from_openapi)
                .unwrap_or(Shape::Untyped);
            let kind = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => ListKind::Set,
                Some("map") => ListKind::Map(
                    schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|keys| {
                            keys.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => ListKind::Atomic,
            };
            if kind == ListKind::Atomic {
                return Shape::Atomic;
            }
            Shape::List(Arc::new(ListShape { kind, item }))
        }
        "object" | "" => {
            if schema.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic") {
                return Shape::Atomic;
            }
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                let fields = properties
                    .iter()
                    .map(|(name, sub)| (name.clone(), from_openapi(sub)))
                    .collect();
                return Shape::Struct(Arc::new(StructShape {
                    fields,
                    retain_keys: false,
                }));
            }
            match schema.get("additionalProperties") {
                Some(Value::Object(element)) => {
                    map_of(from_openapi(&Value::Object(element.clone())))
                }
                Some(Value::Bool(true)) => map_of(Shape::Untyped),
                _ if type_name.is_empty() => Shape::Atomic,
                _ => Shape::Untyped,
            }
        }
        _ => Shape::Atomic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_and_ports_by_port_and_protocol() {
        let deployment = builtin("Deployment");
        let containers = deployment
            .field("spec")
            .field("template")
            .field("spec")
            .field("containers");
        assert_eq!(containers.list_kind(), ListKind::Map(vec!["name".into()]));
        let ports = containers.item().field("ports");
        assert_eq!(ports.merge_key().as_deref(), Some("containerPort"));
        assert!(deployment.field("spec").field("selector").is_atomic());
    }

    #[test]
    fn crd_schema_list_types_become_shapes() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "hosts": {"type": "array", "items": {"type": "string"}},
                        "ports": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["number"],
                            "items": {"type": "object", "properties": {"number": {"type": "integer"}}}
                        },
                        "selector": {"type": "object", "additionalProperties": {"type": "string"}}
                    }
                }
            }
        });
        let shape = from_crd_schema(Some(&schema));
        let spec = shape.field("spec");
        assert!(spec.field("hosts").is_atomic());
        assert_eq!(spec.field("ports").merge_key().as_deref(), Some("number"));
        assert!(spec.field("selector").is_map());
        assert!(shape.field("metadata").field("labels").is_map());
    }
}
