//! JUnit XML, for CI systems and test dashboards (GitLab, Jenkins, Azure, ...).
//!
//! One `<testsuite>` per submission, one `<testcase>` per case (classname: the target),
//! so a class of submissions is a `<testsuites>` of suites. A case the program failed is
//! a `<failure>` (the program did something wrong), a case that could not run is an
//! `<error>` (a grading problem): dashboards tell the two apart, and so should we. An
//! informational case that fails is `<skipped>`: it is not scored and must not turn a
//! build red. The failure's body is the text report's detail; the transcript goes to
//! `<system-out>` and the program's last stderr lines to `<system-err>`. A side's build
//! is a testcase `build` of its side (an `<error>` when it failed), and the cases it
//! kept from running are `<skipped>`: the build is the one error, not repeated per case.
//! Written with quick-junit, which escapes text and drops what XML cannot hold.

use super::{plain, text};
use crate::outcome::{BuildResult, CaseResult, Status, SubmissionResult};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

pub fn render(r: &SubmissionResult) -> String {
    report(std::slice::from_ref(r))
}

/// Several submissions (a bulk run) as one document, a testsuite each.
pub fn report(results: &[SubmissionResult]) -> String {
    let mut report = Report::new("sockgrade");
    for r in results {
        report.add_test_suite(suite(r));
    }
    report.to_string().expect("quick-junit writes to a String")
}

fn suite(r: &SubmissionResult) -> TestSuite {
    let mut suite = TestSuite::new(r.submission.as_str());
    suite.set_time(Duration::from_millis(r.duration_ms));
    suite.add_property(Property::new("spec", r.spec.as_str()));
    suite.add_property(Property::new("score", r.score.to_string()));
    suite.add_property(Property::new("max_score", r.max_score.to_string()));
    suite.add_property(Property::new("isolation", r.isolation.as_str()));
    for b in &r.builds {
        suite.add_test_case(build(r, b));
    }
    for c in &r.cases {
        let mut t = case(c);
        // Cases of a side that did not build did not run: skipped, the build the error.
        if let Some(b) = r.not_run_because(c) {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("not run: {}", b.summary()));
            t.status = s;
        }
        suite.add_test_case(t);
    }
    suite
}

/// A side's build: a testcase `build` of its side, an `<error>` when it did not build
/// (its message the compiler's first error, its body the output).
fn build(r: &SubmissionResult, b: &BuildResult) -> TestCase {
    let status = match b.status {
        Status::Passed => TestCaseStatus::success(),
        _ => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_type("build");
            s.set_message(b.reason.clone().unwrap_or_else(|| b.summary()));
            s.set_description(plain(&text::build_detail(r, b)));
            s
        }
    };
    let mut t = TestCase::new("build", status);
    t.set_classname(b.target.as_str());
    t.set_time(Duration::from_millis(b.duration_ms));
    t.add_property(Property::new("command", b.command.join(" ")));
    t
}

fn case(c: &CaseResult) -> TestCase {
    let message = c
        .reason
        .clone()
        .unwrap_or_else(|| c.status.as_str().to_string());
    let mut status = match (c.status, c.informational) {
        (Status::Passed, _) => TestCaseStatus::success(),
        (_, true) => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("informational (not scored): {message}"));
            s
        }
        (Status::Failed, false) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("failed");
            s
        }
        (Status::Error, false) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_type("error");
            s
        }
    };
    if c.status != Status::Passed && !c.informational {
        status.set_message(message);
        status.set_description(plain(&text::case_detail(c, false, false)));
    }
    let mut t = TestCase::new(c.name.as_str(), status);
    t.set_classname(c.target.as_str());
    t.set_time(Duration::from_millis(c.duration_ms));
    t.add_property(Property::new(
        "points",
        format!("{}/{}", c.score, c.max_score),
    ));
    t.add_property(Property::new("visibility", c.visibility.as_str()));
    if !c.transcript.is_empty() || !c.stdout_tail.is_empty() {
        let mut out = text::transcript_lines(c);
        if !c.stdout_tail.is_empty() {
            out.push_str("stdout, last lines:\n");
            for l in &c.stdout_tail {
                out.push_str(&format!("  {l}\n"));
            }
        }
        t.set_system_out(out);
    }
    if !c.stderr_tail.is_empty() {
        t.set_system_err(c.stderr_tail.join("\n") + "\n");
    }
    t
}
