//! Which cluster served each sampled answer: the values a sample extracted (pod names, or the
//! cluster names a shifted route's response header carries) matched against what each cluster
//! owns. Pure: the host function lists the pods and hands them in.

use std::collections::BTreeMap;

use serde::Serialize;

/// Answers per cluster label, the answers no cluster owns, and who owns each value.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Attribution {
    /// Answers per cluster label (every label given, 0 when it served nothing).
    #[serde(flatten)]
    pub by_cluster: BTreeMap<String, u64>,
    /// Answers whose value no cluster owns.
    pub unknown: u64,
    /// Each value seen, with the label of the cluster that owns it or `unknown`.
    pub pods: BTreeMap<String, String>,
}

/// Attributes `counts` (value -> answers) to the clusters in `owners` (label -> the values it
/// owns, such as its pod names). A value two clusters claim goes to the later label, as a pod
/// name can only be served by one of them at a time.
pub fn attribute(counts: &[(String, u64)], owners: &[(String, Vec<String>)]) -> Attribution {
    let mut owner_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut result = Attribution::default();
    for (label, values) in owners {
        result.by_cluster.insert(label.clone(), 0);
        for value in values {
            owner_of.insert(value, label);
        }
    }
    for (value, count) in counts {
        match owner_of.get(value.as_str()) {
            Some(label) => {
                *result.by_cluster.entry(label.to_string()).or_default() += count;
                result.pods.insert(value.clone(), label.to_string());
            }
            None => {
                result.unknown += count;
                result.pods.insert(value.clone(), "unknown".into());
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(label: &str, pods: &[&str]) -> (String, Vec<String>) {
        (label.into(), pods.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn answers_go_to_the_cluster_that_owns_their_pod() {
        let counts = [
            ("reviews-v1-a".to_string(), 70),
            ("reviews-v2-b".to_string(), 20),
            ("gone-pod".to_string(), 3),
        ];
        let result = attribute(
            &counts,
            &[
                owned("source", &["reviews-v1-a", "ratings-1"]),
                owned("target", &["reviews-v2-b"]),
                owned("spare", &[]),
            ],
        );
        assert_eq!(
            result.by_cluster,
            BTreeMap::from([
                ("source".to_string(), 70),
                ("spare".to_string(), 0),
                ("target".to_string(), 20)
            ])
        );
        assert_eq!(result.unknown, 3);
        assert_eq!(result.pods["gone-pod"], "unknown");
        assert_eq!(result.pods["reviews-v2-b"], "target");
    }

    #[test]
    fn scripts_see_one_key_per_cluster_beside_unknown_and_pods() {
        let result = attribute(&[("p".into(), 2)], &[owned("source", &["p"])]);
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            serde_json::json!({"source": 2, "unknown": 0, "pods": {"p": "source"}})
        );
    }
}
