//! The HTML class report and the LMS CSV, made by `sockgrade grade` from a small class
//! graded over real sockets (a correct submission, two buggy ones, one with no program),
//! and checked by their consumers: the page is rendered in headless Chromium (it renders,
//! its script runs, nothing reaches the console) and a screenshot is taken.
//!
//! Chromium is Debian's `chromium` package (`apt-get install -y chromium`, listed in
//! .ci/run); the browser tests skip with a message when /usr/bin/chromium is missing.
//! `SOCKGRADE_UPDATE_SCREENSHOT=1` copies the screenshot to docs/class-report.png.

mod common;

use common::root;
use sockgrade::bulk::journal::{CaseColumn, Outcome, RunHeader, StudentRecord};
use sockgrade::outcome::{CaseResult, Event, EventKind, Failure, Status, SubmissionResult};
use sockgrade::report::html;
use sockgrade::spec::{Show, Target, Visibility};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SPEC: &str = "specs/tcp-basics.toml";
const CHROMIUM: &str = "/usr/bin/chromium";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

struct Graded {
    out: PathBuf,
    stdout: String,
    _dir: tempfile::TempDir,
}

/// The class, graded once by the real binary and shared by the tests.
fn graded() -> &'static Graded {
    static G: OnceLock<Graded> = OnceLock::new();
    G.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("class");
        let fx = root().join("fixtures");
        copy_dir(&fx.join("good"), &class.join("alice"));
        // Buggy: a server that resets the connection, a client that prints GBK.
        copy_dir(&fx.join("server_rst_on_close"), &class.join("bob"));
        copy_dir(&fx.join("client_gbk_output"), &class.join("bob"));
        // Buggy, named as a Canvas download (user id 4242): its id goes to lms.csv.
        let carol = class.join("carol_4242_9001_hw");
        std::fs::create_dir_all(&carol).unwrap();
        std::fs::copy(
            fx.join("server_single_client/tcp_server.py"),
            carol.join("tcp_server.py"),
        )
        .unwrap();
        std::fs::copy(
            fx.join("client_no_print/tcp_client.py"),
            carol.join("tcp_client.py"),
        )
        .unwrap();
        // No program at all.
        std::fs::create_dir_all(class.join("dave")).unwrap();
        std::fs::write(class.join("dave/notes.txt"), "I did not finish\n").unwrap();

        let out = dir.path().join("out");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        // From the class's parent folder, so that reports (and the screenshot) show
        // `class/alice`, not a temporary path.
        let output = common::sockgrade()
            .current_dir(dir.path())
            .env("TMPDIR", &tmp)
            .arg("grade")
            .arg(root().join(SPEC))
            .args(["class", "--out", "out"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Graded {
            out,
            stdout,
            _dir: dir,
        }
    })
}

fn case_names() -> Vec<String> {
    let spec = sockgrade::spec::Spec::load(&root().join(SPEC)).unwrap();
    spec.cases.iter().map(|c| c.name.clone()).collect()
}

#[test]
fn report_has_every_student_and_case() {
    let g = graded();
    let page = std::fs::read_to_string(g.out.join("report.html")).unwrap();
    assert!(
        g.stdout.contains("class report: out/report.html")
            && g.stdout
                .contains("LMS import (Canvas, Moodle): out/lms.csv"),
        "the summary names the report:\n{}",
        g.stdout
    );
    for student in ["alice", "bob", "carol", "dave"] {
        assert!(
            page.contains(&format!("\">{student}</a></td>")),
            "{student} is in the table"
        );
        assert!(
            page.contains(&format!("<summary><b>{student}</b>")),
            "{student} has details"
        );
    }
    for case in case_names() {
        let case = html::esc(&case);
        assert!(page.contains(&case), "case {case:?} is in the report");
    }
    assert_eq!(page.matches("<tr data-student=").count(), 4);
    // ✓, ✗ and ! all appear: a full score, failures, and cases that could not run.
    for mark in ["mark passed\"", "mark failed\"", "mark error\""] {
        assert!(page.contains(mark), "{mark} in the table");
    }
    // Self-contained: nothing is fetched from anywhere.
    for outside in ["http://", "https://", "src=\"", "<link", "@import"] {
        assert!(
            !page.contains(outside),
            "{outside} in a self-contained page"
        );
    }
    // The failure details of a buggy student: the text report's parts.
    assert!(page.contains("expected"), "failure details are there");
    // Transcripts are on each student's own page, linked from their details (they made a
    // class page of 1,000 students too big to render in 2 s).
    assert!(
        page.contains("<a href=\"reports/bob.html\">bob's page</a>"),
        "the details link the student's page"
    );
    let bob = std::fs::read_to_string(g.out.join("reports/bob.html")).unwrap();
    assert!(bob.contains("transcript"), "transcripts are on bob's page");
    // GBK output from bob's client is shown as text, not mojibake.
    assert!(!page.contains('\u{FFFD}'), "no replacement characters");
}

#[test]
fn report_is_the_same_from_merged_shards() {
    // `merge` writes the report from records in memory, `grade` streams them from the
    // journal: the pages must agree.
    let g = graded();
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("merged");
    common::sockgrade()
        .arg("merge")
        .arg(&g.out)
        .arg("--out")
        .arg(&merged)
        .assert()
        .code(0);
    let a = std::fs::read_to_string(g.out.join("report.html")).unwrap();
    let b = std::fs::read_to_string(merged.join("report.html")).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        std::fs::read_to_string(g.out.join("lms.csv")).unwrap(),
        std::fs::read_to_string(merged.join("lms.csv")).unwrap()
    );
}

#[test]
fn lms_csv_imports_into_canvas() {
    let g = graded();
    let csv_text = std::fs::read_to_string(g.out.join("lms.csv")).unwrap();
    // The gradebook's scores, in Canvas's columns.
    let gradebook = std::fs::read_to_string(g.out.join("gradebook.csv")).unwrap();
    let mut r = csv::Reader::from_reader(gradebook.as_bytes());
    let scores: Vec<(String, String)> = r
        .records()
        .map(|x| x.unwrap())
        .map(|x| (x[0].to_string(), x[1].to_string()))
        .collect();
    let mut l = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(
        l.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "Student",
            "ID",
            "SIS User ID",
            "SIS Login ID",
            "Section",
            "tcp-basics"
        ]
    );
    let lms: Vec<(String, String)> = l
        .records()
        .map(|x| x.unwrap())
        .map(|x| (x[0].to_string(), x[5].to_string()))
        .collect();
    assert_eq!(lms, scores);
    insta::assert_snapshot!("lms_csv_small_class", csv_text);
}

/// A result whose every field a student controls holds something hostile.
fn hostile_record() -> (RunHeader, StudentRecord) {
    let evil = "</script><script>alert(1)</script>";
    let case = CaseResult {
        name: "replies to a message".into(),
        target: Target::Server,
        status: Status::Failed,
        score: 0,
        max_score: 2,
        informational: false,
        reason: Some(format!("got {evil}")),
        failure: Some(Failure {
            step: 2,
            line: 80,
            action: "wait for \"hello\" on \"main\" (2s)".into(),
            sent: Some("\"hello\"".into()),
            expected: "\"hello\"".into(),
            got: "\"<img src=x onerror=alert(2)>\"".into(),
        }),
        hint: Some("send back what you received".into()),
        exit: Some("exited with code 1".into()),
        stderr_tail: vec![
            "Traceback: <iframe srcdoc='<script>alert(3)</script>'>".into(),
            "\u{1b}[31mred\u{1b}[0m \u{202e}txt.exe \u{0}".into(),
        ],
        stdout_tail: vec![evil.into(), "你好，世界".into()],
        stdout_bytes: 60,
        stderr_bytes: 60,
        duration_ms: 12,
        visibility: Visibility::Visible,
        show: Show::default(),
        shared_process: false,
        not_run: None,
        transcript: vec![Event {
            at_ms: 5,
            kind: EventKind::Received {
                conn: "main".into(),
                bytes: 30,
                data: format!("\"{evil}\""),
            },
        }],
    };
    let result = SubmissionResult::new(
        "class/<b>eve</b>".into(),
        SPEC.into(),
        sockgrade::outcome::Isolation::None,
        vec![format!("note {evil}")],
        vec![case],
    );
    let header = RunHeader {
        version: 1,
        assignment: "tcp <basics> & \"friends\"".into(),
        spec_hash: "0".into(),
        cases: vec![CaseColumn {
            name: "replies to a message".into(),
            target: Target::Server,
            points: 2,
            informational: false,
        }],
        max_score: 2,
        shard: None,
    };
    let record = StudentRecord {
        student: "<b>eve</b>".into(),
        source: "class/<b>eve</b>".into(),
        notes: vec![evil.into()],
        outcome: Outcome::Graded(Box::new(result)),
    };
    (header, record)
}

#[test]
fn hostile_output_is_escaped() {
    let (header, record) = hostile_record();
    let page = html::render(&header, &[record]);
    assert_eq!(
        page.matches("<script").count(),
        1,
        "only the report's own script"
    );
    assert_eq!(page.matches("</script>").count(), 1);
    for raw in [
        "<script>alert",
        "<img",
        "<iframe",
        "<b>eve",
        "\u{1b}",
        "\u{202e}",
        "\u{0}",
        "<basics>",
    ] {
        assert!(!page.contains(raw), "{raw:?} reached the page unescaped");
    }
    assert!(page.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;eve&lt;/b&gt;"));
    assert!(page.contains("你好，世界"));
    assert!(page.contains("\\u{202e}txt.exe"));
}

/// The browser, or `None` with a message saying how to get it.
fn chromium() -> Option<&'static str> {
    if Path::new(CHROMIUM).exists() {
        Some(CHROMIUM)
    } else {
        eprintln!(
            "SKIPPED: {CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)"
        );
        None
    }
}

/// Runs headless Chromium on `page` with `extra` arguments and a fresh profile; returns
/// its stdout and the console lines of its log (messages, uncaught errors, CSP
/// violations: Chromium logs them all as `:CONSOLE` lines with `--enable-logging`).
fn browse(page: &Path, extra: &[&str]) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chromium failed ({}):\n{stderr}",
        out.status
    );
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[test]
fn chromium_console_check_sees_errors() {
    // The check below must not be vacuous: a page with a script error is caught.
    if chromium().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><script>no_such_function();</script></body></html>",
    )
    .unwrap();
    let (_, console) = browse(&page, &["--dump-dom"]);
    assert!(
        console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError")),
        "{console:?}"
    );
}

#[test]
fn chromium_renders_the_class_report() {
    if chromium().is_none() {
        return;
    }
    let g = graded();
    let page = g.out.join("report.html");
    let (dom, console) = browse(&page, &["--dump-dom"]);
    assert!(console.is_empty(), "console output: {console:#?}");
    // The script ran (it counts the rows) and the table is there.
    assert!(
        dom.contains("data-ready=\"4\""),
        "the page's script did not run:\n{dom}"
    );
    assert_eq!(dom.matches("<tr data-student=").count(), 4);
    assert!(dom.contains("tabindex=\"0\""), "headers made sortable");

    let shot_dir = tempfile::tempdir().unwrap();
    let png = shot_dir.path().join("class-report.png");
    let (_, console) = browse(&page, &[&format!("--screenshot={}", png.display())]);
    assert!(console.is_empty(), "console output: {console:#?}");
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 1600));
    // A blank page of that size compresses to a few KiB; text, a chart and a table don't.
    assert!(
        bytes.len() > 40_000,
        "screenshot too small to show anything: {} bytes",
        bytes.len()
    );
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("class-report.png");
    std::fs::copy(&png, &keep).unwrap();
    eprintln!("screenshot: {}", keep.display());

    // The README's picture: the same page with one buggy student's details and first
    // failure open, as an instructor sees it after one click (a copy: the checks above
    // ran on the file as written).
    if std::env::var_os("SOCKGRADE_UPDATE_SCREENSHOT").is_some() {
        let report = std::fs::read_to_string(&page).unwrap();
        let bob = report.find("id=\"s-1\"").expect("bob's details");
        let (before, after) = report.split_at(bob);
        let after = after
            .replacen("id=\"s-1\">", "id=\"s-1\" open>", 1)
            .replacen(
                "<details class=\"case\">",
                "<details class=\"case\" open>",
                1,
            );
        let opened = shot_dir.path().join("opened.html");
        std::fs::write(&opened, format!("{before}{after}")).unwrap();
        let docs_png = shot_dir.path().join("docs.png");
        let (_, console) = browse(&opened, &[&format!("--screenshot={}", docs_png.display())]);
        assert!(console.is_empty(), "console output: {console:#?}");
        std::fs::copy(&docs_png, root().join("docs/class-report.png")).unwrap();
    }
}

#[test]
fn chromium_runs_no_hostile_script() {
    // Escaping, and behind it the page's Content-Security-Policy: an injected script
    // would either not be parsed as one or be refused (a console line, caught here).
    if chromium().is_none() {
        return;
    }
    let (header, record) = hostile_record();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("hostile.html");
    std::fs::write(&page, html::render(&header, &[record])).unwrap();
    let (dom, console) = browse(&page, &["--dump-dom"]);
    assert!(console.is_empty(), "console output: {console:#?}");
    assert!(dom.contains("data-ready=\"1\""), "{dom}");
    assert_eq!(dom.matches("<script").count(), 1);
}

/// A server whose output and replies are hostile markup: what it prints and sends must
/// reach the submission's page (and its sequence diagram) as text.
const HOSTILE_SERVER: &str = r#"import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 8888))
s.listen(5)
while True:
    conn, addr = s.accept()
    while True:
        data = conn.recv(1024)
        if not data:
            break
        print('<script>alert("stdout")</script>')
        conn.sendall(b'</text></svg><script>alert(1)</script><img src=x onerror=alert(2)>')
    conn.close()
"#;

#[test]
fn chromium_renders_a_submission_page_with_sequence_diagrams_and_escapes_student_data() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("hostile");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("tcp_server.py"), HOSTILE_SERVER).unwrap();
    let out = common::sockgrade()
        .arg("run")
        .arg(root().join(SPEC))
        .arg(&sub)
        .args(["--target", "server", "--format", "html"])
        .args([
            "--case",
            "replies to a message",
            "--case",
            "closes after the client closes",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page_text = String::from_utf8(out.stdout).unwrap();
    // Every case has its diagram; the student's data is in it, escaped.
    assert_eq!(page_text.matches("<svg class=\"seq\"").count(), 2);
    assert!(
        page_text.contains("&lt;/text&gt;&lt;/svg&gt;&lt;script&gt;"),
        "{page_text}"
    );
    assert!(
        page_text.contains("&lt;script&gt;alert(&quot;stdout&quot;)"),
        "{page_text}"
    );
    assert!(
        !page_text.contains("<script"),
        "no script at all in the page"
    );
    for outside in ["http://", "https://", "src=\"", "<link", "@import"] {
        assert!(
            !page_text
                .replace("http://www.w3.org/2000/svg", "")
                .contains(outside),
            "{outside}"
        );
    }
    if chromium().is_none() {
        return;
    }
    let page = dir.path().join("page.html");
    std::fs::write(&page, &page_text).unwrap();
    let (dom, console) = browse(&page, &["--dump-dom"]);
    assert!(console.is_empty(), "console output: {console:#?}");
    assert!(!dom.contains("<script") && !dom.contains("<img"), "{dom}");
    assert_eq!(dom.matches("<svg class=\"seq\"").count(), 2, "{dom}");
    // The arrows: the client's data, the server's hostile reply, the close.
    assert!(
        dom.contains("connect (SYN)") && dom.contains("FIN (shutdown)"),
        "{dom}"
    );
}

#[test]
fn class_report_links_each_student_to_their_page() {
    let g = graded();
    let page = std::fs::read_to_string(g.out.join("report.html")).unwrap();
    for student in ["alice", "bob", "carol", "dave"] {
        assert!(
            page.contains(&format!("href=\"reports/{student}.html\"")),
            "{student}'s row links their page"
        );
        let own = std::fs::read_to_string(g.out.join(format!("reports/{student}.html")))
            .unwrap_or_else(|e| panic!("{student}'s page: {e}"));
        assert!(
            own.contains("href=\"../report.html\""),
            "{student}: a link back"
        );
    }
    let bob = std::fs::read_to_string(g.out.join("reports/bob.html")).unwrap();
    assert!(
        bob.contains("<svg class=\"seq\"") && bob.contains("RST (reset)"),
        "{bob}"
    );
    if chromium().is_none() {
        return;
    }
    let (dom, console) = browse(&g.out.join("reports/bob.html"), &["--dump-dom"]);
    assert!(console.is_empty(), "console output: {console:#?}");
    assert!(dom.contains("✗ step"), "the failing step is marked");
}
