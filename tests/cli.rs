//! The command line: exit codes, spec errors and reports, snapshotted with insta
//! (times, ports and temporary paths redacted).

mod common;
use common::sockgrade;

/// Replaces what changes from run to run: durations, ports, temp folders, pids.
fn redact(s: &str) -> String {
    let rules = [
        (r"\d+ ms", "[N] ms"),
        (
            r"(127\.0\.0\.1|0\.0\.0\.0|172\.40\.83\.120)('?[:, ]+)\d{2,5}",
            "$1$2[PORT]",
        ),
        (r"/tmp/sockgrade-[A-Za-z0-9-]+(/w[0-9]+)?", "[TMP]"),
        (r#""(at_ms|duration_ms|pid|bytes)": \d+"#, r#""$1": [N]"#),
        (r"\d+ (more )?bytes", "[N] ${1}bytes"),
        (r"\(\d+ % of a CPU\)", "([N] % of a CPU)"),
        (r"wrote \d+ bytes meanwhile", "wrote [N] bytes meanwhile"),
        (r"isolation: \w+", "isolation: [ISOLATION]"),
        (r#""isolation": "\w+""#, r#""isolation": "[ISOLATION]""#),
        (r"(?m)^note: .*\n", ""),
        // Unbuffered print() writes its arguments one by one and the server is stopped
        // at the end of each case: this line of the fixtures may be cut anywhere.
        (r#"Connect from[^\n\\"]*"#, "Connect from [address]"),
        // The interpreter is resolved once per run: its path is the machine's.
        (r#""/[^"\s]*/bin/(python[0-9.]*)""#, r#""$1""#),
        (r#""notes": \[[^\]]*\]"#, r#""notes": []"#),
    ];
    let mut out = s.to_string();
    for (re, with) in rules {
        out = regex::Regex::new(re)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

fn check_spec(name: &str) -> (i32, String) {
    let out = sockgrade()
        .args(["check", &format!("tests/bad_specs/{name}.toml")])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

macro_rules! bad_spec {
    ($name:ident) => {
        #[test]
        fn $name() {
            let (code, stderr) = check_spec(stringify!($name));
            assert_eq!(code, 2, "{stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            insta::assert_snapshot!(concat!("spec_error_", stringify!($name)), stderr);
        }
    };
}

bad_spec!(unknown_key);
bad_spec!(bad_duration);
bad_spec!(bad_regex);
bad_spec!(send_before_connect);
bad_spec!(wrong_type);
bad_spec!(many_errors);
bad_spec!(toml_syntax);
bad_spec!(serde_errors);
bad_spec!(mixed_errors);

#[test]
fn a_missing_spec_file_is_a_usage_error() {
    let out = sockgrade()
        .args(["check", "no/such/spec.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the spec"));
}

#[test]
fn an_unknown_case_lists_the_known_ones() {
    let out = sockgrade()
        .args([
            "run",
            "specs/tcp-basics.toml",
            "fixtures/good",
            "--case",
            "nope",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no case is named \"nope\"") && err.contains("replies to a message"),
        "{err}"
    );
}

#[test]
fn a_missing_submission_is_a_usage_error() {
    sockgrade()
        .args(["run", "specs/tcp-basics.toml", "fixtures/nope"])
        .assert()
        .code(2);
}

#[test]
fn check_prints_the_plan() {
    let out = sockgrade()
        .args(["check", "specs/tcp-basics.toml"])
        .assert()
        .success();
    insta::assert_snapshot!(
        "check_tcp_basics",
        String::from_utf8_lossy(&out.get_output().stdout)
    );
}

#[test]
fn help_has_examples() {
    let out = sockgrade().args(["run", "--help"]).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("Examples:"));
}

#[test]
fn exit_code_is_0_when_all_pass_and_1_when_one_fails() {
    sockgrade()
        .args([
            "run",
            "specs/tcp-basics.toml",
            "fixtures/good",
            "--target",
            "client",
        ])
        .assert()
        .code(0);
    sockgrade()
        .args([
            "run",
            "specs/tcp-basics.toml",
            "fixtures/server_never_closes",
            "--target",
            "server",
            "--case",
            "closes after the client closes",
        ])
        .assert()
        .code(1);
}

#[test]
fn text_report_of_a_failing_server() {
    let out = sockgrade()
        .args([
            "run",
            "specs/tcp-basics.toml",
            "fixtures/server_no_empty_recv_check",
            "--target",
            "server",
        ])
        .args([
            "--case",
            "replies to a message",
            "--case",
            "closes after the client closes",
            "--case",
            "does not busy-loop after the client closes",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\u{1b}'), "colour without a terminal");
    // The flood of replies makes the quoted excerpt vary in where it starts.
    let text = regex::Regex::new(r#"more bytes(, ending with)?: "[^\n]*"#)
        .unwrap()
        .replace_all(&text, "more bytes${1}: [DATA]")
        .into_owned();
    // The spinning server is killed mid-print: its last line may be cut anywhere.
    let text = regex::Regex::new(r"(?m)^     │ R.*$")
        .unwrap()
        .replace_all(&text, "     │ [a line of the flood]")
        .into_owned();
    insta::assert_snapshot!("text_report_no_empty_recv_check", redact(&text));
}

#[test]
fn text_report_of_a_crash_at_start_up() {
    let out = sockgrade()
        .args([
            "run",
            "specs/tcp-basics.toml",
            "fixtures/server_syntax_error",
            "--case",
            "accepts a connection",
        ])
        .output()
        .unwrap();
    insta::assert_snapshot!(
        "text_report_syntax_error",
        redact(&String::from_utf8(out.stdout).unwrap())
    );
}

#[test]
fn text_report_of_a_client_that_does_not_close() {
    let out = sockgrade()
        .args([
            "run",
            "specs/tcp-basics.toml",
            "fixtures/client_never_closes",
            "--case",
            "ends on an empty line and closes",
        ])
        .output()
        .unwrap();
    insta::assert_snapshot!(
        "text_report_client_never_closes",
        redact(&String::from_utf8(out.stdout).unwrap())
    );
}

#[test]
fn json_report_of_a_failing_case() {
    let out = sockgrade()
        .args([
            "run",
            "specs/tcp-basics.toml",
            "fixtures/server_never_closes",
            "--format",
            "json",
            "--case",
            "closes after the client closes",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["score", "max_score", "cases"] {
        assert!(json.get(key).is_some(), "{key} missing");
    }
    let case = &json["cases"][0];
    for key in [
        "name",
        "target",
        "status",
        "score",
        "max_score",
        "reason",
        "transcript",
    ] {
        assert!(case.get(key).is_some(), "cases[].{key} missing");
    }
    insta::assert_snapshot!(
        "json_report_never_closes",
        redact(&serde_json::to_string_pretty(&json).unwrap())
    );
}

#[test]
fn a_command_that_cannot_start_is_an_error_not_a_failure() {
    let out = sockgrade()
        .args([
            "run",
            "tests/specs/missing_interpreter.toml",
            "fixtures/good",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["cases"][0]["status"], "error", "{json}");
    assert!(json["cases"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("could not be started"));
}

#[test]
fn a_server_that_answers_every_empty_recv_is_stopped_reading_early() {
    // It never closes and sends without end: the grader stops reading after 64 KiB
    // (it was sent a few bytes) instead of draining the flood until the deadline, and
    // says so.
    let report = common::grade(
        "server_no_empty_recv_check",
        "server",
        &["--case", "closes after the client closes"],
    );
    let case = &report["cases"][0];
    assert_eq!(case["status"], "failed");
    let got = case["failure"]["got"].as_str().unwrap();
    assert!(
        got.starts_with("the connection stayed open: it kept sending instead of closing (the grader stopped reading after 64 KiB)"),
        "{got}"
    );
    // The good server closes (the same check, passed).
    let good = common::grade(
        "good",
        "server",
        &["--case", "closes after the client closes"],
    );
    assert_eq!(good["cases"][0]["status"], "passed");
}

#[test]
fn a_server_answering_after_the_client_closed_is_read_to_the_end() {
    // Its whole answer (2 MiB, an echo of what it was sent) comes after the grader's
    // FIN: more than a flood's 64 KiB, but not more than twice what it was sent, so the
    // grader reads on and sees it close.
    let spec = "tests/specs/echo-at-eof.toml";
    let report = common::grade_json(spec, "fixtures/server_echo_at_eof", &[]);
    assert_eq!(report["cases"][0]["status"], "passed", "{report:#}");
    // The loop that answers every empty recv() instead still fails it.
    let report = common::grade_json(spec, "fixtures/server_no_empty_recv_check", &[]);
    let case = &report["cases"][0];
    assert_eq!(case["status"], "failed");
    let got = case["failure"]["got"].as_str().unwrap();
    assert!(got.starts_with("the connection stayed open"), "{got}");
}
