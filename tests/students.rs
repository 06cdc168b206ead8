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
