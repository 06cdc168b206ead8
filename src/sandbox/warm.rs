//! Warm start: Python 3 student programs forked from an interpreter that has already
//! started, instead of a fresh `python3 FILE` for every case.
//!
//! # Why
//!
//! A class run starts thousands of student processes, and on a typical grading machine
//! Python's own start-up is most of what grading costs: `site` runs every `.pth` hook of
//! the installed packages before the first line of the student's file (here 48 ms of CPU
//! per start, 30 of them in `site`, against ~6 ms of the grader's own work per case).
//! A fork server pays that once per run: `warm.py` starts with the spec's interpreter and
//! environment, then forks a child per student program (~2 ms).
//!
//! # What the child gets
//!
//! The same sandbox as a cold start, entered in the same order as `process.rs`'s
//! pre_exec: born in the case's PID namespace (the server forks it from there), its own
//! session, the case's cgroup, network namespace, rlimits, the case's IPC and mount
//! namespaces (its init's, [`super::caseinit`]), the case's uid with every
//! capability dropped and `no_new_privs`, the case's stdin/stdout/stderr, no other
//! descriptor (the server's socket included), the case's environment and folder. Then
//! the file runs as `__main__` with the `sys.argv`, `sys.path[0]`, `__file__`,
//! `__loader__` and exit statuses (an uncaught `KeyboardInterrupt` dies of SIGINT) of
//! `python3 FILE`, and tracebacks without the server's frames.
//!
//! What differs, and why it does not matter for grading: modules that start-up imported
//! are already in `sys.modules` (as they are after a cold start), plus the server's own
//! (`socket`, `json`, `ctypes`, `select`, `resource`); string hashing uses one seed for
//! every child of a run; `/proc/PID/cmdline` shows the server's command line (in the case's
//! own `/proc`, where only the case's processes are). `random`
//! reseeds itself in every child (Python's at-fork hook). Python 2 and other programs
//! start cold; so does everything when a spec says `warm_start = false`.
//!
//! # Layout
//!
//! [`WarmStarts`] (one per run, in [`super::Host`]) starts a [`ForkServer`] per
//! interpreter and environment on first use. A server is a child process with a
//! `SOCK_SEQPACKET` socket at fd 3; a reader thread turns its messages into replies to
//! launches and exit statuses (it reaps its children and reports them).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// The server's code, run with `python3 -c BOOTSTRAP` and read from its stdin.
const SERVER: &str = include_str!("warm.py");
const BOOTSTRAP: &str = "import os;exec(compile(b''.join(iter(lambda:os.read(0,65536),b'')),'<sockgrade warm start>','exec'),{'__name__':'__sockgrade_warm__'})";
/// How long a server may take to start (a cold Python start, on a loaded machine).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a launch may wait for its reply (forks are queued behind each other).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// One student program to start from a server.
pub struct WarmLaunch {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// The child's ends: stdin, stdout, stderr.
    pub stdio: [OwnedFd; 3],
    /// `cgroup.procs` files to write "0" to (the child joins them itself).
    pub cgroups: Vec<OwnedFd>,
    /// The case's cgroup2 group, opened, and the index in `cgroups` of its
    /// `cgroup.procs`: the server creates the child straight into it where the kernel
    /// allows (`clone3` with `CLONE_INTO_CGROUP`), and the child skips that write
    /// ([`super::cgroup::CgroupJoiner::clone_into`]).
    pub cgroup_dir: Option<(OwnedFd, usize)>,
    pub netns: Option<RawFd>,
    /// The case's PID, IPC and mount namespaces, when confined: the server forks the
    /// child into the first, the child enters the others.
    pub namespaces: Option<[RawFd; 3]>,
    /// `(resource, limit)` pairs set in this order; the open-files limit is set last.
    pub rlimits: Vec<(u32, u64)>,
    pub open_files: u64,
    /// The case's uid and gid, when confined.
    pub ids: Option<(u32, u32)>,
    /// The seccomp filters to install last ([`super::seccomp::Filters::to_hex`]).
    pub seccomp: Vec<String>,
}

/// A started child: its pid, and its exit status once the server reaps it (the pid is
/// not recycled before that: the server reaps its children only to report them).
pub struct WarmChild {
    pub pid: u32,
    pub exit: watch::Receiver<Option<ExitStatus>>,
}

type Pending = HashMap<u64, oneshot::Sender<Result<WarmChild, String>>>;

/// What the reader thread shares with launches.
#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    exits: Mutex<HashMap<u32, watch::Sender<Option<ExitStatus>>>>,
    dead: AtomicBool,
}

/// A running fork server for one interpreter and environment.
pub struct ForkServer {
    ctl: OwnedFd,
    next_id: AtomicU64,
    shared: Arc<Shared>,
    /// The server process, to kill it when the run ends.
    pidfd: OwnedFd,
    pub pid: u32,
    pub version: String,
}

impl ForkServer {
    /// Starts `interpreter` with `env` and waits until it is ready to fork.
    ///
    /// The server is started by, and reaped by, a thread that lives as long as it does:
    /// its parent-death signal follows the *thread* that forked it, and a pool thread
    /// that retires would take the server, and every case it started, with it.
    pub fn start(interpreter: &Path, env: &[(String, String)]) -> io::Result<ForkServer> {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let shared = Arc::new(Shared::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let reader_fd = ours.try_clone()?;
        let reader_shared = shared.clone();
        let interpreter = interpreter.to_path_buf();
        let env = env.to_vec();
        std::thread::Builder::new()
            .name("sockgrade-warm".into())
            .spawn(move || {
                let mut child = match spawn_server(&interpreter, &env, theirs, &reader_fd) {
                    Ok((child, pidfd, version)) => {
                        let _ = tx.send(Ok((pidfd, child.id(), version)));
                        child
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                read_messages(reader_fd, reader_shared);
                let _ = child.wait();
            })?;
        let (pidfd, pid, version) = rx
            .recv()
            .map_err(|_| io::Error::other("the fork server's thread ended"))??;
        Ok(ForkServer {
            ctl: ours,
            pidfd,
            pid,
            next_id: AtomicU64::new(1),
            shared,
            version,
        })
    }

    /// Whether the server has gone away (then launches fail and cases start cold).
    pub fn is_dead(&self) -> bool {
        self.shared.dead.load(Ordering::SeqCst)
    }

    /// Forks a child for `launch` and returns once it has entered its sandbox.
    pub async fn launch(&self, launch: WarmLaunch) -> Result<WarmChild, String> {
        if self.is_dead() {
            return Err("the fork server has exited".into());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().unwrap().insert(id, tx);
        let request = serde_json::json!({
            "id": id,
            "argv": launch.argv,
            "cwd": launch.cwd,
            "env": launch.env,
            "cgroups": launch.cgroups.len(),
            "cgroup_dir": launch.cgroup_dir.as_ref().map(|d| d.1),
            "netns": launch.netns.is_some(),
            "namespaces": launch.namespaces.is_some(),
            "rlimits": launch.rlimits,
            "nofile": launch.open_files,
            "uid": launch.ids.map(|i| i.0),
            "gid": launch.ids.map(|i| i.1),
            "seccomp": launch.seccomp,
        });
        let mut fds: Vec<RawFd> = launch.stdio.iter().map(|f| f.as_raw_fd()).collect();
        fds.extend(launch.cgroups.iter().map(|f| f.as_raw_fd()));
        fds.extend(launch.cgroup_dir.iter().map(|d| d.0.as_raw_fd()));
        fds.extend(launch.netns);
        fds.extend(launch.namespaces.iter().flatten());
        let bytes = request.to_string().into_bytes();
        let sent = {
            use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
            let iov = [io::IoSlice::new(&bytes)];
            let cmsg = [ControlMessage::ScmRights(&fds)];
            sendmsg::<UnixAddr>(
                self.ctl.as_raw_fd(),
                &iov,
                &cmsg,
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
        };
        // Our copies of the child's ends go now: the child holds its own.
        drop(launch);
        if let Err(e) = sent {
            self.shared.pending.lock().unwrap().remove(&id);
            // A server that cannot be written to is gone (or going): no more launches.
            self.shared.dead.store(true, Ordering::SeqCst);
            return Err(format!("could not reach the fork server: {e}"));
        }
        match tokio::time::timeout(LAUNCH_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the fork server exited".into()),
            Err(_) => {
                self.shared.pending.lock().unwrap().remove(&id);
                Err(format!(
                    "the fork server did not answer within {LAUNCH_TIMEOUT:?}"
                ))
            }
        }
    }
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        // Through the pidfd: no mistaking a recycled pid. Its thread reaps it.
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
    }
}

/// Starts the server process and waits for its "ready": the child, a pidfd of it, and
/// the interpreter's version.
fn spawn_server(
    interpreter: &Path,
    env: &[(String, String)],
    theirs: OwnedFd,
    ours: &OwnedFd,
) -> io::Result<(std::process::Child, OwnedFd, String)> {
    let theirs_fd = theirs.as_raw_fd();
    let mut cmd = std::process::Command::new(interpreter);
    cmd.args(["-c", BOOTSTRAP])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            // Its own session: Ctrl-C in the grader's terminal is the grader's to handle.
            libc::setsid();
            crate::sys::clean_signal_state();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // dup2 clears close-on-exec on the new descriptor.
            if libc::dup2(theirs_fd, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(theirs);
    // The child is ours and not reaped yet: it exists.
    let pidfd = match crate::sys::pidfd_open(child.id()) {
        Ok(Some(fd)) => fd,
        Ok(None) => Err(io::Error::from_raw_os_error(libc::ESRCH))?,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(SERVER.as_bytes())?;
    }
    let stderr = child.stderr.take().expect("piped");
    let errors = Arc::new(Mutex::new(Vec::<u8>::new()));
    {
        // Drained for as long as it runs, keeping the end for error messages.
        let errors = errors.clone();
        std::thread::Builder::new()
            .name("sockgrade-warm-err".into())
            .spawn(move || {
                use std::io::Read;
                let mut stderr = stderr;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut e = errors.lock().unwrap();
                    e.extend_from_slice(&buf[..n]);
                    let len = e.len();
                    if len > 4096 {
                        e.drain(..len - 4096);
                    }
                }
            })?;
    }
    let ready = recv_timeout(ours, READY_TIMEOUT);
    let ready = match ready {
        Ok(Some(msg)) => msg,
        other => {
            let _ = child.kill();
            let _ = child.wait();
            let why = match other {
                Err(e) => format!(" ({e})"),
                _ => String::new(),
            };
            let text = String::from_utf8_lossy(&errors.lock().unwrap())
                .trim()
                .to_string();
            let last = text.lines().last().unwrap_or_default().to_string();
            return Err(io::Error::other(if last.is_empty() {
                format!("the fork server did not start{why}")
            } else {
                format!("the fork server did not start{why}: {last}")
            }));
        }
    };
    let version = ready
        .get("ready")
        .and_then(|v| v.as_str())
        .unwrap_or("?")
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string();
    Ok((child, pidfd, version))
}

/// Waits up to `timeout` for one message. `Ok(None)`: the server closed the socket.
fn recv_timeout(fd: &OwnedFd, timeout: Duration) -> io::Result<Option<serde_json::Value>> {
    if crate::sys::poll_one(fd.as_raw_fd(), libc::POLLIN, timeout)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {timeout:?}"),
        ));
    }
    recv(fd.as_raw_fd())
}

/// Receives one message (the server sends no descriptors).
fn recv(fd: RawFd) -> io::Result<Option<serde_json::Value>> {
    let mut buf = vec![0u8; 1 << 16];
    let len = loop {
        // SAFETY: reads into a buffer we own, of the length given.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    if len == 0 {
        return Ok(None);
    }
    serde_json::from_slice(&buf[..len])
        .map(Some)
        .map_err(io::Error::other)
}

/// The reader thread: replies go to their launch, exits to their watchers.
fn read_messages(fd: OwnedFd, shared: Arc<Shared>) {
    while let Ok(Some(msg)) = recv(fd.as_raw_fd()) {
        if let Some(pid) = msg.get("exit").and_then(|p| p.as_u64()) {
            let status = msg.get("status").and_then(|s| s.as_i64()).unwrap_or(0);
            if let Some(tx) = shared.exits.lock().unwrap().remove(&(pid as u32)) {
                let _ = tx.send(Some(ExitStatus::from_raw(status as i32)));
            }
            continue;
        }
        let Some(id) = msg.get("id").and_then(|i| i.as_u64()) else {
            continue;
        };
        let Some(reply) = shared.pending.lock().unwrap().remove(&id) else {
            continue;
        };
        let result = match msg.get("pid").and_then(|p| p.as_u64()) {
            Some(pid) => {
                let (tx, exit) = watch::channel(None);
                // Registered before the next message is read: the exit comes after.
                shared.exits.lock().unwrap().insert(pid as u32, tx);
                Ok(WarmChild {
                    pid: pid as u32,
                    exit,
                })
            }
            None => Err(msg
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("the fork server gave no pid")
                .to_string()),
        };
        let _ = reply.send(result);
    }
    // The server is gone: its children died with it (their parent-death signal).
    shared.dead.store(true, Ordering::SeqCst);
    shared.pending.lock().unwrap().clear();
    for (_, tx) in shared.exits.lock().unwrap().drain() {
        let _ = tx.send(Some(ExitStatus::from_raw(libc::SIGKILL)));
    }
}

/// The fork servers of one run, started on first use.
#[derive(Default)]
pub struct WarmStarts {
    servers: Mutex<HashMap<Key, Arc<Slot>>>,
}

/// A server once started, or why it could not be.
type Slot = tokio::sync::OnceCell<Result<Arc<ForkServer>, String>>;

type Key = (PathBuf, Vec<(String, String)>);

impl WarmStarts {
    /// The server for `interpreter` with `env` (the case's; `HOME`, the one per-case
    /// variable, is left out and set in the child), started now if need be. An error
    /// says why this interpreter cannot start warm (it is not Python 3.9 or later);
    /// it is remembered for the rest of the run.
    pub async fn server(
        &self,
        interpreter: &Path,
        env: &[(String, String)],
    ) -> Result<Arc<ForkServer>, String> {
        let env: Vec<(String, String)> = env.iter().filter(|(k, _)| k != "HOME").cloned().collect();
        let key = (interpreter.to_path_buf(), env.clone());
        let cell = self.servers.lock().unwrap().entry(key).or_default().clone();
        let interpreter = interpreter.to_path_buf();
        let got = cell
            .get_or_init(|| async move {
                let mut env = env;
                env.push(("HOME".into(), "/nonexistent".into()));
                tokio::task::spawn_blocking(move || ForkServer::start(&interpreter, &env))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map(Arc::new).map_err(|e| e.to_string()))
            })
            .await;
        match got {
            Ok(s) if s.is_dead() => Err("the fork server has exited".into()),
            other => other.clone(),
        }
    }

    /// The servers started so far (for diagnostics and tests).
    pub fn started(&self) -> Vec<Arc<ForkServer>> {
        let cells: Vec<_> = self.servers.lock().unwrap().values().cloned().collect();
        cells
            .iter()
            .filter_map(|c| c.get().and_then(|r| r.as_ref().ok()).cloned())
            .collect()
    }
}

/// Whether `argv` is a program the fork server can run: an interpreter whose name says
/// Python 3 (or just `python`), then the student's file, then its arguments.
pub fn eligible(argv: &[String], file: &Path) -> bool {
    let [interpreter, script, ..] = argv else {
        return false;
    };
    let name = Path::new(interpreter)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let python3 = name == "python" || name == "python3" || name.starts_with("python3.");
    python3 && Path::new(interpreter).is_absolute() && Path::new(script) == file
}
