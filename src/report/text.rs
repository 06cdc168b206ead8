//! The text report, for a terminal: a line per case with ✓/✗, the score, then for each
//! failure what was sent, what was expected, what came back, how the program ended, its
//! last stderr lines, and the hint. Colour comes from the `Style` the caller picks
//! (anstream strips it when stdout is not a terminal or NO_COLOR is set).

use crate::outcome::{BuildResult, CaseResult, Status, SubmissionResult};
use owo_colors::OwoColorize;
use std::fmt::Write;

const WIDTH: usize = 52;

pub fn render(r: &SubmissionResult, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}  ·  {}  ·  isolation: {}",
        "sockgrade".bold(),
        r.spec,
        r.submission,
        r.isolation
    );
    for note in &r.notes {
        let _ = writeln!(out, "{} {note}", "note:".yellow().bold());
    }
    let _ = writeln!(out);
    for b in &r.builds {
        let _ = writeln!(out, "{}", build_line(b));
    }
    if !r.builds.is_empty() {
        let _ = writeln!(out);
    }
    let (graded, info): (Vec<&CaseResult>, Vec<&CaseResult>) =
        r.cases.iter().partition(|c| !c.informational);
    let line = |c: &CaseResult| match r.not_run_because(c) {
        Some(_) => format!("{}  {}", case_line(c), "not run".dimmed()),
        None => case_line(c),
    };
    for c in &graded {
        let _ = writeln!(out, "{}", line(c));
    }
    if !info.is_empty() {
        let _ = writeln!(out, "\n  {}", "informational (not scored)".dimmed());
        for c in &info {
            let _ = writeln!(out, "{}", line(c));
        }
    }
    if r.cases.iter().any(|c| c.shared_process) {
        let _ = writeln!(
            out,
            "\n  {}",
            "shared process: the case ran on one server process started for several cases, one after another (the spec's share_process)".dimmed()
        );
    }
    let counts = format!(
        "{} passed, {} failed{}",
        r.passed,
        r.failed,
        if r.errors > 0 {
            format!(", {} could not run", r.errors)
        } else {
            String::new()
        }
    );
    match r.withheld {
        // A student's view with cases withheld: Gradescope hides the total then.
        Some(n) if n > 0 => {
            let _ = writeln!(
                out,
                "\n{}  ({n} more not shown yet; shown here: {}/{}, {counts})",
                "Score: hidden until every test is shown".bold(),
                r.score,
                r.max_score
            );
        }
        _ => {
            let total = format!("Score: {}/{}", r.score, r.max_score);
            let _ = writeln!(
                out,
                "\n{}  ({counts})",
                if r.score == r.max_score {
                    total.green().bold().to_string()
                } else {
                    total.red().bold().to_string()
                }
            );
        }
    }
    // In a student's view the transcript is already filtered by the spec's `show`:
    // show what is left, as the Gradescope report does.
    let transcripts = verbose || r.withheld.is_some();
    for b in r.builds.iter().filter(|b| b.status != Status::Passed) {
        let _ = writeln!(out);
        out.push_str(&build_detail(r, b));
    }
    for c in r
        .cases
        .iter()
        .filter(|c| c.status != Status::Passed || verbose)
        .filter(|c| r.not_run_because(c).is_none() && c.not_run.is_none())
    {
        let _ = writeln!(out);
        let title = format!(
            "── {} {} ({}{}) ",
            mark(c.status),
            c.name,
            c.target,
            if c.informational {
                ", informational"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "{}", title.bold());
        out.push_str(&case_detail(c, verbose, transcripts));
    }
    out.push_str(&not_run_once(r));
    out
}

/// The cases not run because their side's program could not start, said once per side
/// (the case that found out is shown above, with the whole story).
fn not_run_once(r: &SubmissionResult) -> String {
    let mut out = String::new();
    let mut sides: Vec<(&str, crate::spec::Target)> = r
        .cases
        .iter()
        .filter_map(|c| c.not_run.as_deref().map(|l| (l, c.target)))
        .collect();
    sides.sort();
    sides.dedup();
    for (leader, target) in sides {
        let cases: Vec<&CaseResult> = r
            .cases
            .iter()
            .filter(|c| c.not_run.as_deref() == Some(leader) && c.target == target)
            .collect();
        let status = cases.first().map_or(Status::Failed, |c| c.status);
        let names: Vec<String> = cases
            .iter()
            .map(|c| format!("\u{201c}{}\u{201d}", c.name))
            .collect();
        let title = format!(
            "── {} {} other {} case{} not run ",
            mark(status),
            names.len(),
            target,
            if names.len() == 1 { "" } else { "s" }
        );
        let _ = writeln!(out, "\n{}", title.bold());
        let _ = writeln!(
            out,
            "   The {target} could not start in case \u{201c}{leader}\u{201d} (above), so these cases could not run either: {}.",
            names.join(", ")
        );
        let _ = writeln!(
            out,
            "   {} fix the start-up first: every {target} case starts the program the same way.",
            "hint:".cyan().bold()
        );
    }
    out
}

/// A build's line, above the cases: its mark, side, command and time.
pub fn build_line(b: &BuildResult) -> String {
    format!(
        "  {} {:<WIDTH$} {:>5.1} s {}",
        mark(b.status),
        cut(&format!("build: {}", b.command.join(" ")), WIDTH),
        b.duration_ms as f64 / 1000.0,
        b.target.dimmed()
    )
}

/// `s` cut to `width` characters, with "…" where it was cut.
fn cut(s: &str, width: usize) -> String {
    match s.char_indices().nth(width.saturating_sub(1)) {
        Some((i, _)) if s.chars().count() > width => format!("{}…", &s[..i]),
        _ => s.to_string(),
    }
}

/// A failed build, shown once for its side: why, what the compiler said (its first error
/// first), the cases that did not run because of it, and a hint.
pub fn build_detail(r: &SubmissionResult, b: &BuildResult) -> String {
    let mut out = String::new();
    let label = |s: &str| format!("   {:<9}", s).dimmed().to_string();
    let title = format!("── {} {} ", mark(b.status), b.summary());
    let _ = writeln!(out, "{}", title.bold());
    if let Some(reason) = &b.reason {
        let _ = writeln!(out, "{} {}", label("error"), reason.red());
    }
    if !b.output.is_empty() {
        let _ = writeln!(out, "{} the build printed:", label("output"));
        for l in &b.output {
            let _ = writeln!(out, "     │ {l}");
        }
    }
    let not_run: Vec<String> = r
        .cases
        .iter()
        .filter(|c| r.not_run_because(c) == Some(b))
        .map(|c| c.name.clone())
        .collect();
    if !not_run.is_empty() {
        let _ = writeln!(
            out,
            "{} {} case{} of the {}: {}",
            label("not run"),
            not_run.len(),
            if not_run.len() == 1 { "" } else { "s" },
            b.target,
            not_run.join(", ")
        );
    }
    let hint = format!(
        "Fix the first error above, then build it as the grader does: {}",
        b.command.join(" ")
    );
    let _ = writeln!(out, "{} {}", label("hint").cyan(), hint.cyan());
    out
}

/// A case's line of the table: its mark, name, points (a dash when informational) and
/// side. Also what a terminal shows live as each case finishes (`run`).
pub fn case_line(c: &CaseResult) -> String {
    let shared = if c.not_run.is_some() {
        format!("  {}", "not run: did not start".dimmed())
    } else if c.shared_process {
        format!("  {}", "shared process".dimmed())
    } else {
        String::new()
    };
    if c.informational {
        format!(
            "  {} {:<WIDTH$}   –   {}{shared}",
            mark(c.status),
            c.name,
            c.target.dimmed()
        )
    } else {
        format!(
            "  {} {:<WIDTH$} {:>2}/{:<2} {}{shared}",
            mark(c.status),
            c.name,
            c.score,
            c.max_score,
            c.target.dimmed()
        )
    }
}

fn mark(s: Status) -> String {
    match s {
        Status::Passed => "✓".green().to_string(),
        Status::Failed => "✗".red().to_string(),
        Status::Error => "!".yellow().to_string(),
    }
}

/// What went wrong in one case, without its title line: the lines under a case in the
/// text report, and the `output` of a test in the Gradescope report. Parts that a
/// student's view removed (see [`crate::visibility`]) are left out, not shown empty.
pub fn case_detail(c: &CaseResult, verbose: bool, transcript: bool) -> String {
    let mut out = String::new();
    let out = &mut out;
    let label = |s: &str| format!("   {:<9}", s).dimmed().to_string();
    match (&c.failure, &c.reason) {
        (Some(f), reason) => {
            if !f.action.is_empty() {
                let at = if f.step == 0 {
                    "at start-up".to_string()
                } else {
                    format!("step {} (spec line {})", f.step, f.line)
                };
                let _ = writeln!(out, "{} {at}: {}", label("failed"), f.action);
            }
            if let Some(sent) = &f.sent {
                let _ = writeln!(out, "{} {sent}", label("sent"));
            }
            if !f.expected.is_empty() {
                let _ = writeln!(out, "{} {}", label("expected"), f.expected);
            }
            if !f.got.is_empty() {
                let _ = writeln!(out, "{} {}", label("got"), f.got.yellow());
            }
            // A limit hit replaces the step's reason: show it too (but not a reason a
            // student's view rebuilt from the parts shown above).
            let rebuilt = |r: &str| {
                f.action.is_empty() && (r.starts_with("expected ") || r.starts_with("got "))
            };
            if let Some(reason) = reason
                .as_ref()
                .filter(|r| (!r.starts_with(&f.action) || f.action.is_empty()) && !rebuilt(r))
            {
                let _ = writeln!(out, "{} {}", label("because"), reason.red());
            }
            if f.action.is_empty()
                && f.sent.is_none()
                && f.expected.is_empty()
                && f.got.is_empty()
                && reason.is_none()
            {
                let _ = writeln!(
                    out,
                    "{} the details of this check are not shown",
                    label("failed")
                );
            }
        }
        (None, Some(reason)) => {
            let _ = writeln!(
                out,
                "{} {}",
                label(if c.status == Status::Error {
                    "error"
                } else {
                    "failed"
                }),
                reason.red()
            );
        }
        (None, None) => {}
    }
    if let Some(exit) = &c.exit {
        let _ = writeln!(out, "{} {exit}", label("program"));
    }
    if c.shared_process {
        let _ = writeln!(
            out,
            "{} shared with the other server cases of the spec (share_process): a fault left by an earlier case may show here",
            label("process")
        );
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
        let _ = writeln!(out, "{} {}", label("hint").cyan(), h.cyan());
    }
    if transcript && !c.transcript.is_empty() {
        let _ = writeln!(out, "{} ", label("transcript"));
        for line in transcript_lines(c).lines() {
            let _ = writeln!(out, "           {line}");
        }
    }
    std::mem::take(out)
}

/// The transcript, an event a line: `   452 ms  sent             bytes=6  conn=main  ...`.
pub fn transcript_lines(c: &CaseResult) -> String {
    let mut out = String::new();
    for e in &c.transcript {
        let v = serde_json::to_value(&e.kind).unwrap_or_default();
        let kind = v
            .get("event")
            .and_then(|k| k.as_str())
            .unwrap_or("?")
            .to_string();
        let rest: Vec<String> = v
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| *k != "event")
                    .map(|(k, v)| {
                        format!(
                            "{k}={}",
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(out, "{:>6} ms  {kind:<16} {}", e.at_ms, rest.join("  "));
    }
    out
}
