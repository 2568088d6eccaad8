//! The run report (`report.md` and `report.html` in the run's directory): steps with timings
//! and outcomes, prechecks, the configured and observed target share at each traffic step,
//! and the changes made on each cluster.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::journal::Journal;
use crate::output::format_duration;
use crate::session::{RunRecord, StepOutcome};
use crate::traffic::chart::percent;

/// One traffic step as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftPoint {
    pub weight: f64,
    pub observed: f64,
    pub low: f64,
    pub high: f64,
    pub verdict: String,
    pub total: u64,
    pub errors: u64,
    pub passed: bool,
}

fn shift_points(record: &RunRecord) -> Vec<ShiftPoint> {
    record
        .events
        .iter()
        .filter(|e| e.kind == "shift-step")
        .map(|e| {
            let number = |key: &str| e.data[key].as_f64().unwrap_or(0.0);
            ShiftPoint {
                weight: number("weight"),
                observed: number("observed"),
                low: number("low"),
                high: number("high"),
                verdict: e.data["verdict"].as_str().unwrap_or_default().to_string(),
                total: e.data["total"].as_u64().unwrap_or(0),
                errors: e.data["errors"].as_u64().unwrap_or(0),
                passed: e.data["passed"].as_bool().unwrap_or(false),
            }
        })
        .collect()
}

fn findings(record: &RunRecord) -> Vec<Value> {
    record
        .events
        .iter()
        .filter(|e| e.kind == "findings")
        .flat_map(|e| e.data.as_array().cloned().unwrap_or_default())
        .collect()
}

fn outcome_text(outcome: &StepOutcome) -> String {
    match outcome {
        StepOutcome::Done => "done".into(),
        StepOutcome::Failed(reason) => format!("failed: {reason}"),
        StepOutcome::Skipped(reason) => format!("skipped ({reason})"),
    }
}

fn change_counts(record: &RunRecord) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for change in &record.changes {
        let action = if change.dry_run {
            format!("{} (dry run)", change.action.as_str())
        } else {
            change.action.as_str().to_string()
        };
        *counts.entry((change.cluster.clone(), action)).or_default() += 1;
    }
    counts
}

/// Escapes a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report.
pub fn markdown(journal: &Journal, record: &RunRecord, elapsed: std::time::Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# meshshift run `{}`\n", journal.run_id);
    let _ = writeln!(out, "- runbook: `{}`", journal.runbook.display());
    let _ = writeln!(
        out,
        "- outcome: **{}** after {}",
        journal.outcome,
        format_duration(elapsed)
    );
    if let Some(error) = &journal.error {
        let _ = writeln!(out, "- error: {}", cell(error));
    }
    if let Some(previous) = &journal.resumed_from {
        let _ = writeln!(out, "- resumed from: `{previous}`");
    }
    let mode: Vec<&str> = [
        (journal.plan, "plan (nothing changed)"),
        (journal.sim, "simulated clusters"),
        (journal.assume_yes, "--yes"),
    ]
    .into_iter()
    .filter_map(|(on, text)| on.then_some(text))
    .collect();
    if !mode.is_empty() {
        let _ = writeln!(out, "- mode: {}", mode.join(", "));
    }
    if !journal.params.is_empty() || !journal.secret_params.is_empty() {
        let params: Vec<String> = journal
            .params
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .chain(journal.secret_params.iter().map(|k| format!("`{k}=***`")))
            .collect();
        let _ = writeln!(out, "- parameters: {}", params.join(", "));
    }
    let _ = writeln!(
        out,
        "\n## Steps\n\n| # | step | outcome | duration |\n|---|---|---|---|"
    );
    for step in &record.steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            step.number,
            cell(&step.title),
            cell(&outcome_text(&step.outcome)),
            format_duration(step.elapsed)
        );
    }
    let findings = findings(record);
    if !findings.is_empty() {
        let _ = writeln!(
            out,
            "\n## Prechecks\n\n| severity | check | subject | detail |\n|---|---|---|---|"
        );
        for finding in &findings {
            let text = |k: &str| cell(finding[k].as_str().unwrap_or_default());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                text("severity"),
                text("check"),
                text("subject"),
                text("detail")
            );
        }
    }
    let points = shift_points(record);
    if !points.is_empty() {
        let _ = writeln!(
            out,
            "\n## Traffic shift\n\nTarget share configured and observed at each step (interval at the check's confidence).\n"
        );
        let _ = writeln!(
            out,
            "| configured | observed | interval | verdict | requests | errors | gate |\n|---|---|---|---|---|---|---|"
        );
        for p in &points {
            let _ = writeln!(
                out,
                "| {} | {} | {}–{} | {} | {} | {} | {} |",
                percent(p.weight / 100.0),
                percent(p.observed),
                percent(p.low),
                percent(p.high),
                p.verdict,
                p.total,
                p.errors,
                if p.passed { "passed" } else { "stopped" }
            );
        }
        let _ = writeln!(out, "\n```text");
        for p in &points {
            let bar =
                crate::traffic::chart::share_bar(p.weight / 100.0, p.observed, p.low, p.high, 40);
            let _ = writeln!(out, "{:>4} {bar}", percent(p.weight / 100.0));
        }
        let _ = writeln!(out, "```");
    }
    let counts = change_counts(record);
    if !counts.is_empty() {
        let _ = writeln!(
            out,
            "\n## Changes\n\n| cluster | action | objects |\n|---|---|---|"
        );
        for ((cluster, action), count) in &counts {
            let _ = writeln!(out, "| {cluster} | {action} | {count} |");
        }
        let changed: Vec<String> = record
            .changes
            .iter()
            .filter(|c| c.action.as_str() != "unchanged")
            .map(|c| format!("- {}: {} {}", c.cluster, c.label(), c.action.as_str()))
            .collect();
        if !changed.is_empty() {
            let _ = writeln!(out, "\n{}", changed.join("\n"));
        }
    }
    if journal.plan {
        out.push_str(&crate::plan::Plan::of(record).markdown());
    }
    out
}

/// The HTML report: the Markdown content as a page, with the traffic chart drawn in SVG.
pub fn html(journal: &Journal, record: &RunRecord, markdown: &str) -> String {
    let mut body = String::new();
    let mut in_table = false;
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            body.push_str(if in_code { "</pre>\n" } else { "<pre>" });
            in_code = !in_code;
            continue;
        }
        if in_code {
            body.push_str(&escape(line));
            body.push('\n');
            continue;
        }
        if line.starts_with('|') {
            if line.starts_with("|---") {
                continue;
            }
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|c| inline(c.trim()))
                .collect();
            if !in_table {
                body.push_str("<table><tr>");
                body.extend(cells.iter().map(|c| format!("<th>{c}</th>")));
                body.push_str("</tr>\n");
                in_table = true;
            } else {
                body.push_str("<tr>");
                body.extend(cells.iter().map(|c| format!("<td>{c}</td>")));
                body.push_str("</tr>\n");
            }
            continue;
        }
        if in_table {
            body.push_str("</table>\n");
            in_table = false;
        }
        if let Some(title) = line.strip_prefix("### ") {
            body.push_str(&format!("<h3>{}</h3>\n", escape(title)));
        } else if let Some(title) = line.strip_prefix("## ") {
            body.push_str(&format!("<h2>{}</h2>\n", escape(title)));
            if title == "Traffic shift" {
                body.push_str(&svg_chart(&shift_points(record)));
            }
        } else if let Some(title) = line.strip_prefix("# ") {
            body.push_str(&format!("<h1>{}</h1>\n", inline(title)));
        } else if let Some(item) = line.strip_prefix("- ") {
            body.push_str(&format!("<p>{}</p>\n", inline(item)));
        } else if !line.trim().is_empty() {
            body.push_str(&format!("<p>{}</p>\n", inline(line)));
        }
    }
    if in_table {
        body.push_str("</table>\n");
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>meshshift run {}</title>\n<style>\
body{{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}th{{background:#f4f4f4}}pre{{background:#f8f8f8;padding:1em}}\
code{{background:#f4f4f4;padding:0 .2em}}</style></head><body>\n{body}</body></html>\n",
        escape(&journal.run_id)
    )
}

/// Configured (outlined) and observed (filled, with interval) target share per step.
pub fn svg_chart(points: &[ShiftPoint]) -> String {
    if points.is_empty() {
        return String::new();
    }
    let (width, height, left, bottom) = (640.0, 260.0, 50.0, 30.0);
    let plot_height = height - bottom - 10.0;
    let slot = (width - left - 10.0) / points.len() as f64;
    let y = |share: f64| 10.0 + plot_height * (1.0 - share.clamp(0.0, 1.0));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"target share per step\">\n"
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            width - 10.0,
            left - 6.0,
            y(tick) + 4.0,
            percent(tick),
            y = y(tick)
        );
    }
    for (index, p) in points.iter().enumerate() {
        let x = left + slot * index as f64 + slot * 0.2;
        let bar = slot * 0.6;
        let colour = if p.passed { "#3a7" } else { "#c33" };
        let configured = p.weight / 100.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{colour}\" fill-opacity=\"0.7\"><title>observed {}</title></rect>",
            y(p.observed),
            y(0.0) - y(p.observed),
            percent(p.observed)
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#333\" stroke-dasharray=\"4 2\"><title>configured {}</title></rect>",
            y(configured),
            y(0.0) - y(configured),
            percent(configured)
        );
        let middle = x + bar / 2.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{middle:.1}\" x2=\"{middle:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#000\"/>",
            y(p.low),
            y(p.high)
        );
        let _ = writeln!(
            svg,
            "<text x=\"{middle:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            height - 10.0,
            percent(configured)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `code` and **bold** spans of the Markdown we write.
fn inline(text: &str) -> String {
    let escaped = escape(text).replace("\\|", "|");
    let mut out = String::new();
    for (index, piece) in escaped.split('`').enumerate() {
        if index % 2 == 1 {
            out.push_str(&format!("<code>{piece}</code>"));
        } else {
            let mut bold = false;
            for (i, part) in piece.split("**").enumerate() {
                if i > 0 {
                    out.push_str(if bold { "</b>" } else { "<b>" });
                    bold = !bold;
                }
                out.push_str(part);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{RecordedEvent, StepRecord};
    use serde_json::json;
    use std::time::Duration;

    fn record() -> RunRecord {
        RunRecord {
            steps: vec![
                StepRecord {
                    number: 1,
                    title: "Prechecks".into(),
                    elapsed: Duration::from_millis(420),
                    outcome: StepOutcome::Done,
                },
                StepRecord {
                    number: 2,
                    title: "Shift traffic".into(),
                    elapsed: Duration::from_secs(12),
                    outcome: StepOutcome::Failed("gate | failed".into()),
                },
            ],
            changes: Vec::new(),
            events: vec![
                RecordedEvent {
                    kind: "findings".into(),
                    step: Some(1),
                    data: json!([{"severity": "warning", "check": "EnvoyFilter", "subject": "x", "detail": "outside support"}]),
                },
                RecordedEvent {
                    kind: "shift-step".into(),
                    step: Some(2),
                    data: json!({"weight": 10, "observed": 0.095, "low": 0.07, "high": 0.12, "verdict": "pass", "total": 400, "errors": 0, "passed": true}),
                },
                RecordedEvent {
                    kind: "shift-step".into(),
                    step: Some(2),
                    data: json!({"weight": 25, "observed": 0.5, "low": 0.45, "high": 0.55, "verdict": "fail", "total": 400, "errors": 12, "passed": false}),
                },
            ],
        }
    }

    #[test]
    fn markdown_has_steps_prechecks_and_the_shift() {
        let journal = Journal {
            run_id: "r1".into(),
            runbook: "runbooks/m.rhai".into(),
            outcome: "failed".into(),
            ..Journal::default()
        };
        let text = markdown(&journal, &record(), Duration::from_secs(13));
        assert!(
            text.contains("| 2 | Shift traffic | failed: gate \\| failed | 12.0s |"),
            "{text}"
        );
        assert!(
            text.contains("| warning | EnvoyFilter | x | outside support |"),
            "{text}"
        );
        assert!(
            text.contains("| 10% | 9.5% | 7%–12% | pass | 400 | 0 | passed |"),
            "{text}"
        );
        assert!(
            text.contains("| 25% | 50% | 45%–55% | fail | 400 | 12 | stopped |"),
            "{text}"
        );
    }

    #[test]
    fn html_is_a_page_with_a_chart() {
        let journal = Journal {
            run_id: "r<1>".into(),
            outcome: "succeeded".into(),
            ..Journal::default()
        };
        let text = markdown(&journal, &record(), Duration::from_secs(1));
        let page = html(&journal, &record(), &text);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<title>meshshift run r&lt;1&gt;</title>"));
        assert_eq!(page.matches("<svg").count(), 1);
        assert!(page.contains("<td>Shift traffic</td>"), "{page}");
        assert!(page.matches("<title>observed").count() == 2);
    }
}
