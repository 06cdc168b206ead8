//! GitHub Actions and GitHub Classroom.
//!
//! `--format github` prints, for the job log, the text report followed by workflow
//! commands (`::error title=...::message`) that GitHub turns into annotations on the
//! run: one per failed case (`::warning` for a failed informational case) and a
//! `::notice` with the score. When run inside Actions, the CLI also writes:
//! - [`summary`] (a Markdown table of cases, failures in collapsible sections) to the
//!   file named by `$GITHUB_STEP_SUMMARY`, which GitHub shows on the run's page;
//! - [`classroom_output`] to `$GITHUB_OUTPUT`: the step output `result`, the base64 JSON
//!   that GitHub Classroom's `autograding-grading-reporter` action reads from the
//!   environment variable `<RUNNER>_RESULTS` (see `examples/github-classroom/`).
//!
//! All functions here are pure; the CLI does the writing.

use super::{plain, text};
use crate::outcome::{CaseResult, Status, SubmissionResult};
use base64::Engine;
use serde_json::{json, Value};
use std::fmt::Write;

/// The job log: the text report, then the annotations.
pub fn render(r: &SubmissionResult) -> String {
    let mut out = plain(&text::render(r, false));
    out.push('\n');
    out.push_str(&annotations(r));
    out
}

/// Workflow commands, one a line.
pub fn annotations(r: &SubmissionResult) -> String {
    let mut out = String::new();
    // A failed build: one annotation (its cases did not run and get none of their own).
    for b in r.builds.iter().filter(|b| b.status != Status::Passed) {
        let title = format!("build ({}): {}", b.target, b.summary());
        // The reason carries the compiler's first error; its output is in the log above.
        let message = b.reason.clone().unwrap_or_default();
        let _ = writeln!(
            out,
            "::error title={}::{}",
            escape_property(&title),
            escape_data(&message)
        );
    }
    for c in (r.cases.iter())
        .filter(|c| c.status != Status::Passed)
        .filter(|c| r.not_run_because(c).is_none())
    {
        let level = if c.informational { "warning" } else { "error" };
        let points = if c.informational {
            "informational".to_string()
        } else {
            format!("{}/{} points", c.score, c.max_score)
        };
        let title = format!("{} ({}, {points})", c.name, c.target);
        let mut message = c
            .reason
            .clone()
            .unwrap_or_else(|| c.status.as_str().to_string());
        if let Some(h) = &c.hint {
            message.push_str(&format!("\nhint: {h}"));
        }
        let _ = writeln!(
            out,
            "::{level} title={}::{}",
            escape_property(&title),
            escape_data(&message)
        );
    }
    let total = match r.withheld {
        Some(n) if n > 0 => format!("score hidden ({n} cases not shown)"),
        _ => format!("{}/{} points", r.score, r.max_score),
    };
    let _ = writeln!(
        out,
        "::notice title={}::{}",
        escape_property("sockgrade score"),
        escape_data(&format!(
            "{total}: {} passed, {} failed, {} could not run",
            r.passed, r.failed, r.errors
        ))
    );
    out
}

/// The job summary in GitHub-flavoured Markdown.
pub fn summary(r: &SubmissionResult) -> String {
    let mut out = String::new();
    let score = match r.withheld {
        Some(n) if n > 0 => format!("score hidden ({n} cases not shown)"),
        _ => format!("{}/{} points", r.score, r.max_score),
    };
    let icon = if r.all_passed() { "✅" } else { "❌" };
    let _ = writeln!(out, "## {icon} sockgrade: {score}\n");
    let _ = writeln!(
        out,
        "`{}` graded with `{}` (isolation: {})\n",
        cell(&r.submission),
        cell(&r.spec),
        r.isolation
    );
    for b in &r.builds {
        let _ = writeln!(
            out,
            "{} build ({}): `{}` in {:.1} s{}\n",
            if b.status == Status::Passed {
                "✅"
            } else {
                "⚠️"
            },
            b.target,
            cell(&b.command.join(" ")),
            b.duration_ms as f64 / 1000.0,
            b.reason
                .as_deref()
                .map(|why| format!(": {}", cell(why)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "| | Case | Target | Points | Result |");
    let _ = writeln!(out, "|---|---|---|---:|---|");
    for c in &r.cases {
        let mark = match c.status {
            Status::Passed => "✅",
            Status::Failed => "❌",
            Status::Error => "⚠️",
        };
        let points = if c.informational {
            "info".to_string()
        } else {
            format!("{}/{}", c.score, c.max_score)
        };
        let result = match c.status {
            Status::Passed => "passed".to_string(),
            _ => cell(c.reason.as_deref().unwrap_or(c.status.as_str())),
        };
        let _ = writeln!(
            out,
            "| {mark} | {} | {} | {points} | {result} |",
            cell(&c.name),
            c.target
        );
    }
    for b in r.builds.iter().filter(|b| b.status != Status::Passed) {
        let _ = writeln!(
            out,
            "\n<details><summary>⚠️ {}</summary>\n\n```text\n{}```\n</details>",
            html_escape(&b.summary()),
            plain(&text::build_detail(r, b)).replace("```", "'''")
        );
    }
    for c in (r.cases.iter())
        .filter(|c| c.status != Status::Passed)
        .filter(|c| r.not_run_because(c).is_none())
    {
        let _ = writeln!(
            out,
            "\n<details><summary>{} {}</summary>\n\n```text\n{}```\n</details>",
            if c.informational { "ℹ️" } else { "❌" },
            html_escape(&c.name),
            plain(&text::case_detail(c, false, false)).replace("```", "'''")
        );
    }
    for note in &r.notes {
        let _ = writeln!(out, "\n> **Note:** {}", note);
    }
    out
}

/// GitHub Classroom's runner result (version 1 of the format that the
/// `autograding-*-grader` actions put in their `result` output): overall status, the
/// points available, and each scored case with its points. Informational cases are
/// left out: Classroom has no unscored tests, and its console table counts passed tests.
pub fn classroom(r: &SubmissionResult) -> Value {
    let graded: Vec<&CaseResult> = r.cases.iter().filter(|c| !c.informational).collect();
    let status = |s: Status| match s {
        Status::Passed => "pass",
        Status::Failed => "fail",
        Status::Error => "error",
    };
    let overall = if graded.iter().any(|c| c.status == Status::Failed) {
        "fail"
    } else if graded.iter().any(|c| c.status == Status::Error) {
        "error"
    } else {
        "pass"
    };
    let tests: Vec<Value> = graded
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "status": status(c.status),
                "score": c.score,
                "message": c.reason.clone().unwrap_or_default(),
                "line_no": c.failure.as_ref().map(|f| f.line).unwrap_or(0),
                "execution_time": format!("{:.2}s", c.duration_ms as f64 / 1000.0),
            })
        })
        .collect();
    json!({ "version": 1, "status": overall, "max_score": r.max_score, "tests": tests })
}

/// The line to append to `$GITHUB_OUTPUT`: `result=<base64 of the Classroom JSON>`.
pub fn classroom_output(r: &SubmissionResult) -> String {
    let json = serde_json::to_string(&classroom(r)).expect("plain data");
    format!(
        "result={}\n",
        base64::engine::general_purpose::STANDARD.encode(json)
    )
}

/// Workflow-command message data: `%`, CR and LF are escaped (GitHub's toolkit rules).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command property values (`title=`): also `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A Markdown table cell: one line, no bare `|`, HTML escaped.
fn cell(s: &str) -> String {
    html_escape(s)
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
