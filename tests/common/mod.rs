//! Helpers shared by the integration tests: run the real binary and read its JSON, or
//! grade a fixture in process with the real runner; redact what changes between runs.
#![allow(dead_code)]

use assert_cmd::Command;
use sockgrade::outcome::SubmissionResult;
use sockgrade::plan::Plan;
use sockgrade::sandbox::{Host, IsolationRequest};
use sockgrade::spec::Spec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Grades `fixture` (a path relative to the crate, e.g. "fixtures/good") with `spec`,
/// only the cases named (all when empty). Paths stay relative so reports are stable.
pub fn grade_in_process(spec: &str, fixture: &str, cases: &[&str]) -> SubmissionResult {
    grade_in_process_on(spec, fixture, cases, |_| {})
}

/// [`grade_in_process`] on this machine's host as `change` alters it: a state of the
/// machine (no `nft`, say) tested without changing the machine.
pub fn grade_in_process_on(
    spec: &str,
    fixture: &str,
    cases: &[&str],
    change: impl FnOnce(&mut Host),
) -> SubmissionResult {
    let s = Spec::load(Path::new(spec)).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let names: Vec<String> = cases.iter().map(|c| c.to_string()).collect();
    let plan = Plan::new(&s, &names, None).expect("the cases exist");
    let mut host = Host::detect(IsolationRequest::Auto).expect("a host to grade on");
    change(&mut host);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(sockgrade::runner::grade_submission(
        Arc::new(host),
        Arc::new(s),
        spec.to_string(),
        &plan,
        PathBuf::from(fixture),
        4,
    ))
}

/// insta filters for what differs between runs.
pub fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r#""duration_ms": \d+"#, r#""duration_ms": "[ms]""#),
        (r#""execution_time": \d+"#, r#""execution_time": "[s]""#),
        (r#"time="[0-9.]+""#, r#"time="[t]""#),
        (r" *\b\d+ ms\b", " [t] ms"),
        (r#""at_ms": \d+"#, r#""at_ms": "[t]""#),
        (r"pid=\d+", "pid=[pid]"),
        (r#""pid": \d+"#, r#""pid": "[pid]""#),
        (
            r"\((&apos;|')127\.0\.0\.1(&apos;|'), \d+\)",
            "(127.0.0.1, [port])",
        ),
        (r"(/tmp|/var/tmp)/[^\s\x22']+", "[tmp]"),
        (r"\d+\.\d\ds", "[t]s"),
        (r"/[^\s\x22']*/bin/(python[0-9.]*)", "$1"),
        // Unbuffered print() writes its arguments one by one and the server is stopped
        // at the end of each case: this line of the fixtures may be cut anywhere.
        (r"Connect from[^\n\\\x22]*", "Connect from [address]"),
    ]
}

/// Runs `f` with the filters in force.
pub fn redacted<R>(f: impl FnOnce() -> R) -> R {
    let mut settings = insta::Settings::clone_current();
    for (re, to) in filters() {
        settings.add_filter(re, to);
    }
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(f)
}

/// Whether a Python module can be imported; tests that need one skip with a message
/// when it is missing (`.ci/run` installs them).
pub fn python_has(module: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: python3 module `{module}` is missing: pip install {module} (.ci/run installs it)");
    }
    ok
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sockgrade() -> Command {
    let mut c = Command::cargo_bin("sockgrade").unwrap();
    c.current_dir(root()).env("NO_COLOR", "1");
    c
}

/// Grades one fixture for one target with the shipped spec; returns the JSON report.
pub fn grade(fixture: &str, target: &str, extra: &[&str]) -> serde_json::Value {
    let fixture = format!("fixtures/{fixture}");
    let args = [&["--target", target][..], extra].concat();
    grade_json("specs/tcp-basics.toml", &fixture, &args)
}

/// `run SPEC SUBMISSION --format json EXTRA...` (paths relative to the crate): the report.
pub fn grade_json(spec: &str, submission: &str, extra: &[&str]) -> serde_json::Value {
    let out = sockgrade()
        .args(["run", spec, submission, "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Case name → status ("passed", "failed", "error").
pub fn statuses(report: &serde_json::Value) -> BTreeMap<String, String> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts that exactly the `failing` cases failed and every other case passed, with
/// the reason of each unexpected verdict in the message.
pub fn assert_verdicts(report: &serde_json::Value, failing: &[&str]) {
    let got = statuses(report);
    for f in failing {
        assert!(got.contains_key(*f), "no case named {f:?} in {got:?}");
    }
    let mut wrong = Vec::new();
    for c in report["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let want = if failing.contains(&name) {
            "failed"
        } else {
            "passed"
        };
        if c["status"] != want {
            wrong.push(format!(
                "{name}: want {want}, got {} ({})",
                c["status"], c["reason"]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected verdicts:\n{}",
        wrong.join("\n")
    );
}

/// Whether the grader finds a `python2` here (pyenv gives it on the development
/// machines; a fresh one may not have it, and tests that need it say they were skipped).
pub fn has_python2() -> bool {
    sockgrade::runner::interpreter::resolve_program("python2").is_some()
}

/// Copies the files of `from` (one level) into `to`, made if missing.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A gradebook (or lms.csv) as student → (score, status, note).
pub fn rows(csv_text: &str) -> BTreeMap<String, (u32, String, String)> {
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let head = r.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let (score, status, note) = (col("score"), col("status"), col("note"));
    r.records()
        .map(|x| x.unwrap())
        .map(|x| {
            (
                x[0].to_string(),
                (
                    x[score].parse().unwrap(),
                    x[status].to_string(),
                    x[note].to_string(),
                ),
            )
        })
        .collect()
}

/// No process of a student is left: none has its cwd in this test's TMPDIR.
pub fn assert_no_student_processes(tmp: &Path) {
    let mut left = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) {
            if cwd.starts_with(tmp) {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                left.push(format!(
                    "{} {}",
                    e.file_name().to_string_lossy(),
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                ));
            }
        }
    }
    assert!(left.is_empty(), "student processes left behind: {left:?}");
}

/// The students lines of a journal (it also notes when each grading starts).
pub fn journaled_students(out: &Path) -> usize {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(r#"{"type":"student""#))
        .count()
}

/// Whether this test can act as an unprivileged user (it runs as root, and util-linux's
/// `setpriv` is here); says why it is skipped when not.
pub fn can_act_as_nobody() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        || std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!("skipped: needs root and setpriv to act as an unprivileged user");
        return false;
    }
    true
}

/// The minimal environment of every run in [`as_nobody`] (and of the root runs it is
/// compared with): the same PATH, so both find the same interpreters.
pub const PLAIN_ENV: &[&str] = &[
    "PATH=/usr/bin:/bin:/usr/sbin:/sbin",
    "HOME=/tmp",
    "NO_COLOR=1",
];

/// Which user namespaces an unprivileged run may make.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UserNs {
    /// As the machine allows.
    Allowed,
    /// Refused by the kernel, as in a container whose seccomp profile forbids them
    /// ([`refuse_user_namespaces`]).
    Refused,
}

/// `sockgrade ARGS` as `nobody` (uid and gid 65534, no groups), in the crate's folder,
/// with [`PLAIN_ENV`] only.
pub fn as_nobody(args: &[&str], userns: UserNs) -> std::process::Output {
    nobody_command(args, userns).output().unwrap()
}

/// The command of [`as_nobody`], to add to.
pub fn nobody_command(args: &[&str], userns: UserNs) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "env",
        "-i",
    ])
    .args(PLAIN_ENV)
    .arg(env!("CARGO_BIN_EXE_sockgrade"))
    .args(args)
    .current_dir(root());
    if userns == UserNs::Refused {
        let filter = refuse_user_namespaces();
        // SAFETY: apply_filter makes two prctl calls on a program built before the fork.
        unsafe {
            cmd.pre_exec(move || seccompiler::apply_filter(&filter).map_err(std::io::Error::other));
        }
    }
    cmd
}

/// `sockgrade ARGS` as root with the environment of [`as_nobody`]: what an unprivileged
/// run is compared with.
pub fn as_root_plain(args: &[&str]) -> std::process::Output {
    std::process::Command::new("env")
        .arg("-i")
        .args(PLAIN_ENV)
        .arg(env!("CARGO_BIN_EXE_sockgrade"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// What Docker's default seccomp profile does to an unprivileged container: `unshare` and
/// `clone` with `CLONE_NEWUSER` fail with EPERM (a real refusal by the kernel, inherited
/// by setpriv and the grader, which enters its user namespace with `unshare`).
pub fn refuse_user_namespaces() -> seccompiler::BpfProgram {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    };
    let newuser = libc::CLONE_NEWUSER as u64;
    let rule = || {
        SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(newuser),
            newuser,
        )
        .unwrap()])
        .unwrap()
    };
    let rules = [libc::SYS_unshare, libc::SYS_clone]
        .into_iter()
        .map(|nr| (nr, vec![rule()]))
        .collect();
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        std::env::consts::ARCH.try_into().unwrap(),
    )
    .unwrap()
    .try_into()
    .unwrap()
}
