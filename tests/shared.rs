//! `[server] share_process = true`: the server cases of a submission run one after
//! another against one started server. Graded over real sockets with a copy of the
//! shipped spec that opts in (tests/specs/tcp-basics-shared.toml), every fixture gets
//! the verdicts it gets with a process per case (tests/fixtures.rs), from fewer
//! started processes, and each shared case says it was shared.

mod common;
use common::{assert_verdicts, sockgrade};
use serde_json::Value;

const SHARED_SPEC: &str = "tests/specs/tcp-basics-shared.toml";
const TWO_AT_ONCE: &str = "serves two clients at the same time";
const CTRL_C: &str = "exits on Ctrl-C and frees the port";

fn grade_shared(fixture: &str) -> Value {
    let out = sockgrade()
        .args([
            "run",
            SHARED_SPEC,
            &format!("fixtures/{fixture}"),
            "--format",
            "json",
            "--target",
            "server",
        ])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `started` events in all the transcripts: the processes the grader started.
fn started(report: &Value) -> usize {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["transcript"].as_array().unwrap())
        .filter(|e| e["event"] == "started")
        .count()
}

/// Every case but the Ctrl-C one (which ends the server) is marked shared.
fn assert_marked(report: &Value) {
    for c in report["cases"].as_array().unwrap() {
        let shared = c["shared_process"] == true;
        assert_eq!(shared, c["name"] != CTRL_C, "{}", c["name"]);
    }
}

macro_rules! same_verdicts {
    ($test:ident, $fixture:literal, [$($failing:expr),* $(,)?]) => {
        #[test]
        fn $test() {
            let report = grade_shared($fixture);
            assert_verdicts(&report, &[$($failing),*]);
            assert_marked(&report);
            // One process per case without sharing.
            let cases = report["cases"].as_array().unwrap().len();
            assert!(started(&report) <= cases, "{report}");
        }
    };
}

same_verdicts!(good_threaded, "good_threaded", []);
same_verdicts!(
    server_without_empty_recv_check,
    "server_no_empty_recv_check",
    [
        "closes after the client closes",
        "does not busy-loop after the client closes",
        "serves the next client after the first leaves",
        TWO_AT_ONCE,
    ]
);
same_verdicts!(
    server_for_a_single_client,
    "server_single_client",
    ["serves the next client after the first leaves", TWO_AT_ONCE]
);
same_verdicts!(
    server_replying_after_two_messages,
    "server_reply_after_two",
    [
        "replies to a message",
        "several messages on one connection",
        "serves the next client after the first leaves",
        CTRL_C,
        TWO_AT_ONCE,
    ]
);
same_verdicts!(
    server_reading_5_bytes_at_a_time,
    "server_recv5",
    ["prints each message it receives", TWO_AT_ONCE]
);
same_verdicts!(
    server_resetting_on_close,
    "server_rst_on_close",
    ["closes after the client closes", TWO_AT_ONCE]
);
same_verdicts!(
    server_ignoring_ctrl_c,
    "server_ignores_sigint",
    [CTRL_C, TWO_AT_ONCE]
);
same_verdicts!(server_on_port_9999, "server_port_9999", [TWO_AT_ONCE]);
same_verdicts!(
    server_syntax_error,
    "server_syntax_error",
    [
        "accepts a connection",
        "replies to a message",
        "several messages on one connection",
        "prints each message it receives",
        "closes after the client closes",
        "does not busy-loop after the client closes",
        "serves the next client after the first leaves",
        CTRL_C,
        TWO_AT_ONCE,
    ]
);

#[test]
fn a_correct_loop_server_is_started_twice_for_nine_cases() {
    let report = grade_shared("good");
    assert_verdicts(&report, &[TWO_AT_ONCE]);
    assert_marked(&report);
    // One for the eight shared cases, one for the Ctrl-C case (without sharing: 9).
    assert_eq!(started(&report), 2, "{report}");
    let case = |name: &str| {
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    // A later shared case says whose process it used, and sees only its own output.
    let prints = case("prints each message it receives");
    let t = prints["transcript"].to_string();
    assert!(t.contains("shared server process"), "{t}");
    let out = prints["stdout_tail"].to_string();
    assert!(out.contains("the quick brown fox"), "{out}");
    assert!(
        !out.contains("first message"),
        "an earlier case's output: {out}"
    );
    // Timestamps start at the case's start.
    let first = prints["transcript"][0]["at_ms"].as_u64().unwrap();
    assert!(first < 100, "{t}");
}

#[test]
fn a_server_that_keeps_connections_gets_the_same_verdicts_and_is_reused() {
    let report = grade_shared("server_never_closes");
    assert_verdicts(&report, &["closes after the client closes", TWO_AT_ONCE]);
    assert_marked(&report);
    // It never closes a connection but is back in accept(): no restart needed.
    assert_eq!(started(&report), 2, "{report}");
}

#[test]
fn a_server_that_dies_is_replaced_and_the_next_case_says_so() {
    let report = grade_shared("server_single_client");
    let t = report["cases"][1]["transcript"].to_string();
    assert!(t.contains("a fresh server process for this case"), "{t}");
}

#[test]
fn the_text_report_notes_shared_cases() {
    let out = sockgrade()
        .args(["run", SHARED_SPEC, "fixtures/good", "--target", "server"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("shared process"), "{text}");
}

#[test]
fn fresh_process_false_on_a_case_that_ends_the_server_is_a_spec_error() {
    let out = sockgrade()
        .args(["check", "tests/bad_specs/fresh_process_on_signal_case.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    insta::assert_snapshot!("spec_error_fresh_process_on_signal_case", stderr);
}
