//! The command line of the formats work, run as a user would (assert_cmd): init, schema,
//! spec errors for the visibility keys, `run --student`, `run --format github` in a
//! simulated Actions environment, `check --against`, and the Gradescope example tree.

mod common;

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn sockgrade() -> Command {
    Command::cargo_bin("sockgrade").unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn init_writes_a_valid_starter_spec_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("course");
    sockgrade()
        .arg("init")
        .arg(&target)
        .assert()
        .success()
        .stdout(predicate::str::contains("sockgrade.toml"));
    let spec = std::fs::read_to_string(target.join("sockgrade.toml")).unwrap();
    assert!(
        spec.starts_with("#:schema ./spec.schema.json\n"),
        "the schema line points beside the spec"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("spec.schema.json")).unwrap(),
        sockgrade::spec::raw::json_schema()
    );
    sockgrade()
        .arg("check")
        .arg(target.join("sockgrade.toml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("the spec is valid"));
    // A second init changes nothing and says why.
    std::fs::write(target.join("sockgrade.toml"), "# my edits\n").unwrap();
    sockgrade()
        .arg("init")
        .arg(&target)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("already exists")
                .and(predicate::str::contains("never overwrites")),
        );
    assert_eq!(
        std::fs::read_to_string(target.join("sockgrade.toml")).unwrap(),
        "# my edits\n"
    );
}

#[test]
fn schema_prints_the_shipped_schema() {
    let shipped = std::fs::read_to_string("schema/spec.schema.json").unwrap();
    sockgrade().arg("schema").assert().success().stdout(shipped);
}

#[test]
fn visibility_and_show_are_validated_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = std::fs::read_to_string("tests/specs/visibility.toml")
        .unwrap()
        .replace(r#"visibility = "hidden""#, r#"visibility = "secret""#)
        .replace(
            r#"show = ["step", "sent", "hint"]"#,
            r#"show = ["step", "answer", "hint"]"#,
        );
    std::fs::write(&path, &text).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let out = sockgrade()
        .arg("check")
        .arg(&path)
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(
        err.contains(&format!("bad.toml:{}:14", line_of(r#""secret""#))),
        "{err}"
    );
    assert!(
        err.contains("case[2].visibility: unknown visibility \"secret\""),
        "{err}"
    );
    assert!(err.contains(r#"allowed (Gradescope's words): "visible", "hidden", "after_due_date", "after_published""#), "{err}");
    assert!(
        err.contains("case[1].show[1]: \"answer\" is not a part of a failure report"),
        "{err}"
    );
    assert!(
        err.contains(&format!("bad.toml:{}:17", line_of(r#""answer""#))),
        "{err}"
    );
    assert!(err.contains(r#""sent", "expected", "got""#), "{err}");
    assert!(err.contains("2 errors in the spec"), "{err}");
}

#[test]
fn student_mode_exit_code_counts_only_what_the_student_sees() {
    let run = |student: bool| {
        let mut c = sockgrade();
        c.args([
            "run",
            "tests/specs/visibility.toml",
            "fixtures/server_no_empty_recv_check",
            "--case",
            "replies to a message",
            "--case",
            "does not busy-loop after the client closes",
        ]);
        if student {
            c.arg("--student");
        }
        c.assert()
    };
    run(false)
        .code(1)
        .stdout(predicate::str::contains("does not busy-loop"));
    run(true)
        .code(0)
        .stdout(predicate::str::contains("does not busy-loop").not().and(
            predicate::str::contains("Score: hidden until every test is shown"),
        ));
}

#[test]
fn github_format_writes_the_summary_and_the_classroom_output() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, output) = (dir.path().join("summary.md"), dir.path().join("output"));
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = sockgrade()
        .args([
            "run",
            "specs/tcp-basics.toml",
            "fixtures/server_rst_on_close",
            "--format",
            "github",
            "--case",
            "closes after the client closes",
            "--case",
            "accepts a connection",
        ])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &output)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(out).unwrap();
    assert!(
        stdout.contains("::error title=closes after the client closes (server%2C 0/2 points)::"),
        "{stdout}"
    );
    assert!(
        stdout.contains("::notice title=sockgrade score::1/3 points"),
        "{stdout}"
    );
    assert!(!stdout.contains('\x1b'), "no colour codes in the log");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n## ❌ sockgrade: 1/3 points"),
        "appended, not replaced: {md}"
    );
    let out = std::fs::read_to_string(&output).unwrap();
    assert!(
        out.starts_with("result=") && out.ends_with('\n') && out.lines().count() == 1,
        "{out}"
    );
}

#[test]
fn check_against_reference_solutions() {
    let dir = tempfile::tempdir().unwrap();
    let refs = dir.path();
    copy_dir(Path::new("fixtures/good"), &refs.join("pass/good"));
    copy_dir(
        Path::new("fixtures/server_rst_on_close"),
        &refs.join("fail/rst_on_close"),
    );
    std::fs::write(
        refs.join("fail/rst_on_close/sockgrade-expect.txt"),
        "# the one bug\ncloses after the client closes\n",
    )
    .unwrap();
    sockgrade()
        .args(["check", "tests/specs/visibility.toml", "--against"])
        .arg(refs)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("pass/good")
                .and(predicate::str::contains("fail/rst_on_close"))
                .and(predicate::str::contains(
                    "every submission met its expectation",
                )),
        );
    // A "buggy" solution that is not buggy, and an expectation that is too narrow.
    copy_dir(
        Path::new("fixtures/good"),
        &refs.join("fail/not_really_buggy"),
    );
    std::fs::write(
        refs.join("fail/rst_on_close/sockgrade-expect.txt"),
        "replies to a message\n",
    )
    .unwrap();
    let out = sockgrade()
        .args(["check", "tests/specs/visibility.toml", "--against"])
        .arg(refs)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(out).unwrap();
    assert!(
        table.contains("✗ should lose points, but scores full marks"),
        "{table}"
    );
    assert!(table.contains(r#"passes "replies to a message" (should fail); also fails "closes after the client closes""#), "{table}");
    assert!(
        table.contains("2 of 3 submissions did not meet their expectation"),
        "{table}"
    );
}

/// `check --against` grades a reference solution exactly as `run` grades it: a Python 2
/// pair (`print x`) is run by the spec's fallback_command in both, with the same score
/// and the same note (before, `check` ran it under python3 and every case failed).
#[test]
fn check_against_grades_a_python2_reference_as_run_does() {
    if sockgrade::runner::interpreter::resolve_program("python2").is_none() {
        eprintln!("SKIPPED: no python2 on this machine (pyenv install 2.7.18 to run this test)");
        return;
    }
    let out = sockgrade()
        .args([
            "run",
            "specs/tcp-basics.toml",
            "fixtures/python2_pair",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let run: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let notes = run["notes"].to_string();
    assert!(
        notes.contains("graded with `python2 tcp_server.py`"),
        "{notes}"
    );
    let score = format!("{}/{}", run["score"], run["max_score"]);
    assert_eq!(run["score"], run["max_score"], "{run}");

    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        Path::new("fixtures/python2_pair"),
        &dir.path().join("pass/python2_pair"),
    );
    let out = sockgrade()
        .args(["check", "specs/tcp-basics.toml", "--against"])
        .arg(dir.path())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(out).unwrap();
    let row = table
        .lines()
        .find(|l| l.contains("pass/python2_pair"))
        .unwrap_or_else(|| panic!("no row for the reference: {table}"));
    assert!(
        row.contains(&score) && row.contains("✓ as expected"),
        "{table}"
    );
}

#[test]
fn check_against_says_what_a_reference_folder_needs() {
    let dir = tempfile::tempdir().unwrap();
    sockgrade()
        .args(["check", "specs/tcp-basics.toml", "--against"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no submissions under pass/ or fail/",
        ));
    copy_dir(Path::new("fixtures/good"), &dir.path().join("fail/x"));
    std::fs::write(
        dir.path().join("fail/x/sockgrade-expect.txt"),
        "no such case\n",
    )
    .unwrap();
    sockgrade()
        .args(["check", "specs/tcp-basics.toml", "--against"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "\"no such case\" is not a case of the spec",
        ));
}

/// examples/gradescope/ run as Gradescope would, by scripts/test-gradescope.sh.
#[test]
fn gradescope_example_tree() {
    let out = std::process::Command::new("bash")
        .arg("scripts/test-gradescope.sh")
        .env("SOCKGRADE_BIN", env!("CARGO_BIN_EXE_sockgrade"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "test-gradescope.sh failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("test-gradescope: all checks passed"),
        "{stdout}"
    );
}
