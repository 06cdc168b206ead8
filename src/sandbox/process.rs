//! The student's process: a clean start, captured output, exit as an event, and a kill
//! that takes everything it started with it.

use super::capture::Capture;
use super::cgroup::{CaseCgroup, CgroupJoiner};
use crate::spec::Limits;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, Command};
use tokio::sync::watch;

/// Everything needed to start one student process.
pub struct Launch<'a> {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub netns: Option<RawFd>,
    /// The case's cgroup, joined before exec so nothing the program starts escapes it.
    pub cgroup: Option<CgroupJoiner>,
    pub limits: &'a Limits,
    /// Whether the memory limit must be enforced per process (no memory cgroup).
    pub rlimit_memory: bool,
    /// Whether the process limit must be enforced per uid (no pids cgroup). With a
    /// pids cgroup, the cgroup is the limit, so that its counter can name the reason.
    pub rlimit_processes: bool,
    /// Read-only filesystem, own uid, no capabilities: applied last, after the steps
    /// that need privileges (cgroup join, setns).
    pub confine: Option<std::sync::Arc<super::confine::Confinement>>,
}

/// A running (or finished) student process.
pub struct StudentProcess {
    pub pid: u32,
    pub stdin: Option<ChildStdin>,
    pub stdout: Capture,
    pub stderr: Capture,
    exit: watch::Receiver<Option<ExitStatus>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    pub started: Instant,
}

impl StudentProcess {
    pub fn spawn(launch: Launch<'_>) -> std::io::Result<StudentProcess> {
        let mut cmd = Command::new(&launch.argv[0]);
        cmd.args(&launch.argv[1..])
            .current_dir(&launch.cwd)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let netns = launch.netns;
        let limits = launch.limits.clone();
        let rlimit_memory = launch.rlimit_memory;
        let rlimit_processes = launch.rlimit_processes;
        let join_cgroup = launch.cgroup;
        let confine = launch.confine;
        // SAFETY: the closure runs between fork and exec; it calls only async-signal-safe
        // functions (setsid, sigprocmask, signal, setns, write, setrlimit, prctl) and
        // allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // A session of its own: a process group we can signal as a whole, and
                // no controlling terminal (Ctrl-C in the grader's terminal is ours).
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // A clean start whatever the grader inherited: a grader started in the
                // background of a script has SIGINT ignored, and a Python child would
                // inherit that and never see the "Ctrl-C" a case sends.
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                for sig in 1..libc::SIGRTMAX() {
                    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                }
                if let Some(cg) = &join_cgroup {
                    cg.join()?;
                }
                if let Some(fd) = netns {
                    if libc::setns(fd, libc::CLONE_NEWNET) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // If the grader dies, its students die with it.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                set_limit(libc::RLIMIT_CORE, 0);
                set_limit(libc::RLIMIT_CPU, limits.cpu_time.as_secs().max(1));
                set_limit(libc::RLIMIT_FSIZE, limits.file_size_bytes);
                if rlimit_processes {
                    set_limit(libc::RLIMIT_NPROC, limits.processes);
                }
                if rlimit_memory {
                    set_limit(libc::RLIMIT_AS, limits.memory_bytes);
                }
                if let Some(c) = &confine {
                    c.apply_in_child()?;
                }
                // Last: until exec closes them, this child holds every descriptor of a
                // busy grader (hundreds, close-on-exec), so a lower limit set earlier
                // makes any descriptor opened above (the confinement's) fail EMFILE.
                set_limit(libc::RLIMIT_NOFILE, limits.open_files);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pid = child.id().expect("a just-spawned child has a pid");
        let stdout = Capture::new(launch.limits.output_bytes);
        let stderr = Capture::new(launch.limits.output_bytes);
        let readers = vec![
            stdout.spawn_reader(child.stdout.take().expect("stdout is piped")),
            stderr.spawn_reader(child.stderr.take().expect("stderr is piped")),
        ];
        let stdin = child.stdin.take();
        let (tx, exit) = watch::channel(None);
        // The exit is an event others wait on (select!), so one task owns the child.
        tokio::spawn(async move {
            let status = child.wait().await.ok();
            let _ = tx.send(status);
        });
        Ok(StudentProcess {
            pid,
            stdin,
            stdout,
            stderr,
            exit,
            readers,
            started: Instant::now(),
        })
    }

    /// The exit status, if the process has exited.
    pub fn status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Whether the process has ended, even if its exit has not been reaped yet (a zombie):
    /// asked of the kernel directly, not of the waiter task.
    pub fn is_dead(&self) -> bool {
        self.status().is_some()
            || super::proc_net::read_stat(self.pid).is_none_or(|s| s.state == 'Z')
    }

    /// Waits for the process to exit (race it against a deadline).
    pub async fn exited(&self) -> ExitStatus {
        let mut rx = self.exit.clone();
        let got = rx.wait_for(|s| s.is_some()).await.map(|s| *s);
        match got {
            Ok(s) => s.expect("wait_for returned a Some"),
            // The waiter task is gone without a status: treat as never exiting.
            Err(_) => std::future::pending().await,
        }
    }

    /// Sends a signal: SIGINT to the whole process group (as Ctrl-C in a terminal does),
    /// anything else to the process itself (as `kill PID` does).
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> nix::Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        if sig == nix::sys::signal::Signal::SIGINT {
            nix::sys::signal::killpg(pid, sig)
        } else {
            nix::sys::signal::kill(pid, sig)
        }
    }

    pub async fn write_stdin(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.stdin.as_mut() {
            Some(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "stdin is closed",
            )),
        }
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Ends the process and everything it started: SIGTERM to the group, a short grace,
    /// then SIGKILL to the group and, where there is one, to the whole cgroup (which
    /// also catches daemons that left the group with setsid).
    pub async fn terminate(&mut self, cgroup: Option<&CaseCgroup>, grace: Duration) {
        let pgid = nix::unistd::Pid::from_raw(self.pid as i32);
        if self.status().is_none() {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
            let _ = tokio::time::timeout(grace, self.exited()).await;
        }
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        if let Some(cg) = cgroup {
            let _ = cg.kill_all();
        }
        // Without a cgroup, the process group is all we know of.
        let group = if cgroup.is_none() {
            super::proc_net::group_pids(self.pid)
        } else {
            Vec::new()
        };
        for pid in group {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = tokio::time::timeout(grace * 4, self.exited()).await;
        // The pipes close once every holder is dead; the readers then finish.
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(grace, r).await;
        }
        self.stdin = None;
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit is async-signal-safe; a failure leaves the inherited limit.
    unsafe {
        libc::setrlimit(resource, &lim);
    }
}

/// A human description of an exit status: "exited with code 1", "was killed by SIGINT".
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exited with code {code}")
    } else if let Some(sig) = status.signal() {
        let name = nix::sys::signal::Signal::try_from(sig)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| format!("signal {sig}"));
        format!("was killed by {name}")
    } else {
        "ended".to_string()
    }
}
