//! Everything meshshift prints while a runbook runs: step headers, info and warning lines,
//! Rhai's `print`, progress bars. Colour only on a terminal and never with `NO_COLOR`; a plain
//! mode (no colour, no progress bars, no cursor tricks) everywhere else.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What library log lines reach stderr: `RUST_LOG` when set, else warnings, without
/// kube's per-request failure lines ("failed with status 503"): meshshift retries those
/// requests and reports a failure itself, once, after its retries.
pub fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client=off"))
}

/// ANSI styling that turns itself off in plain mode.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    colour: bool,
}

impl Style {
    /// Colour if `stream_is_terminal` and neither `NO_COLOR` nor `TERM=dumb` says otherwise.
    pub fn detect(stream_is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Style {
            colour: stream_is_terminal && !no_color && !dumb,
        }
    }

    /// Style for stderr.
    pub fn stderr() -> Style {
        Style::detect(std::io::stderr().is_terminal())
    }

    /// No colour at all.
    pub fn plain() -> Style {
        Style { colour: false }
    }

    pub fn is_colour(&self) -> bool {
        self.colour
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            ansi(code, text)
        } else {
            text.to_string()
        }
    }

    pub fn error(&self, text: &str) -> String {
        self.paint("1;31", text)
    }
    pub fn warning(&self, text: &str) -> String {
        self.paint("1;33", text)
    }
    pub fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn bad(&self, text: &str) -> String {
        self.paint("31", text)
    }
    pub fn heading(&self, text: &str) -> String {
        self.paint("1;36", text)
    }
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// `text` in the ANSI colour `code` (`"1;31"`), reset after.
pub fn ansi(code: &str, text: &str) -> String {
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Where runbook output goes. Shared by every host function of a session.
pub struct Output {
    style: Style,
    terminal: bool,
    depth: AtomicUsize,
    sink: Mutex<Sink>,
}

enum Sink {
    Stdout,
    Buffer(Vec<u8>),
}

impl Output {
    /// Output to stdout, styled for whatever stdout is.
    pub fn stdout() -> Output {
        let terminal = std::io::stdout().is_terminal();
        Output {
            style: Style::detect(terminal),
            terminal,
            depth: AtomicUsize::new(0),
            sink: Mutex::new(Sink::Stdout),
        }
    }

    /// Output collected in memory (tests, the REPL's `:save`).
    pub fn buffer() -> Output {
        Output {
            style: Style::plain(),
            terminal: false,
            depth: AtomicUsize::new(0),
            sink: Mutex::new(Sink::Buffer(Vec::new())),
        }
    }

    /// What a buffer output has collected so far.
    pub fn take_buffer(&self) -> String {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *sink {
            Sink::Buffer(bytes) => String::from_utf8_lossy(&std::mem::take(bytes)).into_owned(),
            Sink::Stdout => String::new(),
        }
    }

    pub fn style(&self) -> Style {
        self.style
    }

    /// True when progress bars and prompts make sense.
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Writes text as is (lines are indented to the current step depth).
    pub fn line(&self, text: &str) {
        let indent = "    ".repeat(self.depth.load(Ordering::Relaxed));
        let mut block = String::new();
        for line in text.split('\n') {
            block.push_str(&indent);
            block.push_str(line);
            block.push('\n');
        }
        self.write(&block);
    }

    /// Every line of output passes through the redaction layer on its way out.
    fn write(&self, text: &str) {
        let text = &crate::redact::text(text);
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *sink {
            Sink::Stdout => {
                let mut stdout = std::io::stdout().lock();
                // A closed pipe (`meshshift run x | head`) must not turn into a panic.
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            Sink::Buffer(bytes) => bytes.extend_from_slice(text.as_bytes()),
        }
    }

    /// `info(msg)`.
    pub fn info(&self, message: &str) {
        self.line(message);
    }

    /// `warn(msg)`.
    pub fn warn(&self, message: &str) {
        self.line(&format!("{} {message}", self.style.warning("warning:")));
    }

    /// The header of a step; indents what follows until [`Output::end_step`].
    pub fn begin_step(&self, number: usize, title: &str) {
        self.line(&format!(
            "{} {}",
            self.style.heading(&format!("==> [{number}]")),
            self.style.bold(title)
        ));
        self.depth.fetch_add(1, Ordering::Relaxed);
    }

    /// The result line of a step.
    pub fn end_step(&self, elapsed: Duration, failure: Option<&str>) {
        let seconds = format_duration(elapsed);
        match failure {
            None => self.line(&self.style.good(&format!("done in {seconds}"))),
            Some(reason) => {
                let reason = reason.lines().next().unwrap_or_default();
                self.line(&self.style.bad(&format!("failed after {seconds}: {reason}")))
            }
        }
        self.depth.fetch_sub(1, Ordering::Relaxed);
    }

    /// The result line of a step that was not run again.
    pub fn skip_step(&self, reason: &str) {
        self.line(&self.style.dim(&format!("skipped: {reason}")));
        self.depth.fetch_sub(1, Ordering::Relaxed);
    }

    /// Resets indentation (after an interrupted step in the REPL).
    pub fn reset_depth(&self) {
        self.depth.store(0, Ordering::Relaxed);
    }
}

/// A spinner with a message on a terminal; nothing elsewhere.
pub struct Spinner {
    bar: Option<indicatif::ProgressBar>,
}

impl Spinner {
    pub fn set_message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(crate::redact::text(message));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Output {
    /// A spinner for a wait (only on a terminal).
    pub fn spinner(&self, prefix: &str) -> Spinner {
        if !self.terminal {
            return Spinner { bar: None };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        let indent = "    ".repeat(self.depth.load(Ordering::Relaxed));
        if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
            "{indent}{{spinner}} {prefix}: {{msg}}"
        )) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner { bar: Some(bar) }
    }

    /// A progress bar over `total` items (only on a terminal).
    pub fn progress_bar(&self, total: u64, prefix: &str) -> Spinner {
        if !self.terminal {
            return Spinner { bar: None };
        }
        let bar = indicatif::ProgressBar::new(total);
        let indent = "    ".repeat(self.depth.load(Ordering::Relaxed));
        if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
            "{indent}{prefix} [{{bar:30}}] {{pos}}/{{len}} {{msg}}"
        )) {
            bar.set_style(style.progress_chars("=> "));
        }
        Spinner { bar: Some(bar) }
    }
}

impl Spinner {
    /// Advances a progress bar.
    pub fn inc(&self, by: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(by);
        }
    }
}

/// An aligned text table: a header row, then one row per entry; the last column is not padded.
pub fn format_table(columns: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let render = |cells: &[String]| {
        let mut line = String::new();
        for (index, cell) in cells.iter().enumerate() {
            if index + 1 == cells.len() {
                line.push_str(cell);
            } else {
                let pad = widths[index] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        line.trim_end().to_string()
    };
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    let mut lines = vec![render(&header)];
    lines.extend(rows.iter().map(|row| render(row)));
    lines.join("\n")
}

/// `0.42s`, `12.3s`, `2m05s`.
pub fn format_duration(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if seconds < 10.0 {
        format!("{seconds:.2}s")
    } else if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        let whole = elapsed.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_indent_their_output() {
        let out = Output::buffer();
        out.begin_step(1, "prechecks");
        out.info("all good");
        out.warn("EnvoyFilter found");
        out.end_step(Duration::from_millis(420), None);
        out.info("after");
        assert_eq!(
            out.take_buffer(),
            "==> [1] prechecks\n    all good\n    warning: EnvoyFilter found\n    done in 0.42s\nafter\n"
        );
    }

    #[test]
    fn failure_line_keeps_only_the_first_line_of_the_reason() {
        let out = Output::buffer();
        out.begin_step(2, "shift");
        out.end_step(Duration::from_secs(75), Some("gate failed\nmore"));
        assert_eq!(
            out.take_buffer(),
            "==> [2] shift\n    failed after 1m15s: gate failed\n"
        );
    }

    #[test]
    fn tables_align_columns() {
        let table = format_table(
            &["kind".into(), "name".into()],
            &[
                vec!["WasmPlugin".into(), "auth".into()],
                vec!["Pod".into(), "x".into()],
            ],
        );
        assert_eq!(table, "KIND        NAME\nWasmPlugin  auth\nPod         x");
    }

    #[test]
    fn plain_style_has_no_escape_codes() {
        assert_eq!(Style::plain().error("error"), "error");
        assert_eq!(Style { colour: true }.error("e"), "\x1b[1;31me\x1b[0m");
    }
}
