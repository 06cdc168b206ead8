//! A case's init: the process that holds the case's PID, IPC and mount namespaces, whose
//! root is the case's minimal root ([`super::root`]).
//!
//! # Why a process of its own
//!
//! A PID namespace lives as long as its first process (its "init", PID 1) and dies with
//! it: the kernel then SIGKILLs every other process in it, however it was started
//! (double-forked, `setsid`, ignoring SIGTERM). So that process must be neither the
//! student's program (PID 1 ignores every signal it has no handler for: SIGTERM would do
//! nothing, and a student's Ctrl-C test would differ from a terminal's) nor a process
//! the student can kill. It is this one: cloned by the grader with `CLONE_NEWPID |
//! CLONE_NEWIPC | CLONE_NEWNS`, it builds the root, `pivot_root`s into it, mounts `/proc`
//! of its namespace, drops its capabilities and becomes `sockgrade-init`, a program of a
//! few instructions that waits forever (an `exec`, so it holds none of the grader's
//! memory), with SIGCHLD ignored, so that the orphans it inherits are reaped by the
//! kernel. (It was `sleep infinity`: the dynamic loader and libc's start-up of `sleep`,
//! `cpuid` trapping to the hypervisor on a VM, took 5 % of a class run's CPU.)
//!
//! - **Dies with the grader**: its parent-death signal is SIGKILL, and its parent is a
//!   thread of the grader that never ends; a `kill -9` of sockgrade kills every init, and
//!   so every process of every case.
//! - **Dies with the case**: dropping [`CaseInit`] SIGKILLs it (through a pidfd) and a
//!   reaper thread collects it; SysV shared memory and message queues of the case go with
//!   its IPC namespace.
//! - **Entered, not inherited**: a student process is born in the PID namespace because
//!   the thread that forks it points its children there for the duration of the fork
//!   (`setns(CLONE_NEWPID)` changes only the caller's *children*, and only that
//!   thread's), then enters the IPC and mount namespaces itself (`setns`), cold
//!   (`process.rs`'s pre_exec) or warm (the fork server's child, `warm.py`).
//!
//! Its host pid also names the case's uid ([`super::confine`]): unique among live cases
//! on the machine, and free again when the case ends.

use super::root::RootPlan;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// Steps of the init other than the root's, for error messages.
const STEP_PARENT: u32 = 20_000;
const STEP_CAPS: u32 = 20_001;
const STEP_EXEC: u32 = 20_002;

/// A running case init and its namespaces.
pub(crate) struct CaseInit {
    pid: u32,
    pidfd: OwnedFd,
    pid_ns: OwnedFd,
    ipc_ns: OwnedFd,
    mnt_ns: OwnedFd,
}

impl std::fmt::Debug for CaseInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseInit").field("pid", &self.pid).finish()
    }
}

impl CaseInit {
    /// Starts the init of a case with its root built from `plan`; returns once the init
    /// runs in its root (or with why it could not get there).
    pub(crate) fn start(plan: Arc<RootPlan>) -> io::Result<CaseInit> {
        CaseInit::start_as(plan, init_program()?)
    }

    /// [`CaseInit::start`], the init running `program`.
    fn start_as(plan: Arc<RootPlan>, program: &'static InitProgram) -> io::Result<CaseInit> {
        let grader = own_pidfd()?;
        let mut p = [-1; 2];
        // SAFETY: a pipe of our own.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 just returned these.
        let (status_r, status_w) =
            unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
        let w = status_w.as_raw_fd();
        let child_plan = plan.clone();
        let pid = on_init_thread(move || {
            // SAFETY: see `clone_init`.
            unsafe { clone_init(&child_plan, grader, program, w) }
        })??;
        drop(status_w);
        let mut msg = [0u8; 8];
        let n = read_full(status_r.as_raw_fd(), &mut msg);
        if n != 0 {
            reap(pid);
            let step = u32::from_ne_bytes(msg[..4].try_into().expect("4 bytes"));
            let errno = i32::from_ne_bytes(msg[4..].try_into().expect("4 bytes"));
            let what = match step {
                STEP_PARENT => "set its parent-death signal".to_string(),
                STEP_CAPS => "drop its capabilities".to_string(),
                STEP_EXEC => format!("run {}", program.describe()),
                s => plan.describe_step(s as usize),
            };
            return Err(io::Error::new(
                io::Error::from_raw_os_error(errno).kind(),
                format!(
                    "the case's init could not {what}: {}",
                    io::Error::from_raw_os_error(errno)
                ),
            ));
        }
        let opened = (|| -> io::Result<_> {
            // SAFETY: plain system call; the pid is our unreaped child.
            let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: pidfd_open just returned it.
            let pidfd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
            let ns = |name: &str| -> io::Result<OwnedFd> {
                Ok(std::fs::File::open(format!("/proc/{pid}/ns/{name}"))?.into())
            };
            Ok((pidfd, ns("pid")?, ns("ipc")?, ns("mnt")?))
        })();
        match opened {
            Ok((pidfd, pid_ns, ipc_ns, mnt_ns)) => Ok(CaseInit {
                pid,
                pidfd,
                pid_ns,
                ipc_ns,
                mnt_ns,
            }),
            Err(e) => {
                // SAFETY: our own unreaped child.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                reap(pid);
                Err(e)
            }
        }
    }

    /// The init's pid (on the grader's side).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The namespaces a student process enters: PID (for the thread that forks it), IPC
    /// and mount (for the process itself).
    pub(crate) fn pid_ns(&self) -> RawFd {
        self.pid_ns.as_raw_fd()
    }

    pub(crate) fn ipc_ns(&self) -> RawFd {
        self.ipc_ns.as_raw_fd()
    }

    pub(crate) fn mnt_ns(&self) -> RawFd {
        self.mnt_ns.as_raw_fd()
    }

    /// Runs `f` (which forks) with this thread's children born in the case's PID
    /// namespace; the thread points its children back at the grader's own after.
    ///
    /// Without root (the grader's user namespace, [`super::userns`]) the way back is
    /// refused: the grader's own PID namespace belongs to the machine's user namespace,
    /// where it has no capability. And a thread whose children go to another PID
    /// namespace may not start threads. So there every confined fork is made on one
    /// thread kept for it ([`on_spawner_thread`]), which never goes back and never
    /// starts a thread; it lives as long as the grader, so children's parent-death
    /// signal (which follows the thread that forked) fires only with the grader.
    pub(crate) fn spawning<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        if super::userns::active() {
            let ns = self.pid_ns.as_raw_fd();
            return on_spawner_thread(move || {
                // SAFETY: setns on a descriptor the caller holds until we return.
                if unsafe { libc::setns(ns, libc::CLONE_NEWPID) } < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(f())
            })?;
        }
        let own = own_pid_ns()?;
        // SAFETY: setns on descriptors we hold; CLONE_NEWPID changes only which PID
        // namespace this thread's next children are born in.
        if unsafe { libc::setns(self.pid_ns.as_raw_fd(), libc::CLONE_NEWPID) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let out = f();
        // SAFETY: as above; the grader's own namespace is always allowed.
        if unsafe { libc::setns(own, libc::CLONE_NEWPID) } < 0 {
            return Err(io::Error::other(format!(
                "could not point this thread's children back to the grader's PID namespace: {}",
                io::Error::last_os_error()
            )));
        }
        Ok(out)
    }
}

impl Drop for CaseInit {
    fn drop(&mut self) {
        // Through the pidfd: no mistaking a recycled pid. The kernel then kills every
        // process of the namespace; the reaper collects the init.
        // SAFETY: a plain system call on a descriptor we own.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
        reap_later(self.pid);
    }
}

/// What the init's child needs, on the stack of the thread that clones it.
struct InitArgs<'a> {
    plan: &'a RootPlan,
    grader: RawFd,
    program: &'a InitProgram,
    status: RawFd,
}

/// Size of the stack the init's child runs on until its exec (its mounts and the
/// building of its root; nothing recursive).
const INIT_STACK: usize = 256 << 10;

/// Clones the case's init as `posix_spawn` clones a child: `CLONE_VM | CLONE_VFORK`, on a
/// stack of its own, this thread waiting until the child has exec'd (or exited). A
/// fork-like clone copied the grader's page tables for every case and write-protected
/// its memory, so that the grader's threads then faulted page by page and every CPU
/// flushed its TLB: 13 % of the machine's CPU while a class ran (`perf`), against
/// nothing now. Returns the init's pid.
///
/// # Safety
/// Only on the init thread (its death is the init's parent-death signal). The child runs
/// [`init_main`] only: async-signal-safe code that allocates nothing and leaves by exec
/// or `_exit`; all signals are blocked across the clone, so that no handler of the
/// grader runs in the child, which shares its memory until the exec.
unsafe fn clone_init(
    plan: &RootPlan,
    grader: RawFd,
    program: &InitProgram,
    status: RawFd,
) -> io::Result<u32> {
    extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `InitArgs` of `clone_init`, alive until this child has
        // exec'd or exited (the parent is suspended until then: CLONE_VFORK).
        unsafe {
            let a = &*(arg as *const InitArgs);
            let (step, errno) = init_main(a.plan, a.grader, a.program);
            let msg = [step.to_ne_bytes(), errno.to_ne_bytes()].concat_array();
            libc::write(a.status, msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        }
    }
    let stack = libc::mmap(
        std::ptr::null_mut(),
        INIT_STACK,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
        -1,
        0,
    );
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let mut all: libc::sigset_t = std::mem::zeroed();
    let mut before: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut before);
    let mut args = InitArgs {
        plan,
        grader,
        program,
        status,
    };
    let flags = libc::CLONE_VM
        | libc::CLONE_VFORK
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNS
        | libc::SIGCHLD;
    let pid = libc::clone(
        child,
        (stack as *mut u8).add(INIT_STACK).cast(),
        flags,
        (&mut args as *mut InitArgs).cast(),
    );
    let err = io::Error::last_os_error();
    libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
    libc::munmap(stack, INIT_STACK);
    if pid < 0 {
        Err(err)
    } else {
        Ok(pid as u32)
    }
}

/// The init's side, between the clone and the exec: returns only with an error, as
/// (step, errno).
///
/// # Safety
/// Only in the child of the clone in [`CaseInit::start`].
unsafe fn init_main(plan: &RootPlan, grader: RawFd, program: &InitProgram) -> (u32, i32) {
    let errno = || *libc::__errno_location();
    // Dies with the thread that cloned it, which lives as long as the grader; and the
    // grader may have died before this line (then the signal would never come).
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
        return (STEP_PARENT, errno());
    }
    let mut pfd = libc::pollfd {
        fd: grader,
        events: libc::POLLIN,
        revents: 0,
    };
    if libc::poll(&mut pfd, 1, 0) != 0 {
        libc::_exit(0);
    }
    crate::sys::clean_signal_state();
    // Orphans of the case are re-parented to us: the kernel reaps them at once.
    libc::signal(libc::SIGCHLD, libc::SIG_IGN);
    if let Err((step, e)) = plan.build() {
        return (step as u32, e.raw_os_error().unwrap_or(0));
    }
    if let Err(e) = super::caps::drop_capabilities() {
        return (STEP_CAPS, e.raw_os_error().unwrap_or(0));
    }
    // Nothing of the grader's reaches the init's program (the status pipe is
    // close-on-exec already).
    libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 1u32 << 2);
    let envp = [std::ptr::null::<libc::c_char>()];
    match program {
        InitProgram::Own(fd) => {
            let argv = [c"sockgrade-init".as_ptr(), std::ptr::null()];
            libc::syscall(
                libc::SYS_execveat,
                *fd,
                c"".as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        }
        InitProgram::Sleep(path) => {
            let argv = [c"sleep".as_ptr(), c"infinity".as_ptr(), std::ptr::null()];
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        }
    }
    (STEP_EXEC, errno())
}

/// `[a, b].concat()` without allocating (for the child of the clone).
trait ConcatArray {
    fn concat_array(self) -> [u8; 8];
}

impl ConcatArray for [[u8; 4]; 2] {
    fn concat_array(self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&self[0]);
        out[4..].copy_from_slice(&self[1]);
        out
    }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(fd: RawFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reads into the rest of a buffer we own.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n == 0 {
            break;
        }
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        got += n as usize;
    }
    got
}

/// What the init runs once its root is built: it only has to exist (as PID 1 of the
/// case) until it is killed.
#[derive(Debug)]
enum InitProgram {
    /// [`OWN_INIT`] in a sealed memfd of the grader, run with `execveat`.
    Own(RawFd),
    /// `sleep infinity` of the system (inside `/usr` in the root), where there is no
    /// [`OWN_INIT`] for the machine's architecture or no memfd to run it from.
    Sleep(&'static CStr),
}

impl InitProgram {
    fn describe(&self) -> String {
        match self {
            InitProgram::Own(_) => "sockgrade-init (a memfd)".to_string(),
            InitProgram::Sleep(path) => path.to_string_lossy().into_owned(),
        }
    }
}

/// The init's program: a static ELF executable of one segment whose code names itself
/// (`prctl(PR_SET_NAME, "sockgrade-init")`) and then calls `pause()` forever. Nothing is
/// loaded or linked at its exec, and it maps one page. x86-64:
///
/// ```text
/// 0x400078: mov eax, 157 ; mov edi, 15 ; lea rsi, [rip + 11] ; syscall   prctl(PR_SET_NAME, name)
/// 0x40008b: mov eax, 34 ; syscall ; jmp 0x40008b                          pause() forever
/// 0x400094: "sockgrade-init\0"
/// ```
#[cfg(target_arch = "x86_64")]
const OWN_INIT: Option<&[u8]> = Some(&elf64_x86_64([
    0xb8, 0x9d, 0x00, 0x00, 0x00, // mov eax, 157 (prctl)
    0xbf, 0x0f, 0x00, 0x00, 0x00, // mov edi, 15 (PR_SET_NAME)
    0x48, 0x8d, 0x35, 0x0b, 0x00, 0x00, 0x00, // lea rsi, [rip + 11]: the name
    0x0f, 0x05, // syscall
    0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34 (pause)
    0x0f, 0x05, // syscall
    0xeb, 0xf7, // jmp back to mov eax, 34
    b's', b'o', b'c', b'k', b'g', b'r', b'a', b'd', b'e', b'-', b'i', b'n', b'i', b't', 0,
]));
#[cfg(not(target_arch = "x86_64"))]
const OWN_INIT: Option<&[u8]> = None;

/// Bytes of [`OWN_INIT`]'s code.
#[cfg(target_arch = "x86_64")]
const INIT_CODE: usize = 43;

/// A static x86-64 ELF executable: the 64-byte header, one `PT_LOAD` program header
/// (read and execute, the whole file at 0x400000), then `code`, its entry point.
#[cfg(target_arch = "x86_64")]
const fn elf64_x86_64(code: [u8; INIT_CODE]) -> [u8; 120 + INIT_CODE] {
    const BASE: u64 = 0x40_0000;
    const TOTAL: u64 = (120 + INIT_CODE) as u64;
    let mut f = [0u8; 120 + INIT_CODE];
    f = put(f, 0, &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]); // 64-bit, little-endian, v1
    f = put(f, 16, &2u16.to_le_bytes()); // ET_EXEC
    f = put(f, 18, &0x3eu16.to_le_bytes()); // EM_X86_64
    f = put(f, 20, &1u32.to_le_bytes()); // EV_CURRENT
    f = put(f, 24, &(BASE + 120).to_le_bytes()); // entry: the code
    f = put(f, 32, &64u64.to_le_bytes()); // program headers at 64
    f = put(f, 52, &64u16.to_le_bytes()); // header size
    f = put(f, 54, &56u16.to_le_bytes()); // program header size
    f = put(f, 56, &1u16.to_le_bytes()); // one program header
    f = put(f, 64, &1u32.to_le_bytes()); // PT_LOAD
    f = put(f, 68, &5u32.to_le_bytes()); // PF_R | PF_X
    f = put(f, 72, &0u64.to_le_bytes()); // from file offset 0
    f = put(f, 80, &BASE.to_le_bytes()); // vaddr
    f = put(f, 88, &BASE.to_le_bytes()); // paddr
    f = put(f, 96, &TOTAL.to_le_bytes()); // filesz
    f = put(f, 104, &TOTAL.to_le_bytes()); // memsz
    f = put(f, 112, &0x1000u64.to_le_bytes()); // align
    put(f, 120, &code)
}

/// `f` with `bytes` at `at` (a `const fn` cannot take a closure).
#[cfg(target_arch = "x86_64")]
const fn put(mut f: [u8; 120 + INIT_CODE], at: usize, bytes: &[u8]) -> [u8; 120 + INIT_CODE] {
    let mut i = 0;
    while i < bytes.len() {
        f[at + i] = bytes[i];
        i += 1;
    }
    f
}

/// The init's program: [`OWN_INIT`] in a sealed memfd when the machine runs it, else
/// `sleep` of the system.
fn init_program() -> io::Result<&'static InitProgram> {
    static PROGRAM: OnceLock<Option<InitProgram>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| match OWN_INIT.and_then(|elf| own_init_memfd(elf).ok()) {
            Some(fd) => Some(InitProgram::Own(std::os::fd::IntoRawFd::into_raw_fd(fd))),
            None => sleep_binary().map(InitProgram::Sleep),
        })
        .as_ref()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no `sleep` under /usr for the case's init (coreutils)",
            )
        })
}

/// A memfd holding `elf`, sealed against any change, executable.
fn own_init_memfd(elf: &[u8]) -> io::Result<OwnedFd> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let name = c"sockgrade-init";
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: plain system calls on a name we own. MFD_EXEC (Linux 6.3) says the memfd
    // is meant to be run; older kernels do not know the flag (EINVAL) and run any
    // memfd. Where `vm.memfd_noexec = 2` forbids it (EACCES), `sleep` it is.
    let mut raw = unsafe { libc::memfd_create(name.as_ptr(), base | MFD_EXEC) };
    if raw < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above.
        raw = unsafe { libc::memfd_create(name.as_ptr(), base) };
    }
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create just returned it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, elf)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own descriptor.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file.into())
}

/// The program the init becomes without [`OWN_INIT`]: `sleep` of the system (inside
/// `/usr` in the root).
fn sleep_binary() -> Option<&'static CStr> {
    static SLEEP: OnceLock<Option<std::ffi::CString>> = OnceLock::new();
    SLEEP
        .get_or_init(|| {
            ["/usr/bin/sleep", "/bin/sleep"]
                .iter()
                .filter_map(|p| std::path::Path::new(p).canonicalize().ok())
                .find(|p| p.starts_with("/usr"))
                .and_then(|p| {
                    std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
                        .ok()
                })
        })
        .as_deref()
}

/// A pidfd of the grader itself, which the init checks right after arming its
/// parent-death signal.
fn own_pidfd() -> io::Result<RawFd> {
    static FD: OnceLock<Result<OwnedFd, String>> = OnceLock::new();
    FD.get_or_init(|| {
        // SAFETY: plain system call.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
        if raw < 0 {
            Err(io::Error::last_os_error().to_string())
        } else {
            // SAFETY: pidfd_open just returned it; pidfds are close-on-exec.
            Ok(unsafe { OwnedFd::from_raw_fd(raw as RawFd) })
        }
    })
    .as_ref()
    .map(|f| f.as_raw_fd())
    .map_err(|e| io::Error::other(format!("pidfd_open: {e}")))
}

/// The grader's own PID namespace, to point a thread's children back to.
fn own_pid_ns() -> io::Result<RawFd> {
    static FD: OnceLock<Result<OwnedFd, String>> = OnceLock::new();
    FD.get_or_init(|| {
        std::fs::File::open("/proc/self/ns/pid")
            .map(OwnedFd::from)
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map(|f| f.as_raw_fd())
    .map_err(|e| io::Error::other(format!("/proc/self/ns/pid: {e}")))
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `f` on the thread that clones every init: a thread that lives as long as the
/// grader, since a parent-death signal follows the *thread* that forked (a pool thread
/// that retires would take every case with it).
fn on_init_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    static JOBS: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sockgrade-inits".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("a thread for case inits");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    jobs.lock()
        .unwrap()
        .send(job)
        .map_err(|_| io::Error::other("the case init thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("the case init thread is gone"))
}

/// Runs `f` on the one thread that forks confined processes without root (see
/// [`CaseInit::spawning`]) and returns its result, blocking until then; a panic in `f`
/// is resumed on the caller.
fn on_spawner_thread<T: Send>(f: impl FnOnce() -> T + Send) -> io::Result<T> {
    static JOBS: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sockgrade-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("a thread to fork confined processes");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    // SAFETY: the job may borrow from the caller's stack: the caller blocks below until
    // the job has run (its sender then sent) or has been dropped unrun (the sender with
    // it), so nothing it borrows ends before it does.
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
    if jobs.lock().unwrap().send(job).is_err() {
        return Err(io::Error::other("the spawner thread is gone"));
    }
    match rx.recv() {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Err(io::Error::other("the spawner thread is gone")),
    }
}

/// Collects a killed init on a thread of its own (it exits once every process of its
/// namespace has).
fn reap_later(pid: u32) {
    static PIDS: OnceLock<Mutex<mpsc::Sender<u32>>> = OnceLock::new();
    let tx = PIDS.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<u32>();
        std::thread::Builder::new()
            .name("sockgrade-reaper".into())
            .spawn(move || {
                for pid in rx {
                    reap(pid);
                }
            })
            .expect("a thread to reap case inits");
        Mutex::new(tx)
    });
    let _ = tx.lock().unwrap().send(pid);
}

fn reap(pid: u32) {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child, by pid (never -1: tokio reaps its own).
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::__WALL) };
        if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The init's own program runs on this machine: it names itself and then waits,
    /// asleep, until it is killed.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_own_init_names_itself_and_sleeps() {
        let fd = own_init_memfd(OWN_INIT.unwrap()).expect("a memfd");
        let mut child = std::process::Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .spawn()
            .expect("the init's program starts");
        let stat = format!("/proc/{}/stat", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // Until it has named itself (its first system call) and sleeps in pause().
        let seen = loop {
            let s = std::fs::read_to_string(&stat).unwrap_or_default();
            if s.contains("(sockgrade-init) S") || std::time::Instant::now() > deadline {
                break s;
            }
            std::thread::yield_now();
        };
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert!(seen.contains("(sockgrade-init) S"), "{seen}");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "it ran until killed"
        );
    }

    /// Where the own program cannot run, the init is `sleep infinity`, as it was; and
    /// where it can, it is the own program. Either way a case's PID 1, in its root.
    #[test]
    fn the_init_runs_either_program() {
        // SAFETY: plain system call.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: starting a case's init needs root (namespaces)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().canonicalize().unwrap();
        let plan = Arc::new(
            RootPlan::new(&work, &[std::path::PathBuf::from("/usr/bin"), work.clone()]).unwrap(),
        );
        static SLEEP: OnceLock<InitProgram> = OnceLock::new();
        let sleep = SLEEP.get_or_init(|| InitProgram::Sleep(sleep_binary().expect("coreutils")));
        let mut programs = vec![(sleep, "sleep\0infinity\0")];
        if let Ok(own) = init_program() {
            if matches!(own, InitProgram::Own(_)) {
                programs.push((own, "sockgrade-init\0"));
            }
        }
        for (program, cmdline) in programs {
            let init = CaseInit::start_as(plan.clone(), program).expect("the init starts");
            let seen = std::fs::read(format!("/proc/{}/cmdline", init.pid())).unwrap();
            assert_eq!(String::from_utf8_lossy(&seen), cmdline, "{program:?}");
            // Its root is the case's, with the work folder in it.
            let root = format!("/proc/{}/root", init.pid());
            assert!(std::path::Path::new(&root)
                .join(work.strip_prefix("/").unwrap())
                .is_dir());
            drop(init);
        }
    }

    /// The memfd cannot be changed once made (not even by the grader).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_own_init_is_sealed() {
        let fd = own_init_memfd(OWN_INIT.unwrap()).expect("a memfd");
        // SAFETY: a write to our own descriptor.
        let n = unsafe { libc::write(fd.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!(n, -1);
        assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
    }
}
