//! Every fixture graded with the shipped spec over real sockets: each buggy program
//! fails exactly the cases its bug breaks and passes the rest (fixtures/README.md).

mod common;
use common::{assert_verdicts, grade};

const TWO_AT_ONCE: &str = "serves two clients at the same time";
const ALL_SERVER: [&str; 9] = [
    "accepts a connection",
    "replies to a message",
    "several messages on one connection",
    "prints each message it receives",
    "closes after the client closes",
    "does not busy-loop after the client closes",
    "serves the next client after the first leaves",
    "exits on Ctrl-C and frees the port",
    TWO_AT_ONCE,
];

const ALL_CLIENT: [&str; 6] = [
    "connects to the server",
    "sends what the user typed",
    "prints the server's reply",
    "ends on an empty line and closes",
    "copes with the server closing first",
    "handles end of input (Ctrl-D)",
];

macro_rules! fixture {
    ($test:ident, $fixture:literal, $target:literal, [$($failing:expr),* $(,)?]) => {
        #[test]
        fn $test() {
            let report = grade($fixture, $target, &[]);
            assert_verdicts(&report, &[$($failing),*]);
        }
    };
}

// Correct programs.
fixture!(good_server, "good", "server", [TWO_AT_ONCE]);
fixture!(good_client, "good", "client", []);
fixture!(good_threaded_server, "good_threaded", "server", []);
fixture!(
    server_bound_to_a_classroom_ip,
    "server_classroom_ip",
    "server",
    [TWO_AT_ONCE]
);
fixture!(
    server_on_port_9999,
    "server_port_9999",
    "server",
    [TWO_AT_ONCE]
);
// A client that sends one line and exits also closes: the empty-line case needs two
// lines answered first.
fixture!(
    client_sending_one_line_and_exiting,
    "client_one_shot",
    "client",
    [
        "ends on an empty line and closes",
        "copes with the server closing first",
        "handles end of input (Ctrl-D)"
    ]
);
// Slow, not wrong: it reads each reply 2 s after it sent its line.
fixture!(
    client_pausing_before_it_reads,
    "client_slow_recv",
    "client",
    []
);
fixture!(
    client_closing_with_replies_unread,
    "client_close_unread",
    "client",
    [
        "prints the server's reply",
        "ends on an empty line and closes",
        "copes with the server closing first"
    ]
);
// Port 9999, not the assignment's 8888: refused, as on any machine (the spec's
// must_match = "port" takes any address, not any port), and told where to connect.
#[test]
fn client_to_another_port() {
    let report = grade("client_wrong_port", "client", &[]);
    assert_verdicts(&report, &ALL_CLIENT);
    let reason = report["cases"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("Connection refused") && reason.contains("port 8888"),
        "{reason}"
    );
}
fixture!(
    client_to_a_classroom_ip,
    "client_classroom_ip",
    "client",
    []
);
fixture!(
    client_printing_gbk_and_noise,
    "client_gbk_output",
    "client",
    []
);

// Buggy servers.
fixture!(
    server_without_empty_recv_check,
    "server_no_empty_recv_check",
    "server",
    [
        "closes after the client closes",
        "does not busy-loop after the client closes",
        "serves the next client after the first leaves",
        TWO_AT_ONCE,
    ]
);
fixture!(
    server_that_never_closes,
    "server_never_closes",
    "server",
    ["closes after the client closes", TWO_AT_ONCE]
);
fixture!(
    server_for_a_single_client,
    "server_single_client",
    "server",
    ["serves the next client after the first leaves", TWO_AT_ONCE]
);
fixture!(
    server_replying_after_two_messages,
    "server_reply_after_two",
    "server",
    [
        "replies to a message",
        "several messages on one connection",
        "closes after the client closes",
        "does not busy-loop after the client closes",
        "serves the next client after the first leaves",
        "exits on Ctrl-C and frees the port",
        TWO_AT_ONCE,
    ]
);
// A server that answers one message and exits also closes and is idle: the cases about
// closing and spinning first need two messages answered.
fixture!(
    server_answering_once_and_exiting,
    "server_one_shot",
    "server",
    [
        "several messages on one connection",
        "closes after the client closes",
        "does not busy-loop after the client closes",
        "serves the next client after the first leaves",
        TWO_AT_ONCE,
    ]
);
fixture!(
    server_crashing_at_its_first_recv,
    "server_crash_on_recv",
    "server",
    [
        "replies to a message",
        "several messages on one connection",
        "prints each message it receives",
        "closes after the client closes",
        "does not busy-loop after the client closes",
        "serves the next client after the first leaves",
        "exits on Ctrl-C and frees the port",
        TWO_AT_ONCE,
    ]
);
// Python 2 printing unicode: the grader's environment is a UTF-8 terminal's.
#[test]
fn python2_server_printing_chinese() {
    if !common::has_python2() {
        return eprintln!(
            "SKIPPED: no python2 on this machine (pyenv install 2.7.18 to run this test)"
        );
    }
    let report = grade("python2_unicode", "server", &[]);
    assert_verdicts(&report, &[TWO_AT_ONCE]);
}
// It accepts, then closes at once: it did call accept(), and every reply is missing.
#[test]
fn server_closing_each_connection_at_once() {
    let report = grade("server_accept_close", "server", &[]);
    assert_verdicts(&report, &ALL_SERVER[1..]);
    let replies = &report["cases"][1]["reason"];
    assert!(
        replies
            .as_str()
            .unwrap()
            .contains("closed the connection (FIN)"),
        "{replies}"
    );
}
// Answers each 5-byte piece with a pause between answers: the grader closes only once
// it has finished answering, as a person would, so it never crashes on a reset.
fixture!(
    server_answering_in_slow_pieces,
    "server_recv5_slow",
    "server",
    ["prints each message it receives", TWO_AT_ONCE]
);
// A new listening socket for each client: for an instant nothing listens, and the
// reference client tries again as a person would.
fixture!(
    server_making_a_new_listener_per_client,
    "server_reopens_listener",
    "server",
    [TWO_AT_ONCE]
);
// It closes each connection first, so its port has TIME_WAIT connections when it
// exits: with SO_REUSEADDR a restart binds at once; without, S8 says why it cannot.
const CLOSES_FIRST: [&str; 4] = [
    "several messages on one connection",
    "closes after the client closes",
    "does not busy-loop after the client closes",
    TWO_AT_ONCE,
];
fixture!(
    server_closing_first_with_so_reuseaddr,
    "server_closes_first",
    "server",
    [
        CLOSES_FIRST[0],
        CLOSES_FIRST[1],
        CLOSES_FIRST[2],
        TWO_AT_ONCE
    ]
);
#[test]
fn server_closing_first_without_so_reuseaddr() {
    let report = grade("server_closes_first_no_reuseaddr", "server", &[]);
    let mut failing = CLOSES_FIRST.to_vec();
    failing.push("exits on Ctrl-C and frees the port");
    assert_verdicts(&report, &failing);
    let s8 = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "exits on Ctrl-C and frees the port")
        .unwrap();
    let reason = s8["reason"].as_str().unwrap();
    assert!(
        reason.contains("no process holds the port") && reason.contains("SO_REUSEADDR"),
        "{reason}"
    );
}
fixture!(
    server_polling_accept_with_a_timeout,
    "server_accept_timeout",
    "server",
    [TWO_AT_ONCE]
);
fixture!(
    server_reading_5_bytes_at_a_time,
    "server_recv5",
    "server",
    ["prints each message it receives", TWO_AT_ONCE]
);
fixture!(
    server_resetting_on_close,
    "server_rst_on_close",
    "server",
    ["closes after the client closes", TWO_AT_ONCE]
);
fixture!(
    server_ignoring_ctrl_c,
    "server_ignores_sigint",
    "server",
    ["exits on Ctrl-C and frees the port", TWO_AT_ONCE]
);
#[test]
fn server_with_a_syntax_error() {
    let report = grade("server_syntax_error", "server", &[]);
    assert_verdicts(&report, &ALL_SERVER);
    let leader = started_once(&report);
    let reason = report["cases"][leader]["reason"].as_str().unwrap();
    assert!(reason.contains("SyntaxError"), "{reason}");
}

/// A start-up failure is learned once per submission and side: a server that never
/// listens costs one start-up deadline, not one per case. One case (the leader) starts
/// it and waits out the deadline; every other server case is not run and points to it.
#[test]
fn a_server_that_never_listens_is_started_once() {
    let report = grade("hostile_sleeps_forever", "server", &[]);
    assert_verdicts(&report, &ALL_SERVER);
    let leader = started_once(&report);
    let reason = report["cases"][leader]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no listening socket after 5s: the server never reached listen()"),
        "{reason}"
    );
}

/// Checks that the program was started by one case only, that this case (the leader,
/// whichever the scheduling made it) has the reason, and that every other case was not
/// run, points to it (JSON `"not_run": "<leader>"`), says the same and took no time.
/// Returns the leader's index.
fn started_once(report: &serde_json::Value) -> usize {
    let cases = report["cases"].as_array().unwrap();
    let starts = |c: &serde_json::Value| {
        c["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "started")
            .count()
    };
    let total: usize = cases.iter().map(starts).sum();
    assert_eq!(total, 1, "the program was started {total} times");
    let leader = cases.iter().position(|c| starts(c) == 1).unwrap();
    let (name, reason) = (&cases[leader]["name"], &cases[leader]["reason"]);
    assert!(cases[leader].get("not_run").is_none(), "{}", cases[leader]);
    for (i, c) in cases.iter().enumerate().filter(|&(i, _)| i != leader) {
        assert_eq!(&c["not_run"], name, "case {i}: {c}");
        assert_eq!(c["status"], "failed", "case {i}: {c}");
        assert_eq!(c["duration_ms"], 0, "case {i}: {c}");
        // The leader's reason without its first part (the step it was at).
        let why = c["reason"].as_str().unwrap();
        assert!(reason.as_str().unwrap().ends_with(why), "{why} vs {reason}");
    }
    leader
}

/// 0.0.0.1 is an address no machine owns: bind() fails here as on a real machine,
/// although every other address of the case's network is the server's.
#[test]
fn server_bound_to_an_address_no_machine_owns() {
    let report = grade("server_bind_0001", "server", &[]);
    assert_verdicts(&report, &ALL_SERVER);
    let reason = report["cases"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("Cannot assign requested address"),
        "{reason}"
    );
}

/// A server bound to a multicast address listens (Linux allows it) but can never be
/// reached by TCP: every case fails, and the reason says why, not only "Invalid argument".
#[test]
fn server_bound_to_a_multicast_address() {
    let report = grade("server_bind_multicast", "server", &[]);
    assert_verdicts(&report, &ALL_SERVER);
    let reason = report["cases"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("224.0.0.1 is a multicast address") && reason.contains("bind to '0.0.0.0'"),
        "{reason}"
    );
}

// Buggy clients.
fixture!(
    client_not_printing_the_reply,
    "client_no_print",
    "client",
    ["prints the server's reply"]
);
fixture!(
    client_crashing_on_end_of_input,
    "client_crash_on_eof",
    "client",
    ["handles end of input (Ctrl-D)"]
);
fixture!(
    client_never_closing,
    "client_never_closes",
    "client",
    ["ends on an empty line and closes"]
);
fixture!(
    client_ignoring_the_server_close,
    "client_ignores_server_close",
    "client",
    ["copes with the server closing first"]
);

#[test]
fn a_start_up_crash_is_reported_at_once_with_the_traceback() {
    let report = grade(
        "server_syntax_error",
        "server",
        &["--case", "replies to a message"],
    );
    let case = &report["cases"][0];
    assert!(
        case["duration_ms"].as_u64().unwrap() < 4000,
        "reported after a timeout: {case}"
    );
    assert!(
        case["reason"].as_str().unwrap().contains("SyntaxError"),
        "{case}"
    );
    assert!(
        case["stderr_tail"].to_string().contains("tcp_server.py"),
        "{case}"
    );
}

#[test]
fn the_close_kinds_are_named_apart() {
    let rst = grade(
        "server_rst_on_close",
        "server",
        &["--case", "closes after the client closes"],
    );
    assert!(
        rst["cases"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("reset (RST)"),
        "{rst}"
    );
    let none = grade(
        "server_never_closes",
        "server",
        &["--case", "closes after the client closes"],
    );
    assert!(
        none["cases"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("neither FIN nor RST"),
        "{none}"
    );
}

/// With must_match = "nothing", the grader's network takes a client's connection to
/// any port to the reference server (nft), and the transcript says where it was meant
/// to go. Where `nft` is missing the same spec grades the same program as failing, and
/// the case says plainly why: tested in both states.
#[test]
fn a_redirected_client_is_told_where_it_connected() {
    let report = common::grade_json(
        "tests/specs/any-port.toml",
        "fixtures/client_wrong_port",
        &[],
    );
    if !sockgrade::sandbox::netns::nft_available() {
        eprintln!("skipped the nft state: `nft` is not installed (apt-get install -y nftables)");
    } else {
        assert_verdicts(&report, &[]);
        let t = report["cases"][0]["transcript"].to_string();
        assert!(t.contains("127.0.0.1:9999"), "{t}");
    }
    // Without a redirect (no nft on this machine): told plainly, never graded by luck.
    let r = common::grade_in_process_on(
        "tests/specs/any-port.toml",
        "fixtures/client_wrong_port",
        &[],
        |host| host.redirect = false,
    );
    let case = &r.cases[0];
    assert_eq!(case.status, sockgrade::outcome::Status::Failed);
    let t = serde_json::to_string(&case.transcript).unwrap();
    assert!(t.contains("`nft` is not installed"), "{t}");
}

#[test]
fn a_missing_file_is_an_error_naming_what_the_submission_holds() {
    let report = grade(
        "client_no_print",
        "server",
        &["--case", "replies to a message"],
    );
    let case = &report["cases"][0];
    assert_eq!(case["status"], "error");
    let reason = case["reason"].as_str().unwrap();
    assert!(
        reason.contains("no file matches") && reason.contains("tcp_client.py"),
        "{reason}"
    );
}

/// A program that exits without writing to stderr is not sent to read its stderr.
#[test]
fn a_silent_exit_is_not_sent_to_an_empty_stderr() {
    let report = grade(
        "server_one_shot",
        "server",
        &["--case", "several messages on one connection"],
    );
    let reason = report["cases"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("exited with code 0 without a word on stderr")
            && !reason.contains("see its last stderr"),
        "{reason}"
    );
}

/// With `listen` set, a server on another port is told where it does listen.
#[test]
fn a_server_on_another_port_than_the_spec_says_is_told_where_it_listens() {
    let report = common::grade_json(
        "tests/specs/listen-port.toml",
        "fixtures/server_port_9999",
        &["--target", "server"],
    );
    assert_verdicts(&report, &["accepts a connection"]);
    let reason = report["cases"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("listens on 127.0.0.1:9999, not on port 8888"),
        "{reason}"
    );
    let good = common::grade_json(
        "tests/specs/listen-port.toml",
        "fixtures/good",
        &["--target", "server"],
    );
    assert_verdicts(&good, &[]);
}
