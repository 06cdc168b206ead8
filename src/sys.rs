//! Raw system calls used in more than one place, each written once: `pidfd_open`, a
//! one-shot `poll`, the executable check, and the signal state a child starts with.
//! Below every other module (the sandbox and the peer both use it), above nothing.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

/// A pidfd for `pid` (`pidfd_open(2)`, Linux 5.3); `Ok(None)` when there is no such
/// process (any more).
pub(crate) fn pidfd_open(pid: u32) -> io::Result<Option<OwnedFd>> {
    // SAFETY: pidfd_open returns a new descriptor we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
}

/// Waits up to `timeout` for `events` on one descriptor: the events that came (0 when
/// none did in time).
pub(crate) fn poll_one(
    fd: RawFd,
    events: libc::c_short,
    timeout: Duration,
) -> io::Result<libc::c_short> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one pollfd on the stack.
    let n = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as libc::c_int) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        0 => Ok(0),
        _ => Ok(p.revents),
    }
}

/// Whether a descriptor is readable (data, a connection, or a close) right now.
pub(crate) fn readable_now(fd: RawFd) -> bool {
    poll_one(fd, libc::POLLIN | libc::POLLRDHUP, Duration::ZERO).is_ok_and(|r| r != 0)
}

/// Whether `p` is a file someone may execute.
pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A clean start whatever the grader inherited: an empty signal mask and every
/// disposition the default. A grader started in the background of a script has SIGINT
/// ignored, and a Python child would inherit that and never see the "Ctrl-C" a case
/// sends. Async-signal-safe: for use between fork and exec.
///
/// # Safety
/// Only between fork and exec (it changes the calling process's signal state).
pub(crate) unsafe fn clean_signal_state() {
    // Dispositions first, then the mask: a child that shares the grader's memory (the
    // case init, cloned with CLONE_VM and every signal blocked) must never run one of
    // the grader's handlers.
    for sig in 1..libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
}

/// The message [`say_on_abort`] prints.
static ABORT_MESSAGE: std::sync::atomic::AtomicPtr<u8> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
static ABORT_MESSAGE_LEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Prints `message` on stderr if the process aborts (a stack overflow ends in abort(),
/// after Rust's own line saying so): the last words of a grader that cannot unwind. The
/// process still dies of SIGABRT, as it would have (glibc's abort() raises it again with
/// the default action once the handler returns).
pub(crate) fn say_on_abort(message: &'static str) {
    use std::sync::atomic::Ordering;
    extern "C" fn on_abort(_: libc::c_int) {
        let ptr = ABORT_MESSAGE.load(Ordering::Acquire);
        let len = ABORT_MESSAGE_LEN.load(Ordering::Acquire);
        if !ptr.is_null() {
            // SAFETY: write(2) is async-signal-safe; the message is 'static.
            unsafe { libc::write(libc::STDERR_FILENO, ptr as *const libc::c_void, len) };
        }
    }
    ABORT_MESSAGE_LEN.store(message.len(), Ordering::Release);
    ABORT_MESSAGE.store(message.as_ptr() as *mut u8, Ordering::Release);
    // SAFETY: installs a handler that only calls write(2); SA_RESETHAND so a second
    // abort (from within the handler, which cannot happen) would not loop.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_abort as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESETHAND | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGABRT, &sa, std::ptr::null_mut());
    }
}

/// A libc call's result as an `io::Result`: negative is failure, with `errno`.
/// Async-signal-safe (used between fork and exec).
pub(crate) fn check(r: libc::c_int) -> std::io::Result<()> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// [`check`] for `syscall(2)`'s `long`.
pub(crate) fn check_long(r: libc::c_long) -> std::io::Result<()> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
