//! Isolation without root: the grader enters a user namespace of its own at start.
//!
//! An unprivileged user may create a user namespace (where the machine allows it:
//! `user.max_user_namespaces` > 0, and Debian's `kernel.unprivileged_userns_clone` = 1),
//! in which it is uid 0 with every capability over the namespaces that user namespace
//! owns. Network, PID, IPC and mount namespaces created from there are the same as
//! root's, so every case gets them through the same code as under root ([`super::netns`],
//! [`super::confine`], [`super::caseinit`], `nft` for the client redirect).
//!
//! # Why one user namespace for the grader, entered before any thread
//!
//! The grader creates each case's sockets inside the case's network namespace
//! (`setns` from a helper thread, [`super::netns::NetNs::run_in`]). Joining a network
//! namespace needs `CAP_SYS_ADMIN` in the caller's *own* user namespace as well as in the
//! one that owns the network namespace, so a grader left in the machine's user namespace
//! could not enter the namespaces it made for a case; and a process with more than one
//! thread may neither `unshare(CLONE_NEWUSER)` nor `setns` into a user namespace. So
//! [`enter`] runs first thing in `main`, while the process has one thread, maps the
//! invoking uid and gid to 0 (the only ids an unprivileged user may map, after
//! `setgroups` is denied) and every case's namespaces are owned by it. The cases stay
//! apart as under root: each has its network namespace and, confined (with or without a
//! delegated cgroup), its PID, IPC and mount namespaces and minimal root; they share the
//! one uid there is, without capabilities (see [`super::confine`]). The grader's own PID
//! namespace belongs to the machine's user namespace, so a thread that pointed its
//! children at a case's cannot point them back: confined forks are made on one thread
//! kept for it ([`super::caseinit`]).
//!
//! Where the machine refuses (the sysctls, a container's seccomp profile), nothing
//! changes and [`state`] says why: `Host::detect` puts it in the fallback's note.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// What [`enter`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNs {
    /// The grader runs as root: no user namespace needed.
    Root,
    /// The grader entered a user namespace of its own (`uid`/`gid`: the invoking ids,
    /// mapped to 0 inside).
    Entered { uid: u32, gid: u32 },
    /// The machine refuses user namespaces to this user: why.
    Refused(String),
    /// [`enter`] was not called (a library user, a test binary).
    NotTried,
}

static STATE: OnceLock<UserNs> = OnceLock::new();

/// What happened at start.
pub fn state() -> &'static UserNs {
    STATE.get().unwrap_or(&UserNs::NotTried)
}

/// Whether the grader runs in a user namespace of its own.
pub fn active() -> bool {
    matches!(state(), UserNs::Entered { .. })
}

/// Enters a user namespace of the grader's own when it is not root and the machine
/// allows it. Call it first in `main`, before any thread exists (the kernel refuses
/// `unshare(CLONE_NEWUSER)` to a process with more than one thread). Idempotent.
pub fn enter() -> &'static UserNs {
    STATE.get_or_init(|| {
        // SAFETY: getters without preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if uid == 0 {
            return UserNs::Root;
        }
        match try_enter(uid, gid) {
            Ok(()) => UserNs::Entered { uid, gid },
            Err(why) => UserNs::Refused(why),
        }
    })
}

fn try_enter(uid: u32, gid: u32) -> Result<(), String> {
    if let Some(why) = sysctl_refusal() {
        return Err(why);
    }
    // SAFETY: plain syscall; on failure nothing changed.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } == -1 {
        let e = io::Error::last_os_error();
        return Err(format!(
            "unshare(CLONE_NEWUSER) was refused: {e} (a container's seccomp profile or a \
             security module may forbid user namespaces)"
        ));
    }
    // An unprivileged process may map only its own ids, and a gid only once setgroups
    // is denied (so that dropping a group cannot be undone by the namespace's root).
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), text)
            .map_err(|e| format!("writing /proc/self/{file} in the new user namespace: {e}"))
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {uid} 1"))?;
    write("gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

/// The sysctls that refuse user namespaces to unprivileged users, if one does.
fn sysctl_refusal() -> Option<String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
    };
    if read("/proc/sys/user/max_user_namespaces") == Some(0) {
        return Some("user namespaces are disabled (user.max_user_namespaces = 0)".into());
    }
    // Debian's and Ubuntu's switch; absent elsewhere.
    if read("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        return Some(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"
                .into(),
        );
    }
    None
}

/// Which limits a case gets without root.
pub enum Limits<'a> {
    /// A cgroup delegated to this user is used: it kills every process of a case, and
    /// holds the memory and process limits where its controllers are there (`false`: that
    /// limit is an rlimit).
    Cgroup { memory: bool, processes: bool },
    /// No cgroup (why): rlimits only.
    Rlimits(&'a str),
}

/// Cases that may run at once in this run (its case slots), for [`process_rlimit`].
static PARALLEL_CASES: AtomicU64 = AtomicU64::new(1);

/// Tasks of the grader itself (runtime and blocking threads, helper threads, fork
/// servers), beside the cases' processes, under one uid. A class run on 2 CPUs peaked at
/// 88 tasks with four threaded students' processes in it.
const GRADER_TASKS: u64 = 256;

/// Records how many cases may run at once (the largest asked for wins).
pub fn note_parallel_cases(n: usize) {
    PARALLEL_CASES.fetch_max(n as u64, Ordering::Relaxed);
}

/// The `RLIMIT_NPROC` of a student process whose case may run `per_case` processes.
///
/// The kernel counts that limit over every task of the uid in the user namespace, and
/// without root the grader, its fork servers and every case share one uid: a limit of
/// `per_case` would count the grader's threads and the other cases' processes too, and
/// a correct threaded server failed ("can't start new thread") in a class run. So the
/// limit is for all of them together: `per_case` for each case that may run at once,
/// plus the grader's own. Outside a user namespace, `per_case`.
pub fn process_rlimit(per_case: u64) -> u64 {
    if !active() {
        return per_case;
    }
    per_case
        .saturating_mul(PARALLEL_CASES.load(Ordering::Relaxed))
        .saturating_add(GRADER_TASKS)
}

/// What an unprivileged run gets, said once to the operator: the namespaces, whether
/// cases are confined (`confined`: as under root, but for a uid of their own; or why not),
/// and which limits hold.
pub fn note(uid: u32, confined: Result<(), &str>, limits: Limits<'_>) -> String {
    const RLIMITS: &str = "address space, CPU time, file size, open files";
    const SHARED_NPROC: &str = "the process limit is for the cases running at once and the \
                                grader together (the limit times the cases, plus 256), as \
                                they share one uid";
    let limits = match limits {
        Limits::Cgroup { memory, processes } => {
            let mut by_cgroup = vec!["the kill of every process of a case"];
            let mut by_rlimit = vec![];
            for (held, what) in [(memory, "memory"), (processes, "process count")] {
                match held {
                    true => by_cgroup.push(what),
                    false => by_rlimit.push(what),
                }
            }
            let mut s = format!(
                "a cgroup delegated to this user gives each case a cgroup ({})",
                by_cgroup.join(", ")
            );
            if !by_rlimit.is_empty() {
                s += &format!(
                    "; no controller for its {} limit here, so it is per process (rlimits",
                    by_rlimit.join(" and ")
                );
                if !processes {
                    s += &format!("; {SHARED_NPROC}");
                }
                s += ")";
            }
            s
        }
        Limits::Rlimits(why) => format!(
            "no cgroup ({why}; a cgroup delegated to this user would give them), so limits \
             are per process (rlimits: {RLIMITS}; {SHARED_NPROC}){}",
            match confined {
                Ok(()) => "",
                Err(_) => " and a daemon that leaves its process group may outlive its case",
            }
        ),
    };
    let confined = match confined {
        Ok(()) => "each case also gets its PID, IPC and mount namespaces, minimal root, no capabilities and \
                   seccomp filter as under root (everything a case started ends with it), \
                   but all cases share that one uid"
            .to_string(),
        Err(why) => format!("no PID namespace or minimal root per case ({why})"),
    };
    format!(
        "not root: each case gets its own network namespace, made in a user namespace of \
         this run (uid {uid} is root there only), so cases run in parallel as under root; \
         {confined}; {limits}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_says_which_limits_hold() {
        let all = Limits::Cgroup {
            memory: true,
            processes: true,
        };
        let cgroup = note(1000, Ok(()), all);
        assert!(cgroup.contains("uid 1000") && cgroup.contains("gives each case a cgroup"));
        assert!(!cgroup.contains("rlimits"), "{cgroup}");
        let part = note(
            1000,
            Ok(()),
            Limits::Cgroup {
                memory: false,
                processes: true,
            },
        );
        assert!(
            part.contains("(the kill of every process of a case, process count)")
                && part.contains("its memory limit here, so it is per process (rlimits)"),
            "{part}"
        );
        let rlimits = note(
            1000,
            Ok(()),
            Limits::Rlimits("cgroup2: cannot create x: Permission denied"),
        );
        assert!(!rlimits.contains("may outlive"), "{rlimits}");
        let unconfined = note(1000, Err("why"), Limits::Rlimits("x"));
        assert!(
            unconfined.contains("no PID namespace or minimal root per case (why)")
                && unconfined.contains("may outlive its case"),
            "{unconfined}"
        );
        assert!(
            rlimits.contains("(cgroup2: cannot create x: Permission denied;")
                && rlimits.contains("limits are per process (rlimits"),
            "{rlimits}"
        );
    }

    #[test]
    fn outside_a_user_namespace_the_process_limit_is_the_cases() {
        note_parallel_cases(8);
        assert_eq!(process_rlimit(64), 64);
    }

    #[test]
    fn a_test_binary_does_not_enter_one() {
        // Only `main` calls `enter`: the library's own threads never see a user namespace.
        assert!(!active());
        assert!(matches!(state(), UserNs::NotTried | UserNs::Root));
    }
}
