//! "Did you mean" for every name lookup that can fail.

use std::path::Path;

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a, I>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let distance = if candidate.to_lowercase() == lower {
            0
        } else {
            strsim::levenshtein(&lower, &candidate.to_lowercase())
        };
        // Short names tolerate one edit, longer ones a few more.
        let allowed = match name.chars().count() {
            0..=3 => 1,
            4..=7 => 2,
            _ => 3,
        };
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate.to_string())
}

/// A file next to `path` with a similar name, for "did you mean".
pub fn similar_file(path: &Path) -> Option<String> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name()?.to_str()?;
    let entries: Vec<String> = std::fs::read_dir(parent)
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    let found = did_you_mean(name, entries.iter().map(String::as_str))?;
    Some(crate::files::display_path(&parent.join(found)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_close_names_only() {
        let names = ["load", "label", "select", "SOURCE_CLUSTER"];
        assert_eq!(did_you_mean("lod", names), Some("load".into()));
        assert_eq!(
            did_you_mean("SOURCE_CLUSTR", names),
            Some("SOURCE_CLUSTER".into())
        );
        assert_eq!(
            did_you_mean("source_cluster", names),
            Some("SOURCE_CLUSTER".into())
        );
        assert_eq!(did_you_mean("zzz", names), None);
        assert_eq!(did_you_mean("load", names), None);
    }
}
