//! A server process shared by the server cases of a submission (the spec's
//! `share_process`): kept running between cases, recycled (its connections closed,
//! then checked ready for the next client) or replaced by a fresh one.

use super::context::{Connections, Listening, Run, ServerSide, Side};
use super::{prepare_sandbox, GRACE, POLL};
use crate::outcome::{CaseResult, EventKind};
use crate::sandbox::process::{describe_status, StudentProcess};
use crate::sandbox::{sockets, Host, Sandbox};
use crate::spec::{Case, Spec};
use std::path::Path;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// How long, after a case that shares the server process, the server may take to be
/// back in accept() (no connection held) once the grader closed its connections. A
/// server that takes longer is replaced by a fresh one for the next case.
const READY_WAIT: Duration = Duration::from_millis(1000);

/// A server process kept running between the cases that share it.
pub(super) struct Kept {
    pub(super) sandbox: Sandbox,
    pub(super) proc: StudentProcess,
    pub(super) listening: Listening,
    /// The case it was started for.
    pub(super) started_for: String,
    /// The connections of the case that just ended, to close before the next.
    pub(super) conns: Connections,
}

impl Kept {
    async fn stop(mut self) {
        // The grader's ends first, as when they were dropped before the stop.
        self.conns = Connections::default();
        self.sandbox.stop(&mut self.proc, GRACE).await;
    }

    /// Closes the case's connections (FIN) and waits until the server is ready for the
    /// next case: alive, listening, nothing in its accept queue, and no connection held
    /// (or only ones the grader closed and it did not, while it waits: blocked in
    /// accept()). Errs with why it cannot be used again.
    async fn recycle(mut self) -> Result<Kept, (Kept, String)> {
        // FIN on every connection, then keep reading until the server has closed its
        // side: a socket closed with unread data would send an RST, which a correct
        // server may not survive (recv() raises ConnectionResetError).
        for c in self.conns.iter_mut() {
            let _ = c.shutdown_write().await;
        }
        let deadline = Instant::now() + READY_WAIT;
        let mut ready_looks = 0;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            for c in self.conns.iter_mut() {
                c.discard_ready();
            }
            if let Some(status) = self.proc.status() {
                let why = format!("{} after the previous case", describe_status(status));
                return Err((self, why));
            }
            if self.sandbox.memory_limit_hit()
                || self.sandbox.process_limit_hit()
                || self.sandbox.workdir.full().is_some()
            {
                return Err((self, "hit a resource limit in the previous case".into()));
            }
            let list = match self.sandbox.sockets(&self.proc) {
                Ok(l) => l,
                Err(e) => {
                    let why = format!("could not be inspected ({e}): its sockets cannot be seen without pidfd_getfd");
                    return Err((self, why));
                }
            };
            let port = self.listening.bound.port();
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
                && self.sandbox.waiting_for_clients(&self.proc)
                && !self.proc.stdout.lagging()
                && !self.proc.stderr.lagging();
            // Twice in a row: one look can fall between a wake-up and what it leads to.
            ready_looks = if ready { ready_looks + 1 } else { 0 };
            if ready_looks >= 2 {
                for c in self.conns.iter_mut() {
                    c.discard_ready();
                }
                self.conns = Connections::default();
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
    pub(crate) async fn run_case(
        &mut self,
        host: &Host,
        spec: &Spec,
        case: &Case,
        submission: &Path,
        case_id: &str,
        pcap: Option<&Path>,
        ticket: Option<super::startup::Ticket>,
    ) -> CaseResult {
        let t0 = Instant::now();
        let mut notes = Vec::new();
        let run = match self.kept.take() {
            Some(k) => {
                // The previous case's connections were closed by the recycle.
                let mut run = Run::new(host, spec, case, t0, k.sandbox);
                run.proc = Some(k.proc);
                run.side = Side::Server(ServerSide {
                    listening: Some(k.listening),
                    started_for: Some(k.started_for),
                });
                run
            }
            None => {
                if let Some(why) = self.why_fresh.take() {
                    notes.push(format!(
                        "a fresh server process for this case: the shared one {why}"
                    ));
                }
                match prepare_sandbox(host, spec, case, submission, case_id) {
                    Ok(s) => Run::new(host, spec, case, t0, s),
                    Err(e) => {
                        super::report_unprepared(ticket, case, &e);
                        let mut r = CaseResult::errored(case, e.to_string(), t0.elapsed());
                        r.shared_process = true;
                        return r;
                    }
                }
            }
        };
        let mut run = run;
        run.startup = ticket;
        for text in notes {
            run.event(EventKind::Note { text });
        }
        let capture = super::Capture::start(&run.sandbox, pcap);
        let failure = run.play().await;
        let (mut result, kept) = run.finish_shared(failure).await;
        match kept {
            Some(k) => match k.recycle().await {
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
        // After the recycle, which closes the case's connections (their FINs belong to it).
        capture.stop(&mut result);
        result
    }

    /// Stops the shared process, if one is running.
    pub async fn stop(mut self) {
        if let Some(k) = self.kept.take() {
            k.stop().await;
        }
    }
}
