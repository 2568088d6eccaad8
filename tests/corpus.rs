//! The bad-input corpus: every file in `tests/corpus/` is one case, run through the binary.
//! Each must exit with its code, print its exact first error line on stderr, and change
//! nothing: the files of its directory are byte for byte the same afterwards (meshshift's
//! own run records under `.meshshift/` aside), and a test API server got no write.
//!
//! A case file holds `name: value` headers, then its files after `--- <path>` lines:
//!
//! ```text
//! args: run runbook.rhai --kubeconfig kube.yaml
//! exit: 1
//! first: error: cluster `c`: ...
//! server: 401 application/json {"kind":"Status","code":401}   (optional; {server} is its URL)
//! stdin: text                                                   (optional; \n is a newline)
//! silent-server: yes        (optional; {silent} is the URL of a server that never answers)
//! misnamed-tls-server: yes  (optional; {tls_server} is a TLS server whose certificate names
//!                           another address, {tls_ca} its CA as base64)
//! --- runbook.rhai
//! let c = cluster("c");
//! ```
//!
//! `{dir}` stands for the case's directory, `<0xff>` for that byte in a file.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::test::{meshshift_binary, repository_root};

struct Case {
    name: String,
    headers: BTreeMap<String, String>,
    files: Vec<(String, String)>,
}

fn parse(name: &str, text: &str) -> Case {
    let mut headers = BTreeMap::new();
    let mut files: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(path) = line.strip_prefix("--- ") {
            files.push((path.trim().to_string(), String::new()));
        } else if let Some((_, content)) = files.last_mut() {
            content.push_str(line);
        } else if let Some((key, value)) = line.split_once(':') {
            headers.insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    Case {
        name: name.to_string(),
        headers,
        files,
    }
}

/// A server that answers every request with one status, content type and body, and
/// records each request's method and path.
struct FixedServer {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

fn fixed_server(spec: &str) -> FixedServer {
    let mut parts = spec.splitn(3, ' ');
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).expect("status");
    let content_type = parts.next().unwrap_or("text/plain").to_string();
    let body = parts.next().unwrap_or("").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        // Bounded: a case makes a few requests (with retries), never hundreds.
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut buffer = [0u8; 16384];
            let read = stream.read(&mut buffer).unwrap_or(0);
            let head = String::from_utf8_lossy(&buffer[..read]);
            let line = head.lines().next().unwrap_or_default().to_string();
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            let location = if (300..400).contains(&status) {
                "Location: /loop\r\n"
            } else {
                ""
            };
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    FixedServer { url, requests }
}

/// A server that takes connections and reads, but never answers (a traffic timeout): its URL.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(50).flatten() {
            held.push(stream);
        }
    });
    url
}

/// A TLS server whose certificate (from its own CA) names `127.0.0.1` and `localhost` but is
/// reached at `127.0.0.2`: its URL and the CA as kubeconfig `certificate-authority-data`.
fn misnamed_tls_server() -> (String, String) {
    use base64::Engine;
    let identity = meshshift_sim::tls::ServerIdentity::generate("misnamed").expect("identity");
    let config = identity.server_config().expect("server config");
    let listener = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let url = format!("https://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50).flatten() {
            let Ok(connection) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(connection, stream);
            // The client refuses the certificate during the handshake; nothing is answered.
            let _ = tls.read(&mut [0u8; 1024]);
        }
    });
    let ca = base64::engine::general_purpose::STANDARD.encode(identity.ca_pem);
    (url, ca)
}

/// The text's bytes, with each `<0xff>` written as that byte (for files that are not UTF-8).
fn with_raw_bytes(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (i, part) in text.split("<0xff>").enumerate() {
        if i > 0 {
            bytes.push(0xff);
        }
        bytes.extend_from_slice(part.as_bytes());
    }
    bytes
}

/// Every file under `dir` but meshshift's own records, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("readable").flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".meshshift") {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                files.insert(path.strip_prefix(dir).expect("inside").to_path_buf(), bytes);
            }
        }
    }
    files
}

/// Runs one case; returns what went wrong, if anything.
fn run(case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = case.headers.get("server").map(|spec| fixed_server(spec));
    let silent = case
        .headers
        .contains_key("silent-server")
        .then(silent_server);
    let misnamed = case
        .headers
        .contains_key("misnamed-tls-server")
        .then(misnamed_tls_server);
    let substitute = |text: &str| {
        let mut text = text.replace("{dir}", &dir.path().to_string_lossy());
        if let Some(url) = &silent {
            text = text.replace("{silent}", url);
        }
        if let Some((url, ca)) = &misnamed {
            text = text.replace("{tls_server}", url).replace("{tls_ca}", ca);
        }
        match &server {
            Some(server) => text.replace("{server}", &server.url),
            None => text,
        }
    };
    for (path, content) in &case.files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create dirs");
        std::fs::write(&full, with_raw_bytes(&substitute(content))).expect("write");
    }
    let before = snapshot(dir.path());
    let args = substitute(case.headers.get("args").map(String::as_str).unwrap_or(""));
    let mut command = Command::new(meshshift_binary());
    command
        .current_dir(dir.path())
        .args(args.split_whitespace())
        .env("NO_COLOR", "1")
        .env("HOME", dir.path())
        .env("MESHSHIFT_REQUEST_TIMEOUT", "3s")
        .env_remove("KUBECONFIG")
        .env_remove("MESHSHIFT_CONNECT_TO")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("meshshift runs");
    let stdin = case.headers.get("stdin").cloned().unwrap_or_default();
    let mut pipe = child.stdin.take().expect("stdin");
    let _ = pipe.write_all(stdin.replace("\\n", "\n").as_bytes());
    drop(pipe);
    let output = child.wait_with_output().expect("meshshift ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().unwrap_or(-1);
    let first = stderr
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let expected_first = substitute(case.headers.get("first").map(String::as_str).unwrap_or(""));
    let expected_code: i32 = case
        .headers
        .get("exit")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let mut problems = Vec::new();
    if code != expected_code {
        problems.push(format!("exit {code}, expected {expected_code}"));
    }
    if first != expected_first {
        problems.push(format!(
            "first line\n  got      {first:?}\n  expected {expected_first:?}"
        ));
    }
    if snapshot(dir.path()) != before {
        problems.push("the case's files changed".into());
    }
    if let Some(server) = &server {
        let requests = server.requests.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(write) = requests.iter().find(|r| !r.starts_with("GET ")) {
            problems.push(format!("the server got a write: {write}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n--- stderr:\n{stderr}",
            case.name,
            problems.join("; ")
        ))
    }
}

fn cases() -> Vec<Case> {
    let dir = repository_root().join("tests/corpus");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/corpus exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("readable case");
            parse(&path.file_stem().expect("name").to_string_lossy(), &text)
        })
        .collect()
}

#[test]
fn every_bad_input_case_fails_clearly_and_changes_nothing() {
    let cases = cases();
    assert!(cases.len() >= 60, "the corpus has {} cases", cases.len());
    let only = std::env::var("CORPUS_CASE").ok();
    let failures: Vec<String> = cases
        .iter()
        .filter(|c| only.as_ref().is_none_or(|o| c.name.contains(o.as_str())))
        .filter_map(|case| run(case).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
