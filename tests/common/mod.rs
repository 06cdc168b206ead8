//! Helpers shared by the integration tests: run the real binary, read its JSON.
#![allow(dead_code)]

use assert_cmd::Command;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sockgrade() -> Command {
    let mut c = Command::cargo_bin("sockgrade").unwrap();
    c.current_dir(root()).env("NO_COLOR", "1");
    c
}

/// Grades one fixture for one target with the shipped spec; returns the JSON report.
pub fn grade(fixture: &str, target: &str, extra: &[&str]) -> serde_json::Value {
    let out = sockgrade()
        .args([
            "run",
            "specs/tcp-basics.toml",
            &format!("fixtures/{fixture}"),
            "--format",
            "json",
            "--target",
            target,
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Case name → status ("passed", "failed", "error").
pub fn statuses(report: &serde_json::Value) -> BTreeMap<String, String> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts that exactly the `failing` cases failed and every other case passed, with
/// the reason of each unexpected verdict in the message.
pub fn assert_verdicts(report: &serde_json::Value, failing: &[&str]) {
    let got = statuses(report);
    for f in failing {
        assert!(got.contains_key(*f), "no case named {f:?} in {got:?}");
    }
    let mut wrong = Vec::new();
    for c in report["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let want = if failing.contains(&name) {
            "failed"
        } else {
            "passed"
        };
        if c["status"] != want {
            wrong.push(format!(
                "{name}: want {want}, got {} ({})",
                c["status"], c["reason"]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected verdicts:\n{}",
        wrong.join("\n")
    );
}
