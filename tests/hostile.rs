//! Hostile and broken programs cost their author points with a clear reason, never the
//! grader, the machine, or another submission: nothing they start survives their case,
//! nothing they write reaches the submission or the host.

mod common;
use common::{assert_verdicts, copy_dir, root, statuses};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
        assert!(!reasons(&r).contains("threads"), "{}", reasons(&r));
    }
}

/// The task limit counts threads too: 500 threads in one process are told apart from a
/// fork bomb (the reason said "processes … fork() was refused"), in every case of the
/// server, the one that stops it with Ctrl-C included; a correct classmate graded
/// beside it keeps every point.
#[test]
fn a_thread_flood_hits_the_limit_and_is_called_threads() {
    let run = grade_class("hostile_thread_flood");
    run.assert_alice_unharmed();
    if !run.full() {
        return;
    }
    for c in run.server_cases() {
        assert_eq!(c["status"], "failed", "{c}");
        let why = c["reason"].as_str().unwrap_or_default();
        assert!(
            why.contains("started more than 64 threads at once (the limit counts processes and threads); pthread_create/threading.Thread failed"),
            "{}: {why}", c["name"]
        );
        assert!(!why.contains("fork()"), "{}: {why}", c["name"]);
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

/// Socket buffers count as the case's memory: a server that parks data in 200 loopback
/// connections it never reads (778 MiB uncontained on a hybrid v1/v2 host, where v1 does
/// not charge socket memory unless told to) is stopped at the case's 256 MiB, and still
/// serves; or, where going over the limit kills it (cgroup2 charges sockets to
/// `memory.max`), the reason says so. Every case of its server parks at once, beside a
/// correct classmate who keeps every point.
#[test]
fn socket_buffers_count_against_the_memory_limit() {
    let run = grade_class("hostile_socket_hog");
    run.assert_alice_unharmed();
    if !run.full() {
        return;
    }
    for case in run.server_cases() {
        let said: Vec<String> = case["stdout_tail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap_or_default().to_string())
            .collect();
        let parked = said.iter().find_map(|l| {
            l.strip_prefix("parked ")?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        });
        let why = case["reason"].as_str().unwrap_or_default();
        match parked {
            Some(mib) => {
                eprintln!("{}: {said:?}", case["name"]);
                // The limit, and a little the kernel charges past it before it says no.
                assert!(
                    mib <= 256 + 16,
                    "{}: {mib} MiB parked: {said:?}",
                    case["name"]
                );
                if case["name"] == "replies to a message" {
                    assert_eq!(case["status"], "passed", "{why}");
                }
            }
            None => assert!(
                why.contains("more than 256 MiB of memory"),
                "{}: neither parked within the limit nor stopped by it: {why}",
                case["name"]
            ),
        }
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
    // The share the report gives: "(85 % of a CPU)" or "(1.1 CPUs busy at once)". The
    // kernel enforces a quota per 20 ms period and checks it at scheduler ticks, so a
    // program with 60 runnable processes on a loaded machine overshoots one CPU by a few
    // ticks per period (measured up to 1.2); without the quota it takes every CPU there is.
    let why = reasons(&mallory);
    let share = why
        .split_once(" CPUs busy at once)")
        .and_then(|(before, _)| before.rsplit_once('(')?.1.parse::<f64>().ok())
        .or_else(|| why.contains("% of a CPU) and wrote").then_some(1.0))
        .unwrap_or_else(|| panic!("no CPU share in the reasons: {why}"));
    assert!(share <= 1.5, "no CPU quota: {why}");
}

/// A class as a deployment lays it out: outside the temp folder (Gradescope's
/// `/autograder/source`, a Kubernetes volume), graded by `sockgrade grade` with absolute
/// paths, so that the grader's command line names the class folder and the spec.
struct ClassRun {
    /// The report of `mallory` (the hostile fixture) and of `alice` (a correct server
    /// and client).
    mallory: serde_json::Value,
    alice: serde_json::Value,
    isolation: String,
    /// The class's gradebook.csv.
    gradebook: String,
}

/// The class folder of a [`ClassRun`], before it is graded: `mallory` (the fixture's
/// server, and a correct client where it has none) and `alice` (`good`), in a folder
/// of its own below `target/hostile-classes`, removed when this is dropped.
struct Class {
    dir: tempfile::TempDir,
}

impl Class {
    fn new(fixture: &str) -> Class {
        let base = root().join("target/hostile-classes");
        std::fs::create_dir_all(&base).unwrap();
        let class = Class {
            dir: tempfile::tempdir_in(&base).unwrap(),
        };
        class.add("mallory", fixture);
        class.add("alice", "good");
        // The hostile part is the server; mallory's client is a correct one.
        let client = class.path().join("mallory/tcp_client.py");
        if !client.exists() {
            std::fs::copy(root().join("fixtures/good/tcp_client.py"), client).unwrap();
        }
        class
    }

    /// Adds a student whose folder is a copy of `fixtures/<fixture>`.
    fn add(&self, student: &str, fixture: &str) {
        copy_dir(
            &root().join("fixtures").join(fixture),
            &self.path().join(student),
        );
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("class")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// `grade SPEC CLASS --out OUT`, every path absolute.
    fn grade_args(&self) -> Vec<std::ffi::OsString> {
        vec![
            "grade".into(),
            root().join("specs/tcp-basics.toml").into(),
            self.path().into(),
            "--out".into(),
            self.out().into(),
        ]
    }

    /// The grader, ready to grade the class (stdout, the progress, thrown away).
    fn grader(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sockgrade"));
        cmd.current_dir(root())
            .args(self.grade_args())
            .stdout(std::process::Stdio::null());
        cmd
    }

    /// The reports and gradebook of a run that completed.
    fn graded(&self) -> ClassRun {
        let out = self.out();
        let report = |s: &str| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(out.join(format!("reports/{s}.json"))).unwrap())
                .unwrap()
        };
        let (mallory, alice) = (report("mallory"), report("alice"));
        let isolation = alice["isolation"].as_str().unwrap_or_default().to_string();
        let gradebook = std::fs::read_to_string(out.join("gradebook.csv")).unwrap_or_default();
        ClassRun {
            mallory,
            alice,
            isolation,
            gradebook,
        }
    }
}

/// Grades the class of `mallory` (`fixtures/<fixture>`) and `alice`; the run completes,
/// and nothing of it outlives the grader.
fn grade_class(fixture: &str) -> ClassRun {
    let class = Class::new(fixture);
    let mut grader = class.grader().spawn().unwrap();
    let status = grader.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the class run completed");
    let run = class.graded();
    if run.isolation == "full" {
        assert_eq!(
            survivors(grader.id()),
            Vec::<String>::new(),
            "processes of the class of {fixture} outlived the grader"
        );
    }
    run
}

impl ClassRun {
    /// The correct neighbour keeps its full score.
    fn assert_alice_unharmed(&self) {
        assert_eq!(
            self.alice["score"],
            self.alice["max_score"],
            "alice lost points beside a hostile classmate:\n{}",
            reasons(&self.alice)
        );
    }

    /// Mallory's cases of the server.
    fn server_cases(&self) -> impl Iterator<Item = &serde_json::Value> {
        self.mallory["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["target"] == "server")
    }

    fn case(&self, name: &str) -> &serde_json::Value {
        self.mallory["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name:?}"))
    }

    fn full(&self) -> bool {
        if self.isolation != "full" {
            eprintln!(
                "skipped: this test needs --isolation full; the grader ran with {}",
                self.isolation
            );
            return false;
        }
        true
    }
}

/// Issue 12, item 1: a submission with no server of its own looked for the class
/// folder in the grader's command line (`/proc/<pid>/cmdline`) and ran a classmate's
/// server. In the case's root there is no class folder, no spec, no `--out`, and its
/// `/proc` shows only the case's own processes.
#[test]
fn a_submission_cannot_find_and_run_a_classmates_server() {
    let run = grade_class("hostile_copies_a_classmate");
    run.assert_alice_unharmed();
    if !run.full() {
        return;
    }
    let case = run.case("replies to a message");
    assert_eq!(case["status"], "failed", "{case}");
    let reason = case["reason"].as_str().unwrap();
    assert!(reason.contains("found no classmate to copy"), "{reason}");
    assert!(
        !reason.contains("grader command line"),
        "the grader was visible: {reason}"
    );
    // Nothing of the host's tree: its top-level folders are the minimal root's.
    assert!(
        !reason.contains("'work'") && !reason.contains("'home'"),
        "{reason}"
    );
    for c in run.mallory["cases"].as_array().unwrap() {
        if c["target"] == "server" {
            assert_eq!(c["status"], "failed", "{c}");
        }
    }
}

/// Issue 12, item 2: case uids wrapped after 256 cases, and a program killed a
/// classmate's server of the same uid. Now a program that SIGKILLs everything it sees
/// sees nothing but its case's init (which it may not signal), and no two live cases
/// share a uid (`live_cases_never_share_a_uid` below).
#[test]
fn a_program_killing_everything_it_sees_kills_no_classmate() {
    let run = grade_class("hostile_kills_classmates");
    run.assert_alice_unharmed();
    if !run.full() {
        return;
    }
    assert_verdicts(&run.mallory, &["serves two clients at the same time"]);
}

/// Issue 12, item 2: uids wrapped after 256 cases, so case k and k + 256 of a run
/// shared one. Live cases never share a uid, however many there are (here, in the
/// tests' binary of their own, so that 300 namespaces do not weigh on the timing tests
/// of the library's).
#[test]
fn live_cases_never_share_a_uid() {
    use sockgrade::sandbox::confine::Confinement;
    if Confinement::available().is_err() {
        eprintln!("skipped: confinement unavailable here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let live: Vec<Confinement> = (0..300)
        .map(|_| Confinement::prepare(dir.path(), &[]).unwrap())
        .collect();
    let uids: std::collections::HashSet<u32> = live.iter().map(|c| c.uid()).collect();
    assert_eq!(uids.len(), live.len(), "two live cases share a uid");
    assert!(uids.iter().all(|u| (0x4000_0000..0x8000_0000).contains(u)));
    // Each is its init's pid: free again once the case has ended.
    for c in &live {
        assert_eq!(c.uid(), 0x4000_0000 + c.init_pid());
    }
}

/// The key of `fixtures/hostile_sysv_channel`.
const SYSV_KEY: i32 = 0x534B4752;

/// SysV objects with `SYSV_KEY` in the host's IPC namespace: (shared memory, queues).
fn host_sysv_objects() -> (bool, bool) {
    let has = |table: &str| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some(&SYSV_KEY.to_string()))
    };
    (has("/proc/sysvipc/shm"), has("/proc/sysvipc/msg"))
}

fn remove_host_sysv_objects() {
    // SAFETY: plain system calls on the host's IPC objects of that key, if any.
    unsafe {
        let shm = libc::shmget(SYSV_KEY, 0, 0);
        if shm >= 0 {
            libc::shmctl(shm, libc::IPC_RMID, std::ptr::null_mut());
        }
        let q = libc::msgget(SYSV_KEY, 0);
        if q >= 0 {
            libc::msgctl(q, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

/// Issue 12, item 3: a 200 MiB SysV segment and a message queue outlived the run, and a
/// later run read them. Each case now has an IPC namespace of its own, gone with it.
#[test]
fn sysv_shared_memory_and_queues_die_with_their_case() {
    remove_host_sysv_objects();
    let run = grade_class("hostile_sysv_channel");
    let left = host_sysv_objects();
    remove_host_sysv_objects();
    run.assert_alice_unharmed();
    if !run.full() {
        return;
    }
    assert_eq!(
        left,
        (false, false),
        "(shared memory, queue) left on the host"
    );
    assert_verdicts(&run.mallory, &["serves two clients at the same time"]);
    // No case found what an earlier one left.
    let all = run.mallory.to_string();
    assert!(!all.contains("found in"), "{all}");
}

/// Waits (inotify, up to `limit`) until a file `name` appears in a folder made in
/// `dir` or one level below (the grader's folder holds its work folders); returns that
/// folder. A work folder may become a tmpfs after it was watched: a change of the
/// mount table wakes the wait too, and the folders are watched again as they are.
fn wait_for_marker(dir: &Path, name: &str, limit: std::time::Duration) -> Option<PathBuf> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let deadline = std::time::Instant::now() + limit;
    let subfolders = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    };
    // SAFETY: plain system calls on descriptors of our own, closed below.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK);
        assert!(fd >= 0);
        // Seen through `/proc/N/root` (another mount namespace: see `ns_view`), the
        // mounts to watch are N's.
        let mountinfo = dir
            .strip_prefix("/proc")
            .ok()
            .and_then(|rest| rest.iter().next())
            .map(|pid| format!("/proc/{}/mountinfo", pid.to_string_lossy()))
            .unwrap_or_else(|| "/proc/self/mountinfo".into());
        let mountinfo = CString::new(mountinfo).unwrap();
        let mounts = libc::open(mountinfo.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        let watch = |p: &Path, mask: u32| {
            let c = CString::new(p.as_os_str().as_bytes()).unwrap();
            libc::inotify_add_watch(fd, c.as_ptr(), mask)
        };
        let mask = libc::IN_CLOSE_WRITE | libc::IN_CREATE | libc::IN_MOVED_TO;
        watch(dir, mask);
        let found = 'outer: loop {
            // Watched before looked in: nothing made in between is missed.
            for p in subfolders(dir) {
                watch(&p, mask);
                for q in std::iter::once(p.clone()).chain(subfolders(&p)) {
                    watch(&q, mask);
                    if q.join(name).exists() {
                        break 'outer Some(q);
                    }
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break None;
            }
            let mut pfd = [
                libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: mounts,
                    events: libc::POLLPRI,
                    revents: 0,
                },
            ];
            libc::poll(pfd.as_mut_ptr(), 2, left.as_millis() as i32);
            let mut buf = [0u8; 4096];
            while libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) > 0 {}
        };
        libc::close(fd);
        libc::close(mounts);
        found
    }
}

/// Processes whose working folder is in `dir`.
fn processes_in(dir: &Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cwd = std::fs::read_link(e.path().join("cwd")).ok()?;
            cwd.starts_with(dir).then_some(pid)
        })
        .collect()
}

/// Mounts below `dir` (a killed grader's bounded work folders).
fn mounts_below(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .map(String::from)
        .collect()
}

/// Removes a test's temp folder, unmounting first what a killed grader left mounted.
fn remove_test_temp(dir: &Path) {
    for m in mounts_below(dir) {
        let _ = nix::mount::umount2(
            m.as_str(),
            nix::mount::MntFlags::MNT_DETACH | nix::mount::MntFlags::UMOUNT_NOFOLLOW,
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 12, item 8: after a `kill -9` of the grader, children that ignore SIGTERM
/// survived. The case's init dies with the grader (its parent-death signal), and with it
/// every process of the case's PID namespace, the setsid daemon included.
#[test]
fn a_kill_9_of_the_grader_leaves_no_student_process() {
    let tmp = std::env::temp_dir().join(format!("sockgrade-hostile-kill9-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut grader = Command::new(env!("CARGO_BIN_EXE_sockgrade"))
        .current_dir(root())
        .env("TMPDIR", &tmp)
        .args([
            "run",
            "specs/tcp-basics.toml",
            "fixtures/hostile_outlives_the_grader",
            "--target",
            "server",
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let folder = wait_for_marker(&tmp, "daemon-started", std::time::Duration::from_secs(30));
    let pidfd = |p: i32| -> Option<(i32, i32)> {
        // SAFETY: plain system call.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, p, 0) } as i32;
        (fd >= 0).then_some((p, fd))
    };
    let ended = |fd: i32, ms: i32| {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on our own pidfd.
        unsafe { libc::poll(&mut p, 1, ms) == 1 }
    };
    let students: Vec<(i32, i32)> = processes_in(&tmp).into_iter().filter_map(pidfd).collect();
    // The cases' inits: `sockgrade-init` (or `sleep infinity`), children of the grader.
    let inits: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid: u32 = stat.rsplit(") ").next()?.split(' ').nth(1)?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            (ppid == grader.id()
                && (cmd.starts_with(b"sockgrade-init\0") || cmd.starts_with(b"sleep\0")))
            .then_some(pid)
        })
        .filter_map(pidfd)
        .collect();
    grader.kill().unwrap();
    grader.wait().unwrap();
    // Once an init has ended, the kernel has killed every process of its namespace:
    // the students must be gone at that moment, not later (a later grader's clean-up
    // of stale cgroups would hide a survivor).
    for (_, fd) in &inits {
        assert!(ended(*fd, 10_000), "a case's init outlived the grader");
    }
    let mut survivors = Vec::new();
    for (pid, fd) in students.iter().chain(&inits) {
        if !ended(*fd, 0) {
            survivors.push(*pid);
            // SAFETY: a process this test found in its own TMPDIR.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        // SAFETY: our own descriptor.
        unsafe { libc::close(*fd) };
    }
    remove_test_temp(&tmp);
    let Some(_) = folder else {
        eprintln!("skipped: the daemon never started (no isolation to grade in?)");
        return;
    };
    assert!(!students.is_empty(), "no student process was found");
    assert!(!inits.is_empty(), "no case init was found");
    assert_eq!(
        survivors,
        Vec::<i32>::new(),
        "processes outlived kill -9 of the grader"
    );
}

/// Issue 12, item 6: a 0666 unix socket of a host service was reached from a case, and
/// a vsock socket (which a network namespace does not confine) could be created. The
/// case's root has no `/run`, nor any host socket; the seccomp filter refuses every
/// socket family but those of a homework.
#[test]
fn host_unix_sockets_and_vsock_are_out_of_reach() {
    let path = PathBuf::from(format!(
        "/run/sockgrade-hostile-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let Ok(service) = std::os::unix::net::UnixListener::bind(&path) else {
        eprintln!("skipped: cannot make a socket in /run");
        return;
    };
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    service.set_nonblocking(true).unwrap();
    let run = grade_class("hostile_reaches_the_host");
    let reached = service.accept().is_ok();
    let _ = std::fs::remove_file(&path);
    run.assert_alice_unharmed();
    if !run.full() {
        return;
    }
    assert!(!reached, "a case reached the host's unix socket");
    assert_verdicts(&run.mallory, &["serves two clients at the same time"]);
}

/// Free bytes of the file system that holds `path`.
fn free_bytes(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: statvfs fills the struct we pass.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut st), 0);
        st.f_bavail as u64 * st.f_frsize as u64
    }
}

/// Issue 12, item 5: a program wrote 1 GiB (64 × 16 MiB) and 20,000 files per case onto
/// the host's disk in 0.8 s. A case's work folder is a tmpfs of its own (128 MiB, 16,384
/// files): the program meets "No space left on device", the reason names the limit,
/// and the host's temp folder never loses the space.
#[test]
fn hostile_fills_disk() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let temp = std::env::temp_dir();
    let before = free_bytes(&temp);
    // The lowest free space while the class runs. A disk tells no one when it fills:
    // sampled, every 20 ms (a case writes its gigabyte in about a second).
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, temp) = (stop.clone(), temp.clone());
        std::thread::spawn(move || {
            let mut low = u64::MAX;
            while !stop.load(Ordering::Relaxed) {
                low = low.min(free_bytes(&temp));
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            low
        })
    };
    let run = grade_class("hostile_fills_disk");
    stop.store(true, Ordering::Relaxed);
    let low = sampler.join().unwrap();
    run.assert_alice_unharmed();
    if !run.full() {
        return;
    }
    let case = run.case("replies to a message");
    assert_eq!(case["status"], "failed", "{case}");
    let reason = case["reason"].as_str().unwrap();
    assert!(
        reason.contains("the work folder is full") && reason.contains("128 MiB"),
        "{reason}"
    );
    // Every case of the server met the limit, none the memory limit before it.
    for c in run.mallory["cases"].as_array().unwrap() {
        if c["target"] == "server" {
            let why = c["reason"].as_str().unwrap_or_default();
            assert!(why.contains("the work folder is full"), "{c}");
        }
    }
    let lost = before.saturating_sub(low);
    assert!(
        lost < 256 << 20,
        "the host's temp folder lost {} MiB while the class ran",
        lost >> 20
    );
}

/// Issue 12, item 7: a program that made a 20,000-deep chain of folders crashed the
/// grader on teardown (std's recursive removal overflowed a runtime thread's stack):
/// `run` printed nothing, `grade` died without a gradebook. A bounded work folder is
/// unmounted, an unbounded one removed by an iterative walk: both runs finish.
#[test]
fn hostile_deep_tree() {
    // `run` prints its report (checked in `grade_contained`).
    let r = grade_contained("hostile_deep_tree", "server", &["replies to a message"]);
    assert_eq!(r["cases"].as_array().unwrap().len(), 1, "{r}");
    // `grade` completes, with a gradebook of both students.
    let run = grade_class("hostile_deep_tree");
    run.assert_alice_unharmed();
    assert!(
        run.gradebook.contains("mallory") && run.gradebook.contains("alice"),
        "{}",
        run.gradebook
    );
}

/// Issue 12, item 8: after a `kill -9` of the grader, its work copies (student code)
/// stayed in the temp folder forever. They live in a folder named after the grader (pid
/// and start time), and the next grader removes the folders of dead ones, unmounting
/// their work folders first.
#[test]
fn a_kill_9_of_the_grader_leaves_no_work_copy_after_the_next_start() {
    let tmp = std::env::temp_dir().join(format!("sockgrade-hostile-stale-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let grade = |fixture: &str, case: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sockgrade"));
        cmd.current_dir(root())
            .env("TMPDIR", &tmp)
            .args(["run", "specs/tcp-basics.toml", fixture])
            .args(["--target", "server", "--case", case, "--format", "json"])
            .stdout(std::process::Stdio::null());
        cmd
    };
    let mut grader = grade(
        "fixtures/hostile_outlives_the_grader",
        "replies to a message",
    )
    .spawn()
    .unwrap();
    let folder = wait_for_marker(&tmp, "daemon-started", std::time::Duration::from_secs(30));
    grader.kill().unwrap();
    grader.wait().unwrap();
    let clean_up = || remove_test_temp(&tmp);
    let Some(folder) = folder else {
        clean_up();
        eprintln!("skipped: the program never started (no isolation to grade in?)");
        return;
    };
    // The killed grader's work copy is there, in its folder.
    let owner = folder.parent().unwrap().to_path_buf();
    let owner_name = owner.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        owner_name.starts_with(&format!("sockgrade-{}-", grader.id())),
        "{owner_name}"
    );
    assert!(folder.join("tcp_server.py").exists());
    // The next grader's start removes it.
    let next = grade("fixtures/good", "accepts a connection")
        .status()
        .unwrap();
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mounts = mounts_below(&tmp);
    clean_up();
    assert!(matches!(next.code(), Some(0 | 1)), "{next:?}");
    assert_eq!(left, Vec::<String>::new(), "left in the temp folder");
    assert_eq!(
        mounts,
        Vec::<String>::new(),
        "mounts left in the temp folder"
    );
}

/// `unshare --pid --fork --mount-proc sockgrade ARGS`: sockgrade as PID 1 of a new PID
/// namespace, as a container's entrypoint is; `None` (and a note) where that cannot be.
fn as_pid1<S: AsRef<std::ffi::OsStr>>(tmp: &Path, args: &[S]) -> Option<std::process::Child> {
    let works = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        eprintln!("skipped: `unshare --pid --fork --mount-proc` does not work here (needs root and util-linux)");
        return None;
    }
    Some(
        Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc"])
            .arg(env!("CARGO_BIN_EXE_sockgrade"))
            .args(args)
            .current_dir(root())
            .env("TMPDIR", tmp)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// The namespace's PID 1 (sockgrade) seen from here: the child of `unshare`.
/// `dir` as the processes started by `unshare` (pid `unshare`) see it: `--mount-proc`
/// gives them a mount namespace of their own, so the work folders the grader mounts there
/// are seen only through `/proc/N/root`. `unshare` enters that namespace itself (before it
/// forks) a moment after it starts; the kernel tells no one, so its namespace is looked at
/// with a bounded backoff.
fn ns_view(unshare: u32, dir: &Path) -> PathBuf {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let ours = ns("self");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_millis(1);
    while ns(&unshare.to_string()) == ours && std::time::Instant::now() < deadline {
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
    Path::new(&format!("/proc/{unshare}/root")).join(dir.strip_prefix("/").unwrap())
}

/// `sockgrade ARGS` as PID 1 ([`as_pid1`]) with a test folder of its own as TMPDIR,
/// once the fixture's first orphan has exited (`hostile_orphans` leaves a marker); `None`
/// where PID 1 cannot be had.
fn pid1_past_the_first_orphan(
    label: &str,
    args: &[&str],
) -> Option<(PathBuf, std::process::Child)> {
    let tmp =
        std::env::temp_dir().join(format!("sockgrade-hostile-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let child = as_pid1(&tmp, args)?;
    wait_for_marker(
        &ns_view(child.id(), &tmp),
        "orphan-exited",
        std::time::Duration::from_secs(30),
    )
    .expect("the fixture's orphan exits");
    Some((tmp, child))
}

fn pid1_of(unshare: u32) -> i32 {
    let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
        .unwrap_or_default();
    children.split_whitespace().next().unwrap().parse().unwrap()
}

/// Zombies among the children of `pid`.
fn zombie_children(pid: i32) -> usize {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/stat"))
                .is_ok_and(|s| s.rfind(')').is_some_and(|i| s[i + 2..].starts_with('Z')))
        })
        .count()
}

const ORPHANS: [&str; 8] = [
    "run",
    "specs/tcp-basics.toml",
    "fixtures/hostile_orphans",
    "--target",
    "server",
    "--isolation",
    "netns",
    "--format",
];

/// Issue 12, item 8: as PID 1 (a container's entrypoint) sockgrade never reaped the
/// orphans the programs left (one zombie per case, 100 after two runs of a class). Now
/// PID 1 is a small init: the orphans are reaped while it grades, and the run's output
/// and exit code are those of a normal run.
#[test]
fn as_pid1_orphans_are_reaped_and_the_run_is_the_same() {
    let args = [&ORPHANS[..], &["json"]].concat();
    // The first case's orphan has exited: PID 1 must reap it while the run goes on.
    let Some((tmp, child)) = pid1_past_the_first_orphan("pid1", &args) else {
        return;
    };
    let pid1 = pid1_of(child.id());
    // SAFETY: plain system call; the descriptor is ours.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid1, 0) } as i32;
    assert!(pidfd >= 0);
    // Reaping is PID 1's to do when SIGCHLD wakes it, with no event to wait on here:
    // look again with a bounded backoff. Without the init the zombie stays until the end.
    // A look counts only if PID 1 was still there after it.
    let alive = || {
        let mut p = libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on our own pidfd.
        unsafe { libc::poll(&mut p, 1, 0) == 0 }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut pause = std::time::Duration::from_millis(1);
    let mut zombies = None;
    loop {
        let now = zombie_children(pid1);
        if !alive() {
            break;
        }
        zombies = Some(now);
        if now == 0 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(100));
    }
    let zombies = zombies.expect("PID 1 ended before it could be looked at");
    assert_eq!(zombies, 0, "zombie children of PID 1 while it graded");
    // SAFETY: our descriptor.
    unsafe { libc::close(pidfd) };

    let out = child.wait_with_output().unwrap();
    let as_init: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let normal = Command::new(env!("CARGO_BIN_EXE_sockgrade"))
        .args(&args)
        .current_dir(root())
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let normal_json: serde_json::Value = serde_json::from_slice(&normal.stdout).unwrap();
    assert_eq!(out.status.code(), normal.status.code());
    assert_eq!(statuses(&as_init), statuses(&normal_json));
    assert_eq!(reasons(&as_init), reasons(&normal_json));
    assert!(processes_in(&tmp).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// As PID 1, the init reaps what it did not start, never the grader's own children:
/// a class of a program that leaves orphans in every case (`--isolation netns`, where
/// they are PID 1's to reap) and a correct one completes, and the correct student keeps
/// every point.
#[test]
fn as_pid1_a_class_completes_and_the_correct_neighbour_keeps_its_score() {
    let tmp = std::env::temp_dir().join(format!(
        "sockgrade-hostile-pid1-class-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&tmp).unwrap();
    let class = Class::new("hostile_orphans");
    let mut args = class.grade_args();
    args.extend(["--isolation".into(), "netns".into()]);
    let Some(child) = as_pid1(&tmp, &args) else {
        return;
    };
    let out = child.wait_with_output().unwrap();
    let left = processes_in(&tmp);
    remove_test_temp(&tmp);
    assert_eq!(out.status.code(), Some(0), "the class run completed");
    let run = class.graded();
    assert_eq!(run.isolation, "netns");
    run.assert_alice_unharmed();
    // The orphans cost mallory nothing: a correct single-client server.
    assert_verdicts(&run.mallory, &["serves two clients at the same time"]);
    assert_eq!(left, Vec::<i32>::new(), "student processes left behind");
}

/// `docker stop` sends SIGTERM to PID 1: it reaches the grader, which stops with its
/// cases, and PID 1 exits as a shell does for a program a signal ended (128 + 15).
#[test]
fn as_pid1_sigterm_stops_the_grader_and_its_cases() {
    let args = [&ORPHANS[..], &["json"]].concat();
    let Some((tmp, child)) = pid1_past_the_first_orphan("pid1-term", &args) else {
        return;
    };
    let pid1 = pid1_of(child.id());
    // SAFETY: a signal to the process this test started (through unshare).
    unsafe { libc::kill(pid1, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM), "{out:?}");
    assert!(
        processes_in(&tmp).is_empty(),
        "the cases died with the grader"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The reason of a case, with pids and ports redacted, for a snapshot.
fn one_reason(case: &serde_json::Value) -> String {
    let reason = case["reason"].as_str().unwrap_or("").to_string();
    let reason = regex::Regex::new(r"process \d+")
        .unwrap()
        .replace_all(&reason, "process [pid]");
    regex::Regex::new(r":\d{4,5}\b")
        .unwrap()
        .replace_all(&reason, ":[port]")
        .into_owned()
}

/// Issue 12, item 10: a daemon (double fork, setsid) that keeps the listening socket
/// after the server exits is named in the reason, by its command, not its pid; a
/// correct classmate graded beside it keeps every point. The daemon of
/// `hostile_daemon`, which holds no socket, passes the same case.
#[test]
fn a_daemon_keeping_the_listening_socket_is_named() {
    let case = "exits on Ctrl-C and frees the port";
    let run = grade_class("hostile_daemon_keeps_socket");
    run.assert_alice_unharmed();
    // Nothing else of a correct single-client server is lost.
    assert_verdicts(&run.mallory, &[case, "serves two clients at the same time"]);
    insta::assert_snapshot!("daemon_keeps_listening_socket", one_reason(run.case(case)));
    let fine = grade_contained("hostile_daemon", "server", &[case]);
    assert_verdicts(&fine, &[]);
}

/// A fork()ed child that keeps the accepted socket: the server's close sends no FIN,
/// and the reason says which process still holds the connection. A server that
/// closes its own connection (alice's, graded in the same class) passes the same case
/// and keeps every point.
#[test]
fn a_child_holding_the_connection_is_named() {
    let case = "closes after the client closes";
    let run = grade_class("hostile_child_holds_connection");
    run.assert_alice_unharmed();
    assert_verdicts(&run.mallory, &[case, "serves two clients at the same time"]);
    insta::assert_snapshot!("child_holds_connection", one_reason(run.case(case)));
    let alice = run.alice["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == case && c["target"] == "server")
        .unwrap();
    assert_eq!(alice["status"], "passed", "{alice}");
}

/// Issue 12, item 7: a grader that dies while grading one student (a stack overflow
/// aborts: nothing to catch) is not stopped by the same student on every `--resume`:
/// graded again once, then an error naming the crash, and the class completes with
/// its correct student's every point. The abort is real (`std::process::abort` in the
/// grader, asked for by a variable that only debug builds read).
#[test]
fn a_student_the_grader_dies_on_twice_is_an_error_and_the_class_completes() {
    use assert_cmd::assert::OutputAssertExt;
    // Mallory's program is a correct one: the grader dies as her grading begins.
    let class = Class::new("good");
    class.add("zoe", "server_recv5");
    let out = class.out();
    // A TMPDIR of its own: the cwd of every student process is in it.
    let tmp = std::env::temp_dir().join(format!("sockgrade-hostile-abort-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let grade = |resume: bool| {
        let mut c = class.grader();
        c.env("TMPDIR", &tmp)
            .env("SOCKGRADE_TEST_ABORT_ON", "mallory")
            .args(["--jobs", "2"]);
        if resume {
            c.arg("--resume");
        }
        c.assert()
    };
    // Dies, and says what to do.
    let first = grade(false).failure();
    let code = first.get_output().status;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(code.signal(), Some(libc::SIGABRT), "{code:?}");
    first.stderr(predicates::str::contains(
        "run the same command with --resume",
    ));
    assert!(!out.join("gradebook.csv").exists());
    // Graded again once: dies again.
    grade(true).failure().stderr(
        predicates::str::is_match(
            "the grader stopped while grading (alice, )?mallory: graded again, one at a time",
        )
        .unwrap(),
    );
    // The second time is the submission: an error, and the class completes.
    grade(true).code(0).stderr(predicates::str::contains(
        "the grader stopped twice while grading mallory: graded as errors",
    ));
    let run = class.graded();
    run.assert_alice_unharmed();
    let book = common::rows(&run.gradebook);
    assert_eq!(book.len(), 3, "{book:?}");
    assert_eq!(book["alice"].1, "passed", "{book:?}");
    assert_eq!(book["zoe"].0, 12, "{book:?}");
    assert_eq!(
        (book["mallory"].0, book["mallory"].1.as_str()),
        (0, "error")
    );
    assert!(book["mallory"].2.contains("stopped twice"), "{book:?}");
    assert_eq!(common::journaled_students(&out), 3);
    let report = std::fs::read_to_string(out.join("reports").join("mallory.txt")).unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        &regex::escape(&class.path().display().to_string()),
        "[class]",
    );
    settings.bind(|| insta::assert_snapshot!("grader_died_twice_report", report));
    let left = processes_in(&tmp);
    remove_test_temp(&tmp);
    assert_eq!(left, Vec::<i32>::new(), "student processes left behind");
}
