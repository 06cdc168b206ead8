//! The gallery: every spec of `specs/` beside a `.expect` file is checked against its
//! fixtures (`fixtures/gallery/<assignment>/`) as `sockgrade check SPEC --against DIR
//! --expect FILE` checks them (the same discovery, grading and judgement, in process):
//! each correct solution scores full marks and each buggy one fails exactly the cases
//! its bug breaks. Which cases fail is not enough: a buggy solution failing the right
//! case for a wrong reason (a timeout instead of the missing header, say) would tell a
//! student nothing, so the reason of every failed case is snapshotted
//! (`tests/snapshots/gallery_<assignment>.snap`, times and ports redacted).

mod common;

use common::redacted;
use sockgrade::check::{self, Row};
use sockgrade::outcome::Status;
use sockgrade::plan::Plan;
use sockgrade::runner::{interpreter, Grading};
use sockgrade::sandbox::{Host, IsolationRequest};
use sockgrade::spec::Spec;
use std::path::Path;
use std::sync::Arc;

const GALLERY: [&str; 5] = ["echo-quit", "kv-store", "file-transfer", "http10", "chat"];

/// `check specs/<a>.toml --against fixtures/gallery/<a> --expect specs/<a>.expect`.
fn check(rt: &tokio::runtime::Runtime, host: &Arc<Host>, assignment: &str) -> Vec<Row> {
    let path = format!("specs/{assignment}.toml");
    let spec = Spec::load(Path::new(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let refs = check::discover_expect(
        Path::new(&format!("fixtures/gallery/{assignment}")),
        Path::new(&format!("specs/{assignment}.expect")),
        &spec,
    )
    .unwrap_or_else(|e| panic!("{assignment}: {e}"));
    let plan = Plan::new(&spec, &[], None).expect("a valid spec has cases");
    let grading = Grading::new(
        host.clone(),
        Arc::new(interpreter::resolve_spec(&spec)),
        path,
        plan,
        sockgrade::runner::default_jobs(),
    );
    rt.block_on(check::run(&grading, refs))
}

/// Each buggy solution's failed cases, each with its reason as a student reads it.
fn reasons(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        let failed: Vec<_> = (r.result.cases.iter())
            .filter(|c| !c.informational && c.status != Status::Passed)
            .collect();
        if failed.is_empty() {
            continue;
        }
        out.push_str(&format!("[{}]\n", r.reference.name));
        for c in failed {
            let reason = c.reason.as_deref().unwrap_or("(no reason)");
            out.push_str(&format!("{}: {reason}\n", c.name));
            if let Some(h) = &c.hint {
                out.push_str(&format!("  hint: {h}\n"));
            }
        }
        out.push('\n');
    }
    // How much of a send() fits in the buffers, or how much a server read before it
    // closed, is the kernel's accounting and the scheduler's: not part of the reason.
    // Nor is whether a send into a closed connection finds it closed or reset.
    let counts = regex::Regex::new(r"(got only|send failed after) \d+ (of|bytes)").unwrap();
    let gone = regex::Regex::new(
        r"(Broken pipe \(os error 32\)|Connection reset by peer \(os error 104\))",
    )
    .unwrap();
    let out = counts.replace_all(&out, "$1 [n] $2");
    gone.replace_all(&out, "[broken pipe or reset]")
        .into_owned()
}

#[test]
fn every_gallery_spec_tells_its_fixtures_apart_for_the_right_reasons() {
    let host = Arc::new(Host::detect(IsolationRequest::Auto).expect("a host to grade on"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // One after the other: each check already runs its cases in parallel.
    let mut wrong = Vec::new();
    for a in GALLERY {
        let rows = check(&rt, &host, a);
        if rows.iter().any(|r| r.wrong.is_some()) {
            wrong.push(format!("{a}:\n{}", check::table(&rows)));
            continue;
        }
        let name = format!("gallery_{a}");
        redacted(|| insta::assert_snapshot!(name, reasons(&rows)));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The command itself, as CI and an instructor run it, on one assignment (the in-process
/// test above runs the same functions on all of them).
#[test]
fn check_against_with_expect_on_the_command_line() {
    let out = common::sockgrade()
        .args(["check", "specs/echo-quit.toml", "--against"])
        .args([
            "fixtures/gallery/echo-quit",
            "--expect",
            "specs/echo-quit.expect",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("every submission met its expectation"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_gallery_spec_has_fixtures_and_expectations() {
    for a in GALLERY {
        assert!(
            std::path::Path::new(&format!("specs/{a}.expect")).is_file(),
            "{a}"
        );
        assert!(
            std::path::Path::new(&format!("fixtures/gallery/{a}/good")).is_dir(),
            "{a}"
        );
    }
}
