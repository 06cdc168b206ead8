//! Every report format, fed by real grading runs of the fixtures (real sockets, no
//! mocks), checked field by field and, where a real consumer exists, by that consumer:
//! Python's junitparser for JUnit, the Classroom reporter's decoding for GitHub.

mod common;

use common::{grade_in_process as grade, python_has, redacted};
use serde_json::Value;
use sockgrade::outcome::{Status, SubmissionResult};
use sockgrade::report::{github, gradescope, junit, plain, text};
use sockgrade::visibility::{filter_case, student_view, Moment};
use std::sync::OnceLock;

fn good() -> &'static SubmissionResult {
    static R: OnceLock<SubmissionResult> = OnceLock::new();
    R.get_or_init(|| grade("specs/tcp-basics.toml", "fixtures/good", &[]))
}

/// A server that resets instead of closing: fails one graded case (and the informational one).
fn rst_on_close() -> &'static SubmissionResult {
    static R: OnceLock<SubmissionResult> = OnceLock::new();
    let server_cases = [
        "accepts a connection",
        "replies to a message",
        "closes after the client closes",
        "exits on Ctrl-C and frees the port",
        "serves two clients at the same time",
    ];
    R.get_or_init(|| {
        grade(
            "specs/tcp-basics.toml",
            "fixtures/server_rst_on_close",
            &server_cases,
        )
    })
}

/// The visibility spec on the spinning server: fails a visible case (shown in part), a
/// hidden one and an after_due_date one.
fn hidden_cases() -> &'static SubmissionResult {
    static R: OnceLock<SubmissionResult> = OnceLock::new();
    R.get_or_init(|| {
        grade(
            "tests/specs/visibility.toml",
            "fixtures/server_no_empty_recv_check",
            &[],
        )
    })
}

/// A submission with no server file: its cases could not run ("error").
fn nothing_submitted() -> &'static SubmissionResult {
    static R: OnceLock<SubmissionResult> = OnceLock::new();
    R.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let r = grade(
            "tests/specs/visibility.toml",
            dir.path().to_str().unwrap(),
            &["replies to a message", "closes after the client closes"],
        );
        SubmissionResult {
            submission: "empty-submission".into(),
            ..r
        }
    })
}

fn test_named<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no test {name:?}"))
}

// ── Gradescope ──────────────────────────────────────────────────────────

#[test]
fn gradescope_results_of_a_correct_submission() {
    let r = good();
    let v = gradescope::results(r);
    assert_eq!(v["score"], 22.0);
    assert_eq!(v["stdout_visibility"], "hidden");
    assert_eq!(v["visibility"], "visible");
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), r.cases.len());
    for (i, t) in tests.iter().enumerate() {
        assert_eq!(t["number"], (i + 1).to_string());
        assert_eq!(t["output_format"], "text");
        assert!(t["tags"]
            .as_array()
            .unwrap()
            .contains(&Value::from(r.cases[i].target.as_str())));
    }
    // Informational: no score at all, a status and a tag.
    let info = test_named(&v, "serves two clients at the same time");
    assert!(info.get("score").is_none() && info.get("max_score").is_none());
    assert_eq!(info["status"], "failed");
    assert!(info["tags"]
        .as_array()
        .unwrap()
        .contains(&Value::from("informational")));
    redacted(|| insta::assert_snapshot!("gradescope_good", gradescope::render(r)));
}

#[test]
fn gradescope_output_shows_what_the_spec_allows() {
    let v = gradescope::results(hidden_cases());
    // show = ["step", "sent", "hint"]: the step and the hint, not what came back.
    let partial = test_named(&v, "closes after the client closes");
    let out = partial["output"].as_str().unwrap();
    assert_eq!(partial["visibility"], "visible");
    assert!(out.contains("step 4") && out.contains("hint"), "{out}");
    assert!(
        !out.contains("got ") && !out.contains("stayed open") && !out.contains("stdout"),
        "{out}"
    );
    // ... while extra_data (stored, never shown) keeps the whole failure.
    assert!(partial["extra_data"]["failure"]["got"]
        .as_str()
        .unwrap()
        .contains("stayed open"));
    // A hidden case is seen by instructors only: its output is complete.
    let hidden = test_named(&v, "does not busy-loop after the client closes");
    assert_eq!(hidden["visibility"], "hidden");
    assert!(hidden["output"].as_str().unwrap().contains("busy loop"));
    assert_eq!(
        test_named(&v, "serves the next client after the first leaves")["visibility"],
        "after_due_date"
    );
    assert_eq!(
        test_named(&v, "exits on Ctrl-C and frees the port")["visibility"],
        "after_published"
    );
}

#[test]
fn gradescope_marks_a_case_that_could_not_run_as_failed() {
    let v = gradescope::results(nothing_submitted());
    for t in v["tests"].as_array().unwrap() {
        assert_eq!(t["status"], "failed");
        assert_eq!(t["score"], 0.0);
        assert_eq!(t["extra_data"]["status"], "error");
        assert!(
            t["output"]
                .as_str()
                .unwrap()
                .contains("no file matches tcp_server.py"),
            "{t}"
        );
    }
}

// ── The student's view ──────────────────────────────────────────────────

#[test]
fn student_view_is_what_gradescope_shows_a_student() {
    let full = hidden_cases();
    let gs = gradescope::results(full);
    for (at, shown) in [
        (Moment::Open, vec!["visible"]),
        (Moment::AfterDueDate, vec!["visible", "after_due_date"]),
        (
            Moment::Published,
            vec!["visible", "after_due_date", "after_published"],
        ),
    ] {
        let view = student_view(full, at);
        let gs_names: Vec<&str> = gs["tests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| shown.contains(&t["visibility"].as_str().unwrap()))
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        let view_names: Vec<&str> = view.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(view_names, gs_names, "at {at:?}");
        assert_eq!(view.withheld, Some(full.cases.len() - view.cases.len()));
        // Every line Gradescope shows for a shown test, the student's text report shows too.
        let student_text = plain(&text::render(&view, false));
        for name in &gs_names {
            for line in test_named(&gs, name)["output"].as_str().unwrap().lines() {
                assert!(
                    student_text.contains(line),
                    "{line:?} missing from the student's view at {at:?}:\n{student_text}"
                );
            }
        }
    }
    let open = student_view(full, Moment::Open);
    let out = plain(&text::render(&open, false));
    assert!(
        out.contains("Score: hidden until every test is shown"),
        "{out}"
    );
    assert!(!out.contains("busy-loop"), "a hidden case leaked: {out}");
    redacted(|| insta::assert_snapshot!("student_view_open", out));
}

#[test]
fn filtering_rebuilds_the_reason_from_what_is_shown() {
    let c = hidden_cases()
        .cases
        .iter()
        .find(|c| c.name == "closes after the client closes")
        .unwrap();
    assert!(c.reason.as_ref().unwrap().contains("stayed open"));
    let f = filter_case(c);
    let reason = f.reason.unwrap();
    assert!(
        reason.starts_with("wait up to 2s") && !reason.contains("stayed open"),
        "{reason}"
    );
    assert!(f.exit.is_none() && f.stdout_tail.is_empty() && f.transcript.is_empty());
    assert!(f.hint.is_some());
}

// ── JUnit ───────────────────────────────────────────────────────────────

#[test]
fn junit_is_read_by_junitparser() {
    // stderr holds the traceback of wherever Ctrl-C landed: not stable, not snapshotted.
    let snapshot = regex::Regex::new(r"(?s)<system-err>.*?</system-err>")
        .unwrap()
        .replace_all(
            &junit::render(rst_on_close()),
            "<system-err>[stderr]</system-err>",
        )
        .into_owned();
    // Nor is whether the server printed "Connect from" before a case that passed at its
    // accept() stopped it: the print races the grader's SIGTERM.
    let snapshot = regex::Regex::new(r"stdout, last lines:\n(  .*\n)+")
        .unwrap()
        .replace_all(&snapshot, "[stdout, if any]\n")
        .into_owned();
    redacted(|| insta::assert_snapshot!("junit_rst_on_close", snapshot));
    // junitparser reads the whole document: both suites, unredacted.
    let xml = junit::report(&[rst_on_close().clone(), nothing_submitted().clone()]);
    if !python_has("junitparser") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.xml");
    std::fs::write(&path, &xml).unwrap();
    let script = r#"
import sys, json
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
out = []
for suite in xml:
    cases = []
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        cases.append({"name": case.name, "classname": case.classname, "result": kinds,
                      "message": case.result[0].message if case.result else None,
                      "system_out": case.system_out})
    out.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
                "errors": suite.errors, "skipped": suite.skipped, "cases": cases})
print(json.dumps(out))
"#;
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "junitparser: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let suites: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(suites.as_array().map(Vec::len), Some(2), "{xml}");
    let (rst, empty) = (&suites[0], &suites[1]);
    assert_eq!(rst["name"], "fixtures/server_rst_on_close");
    assert_eq!(
        (
            rst["tests"].as_u64(),
            rst["failures"].as_u64(),
            rst["errors"].as_u64(),
            rst["skipped"].as_u64()
        ),
        (Some(5), Some(1), Some(0), Some(1))
    );
    let closes = rst["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "closes after the client closes")
        .unwrap();
    assert_eq!(closes["result"], serde_json::json!(["Failure"]));
    assert_eq!(closes["classname"], "server");
    assert!(closes["message"].as_str().unwrap().contains("reset (RST)"));
    assert!(
        closes["system_out"]
            .as_str()
            .unwrap()
            .contains("peer_closed"),
        "the transcript is in system-out"
    );
    let info = rst["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "serves two clients at the same time")
        .unwrap();
    assert_eq!(info["result"], serde_json::json!(["Skipped"]));
    // Could not run: <error>, not <failure>.
    assert_eq!(empty["name"], "empty-submission");
    assert_eq!(
        (
            empty["tests"].as_u64(),
            empty["failures"].as_u64(),
            empty["errors"].as_u64(),
            empty["skipped"].as_u64()
        ),
        (Some(2), Some(0), Some(2), Some(0))
    );
    assert!(empty["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["result"] == serde_json::json!(["Error"])));
}

// ── GitHub ──────────────────────────────────────────────────────────────

#[test]
fn github_annotations_and_summary() {
    let r = rst_on_close();
    let ann = github::annotations(r);
    let lines: Vec<&str> = ann.lines().collect();
    assert_eq!(lines.len(), 3, "{ann}");
    assert!(
        lines[0]
            .starts_with("::error title=closes after the client closes (server%2C 0/2 points)::"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("%0Ahint: "),
        "the hint on its own line: {}",
        lines[0]
    );
    assert!(lines[1].starts_with("::warning title=serves two clients at the same time"));
    assert!(
        lines[2].starts_with("::notice title=sockgrade score::4/6 points"),
        "{}",
        lines[2]
    );
    assert!(lines.iter().all(|l| !l.contains('\n') && !l.contains('\r')));
    let summary = github::summary(r);
    assert!(
        summary.contains("| ❌ | closes after the client closes | server | 0/2 |"),
        "{summary}"
    );
    assert!(summary.contains("<details><summary>❌ closes after the client closes</summary>"));
    redacted(|| insta::assert_snapshot!("github_summary_rst_on_close", summary));
}

#[test]
fn github_classroom_result_decodes_like_the_reporter() {
    use base64::Engine;
    let r = rst_on_close();
    let line = github::classroom_output(r);
    let b64 = line.strip_prefix("result=").unwrap().trim_end();
    // autograding-grading-reporter: Buffer.from(env[`${RUNNER}_RESULTS`], "base64") → JSON.
    let json: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["status"], "fail");
    assert_eq!(json["max_score"], 6);
    let tests = json["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 4, "informational cases are left out");
    // NotifyClassroom sums the tests' scores against max_score.
    let total: u64 = tests.iter().map(|t| t["score"].as_u64().unwrap()).sum();
    assert_eq!(total, r.score as u64);
    assert!(tests
        .iter()
        .all(|t| ["pass", "fail", "error"].contains(&t["status"].as_str().unwrap())));
    let good = github::classroom(good());
    assert_eq!(good["status"], "pass");
    assert_eq!(good["max_score"], 22);
}

#[test]
fn every_format_agrees_on_the_score() {
    let r = rst_on_close();
    assert_eq!(
        r.cases
            .iter()
            .filter(|c| c.status == Status::Failed && !c.informational)
            .count(),
        1
    );
    assert_eq!(gradescope::results(r)["score"], r.score as f64);
    assert!(junit::render(r).contains(&format!(r#"<property name="score" value="{}"/>"#, r.score)));
    assert!(github::summary(r).contains(&format!("{}/{} points", r.score, r.max_score)));
    assert!(plain(&text::render(r, false)).contains(&format!("Score: {}/{}", r.score, r.max_score)));
}

/// Notes about the machine (a cgroup mount option, a missing `nft`) are the operator's:
/// whatever the machine says, no student-facing report carries them, so reports and
/// snapshots are the same on a tuned machine and a fresh one.
#[test]
fn machine_notes_never_reach_a_report() {
    let note = "each case spends ~10 ms moving into its cgroup on this machine; `mount -o remount,favordynmods /sys/fs/cgroup` (as root) makes that ~0.1 ms";
    let r = common::grade_in_process_on(
        "specs/tcp-basics.toml",
        "fixtures/good",
        &["accepts a connection"],
        |host| host.notes.push(note.to_string()),
    );
    let student = student_view(&r, Moment::Open);
    for text in [
        sockgrade::report::json::render(&r),
        sockgrade::report::text::render(&r, true),
        sockgrade::report::gradescope::render(&r),
        sockgrade::report::github::render(&r),
        sockgrade::report::junit::render(&r),
        sockgrade::report::text::render(&student, false),
    ] {
        assert!(!text.contains("favordynmods"), "{text}");
    }
}
