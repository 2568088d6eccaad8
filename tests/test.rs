//! `Test`: writes files into a temporary directory, runs the real `meshshift` binary there, and
//! checks exit status, stdout and stderr.
// Helpers shared by all test modules; not every module uses every one.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The binary under test.
pub fn meshshift_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_meshshift"))
}

/// The repository root (for shipped runbooks and stdlib).
pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Removes the common indentation of a multi-line expectation and its first newline.
pub fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: String = text
        .lines()
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

enum Expect {
    Exact(String),
    Contains(Vec<String>),
    Regex(regex::Regex),
}

impl Expect {
    #[track_caller]
    fn check(&self, stream: &str, actual: &str) {
        match self {
            Expect::Exact(expected) => {
                assert!(
                    actual == expected,
                    "{stream} differs\n--- expected\n{expected}\n--- actual\n{actual}\n---"
                );
            }
            Expect::Contains(parts) => {
                for part in parts {
                    assert!(
                        actual.contains(part.as_str()),
                        "{stream} lacks {part:?}\n--- actual\n{actual}\n---"
                    );
                }
            }
            Expect::Regex(regex) => {
                assert!(
                    regex.is_match(actual),
                    "{stream} does not match /{regex}/\n--- actual\n{actual}\n---"
                );
            }
        }
    }
}

/// One run of the binary.
#[must_use]
pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    status: i32,
    stdout: Option<Expect>,
    stderr: Option<Expect>,
}

/// What a finished test run produced.
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
    pub dir: tempfile::TempDir,
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            status: 0,
            stdout: None,
            stderr: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file relative to the test directory.
    pub fn write(self, path: &str, content: impl AsRef<[u8]>) -> Test {
        let full = self.dir.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(full, content).expect("write file");
        self
    }

    /// Writes `runbook.rhai` and runs it (`meshshift run runbook.rhai` plus any further args).
    pub fn runbook(self, source: &str) -> Test {
        self.write("runbook.rhai", unindent(source))
            .args(&["run", "runbook.rhai"])
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn stdin(mut self, text: &str) -> Test {
        self.stdin = Some(text.into());
        self
    }

    pub fn status(mut self, status: i32) -> Test {
        self.status = status;
        self
    }

    /// Exact stdout (unindented).
    pub fn stdout(mut self, text: &str) -> Test {
        self.stdout = Some(Expect::Exact(unindent(text)));
        self
    }

    /// Exact stderr (unindented).
    pub fn stderr(mut self, text: &str) -> Test {
        self.stderr = Some(Expect::Exact(unindent(text)));
        self
    }

    pub fn stdout_contains(mut self, parts: &[&str]) -> Test {
        self.stdout = Some(Expect::Contains(
            parts.iter().map(|p| p.to_string()).collect(),
        ));
        self
    }

    pub fn stderr_contains(mut self, parts: &[&str]) -> Test {
        self.stderr = Some(Expect::Contains(
            parts.iter().map(|p| p.to_string()).collect(),
        ));
        self
    }

    pub fn stdout_regex(mut self, pattern: &str) -> Test {
        self.stdout = Some(Expect::Regex(
            regex::Regex::new(pattern).expect("valid regex"),
        ));
        self
    }

    pub fn stderr_regex(mut self, pattern: &str) -> Test {
        self.stderr = Some(Expect::Regex(
            regex::Regex::new(pattern).expect("valid regex"),
        ));
        self
    }

    /// Runs the binary and checks everything that was set.
    #[track_caller]
    pub fn run(self) -> Outcome {
        let mut command = Command::new(meshshift_binary());
        command
            .args(&self.args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("MESHSHIFT_STATE_DIR", self.dir.path().join(".meshshift"))
            .env_remove("RUST_LOG")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn meshshift");
        if let Some(input) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        let output = child.wait_with_output().expect("wait for meshshift");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let status = output.status.code().unwrap_or(-1);
        assert!(
            status == self.status,
            "exit status {status}, expected {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n---",
            self.status
        );
        if let Some(expect) = &self.stdout {
            expect.check("stdout", &stdout);
        }
        if let Some(expect) = &self.stderr {
            expect.check("stderr", &stderr);
        }
        Outcome {
            stdout,
            stderr,
            status,
            dir: self.dir,
        }
    }
}

/// The value of `variable`, which an ignored test needs: run without it, the test fails
/// saying what provides it (it never passes without having tested anything).
pub fn required_env(variable: &str, provided_by: &str) -> String {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("this test needs {variable} ({provided_by})"),
    }
}

/// The fixtures directory from `MESHSHIFT_FIXTURES` (tests that read it are ignored unless
/// `.ci/run` provides it).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(required_env(
        "MESHSHIFT_FIXTURES",
        ".ci/run sets it to the shared fixtures",
    ))
}

/// Every `.yaml`/`.yml` file below `dir`, in sorted order.
pub fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            yaml_files(&entry, out);
        } else if entry.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(entry);
        }
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
