//! The per-case inputs (`env`, `stdin`, `[files]` copied `from` beside the spec), the
//! stream and file checks (`expect_bytes` with `sha256` / `at_least`, `expect_file` with
//! `hex` / `sha256`, the true byte count of a flood), `not_contains` on a connection,
//! the `pause` step, a matcher's `label`, `[limits] send_buffer` and the reference's
//! `recv_buffer`, each both ways: one client uses each as the spec says and passes, one
//! misses each and fails for that reason (tests/specs/spec-keys.toml,
//! fixtures/spec_keys/). For the two buffers the other way is also the wrong client
//! passing the same case in the spec without the key.

mod common;
use common::{assert_verdicts, grade_json, redacted};

const SPEC: &str = "tests/specs/spec-keys.toml";

const CASES: [&str; 13] = [
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
    "a small recv_buffer holds back a client in a hurry",
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
    // The pause cut the line: the client gave up after its first piece.
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
    // send() took what fits in a 64 KiB send buffer, far from 1 MiB; sendall() with a
    // 1 s timeout got no further before the reader behind a 4 KiB buffer read.
    let short = regex::Regex::new(r"got only (\d+) of (\d+) bytes").unwrap();
    for (i, limit) in [(11, 64 * 1024), (12, 64 * 1024 + 4096)] {
        let sent: u64 = short
            .captures(&reasons[i])
            .unwrap_or_else(|| panic!("{}", reasons[i]))[1]
            .parse()
            .unwrap();
        assert!(sent <= limit, "{}", reasons[i]);
    }
    // How much fits in the buffers is the kernel's accounting: not part of the snapshot.
    let reasons: Vec<String> = reasons
        .iter()
        .enumerate()
        .map(|(i, r)| match i {
            11 | 12 => short.replace(r, "got only [n] of $2 bytes").into_owned(),
            _ => r.clone(),
        })
        .collect();
    redacted(|| insta::assert_snapshot!("spec_keys_failures", reasons.join("\n")));
}

/// The spec with `edit` applied (which must change it), beside the original so its
/// `from` files are found: the wrong client's report for the one case `name`.
fn wrong_client_without(edit: impl Fn(&str) -> String, name: &str) -> serde_json::Value {
    let spec = std::fs::read_to_string(SPEC).unwrap();
    let without = edit(&spec);
    assert_ne!(spec, without, "the edit changes the spec");
    let copy = tempfile::Builder::new()
        .prefix(".spec-keys-without")
        .suffix(".toml")
        .tempfile_in("tests/specs")
        .unwrap();
    std::fs::write(copy.path(), without).unwrap();
    grade_json(
        copy.path().to_str().unwrap(),
        "fixtures/spec_keys/wrong",
        &["--case", name],
    )
}

/// Field `n` of a sysctl of three numbers (`net.ipv4.tcp_wmem` and the like).
fn sysctl_field(path: &str, n: usize) -> (u64, String) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let v = (text.split_whitespace().nth(n))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    (v, text)
}

/// The other way for `send_buffer`: the same client and case in a spec without it. A
/// send() of 1 MiB then goes whole (the send buffer grows to the machine's
/// `net.ipv4.tcp_wmem` maximum, 4 MiB by default), so the cap is what catches it.
#[test]
fn without_send_buffer_a_send_of_1_mib_goes_whole() {
    let (max, wmem) = sysctl_field("/proc/sys/net/ipv4/tcp_wmem", 2);
    if max < 4 << 20 {
        eprintln!("SKIPPED: net.ipv4.tcp_wmem is {wmem:?} here, below the default 4 MiB maximum: send() of 1 MiB may return short without send_buffer");
        return;
    }
    let report = wrong_client_without(
        |s| s.replace("send_buffer = \"64KiB\"\n", ""),
        "send() to a slow reader under send_buffer",
    );
    assert_verdicts(&report, &[]);
}

/// The other way for `recv_buffer`: the same client and case with the reference's
/// default receive buffer (`net.ipv4.tcp_rmem`'s 128 KiB). The 80 KiB then fit on the
/// way while the reference does not read, so sendall() returns within its 1 s.
#[test]
fn without_recv_buffer_a_hurried_client_gets_through() {
    let (default, rmem) = sysctl_field("/proc/sys/net/ipv4/tcp_rmem", 1);
    if default < 128 << 10 {
        eprintln!("SKIPPED: net.ipv4.tcp_rmem is {rmem:?} here, below the default 128 KiB: 80 KiB may not fit without recv_buffer either");
        return;
    }
    let report = wrong_client_without(
        |s| s.replace("{ accept = { recv_buffer = \"4KiB\" } }", "{ accept = {} }"),
        "a small recv_buffer holds back a client in a hurry",
    );
    assert_verdicts(&report, &[]);
}

/// The other way for `pause`: without it, "lo\n" follows "hel" as soon as the client
/// waits for it, and the client that gives up after 0.2 s gets the whole line.
#[test]
fn without_the_pause_an_impatient_client_gets_the_whole_line() {
    let report = wrong_client_without(
        |s| s.replace("  { pause = \"1s\" },\n", ""),
        "a pause between two sends",
    );
    assert_verdicts(&report, &[]);
}

/// The other way for `label`: without it the student is shown the regex itself (its
/// newline escaped: a reason is one line).
#[test]
fn without_the_label_the_regex_is_shown() {
    let report = wrong_client_without(
        |s| {
            s.replace(
                r#", label = "a greeting with a number, like \"HELLO 42\"" "#,
                " ",
            )
        },
        "a regex shown by its label",
    );
    let reason = report["cases"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(r"expected data matching /^HELLO [0-9]+\n/, got"),
        "{reason}"
    );
}
