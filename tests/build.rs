//! Build steps (the spec's `build`, issue 17): the C and Java seed homework graded with
//! `check --against` from their fixtures, a submission that does not compile reported
//! once (the compiler's first error) in every report format, a class of C submissions
//! whose build time shows in the summary and per-student reports, and hostile builds
//! (a hang, a flood) contained. gcc and javac come from `.ci/run`; without them the tests
//! that need them say SKIPPED.

mod common;

use common::{redacted, root, sockgrade};
use std::path::{Path, PathBuf};

/// Whether `tool` runs here; tests that need it skip with a message when not.
fn have(tool: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: `{tool}` is missing (.ci/run installs gcc and default-jdk-headless)");
    }
    ok
}

/// Copies a folder's regular files (fixtures are flat).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The `pass/<name>/` and `fail/<name>/` tree that `check --against` reads, made from a
/// fixtures folder and the spec's `.expect` file (a `[name]` section per fixture: the
/// cases it must fail, none for a pass).
fn check_tree(fixtures: &str, expect: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(expect)).unwrap();
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap().trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.to_string(), Vec::new()));
        } else if !line.is_empty() {
            sections
                .last_mut()
                .expect("a case under a section")
                .1
                .push(line.to_string());
        }
    }
    assert!(sections.len() >= 4, "{expect}: {sections:?}");
    for (name, cases) in sections {
        let from = root().join(fixtures).join(&name);
        let to = match cases.is_empty() {
            true => dir.path().join("pass").join(&name),
            false => dir.path().join("fail").join(&name),
        };
        copy_dir(&from, &to);
        if !cases.is_empty() {
            std::fs::write(to.join("sockgrade-expect.txt"), cases.join("\n") + "\n").unwrap();
        }
    }
    dir
}

fn check_against(spec: &str, fixtures: &str, expect: &str) {
    let tree = check_tree(fixtures, expect);
    let out = sockgrade()
        .args(["check", spec, "--against"])
        .arg(tree.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{spec}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("fail/server_does_not_compile"), "{stdout}");
}

#[test]
fn the_c_spec_tells_its_fixtures_apart() {
    if !have("gcc") {
        return;
    }
    check_against(
        "specs/tcp-basics-c.toml",
        "fixtures/c",
        "specs/tcp-basics-c.expect",
    );
}

#[test]
fn the_java_spec_tells_its_fixtures_apart() {
    if !have("javac") {
        return;
    }
    check_against(
        "specs/tcp-basics-java.toml",
        "fixtures/java",
        "specs/tcp-basics-java.expect",
    );
}

/// `sockgrade run` of the C server that does not compile, in `format`.
fn does_not_compile(format: &str) -> String {
    let out = sockgrade()
        .args([
            "run",
            "specs/tcp-basics-c.toml",
            "fixtures/c/server_does_not_compile",
            "--target",
            "server",
            "--format",
            format,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What differs between runs and machines beyond the shared filters: build times.
fn build_redacted<R>(f: impl FnOnce() -> R) -> R {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d+\.\d s\b", "[t] s");
    settings.bind(|| redacted(f))
}

const GCC_FIRST_ERROR: &str = "tcp_server.c:39:28: error: expected";

#[test]
fn a_submission_that_does_not_compile_is_one_error_in_every_format() {
    if !have("gcc") {
        return;
    }
    for format in ["text", "json", "gradescope", "junit", "github"] {
        let report = does_not_compile(format);
        // The compiler's first error is there, and the compiler's output only once.
        assert!(report.contains(GCC_FIRST_ERROR), "{format}:\n{report}");
        let printed = report.matches("listen(sockfd, BACKLOG)").count();
        assert!(
            printed <= 1,
            "{format}: the output {printed} times:\n{report}"
        );
        build_redacted(|| insta::assert_snapshot!(format!("does_not_compile_{format}"), report));
    }
    let json: serde_json::Value = serde_json::from_str(&does_not_compile("json")).unwrap();
    let builds = json["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert_eq!(builds[0]["status"], "error");
    let cases = json["cases"].as_array().unwrap();
    assert!(cases.iter().all(|c| c["status"] == "error"
        && c["reason"] == "not run: the server did not build (see its build)"));
    assert_eq!(json["score"], 0);
}

/// A class: two good C submissions, one that does not compile, one with a bug.
fn c_class() -> tempfile::TempDir {
    let class = tempfile::tempdir().unwrap();
    for (student, fixture) in [
        ("alice", "good"),
        ("bob", "server_does_not_compile"),
        ("carol", "server_never_closes"),
        ("dave", "good"),
    ] {
        copy_dir(
            &root().join("fixtures/c").join(fixture),
            &class.path().join(student),
        );
    }
    class
}

#[test]
fn a_class_of_c_submissions_shows_its_build_time() {
    if !have("gcc") {
        return;
    }
    let class = c_class();
    let out_dir = tempfile::tempdir().unwrap();
    let out = sockgrade()
        .args(["grade", "specs/tcp-basics-c.toml"])
        .arg(class.path())
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary: build time in all and the slowest builds.
    assert!(stdout.contains("build time:"), "{stdout}");
    assert!(stdout.contains("s  alice"), "{stdout}");
    // Per-student reports: each build with its time; bob's failed build once, first error first.
    let reports: PathBuf = out_dir.path().join("reports");
    let alice = std::fs::read_to_string(reports.join("alice.txt")).unwrap();
    assert!(
        alice.contains("✓ build: gcc -O2 -Wall -o tcp_server"),
        "{alice}"
    );
    assert!(alice.contains(" s server"), "{alice}");
    let bob = std::fs::read_to_string(reports.join("bob.txt")).unwrap();
    assert!(bob.contains("the server did not build"), "{bob}");
    assert!(bob.contains(GCC_FIRST_ERROR), "{bob}");
    let bob_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("bob.json")).unwrap()).unwrap();
    assert!(bob_json["builds"][0]["duration_ms"].as_u64().is_some());
    // The gradebook says why bob scored what he did, once; the class report shows the build.
    let gradebook = std::fs::read_to_string(out_dir.path().join("gradebook.csv")).unwrap();
    let bob_row = gradebook.lines().find(|l| l.starts_with("bob,")).unwrap();
    assert!(bob_row.contains("the server did not build"), "{bob_row}");
    assert!(bob_row.contains("error: expected"), "{bob_row}");
    let html = std::fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    assert!(
        html.contains("the server did not build"),
        "the class report"
    );
    let carol = std::fs::read_to_string(reports.join("carol.txt")).unwrap();
    assert!(
        carol.contains("✗ closes after the client closes"),
        "{carol}"
    );
}

/// Grades a fixture of `fixtures/c` with the small build limits of
/// `tests/specs/build-hostile.toml`; returns the JSON report and the time it took.
fn grade_hostile(fixture: &str) -> (serde_json::Value, std::time::Duration) {
    let t0 = std::time::Instant::now();
    let out = sockgrade()
        .args(["run", "tests/specs/build-hostile.toml"])
        .arg(format!("fixtures/c/{fixture}"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    let took = t0.elapsed();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), took)
}

#[test]
fn a_good_build_under_the_small_limits_passes() {
    if !have("gcc") {
        return;
    }
    let (r, _) = grade_hostile("good");
    assert_eq!(r["builds"][0]["status"], "passed", "{r}");
    assert_eq!(r["score"], 3, "{r}");
}

#[test]
fn a_build_that_hangs_is_stopped() {
    if !have("gcc") {
        return;
    }
    // gcc reading /dev/zero: stopped by its time limit (3 s, at most twice that on a busy
    // machine) or its memory limit, whichever comes first; the cases do not run.
    let (r, took) = grade_hostile("hostile_build_hangs");
    let build = &r["builds"][0];
    assert_eq!(build["status"], "error", "{r}");
    let reason = build["reason"].as_str().unwrap();
    assert!(
        reason.contains("did not finish within 3s") || reason.contains("ran out of memory"),
        "{reason}"
    );
    assert!(took.as_secs() < 15, "{took:?}");
    assert!(r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "error"));
}

/// Issue 12, item 5, for builds: a build script that writes 1 GiB in its folder meets
/// the same bounded work folder as a case, and its reason names the limit.
#[test]
fn a_build_that_fills_its_folder_meets_the_limit() {
    let (r, _) = grade_hostile("hostile_build_fills_disk");
    let build = &r["builds"][0];
    assert_eq!(build["status"], "error", "{r}");
    if r["isolation"] == "none" {
        eprintln!("SKIPPED: work folders are bounded only where the grader may mount (root)");
        return;
    }
    let reason = build["reason"].as_str().unwrap();
    assert!(
        reason.contains("the work folder is full: the build filled it to 128 MiB"),
        "{reason}"
    );
}

#[test]
fn a_build_that_floods_is_cut_and_stopped() {
    let (r, took) = grade_hostile("hostile_build_flood");
    let build = &r["builds"][0];
    assert_eq!(build["status"], "error", "{r}");
    let reason = build["reason"].as_str().unwrap();
    assert!(reason.contains("did not finish within 3s"), "{reason}");
    assert!(took.as_secs() < 15, "{took:?}");
    // Only the head and tail of the flood are kept, cut to the lines a report shows.
    let output = build["output"].as_array().unwrap();
    assert!(output.len() <= 43, "{} lines", output.len());
    let bytes: usize = output.iter().map(|l| l.as_str().unwrap().len()).sum();
    assert!(bytes < 8 << 10, "{bytes} bytes kept");
}

#[test]
fn mistakes_in_a_build_are_located_spec_errors() {
    let out = sockgrade()
        .args(["check", "tests/bad_specs/bad_build.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    redacted(|| insta::assert_snapshot!("spec_error_bad_build", stderr));
}
