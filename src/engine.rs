//! Runs one case: starts the student's program in its sandbox, plays the steps with the
//! reference peer, and turns what happened into a verdict, a reason and a transcript.
//!
//! Every wait here is a race between the event itself (data, a close, an accept, the
//! process exit, a socket appearing in the kernel's tables) and a deadline; nothing
//! sleeps to "give the program time". The only timed waits are the ones where time is
//! the behaviour under test: watching CPU use over `expect_idle`'s window.

use crate::outcome::{CaseResult, Event, EventKind, Failure, Status};
use crate::peer::{Connection, PeerClosed, ReadOutcome};
use crate::sandbox::process::{describe_status, Launch, StudentProcess};
use crate::sandbox::{proc_net, sockets, Host, Sandbox};
use crate::spec::{
    Action, Case, ExitExpectation, ExpectedClose, Matcher, Spec, Step, Stream, Target,
};
use crate::text::{last_lines, quote};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::{Instant, MissedTickBehavior};

/// How often the program's sockets are looked at while waiting for one to listen or accept
/// (each look is ~50 µs: see `sandbox::sockets`).
const POLL: Duration = Duration::from_millis(1);
/// Time a program gets to exit on SIGTERM at the end of a case before SIGKILL.
const GRACE: Duration = Duration::from_millis(200);
const STDERR_LINES: usize = 8;
/// How long a failing case waits for an exit that a reset connection announces.
const SETTLE: Duration = Duration::from_millis(100);
/// Bytes an idle program may print or send while `expect_idle` watches it.
const IDLE_WRITES: u64 = 4096;
/// Bytes a program may send while `expect_close` waits for it to close: one that sends
/// more keeps sending (a loop that answers every empty `recv`), so waiting on is only
/// both sides burning CPU until the deadline, and the verdict is already clear.
const CLOSE_FLOOD: u64 = 1 << 20;

/// The box a case runs in: a copy of the submission, its namespace, cgroup and
/// confinement. Copying files and creating namespaces block: off the async threads.
fn prepare_sandbox(
    host: &Host,
    spec: &Spec,
    case: &Case,
    submission: &Path,
    case_id: &str,
) -> Result<Sandbox, crate::sandbox::SandboxError> {
    let program = spec
        .program(case.target)
        .expect("validation ensures the target's section exists");
    tokio::task::block_in_place(|| {
        Sandbox::prepare(host, submission, program, &spec.limits, case_id)
    })
}

/// Grades one case of one submission.
pub async fn run_case(
    host: &Host,
    spec: &Spec,
    case: &Case,
    submission: &Path,
    case_id: &str,
) -> CaseResult {
    let t0 = Instant::now();
    let sandbox = prepare_sandbox(host, spec, case, submission, case_id);
    let sandbox = match sandbox {
        Ok(s) => s,
        Err(e) => return error_result(case, e.to_string(), t0),
    };
    let mut run = Run::new(host, spec, case, t0, sandbox);
    let failure = run.play().await;
    run.finish(failure).await
}

/// How long, after a case that shares the server process, the server may take to be
/// back in accept() (no connection held) once the grader closed its connections. A
/// server that takes longer is replaced by a fresh one for the next case.
const READY_WAIT: Duration = Duration::from_millis(1000);

/// A server process kept running between the cases that share it.
struct Kept {
    sandbox: Sandbox,
    proc: StudentProcess,
    listen: SocketAddr,
    bound: Option<SocketAddr>,
    /// The case it was started for.
    started_for: String,
}

impl Kept {
    async fn stop(mut self) {
        self.proc
            .terminate(self.sandbox.cgroup.as_ref(), GRACE)
            .await;
    }

    fn pids(&self) -> Vec<u32> {
        match &self.sandbox.cgroup {
            Some(cg) => cg.pids().into_iter().map(|p| p as u32).collect(),
            None => proc_net::group_pids(self.proc.pid),
        }
    }

    /// Closes the case's connections (FIN) and waits until the server is ready for the
    /// next case: alive, listening, nothing in its accept queue, and no connection held
    /// (or only ones the grader closed and it did not, while it waits: blocked in
    /// accept()). Errs with why it cannot be used again.
    async fn recycle(self, mut conns: HashMap<String, Connection>) -> Result<Kept, (Kept, String)> {
        // FIN on every connection, then keep reading until the server has closed its
        // side: a socket closed with unread data would send an RST, which a correct
        // server may not survive (recv() raises ConnectionResetError).
        for c in conns.values_mut() {
            let _ = c.shutdown_write().await;
        }
        let deadline = Instant::now() + READY_WAIT;
        let mut ready_looks = 0;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            for c in conns.values_mut() {
                c.discard_ready();
            }
            if let Some(status) = self.proc.status() {
                let why = format!("{} after the previous case", describe_status(status));
                return Err((self, why));
            }
            if let Some(cg) = &self.sandbox.cgroup {
                if cg.memory_limit_hit() || cg.process_limit_hit() {
                    return Err((self, "hit a resource limit in the previous case".into()));
                }
            }
            let pids = self.pids();
            let list = match sockets::sockets_of(&pids) {
                Ok(l) => l,
                Err(e) => {
                    let why = format!("could not be inspected ({e}): its sockets cannot be seen without pidfd_getfd");
                    return Err((self, why));
                }
            };
            let port = self.bound.map(|b| b.port()).unwrap_or(self.listen.port());
            let listeners: Vec<_> = list
                .iter()
                .filter(|s| s.listening && s.local.is_some_and(|l| l.port() == port))
                .collect();
            if listeners.is_empty() {
                return Err((self, "no longer listened after the previous case".into()));
            }
            let queued: u32 = listeners.iter().map(|l| l.queued).sum();
            // Accepted connections (bound to the listening port), reset ones included:
            // a reset socket has no peer any more but is still the program's to close.
            let held: Vec<_> = list
                .iter()
                .filter(|s| !s.listening && s.local.is_some_and(|l| l.port() == port))
                .collect();
            // Connections the grader ended and the program did not close (CLOSE_WAIT,
            // or CLOSE after a reset) while it waits: it forgot close() but is back in
            // accept(), as a server that rebinds `conn` on the next accept is.
            let only_closed_by_us = held
                .iter()
                .all(|s| matches!(s.state, Some(sockets::TCP_CLOSE_WAIT | sockets::TCP_CLOSE)));
            // And waiting for the next client: a server that has closed the connection
            // may still be on its way out (a single-client server closes its listener
            // and exits next), and a spinning one is asleep whenever a full output pipe
            // blocks it. A look that fell at such a moment would hand the next case a
            // dying or busy server, and a verdict would depend on the machine's load.
            let ready = queued == 0
                && (held.is_empty() || only_closed_by_us)
                && waiting_for_clients(&pids)
                && !self.proc.stdout.lagging()
                && !self.proc.stderr.lagging();
            // Twice in a row: one look can fall between a wake-up and what it leads to.
            ready_looks = if ready { ready_looks + 1 } else { 0 };
            if ready_looks >= 2 {
                for c in conns.values_mut() {
                    c.discard_ready();
                }
                drop(conns);
                return Ok(self);
            }
            let last = if ready {
                "it was about to be ready".to_string()
            } else if queued > 0 {
                format!("{queued} connection(s) still waited in its accept queue")
            } else {
                format!(
                    "it still held {} connection(s) and did not go back to accept()",
                    held.len()
                )
            };
            if Instant::now() >= deadline {
                let why = format!(
                    "was not ready {} after the previous case closed its connections: {last}",
                    humantime::format_duration(READY_WAIT)
                );
                return Err((self, why));
            }
            tick.tick().await;
        }
    }
}

/// The server cases of one submission that share one started process (the spec's
/// `share_process`): they run one after another; each gets fresh connections, its own
/// transcript, output and verdict. When the process dies, or a case leaves it unable to
/// serve the next (not listening, still holding a connection), the next case starts a
/// fresh one in a fresh sandbox and says so.
#[derive(Default)]
pub struct SharedServer {
    kept: Option<Kept>,
    /// Why the next case cannot reuse the process: said in its transcript.
    why_fresh: Option<String>,
}

impl SharedServer {
    pub fn new() -> SharedServer {
        SharedServer::default()
    }

    /// Grades one case on the shared process (starting it when there is none).
    pub async fn run_case(
        &mut self,
        host: &Host,
        spec: &Spec,
        case: &Case,
        submission: &Path,
        case_id: &str,
    ) -> CaseResult {
        let t0 = Instant::now();
        let mut notes = Vec::new();
        let kept = self.kept.take();
        let (sandbox, proc, listen, bound, started_for) = match kept {
            Some(k) => (
                k.sandbox,
                Some(k.proc),
                Some(k.listen),
                k.bound,
                Some(k.started_for),
            ),
            None => {
                if let Some(why) = self.why_fresh.take() {
                    notes.push(format!(
                        "a fresh server process for this case: the shared one {why}"
                    ));
                }
                let prepared = prepare_sandbox(host, spec, case, submission, case_id);
                match prepared {
                    Ok(s) => (s, None, None, None, None),
                    Err(e) => {
                        let mut r = error_result(case, e.to_string(), t0);
                        r.shared_process = true;
                        return r;
                    }
                }
            }
        };
        let mut run = Run {
            listen,
            bound,
            proc,
            started_for,
            ..Run::new(host, spec, case, t0, sandbox)
        };
        for text in notes {
            run.event(EventKind::Note { text });
        }
        let failure = run.play().await;
        let (result, kept) = run.finish_shared(failure).await;
        match kept {
            Some((k, conns)) => match k.recycle(conns).await {
                Ok(k) => self.kept = Some(k),
                Err((k, why)) => {
                    k.stop().await;
                    self.why_fresh = Some(why);
                }
            },
            None => {
                self.why_fresh = result
                    .exit
                    .as_ref()
                    .map(|e| format!("{e} during the previous case"));
            }
        }
        result
    }

    /// Stops the shared process, if one is running.
    pub async fn stop(mut self) {
        if let Some(k) = self.kept.take() {
            k.stop().await;
        }
    }
}

fn error_result(case: &Case, reason: String, t0: Instant) -> CaseResult {
    CaseResult {
        name: case.name.clone(),
        target: case.target,
        status: Status::Error,
        score: 0,
        max_score: case.points,
        informational: case.informational,
        reason: Some(reason),
        failure: None,
        hint: None,
        exit: None,
        stderr_tail: Vec::new(),
        stdout_tail: Vec::new(),
        stdout_bytes: 0,
        stderr_bytes: 0,
        duration_ms: t0.elapsed().as_millis() as u64,
        visibility: case.visibility,
        show: case.show.clone(),
        shared_process: false,
        transcript: Vec::new(),
    }
}

/// A step's deadline that counts only time the program could run.
///
/// On a loaded machine (a class graded with many jobs, a CI runner shared with other
/// builds) a correct program can spend seconds waiting for a CPU. Charging that to the
/// student would make the grade depend on the load: so whenever a deadline passes, the
/// time the program's threads spent runnable but not running since the wait began
/// (`schedstat`) is added to it, and the wait goes on. A program that is slow on its own,
/// or blocked, gets no extension; the case's own timeout still bounds everything.
struct Deadline {
    at: Instant,
    pids: Vec<u32>,
    credited: Duration,
}

/// CPU waits shorter than this are the ordinary noise of a busy machine.
const MIN_CREDIT: Duration = Duration::from_millis(5);

impl Deadline {
    fn new(within: Duration, pids: Vec<u32>) -> Deadline {
        let credited = proc_net::cpu_wait(&pids);
        Deadline {
            at: Instant::now() + within,
            pids,
            credited,
        }
    }

    /// Moves the deadline by the CPU wait not yet credited; true when it moved.
    fn extend(&mut self) -> bool {
        let waited = proc_net::cpu_wait(&self.pids);
        let more = waited.saturating_sub(self.credited);
        if more < MIN_CREDIT {
            return false;
        }
        self.credited = waited;
        self.at += more;
        true
    }
}

struct Run<'a> {
    host: &'a Host,
    spec: &'a Spec,
    case: &'a Case,
    t0: Instant,
    sandbox: Sandbox,
    transcript: Vec<Event>,
    conns: HashMap<String, Connection>,
    /// Server targets: where the grader connects.
    listen: Option<SocketAddr>,
    /// Server targets: the address the student's socket is bound to.
    bound: Option<SocketAddr>,
    /// Client targets: the reference server's listening socket.
    reference: Option<TcpListener>,
    proc: Option<StudentProcess>,
    exit_recorded: bool,
    /// The case could not be run for a reason that is not the student's (the spec's
    /// command cannot start, the reference port is taken): an error, not a failure.
    grader_error: bool,
    last_stdin: Vec<u8>,
    /// Shared server process: the case it was started for, when this case reuses it
    /// (`Some("")` never happens; `None` for a process of this case's own).
    started_for: Option<String>,
}

/// A failure before any step, or of a step.
fn fail(
    step: usize,
    line: usize,
    action: String,
    expected: impl Into<String>,
    got: impl Into<String>,
) -> Failure {
    Failure {
        step,
        line,
        action,
        sent: None,
        expected: expected.into(),
        got: got.into(),
    }
}

impl<'a> Run<'a> {
    /// A case about to run in `sandbox`, with nothing started yet.
    fn new(
        host: &'a Host,
        spec: &'a Spec,
        case: &'a Case,
        t0: Instant,
        sandbox: Sandbox,
    ) -> Run<'a> {
        Run {
            host,
            spec,
            case,
            t0,
            sandbox,
            transcript: Vec::new(),
            conns: HashMap::new(),
            listen: None,
            bound: None,
            reference: None,
            proc: None,
            exit_recorded: false,
            grader_error: false,
            last_stdin: Vec::new(),
            started_for: None,
        }
    }

    fn event(&mut self, kind: EventKind) {
        self.transcript.push(Event {
            at_ms: self.t0.elapsed().as_millis() as u64,
            kind,
        });
    }

    fn proc(&self) -> &StudentProcess {
        self.proc
            .as_ref()
            .expect("steps run only once the program started")
    }

    fn who(&self) -> &'static str {
        self.case.target.as_str()
    }

    /// Records the exit once we have seen it.
    fn note_exit(&mut self) {
        if self.exit_recorded {
            return;
        }
        if let Some(status) = self.proc.as_ref().and_then(|p| p.status()) {
            self.exit_recorded = true;
            self.event(EventKind::Exited {
                status: describe_status(status),
            });
        }
    }

    /// "; the server has exited with code 1" when it has: the usual explanation of a
    /// reset or of silence.
    fn exit_suffix(&self) -> String {
        match self.proc.as_ref().and_then(|p| p.status()) {
            Some(s) => format!(
                "; the {} {} (see its last stderr lines below)",
                self.who(),
                describe_status(s)
            ),
            None => String::new(),
        }
    }

    async fn play(&mut self) -> Option<Failure> {
        if let Err(f) = self.start().await {
            return Some(f);
        }
        // The case's own clock starts with the program (the grader's set-up is not the
        // student's time) and, like a step's, does not count the program's CPU waits.
        let mut deadline = Deadline::new(self.case.timeout, self.pids());
        for (i, step) in self.case.steps.iter().enumerate() {
            let outcome = {
                let step_done = self.step(i + 1, step);
                tokio::pin!(step_done);
                loop {
                    tokio::select! {
                        biased;
                        r = &mut step_done => break Ok(r),
                        _ = tokio::time::sleep_until(deadline.at) => if !deadline.extend() { break Err(()) },
                    }
                }
            };
            self.note_exit();
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(f)) => return Some(f),
                Err(()) => {
                    return Some(fail(
                        i + 1,
                        step.line,
                        step.describe(self.case.target),
                        format!(
                            "the case to finish within {}",
                            humantime::format_duration(self.case.timeout)
                        ),
                        format!(
                            "the case was still at this step when its time ran out{}",
                            self.exit_suffix()
                        ),
                    ))
                }
            }
        }
        None
    }

    /// Starts the program; for a server, waits until it listens.
    async fn start(&mut self) -> Result<(), Failure> {
        if let (Some(proc), Some(listen), Some(first)) =
            (&self.proc, self.listen, &self.started_for)
        {
            // A shared server: already listening, and back in accept() (checked when
            // the previous case ended). Only what it prints from now on is this case's.
            proc.stdout.begin_segment();
            proc.stderr.begin_segment();
            let text = format!(
                "shared server process (pid {}, started for case {first:?}): no new start, fresh connections (the spec's share_process)",
                proc.pid
            );
            self.event(EventKind::Note { text });
            self.event(EventKind::Listening {
                address: listen.to_string(),
            });
            return Ok(());
        }
        let startup = self.spec.defaults.startup;
        if self.case.target == Target::Client {
            self.open_reference_server().await.map_err(|e| {
                self.grader_error = true;
                fail(
                    0,
                    0,
                    "start the reference server".into(),
                    "a free port for the reference server",
                    e,
                )
            })?;
        }
        let program = self.spec.program(self.case.target).expect("validated");
        let argv = self.sandbox.argv(program);
        let launch = Launch {
            argv: argv.clone(),
            cwd: self.sandbox.workdir.path().to_path_buf(),
            env: self.sandbox.env(self.host, program),
            netns: self.sandbox.netns.as_ref().map(|n| n.as_raw_fd()),
            cgroup: self.sandbox.cgroup.as_ref().map(|c| c.joiner()),
            limits: &self.spec.limits,
            // Without a memory cgroup, the per-process address-space limit is the fallback.
            rlimit_memory: !self
                .sandbox
                .cgroup
                .as_ref()
                .is_some_and(|c| c.memory_limited()),
            rlimit_processes: !self
                .sandbox
                .cgroup
                .as_ref()
                .is_some_and(|c| c.process_limited()),
            confine: self.sandbox.confinement.clone(),
        };
        let warm =
            match program.warm_start && crate::sandbox::warm::eligible(&argv, &self.sandbox.file) {
                true => Some(
                    self.host
                        .warm
                        .server(Path::new(&argv[0]), &launch.env)
                        .await,
                ),
                false => None,
            };
        let cold = |launch: Launch<'_>| {
            StudentProcess::spawn(launch)
                .map(|p| (p, false))
                .map_err(|e| format!("it could not be started: {e}"))
        };
        let started = match warm {
            Some(Ok(server)) => match StudentProcess::spawn_warm(&launch, &server).await {
                Ok(p) => Ok((p, true)),
                // The server died under us: this case (and the next) start cold.
                Err(e) if server.is_dead() => {
                    self.event(EventKind::Note {
                        text: format!(
                            "started cold: the fork server for {} is gone ({e})",
                            argv[0]
                        ),
                    });
                    cold(launch)
                }
                Err(e) => Err(format!("the fork server could not start it: {e}")),
            },
            Some(Err(why)) => {
                self.event(EventKind::Note {
                    text: format!("started cold: no fork server for {} ({why})", argv[0]),
                });
                cold(launch)
            }
            None => cold(launch),
        };
        let (proc, warm) = started.map_err(|e| {
            // The command is the spec's and the machine's, not the student's doing.
            self.grader_error = true;
            fail(
                0,
                0,
                format!("start the {}", self.who()),
                format!("`{}` to start", argv.join(" ")),
                e,
            )
        })?;
        self.event(EventKind::Started {
            command: argv,
            pid: proc.pid,
            warm,
        });
        self.proc = Some(proc);
        if self.case.target == Target::Server {
            let deadline = Deadline::new(startup, self.pids());
            let addr = self.wait_listening(deadline).await?;
            self.event(EventKind::Listening {
                address: addr.to_string(),
            });
        }
        Ok(())
    }

    async fn open_reference_server(&mut self) -> Result<(), String> {
        let want = self.spec.connects_to;
        // In a namespace every address is local, so listening on the wildcard address at
        // the spec's port takes the student's connection whatever IP it names; on the
        // host, only the exact address is ours to take.
        let bind = match self.sandbox.netns {
            Some(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), want.port()),
            None => want,
        };
        let listener = self
            .sandbox
            .in_net(move || -> std::io::Result<std::net::TcpListener> {
                let s = socket2::Socket::new(
                    socket2::Domain::for_address(bind),
                    socket2::Type::STREAM,
                    None,
                )?;
                s.set_reuse_address(true)?;
                s.bind(&bind.into())?;
                s.listen(64)?;
                s.set_nonblocking(true)?;
                Ok(s.into())
            })
            .and_then(|r| r)
            .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
        if let Some(ns) = &self.sandbox.netns {
            if self.host.redirect {
                // `nft` blocks for ~17 ms (see `redirect_tcp_to`): off the runtime's
                // threads, on a handle of the namespace of its own.
                let ns = ns.try_clone().map_err(|e| e.to_string())?;
                let port = want.port();
                tokio::task::spawn_blocking(move || ns.redirect_tcp_to(port))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("cannot install the redirect: {e}"))?;
            }
        }
        self.reference = Some(TcpListener::from_std(listener).map_err(|e| e.to_string())?);
        Ok(())
    }

    /// Pids of the student's processes (for CPU use and the host-loopback socket search).
    fn pids(&self) -> Vec<u32> {
        match &self.sandbox.cgroup {
            Some(cg) => cg.pids().into_iter().map(|p| p as u32).collect(),
            None => proc_net::group_pids(self.proc().pid),
        }
    }

    /// Waits until the server has a listening socket, or dies trying.
    async fn wait_listening(&mut self, mut deadline: Deadline) -> Result<SocketAddr, Failure> {
        let want_port = self
            .spec
            .server
            .as_ref()
            .and_then(|s| s.listen)
            .map(|a| a.port());
        let startup = humantime::format_duration(self.spec.defaults.startup).to_string();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let pid = self.proc().pid;
        loop {
            tokio::select! {
                biased;
                status = self.proc().exited() => {
                    self.note_exit();
                    self.proc().output_settled(GRACE).await;
                    let last = last_lines(&self.proc().stderr.snapshot().text(), 1).pop();
                    let why = last.map(|l| format!(": {l}")).unwrap_or_default();
                    return Err(fail(0, 0, "start the server and wait until it listens".into(),
                        format!("a listening TCP socket within {startup}"),
                        format!("the server {} before it listened{why}", describe_status(status))));
                }
                // Before the deadline: a socket that appeared while a busy grader was
                // late to look still counts.
                _ = tick.tick() => {
                    let pids = self.pids();
                    let wanted = |a: &SocketAddr| want_port.is_none_or(|p| a.port() == p);
                    let found = match sockets::sockets_of(&pids) {
                        Ok(list) => list.into_iter().filter(|s| s.listening).filter_map(|s| s.local).find(wanted),
                        // No pidfd_getfd here: read the kernel's TCP table instead.
                        Err(_) => {
                            let owned = if self.sandbox.netns.is_some() { None } else { Some(proc_net::socket_inodes(&pids)) };
                            proc_net::listeners(pid, owned.as_ref()).into_iter().map(|l| l.local).find(wanted)
                        }
                    };
                    if let Some(local) = found {
                        let ip = match local.ip() {
                            IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                            IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                            ip => ip,
                        };
                        self.bound = Some(local);
                        let addr = SocketAddr::new(ip, local.port());
                        self.listen = Some(addr);
                        return Ok(addr);
                    }
                }
                _ = tokio::time::sleep_until(deadline.at) => {
                    if deadline.extend() {
                        continue;
                    }
                    let out = self.proc().stdout.snapshot();
                    let printed = if out.total == 0 { String::new() } else { format!("; it printed {}", quote(&out.text())) };
                    return Err(fail(0, 0, "start the server and wait until it listens".into(),
                        format!("a listening TCP socket within {startup}"),
                        format!("no listening socket after {startup}: the server never reached listen(){printed}")));
                }
            }
        }
    }

    async fn step(&mut self, n: usize, step: &Step) -> Result<(), Failure> {
        let target = self.case.target;
        let who = target.as_str();
        let mut fair = Deadline::new(
            step.within,
            if step.action.waits() {
                self.pids()
            } else {
                Vec::new()
            },
        );
        let deadline = fair.at;
        let within = humantime::format_duration(step.within).to_string();
        let f = |expected: String, got: String| {
            fail(n, step.line, step.describe(target), expected, got)
        };
        match &step.action {
            Action::Connect { conn } => {
                let addr = self.listen.expect("servers are listening before steps run");
                let socket = self
                    .sandbox
                    .in_net(move || -> std::io::Result<std::net::TcpStream> {
                        let s = socket2::Socket::new(
                            socket2::Domain::for_address(addr),
                            socket2::Type::STREAM,
                            None,
                        )?;
                        s.set_nonblocking(true)?;
                        Ok(s.into())
                    })
                    .and_then(|r| r)
                    .map_err(|e| f("a socket for the reference client".into(), e.to_string()))?;
                let socket = tokio::net::TcpSocket::from_std_stream(socket);
                match tokio::time::timeout_at(deadline, socket.connect(addr)).await {
                    Ok(Ok(stream)) => {
                        let c = Connection::new(stream).map_err(|e| f("a connection".into(), e.to_string()))?;
                        self.event(EventKind::Connected { conn: conn.clone(), address: addr.to_string() });
                        self.conns.insert(conn.clone(), c);
                        Ok(())
                    }
                    Ok(Err(e)) => Err(f(format!("the server to take a connection on {addr}"), format!("connect() failed: {e}{}", self.exit_suffix()))),
                    Err(_) => Err(f(
                        format!("the server to take a connection on {addr}"),
                        format!("connect() did not complete within {within}: the listen queue is full or the server stopped listening{}", self.exit_suffix()),
                    )),
                }
            }
            Action::Accept { conn } => {
                let listener = self
                    .reference
                    .as_ref()
                    .expect("client cases have a reference server");
                let proc = self.proc.as_ref().expect("started");
                let accepted = loop {
                    tokio::select! {
                        biased;
                        r = listener.accept() => break Some(r),
                        status = proc.exited() => {
                            let got = format!("the client {} without connecting", describe_status(status));
                            self.note_exit();
                            return Err(f(format!("a connection from the client within {within}"), got));
                        }
                        _ = tokio::time::sleep_until(fair.at) => {
                            if crate::peer::readable_now(std::os::fd::AsRawFd::as_raw_fd(listener)) {
                                fair.at = Instant::now() + POLL * 10;
                            } else if !fair.extend() {
                                break None;
                            }
                        }
                    }
                };
                match accepted {
                    Some(Ok((stream, from))) => {
                        let meant = match (&self.sandbox.netns, self.host.redirect) {
                            (Some(_), true) => crate::sandbox::netns::original_dst(
                                std::os::fd::AsFd::as_fd(&stream),
                            )
                            .unwrap_or_else(|_| {
                                stream.local_addr().unwrap_or(self.spec.connects_to)
                            }),
                            _ => stream.local_addr().unwrap_or(self.spec.connects_to),
                        };
                        let c = Connection::new(stream)
                            .map_err(|e| f("a connection".into(), e.to_string()))?;
                        self.event(EventKind::ClientConnected {
                            conn: conn.clone(),
                            from: from.to_string(),
                            meant_for: meant.to_string(),
                        });
                        if meant != self.spec.connects_to {
                            self.event(EventKind::Note { text: format!("the client connected to {meant}, not {}; the grader's network took it to the reference server", self.spec.connects_to) });
                        }
                        self.conns.insert(conn.clone(), c);
                        Ok(())
                    }
                    Some(Err(e)) => Err(f(
                        "a connection from the client".into(),
                        format!("accept() failed in the grader: {e}"),
                    )),
                    None => {
                        let out = self.proc().stdout.snapshot();
                        let printed = if out.total == 0 {
                            "it printed nothing".to_string()
                        } else {
                            format!("it printed {}", quote(&out.text()))
                        };
                        Err(f(
                            format!("a connection from the client within {within}"),
                            format!("no connection within {within}; {printed}"),
                        ))
                    }
                }
            }
            Action::ExpectAccepted => self.expect_accepted(fair, &within, &f).await,
            Action::Send { conn, bytes } => {
                let c = self
                    .conns
                    .get_mut(conn)
                    .expect("validated: the connection is open");
                let r = tokio::time::timeout_at(deadline, c.send(bytes)).await;
                let data = quote(bytes);
                if matches!(r, Ok(Err(_))) {
                    self.settle_exit().await;
                }
                let suffix = self.exit_suffix();
                match r {
                    Ok(Ok(())) => {
                        self.event(EventKind::Sent {
                            conn: conn.clone(),
                            bytes: bytes.len(),
                            data,
                        });
                        Ok(())
                    }
                    Ok(Err(e)) => Err(f(
                        format!("to send {data}"),
                        format!("send failed: {}{suffix}", describe_io(&e, who)),
                    )),
                    Err(_) => Err(f(
                        format!("to send {data}"),
                        format!(
                            "the {who} did not read: the data could not be sent within {within}"
                        ),
                    )),
                }
            }
            Action::Expect { conn, matcher } => {
                let c = self.conns.get_mut(conn).expect("validated");
                let outcome = loop {
                    match c.read_until(matcher, fair.at).await {
                        ReadOutcome::TimedOut if fair.extend() => continue,
                        ReadOutcome::TimedOut if c.readable_now() => {
                            fair.at = Instant::now() + POLL * 10
                        }
                        outcome => break outcome,
                    }
                };
                let sent = if c.last_sent.is_empty() {
                    None
                } else {
                    Some(quote(&c.last_sent))
                };
                let pending = c.pending().to_vec();
                if matches!(outcome, ReadOutcome::Closed(_)) {
                    self.settle_exit().await;
                }
                let received = |what: &[u8]| {
                    if what.is_empty() {
                        "nothing".to_string()
                    } else {
                        quote(what)
                    }
                };
                let got = match outcome {
                    ReadOutcome::Matched(bytes) => {
                        self.event(EventKind::Received {
                            conn: conn.clone(),
                            bytes: bytes.len(),
                            data: quote(&bytes),
                        });
                        return Ok(());
                    }
                    ReadOutcome::Mismatch => format!("received {}", quote(&pending)),
                    ReadOutcome::TimedOut => format!(
                        "received {} within {within}{}",
                        received(&pending),
                        self.exit_suffix()
                    ),
                    ReadOutcome::Closed(PeerClosed::Fin) => format!(
                        "received {}, then the {who} closed the connection (FIN){}",
                        received(&pending),
                        self.exit_suffix()
                    ),
                    ReadOutcome::Closed(PeerClosed::Rst) => format!(
                        "received {}, then the connection was reset (RST){}",
                        received(&pending),
                        self.exit_suffix()
                    ),
                };
                if !pending.is_empty() {
                    self.event(EventKind::Received {
                        conn: conn.clone(),
                        bytes: pending.len(),
                        data: quote(&pending),
                    });
                }
                let mut failure = f(matcher.describe(), got);
                failure.sent = sent;
                Err(failure)
            }
            Action::Shutdown { conn } => {
                let c = self.conns.get_mut(conn).expect("validated");
                c.shutdown_write()
                    .await
                    .map_err(|e| f("to half-close the connection".into(), describe_io(&e, who)))?;
                self.event(EventKind::Shutdown { conn: conn.clone() });
                Ok(())
            }
            Action::Close { conn, kind } => {
                let c = self.conns.get_mut(conn).expect("validated");
                c.close(*kind)
                    .map_err(|e| f("to close the connection".into(), e.to_string()))?;
                let how = match kind {
                    crate::spec::CloseKind::Fin => "fin",
                    crate::spec::CloseKind::Rst => "rst",
                };
                self.event(EventKind::Closed {
                    conn: conn.clone(),
                    how: how.into(),
                });
                Ok(())
            }
            Action::ExpectClose { conn, kind } => {
                let c = self.conns.get_mut(conn).expect("validated");
                let before = c.received_total;
                let pending_before = c.pending().len();
                let seen = loop {
                    match c.wait_close(fair.at, CLOSE_FLOOD).await {
                        None if c.received_total - before > CLOSE_FLOOD => break None,
                        None if fair.extend() => continue,
                        None if c.readable_now() => fair.at = Instant::now() + POLL * 10,
                        seen => break seen,
                    }
                };
                let extra = c.pending()[pending_before.min(c.pending().len())..].to_vec();
                let more = c.received_total - before;
                if !extra.is_empty() {
                    self.event(EventKind::Received {
                        conn: conn.clone(),
                        bytes: more as usize,
                        data: quote(&extra),
                    });
                }
                if let Some(how) = seen {
                    self.event(EventKind::PeerClosed {
                        conn: conn.clone(),
                        how: how.as_str().into(),
                    });
                }
                if seen == Some(PeerClosed::Rst) {
                    self.settle_exit().await;
                }
                // Of a flood only the end is kept: say which part is quoted.
                let data_note = match more {
                    0 => String::new(),
                    n if (extra.len() as u64) < n => format!(
                        " (meanwhile it sent {more} more bytes, ending with: {})",
                        quote(&extra)
                    ),
                    _ => format!(" (meanwhile it sent {more} more bytes: {})", quote(&extra)),
                };
                let sent = self
                    .conns
                    .get(conn)
                    .map(|c| c.last_sent.clone())
                    .filter(|s| !s.is_empty())
                    .map(|s| quote(&s));
                let got = match (seen, kind) {
                    (Some(PeerClosed::Fin), ExpectedClose::Fin | ExpectedClose::Any) | (Some(PeerClosed::Rst), ExpectedClose::Rst | ExpectedClose::Any) => return Ok(()),
                    (Some(PeerClosed::Rst), _) => format!("the connection was reset (RST) instead{data_note}{}", self.exit_suffix()),
                    (Some(PeerClosed::Fin), _) => format!("an orderly close (FIN) instead{data_note}"),
                    (None, _) if more > CLOSE_FLOOD => format!("the connection stayed open: it kept sending instead of closing (the grader stopped reading after {} KiB){data_note}", CLOSE_FLOOD >> 10),
                    (None, _) => format!("the connection stayed open: neither FIN nor RST within {within}{data_note}"),
                };
                Err(Failure {
                    sent,
                    ..f(kind.describe().into(), got)
                })
            }
            Action::ExpectIdle { window, max_cpu } => self.expect_idle(*window, *max_cpu, &f).await,
            Action::Signal { signal } => {
                if self.proc().status().is_some() {
                    self.event(EventKind::Note {
                        text: format!("the {who} had already exited; {signal} not sent"),
                    });
                    return Ok(());
                }
                let _ = self.proc().signal(signal.0);
                self.event(EventKind::Signal {
                    signal: signal.to_string(),
                });
                Ok(())
            }
            Action::ExpectExit(exp) => {
                let status = loop {
                    tokio::select! {
                        biased;
                        s = self.proc().exited() => break Some(s),
                        _ = tokio::time::sleep_until(fair.at) => {
                            // A busy grader may see its timer before the exit it reaps: a
                            // process already dead (a zombie) has exited in time.
                            if self.proc().is_dead() {
                                break Some(self.proc().exited().await);
                            }
                            if !fair.extend() {
                                break None;
                            }
                        }
                    }
                };
                self.note_exit();
                let Some(status) = status else {
                    return Err(f(
                        exp.to_string(),
                        format!("the {who} was still running after {within}"),
                    ));
                };
                let ok = match exp {
                    ExitExpectation::Any => true,
                    ExitExpectation::Code(c) => status.code() == Some(*c),
                    ExitExpectation::Success => status.success(),
                    ExitExpectation::Signal(s) => status.signal() == Some(s.0 as i32),
                };
                if ok {
                    return Ok(());
                }
                self.proc().output_settled(GRACE).await;
                let last = last_lines(&self.proc().stderr.snapshot().text(), 1)
                    .pop()
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default();
                Err(f(
                    exp.to_string(),
                    format!("the {who} {}{last}", describe_status(status)),
                ))
            }
            Action::ExpectPortFree => {
                let Some(bound) = self.bound else {
                    return Err(f(
                        "a port to check".into(),
                        "the server's listening address is unknown".into(),
                    ));
                };
                let free = self
                    .sandbox
                    .in_net(move || -> std::io::Result<()> {
                        let s = socket2::Socket::new(
                            socket2::Domain::for_address(bound),
                            socket2::Type::STREAM,
                            None,
                        )?;
                        s.set_reuse_address(true)?;
                        s.bind(&bound.into())?;
                        s.listen(1)
                    })
                    .and_then(|r| r);
                self.event(EventKind::PortFree {
                    address: bound.to_string(),
                    free: free.is_ok(),
                });
                match free {
                    Ok(()) => Ok(()),
                    Err(e) => Err(f(
                        format!("{bound} to be free once the server exited"),
                        format!("binding {bound} failed ({e}): a process of the program (a child it started?) still holds the listening socket"),
                    )),
                }
            }
            Action::WriteStdin { bytes } => {
                self.last_stdin = bytes.clone();
                let proc = self.proc.as_mut().expect("started");
                match tokio::time::timeout_at(deadline, proc.write_stdin(bytes)).await {
                    Ok(Ok(())) => self.event(EventKind::Stdin { data: quote(bytes) }),
                    _ => self.event(EventKind::Note {
                        text: format!(
                            "could not type {} on stdin: the {who} no longer reads it",
                            quote(bytes)
                        ),
                    }),
                }
                Ok(())
            }
            Action::CloseStdin => {
                self.proc.as_mut().expect("started").close_stdin();
                self.event(EventKind::StdinClosed);
                Ok(())
            }
            Action::ExpectOutput { stream, matcher } => {
                let cap = match stream {
                    Stream::Stdout => self.proc().stdout.clone(),
                    Stream::Stderr => self.proc().stderr.clone(),
                };
                let negative = matcher.is_negative();
                let wanted = match matcher {
                    Matcher::NotContains(b) => Matcher::Contains(b.clone()),
                    m => m.clone(),
                };
                let found = loop {
                    match tokio::time::timeout_at(fair.at, cap.wait_for(|w| wanted.find(w))).await {
                        Err(_) if fair.extend() => continue,
                        // Output already written but not yet read by the grader counts.
                        Err(_) if cap.lagging() => fair.at = Instant::now() + POLL * 10,
                        found => break found,
                    }
                };
                let sent = if self.last_stdin.is_empty() {
                    self.conns
                        .values()
                        .filter(|c| !c.last_sent.is_empty())
                        .map(|c| quote(&c.last_sent))
                        .last()
                } else {
                    Some(quote(&self.last_stdin))
                };
                let matched = matches!(found, Ok(Some(_)));
                if let Ok(Some(bytes)) = &found {
                    self.event(EventKind::Output {
                        stream: stream.as_str().into(),
                        data: quote(bytes),
                    });
                }
                if matched != negative {
                    return Ok(());
                }
                let so_far = cap.unmatched();
                let tail = &so_far[so_far.len().saturating_sub(300)..];
                let got = if negative {
                    format!(
                        "it printed {}",
                        quote(&found.ok().flatten().unwrap_or_default())
                    )
                } else if tail.is_empty() {
                    format!(
                        "nothing more on {} within {within}{}",
                        stream.as_str(),
                        self.exit_suffix()
                    )
                } else {
                    format!(
                        "{} so far: {}{}",
                        stream.as_str(),
                        quote(tail),
                        self.exit_suffix()
                    )
                };
                let mut failure = f(matcher.describe().replacen("data", "output", 1), got);
                failure.sent = sent;
                Err(failure)
            }
        }
    }

    /// Every connection made so far has been taken by accept(): the program holds a
    /// socket connected to our end, which a connection waiting in the listen queue is not.
    async fn expect_accepted(
        &mut self,
        mut deadline: Deadline,
        within: &str,
        f: &(dyn Fn(String, String) -> Failure + Sync),
    ) -> Result<(), Failure> {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let pids = self.pids();
            let waiting = match sockets::sockets_of(&pids) {
                // Accepted: the program holds a socket whose peer is our end (or it
                // already closed the connection, which only an accepted one can be).
                Ok(list) => self
                    .conns
                    .values()
                    .filter(|c| {
                        c.peer_closed().is_none()
                            && !list.iter().any(|s| !s.listening && s.peer == Some(c.local))
                    })
                    .count(),
                // No pidfd_getfd here: a queued connection has no inode in the table.
                Err(_) => {
                    let table = self
                        .sandbox
                        .in_net(|| proc_net::tcp_table_of("/proc/thread-self/net"))
                        .unwrap_or_default();
                    self.conns
                        .values()
                        .filter(|c| {
                            table.iter().any(|e| {
                                e.local == c.remote
                                    && e.remote == c.local
                                    && e.inode == 0
                                    && e.state == proc_net::TCP_ESTABLISHED
                            })
                        })
                        .count()
                }
            };
            if waiting == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline.at && !deadline.extend() {
                return Err(f(
                    "the server to accept() the connection".into(),
                    format!("{waiting} connection(s) still waited in the listen queue after {within}: the server did not call accept(){}", self.exit_suffix()),
                ));
            }
        }
    }

    /// Watches the program's CPU use over a window while draining every connection, so
    /// a program that writes to us is not blocked (and so made idle) by a full buffer.
    async fn expect_idle(
        &mut self,
        window: Duration,
        max_cpu: f64,
        f: &(dyn Fn(String, String) -> Failure + Sync),
    ) -> Result<(), Failure> {
        if self.proc().status().is_some() {
            self.event(EventKind::Note {
                text: format!("the {} had exited: it uses no CPU", self.who()),
            });
            return Ok(());
        }
        let cpu_before = self.cpu_time();
        // What the program writes meanwhile: a loop spinning on b'' that prints or
        // sends is busy however little CPU a loaded machine gives it.
        let written = |run: &Self| {
            run.proc().stdout.snapshot().total
                + run.proc().stderr.snapshot().total
                + run.conns.values().map(|c| c.received_total).sum::<u64>()
        };
        let written_before = written(self);
        let pids = self.pids();
        let wait_before = proc_net::cpu_wait(&pids);
        let started = Instant::now();
        // The window is the program's own time: it is extended by the time the program
        // waited for a CPU, so on a loaded machine a spinning loop still shows its full
        // appetite and a correct program still gets to finish its work and block.
        let mut end = started + window;
        loop {
            futures::future::join_all(self.conns.values_mut().map(|c| c.absorb_until(end))).await;
            tokio::time::sleep_until(end).await;
            let waited = proc_net::cpu_wait(&pids)
                .saturating_sub(wait_before)
                .min(window * 20);
            let due = started + window + waited;
            if due <= end + MIN_CREDIT {
                break;
            }
            end = due;
        }
        let elapsed = started.elapsed();
        let waited = proc_net::cpu_wait(&pids).saturating_sub(wait_before);
        let available = elapsed.saturating_sub(waited).max(window);
        let used = self.cpu_time().saturating_sub(cpu_before);
        self.event(EventKind::Idle {
            window_ms: elapsed.as_millis() as u64,
            cpu_ms: used.as_millis() as u64,
            cpu_wait_ms: waited.as_millis() as u64,
        });
        let share = used.as_secs_f64() / available.as_secs_f64();
        let wrote = written(self) - written_before;
        if share > max_cpu || wrote > IDLE_WRITES {
            return Err(f(
                format!("the {} to wait idle (under {:.0} % of a CPU)", self.who(), max_cpu * 100.0),
                format!(
                    "it used {} ms of CPU time in {} ms ({:.0} % of a CPU) and wrote {wrote} bytes meanwhile: a busy loop",
                    used.as_millis(),
                    available.as_millis(),
                    share * 100.0
                ),
            ));
        }
        Ok(())
    }

    fn cpu_time(&self) -> Duration {
        if let Some(cg) = &self.sandbox.cgroup {
            if let Ok(d) = cg.cpu_time() {
                return d;
            }
        }
        let ticks: u64 = self
            .pids()
            .iter()
            .filter_map(|p| proc_net::read_stat(*p))
            .map(|s| s.cpu_ticks)
            .sum();
        Duration::from_secs_f64(ticks as f64 / proc_net::ticks_per_second() as f64)
    }

    /// Ends the case: stops the program and everything it started, then builds the result.
    async fn finish(mut self, failure: Option<Failure>) -> CaseResult {
        // A program that just reset or closed a connection is usually exiting: give
        // the exit a moment to be reaped so the report says how it ended, not "running".
        if failure.is_some() {
            self.settle_exit().await;
        }
        let exit_before = self.proc.as_ref().and_then(|p| p.status());
        if let Some(p) = self.proc.as_mut() {
            p.terminate(self.sandbox.cgroup.as_ref(), GRACE).await;
        }
        let exit = match (exit_before, &self.proc) {
            (Some(s), _) => Some(describe_status(s)),
            (None, Some(_)) => {
                Some("still running at the end of the case (stopped by the grader)".to_string())
            }
            (None, None) => None,
        };
        self.result(failure, exit_before, exit)
    }

    /// Ends a case that shares the server process: a process still running is kept
    /// (with the case's connections, for [`Kept::recycle`]), one that exited is cleared up.
    #[allow(clippy::type_complexity)]
    async fn finish_shared(
        mut self,
        failure: Option<Failure>,
    ) -> (CaseResult, Option<(Kept, HashMap<String, Connection>)>) {
        if failure.is_some() {
            self.settle_exit().await;
        }
        let exit_before = self.proc.as_ref().and_then(|p| p.status());
        let keep = exit_before.is_none()
            && self.proc.is_some()
            && self.listen.is_some()
            && self
                .limit_hit(
                    None,
                    &self
                        .proc
                        .as_ref()
                        .map(|p| p.stderr.snapshot().text())
                        .unwrap_or_default(),
                )
                .is_none();
        if !keep {
            if let Some(p) = self.proc.as_mut() {
                p.terminate(self.sandbox.cgroup.as_ref(), GRACE).await;
            }
        }
        let exit = match (exit_before, &self.proc) {
            (Some(s), _) => Some(describe_status(s)),
            (None, Some(_)) if keep => Some(
                "still running at the end of the case (kept running for the cases that share it)"
                    .to_string(),
            ),
            (None, Some(_)) => {
                Some("still running at the end of the case (stopped by the grader)".to_string())
            }
            (None, None) => None,
        };
        let mut result = self.result(failure, exit_before, exit);
        result.shared_process = true;
        if !keep {
            return (result, None);
        }
        let conns = std::mem::take(&mut self.conns);
        let started_for = self
            .started_for
            .take()
            .unwrap_or_else(|| self.case.name.clone());
        let Run {
            sandbox,
            proc,
            listen,
            bound,
            ..
        } = self;
        let kept = Kept {
            sandbox,
            proc: proc.expect("kept only when running"),
            listen: listen.expect("kept only when listening"),
            bound,
            started_for,
        };
        (result, Some((kept, conns)))
    }

    /// The case's result, once the program is stopped (or kept for the next case).
    fn result(
        &mut self,
        failure: Option<Failure>,
        exit_before: Option<std::process::ExitStatus>,
        exit: Option<String>,
    ) -> CaseResult {
        let (stdout, stderr) = match &self.proc {
            Some(p) => (p.stdout.snapshot(), p.stderr.snapshot()),
            None => Default::default(),
        };
        // Tracebacks name the throw-away copy: show the student's own file names.
        let workdir = format!("{}/", self.sandbox.workdir.path().display());
        let clean = |s: String| s.replace(&workdir, "");
        let failure = failure.map(|f| Failure {
            got: clean(f.got),
            ..f
        });
        let mut reason = failure
            .as_ref()
            .map(|f| format!("{}: expected {}, got {}", f.action, f.expected, f.got));
        // A limit hit is the real reason, whatever step it broke.
        if let Some(limit) = self.limit_hit(exit_before, &stderr.text()) {
            reason = Some(limit);
        }
        let status = match (&reason, self.grader_error) {
            (_, true) => Status::Error,
            (Some(_), false) => Status::Failed,
            (None, false) => Status::Passed,
        };
        if stdout.truncated() || stderr.truncated() {
            self.event(EventKind::Note {
                text: format!(
                    "output kept: the first and last {} KiB of each stream",
                    self.spec.limits.output_bytes / 2048
                ),
            });
        }
        CaseResult {
            name: self.case.name.clone(),
            target: self.case.target,
            status,
            score: if status == Status::Passed {
                self.case.points
            } else {
                0
            },
            max_score: self.case.points,
            informational: self.case.informational,
            reason,
            failure,
            hint: if status == Status::Passed {
                None
            } else {
                self.case.hint.clone()
            },
            exit,
            stderr_tail: last_lines(&stderr.text(), STDERR_LINES)
                .into_iter()
                .map(clean)
                .collect(),
            stdout_tail: last_lines(&stdout.text(), 4)
                .into_iter()
                .map(clean)
                .collect(),
            stdout_bytes: stdout.total,
            stderr_bytes: stderr.total,
            duration_ms: self.t0.elapsed().as_millis() as u64,
            visibility: self.case.visibility,
            show: self.case.show.clone(),
            shared_process: false,
            transcript: std::mem::take(&mut self.transcript),
        }
    }

    /// Waits a little for an exit that is under way (the connection it held was just
    /// closed or reset). Returns at once when the program is still serving.
    async fn settle_exit(&mut self) {
        if let Some(p) = &self.proc {
            let peer_gone = self.conns.values().any(|c| c.peer_closed().is_some());
            if p.status().is_none() && peer_gone {
                let _ = tokio::time::timeout(SETTLE, p.exited()).await;
            }
        }
        self.note_exit();
    }

    /// A limit the program ran into, in words, or None. `stderr` is what it printed:
    /// the kernel keeps no counter for the open-file and file-size limits, but the
    /// program's own error says it (Python ignores SIGXFSZ and raises OSError instead).
    fn limit_hit(&self, exit: Option<std::process::ExitStatus>, stderr: &[u8]) -> Option<String> {
        let limits = &self.spec.limits;
        let who = self.who();
        if let Some(cg) = &self.sandbox.cgroup {
            if cg.memory_limit_hit() {
                return Some(format!(
                    "the {who} used more than {} MiB of memory (the limit) and was killed",
                    limits.memory_bytes >> 20
                ));
            }
            if cg.process_limit_hit() {
                return Some(format!("the {who} tried to run more than {} processes at once (the limit); fork() was refused", limits.processes));
            }
        }
        if let Some(sig) = exit.and_then(|s| s.signal()) {
            if sig == libc::SIGXCPU {
                return Some(format!(
                    "the {who} used more than {} of CPU time (the limit) and was killed",
                    humantime::format_duration(limits.cpu_time)
                ));
            }
            if sig == libc::SIGXFSZ {
                return Some(format!(
                    "the {who} wrote a file larger than {} MiB (the limit)",
                    limits.file_size_bytes >> 20
                ));
            }
        }
        let said = |what: &str| stderr.windows(what.len()).any(|w| w == what.as_bytes());
        if said("[Errno 24] Too many open files") {
            return Some(format!(
                "the {who} tried to keep more than {} files and sockets open at once (the limit)",
                limits.open_files
            ));
        }
        if said("[Errno 27] File too large") {
            return Some(format!(
                "the {who} wrote a file larger than {} MiB (the limit)",
                limits.file_size_bytes >> 20
            ));
        }
        None
    }
}

fn describe_io(e: &std::io::Error, who: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => {
            format!("the connection was reset (RST) by the {who}")
        }
        std::io::ErrorKind::BrokenPipe => {
            format!("the {who} had closed the connection (broken pipe)")
        }
        _ => e.to_string(),
    }
}

/// Whether these processes wait for the next client and do nothing else: no thread
/// running or waiting for a CPU, none blocked writing (a full pipe or socket buffer
/// puts a busy loop to sleep too), and one asleep where a server waits for
/// connections (`accept()`, or `select`/`poll`/`epoll` on the listening socket), as the
/// kernel names it in `/proc/PID/task/TID/wchan`. Where that cannot be read, the answer
/// is no: the next case then gets a fresh process, as without `share_process`.
fn waiting_for_clients(pids: &[u32]) -> bool {
    const WAITING: &[&str] = &["inet_csk_accept", "do_select", "do_sys_poll", "ep_poll"];
    const WRITING: &[&str] = &["pipe_write", "sk_stream_wait_memory"];
    let mut waiting = false;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let state = std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|s| s.rfind(')').and_then(|i| s[i + 2..].chars().next()));
            if state == Some('R') {
                return false;
            }
            let wchan = std::fs::read_to_string(t.path().join("wchan")).unwrap_or_default();
            if WRITING.contains(&wchan.as_str()) {
                return false;
            }
            waiting |= WAITING.contains(&wchan.as_str());
        }
    }
    waiting
}
