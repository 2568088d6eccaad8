//! Which programs `exec` may run, and how. `--allow-exec NAME` is resolved on `PATH` once,
//! when the session opens; `exec` then runs only those resolved files (by name, or by a path
//! that is the same file), or the session's emulation of a program (`--sim` emulates `az`,
//! whatever path a script names it by). In plan mode only commands on [`READ_ONLY`] run.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Commands that only read, as program name and leading arguments: in plan mode these run and
/// every other command is skipped. The host owns this list; a script cannot extend it.
pub const READ_ONLY: &[&[&str]] = &[
    &["az", "version"],
    &["az", "account", "show"],
    &["az", "account", "list"],
    &["az", "aks", "show"],
    &["az", "aks", "list"],
    &["az", "aks", "get-versions"],
    &["az", "aks", "get-upgrades"],
    &["az", "aks", "mesh", "get-revisions"],
    &["az", "aks", "mesh", "get-upgrades"],
    &["kubectl", "version"],
    &["kubectl", "get"],
    &["kubectl", "api-resources"],
];

/// One allowed program.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    /// As given to `--allow-exec`.
    pub name: String,
    /// The file it resolved to (canonical), or the emulation that runs instead.
    pub runs: Vec<String>,
    /// The canonical file, when it is one (not an emulation).
    pub path: Option<PathBuf>,
}

/// The programs a session may run.
#[derive(Debug, Clone, Default)]
pub struct Programs {
    allowed: Vec<Allowed>,
    /// Emulations by program name (`az` -> the simulator's `meshshift sim az`).
    emulated: BTreeMap<String, Vec<String>>,
}

impl Programs {
    /// Resolves every `--allow-exec` name: an emulated one runs its emulation, a name with a
    /// `/` is that file, any other name is looked up on `path` (`$PATH`).
    pub fn resolve(
        names: &[String],
        emulated: BTreeMap<String, Vec<String>>,
        path: Option<&OsStr>,
    ) -> Result<Programs, String> {
        let mut allowed = Vec::new();
        for name in names {
            if let Some(emulation) = emulated.get(name.as_str()) {
                allowed.push(Allowed {
                    name: name.clone(),
                    runs: emulation.clone(),
                    path: None,
                });
                continue;
            }
            let file = find_on_path(name, path).ok_or_else(|| {
                format!("`--allow-exec {name}`: no executable `{name}` found on PATH")
            })?;
            allowed.push(Allowed {
                name: name.clone(),
                runs: vec![file.display().to_string()],
                path: Some(file),
            });
        }
        Ok(Programs { allowed, emulated })
    }

    /// What was allowed, as resolved.
    pub fn allowed(&self) -> &[Allowed] {
        &self.allowed
    }

    /// The command line prefix that runs `program` as a script names it, or `None` when it is
    /// not allowed. An emulated program is emulated under any path; a bare name must have
    /// been allowed; a path must be the very file an allowed name resolved to.
    pub fn command_for(&self, program: &str) -> Option<Vec<String>> {
        let file_name = Path::new(program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(program);
        if let Some(emulation) = self.emulated.get(file_name)
            && self.allowed.iter().any(|a| a.name == file_name)
        {
            return Some(emulation.clone());
        }
        if !program.contains('/') {
            return self
                .allowed
                .iter()
                .find(|a| a.name == program)
                .map(|a| a.runs.clone());
        }
        let canonical = std::fs::canonicalize(program).ok()?;
        self.allowed
            .iter()
            .find(|a| a.path.as_ref() == Some(&canonical))
            .map(|a| a.runs.clone())
    }
}

/// An executable file named `name` on `path` (or `name` itself when it holds a `/`),
/// canonical.
fn find_on_path(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        return executable(Path::new(name));
    }
    std::env::split_paths(path?)
        .filter(|dir| dir.is_absolute())
        .find_map(|dir| executable(&dir.join(name)))
}

fn executable(file: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let canonical = std::fs::canonicalize(file).ok()?;
    let metadata = std::fs::metadata(&canonical).ok()?;
    (metadata.is_file() && metadata.permissions().mode() & 0o111 != 0).then_some(canonical)
}

/// The current context children of `exec` get when a script bound no context or several: it
/// names no context, so a `kubectl` without `--context` fails instead of acting on whatever
/// the user's kubeconfig has as its current context.
pub const NO_DEFAULT_CONTEXT: &str = "meshshift-no-default-context";

/// The kubeconfig files the session reads, in `KUBECONFIG` order: `--kubeconfig` (or the
/// simulator's), else `$KUBECONFIG`, else `~/.kube/config`.
pub fn kubeconfig_files(
    explicit: Option<&Path>,
    env: Option<&OsStr>,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path.to_path_buf()];
    }
    if let Some(env) = env.filter(|value| !value.is_empty()) {
        return std::env::split_paths(env)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    home.map(|home| vec![home.join(".kube").join("config")])
        .unwrap_or_default()
}

/// The first file of a child's `KUBECONFIG`: only a current context (kubectl takes the first
/// file's), the one context the script bound, else [`NO_DEFAULT_CONTEXT`].
pub fn pinned_kubeconfig(bound: &[String]) -> String {
    let context = match bound {
        [only] => only.as_str(),
        _ => NO_DEFAULT_CONTEXT,
    };
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {}\n",
        serde_json::Value::from(context)
    )
}

/// Whether `program args…` is on the host's read-only list (plan mode runs only those).
pub fn is_read_only(program: &str, args: &[String]) -> bool {
    let name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    READ_ONLY.iter().any(|command| {
        command[0] == name
            && command.len() - 1 <= args.len()
            && command[1..]
                .iter()
                .zip(args)
                .all(|(want, given)| want == given)
    })
}

/// A command line as a POSIX shell would read it back: words with anything but safe characters
/// single-quoted.
pub fn shell_quote(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            let safe = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
            if safe {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tool(dir: &Path, name: &str) -> PathBuf {
        let file = dir.join(name);
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::canonicalize(file).unwrap()
    }

    #[test]
    fn only_the_resolved_files_are_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let other = dir.path().join("other");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let sh = tool(&bin, "sh");
        tool(&other, "sh");
        let programs =
            Programs::resolve(&["sh".into()], BTreeMap::new(), Some(bin.as_os_str())).unwrap();
        assert_eq!(programs.allowed()[0].path.as_ref(), Some(&sh));
        let shown = sh.display().to_string();
        assert_eq!(programs.command_for("sh"), Some(vec![shown.clone()]));
        assert_eq!(programs.command_for(&shown), Some(vec![shown.clone()]));
        // Another file of the same name is not the allowed one.
        let elsewhere = other.join("sh").display().to_string();
        assert_eq!(programs.command_for(&elsewhere), None);
        assert_eq!(programs.command_for("../other/sh"), None);
        assert_eq!(programs.command_for("bash"), None);
        let missing = Programs::resolve(&["nope".into()], BTreeMap::new(), Some(bin.as_os_str()));
        assert!(
            missing
                .unwrap_err()
                .contains("no executable `nope` found on PATH")
        );
    }

    #[test]
    fn an_emulated_program_is_emulated_under_any_path() {
        let emulated = BTreeMap::from([(
            "az".to_string(),
            vec!["meshshift".into(), "sim".into(), "az".into()],
        )]);
        let programs = Programs::resolve(&["az".into()], emulated, None).unwrap();
        for name in ["az", "/usr/bin/az", "../x/az"] {
            assert_eq!(
                programs.command_for(name),
                Some(vec!["meshshift".into(), "sim".into(), "az".into()]),
                "{name}"
            );
        }
    }

    #[test]
    fn plan_mode_runs_only_the_read_only_list() {
        let args = |text: &str| text.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert!(is_read_only("az", &args("version -o json")));
        assert!(is_read_only(
            "/usr/bin/az",
            &args("aks mesh get-revisions --location x")
        ));
        assert!(!is_read_only("az", &args("aks delete --name x")));
        assert!(!is_read_only("az", &args("aks")));
        assert!(!is_read_only("echo", &args("read")));
    }

    #[test]
    fn children_read_the_sessions_kubeconfig_with_its_context_first() {
        let home = Path::new("/home/u");
        assert_eq!(
            kubeconfig_files(Some(Path::new("k")), Some(OsStr::new("a:b")), Some(home)),
            vec![PathBuf::from("k")]
        );
        assert_eq!(
            kubeconfig_files(None, Some(OsStr::new("a::b")), Some(home)),
            vec![PathBuf::from("a"), PathBuf::from("b")]
        );
        assert_eq!(
            kubeconfig_files(None, Some(OsStr::new("")), Some(home)),
            vec![PathBuf::from("/home/u/.kube/config")]
        );
        assert_eq!(
            pinned_kubeconfig(&["sim-source".into()]),
            "apiVersion: v1\nkind: Config\ncurrent-context: \"sim-source\"\n"
        );
        for bound in [vec![], vec!["a".to_string(), "b".to_string()]] {
            assert!(pinned_kubeconfig(&bound).contains(NO_DEFAULT_CONTEXT));
        }
    }

    #[test]
    fn command_lines_are_shell_quoted() {
        let words: Vec<String> = ["az", "aks", "show", "--name", "my cluster", "it's", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            shell_quote(&words),
            r#"az aks show --name 'my cluster' 'it'\''s' ''"#
        );
    }
}
