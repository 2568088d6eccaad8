//! The fleet file: which pairs move, in which waves, with which runbook. Read strictly (an
//! unknown or mistyped field is an error naming file:line:col), bounded like manifests, and
//! checked as a whole before anything is rendered or written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::error::{Error, Result};
use crate::snippet::Location;

/// A fleet file is small: a thousand pairs fit in well under this.
pub const MAX_FLEET_BYTES: u64 = 1 << 20;
/// A ConfigMap holds at most 1 MiB (etcd's object limit); the runbooks travel in one.
pub const MAX_RUNBOOK_BYTES: u64 = 900 * 1024;
/// How deep below the runbook's directory files are taken.
const MAX_DEPTH: usize = 4;

/// A fleet, validated: every name is a usable Kubernetes name, every pair is in a wave that
/// exists, every wave has pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// DNS label naming the fleet (Job names start with it).
    pub name: String,
    /// The management cluster's namespace the fleet runs in.
    pub namespace: String,
    /// The container image holding meshshift.
    pub image: String,
    /// The runbook, as a path relative to its directory.
    pub runbook: String,
    /// The files of the runbook's directory (the runbook, the files it imports or loads), as
    /// (relative path, text): they travel in one ConfigMap.
    pub files: Vec<(String, String)>,
    /// Waves in the order they run.
    pub waves: Vec<Wave>,
}

/// One wave: its pairs in index order (pair `i` is Job completion index `i`).
#[derive(Debug, Clone, PartialEq)]
pub struct Wave {
    pub name: String,
    /// Pods running at once (the Job's `parallelism`).
    pub concurrency: u32,
    /// What happens after the wave finished, before the next one starts.
    pub pause: Pause,
    pub pairs: Vec<Pair>,
}

/// The pause after a wave.
#[derive(Debug, Clone, PartialEq)]
pub enum Pause {
    None,
    /// Soak time before the next wave.
    For(Duration),
    /// The next wave waits for `meshshift fleet approve WAVE`.
    Approval,
}

/// One source/target pair and the parameters of its run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Pair {
    pub name: String,
    pub source: ClusterRef,
    pub target: ClusterRef,
    /// The fleet's parameters overlaid with the pair's, plus SOURCE_CLUSTER and
    /// TARGET_CLUSTER from the contexts.
    pub parameters: BTreeMap<String, String>,
}

/// A kubeconfig held in a Secret of the fleet's namespace, and the context to use in it.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRef {
    /// The Secret's name.
    pub secret: String,
    /// The Secret's key holding the kubeconfig.
    #[serde(default = "default_key")]
    pub key: String,
    /// The kubeconfig context naming the cluster.
    pub context: String,
}

fn default_key() -> String {
    "kubeconfig".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetText {
    name: String,
    namespace: Option<String>,
    image: String,
    runbook: PathBuf,
    #[serde(default)]
    parameters: BTreeMap<String, Scalar>,
    waves: Vec<WaveText>,
    pairs: Vec<PairText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaveText {
    name: String,
    concurrency: u32,
    #[serde(default)]
    pause: Option<PauseText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairText {
    name: String,
    wave: String,
    source: ClusterRef,
    target: ClusterRef,
    #[serde(default)]
    parameters: BTreeMap<String, Scalar>,
}

/// A parameter value: YAML strings, numbers and booleans, kept as the text a `--set` takes.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `none`, `approval`, or a duration (`30m`), checked where it is written.
struct PauseText(Pause);

impl<'de> Deserialize<'de> for PauseText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "none" => Ok(PauseText(Pause::None)),
            "approval" => Ok(PauseText(Pause::Approval)),
            other => crate::duration::parse_duration(other)
                .map(|d| PauseText(Pause::For(d)))
                .map_err(|reason| {
                    de::Error::custom(format!(
                        "pause `{other}`: expected `none`, `approval` or a duration ({reason})"
                    ))
                }),
        }
    }
}

/// Reads and validates the fleet file at `path` (its runbook path is relative to it).
pub fn load(path: &Path) -> Result<Fleet> {
    let display = crate::files::display_path(path);
    let text = read_bounded(path, MAX_FLEET_BYTES)?;
    let parsed = parse_text(&display, &text)?;
    let runbook_path = parent(path).join(&parsed.runbook);
    read_bounded(&runbook_path, MAX_RUNBOOK_BYTES)?;
    let runbook_dir = parent(&runbook_path);
    let runbook = parsed
        .runbook
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut files = Vec::new();
    let mut total = 0;
    collect_files(&runbook_dir, "", 0, &mut files, &mut total)?;
    validate(&display, parsed, runbook, files)
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The text files below `dir` (hidden ones left out), at most [`MAX_RUNBOOK_BYTES`] in all.
fn collect_files(
    dir: &Path,
    prefix: &str,
    depth: usize,
    files: &mut Vec<(String, String)>,
    total: &mut u64,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::ReadFile {
            path: crate::files::display_path(dir),
            reason: e.to_string(),
        })?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let relative = format!("{prefix}{name}");
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && depth < MAX_DEPTH {
            collect_files(
                &entry.path(),
                &format!("{relative}/"),
                depth + 1,
                files,
                total,
            )?;
        } else if kind.is_file() {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            *total += size;
            if *total > MAX_RUNBOOK_BYTES {
                return Err(Error::FileTooLarge {
                    path: format!(
                        "{} (the runbook's directory, in one ConfigMap)",
                        crate::files::display_path(dir)
                    ),
                    size: *total,
                    limit: MAX_RUNBOOK_BYTES,
                });
            }
            let text = read_bounded(&entry.path(), MAX_RUNBOOK_BYTES)?;
            files.push((relative, text));
        }
    }
    Ok(())
}

/// The ConfigMap key of a file of the runbook's directory: `/` becomes `__`.
pub fn file_key(path: &str) -> String {
    path.replace('/', "__")
}

fn read_bounded(path: &Path, limit: u64) -> Result<String> {
    let display = crate::files::display_path(path);
    let size = std::fs::metadata(path)
        .map_err(|e| Error::ReadFile {
            path: display.clone(),
            reason: e.to_string(),
        })?
        .len();
    if size > limit {
        return Err(Error::FileTooLarge {
            path: display,
            size,
            limit,
        });
    }
    std::fs::read_to_string(path).map_err(|e| Error::ReadFile {
        path: display,
        reason: e.to_string(),
    })
}

/// Parses the text: first through the bounded, duplicate-refusing reader the manifests use,
/// then into the typed fields, whose unknown or mistyped entries serde reports with a position.
fn parse_text(file: &str, text: &str) -> Result<FleetText> {
    let documents = crate::manifest::yaml::parse_documents(file, text).map_err(|e| match e {
        Error::ManifestSyntax { message, at, .. } => Error::Fleet {
            file: file.to_string(),
            message,
            at,
        },
        other => other,
    })?;
    if documents.len() != 1 {
        return Err(Error::Fleet {
            file: file.to_string(),
            message: format!("expected one YAML document, found {}", documents.len()),
            at: None,
        });
    }
    serde_yaml::from_str::<FleetText>(text).map_err(|error| {
        let message = error.to_string();
        let message = match message.find(" at line ") {
            Some(cut) => message[..cut].to_string(),
            None => message,
        };
        Error::Fleet {
            file: file.to_string(),
            message,
            at: error
                .location()
                .map(|l| Location::in_source(file, text, l.line(), l.column())),
        }
    })
}

/// Every check that needs the whole file: names, references between pairs and waves.
fn validate(
    file: &str,
    text: FleetText,
    runbook: String,
    files: Vec<(String, String)>,
) -> Result<Fleet> {
    let fail = |message: String| Error::Fleet {
        file: file.to_string(),
        message,
        at: None,
    };
    dns_label(&text.name, "name").map_err(fail)?;
    let namespace = text
        .namespace
        .clone()
        .unwrap_or_else(|| format!("meshshift-{}", text.name));
    dns_label(&namespace, "namespace").map_err(fail)?;
    if text.image.trim().is_empty() || text.image.chars().any(char::is_whitespace) {
        return Err(fail(format!(
            "image `{}`: expected an image reference without spaces",
            text.image
        )));
    }
    for (path, _) in &files {
        let key = file_key(path);
        if !config_map_key(&key) || key == super::render::PLAN_KEY {
            return Err(fail(format!(
                "runbook directory: the file `{path}` cannot travel in a ConfigMap (names are letters, digits, `-`, `_`, `.`; `{}` is taken)",
                super::render::PLAN_KEY
            )));
        }
    }
    let common = parameters(&text.parameters, "parameters").map_err(fail)?;
    if text.waves.is_empty() {
        return Err(fail("waves: at least one wave is needed".into()));
    }
    let mut waves: Vec<Wave> = Vec::new();
    for (i, wave) in text.waves.into_iter().enumerate() {
        let field = format!("waves[{i}]");
        dns_label(&wave.name, &format!("{field}.name")).map_err(fail)?;
        // Job names are `<fleet>-<wave>` and become a pod label value: 63 characters at most.
        let job = format!("{}-{}", text.name, wave.name);
        if job.len() > 63 {
            return Err(fail(format!(
                "{field}.name: the Job name `{job}` is longer than 63 characters; shorten the fleet's or the wave's name"
            )));
        }
        // `<fleet>-conductor` names the conductor's Job.
        if wave.name == "conductor" {
            return Err(fail(format!(
                "{field}.name: `conductor` is taken by the fleet's conductor Job; name the wave otherwise"
            )));
        }
        if waves.iter().any(|w| w.name == wave.name) {
            return Err(fail(format!(
                "{field}.name: wave `{}` is named twice",
                wave.name
            )));
        }
        if wave.concurrency == 0 {
            return Err(fail(format!(
                "{field}.concurrency: wave `{}` needs a concurrency of at least 1",
                wave.name
            )));
        }
        waves.push(Wave {
            name: wave.name,
            concurrency: wave.concurrency,
            pause: wave.pause.map_or(Pause::None, |p| p.0),
            pairs: Vec::new(),
        });
    }
    let mut names = BTreeSet::new();
    for (i, pair) in text.pairs.into_iter().enumerate() {
        let field = format!("pairs[{i}]");
        dns_label(&pair.name, &format!("{field}.name")).map_err(fail)?;
        if !names.insert(pair.name.clone()) {
            return Err(fail(format!(
                "{field}.name: pair `{}` is named twice",
                pair.name
            )));
        }
        for (side, cluster) in [("source", &pair.source), ("target", &pair.target)] {
            dns_subdomain(&cluster.secret, &format!("{field}.{side}.secret")).map_err(fail)?;
            if !config_map_key(&cluster.key) {
                return Err(fail(format!(
                    "{field}.{side}.key: `{}` is not a Secret key ([-._a-zA-Z0-9]+)",
                    cluster.key
                )));
            }
            if cluster.context.trim().is_empty() {
                return Err(fail(format!("{field}.{side}.context: empty")));
            }
        }
        let mut values = common.clone();
        values.extend(parameters(&pair.parameters, &format!("{field}.parameters")).map_err(fail)?);
        values.insert("SOURCE_CLUSTER".into(), pair.source.context.clone());
        values.insert("TARGET_CLUSTER".into(), pair.target.context.clone());
        let known: Vec<String> = waves.iter().map(|w| w.name.clone()).collect();
        let Some(wave) = waves.iter_mut().find(|w| w.name == pair.wave) else {
            return Err(fail(format!(
                "{field}.wave: pair `{}` names wave `{}`, which is not in `waves` ({})",
                pair.name,
                pair.wave,
                known.join(", ")
            )));
        };
        wave.pairs.push(Pair {
            name: pair.name,
            source: pair.source,
            target: pair.target,
            parameters: values,
        });
    }
    if let Some(empty) = waves.iter().find(|w| w.pairs.is_empty()) {
        return Err(fail(format!(
            "waves: wave `{}` has no pairs (an Indexed Job needs at least one completion)",
            empty.name
        )));
    }
    Ok(Fleet {
        name: text.name,
        namespace,
        image: text.image,
        runbook,
        files,
        waves,
    })
}

/// Parameters as `--set` takes them; the clusters come from `source.context` and
/// `target.context`, so naming them here would say the same thing twice, perhaps differently.
fn parameters(
    values: &BTreeMap<String, Scalar>,
    field: &str,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (name, value) in values {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "{field}.{name}: a parameter name is letters, digits and `_`"
            ));
        }
        if name == "SOURCE_CLUSTER" || name == "TARGET_CLUSTER" {
            return Err(format!(
                "{field}.{name}: set by the pair's `source.context` / `target.context`, not here"
            ));
        }
        out.insert(name.clone(), value.0.clone());
    }
    Ok(out)
}

/// RFC 1123 label: what Namespaces and Job-name parts must be.
fn dns_label(name: &str, field: &str) -> std::result::Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{field}: `{name}` is not a DNS label (lower-case letters, digits and `-`, at most 63, starting and ending with a letter or digit)"
        ))
    }
}

/// RFC 1123 subdomain: what Secret names must be.
fn dns_subdomain(name: &str, field: &str) -> std::result::Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| dns_label(part, field).is_ok());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{field}: `{name}` is not a valid Secret name (a DNS subdomain)"
        ))
    }
}

fn config_map_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A pair named `name` whose source and target Secrets and contexts are `<name>-s` and
/// `<name>-t`, for the renderers' tests.
#[cfg(test)]
pub(crate) fn pair_for_tests(name: &str) -> Pair {
    let cluster = |s: String| ClusterRef {
        secret: s.clone(),
        key: "kubeconfig".into(),
        context: s,
    };
    Pair {
        name: name.into(),
        source: cluster(format!("{name}-s")),
        target: cluster(format!("{name}-t")),
        parameters: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"name: shop
image: example.org/meshshift:1
runbook: migrate.rhai
parameters: {STEPS: "5,50,100", SOAK_SECONDS: 30}
waves:
  - {name: canary, concurrency: 1, pause: approval}
  - {name: rest, concurrency: 5, pause: 10m}
pairs:
  - name: eu-1
    wave: rest
    source: {secret: eu-1-source, context: prod-oss}
    target: {secret: eu-1-target, context: prod-aks}
  - name: canary-1
    wave: canary
    source: {secret: c-source, key: config, context: a}
    target: {secret: c-target, context: b}
    parameters: {SOAK_SECONDS: 300}
"#;

    fn fleet(text: &str) -> Result<Fleet> {
        let parsed = parse_text("fleet.yaml", text)?;
        validate(
            "fleet.yaml",
            parsed,
            "migrate.rhai".into(),
            vec![("migrate.rhai".into(), "//! x".into())],
        )
    }

    #[test]
    fn pairs_go_to_their_waves_with_parameters_overlaid() {
        let fleet = fleet(GOOD).expect("valid");
        assert_eq!(fleet.namespace, "meshshift-shop");
        assert_eq!(fleet.waves[0].name, "canary");
        assert_eq!(fleet.waves[0].pause, Pause::Approval);
        assert_eq!(fleet.waves[1].pause, Pause::For(Duration::from_secs(600)));
        let canary = &fleet.waves[0].pairs[0];
        assert_eq!(canary.name, "canary-1");
        assert_eq!(canary.source.key, "config");
        assert_eq!(canary.parameters["SOAK_SECONDS"], "300");
        assert_eq!(canary.parameters["STEPS"], "5,50,100");
        assert_eq!(canary.parameters["TARGET_CLUSTER"], "b");
        assert_eq!(fleet.waves[1].pairs[0].parameters["SOAK_SECONDS"], "30");
    }

    #[test]
    fn an_unknown_field_is_named_with_its_position() {
        let text = GOOD.replace("concurrency: 5,", "concurrency: 5, parallelism: 2,");
        let error = fleet(&text).expect_err("unknown field");
        let Error::Fleet { message, at, .. } = &error else {
            panic!("{error:?}")
        };
        assert!(message.contains("unknown field `parallelism`"), "{message}");
        let at = at.as_ref().expect("position");
        assert_eq!((at.file.as_str(), at.line), ("fleet.yaml", 7));
    }

    #[test]
    fn cross_references_and_names_are_checked() {
        let cases = [
            (
                GOOD.replace("wave: rest", "wave: rset"),
                "names wave `rset`",
            ),
            (GOOD.replace("name: eu-1", "name: canary-1"), "named twice"),
            (
                GOOD.replace("concurrency: 1", "concurrency: 0"),
                "at least 1",
            ),
            (GOOD.replace("pause: 10m", "pause: soon"), "pause `soon`"),
            (GOOD.replace("name: shop", "name: Shop"), "not a DNS label"),
            (
                GOOD.replace("SOAK_SECONDS: 300", "SOURCE_CLUSTER: x"),
                "source.context",
            ),
            (
                GOOD.replace("secret: eu-1-target", "secret: Eu_1"),
                "Secret name",
            ),
            (
                GOOD.replace(
                    "  - name: eu-1\n    wave: rest",
                    "  - name: eu-1\n    wave: canary",
                ),
                "wave `rest` has no pairs",
            ),
            (format!("{GOOD}name: again\n"), "duplicate"),
        ];
        for (text, expected) in cases {
            let error = fleet(&text).expect_err(expected);
            assert!(
                error.message().contains(expected),
                "{expected}: {}",
                error.message()
            );
        }
    }
}
