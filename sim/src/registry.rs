//! The set of served resource types: built-ins plus whatever the stored CRDs define.

use std::sync::Arc;

use super::resource::{Origin, ResourceType, builtin_types};

/// Served resource types, looked up by path or by kind.
#[derive(Clone, Debug)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A registry with the built-in types only.
    pub fn new() -> Self {
        Registry {
            types: builtin_types().into_iter().map(Arc::new).collect(),
        }
    }

    /// All served types, built-ins first.
    pub fn types(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// The type served at `/apis/<group>/<version>/<plural>`.
    pub fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural && t.serves(version))
            .cloned()
    }

    /// The type of kind `kind` in `group`, any version.
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
            .cloned()
    }

    /// The type stored under `key` (see [`ResourceType::storage_key`]).
    pub fn by_storage_key(&self, key: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.storage_key() == key).cloned()
    }

    /// Whether any type is served in `group`/`version`.
    pub fn serves_group_version(&self, group: &str, version: &str) -> bool {
        self.types
            .iter()
            .any(|t| t.group == group && t.serves(version))
    }

    /// Groups with their versions, in discovery order (preferred version first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            let entry = match groups.iter_mut().position(|(g, _)| *g == t.group) {
                Some(i) => &mut groups[i].1,
                None => {
                    groups.push((t.group.clone(), Vec::new()));
                    let last = groups.len() - 1;
                    &mut groups[last].1
                }
            };
            for version in &t.versions {
                if !entry.contains(version) {
                    entry.push(version.clone());
                }
            }
        }
        for (_, versions) in &mut groups {
            sort_versions(versions);
        }
        groups
    }

    /// Types served in `group`/`version`.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.serves(version))
            .cloned()
            .collect()
    }

    /// Replaces the types defined by CRD `crd_name` (none removes them).
    pub fn set_crd_type(&mut self, crd_name: &str, resource: Option<ResourceType>) {
        let origin = Origin::Crd(crd_name.to_string());
        match resource {
            Some(resource) => {
                let resource = Arc::new(resource);
                match self.types.iter().position(|t| t.origin == origin) {
                    Some(i) => self.types[i] = resource,
                    None => self.types.push(resource),
                }
            }
            None => self.types.retain(|t| t.origin != origin),
        }
    }
}

/// Sorts Kubernetes versions by priority: GA over beta over alpha, higher numbers first.
pub fn sort_versions(versions: &mut [String]) {
    versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
}

/// Orders versions the way Kubernetes does (`v1` > `v1beta2` > `v1beta1` > `v1alpha1` >
/// non-Kubernetes-style names).
pub fn version_priority(version: &str) -> (u8, u64, u64) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    for (prefix, rank) in [("beta", 2u8), ("alpha", 1u8)] {
        if let Some(minor) = tail.strip_prefix(prefix)
            && let Ok(minor) = minor.parse::<u64>()
        {
            return (rank, major, minor);
        }
    }
    (0, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut versions: Vec<String> = ["v1alpha3", "v1", "v1beta1", "v2beta1", "foo"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sort_versions(&mut versions);
        assert_eq!(versions, ["v1", "v2beta1", "v1beta1", "v1alpha3", "foo"]);
    }

    #[test]
    fn lookups_by_path_and_kind() {
        let registry = Registry::new();
        assert!(registry.by_path("apps", "v1", "deployments").is_some());
        assert!(registry.by_path("apps", "v2", "deployments").is_none());
        assert_eq!(
            registry
                .by_kind("", "Pod")
                .map(|t| t.plural.clone())
                .as_deref(),
            Some("pods")
        );
        assert_eq!(registry.groups()[0].0, "");
    }
}
