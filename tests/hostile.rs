//! Hostile and broken programs cost their author points with a clear reason, never the
//! grader, the machine, or another submission: nothing they start survives their case,
//! nothing they write reaches the submission or the host.

mod common;
use common::{assert_verdicts, root, statuses};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Contents of every file under `dir`, to prove a submission is byte-for-byte unchanged.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.insert(
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).unwrap(),
        );
    }
    out
}

/// Processes still in a cgroup of the grader with this pid (its cgroups are named
/// `sockgrade-<pid>`): after the grader exits there must be none.
fn survivors(grader_pid: u32) -> Vec<String> {
    let tag = format!("sockgrade-{grader_pid}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cg) = std::fs::read_to_string(e.path().join("cgroup")) {
            // A zombie is dead already: it waits for init to reap it.
            let zombie = std::fs::read_to_string(e.path().join("stat"))
                .is_ok_and(|s| s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z')));
            if cg.contains(&tag) && !zombie {
                let cmd = std::fs::read_to_string(e.path().join("cmdline"))
                    .unwrap_or_default()
                    .replace('\0', " ");
                out.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// Grades a fixture with the real binary; checks containment; returns the JSON report.
fn grade_contained(fixture: &str, target: &str, cases: &[&str]) -> serde_json::Value {
    let dir = root().join("fixtures").join(fixture);
    let before = snapshot(&dir);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sockgrade"));
    cmd.current_dir(root()).args([
        "run",
        "specs/tcp-basics.toml",
        &format!("fixtures/{fixture}"),
        "--format",
        "json",
        "--target",
        target,
    ]);
    for c in cases {
        cmd.args(["--case", c]);
    }
    let child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "grader exit {:?}",
        out.status
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    if report["isolation"] == "full" {
        assert_eq!(
            survivors(pid),
            Vec::<String>::new(),
            "processes of {fixture} outlived the grader"
        );
    }
    assert_eq!(
        snapshot(&dir),
        before,
        "{fixture}: the submission was changed"
    );
    report
}

fn reasons(report: &serde_json::Value) -> String {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}: {}\n", c["name"], c["reason"]))
        .collect()
}

fn full(report: &serde_json::Value) -> bool {
    if report["isolation"] != "full" {
        eprintln!(
            "skipped: this test needs --isolation full (root with cgroups); the grader ran with {}",
            report["isolation"]
        );
        return false;
    }
    true
}

#[test]
fn a_fork_bomb_hits_the_process_limit() {
    let r = grade_contained("hostile_fork_bomb", "server", &["replies to a message"]);
    if full(&r) {
        assert_eq!(r["cases"][0]["status"], "failed");
        assert!(
            reasons(&r).contains("more than 64 processes"),
            "{}",
            reasons(&r)
        );
    }
}

#[test]
fn a_memory_hog_hits_the_memory_limit() {
    let r = grade_contained("hostile_memory_hog", "server", &["replies to a message"]);
    if full(&r) {
        assert!(
            reasons(&r).contains("more than 256 MiB of memory"),
            "{}",
            reasons(&r)
        );
    }
}

#[test]
fn a_double_forked_daemon_dies_with_its_case() {
    let r = grade_contained(
        "hostile_daemon",
        "server",
        &["replies to a message", "exits on Ctrl-C and frees the port"],
    );
    assert_verdicts(&r, &[]);
}

#[test]
fn a_program_ignoring_sigterm_and_sigint_is_killed() {
    let r = grade_contained(
        "hostile_ignores_sigterm",
        "server",
        &["replies to a message", "exits on Ctrl-C and frees the port"],
    );
    assert_verdicts(&r, &["exits on Ctrl-C and frees the port"]);
    assert!(reasons(&r).contains("still running"), "{}", reasons(&r));
}

#[test]
fn an_output_flood_is_drained_and_capped() {
    let r = grade_contained(
        "hostile_output_flood",
        "server",
        &["replies to a message", "closes after the client closes"],
    );
    assert_verdicts(&r, &[]);
    let case = &r["cases"][0];
    assert!(case["stdout_bytes"].as_u64().unwrap() > 64 << 10, "{case}");
    let kept: usize = case["stdout_tail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().len())
        .sum();
    assert!(kept < 64 << 10);
}

#[test]
fn a_spinning_thread_fails_the_idle_check() {
    let r = grade_contained(
        "hostile_spin",
        "server",
        &[
            "replies to a message",
            "does not busy-loop after the client closes",
        ],
    );
    assert_verdicts(&r, &["does not busy-loop after the client closes"]);
}

#[test]
fn a_server_that_never_listens_is_reported_after_the_startup_deadline() {
    let r = grade_contained(
        "hostile_sleeps_forever",
        "server",
        &["accepts a connection"],
    );
    assert!(
        reasons(&r).contains("never reached listen()"),
        "{}",
        reasons(&r)
    );
}

#[test]
fn writes_outside_the_work_folder_go_nowhere() {
    let _ = std::fs::remove_file("/tmp/sockgrade-pwned.txt");
    let r = grade_contained(
        "hostile_writes_outside",
        "server",
        &[
            "replies to a message",
            "serves the next client after the first leaves",
        ],
    );
    assert_verdicts(&r, &[]);
    if full(&r) {
        assert!(
            !Path::new("/tmp/sockgrade-pwned.txt").exists(),
            "a write reached the host's /tmp"
        );
        assert!(
            !root().join("fixtures/pwned.txt").exists(),
            "a write reached the fixtures folder"
        );
    }
}

#[test]
fn a_huge_reply_does_not_grow_the_grader() {
    let r = grade_contained(
        "hostile_huge_reply",
        "server",
        &["replies to a message", "several messages on one connection"],
    );
    assert_verdicts(&r, &[]);
}

#[test]
fn a_client_trying_to_reach_the_internet_reaches_nothing_but_the_grader() {
    let r = grade_contained("hostile_connect_out", "client", &["connects to the server"]);
    assert_verdicts(&r, &[]);
    // 8.8.8.8:53 was refused inside the namespace; 172.40.83.120:8888 (the right port)
    // reached the reference server: nothing left the namespace.
    let t = r["cases"][0]["transcript"].to_string();
    assert!(t.contains("172.40.83.120:8888"), "{t}");
    assert!(!t.contains("8.8.8.8"), "{t}");
}

/// Hostile submissions graded at the same time as a correct one do not change its result.
#[test]
fn neighbours_do_not_change_a_result() {
    let hostile: Vec<_> = [
        "hostile_fork_bomb",
        "hostile_output_flood",
        "hostile_spin",
        "hostile_memory_hog",
    ]
    .iter()
    .map(|f| {
        Command::new(env!("CARGO_BIN_EXE_sockgrade"))
            .current_dir(root())
            .args([
                "run",
                "specs/tcp-basics.toml",
                &format!("fixtures/{f}"),
                "--target",
                "server",
                "--format",
                "json",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    })
    .collect();
    let good = common::grade("good", "server", &[]);
    for mut h in hostile {
        h.wait().unwrap();
    }
    assert_verdicts(&good, &["serves two clients at the same time"]);
    assert_eq!(statuses(&good).len(), 9);
}

#[test]
fn leaking_descriptors_hits_the_open_files_limit() {
    let r = grade_contained("hostile_fd_leak", "server", &["replies to a message"]);
    assert!(
        reasons(&r).contains("more than 256 files and sockets open"),
        "{}",
        reasons(&r)
    );
}

#[test]
fn a_growing_log_hits_the_file_size_limit() {
    let r = grade_contained("hostile_big_file", "server", &["replies to a message"]);
    assert!(
        reasons(&r).contains("file larger than 16 MiB"),
        "{}",
        reasons(&r)
    );
}

/// A class of one correct student and one whose server starts 60 busy processes: the
/// class completes, the correct student keeps every point, and the hog's CPU use is
/// reported as what one case may use (a CPU quota per case), not as "4034 % of a CPU".
#[test]
#[ignore = "the per-case CPU quota is not applied to warm-started processes on hybrid cgroup v1/v2 hosts yet (issue 14 note)"]
fn a_cpu_hog_gets_one_cpu_and_its_neighbour_keeps_its_score() {
    let class = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for (student, fixture) in [("alice", "good"), ("mallory", "hostile_cpu_hog")] {
        let dir = class.path().join(student);
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(
            root().join("fixtures").join(fixture).join("tcp_server.py"),
            dir.join("tcp_server.py"),
        )
        .unwrap();
    }
    let status = Command::new(env!("CARGO_BIN_EXE_sockgrade"))
        .current_dir(root())
        .args(["grade", "specs/tcp-basics.toml"])
        .arg(class.path())
        .arg("--out")
        .arg(out.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let read = |s: &str| -> serde_json::Value {
        let p = out.path().join("reports").join(format!("{s}.json"));
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let (alice, mallory) = (read("alice"), read("mallory"));
    if !full(&alice) {
        return;
    }
    let server = |r: &serde_json::Value| -> Vec<(String, String)> {
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["target"] == "server" && c["informational"] == false)
            .map(|c| (c["name"].to_string(), c["status"].to_string()))
            .collect()
    };
    assert!(
        server(&alice).iter().all(|(_, s)| s == "\"passed\""),
        "{}",
        reasons(&alice)
    );
    let why = reasons(&mallory);
    assert!(!why.contains("CPUs busy"), "no CPU quota: {why}");
    assert!(why.contains("% of a CPU) and wrote"), "{why}");
}
