//! `Pty`: runs the real `meshshift` binary on a pseudo-terminal, types into it, and waits for
//! text to appear on its screen (escape sequences removed). It answers the terminal's cursor
//! position query as a terminal would, so line editors start without a timeout.
// Helpers shared by test modules; not every module uses every one.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::test::meshshift_binary;

/// How long `expect` waits before failing: generous, for a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Screen {
    raw: Vec<u8>,
    /// `raw[..stripped]` without escape sequences: kept as output arrives, so that waiting for
    /// text does not strip everything again for every chunk (a long session shows megabytes,
    /// and the program blocks on a full terminal while the reader waits for the lock).
    plain: String,
    stripped: usize,
    closed: bool,
}

impl Screen {
    /// Strips what arrived since the last call, up to the last complete sequence and character.
    fn update(&mut self) -> &str {
        let end = complete_prefix(&self.raw, self.stripped);
        if end > self.stripped {
            let text = strip_escapes(&self.raw[self.stripped..end]);
            self.plain.push_str(&text);
            self.stripped = end;
        }
        &self.plain
    }
}

/// How much of `raw` (from `from` on) can be stripped now: everything but an escape sequence
/// or a UTF-8 character that a later chunk completes.
fn complete_prefix(raw: &[u8], from: usize) -> usize {
    let mut end = raw.len();
    if let Some(escape) = raw[from..].iter().rposition(|b| *b == 0x1b) {
        let at = from + escape;
        let rest = &raw[at..];
        let complete = match rest.get(1) {
            None => false,
            Some(b'[') => rest[2..].iter().any(|b| (0x40..=0x7e).contains(b)),
            Some(b']') => rest.contains(&0x07) || rest.windows(2).any(|w| w == b"\x1b\\"),
            Some(_) => true,
        };
        if !complete {
            end = at;
        }
    }
    // Back off a character cut in two.
    let mut start = end;
    while start > from && start > end.saturating_sub(4) && raw[start - 1] & 0xc0 == 0x80 {
        start -= 1;
    }
    if start > from && raw[start - 1] >= 0xc0 {
        let lead = raw[start - 1];
        let width = if lead >= 0xf0 {
            4
        } else if lead >= 0xe0 {
            3
        } else {
            2
        };
        if end - (start - 1) < width {
            return start - 1;
        }
    }
    end
}

/// A program running on a pseudo-terminal.
pub struct Pty {
    child: Child,
    input: File,
    screen: Arc<(Mutex<Screen>, Condvar)>,
    /// How far `expect` has read in the plain text.
    seen: usize,
    pub started: Instant,
}

impl Pty {
    /// Starts `meshshift ARGS` in `dir` on a 200x50 terminal, with `NO_COLOR` and the state
    /// dir inside `dir`.
    pub fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Pty {
        let (master, slave) = open_pty();
        let mut command = Command::new(meshshift_binary());
        command
            .args(args)
            .current_dir(dir)
            .env("TERM", "xterm-256color")
            .env("NO_COLOR", "1")
            .env("MESHSHIFT_STATE_DIR", dir.join(".meshshift"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::from(slave.try_clone().expect("dup pty")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty")))
            .stderr(Stdio::from(slave));
        for (key, value) in env {
            command.env(key, value);
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let child = command.spawn().expect("spawn meshshift on a pty");
        let input = File::from(master.try_clone().expect("dup pty master"));
        let screen: Arc<(Mutex<Screen>, Condvar)> = Arc::default();
        let reader_screen = screen.clone();
        let answer = File::from(master.try_clone().expect("dup pty master"));
        std::thread::spawn(move || read_screen(File::from(master), answer, reader_screen));
        Pty {
            child,
            input,
            screen,
            seen: 0,
            started,
        }
    }

    /// Types text (`\r` is Enter, `\t` Tab, `\x03` Ctrl-C, `\x04` Ctrl-D).
    pub fn send(&mut self, keys: &str) {
        self.input.write_all(keys.as_bytes()).expect("write to pty");
        self.input.flush().expect("flush pty");
    }

    /// Waits until `text` appears after what earlier expectations matched; returns how long
    /// that took. Fails the test, showing the screen, after [`PATIENCE`].
    #[track_caller]
    pub fn expect(&mut self, text: &str) -> Duration {
        let waited = Instant::now();
        if !self.wait_for(text, PATIENCE) {
            panic!(
                "{text:?} did not appear within {PATIENCE:?}\n--- screen\n{}\n---",
                self.plain()
            );
        }
        waited.elapsed()
    }

    /// Like [`Pty::expect`] but answers false after `timeout` instead of failing.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.screen;
        let mut screen = lock.lock().unwrap();
        loop {
            let plain = screen.update();
            if let Some(at) = plain.get(self.seen..).and_then(|rest| rest.find(text)) {
                self.seen += at + text.len();
                return true;
            }
            let now = Instant::now();
            if now >= deadline || screen.closed {
                return false;
            }
            screen = changed.wait_timeout(screen, deadline - now).unwrap().0;
        }
    }

    /// Everything shown so far, without escape sequences.
    pub fn plain(&self) -> String {
        self.screen.0.lock().unwrap().update().to_string()
    }

    /// Waits for the program to exit and returns its exit code.
    #[track_caller]
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for meshshift") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "still running\n--- screen\n{}\n---",
                self.plain()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn open_pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 50,
        ws_col: 200,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills two fds we then own; the name buffer and termios are optional.
    let result = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(result, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened and are owned by nobody else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // The child must not inherit the master side.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    (master, slave)
}

/// Collects output until the child side closes; answers cursor position queries.
fn read_screen(mut master: File, mut answer: File, screen: Arc<(Mutex<Screen>, Condvar)>) {
    let mut buffer = [0u8; 4096];
    loop {
        let read = master.read(&mut buffer).unwrap_or(0);
        let (lock, changed) = &*screen;
        let mut state = lock.lock().unwrap();
        if read == 0 {
            state.closed = true;
            changed.notify_all();
            return;
        }
        let chunk = &buffer[..read];
        if chunk.windows(4).any(|w| w == b"\x1b[6n") {
            let _ = answer.write_all(b"\x1b[1;1R");
        }
        state.raw.extend_from_slice(chunk);
        changed.notify_all();
    }
}

/// The text without ANSI escape sequences and carriage returns.
pub fn strip_escapes(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    // CSI: parameters, then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    // OSC: up to BEL or ESC \.
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            other => out.push(other),
        }
    }
    out
}
