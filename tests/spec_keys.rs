//! The per-case inputs (`env`, `stdin`, `[files]` copied `from` beside the spec) and the
//! stream and file checks (`expect_bytes` with `sha256` / `at_least`, `expect_file` with
//! `hex` / `sha256`, the true byte count of a flood), each both ways: one client uses
//! each as the spec says and passes, one misses each and fails for that reason
//! (tests/specs/spec-keys.toml, fixtures/spec_keys/).

mod common;
use common::{assert_verdicts, grade_json, redacted};

const SPEC: &str = "tests/specs/spec-keys.toml";

const CASES: [&str; 8] = [
    "per-case env",
    "per-case stdin",
    "a file copied from beside the spec",
    "expect_bytes with sha256",
    "expect_bytes with at_least",
    "the true byte count of a flood",
    "expect_file with hex",
    "expect_file with sha256",
];

#[test]
fn a_client_that_uses_every_input_passes_every_check() {
    let report = grade_json(SPEC, "fixtures/spec_keys/good", &[]);
    assert_verdicts(&report, &[]);
}

#[test]
fn a_client_that_misses_each_input_fails_each_check_for_its_reason() {
    let report = grade_json(SPEC, "fixtures/spec_keys/wrong", &[]);
    assert_verdicts(&report, &CASES);
    let reasons: Vec<String> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["name"].as_str().unwrap(),
                c["reason"].as_str().unwrap()
            )
        })
        .collect();
    // The flood's count is what arrived (3.75 MiB), not what the grader kept.
    assert!(
        reasons[5].contains("received 3932160 bytes, ending with"),
        "{}",
        reasons[5]
    );
    redacted(|| insta::assert_snapshot!("spec_keys_failures", reasons.join("\n")));
}
