//! UDP (issue 16): both UDP specs checked with `check --against` on their fixtures
//! (a correct solution and buggy ones, each failing exactly the cases its bug breaks),
//! the faults the reference side plays, and a program of the other protocol than the
//! spec's told so in one line.

mod common;
use common::{sockgrade, statuses};
use std::path::Path;

/// Builds `pass/<name>/` and `fail/<name>/` (with sockgrade-expect.txt) in `dir` from
/// fixtures/udp/ and an .expect file: one `[name]` section per fixture folder, then the
/// cases it must fail (none: a pass/ solution).
fn build_against(expect: &str, dir: &Path) {
    let text = std::fs::read_to_string(common::root().join(expect)).unwrap();
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap().trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.to_string(), Vec::new()));
        } else if !line.is_empty() {
            sections.last_mut().unwrap().1.push(line.to_string());
        }
    }
    assert!(!sections.is_empty(), "{expect} names no fixture");
    for (name, failing) in sections {
        let kind = if failing.is_empty() { "pass" } else { "fail" };
        let to = dir.join(kind).join(&name);
        std::fs::create_dir_all(&to).unwrap();
        let from = common::root().join("fixtures/udp").join(&name);
        for f in std::fs::read_dir(&from).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
        if !failing.is_empty() {
            std::fs::write(to.join("sockgrade-expect.txt"), failing.join("\n") + "\n").unwrap();
        }
    }
}

fn check_against(spec: &str, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    build_against(expect, dir.path());
    let out = sockgrade()
        .args(["check", spec, "--against"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check --against failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn udp_basics_against_its_fixtures() {
    check_against("specs/udp-basics.toml", "fixtures/udp/udp-basics.expect");
}

#[test]
fn stop_and_wait_against_its_fixtures() {
    check_against(
        "specs/stop-and-wait.toml",
        "fixtures/udp/stop-and-wait.expect",
    );
}

fn run_json(spec: &str, fixture: &str, case: &str) -> serde_json::Value {
    common::grade_json(spec, fixture, &["--case", case])
}

fn got(report: &serde_json::Value) -> String {
    report["cases"][0]["failure"]["got"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Each fault, played on the correct echo server, does what it says; and
/// expect_no_datagram fails when a datagram comes.
#[test]
fn faults_on_a_correct_echo_server() {
    let out = sockgrade()
        .args([
            "run",
            "tests/specs/udp-faults.toml",
            "fixtures/udp/echo_good",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = statuses(&report);
    for (name, status) in &s {
        let want = if name.starts_with("expect_no_datagram fails") {
            "failed"
        } else {
            "passed"
        };
        assert_eq!(status, want, "{name}: {report:#}");
    }
    let no = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "failed")
        .unwrap();
    assert!(
        no["failure"]["got"]
            .as_str()
            .unwrap()
            .starts_with("received the datagram \"now\""),
        "{no:#}"
    );
    // The transcript has datagram events with addresses.
    let events: Vec<&str> = report["cases"][0]["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        events.contains(&"datagram_sent") && events.contains(&"datagram_received"),
        "{events:?}"
    );
}

/// A server that binds UDP under a TCP spec is told so in one line, and the reverse.
#[test]
fn the_other_protocol_is_named() {
    let r = run_json(
        "specs/tcp-basics.toml",
        "fixtures/udp/echo_good",
        "accepts a connection",
    );
    assert!(
        got(&r).contains(
            "bound a UDP socket (SOCK_DGRAM) on 0.0.0.0:21567, but this assignment is TCP"
        ),
        "{r:#}"
    );
    let r = run_json(
        "specs/udp-basics.toml",
        "fixtures/good",
        "echoes a datagram",
    );
    assert!(
        got(&r).contains("listens on TCP (SOCK_STREAM)")
            && got(&r).contains("this assignment is UDP"),
        "{r:#}"
    ); // Clients: a UDP client under a TCP spec, a TCP client (to its own port 8888) under
       // a UDP one. The right protocol passes: check --against above.
    let r = run_json(
        "specs/tcp-basics.toml",
        "fixtures/udp/echo_good",
        "connects to the server",
    );
    assert_eq!(
        got(&r),
        "the client made a UDP socket (SOCK_DGRAM), but this assignment is TCP: socket(AF_INET, SOCK_STREAM), then connect()",
        "{r:#}"
    );
    let r = run_json("specs/udp-basics.toml", "fixtures/good", "prints the reply");
    assert_eq!(
        got(&r),
        "the client made a TCP connection (SOCK_STREAM) to 127.0.0.1:8888, but this assignment is UDP: socket(AF_INET, SOCK_DGRAM), then sendto()",
        "{r:#}"
    );
}

/// Datagram steps in a TCP case, TCP steps in a UDP case: spec errors at the step.
#[test]
fn protocol_mismatch_in_a_spec_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.toml");
    std::fs::write(
        &spec,
        "[assignment]\nname = \"x\"\n[server]\ncommand = [\"python3\", \"{file}\"]\nfile = \"s.py\"\n\
         [[case]]\nname = \"a\"\ntarget = \"server\"\nsteps = [{ send_datagram = \"x\" }]\n",
    )
    .unwrap();
    let out = sockgrade().args(["check"]).arg(&spec).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`send_datagram` is a UDP step; the [server] section speaks TCP"),
        "{err}"
    );
    std::fs::write(
        &spec,
        "[assignment]\nname = \"x\"\n[server]\nprotocol = \"udp\"\ncommand = [\"python3\", \"{file}\"]\nfile = \"s.py\"\n\
         [[case]]\nname = \"a\"\ntarget = \"server\"\nfaults = [{ drop = 0 }]\nsteps = [{ connect = {} }]\n",
    )
    .unwrap();
    let out = sockgrade().args(["check"]).arg(&spec).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`connect` is a TCP step; the [server] section speaks UDP"),
        "{err}"
    );
    assert!(err.contains("datagrams are counted from 1"), "{err}");
}

/// The UDP specs validate against the shipped JSON Schema (tests/schema.rs checks
/// the schema is the generated one).
#[test]
fn udp_specs_validate_against_the_schema() {
    if !common::python_has("jsonschema") {
        return;
    }
    let script = r#"
import json, sys, tomllib, jsonschema
v = jsonschema.Draft7Validator(json.load(open("schema/spec.schema.json")))
bad = [(p, e.message) for p in sys.argv[1:] for e in v.iter_errors(tomllib.load(open(p, "rb")))]
print(bad)
sys.exit(1 if bad else 0)
"#;
    let out = std::process::Command::new("python3")
        .current_dir(common::root())
        .args([
            "-c",
            script,
            "specs/udp-basics.toml",
            "specs/stop-and-wait.toml",
            "tests/specs/udp-faults.toml",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Every case of a client, as JSON.
fn run_client(spec: &str, fixture: &str) -> serde_json::Value {
    common::grade_json(spec, fixture, &["--target", "client"])
}

fn notes(case: &serde_json::Value) -> Vec<String> {
    case["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "note")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

/// A client with a *connected* socket to a classroom IP takes only answers from exactly
/// that address: the reference answers from the address the datagram was sent to, and
/// conntrack turns a redirected port back. The report names the original destination.
#[test]
fn a_connected_client_to_a_classroom_ip_gets_its_answers() {
    let mut fixtures = vec![("fixtures/udp/client_classroom_ip", "10.9.8.7:21567")];
    // Another port than the spec's reaches the reference only through the nft redirect.
    match sockgrade::sandbox::netns::nft_available() {
        true => fixtures.push(("fixtures/udp/client_classroom_other_port", "10.9.8.7:9999")),
        false => eprintln!(
            "skipped the redirected port: `nft` is not installed (apt-get install -y nftables)"
        ),
    }
    for (fixture, meant) in fixtures {
        let r = run_client("specs/udp-basics.toml", fixture);
        for (name, status) in statuses(&r) {
            assert_eq!(status, "passed", "{fixture}: {name}: {r:#}");
        }
        let case = &r["cases"][0];
        let want = format!("the client sent to {meant}, not 127.0.0.1:21567");
        assert!(
            notes(case).iter().any(|n| n.starts_with(&want)),
            "{fixture}: {case:#}"
        );
    }
}

/// The reasons of the buggy fixtures that only a fault (or a check of the address or
/// the bytes a transfer delivered) catches: each fails its case for exactly that reason
/// (the correct solutions pass the same cases: check --against above).
#[test]
fn reasons_of_the_faults_and_checks() {
    let cases = [
        (
            "stop-and-wait",
            "saw_receiver_assumes_in_order",
            "ignores a packet that overtakes an earlier one",
        ),
        (
            "stop-and-wait",
            "saw_receiver_crashes_on_short",
            "ignores a packet cut short",
        ),
        (
            "stop-and-wait",
            "saw_sender_takes_any_ack",
            "ignores a late ACK of an older packet",
        ),
        (
            "stop-and-wait",
            "saw_sender_loses_a_byte",
            "sends a whole file over a lossy network",
        ),
        (
            "udp-basics",
            "echo_client_new_socket_per_line",
            "sends every line from the same socket",
        ),
    ];
    let mut text = String::new();
    for (spec, fixture, case) in cases {
        let r = run_json(
            &format!("specs/{spec}.toml"),
            &format!("fixtures/udp/{fixture}"),
            case,
        );
        let c = &r["cases"][0];
        assert_eq!(c["status"], "failed", "{fixture}: {c:#}");
        let f = &c["failure"];
        text += &format!(
            "{fixture} / {case}\n  step {}: {}\n  expected: {}\n  got: {}\n",
            f["step"],
            f["action"].as_str().unwrap_or_default(),
            f["expected"].as_str().unwrap_or_default(),
            f["got"].as_str().unwrap_or_default()
        );
    }
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    settings.bind(|| common::redacted(|| insta::assert_snapshot!("udp_fault_reasons", text)));
}

/// A server bound to IPv6 `[::]` is found and reached at `[::1]`; answering from another
/// socket fails there as on IPv4. (Clients: the reference side listens on IPv4, for TCP
/// as for UDP.)
#[test]
fn an_ipv6_server() {
    let r = run_server("fixtures/udp/echo_server_ipv6");
    for (name, status) in statuses(&r) {
        assert_eq!(status, "passed", "{name}: {r:#}");
    }
    let bound = r["cases"][0]["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "bound")
        .unwrap()
        .clone();
    assert_eq!(bound["address"], "[::]:21567", "{r:#}");
    let r = run_server("fixtures/udp/echo_server_ipv6_other_socket");
    let failed: Vec<String> = statuses(&r)
        .into_iter()
        .filter(|(_, s)| s != "passed")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(failed, ["answers from the port it is bound to"], "{r:#}");
    let c = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "failed")
        .unwrap();
    let got = c["failure"]["got"].as_str().unwrap();
    assert!(
        got.contains("from [::1]:")
            && got.contains(", not from [::1]:21567, where the request went"),
        "{got}"
    );
}

fn run_server(fixture: &str) -> serde_json::Value {
    common::grade_json("specs/udp-basics.toml", fixture, &["--target", "server"])
}

/// A UDP class graded as a TCP one is (`grade`: gradebook, reports, limits): a correct
/// student beside one whose server floods the reference socket from two processes and one
/// whose server eats memory. The class completes, the correct student keeps every point,
/// the flood fails the cases its extra datagrams break, and the memory hog is stopped by
/// the case's memory limit with the reason a TCP server gets.
#[test]
fn a_udp_class_with_a_flood_and_a_memory_hog() {
    let base = common::root().join("target/udp-classes");
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let class = dir.path().join("class");
    for (student, fixture) in [
        ("alice", "echo_good"),
        ("mallory", "hostile_udp_flood"),
        ("oscar", "hostile_udp_memory"),
    ] {
        let to = class.join(student);
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(common::root().join("fixtures/udp").join(fixture)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
    let out = dir.path().join("out");
    let status = sockgrade()
        .arg("grade")
        .arg("specs/udp-basics.toml")
        .arg(&class)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(0), "the class run completed");
    let report = |s: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join(format!("reports/{s}.json"))).unwrap())
            .unwrap()
    };
    let gradebook = std::fs::read_to_string(out.join("gradebook.csv")).unwrap();
    for s in ["alice", "mallory", "oscar"] {
        assert!(gradebook.contains(s), "{gradebook}");
    }
    let alice = report("alice");
    assert!(
        statuses(&alice).values().all(|s| s == "passed"),
        "{:?}",
        statuses(&alice)
    );
    let reason = |r: &serde_json::Value, case: &str| -> String {
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == case)
            .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
            .unwrap()
    };
    let mallory = report("mallory");
    let flood = statuses(&mallory);
    assert_eq!(flood["echoes a datagram"], "passed", "{flood:?}");
    assert_eq!(flood["one answer per datagram"], "failed", "{flood:?}");
    let oscar = report("oscar");
    let full = alice["isolation"] != "none";
    if full {
        let why = reason(&oscar, "echoes a datagram");
        assert!(why.contains("memory"), "{why}");
    } else {
        eprintln!("memory limit part skipped: no cgroups without root");
    }
}
