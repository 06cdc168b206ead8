//! The same submission graded many times at once, with the CPUs oversubscribed, gets
//! the same verdicts every time: the grade does not depend on machine load. The
//! submission is a server hardcoded to port 8888: many copies listen on it at the same
//! moment, each in its case's own network namespace, without a clash.
//! (scripts/stress-repeat.sh runs the long form: 50 times.)

mod common;
use common::{root, statuses};
use std::process::{Command, Stdio};

#[test]
fn verdicts_do_not_depend_on_load() {
    let runs = std::env::var("SOCKGRADE_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let children: Vec<_> = (0..runs)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_sockgrade"))
                .current_dir(root())
                .args([
                    "run",
                    "specs/tcp-basics.toml",
                    "fixtures/server_no_empty_recv_check",
                    "--format",
                    "json",
                    "--target",
                    "server",
                    "--jobs",
                    "9",
                ])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<_> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            statuses(&serde_json::from_slice(&out.stdout).unwrap())
        })
        .collect();
    assert!(
        results[0].values().all(|s| s != "error"),
        "a case could not run: {:?}",
        results[0]
    );
    assert_eq!(results[0]["accepts a connection"], "passed");
    for r in &results[1..] {
        assert_eq!(r, &results[0], "verdicts differ between identical runs");
    }
}

/// The behaviours of real submissions that flipped verdicts under load (README, "Verdicts
/// do not depend on load"), each graded three times at once, all at the same time.
#[test]
fn timing_sensitive_programs_get_one_verdict_set() {
    let fixtures = [
        ("server_reopens_listener", "server"),
        ("server_recv5_slow", "server"),
        ("server_accept_close", "server"),
        ("client_slow_recv", "client"),
        ("client_close_unread", "client"),
    ];
    let children: Vec<_> = fixtures
        .iter()
        .flat_map(|&(f, target)| (0..3).map(move |_| (f, target)))
        .map(|(f, target)| {
            let child = Command::new(env!("CARGO_BIN_EXE_sockgrade"))
                .current_dir(root())
                .args(["run", "specs/tcp-basics.toml", &format!("fixtures/{f}")])
                .args(["--format", "json", "--target", target])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            (f, child)
        })
        .collect();
    let mut seen: std::collections::BTreeMap<&str, Vec<_>> = Default::default();
    for (f, c) in children {
        let out = c.wait_with_output().unwrap();
        seen.entry(f)
            .or_default()
            .push(statuses(&serde_json::from_slice(&out.stdout).unwrap()));
    }
    for (f, runs) in seen {
        for r in &runs[1..] {
            assert_eq!(r, &runs[0], "{f}: verdicts differ between identical runs");
        }
    }
}
