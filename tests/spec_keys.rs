//! The per-case inputs (`env`, `stdin`, `[files]` copied `from` beside the spec), the
//! stream and file checks (`expect_bytes` with `sha256` / `at_least`, `expect_file` with
//! `hex` / `sha256`, the true byte count of a flood), `not_contains` on a connection,
//! the `pause` step, a matcher's `label`, and `[limits] send_buffer` with a reference
//! that reads through a small `recv_buffer`, each both ways: one client uses each as the
//! spec says and passes, one misses each and fails for that reason
//! (tests/specs/spec-keys.toml, fixtures/spec_keys/).

mod common;
use common::{assert_verdicts, grade_json, redacted};

const SPEC: &str = "tests/specs/spec-keys.toml";

const CASES: [&str; 12] = [
    "per-case env",
    "per-case stdin",
    "a file copied from beside the spec",
    "expect_bytes with sha256",
    "expect_bytes with at_least",
    "the true byte count of a flood",
    "expect_file with hex",
    "expect_file with sha256",
    "not_contains on a connection",
    "a pause between two sends",
    "a regex shown by its label",
    "send() to a slow reader under send_buffer",
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
    // `not_contains` fails on the text it must not see, not on a timeout: the client
    // sent DATA before the welcome.
    assert!(
        reasons[8].ends_with(r#"expected no "DATA", got received "DATA\n""#),
        "{}",
        reasons[8]
    );
    // The pause cut the line: one recv() got only its first piece.
    assert!(
        reasons[9].contains(r#"got received "got hel", then"#),
        "{}",
        reasons[9]
    );
    // The student reads the label, never the regex.
    assert!(
        reasons[10].contains(r#"expected a greeting with a number, like "HELLO 42", got"#)
            && !reasons[10].contains("[0-9]"),
        "{}",
        reasons[10]
    );
    // send() took what fits in a 64 KiB send buffer, far from 1 MiB.
    let short = regex::Regex::new(r"got only (\d+) of 1048576 bytes").unwrap();
    let sent: u64 = short
        .captures(&reasons[11])
        .unwrap_or_else(|| panic!("{}", reasons[11]))[1]
        .parse()
        .unwrap();
    assert!(sent <= 64 * 1024, "{}", reasons[11]);
    // How much fits in the buffer is the kernel's accounting: not part of the snapshot.
    let reasons: Vec<String> = reasons
        .iter()
        .map(|r| {
            short
                .replace(r, "got only [n] of 1048576 bytes")
                .into_owned()
        })
        .collect();
    redacted(|| insta::assert_snapshot!("spec_keys_failures", reasons.join("\n")));
}

/// The other way for `send_buffer`: the same client and case in a spec without it. A
/// send() of 1 MiB then goes whole (the send buffer grows to the machine's
/// `net.ipv4.tcp_wmem` maximum, 4 MiB by default), so the cap is what catches it.
#[test]
fn without_send_buffer_a_send_of_1_mib_goes_whole() {
    let wmem = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem").unwrap_or_default();
    let max: u64 = wmem
        .split_whitespace()
        .nth(2)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if max < 4 << 20 {
        eprintln!("SKIPPED: net.ipv4.tcp_wmem is {wmem:?} here, below the default 4 MiB maximum: send() of 1 MiB may return short without send_buffer");
        return;
    }
    let spec = std::fs::read_to_string(SPEC).unwrap();
    let without = spec.replace("send_buffer = \"64KiB\"\n", "");
    assert_ne!(spec, without, "the spec sets send_buffer");
    // Beside the original, so its `from` files are found.
    let copy = tempfile::Builder::new()
        .prefix(".spec-keys-no-send-buffer")
        .suffix(".toml")
        .tempfile_in("tests/specs")
        .unwrap();
    std::fs::write(copy.path(), without).unwrap();
    let name = "send() to a slow reader under send_buffer";
    let report = grade_json(
        copy.path().to_str().unwrap(),
        "fixtures/spec_keys/wrong",
        &["--case", name],
    );
    assert_verdicts(&report, &[]);
}
