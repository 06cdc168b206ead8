//! sockgrade as PID 1 (the entrypoint of a Docker, Kubernetes or Gradescope container):
//! a small init built in, as tini and dumb-init are.
//!
//! PID 1 has two duties no other process has: orphans are re-parented to it, and they
//! stay zombies until it waits for them (the grader waits only for its own children: a
//! case's orphans piled up, 100 after two cases); and the kernel gives it no default
//! signal actions, so a `docker stop` (SIGTERM) would be ignored. So PID 1 forks at
//! once, before any thread exists: the child is sockgrade as usual; PID 1 forwards the
//! signals that stop a program to it, reaps every process that ends, and exits with the
//! child's exit code (128 + the signal if a signal ended it), as a shell does. When PID
//! 1 exits, the kernel kills what is left in the namespace.

use std::process::ExitCode;

/// Signals PID 1 passes on to sockgrade (what `docker stop`, `kill` and a terminal send).
const FORWARDED: [libc::c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// When this process is PID 1, becomes the init described above and returns its exit
/// code once sockgrade (its child) has ended; returns `None` in the child, and when not
/// PID 1: go on as sockgrade. Call first thing in `main`, before any thread is started
/// (fork copies only the calling thread).
pub fn init_if_pid1() -> Option<ExitCode> {
    if std::process::id() != 1 {
        return None;
    }
    // SAFETY: sigset calls on a local set; sigprocmask and fork while single-threaded.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
            libc::sigaddset(&mut set, *sig);
        }
        // Blocked before the fork: a signal that comes between the fork and the wait
        // below is kept, not lost. (Blocked signals also reach PID 1, which the kernel
        // otherwise spares every signal it has no handler for.)
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        match libc::fork() {
            0 => {
                libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                None
            }
            -1 => {
                libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                eprintln!(
                    "note: sockgrade is PID 1 but could not fork to reap orphans ({}); grading anyway",
                    std::io::Error::last_os_error()
                );
                None
            }
            child => Some(supervise(child, &set)),
        }
    }
}

/// PID 1's loop: forward signals to `child`, reap every child, until `child` ends.
fn supervise(child: libc::pid_t, set: &libc::sigset_t) -> ExitCode {
    loop {
        // SAFETY: waits for one of the blocked signals of `set`.
        let sig = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: a signal to our own child.
            unsafe { libc::kill(child, sig) };
            continue;
        }
        // SIGCHLD (several exits may make one), or an interrupted wait: reap all.
        loop {
            let mut status = 0;
            // SAFETY: waits for any child without blocking.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                return ExitCode::from(exit_code(status));
            }
        }
    }
}

/// A shell's exit code for a wait status: the code, or 128 + the signal.
fn exit_code(status: libc::c_int) -> u8 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u8
    } else if libc::WIFSIGNALED(status) {
        (128 + libc::WTERMSIG(status)) as u8
    } else {
        1
    }
}
