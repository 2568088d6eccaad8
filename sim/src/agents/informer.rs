//! A cache of a cluster's objects kept current by list and watch (kube-rs watchers), as
//! controllers keep theirs, with one change counter that wakes the agents.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A kind the cache follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kind {
    /// API group (empty for core).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
}

impl Kind {
    /// The kube-rs description of this kind.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }
}

/// Namespaces.
pub const NAMESPACES: Kind = Kind {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
};
/// Pods.
pub const PODS: Kind = Kind {
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
};
/// Services.
pub const SERVICES: Kind = Kind {
    group: "",
    version: "v1",
    kind: "Service",
    plural: "services",
};
/// Deployments.
pub const DEPLOYMENTS: Kind = Kind {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
};
/// ReplicaSets.
pub const REPLICA_SETS: Kind = Kind {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
    plural: "replicasets",
};
/// StatefulSets.
pub const STATEFUL_SETS: Kind = Kind {
    group: "apps",
    version: "v1",
    kind: "StatefulSet",
    plural: "statefulsets",
};
/// DaemonSets.
pub const DAEMON_SETS: Kind = Kind {
    group: "apps",
    version: "v1",
    kind: "DaemonSet",
    plural: "daemonsets",
};
/// Istio Gateways.
pub const GATEWAYS: Kind = Kind {
    group: "networking.istio.io",
    version: "v1",
    kind: "Gateway",
    plural: "gateways",
};
/// Istio VirtualServices.
pub const VIRTUAL_SERVICES: Kind = Kind {
    group: "networking.istio.io",
    version: "v1",
    kind: "VirtualService",
    plural: "virtualservices",
};
/// Istio DestinationRules.
pub const DESTINATION_RULES: Kind = Kind {
    group: "networking.istio.io",
    version: "v1",
    kind: "DestinationRule",
    plural: "destinationrules",
};
/// Istio ServiceEntries.
pub const SERVICE_ENTRIES: Kind = Kind {
    group: "networking.istio.io",
    version: "v1",
    kind: "ServiceEntry",
    plural: "serviceentries",
};

/// Every kind the agents follow.
pub const ALL_KINDS: &[Kind] = &[
    NAMESPACES,
    PODS,
    SERVICES,
    DEPLOYMENTS,
    REPLICA_SETS,
    STATEFUL_SETS,
    DAEMON_SETS,
    GATEWAYS,
    VIRTUAL_SERVICES,
    DESTINATION_RULES,
    SERVICE_ENTRIES,
];

type Objects = BTreeMap<(String, String), Arc<Value>>;

struct Store {
    objects: RwLock<Objects>,
    synced: AtomicBool,
}

/// The cached objects of one cluster.
pub struct Cache {
    stores: HashMap<Kind, Arc<Store>>,
    changes: watch::Sender<u64>,
}

fn key_of(value: &Value) -> (String, String) {
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (text("/metadata/namespace"), text("/metadata/name"))
}

fn to_value(object: &DynamicObject, kind: &Kind) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        let api_version = if kind.group.is_empty() {
            kind.version.to_string()
        } else {
            format!("{}/{}", kind.group, kind.version)
        };
        map.entry("apiVersion")
            .or_insert(Value::String(api_version));
        map.entry("kind")
            .or_insert(Value::String(kind.kind.to_string()));
    }
    value
}

impl Cache {
    /// Starts following `kinds` with `client` until `cancel`.
    pub fn start(client: &kube::Client, kinds: &[Kind], cancel: &CancellationToken) -> Arc<Cache> {
        let (changes, _) = watch::channel(0u64);
        let mut stores = HashMap::new();
        for kind in kinds {
            stores.insert(
                *kind,
                Arc::new(Store {
                    objects: RwLock::new(BTreeMap::new()),
                    synced: AtomicBool::new(false),
                }),
            );
        }
        let cache = Arc::new(Cache { stores, changes });
        for kind in kinds {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.api_resource());
            let cache = cache.clone();
            let kind = *kind;
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let Some(store) = cache.stores.get(&kind).cloned() else {
                    return;
                };
                let mut stream = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .boxed();
                let mut buffer: Objects = BTreeMap::new();
                loop {
                    let event = tokio::select! {
                        _ = cancel.cancelled() => return,
                        event = stream.next() => event,
                    };
                    let Some(event) = event else { return };
                    let Ok(event) = event else { continue };
                    let changed = match event {
                        watcher::Event::Init => {
                            buffer.clear();
                            false
                        }
                        watcher::Event::InitApply(object) => {
                            let value = to_value(&object, &kind);
                            buffer.insert(key_of(&value), Arc::new(value));
                            false
                        }
                        watcher::Event::InitDone => {
                            let mut objects =
                                store.objects.write().unwrap_or_else(|e| e.into_inner());
                            *objects = std::mem::take(&mut buffer);
                            store.synced.store(true, Ordering::SeqCst);
                            true
                        }
                        watcher::Event::Apply(object) => {
                            let value = to_value(&object, &kind);
                            let mut objects =
                                store.objects.write().unwrap_or_else(|e| e.into_inner());
                            objects.insert(key_of(&value), Arc::new(value));
                            true
                        }
                        watcher::Event::Delete(object) => {
                            let value = to_value(&object, &kind);
                            let mut objects =
                                store.objects.write().unwrap_or_else(|e| e.into_inner());
                            objects.remove(&key_of(&value));
                            true
                        }
                    };
                    if changed {
                        cache.changes.send_modify(|n| *n += 1);
                    }
                }
            });
        }
        cache
    }

    /// All cached objects of a kind.
    pub fn list(&self, kind: Kind) -> Vec<Arc<Value>> {
        self.stores
            .get(&kind)
            .map(|s| {
                s.objects
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One cached object.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let store = self.stores.get(&kind)?;
        let objects = store.objects.read().unwrap_or_else(|e| e.into_inner());
        objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Whether every kind has been listed once.
    pub fn is_synced(&self) -> bool {
        self.stores
            .values()
            .all(|s| s.synced.load(Ordering::SeqCst))
    }

    /// A receiver that sees a new value after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Waits until `condition` holds on the cache (checked after every change), at most
    /// `timeout`. Returns whether it held.
    pub async fn wait_until(&self, timeout: Duration, condition: impl Fn(&Cache) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut changes = self.subscribe();
        loop {
            if condition(self) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(left, changes.changed()).await;
        }
    }
}
