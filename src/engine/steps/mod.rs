//! The steps of a case, played in order against the case's own timeout; each step
//! kind is one function, grouped by what it touches:
//!
//! - [`connection`]: the reference peer's TCP connections (connect, accept,
//!   expect_accepted, send, expect, shutdown, close, expect_close);
//! - [`process`]: the student's process itself (signal, expect_exit,
//!   expect_port_free, write_stdin, close_stdin, expect_stdout/stderr, expect_idle);
//! - [`datagram`]: the reference peer's UDP sockets (send_datagram, expect_datagram,
//!   expect_no_datagram, expect_transfer).

mod connection;
mod datagram;
mod process;
mod stream;

use super::context::{fail, Run};
use super::deadline::{never, Deadline};
use crate::outcome::Failure;
use crate::spec::{Action, Step, Target};

/// What a step function gets besides the case: its number, its deadline, and how to
/// word its failure.
pub(super) struct StepCtx<'s> {
    n: usize,
    step: &'s Step,
    target: Target,
    /// The step's deadline; it extends by the program's CPU waits for steps that wait.
    deadline: Deadline,
    /// The step's `within`, for messages.
    within: String,
}

impl StepCtx<'_> {
    /// The step's failure: what was expected, what came instead.
    fn fail(&self, expected: impl Into<String>, got: impl Into<String>) -> Failure {
        // A matcher's `label` is what the student reads instead of a regex or hex.
        let expected = match &self.step.label {
            Some(label) => label.clone(),
            None => expected.into(),
        };
        fail(
            self.n,
            self.step.line,
            self.step.describe(self.target),
            expected,
            got,
        )
    }
}

impl Run<'_> {
    /// Starts the program and plays the case's steps; the first failure, if any.
    pub(super) async fn play(&mut self) -> Option<Failure> {
        let started = self.start().await;
        if let Some(ticket) = self.startup.take() {
            match &started {
                Ok(()) => ticket.started(),
                // The student's doing: the other cases of this side would fail the same.
                Err(f) if !self.grader_error => {
                    let workdir = format!("{}/", self.sandbox.workdir.path().display());
                    ticket.failed(
                        &self.case.name,
                        f.got.replace(&workdir, ""),
                        crate::outcome::Status::Failed,
                    )
                }
                Err(_) => drop(ticket),
            }
        }
        if let Err(f) = started {
            return Some(f);
        }
        // The case's own clock starts with the program (the grader's set-up is not the
        // student's time) and, like a step's, does not count the program's CPU waits.
        let mut deadline = self.fair_deadline(self.case.timeout);
        for (i, step) in self.case.steps.iter().enumerate() {
            let outcome = deadline.race(self.step(i + 1, step), never).await;
            self.take_udp_events();
            self.note_exit();
            match outcome {
                Some(Ok(())) => {}
                Some(Err(f)) => return Some(f),
                None => {
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

    /// Plays one step.
    async fn step(&mut self, n: usize, step: &Step) -> Result<(), Failure> {
        if step.action.delivers() {
            self.settle().await;
        }
        let pids = match step.action.waits() {
            true => self.pids(),
            false => Vec::new(),
        };
        let cx = StepCtx {
            n,
            step,
            target: self.case.target,
            deadline: Deadline::new(step.within, self.wait_clock(pids)),
            within: humantime::format_duration(step.within).to_string(),
        };
        match &step.action {
            Action::Connect { conn, opts } => self.connect(cx, conn, opts).await,
            Action::Accept { conn, opts } => self.accept(cx, conn, opts).await,
            Action::ExpectAccepted => self.expect_accepted(cx).await,
            Action::Send { conn, bytes } => self.send(cx, conn, bytes).await,
            Action::Expect { conn, matcher } => self.expect(cx, conn, matcher).await,
            Action::Shutdown { conn } => self.shutdown(cx, conn).await,
            Action::Close { conn, kind } => self.close(cx, conn, *kind),
            Action::ExpectClose { conn, kind } => self.expect_close(cx, conn, *kind).await,
            Action::ExpectIdle { window, max_cpu } => self.expect_idle(cx, *window, *max_cpu).await,
            Action::Signal { signal } => self.signal(*signal),
            Action::ExpectExit(exp) => self.expect_exit(cx, exp).await,
            Action::ExpectPortFree => {
                // Processes of the program that are on their way out (a child that got
                // the same Ctrl-C, still printing its traceback) are let finish first:
                // whether the port is free must not depend on how fast the machine
                // ends them. One asleep with the port open (it ignored the signal)
                // settles at once and still holds it.
                self.settle().await;
                self.expect_port_free(cx)
            }
            Action::WriteStdin { bytes } => self.write_stdin(cx, bytes).await,
            Action::CloseStdin => self.close_stdin(),
            Action::ExpectOutput { stream, matcher } => {
                self.expect_output(cx, *stream, matcher).await
            }
            Action::SendDatagram { peer, bytes } => self.send_datagram(cx, peer, bytes).await,
            Action::ExpectDatagram {
                peer,
                matcher,
                from,
            } => self.expect_datagram(cx, peer, matcher, *from).await,
            Action::ExpectNoDatagram { peer, window } => {
                self.expect_no_datagram(cx, peer, *window).await
            }
            Action::ExpectTransfer(t) => self.expect_transfer(cx, t).await,
            other => self.stream_step(cx, other).await,
        }
    }
}
