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
use tokio::net::unix::pipe;
use tokio::process::Command;
use tokio::sync::watch;

/// `close_range(2)`'s flag: mark close-on-exec instead of closing (Linux 5.11).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

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
    pub stdin: Option<pipe::Sender>,
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
        let rlimits = launch.rlimits();
        let open_files = launch.limits.open_files;
        let join_cgroup = launch.cgroup;
        let confine = launch.confine;
        let launch_confine = confine.clone();
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
                crate::sys::clean_signal_state();
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
                for &(resource, value) in &rlimits {
                    set_limit(resource, value);
                }
                if let Some(c) = &confine {
                    c.apply_in_child()?;
                }
                // Descriptors the grader inherited without close-on-exec (a make
                // jobserver's pipes, a CI runner's) must not reach the student: all
                // above stderr close at exec (a fork-server child closes them too).
                // Before Linux 5.11 (EINVAL/ENOSYS) the grader's own are still covered:
                // it opens everything close-on-exec.
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);
                // Last: until exec closes them, this child holds every descriptor of a
                // busy grader (hundreds, close-on-exec), so a lower limit set earlier
                // makes any descriptor opened above (the confinement's) fail EMFILE.
                set_limit(libc::RLIMIT_NOFILE, open_files);
                Ok(())
            });
        }
        // With a confinement, the child is born in the case's PID namespace.
        let mut child = match &launch_confine {
            Some(c) => c.spawning(|| cmd.spawn())??,
            None => cmd.spawn()?,
        };
        let pid = child.id().expect("a just-spawned child has a pid");
        let stdin = match child.stdin.take() {
            Some(s) => Some(pipe::Sender::from_owned_fd(s.into_owned_fd()?)?),
            None => None,
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, exit) = watch::channel(None);
        // The exit is an event others wait on (select!), so one task owns the child.
        tokio::spawn(async move {
            let status = child.wait().await.ok();
            let _ = tx.send(status);
        });
        Ok(StudentProcess::assemble(
            pid,
            stdin,
            (stdout, stderr),
            exit,
            launch.limits,
        ))
    }

    /// Starts the program as a child of a fork server ([`super::warm`]): the same
    /// sandbox, entered by the child itself, without a fresh interpreter start.
    pub async fn spawn_warm(
        launch: &Launch<'_>,
        server: &super::warm::ForkServer,
    ) -> Result<StudentProcess, String> {
        let io = |e: std::io::Error| e.to_string();
        let (stdin_r, stdin_w) = pipe_pair().map_err(io)?;
        let (stdout_r, stdout_w) = pipe_pair().map_err(io)?;
        let (stderr_r, stderr_w) = pipe_pair().map_err(io)?;
        let (cgroups, cgroup_dir) = match &launch.cgroup {
            Some(c) => (c.descriptors().map_err(io)?, c.clone_into().map_err(io)?),
            None => (Vec::new(), None),
        };
        let child = server
            .launch(super::warm::WarmLaunch {
                argv: launch.argv.clone(),
                cwd: launch.cwd.clone(),
                env: launch.env.clone(),
                stdio: [stdin_r, stdout_w, stderr_w],
                cgroups,
                cgroup_dir,
                netns: launch.netns,
                namespaces: launch.confine.as_ref().map(|c| c.namespaces()),
                rlimits: launch.rlimits(),
                open_files: launch.limits.open_files,
                ids: launch.confine.as_ref().map(|c| (c.uid(), c.gid())),
                seccomp: launch
                    .confine
                    .as_ref()
                    .map(|c| c.seccomp_hex())
                    .unwrap_or_default(),
            })
            .await?;
        let stdin = pipe::Sender::from_owned_fd(stdin_w).map_err(io)?;
        let stdout = pipe::Receiver::from_owned_fd(stdout_r).map_err(io)?;
        let stderr = pipe::Receiver::from_owned_fd(stderr_r).map_err(io)?;
        Ok(StudentProcess::assemble(
            child.pid,
            Some(stdin),
            (stdout, stderr),
            child.exit,
            launch.limits,
        ))
    }

    fn assemble<R: tokio::io::AsyncRead + std::os::fd::AsRawFd + Unpin + Send + 'static>(
        pid: u32,
        stdin: Option<pipe::Sender>,
        (out, err): (
            R,
            impl tokio::io::AsyncRead + std::os::fd::AsRawFd + Unpin + Send + 'static,
        ),
        exit: watch::Receiver<Option<ExitStatus>>,
        limits: &Limits,
    ) -> StudentProcess {
        let stdout = Capture::new(limits.output_bytes);
        let stderr = Capture::new(limits.output_bytes);
        let readers = vec![stdout.spawn_reader(out), stderr.spawn_reader(err)];
        StudentProcess {
            pid,
            stdin,
            stdout,
            stderr,
            exit,
            readers,
            started: Instant::now(),
        }
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

    /// After an exit, waits (at most `limit`) until its output has been read to the
    /// end, so that a reason quoting its last stderr line has that line: a program that
    /// dies at once (a SyntaxError) may be reaped before its reader has run.
    pub async fn output_settled(&self, limit: Duration) {
        let both = futures::future::join(self.stdout.closed(), self.stderr.closed());
        let _ = tokio::time::timeout(limit, both).await;
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

impl Launch<'_> {
    /// The resource limits of the child, in the order they are set; the open-files
    /// limit is not among them: it is set last (see `spawn`).
    fn rlimits(&self) -> Vec<(libc::__rlimit_resource_t, u64)> {
        let mut out = vec![
            (libc::RLIMIT_CORE, 0),
            (libc::RLIMIT_CPU, self.limits.cpu_time.as_secs().max(1)),
            (libc::RLIMIT_FSIZE, self.limits.file_size_bytes),
        ];
        if self.rlimit_processes {
            // Without root, one uid for every case and the grader: see `process_rlimit`.
            let limit = super::userns::process_rlimit(self.limits.processes);
            out.push((libc::RLIMIT_NPROC, limit));
        }
        if self.rlimit_memory {
            out.push((libc::RLIMIT_AS, self.limits.memory_bytes));
        }
        out
    }
}

/// A pipe, both ends close-on-exec: (read end, write end).
fn pipe_pair() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
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
