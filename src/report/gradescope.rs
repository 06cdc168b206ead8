//! Gradescope's `results.json`, as its autograder harness reads it from
//! `/autograder/results/results.json` (the "Autograder Specifications" of Gradescope's
//! autograder docs: top-level `score`, `execution_time`, `output`, formats,
//! `visibility`, `stdout_visibility`, `extra_data`, and `tests[]`).
//!
//! Choices, each for a reason:
//! - a test's `output` is what a student may see: it goes through the same filter as
//!   `sockgrade run --student` ([`crate::visibility::filter_case`]), so the two agree.
//!   A `hidden` case is never shown to students, so its output is the full report
//!   (instructors read it); the full failure of every case is also kept in the test's
//!   `extra_data`, which Gradescope stores but does not show;
//! - informational cases have no `score`/`max_score` (Gradescope then shows them as
//!   checks by `status` alone) and carry the tag "informational";
//! - a case that could not run ("error") is `failed` for Gradescope, which knows no
//!   third status; `extra_data.status` keeps "error";
//! - `stdout_visibility` is "hidden": run_autograder's stdout is for instructors
//!   (Gradescope's default, said explicitly).

use super::{plain, text};
use crate::outcome::{BuildResult, CaseResult, Status, SubmissionResult};
use crate::spec::Visibility;
use crate::visibility::filter_case;
use serde_json::{json, Map, Value};

pub fn render(r: &SubmissionResult) -> String {
    serde_json::to_string_pretty(&results(r)).expect("results are plain data") + "\n"
}

/// The results.json value.
pub fn results(r: &SubmissionResult) -> Value {
    // A failed build is a test of its own (no points: its cases carry them), first.
    let tests: Vec<Value> = (r.builds.iter())
        .filter(|b| b.status != Status::Passed)
        .map(|b| build_test(r, b))
        .chain(r.cases.iter().enumerate().map(|(i, c)| test(i, c)))
        .collect();
    let mut output = format!(
        "Graded by sockgrade {} (spec {}, isolation: {}).",
        env!("CARGO_PKG_VERSION"),
        r.spec,
        r.isolation
    );
    for note in &r.notes {
        output.push_str(&format!("\nNote: {note}"));
    }
    for b in &r.builds {
        output.push_str(&format!(
            "\nBuild ({}): {} ({:.1} s).",
            b.target,
            b.command.join(" "),
            b.duration_ms as f64 / 1000.0
        ));
    }
    json!({
        "score": r.score as f64,
        "execution_time": r.duration_ms.div_ceil(1000),
        "output": output,
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": r.visibility.as_str(),
        "stdout_visibility": "hidden",
        "extra_data": {
            "grader": "sockgrade",
            "version": env!("CARGO_PKG_VERSION"),
            "spec": r.spec,
            "max_score": r.max_score,
            "isolation": r.isolation,
        },
        "tests": tests,
    })
}

/// A side that did not build: the compiler's output once, visible to the student (it is
/// about their own code); the side's cases say they did not run.
fn build_test(r: &SubmissionResult, b: &BuildResult) -> Value {
    json!({
        "name": format!("build ({})", b.target),
        "name_format": "text",
        "status": "failed",
        "output": plain(&text::build_detail(r, b)),
        "output_format": "text",
        "tags": [b.target.as_str(), "build"],
        "visibility": "visible",
        "extra_data": {
            "target": b.target,
            "status": b.status,
            "command": b.command,
            "reason": b.reason,
            "duration_ms": b.duration_ms,
        },
    })
}

fn test(i: usize, c: &CaseResult) -> Value {
    let shown = if c.visibility == Visibility::Hidden {
        c.clone()
    } else {
        filter_case(c)
    };
    let output = if c.status == Status::Passed && shown.transcript.is_empty() {
        String::new()
    } else {
        plain(&text::case_detail(&shown, false, true))
    };
    let mut t = Map::new();
    t.insert("name".into(), json!(c.name));
    t.insert("name_format".into(), json!("text"));
    t.insert("number".into(), json!((i + 1).to_string()));
    if !c.informational {
        t.insert("score".into(), json!(c.score as f64));
        t.insert("max_score".into(), json!(c.max_score as f64));
    }
    t.insert(
        "status".into(),
        json!(if c.status == Status::Passed {
            "passed"
        } else {
            "failed"
        }),
    );
    t.insert("output".into(), json!(output));
    t.insert("output_format".into(), json!("text"));
    let mut tags = vec![c.target.as_str().to_string()];
    if c.informational {
        tags.push("informational".into());
    }
    t.insert("tags".into(), json!(tags));
    t.insert("visibility".into(), json!(c.visibility.as_str()));
    t.insert(
        "extra_data".into(),
        json!({
            "target": c.target,
            "status": c.status,
            "informational": c.informational,
            "reason": c.reason,
            "failure": c.failure,
            "exit": c.exit,
            "duration_ms": c.duration_ms,
        }),
    );
    Value::Object(t)
}
