//! Without root but where user namespaces are allowed, the grader isolates each case as
//! root does (`sandbox::userns`): the same verdicts, cases in parallel, and a client that
//! dials the classroom's address graded. Where the kernel refuses user namespaces, the
//! fallback stays and says why. Run as `nobody` (like tests/fallback.rs).

mod common;
use common::{as_nobody, as_root_plain, can_act_as_nobody, nobody_command, UserNs, PLAIN_ENV};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SPEC: &str = "specs/tcp-basics.toml";

/// A correct submission, both classroom-address fixtures, and students' bugs on both sides.
const FIXTURES: &[&str] = &[
    "fixtures/good",
    "fixtures/client_classroom_ip",
    "fixtures/server_classroom_ip",
    "fixtures/server_one_shot",
    "fixtures/server_recv5",
    "fixtures/server_crash_on_recv",
    "fixtures/client_wrong_port",
    "fixtures/client_crash_on_eof",
    // Stopped with its case by the case's PID namespace, not by a cgroup.
    "fixtures/hostile_daemon",
    // Sees no other case's processes (its PID namespace), though all share one uid.
    "fixtures/hostile_kills_classmates",
];

/// Whether this machine lets `nobody` make a user namespace (asked of the kernel with
/// util-linux's `unshare`, not of the code under test).
fn userns_allowed() -> bool {
    let ok = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["unshare", "--user", "--map-root-user", "--net", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: this machine refuses user namespaces to unprivileged users");
    }
    ok
}

/// A case's verdict as compared between runs: its status, and which step failed and how
/// (the step's action); a case not run because its side could not start has its leader's
/// (which case leads depends on timing). Not the rest of the reason: it names ports, and
/// whether the program's exit was seen yet when it was written.
type Verdict = (String, Option<u64>, Option<String>);

/// The isolation a run reports, and each case's [`Verdict`] by target and name.
fn verdicts(out: &Output) -> (String, BTreeMap<String, Verdict>) {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let cases = json["cases"].as_array().unwrap();
    let failure = |c: &serde_json::Value| {
        let c = match c["not_run"].as_str() {
            Some(leader) => cases
                .iter()
                .find(|l| l["name"] == leader && l["target"] == c["target"])
                .unwrap_or_else(|| panic!("no leader {leader}")),
            None => c,
        };
        (
            c["failure"]["step"].as_u64(),
            c["failure"]["action"].as_str().map(str::to_string),
        )
    };
    let cases = cases
        .iter()
        .map(|c| {
            let (step, action) = failure(c);
            (
                format!("{} / {}", c["target"], c["name"]),
                (c["status"].as_str().unwrap().to_string(), step, action),
            )
        })
        .collect();
    (json["isolation"].as_str().unwrap().to_string(), cases)
}

#[test]
fn unprivileged_runs_give_roots_verdicts() {
    if !can_act_as_nobody() || !userns_allowed() {
        return;
    }
    let mut compared = 0;
    for fixture in FIXTURES {
        let args = ["run", SPEC, fixture, "--format", "json"];
        let (root_isolation, root_verdicts) = verdicts(&as_root_plain(&args));
        let unprivileged = as_nobody(&args, UserNs::Allowed);
        let (isolation, got) = verdicts(&unprivileged);
        assert_ne!(root_isolation, "none", "{fixture}");
        // Each case in a network namespace of its own (and a cgroup where one is
        // delegated): cases run in parallel.
        assert!(
            ["netns", "full"].contains(&isolation.as_str()),
            "{fixture}: isolation {isolation}"
        );
        assert_eq!(got, root_verdicts, "{fixture}: unprivileged (left) vs root");
        compared += got.len();
        // Said once to the operator, on stderr: the isolation, and which limits hold.
        let err = String::from_utf8_lossy(&unprivileged.stderr);
        assert_eq!(
            err.matches("user namespace of this run").count(),
            1,
            "{fixture}: {err}"
        );
        assert!(
            err.contains("so limits are per process (rlimits")
                || err.contains("a cgroup delegated to this user gives each case a cgroup"),
            "{fixture}: which limits hold: {err}"
        );
        assert!(
            err.contains("each case also gets its PID, IPC and mount namespaces, minimal root"),
            "{fixture}: confined: {err}"
        );
        assert!(!err.contains("one at a time"), "{err}");
        let report = String::from_utf8_lossy(&unprivileged.stdout);
        assert!(
            !report.contains("user namespace"),
            "not in the report: {report}"
        );
    }
    assert!(compared >= FIXTURES.len() * 10, "{compared} cases compared");

    // The classroom address is graded, not merely the same failure as root's: every
    // client case passes, and the report says where the client meant to connect.
    let out = as_nobody(
        &[
            "run",
            SPEC,
            "fixtures/client_classroom_ip",
            "--target",
            "client",
            "--verbose",
            "--format",
            "json",
        ],
        UserNs::Allowed,
    );
    let (_, client) = verdicts(&out);
    assert!(
        !client.is_empty() && client.values().all(|v| v.0 == "passed"),
        "{client:?}"
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("\"meant_for\": \"172.40.83.120:8888\""),
        "the redirect took the client from the classroom address: {report}"
    );
}

#[test]
fn refused_user_namespaces_fall_back_and_say_why() {
    if !can_act_as_nobody() {
        return;
    }
    let out = as_nobody(
        &[
            "run",
            SPEC,
            "fixtures/good",
            "--target",
            "server",
            "--case",
            "replies to a message",
            "--format",
            "json",
        ],
        UserNs::Refused,
    );
    let (isolation, verdicts) = verdicts(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(isolation, "none", "{err}");
    assert_eq!(
        verdicts.values().map(|v| v.0.as_str()).collect::<Vec<_>>(),
        ["passed"],
        "{err}"
    );
    assert_eq!(err.matches("one at a time").count(), 1, "{err}");
    assert!(
        err.contains("unshare(CLONE_NEWUSER) was refused: Operation not permitted"),
        "the reason is said: {err}"
    );
    assert!(!err.contains("user namespace of this run"), "{err}");
}

/// A cgroup delegated to `nobody` as systemd delegates one to a user's service (the
/// folder and its interface files given to the user), below this test's own cgroup in
/// every hierarchy it is in (cgroup2, and the v1 controllers of a hybrid machine).
/// Removed when dropped.
struct Delegated {
    dirs: Vec<PathBuf>,
}

impl Delegated {
    fn create() -> Delegated {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        // (mount point, root in the hierarchy, fstype, super options)
        let mounts: Vec<(String, String, String, String)> = mountinfo
            .lines()
            .filter_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                let pre: Vec<&str> = pre.split(' ').collect();
                let post: Vec<&str> = post.split(' ').collect();
                Some((
                    pre.get(4)?.to_string(),
                    pre.get(3)?.to_string(),
                    post.first()?.to_string(),
                    post.get(2)?.to_string(),
                ))
            })
            .filter(|m| m.2 == "cgroup" || m.2 == "cgroup2")
            .collect();
        let mut dirs = Vec::new();
        let name = format!("sockgrade-delegated-{}", std::process::id());
        for line in std::fs::read_to_string("/proc/self/cgroup")
            .unwrap()
            .lines()
        {
            let mut f = line.splitn(3, ':');
            let (_, controllers, path) = (f.next(), f.next().unwrap(), f.next().unwrap());
            // The hierarchies sockgrade uses (cpuset, say, would need its own set-up).
            let used = ["memory", "pids", "freezer", "cpu", "cpuacct"];
            if !controllers.is_empty() && !controllers.split(',').any(|c| used.contains(&c)) {
                continue;
            }
            let mount = mounts.iter().find(|(_, root, fstype, opts)| {
                root == "/"
                    && match controllers {
                        "" => fstype == "cgroup2",
                        c => {
                            fstype == "cgroup"
                                && c.split(',').all(|c| opts.split(',').any(|o| o == c))
                        }
                    }
            });
            let Some((mount_point, ..)) = mount else {
                continue;
            };
            let dir = PathBuf::from(mount_point)
                .join(path.trim_start_matches('/'))
                .join(&name);
            if dirs.contains(&dir) || std::fs::create_dir(&dir).is_err() {
                continue;
            }
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            for file in std::fs::read_dir(&dir).unwrap() {
                std::os::unix::fs::chown(file.unwrap().path(), Some(65534), Some(65534)).unwrap();
            }
            dirs.push(dir);
        }
        Delegated { dirs }
    }

    /// `cgroup.procs` of each folder, for a child to join by writing "0".
    fn procs(&self) -> Vec<File> {
        self.dirs
            .iter()
            .map(|d| {
                File::options()
                    .write(true)
                    .open(d.join("cgroup.procs"))
                    .unwrap()
            })
            .collect()
    }

    /// `sockgrade ARGS` as nobody, started in the delegated cgroup.
    fn run_as_nobody(&self, args: &[&str]) -> Output {
        use std::os::unix::process::CommandExt;
        let procs = self.procs();
        let fds: Vec<RawFd> = procs.iter().map(|f| f.as_raw_fd()).collect();
        let mut cmd = nobody_command(args, UserNs::Allowed);
        // SAFETY: only write(2) on descriptors opened before the fork.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &fds {
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        drop(procs);
        out
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // Empty once its last process has been reaped; the kernel may take a moment to
        // let go of it (EBUSY meanwhile).
        let deadline = Instant::now() + Duration::from_secs(2);
        for dir in &self.dirs {
            while std::fs::remove_dir(dir).is_err() && Instant::now() < deadline {
                std::thread::yield_now();
            }
        }
    }
}

#[test]
fn a_delegated_cgroup_gives_each_case_its_cgroup() {
    if !can_act_as_nobody() || !userns_allowed() {
        return;
    }
    let delegated = Delegated::create();
    if delegated.dirs.is_empty() {
        eprintln!("skipped: no cgroup hierarchy to delegate here");
        return;
    }
    let args = ["run", SPEC, "fixtures/good", "--format", "json"];
    let out = delegated.run_as_nobody(&args);
    let (isolation, got) = verdicts(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(isolation, "full", "{err}");
    assert_eq!(got, verdicts(&as_root_plain(&args)).1);
    assert_eq!(
        err.matches("a cgroup delegated to this user gives each case a cgroup")
            .count(),
        1,
        "said once: {err}"
    );
    assert!(!err.contains("rlimits: address space"), "{err}");
    assert!(err.contains("each case also gets its PID"), "{err}");

    // Where the delegated cgroup has a memory controller, its limit is the case's own,
    // with root's reason.
    let memory = err.contains(", memory");
    eprintln!(
        "delegated: {:?}; memory controller: {memory}",
        delegated.dirs
    );
    if memory {
        let args = [
            "run",
            SPEC,
            "fixtures/hostile_memory_hog",
            "--format",
            "json",
        ];
        let out = delegated.run_as_nobody(&args);
        assert_eq!(verdicts(&out).1, verdicts(&as_root_plain(&args)).1);
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            report.contains("used more than 256 MiB of memory (the limit)"),
            "{report}"
        );
    }
}

/// Processes whose working folder is below `dir`, by pid.
fn working_in(dir: &std::path::Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

/// Waits until process `pid` has ended (its pidfd becomes readable), up to `deadline`;
/// whether it did.
fn ended_by(pid: u32, deadline: Instant) -> bool {
    // SAFETY: plain system calls on a descriptor owned right away.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if fd < 0 {
            return true; // gone already
        }
        let fd = std::os::fd::OwnedFd::from_raw_fd(fd as RawFd);
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        libc::poll(&mut p, 1, left.as_millis() as libc::c_int) == 1
    }
}

#[test]
fn without_a_cgroup_a_daemon_ends_with_its_case() {
    if !can_act_as_nobody() || !userns_allowed() {
        return;
    }
    // The run's work folders go below a folder of this test's, to tell its processes.
    let tmp = tempfile::Builder::new()
        .prefix("sockgrade-userns-test-")
        .tempdir()
        .unwrap();
    std::os::unix::fs::chown(tmp.path(), Some(65534), Some(65534)).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "env",
            "-i",
        ])
        .args(PLAIN_ENV)
        .arg(format!("TMPDIR={}", tmp.path().display()))
        .arg(env!("CARGO_BIN_EXE_sockgrade"))
        .args(["run", SPEC, "fixtures/hostile_daemon", "--target", "server"])
        .args(["--case", "replies to a message", "--format", "json"])
        .current_dir(common::root())
        .output()
        .unwrap();
    let (isolation, got) = verdicts(&out);
    assert_eq!(
        isolation,
        "netns",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(got.values().next().unwrap().0, "passed", "{got:?}");
    // The grader has exited: its cases' PID namespaces are being torn down, and with
    // them the daemon, which left the program's process group.
    let deadline = Instant::now() + Duration::from_secs(5);
    let left: Vec<u32> = working_in(tmp.path())
        .into_iter()
        .filter(|pid| !ended_by(*pid, deadline))
        .collect();
    for pid in &left {
        // SAFETY: a process of this test's run, found by its working folder.
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "outlived its case: {left:?}");
}

/// Copies `fixtures` into a class folder (one student each, named by the fixture) that
/// `nobody` can read.
fn class_of(fixtures: &[&str]) -> tempfile::TempDir {
    let class = tempfile::Builder::new()
        .prefix("sockgrade-userns-class-")
        .tempdir()
        .unwrap();
    for f in fixtures {
        let from = common::root().join("fixtures").join(f);
        let to = class.path().join(f);
        std::fs::create_dir(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap().flatten() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    let ok = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(class.path())
        .status()
        .unwrap();
    assert!(ok.success());
    class
}

#[test]
fn a_class_graded_without_root_gets_roots_gradebook() {
    if !can_act_as_nobody() || !userns_allowed() {
        return;
    }
    // Threads and processes in several cases at once: without root they share one uid,
    // and so the kernel's count for the process limit (see `userns::process_rlimit`).
    let class = class_of(&["good", "good_threaded", "hostile_daemon", "server_recv5"]);
    // A correct server that keeps 50 threads: within a case's limit of 64 processes,
    // but not within 64 for the grader and every case together. (Small stacks: the
    // address-space rlimit, which stands for the memory cgroup without root, counts
    // what 50 default stacks reserve.)
    let threads = class.path().join("fifty_threads");
    std::fs::create_dir(&threads).unwrap();
    let server = std::fs::read_to_string(common::root().join("fixtures/good/tcp_server.py"));
    std::fs::write(
        threads.join("tcp_server.py"),
        "import threading, time\n\
         threading.stack_size(1 << 18)\n\
         for _ in range(50):\n    \
         threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n"
            .to_string()
            + &server.unwrap(),
    )
    .unwrap();
    assert!(Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&threads)
        .status()
        .unwrap()
        .success());
    let out_dir = |who: &str| {
        let dir = class.path().with_extension(who);
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        dir
    };
    let (mine, roots) = (out_dir("nobody"), out_dir("root"));
    let args = |out: &std::path::Path| {
        [
            "grade".to_string(),
            SPEC.to_string(),
            class.path().display().to_string(),
            "--out".to_string(),
            out.display().to_string(),
            "--jobs".to_string(),
            "4".to_string(),
        ]
    };
    let nobody_args = args(&mine);
    let nobody_args: Vec<&str> = nobody_args.iter().map(String::as_str).collect();
    let unprivileged = as_nobody(&nobody_args, UserNs::Allowed);
    let root_args = args(&roots);
    let root_args: Vec<&str> = root_args.iter().map(String::as_str).collect();
    let root = as_root_plain(&root_args);
    let gradebook = |dir: &std::path::Path, out: &Output| {
        std::fs::read_to_string(dir.join("gradebook.csv"))
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let (got, want) = (gradebook(&mine, &unprivileged), gradebook(&roots, &root));
    let _ = std::fs::remove_dir_all(&mine);
    let _ = std::fs::remove_dir_all(&roots);
    assert_eq!(got, want, "unprivileged (left) vs root");
}
