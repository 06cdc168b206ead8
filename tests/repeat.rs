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
