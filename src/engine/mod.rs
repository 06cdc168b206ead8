//! Runs one case: starts the student's program in its sandbox, plays the steps with the
//! reference peer, and turns what happened into a verdict, a reason and a transcript.
//!
//! Every wait here is a race between the event itself (data, a close, an accept, the
//! process exit, a socket appearing in the kernel's tables) and a deadline; nothing
//! sleeps to "give the program time". The only timed waits are the ones where time is
//! the behaviour under test: watching CPU use over `expect_idle`'s window.
//!
//! # Layout
//! - [`run_case`] (here): one case in a fresh sandbox; [`SharedServer`] ([`shared`]):
//!   the server cases that share one process, and recycling it between them;
//! - `context`: the case's state while it runs, a server's and a client's apart;
//! - `deadline`: the deadline that does not count the program's CPU waits, and
//!   [`Deadline::race`](deadline::Deadline::race), the one wait every step uses;
//! - `start`: the reference server, the program's start, waiting until it listens;
//! - `steps`: the steps in order against the case's timeout, one function per step
//!   kind (`steps/connection.rs`, `steps/process.rs`, `steps/datagram.rs`);
//! - `udp`: a UDP case's start-up (the bound socket, the reference socket) and the
//!   reason for a program that speaks the other protocol;
//! - `settle`: before the grader acts on the program, it waits until the program waits
//!   for it (the lockstep a person at a terminal keeps without thinking);
//! - `verdict`: stopping (or keeping) the program and building the case's result;
//! - `build`: a side's build (the spec's `build`), once per submission before its cases.

mod build;
mod context;
mod deadline;
mod settle;
mod shared;
mod start;
pub(crate) mod startup;
mod steps;
mod udp;
mod verdict;

pub(crate) use build::build;
pub use shared::SharedServer;

use crate::outcome::CaseResult;
use crate::sandbox::pcap::PacketCapture;
use crate::sandbox::{Host, Sandbox};
use crate::spec::{Case, Spec};
use context::Run;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// How often the program's sockets are looked at while waiting for one to listen or accept
/// (each look is ~50 µs: see `sandbox::sockets`).
const POLL: Duration = Duration::from_millis(1);
/// A start-up looks at the program's sockets every [`POLL`] for this long, then less
/// and less often, down to every [`POLL_MAX`].
const POLL_FAST_FOR: Duration = Duration::from_millis(50);
const POLL_MAX: Duration = Duration::from_millis(10);

/// The looks of a wait the kernel gives no event for (a socket that starts to listen, or
/// binds): every [`POLL`] at first, then twice as far apart each time, at most
/// [`POLL_MAX`]. A program that listens at once is seen within a millisecond; one that
/// never does (a silent server waits out its 5 s start-up) costs ~550 looks, not 5,000:
/// a tenth of a mixed class's silent students' CPU went into looking.
struct Backoff {
    started: Instant,
    next: Instant,
    step: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        let now = Instant::now();
        Backoff {
            started: now,
            next: now,
            step: POLL,
        }
    }

    /// Waits until the next look is due.
    async fn tick(&mut self) {
        tokio::time::sleep_until(self.next).await;
        let now = Instant::now();
        if now.duration_since(self.started) >= POLL_FAST_FOR {
            self.step = (self.step * 2).min(POLL_MAX);
        }
        self.next = now + self.step;
    }
}

/// Time a program gets to exit on SIGTERM at the end of a case before SIGKILL.
const GRACE: Duration = Duration::from_millis(200);
/// How long a failing case waits for an exit that a reset connection announces.
const SETTLE: Duration = Duration::from_millis(100);

/// The box a case runs in: a copy of the submission, its namespace, cgroup and
/// confinement. Copying files and creating namespaces block: off the async threads.
/// The spec's data files are the case's ([`crate::spec::Case::files`]: the spec's
/// `[files]`, the program's and the case's), written as the program starts.
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

/// Grades one case of one submission; with `pcap`, captures its traffic into that file.
pub async fn run_case(
    host: &Host,
    spec: &Spec,
    case: &Case,
    submission: &Path,
    case_id: &str,
    pcap: Option<&Path>,
) -> CaseResult {
    run_case_gated(host, spec, case, submission, case_id, pcap, None).await
}

/// [`run_case`], saying through `ticket` whether the program started.
pub(crate) async fn run_case_gated(
    host: &Host,
    spec: &Spec,
    case: &Case,
    submission: &Path,
    case_id: &str,
    pcap: Option<&Path>,
    ticket: Option<startup::Ticket>,
) -> CaseResult {
    let t0 = Instant::now();
    let sandbox = match prepare_sandbox(host, spec, case, submission, case_id) {
        Ok(s) => s,
        Err(e) => {
            report_unprepared(ticket, case, &e);
            return CaseResult::errored(case, e.to_string(), t0.elapsed());
        }
    };
    let capture = Capture::start(&sandbox, pcap);
    let mut run = Run::new(host, spec, case, t0, sandbox);
    run.startup = ticket;
    let failure = run.play().await;
    let mut result = run.finish(failure).await;
    capture.stop(&mut result);
    result
}

/// A case's packet capture (`--pcap`): started on its namespace before the program,
/// stopped once the case is over and its connections closed. A capture that cannot be
/// made costs the case nothing: its transcript says why there is no file.
pub(crate) enum Capture {
    Off,
    On(PacketCapture),
    Failed(String),
}

impl Capture {
    pub(crate) fn start(sandbox: &Sandbox, to: Option<&Path>) -> Capture {
        let Some(path) = to else { return Capture::Off };
        let Some(ns) = &sandbox.netns else {
            return Capture::Failed("no packet capture: it needs a network namespace per case (isolation netns or full)".into());
        };
        match tokio::task::block_in_place(|| PacketCapture::start(ns, path)) {
            Ok(c) => Capture::On(c),
            Err(e) => Capture::Failed(format!("no packet capture: {e}")),
        }
    }

    /// Stops it (writing what is queued) and notes in the transcript what it wrote.
    pub(crate) fn stop(self, result: &mut CaseResult) {
        let text = match self {
            Capture::Off => return,
            Capture::Failed(why) => why,
            Capture::On(c) => match tokio::task::block_in_place(|| c.stop()) {
                Ok(s) if s.dropped > 0 || s.cut > 0 => format!(
                    "packet capture: {} packets ({} cut to their headers, {} lost)",
                    s.packets, s.cut, s.dropped
                ),
                Ok(_) => return,
                Err(e) => format!("packet capture failed: {e}"),
            },
        };
        result.transcript.push(crate::outcome::Event {
            at_ms: result.duration_ms,
            kind: crate::outcome::EventKind::Note { text },
        });
    }
}

/// A box that could not be made because of the submission (its file is missing) fails
/// every case of the side alike; any other set-up failure decides nothing.
fn report_unprepared(
    ticket: Option<startup::Ticket>,
    case: &Case,
    e: &crate::sandbox::SandboxError,
) {
    if let (Some(t), crate::sandbox::SandboxError::Workdir(w)) = (ticket, e) {
        t.failed(&case.name, w.to_string(), crate::outcome::Status::Error);
    }
}
