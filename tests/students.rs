//! What a student uses on their own machine: `watch` (grade again on save, say what
//! changed) and the live case lines of `run` on a terminal (a real pseudo-terminal).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SPEC: &str = "specs/tcp-basics.toml";
const CASE: &str = "closes after the client closes";

/// Lines of a child's stdout, read on a thread, so the test waits for a line with a
/// deadline instead of sleeping.
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: String,
}

impl Lines {
    fn of(r: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: String::new(),
        }
    }

    /// Reads until a line contains `needle`; returns everything read since the last call.
    fn until(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut got = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    got.push_str(&line);
                    got.push('\n');
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(needle) {
                        return got;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {within:?}; output so far:\n{}",
                    self.seen
                ),
            }
        }
    }
}

fn copy_fixture(name: &str, to: &Path) {
    for e in std::fs::read_dir(Path::new("fixtures").join(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn watch_grades_again_on_save_and_says_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture("server_rst_on_close", dir.path());
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("sockgrade"))
        .args(["watch", SPEC])
        .arg(dir.path())
        .args(["--case", CASE, "--case", "replies to a message"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = Lines::of(child.stdout.take().unwrap());
    let first = out.until("watching", Duration::from_secs(60));
    assert!(first.contains(&format!("✗ {CASE}")), "{first}");
    assert!(first.contains("Score: 2/4"), "{first}");
    assert!(!first.contains("Since the last run"), "{first}");

    // The student fixes the bug and saves.
    std::fs::copy(
        "fixtures/good/tcp_server.py",
        dir.path().join("tcp_server.py"),
    )
    .unwrap();
    let second = out.until("watching", Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(second.contains(&format!("✓ {CASE}")), "{second}");
    assert!(second.contains("Since the last run"), "{second}");
    assert!(second.contains("changed   tcp_server.py"), "{second}");
    assert!(
        second.contains(&format!("now passes {CASE} (server)")),
        "{second}"
    );
    assert!(second.contains("score     2/4 → 4/4 (+2)"), "{second}");
}

#[test]
fn watch_refuses_a_missing_folder() {
    assert_cmd::Command::cargo_bin("sockgrade")
        .unwrap()
        .args(["watch", SPEC, "no/such/folder"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is not a folder"));
}

/// `run` on a terminal: each case's line shows as it finishes, cut to the terminal's
/// width, then is erased and replaced by the report. Read through a real pty of 40
/// columns, where the case lines (~70 columns) would wrap.
#[test]
fn run_on_a_terminal_shows_live_lines_cut_to_its_width() {
    use nix::pty::{openpty, Winsize};
    let ws = Winsize {
        ws_row: 40,
        ws_col: 40,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(Some(&ws), None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("sockgrade"))
        .args(["run", SPEC, "fixtures/server_rst_on_close", "--case", CASE])
        .env_remove("NO_COLOR")
        .stdout(slave.try_clone().unwrap())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    drop(slave);
    let mut master = std::fs::File::from(pty.master);
    let mut raw = Vec::new();
    // Reading the master ends with EIO once the child (the last holder of the slave)
    // has exited: that is the end of its output.
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(child.wait().unwrap().code(), Some(1));
    let text = String::from_utf8_lossy(&raw);
    let (live, report) = text
        .split_once("\x1b[1A\x1b[J")
        .unwrap_or_else(|| panic!("the live line was not erased: {text:?}"));
    let live = strip(live);
    let live_line = live.trim_end_matches(['\r', '\n']);
    assert!(live_line.contains("✗ closes after"), "{live:?}");
    assert!(live_line.ends_with('…'), "{live:?}");
    assert!(
        unicode_width::UnicodeWidthStr::width(live_line) < 40,
        "the live line is as wide as the terminal: {live_line:?}"
    );
    // The report after it is the full one, lines uncut.
    let report = strip(report);
    assert!(report.contains(&format!("✗ {CASE}")), "{report}");
    assert!(report.contains("Score: 0/2"), "{report}");
}

fn strip(s: &str) -> String {
    let re = regex::Regex::new(r"\x1b\[[0-9;?]*[@-~]").unwrap();
    re.replace_all(s, "").into_owned()
}

/// `tshark`'s fields of each packet in `file`: flags (e.g. `··········S·`), source port
/// and payload as text. `None` where tshark is not installed.
fn tshark_packets(file: &Path) -> Option<Vec<(String, u16, String)>> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "tcp.flags.str",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.payload",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "tshark could not read {}",
        file.display()
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                let hex = f.get(2).copied().unwrap_or("").replace(':', "");
                let bytes: Vec<u8> = (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                (
                    f[0].to_string(),
                    f[1].parse().unwrap_or(0),
                    String::from_utf8_lossy(&bytes).into_owned(),
                )
            })
            .collect(),
    )
}

/// A failing case's capture, read by Debian's `tshark`, shows what its report says: the
/// SYN that opened the connection, the data sent, and the server's RST where a FIN was
/// expected (the bug of fixtures/server_rst_on_close).
#[test]
fn run_pcap_shows_in_tshark_what_the_report_says() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("skipped: tshark is not installed (Debian: apt-get install -y tshark; .ci/run installs it)");
        return;
    }
    if !sockgrade::sandbox::netns::available() {
        eprintln!("skipped: captures need network namespaces (root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("sockgrade")
        .unwrap()
        .args(["run", SPEC, "fixtures/server_rst_on_close", "--case", CASE])
        .args(["--format", "json", "--pcap"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let case = &report["cases"][0];
    let sent = case["failure"]["sent"].as_str().unwrap();
    assert_eq!(sent, "\"bye\\n\"", "{case}");
    assert!(
        case["failure"]["got"].as_str().unwrap().contains("RST"),
        "{case}"
    );

    let file = dir
        .path()
        .join("closes-after-the-client-closes-server.pcap");
    let packets = tshark_packets(&file).expect("tshark ran");
    let server_port = packets
        .iter()
        .find(|(flags, _, _)| flags.ends_with("A··S·"))
        .map(|(_, port, _)| *port)
        .expect("the server's SYN-ACK");
    let syn = packets
        .iter()
        .position(|(f, _, _)| f.ends_with("··S·") && !f.contains('A'));
    let data = packets
        .iter()
        .position(|(_, port, payload)| *port != server_port && payload == "bye\n");
    let rst = packets
        .iter()
        .position(|(f, port, _)| *port == server_port && f.contains('R'));
    let (Some(syn), Some(data), Some(rst)) = (syn, data, rst) else {
        panic!("SYN {syn:?}, data {data:?}, RST {rst:?} in {packets:#?}");
    };
    assert!(syn < data && data < rst, "{packets:#?}");
    // The server never sent a FIN: the RST is how it closed.
    assert!(
        !packets
            .iter()
            .any(|(f, port, _)| *port == server_port && f.contains('F')),
        "{packets:#?}"
    );
}

#[test]
fn pcap_without_a_namespace_is_refused_plainly() {
    let dir = tempfile::tempdir().unwrap();
    assert_cmd::Command::cargo_bin("sockgrade")
        .unwrap()
        .args([
            "run",
            SPEC,
            "fixtures/good",
            "--isolation",
            "none",
            "--pcap",
        ])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "--pcap needs a network namespace per case",
        ));
}

#[test]
fn grade_pcap_writes_a_folder_per_student() {
    if !sockgrade::sandbox::netns::available() {
        eprintln!("skipped: captures need network namespaces (root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (student, fixture) in [("alice", "good"), ("bob", "server_rst_on_close")] {
        let to = dir.path().join("class").join(student);
        std::fs::create_dir_all(&to).unwrap();
        copy_fixture(fixture, &to);
    }
    assert_cmd::Command::cargo_bin("sockgrade")
        .unwrap()
        .arg("grade")
        .arg(std::fs::canonicalize(SPEC).unwrap())
        .args(["class", "--out", "out", "--pcap", "pcap"])
        .current_dir(dir.path())
        .assert()
        .code(0);
    for student in ["alice", "bob"] {
        let file = dir
            .path()
            .join("pcap")
            .join(student)
            .join("closes-after-the-client-closes-server.pcap");
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes(), "a pcap file");
        if let Some(packets) = tshark_packets(&file) {
            let resets = packets.iter().filter(|(f, _, _)| f.contains('R')).count();
            // alice's server closes with a FIN, bob's resets.
            assert_eq!(resets > 0, student == "bob", "{student}: {packets:#?}");
        }
    }
}
