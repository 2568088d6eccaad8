//! Decoding the Kubernetes protobuf encoding for the kinds kubectl's typed generators send.
//!
//! `kubectl create namespace|configmap|secret|serviceaccount|service|deployment` post
//! protobuf rather than JSON. The envelope is `k8s\0` followed by a `runtime.Unknown`
//! message carrying the apiVersion, kind and the object's own message. This module turns
//! such bodies into JSON using field tables for those kinds; fields outside the tables are
//! skipped, and zero values are dropped as the JSON encoding's `omitempty` would.

use base64::Engine;
use serde_json::{Map, Value, json};

/// Prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Bool,
    Message(&'static str),
    StringMap,
    BytesMap,
    Strings,
    Messages(&'static str),
    IntOrString,
}

type Fields = &'static [(u64, &'static str, Kind)];

fn fields_of(message: &str) -> Fields {
    use Kind::*;
    match message {
        "ObjectMeta" => &[
            (1, "name", Text),
            (2, "generateName", Text),
            (3, "namespace", Text),
            (11, "labels", StringMap),
            (12, "annotations", StringMap),
            (13, "ownerReferences", Messages("OwnerReference")),
            (14, "finalizers", Strings),
        ],
        "OwnerReference" => &[
            (1, "kind", Text),
            (3, "name", Text),
            (4, "uid", Text),
            (5, "apiVersion", Text),
            (6, "controller", Bool),
            (7, "blockOwnerDeletion", Bool),
        ],
        "ConfigMap" => &[
            (1, "metadata", Message("ObjectMeta")),
            (2, "data", StringMap),
            (3, "binaryData", BytesMap),
            (4, "immutable", Bool),
        ],
        "Secret" => &[
            (1, "metadata", Message("ObjectMeta")),
            (2, "data", BytesMap),
            (3, "type", Text),
            (4, "stringData", StringMap),
            (5, "immutable", Bool),
        ],
        "Namespace" => &[
            (1, "metadata", Message("ObjectMeta")),
            (2, "spec", Message("NamespaceSpec")),
        ],
        "NamespaceSpec" => &[(1, "finalizers", Strings)],
        "ServiceAccount" => &[
            (1, "metadata", Message("ObjectMeta")),
            (2, "secrets", Messages("ObjectReference")),
            (3, "imagePullSecrets", Messages("LocalObjectReference")),
            (4, "automountServiceAccountToken", Bool),
        ],
        "ObjectReference" => &[
            (1, "kind", Text),
            (2, "namespace", Text),
            (3, "name", Text),
            (4, "uid", Text),
            (5, "apiVersion", Text),
        ],
        "LocalObjectReference" => &[(1, "name", Text)],
        "Service" => &[
            (1, "metadata", Message("ObjectMeta")),
            (2, "spec", Message("ServiceSpec")),
        ],
        "ServiceSpec" => &[
            (1, "ports", Messages("ServicePort")),
            (2, "selector", StringMap),
            (3, "clusterIP", Text),
            (4, "type", Text),
            (5, "externalIPs", Strings),
            (7, "sessionAffinity", Text),
            (10, "externalName", Text),
        ],
        "ServicePort" => &[
            (1, "name", Text),
            (2, "protocol", Text),
            (3, "port", Int),
            (4, "targetPort", IntOrString),
            (5, "nodePort", Int),
        ],
        "Deployment" => &[
            (1, "metadata", Message("ObjectMeta")),
            (2, "spec", Message("DeploymentSpec")),
        ],
        "DeploymentSpec" => &[
            (1, "replicas", Int),
            (2, "selector", Message("LabelSelector")),
            (3, "template", Message("PodTemplateSpec")),
            (5, "minReadySeconds", Int),
            (6, "revisionHistoryLimit", Int),
            (9, "progressDeadlineSeconds", Int),
        ],
        "LabelSelector" => &[
            (1, "matchLabels", StringMap),
            (2, "matchExpressions", Messages("LabelSelectorRequirement")),
        ],
        "LabelSelectorRequirement" => &[
            (1, "key", Text),
            (2, "operator", Text),
            (3, "values", Strings),
        ],
        "PodTemplateSpec" => &[
            (1, "metadata", Message("ObjectMeta")),
            (2, "spec", Message("PodSpec")),
        ],
        "PodSpec" => &[
            (2, "containers", Messages("Container")),
            (3, "restartPolicy", Text),
            (6, "dnsPolicy", Text),
            (7, "nodeSelector", StringMap),
            (8, "serviceAccountName", Text),
            (10, "nodeName", Text),
            (19, "schedulerName", Text),
            (20, "initContainers", Messages("Container")),
        ],
        "Container" => &[
            (1, "name", Text),
            (2, "image", Text),
            (3, "command", Strings),
            (4, "args", Strings),
            (5, "workingDir", Text),
            (6, "ports", Messages("ContainerPort")),
            (7, "env", Messages("EnvVar")),
            (14, "imagePullPolicy", Text),
        ],
        "ContainerPort" => &[
            (1, "name", Text),
            (3, "containerPort", Int),
            (4, "protocol", Text),
        ],
        "EnvVar" => &[(1, "name", Text), (2, "value", Text)],
        "IntOrString" => &[(1, "type", Int), (2, "intVal", Int), (3, "strVal", Text)],
        _ => &[],
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.position)
                .ok_or("truncated protobuf varint")?;
            self.position += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("protobuf varint too long".into())
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.position >= self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        let field = match wire {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.position += 8;
                Field::Varint(0)
            }
            2 => {
                let length = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                let end = self
                    .position
                    .checked_add(length)
                    .filter(|end| *end <= self.bytes.len())
                    .ok_or("truncated protobuf field")?;
                let slice = &self.bytes[self.position..end];
                self.position = end;
                Field::Bytes(slice)
            }
            5 => {
                self.position += 4;
                Field::Varint(0)
            }
            other => return Err(format!("unsupported protobuf wire type {other}")),
        };
        if self.position > self.bytes.len() {
            return Err("truncated protobuf field".into());
        }
        Ok(Some((number, field)))
    }
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8 in protobuf string".to_string())
}

fn map_entry(bytes: &[u8]) -> Result<(String, Vec<u8>), String> {
    let mut reader = Reader::new(bytes);
    let (mut key, mut value) = (String::new(), Vec::new());
    while let Some((number, field)) = reader.next()? {
        match (number, field) {
            (1, Field::Bytes(b)) => key = text(b)?,
            (2, Field::Bytes(b)) => value = b.to_vec(),
            _ => {}
        }
    }
    Ok((key, value))
}

fn decode_message(bytes: &[u8], message: &str) -> Result<Value, String> {
    let fields = fields_of(message);
    let mut object = Map::new();
    let mut reader = Reader::new(bytes);
    while let Some((number, field)) = reader.next()? {
        let Some((_, name, kind)) = fields.iter().find(|(n, _, _)| *n == number) else {
            continue;
        };
        let name = name.to_string();
        match (kind, field) {
            (Kind::Text, Field::Bytes(b)) if !b.is_empty() => {
                object.insert(name, json!(text(b)?));
            }
            (Kind::Int, Field::Varint(v)) => {
                object.insert(name, json!(v as i64));
            }
            (Kind::Bool, Field::Varint(v)) if v != 0 => {
                object.insert(name, json!(true));
            }
            (Kind::Message(inner), Field::Bytes(b)) => {
                let value = decode_message(b, inner)?;
                if value.as_object().is_some_and(|m| !m.is_empty()) {
                    object.insert(name, value);
                }
            }
            (Kind::StringMap | Kind::BytesMap, Field::Bytes(b)) => {
                let (key, value) = map_entry(b)?;
                let value = if matches!(kind, Kind::BytesMap) {
                    json!(base64::engine::general_purpose::STANDARD.encode(value))
                } else {
                    json!(text(&value)?)
                };
                let map = object.entry(name).or_insert_with(|| json!({}));
                if let Some(map) = map.as_object_mut() {
                    map.insert(key, value);
                }
            }
            (Kind::Strings, Field::Bytes(b)) => {
                let list = object.entry(name).or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    list.push(json!(text(b)?));
                }
            }
            (Kind::Messages(inner), Field::Bytes(b)) => {
                let value = decode_message(b, inner)?;
                let list = object.entry(name).or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    list.push(value);
                }
            }
            (Kind::IntOrString, Field::Bytes(b)) => {
                let inner = decode_message(b, "IntOrString")?;
                let value = if inner.get("type") == Some(&json!(1)) {
                    inner.get("strVal").cloned().unwrap_or(json!(""))
                } else {
                    inner.get("intVal").cloned().unwrap_or(json!(0))
                };
                object.insert(name, value);
            }
            _ => {}
        }
    }
    // Zero numbers are how Go writes unset non-pointer fields.
    object.retain(|_, v| v != &json!(0));
    Ok(Value::Object(object))
}

/// Decodes a protobuf request body into a JSON object with `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("the body does not start with the Kubernetes protobuf prefix")?;
    let mut reader = Reader::new(envelope);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((number, field)) = reader.next()? {
        match (number, field) {
            (1, Field::Bytes(type_meta)) => {
                let mut inner = Reader::new(type_meta);
                while let Some((n, f)) = inner.next()? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => api_version = text(b)?,
                        (2, Field::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let supported = matches!(
        (api_version.as_str(), kind.as_str()),
        (
            "v1",
            "ConfigMap" | "Secret" | "Namespace" | "ServiceAccount" | "Service"
        ) | ("apps/v1", "Deployment")
    );
    if !supported {
        return Err(format!(
            "protobuf bodies are only understood for Namespace, ConfigMap, Secret, ServiceAccount, Service and Deployment, not {kind} in {api_version}; send JSON or YAML"
        ));
    }
    let mut object = Map::new();
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    if let Value::Object(fields) = decode_message(raw, &kind)? {
        object.extend(fields);
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    // What `kubectl create configmap pb1 --from-literal=alpha=one` sends.
    const CONFIGMAP: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x23\x0a\x13\x0a\x03pb1\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x0c\x0a\x05alpha\x12\x03one\x1a\x00\x22\x00";

    // What `kubectl create service clusterip s1 --tcp=80:8080` sends.
    const SERVICE: &[u8] = b"k8s\x00\x0a\x0d\x0a\x02v1\x12\x07Service\x12\x66\x0a\x1d\x0a\x02s1\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x5a\x09\x0a\x03app\x12\x02s1\x12\x41\x0a\x1b\x0a\x0780-8080\x12\x03TCP\x18\x50\x22\x07\x08\x00\x10\x90\x3f\x1a\x00\x28\x00\x12\x09\x0a\x03app\x12\x02s1\x1a\x00\x22\x09ClusterIP\x3a\x00\x42\x00\x52\x00\x5a\x00\x60\x00\x68\x00\x1a\x02\x0a\x00\x1a\x00\x22\x00";

    #[test]
    fn kubectl_create_configmap_decodes() {
        let object = decode(CONFIGMAP).expect("decodes");
        assert_eq!(
            object,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pb1"}, "data": {"alpha": "one"}})
        );
    }

    #[test]
    fn kubectl_create_service_decodes_ports_and_selector() {
        let object = decode(SERVICE).expect("decodes");
        assert_eq!(object["metadata"]["labels"], json!({"app": "s1"}));
        assert_eq!(
            object["spec"],
            json!({"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                   "selector": {"app": "s1"}, "type": "ClusterIP"})
        );
    }

    #[test]
    fn truncated_and_unsupported_bodies_are_errors() {
        assert!(decode(&CONFIGMAP[..20]).is_err());
        assert!(decode(b"{}").is_err());
        let pod = b"k8s\x00\x0a\x09\x0a\x02v1\x12\x03Pod\x12\x00";
        assert!(decode(pod).expect_err("unsupported kind").contains("Pod"));
    }
}
