//! The text report, for a terminal: a line per case with ✓/✗, the score, then for each
//! failure what was sent, what was expected, what came back, how the program ended, its
//! last stderr lines, and the hint. Colour comes from the `Style` the caller picks
//! (anstream strips it when stdout is not a terminal or NO_COLOR is set).

use crate::outcome::{CaseResult, Status, SubmissionResult};
use owo_colors::OwoColorize;
use std::fmt::Write;

const WIDTH: usize = 52;

pub fn render(r: &SubmissionResult, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {}  ·  {}  ·  isolation: {}", "sockgrade".bold(), r.spec, r.submission, r.isolation);
    for note in &r.notes {
        let _ = writeln!(out, "{} {note}", "note:".yellow().bold());
    }
    let _ = writeln!(out);
    let (graded, info): (Vec<&CaseResult>, Vec<&CaseResult>) = r.cases.iter().partition(|c| !c.informational);
    for c in &graded {
        let _ = writeln!(out, "  {} {:<WIDTH$} {:>2}/{:<2} {}", mark(c.status), c.name, c.score, c.max_score, c.target.dimmed());
    }
    if !info.is_empty() {
        let _ = writeln!(out, "\n  {}", "informational (not scored)".dimmed());
        for c in &info {
            let _ = writeln!(out, "  {} {:<WIDTH$}   –   {}", mark(c.status), c.name, c.target.dimmed());
        }
    }
    let total = format!("Score: {}/{}", r.score, r.max_score);
    let _ = writeln!(
        out,
        "\n{}  ({} passed, {} failed{})",
        if r.score == r.max_score { total.green().bold().to_string() } else { total.red().bold().to_string() },
        r.passed,
        r.failed,
        if r.errors > 0 { format!(", {} could not run", r.errors) } else { String::new() }
    );
    for c in r.cases.iter().filter(|c| c.status != Status::Passed || verbose) {
        let _ = writeln!(out);
        detail(&mut out, c, verbose);
    }
    out
}

fn mark(s: Status) -> String {
    match s {
        Status::Passed => "✓".green().to_string(),
        Status::Failed => "✗".red().to_string(),
        Status::Error => "!".yellow().to_string(),
    }
}

fn detail(out: &mut String, c: &CaseResult, verbose: bool) {
    let title = format!("── {} {} ({}{}) ", mark(c.status), c.name, c.target, if c.informational { ", informational" } else { "" });
    let _ = writeln!(out, "{}", title.bold());
    let label = |s: &str| format!("   {:<9}", s).dimmed().to_string();
    match (&c.failure, &c.reason) {
        (Some(f), reason) => {
            let at = if f.step == 0 { "at start-up".to_string() } else { format!("step {} (spec line {})", f.step, f.line) };
            let _ = writeln!(out, "{} {at}: {}", label("failed"), f.action);
            if let Some(sent) = &f.sent {
                let _ = writeln!(out, "{} {sent}", label("sent"));
            }
            let _ = writeln!(out, "{} {}", label("expected"), f.expected);
            let _ = writeln!(out, "{} {}", label("got"), f.got.yellow());
            // A limit hit replaces the step's reason: show it too.
            if let Some(reason) = reason.as_ref().filter(|r| !r.starts_with(&f.action)) {
                let _ = writeln!(out, "{} {}", label("because"), reason.red());
            }
        }
        (None, Some(reason)) => {
            let _ = writeln!(out, "{} {}", label(if c.status == Status::Error { "error" } else { "failed" }), reason.red());
        }
        (None, None) => {}
    }
    if let Some(exit) = &c.exit {
        let _ = writeln!(out, "{} {exit}", label("program"));
    }
    if c.status != Status::Passed && !c.stderr_tail.is_empty() {
        let _ = writeln!(out, "{} last lines:", label("stderr"));
        for l in &c.stderr_tail {
            let _ = writeln!(out, "     │ {l}");
        }
    }
    if c.stdout_bytes > 0 && (verbose || c.status != Status::Passed) && !c.stdout_tail.is_empty() {
        let _ = writeln!(out, "{} last lines:", label("stdout"));
        for l in &c.stdout_tail {
            let _ = writeln!(out, "     │ {l}");
        }
    }
    if let Some(h) = &c.hint {
        let _ = writeln!(out, "{} {}", label("hint").cyan().to_string(), h.cyan());
    }
    if verbose {
        let _ = writeln!(out, "{} ", label("transcript"));
        for e in &c.transcript {
            let v = serde_json::to_value(&e.kind).unwrap_or_default();
            let kind = v.get("event").and_then(|k| k.as_str()).unwrap_or("?").to_string();
            let rest: Vec<String> = v
                .as_object()
                .map(|o| o.iter().filter(|(k, _)| *k != "event").map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect())
                .unwrap_or_default();
            let _ = writeln!(out, "           {:>6} ms  {kind:<16} {}", e.at_ms, rest.join("  "));
        }
    }
}
