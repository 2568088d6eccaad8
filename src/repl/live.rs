//! Names from the clusters for completion (kinds, namespaces, object names, kubeconfig
//! contexts), cached for a short while. A lookup never blocks longer than a tenth of a second:
//! a fetch that takes longer goes on in the background and the cache answers meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cluster::read::ListQuery;
use crate::cluster::{Cluster, KubeconfigSource};
use crate::error::Result;
use crate::host::cluster::bound_clusters;
use crate::session::Session;

/// How long fetched names are used without asking again.
pub const FRESH_FOR: Duration = Duration::from_secs(10);
/// How long completion waits for a fetch before answering from the cache.
pub const WAIT_AT_MOST: Duration = Duration::from_millis(100);
/// A fetch that takes longer than this is given up.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// The kubeconfig's contexts.
    Contexts,
    /// Kinds served by the cluster bound to a context.
    Kinds(String),
    Namespaces(String),
    /// Names of objects of a kind (in one namespace, or all).
    Names {
        context: String,
        kind: String,
        namespace: Option<String>,
    },
}

#[derive(Default)]
struct Slot {
    names: Arc<Vec<String>>,
    fetched: Option<Instant>,
    pending: bool,
}

#[derive(Default)]
struct Cache {
    slots: Mutex<HashMap<Key, Slot>>,
    changed: Condvar,
}

/// The live-name cache of a REPL session.
#[derive(Clone)]
pub struct LiveNames {
    session: Arc<Session>,
    cache: Arc<Cache>,
}

impl LiveNames {
    pub fn new(session: Arc<Session>) -> LiveNames {
        LiveNames {
            session,
            cache: Arc::default(),
        }
    }

    /// The session whose clusters are asked.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The names for `key`: from the cache when fresh; otherwise fetched, waiting at most a
    /// tenth of a second before answering with what the cache has (possibly nothing).
    pub fn names(&self, key: &Key) -> Vec<String> {
        let deadline = Instant::now() + WAIT_AT_MOST;
        let mut slots = self.lock();
        if !self.start_fetch_if_stale(&mut slots, key) {
            return names_in(&slots, key);
        }
        while slots.get(key).is_some_and(|s| s.pending) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            slots = self
                .cache
                .changed
                .wait_timeout(slots, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        names_in(&slots, key)
    }

    /// Starts fetching `key` in the background if the cache has nothing fresh.
    pub fn prefetch(&self, key: &Key) {
        let mut slots = self.lock();
        self.start_fetch_if_stale(&mut slots, key);
    }

    /// Prefetches kinds and namespaces of every bound cluster (after each input).
    pub fn prefetch_bound_clusters(&self) {
        for (context, _) in bound_clusters(&self.session) {
            self.prefetch(&Key::Kinds(context.clone()));
            self.prefetch(&Key::Namespaces(context));
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Slot>> {
        self.cache.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when the slot is stale and a fetch is (now or already) under way.
    fn start_fetch_if_stale(&self, slots: &mut HashMap<Key, Slot>, key: &Key) -> bool {
        let slot = slots.entry(key.clone()).or_default();
        if slot.fetched.is_some_and(|at| at.elapsed() < FRESH_FOR) {
            return false;
        }
        if !slot.pending {
            slot.pending = true;
            self.spawn_fetch(key.clone());
        }
        true
    }

    fn spawn_fetch(&self, key: Key) {
        let cache = self.cache.clone();
        let source = KubeconfigSource {
            path: self.session.settings.kubeconfig.clone(),
        };
        let cluster = key_context(&key).and_then(|context| {
            bound_clusters(&self.session)
                .into_iter()
                .find(|(name, _)| name == context)
                .map(|(_, cluster)| cluster)
        });
        self.session.runtime().spawn(async move {
            let fetched = tokio::time::timeout(FETCH_TIMEOUT, fetch(&key, cluster, source)).await;
            let mut slots = cache.slots.lock().unwrap_or_else(|e| e.into_inner());
            let slot = slots.entry(key).or_default();
            if let Ok(Ok(mut names)) = fetched {
                names.sort();
                names.dedup();
                slot.names = Arc::new(names);
            }
            // A failed fetch is not retried until the names would have gone stale.
            slot.fetched = Some(Instant::now());
            slot.pending = false;
            cache.changed.notify_all();
        });
    }
}

fn names_in(slots: &HashMap<Key, Slot>, key: &Key) -> Vec<String> {
    slots.get(key).map(|s| s.names.to_vec()).unwrap_or_default()
}

fn key_context(key: &Key) -> Option<&str> {
    match key {
        Key::Contexts => None,
        Key::Kinds(context) | Key::Namespaces(context) => Some(context),
        Key::Names { context, .. } => Some(context),
    }
}

async fn fetch(
    key: &Key,
    cluster: Option<Cluster>,
    source: KubeconfigSource,
) -> Result<Vec<String>> {
    if let Key::Contexts = key {
        return tokio::task::spawn_blocking(move || source.contexts())
            .await
            .map_err(|e| crate::error::Error::Other {
                message: e.to_string(),
            })?
            .map(|(names, _)| names);
    }
    // The handle went away (or was never bound): nothing to ask.
    let Some(cluster) = cluster else {
        return Ok(Vec::new());
    };
    match key {
        Key::Contexts | Key::Namespaces(_) => object_names(&cluster, "Namespace", None).await,
        Key::Kinds(_) => Ok(cluster.discovery().await?.names()),
        Key::Names {
            kind, namespace, ..
        } => object_names(&cluster, kind, namespace.clone()).await,
    }
}

async fn object_names(
    cluster: &Cluster,
    kind: &str,
    namespace: Option<String>,
) -> Result<Vec<String>> {
    let query = ListQuery {
        namespace,
        ..ListQuery::default()
    };
    let objects = cluster.list(kind, &query).await?;
    Ok(objects
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Output;
    use crate::session::{Params, Settings};

    fn live(kubeconfig: &std::path::Path, runtime: &tokio::runtime::Runtime) -> LiveNames {
        let session = Session::new(
            runtime.handle().clone(),
            Settings {
                kubeconfig: Some(kubeconfig.to_path_buf()),
                ..Settings::default()
            },
            Params::isolated(Default::default()),
            Arc::new(Output::buffer()),
        );
        LiveNames::new(session)
    }

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: a, context: {cluster: c, user: u}}, {name: b, context: {cluster: c, user: u}}]\n";

    #[test]
    fn contexts_come_from_the_kubeconfig_and_are_then_answered_from_the_cache() {
        let runtime = crate::bootstrap::runtime().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, KUBECONFIG).unwrap();
        let live = live(&path, &runtime);
        // The first lookup may time out on a loaded machine; the fetch finishes meanwhile.
        let deadline = Instant::now() + Duration::from_secs(10);
        while live.names(&Key::Contexts).is_empty() {
            assert!(Instant::now() < deadline, "contexts never arrived");
        }
        let started = Instant::now();
        for _ in 0..1000 {
            assert_eq!(live.names(&Key::Contexts), vec!["a", "b"]);
        }
        let each = started.elapsed() / 1000;
        eprintln!("cached live-name lookup: {each:?}");
        assert!(
            each < Duration::from_millis(20),
            "{each:?} per cached lookup"
        );
    }

    #[test]
    fn names_of_an_unbound_cluster_are_empty_without_waiting_long() {
        let runtime = crate::bootstrap::runtime().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, KUBECONFIG).unwrap();
        let live = live(&path, &runtime);
        let started = Instant::now();
        assert!(live.names(&Key::Namespaces("a".into())).is_empty());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
