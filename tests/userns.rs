//! Without root but where user namespaces are allowed, the grader isolates each case as
//! root does (`sandbox::userns`): the same verdicts, cases in parallel, and a client that
//! dials the classroom's address graded. Where the kernel refuses user namespaces, the
//! fallback stays and says why. Run as `nobody` (like tests/fallback.rs).

mod common;
use common::{as_nobody, as_root_plain, can_act_as_nobody, UserNs};
use std::collections::BTreeMap;
use std::process::{Command, Output};

const SPEC: &str = "specs/tcp-basics.toml";

/// A correct submission, both classroom-address fixtures, and students' bugs on both sides.
const FIXTURES: &[&str] = &[
    "fixtures/good",
    "fixtures/client_classroom_ip",
    "fixtures/server_classroom_ip",
    "fixtures/server_one_shot",
    "fixtures/server_recv5",
    "fixtures/server_crash_on_recv",
    "fixtures/client_wrong_port",
    "fixtures/client_crash_on_eof",
];

/// Whether this machine lets `nobody` make a user namespace (asked of the kernel with
/// util-linux's `unshare`, not of the code under test).
fn userns_allowed() -> bool {
    let ok = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["unshare", "--user", "--map-root-user", "--net", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: this machine refuses user namespaces to unprivileged users");
    }
    ok
}

/// A case's verdict as compared between runs: its status and which step failed, how
/// (the step's action), or which case's start-up failure it carries. Not the rest of
/// the reason: it names ports, and whether the program's exit was seen yet when the
/// reason was written.
type Verdict = (String, Option<u64>, Option<String>, Option<String>);

/// The isolation a run reports, and each case's [`Verdict`] by target and name.
fn verdicts(out: &Output) -> (String, BTreeMap<String, Verdict>) {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let cases = json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
            (
                format!("{} / {}", c["target"], c["name"]),
                (
                    c["status"].as_str().unwrap().to_string(),
                    c["failure"]["step"].as_u64(),
                    text(&c["failure"]["action"]),
                    text(&c["not_run"]),
                ),
            )
        })
        .collect();
    (json["isolation"].as_str().unwrap().to_string(), cases)
}

#[test]
fn unprivileged_runs_give_roots_verdicts() {
    if !can_act_as_nobody() || !userns_allowed() {
        return;
    }
    let mut compared = 0;
    for fixture in FIXTURES {
        let args = ["run", SPEC, fixture, "--format", "json"];
        let (root_isolation, root_verdicts) = verdicts(&as_root_plain(&args));
        let unprivileged = as_nobody(&args, UserNs::Allowed);
        let (isolation, got) = verdicts(&unprivileged);
        assert_ne!(root_isolation, "none", "{fixture}");
        // Each case in a network namespace of its own (and a cgroup where one is
        // delegated): cases run in parallel.
        assert!(
            ["netns", "full"].contains(&isolation.as_str()),
            "{fixture}: isolation {isolation}"
        );
        assert_eq!(got, root_verdicts, "{fixture}: unprivileged (left) vs root");
        compared += got.len();
        // Said once to the operator, on stderr: the isolation, and which limits hold.
        let err = String::from_utf8_lossy(&unprivileged.stderr);
        assert_eq!(
            err.matches("user namespace of this run").count(),
            1,
            "{fixture}: {err}"
        );
        assert!(
            err.contains("so limits are per process (rlimits")
                || err.contains("limits are each case's cgroup's"),
            "{fixture}: which limits hold: {err}"
        );
        assert!(!err.contains("one at a time"), "{err}");
        let report = String::from_utf8_lossy(&unprivileged.stdout);
        assert!(
            !report.contains("user namespace"),
            "not in the report: {report}"
        );
    }
    assert!(compared >= FIXTURES.len() * 10, "{compared} cases compared");

    // The classroom address is graded, not merely the same failure as root's: every
    // client case passes, and the report says where the client meant to connect.
    let out = as_nobody(
        &[
            "run",
            SPEC,
            "fixtures/client_classroom_ip",
            "--target",
            "client",
            "--verbose",
            "--format",
            "json",
        ],
        UserNs::Allowed,
    );
    let (_, client) = verdicts(&out);
    assert!(
        !client.is_empty() && client.values().all(|v| v.0 == "passed"),
        "{client:?}"
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("\"meant_for\": \"172.40.83.120:8888\""),
        "the redirect took the client from the classroom address: {report}"
    );
}

#[test]
fn refused_user_namespaces_fall_back_and_say_why() {
    if !can_act_as_nobody() {
        return;
    }
    let out = as_nobody(
        &[
            "run",
            SPEC,
            "fixtures/good",
            "--target",
            "server",
            "--case",
            "replies to a message",
            "--format",
            "json",
        ],
        UserNs::Refused,
    );
    let (isolation, verdicts) = verdicts(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(isolation, "none", "{err}");
    assert_eq!(
        verdicts.values().map(|v| v.0.as_str()).collect::<Vec<_>>(),
        ["passed"],
        "{err}"
    );
    assert_eq!(err.matches("one at a time").count(), 1, "{err}");
    assert!(
        err.contains("unshare(CLONE_NEWUSER) was refused: Operation not permitted"),
        "the reason is said: {err}"
    );
    assert!(!err.contains("user namespace of this run"), "{err}");
}
