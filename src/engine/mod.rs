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
//!   kind (`steps/connection.rs`, `steps/process.rs`);
//! - `verdict`: stopping (or keeping) the program and building the case's result.

mod context;
mod deadline;
mod shared;
mod start;
pub(crate) mod startup;
mod steps;
mod verdict;

pub use shared::SharedServer;

use crate::outcome::CaseResult;
use crate::sandbox::{Host, Sandbox};
use crate::spec::{Case, Spec};
use context::Run;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// How often the program's sockets are looked at while waiting for one to listen or accept
/// (each look is ~50 µs: see `sandbox::sockets`).
const POLL: Duration = Duration::from_millis(1);
/// Time a program gets to exit on SIGTERM at the end of a case before SIGKILL.
const GRACE: Duration = Duration::from_millis(200);
/// How long a failing case waits for an exit that a reset connection announces.
const SETTLE: Duration = Duration::from_millis(100);

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
    run_case_gated(host, spec, case, submission, case_id, None).await
}

/// [`run_case`], saying through `ticket` whether the program started.
pub(crate) async fn run_case_gated(
    host: &Host,
    spec: &Spec,
    case: &Case,
    submission: &Path,
    case_id: &str,
    ticket: Option<startup::Ticket>,
) -> CaseResult {
    let t0 = Instant::now();
    let sandbox = match prepare_sandbox(host, spec, case, submission, case_id) {
        Ok(s) => s,
        Err(e) => {
            report_unprepared(ticket, case, &e);
            return verdict::error_result(case, e.to_string(), t0);
        }
    };
    let mut run = Run::new(host, spec, case, t0, sandbox);
    run.startup = ticket;
    let failure = run.play().await;
    run.finish(failure).await
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
