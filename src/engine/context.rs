//! The context of one case while it runs: what every step reads and changes.
//!
//! What only a server case has (the address it listens on; the case a shared process
//! was started for) and what only a client case has (the reference server's listening
//! socket) are separate variants of [`Side`].

use super::deadline::Deadline;
use super::{GRACE, SETTLE};
use crate::outcome::{Event, EventKind, Failure};
use crate::peer::Connection;
use crate::sandbox::process::{describe_status, StudentProcess};
use crate::sandbox::{Host, Sandbox};
use crate::spec::{Case, ConnName, Spec, Target};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

pub(super) struct Run<'a> {
    pub(super) host: &'a Host,
    pub(super) spec: &'a Spec,
    pub(super) case: &'a Case,
    pub(super) t0: Instant,
    pub(super) sandbox: Sandbox,
    pub(super) transcript: Vec<Event>,
    pub(super) conns: Connections,
    pub(super) side: Side,
    /// The student's program; `None` until it started, and when it could not start.
    pub(super) proc: Option<StudentProcess>,
    pub(super) exit_recorded: bool,
    /// The case could not be run for a reason that is not the student's (the spec's
    /// command cannot start, the reference port is taken): an error, not a failure.
    pub(super) grader_error: bool,
    pub(super) last_stdin: Vec<u8>,
    /// UDP cases: the reference sockets, with the case's faults.
    pub(super) udp: crate::udp_peer::UdpPeers,
    /// UDP cases with a protocol peer: how far its transfer got.
    pub(super) saw: crate::udp_peer::stop_and_wait::SawState,
    /// UDP: the last datagram the grader sent (for a failure's "sent").
    pub(super) last_datagram: Vec<u8>,
    /// UDP client cases: where the client meant to send was noted.
    pub(super) udp_noted: bool,
    /// UDP client cases: a TCP listener at the reference port, so that a TCP client's
    /// connect() succeeds and its connection can be named (not refused, then gone).
    pub(super) tcp_listener_for_udp: Option<std::net::TcpListener>,
    /// This case finds out whether the program of its side starts, for the cases
    /// waiting on it ([`super::startup`]).
    pub(super) startup: Option<super::startup::Ticket>,
    /// The program's processes and threads just before the case signalled it: a
    /// program that exits on the signal (Ctrl-C) has none left when the case ends, and
    /// what ran into the task limit is told by what was alive (see `limit_hit`).
    pub(super) tasks_at_signal: Option<(usize, usize)>,
}

/// What one target's case has of its own.
pub(super) enum Side {
    Server(ServerSide),
    Client(ClientSide),
}

pub(super) struct ServerSide {
    /// Set once the server listens (before any step runs).
    pub(super) listening: Option<Listening>,
    /// A shared server process that this case reuses: the case it was started for
    /// (`None` for a process of this case's own).
    pub(super) started_for: Option<String>,
}

/// Where a student's server listens.
#[derive(Debug, Clone, Copy)]
pub(super) struct Listening {
    /// Where the grader connects (a wildcard address made loopback).
    pub(super) addr: SocketAddr,
    /// The address the student's socket is bound to.
    pub(super) bound: SocketAddr,
}

pub(super) struct ClientSide {
    /// The reference server's listening socket, once open.
    pub(super) reference: Option<TcpListener>,
}

/// The case's connections, by the name the spec gives them.
#[derive(Default)]
pub(super) struct Connections(HashMap<ConnName, Connection>);

impl Connections {
    pub(super) fn insert(&mut self, conn: &ConnName, c: Connection) {
        self.0.insert(conn.clone(), c);
    }

    /// The connection a step acts on; validation ensures it is open there.
    pub(super) fn get_mut(&mut self, conn: &ConnName) -> &mut Connection {
        self.0
            .get_mut(conn)
            .expect("validated: the connection is open")
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Connection> {
        self.0.values()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Connection> {
        self.0.values_mut()
    }
}

/// A failure before any step, or of a step.
pub(super) fn fail(
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
    pub(super) fn new(
        host: &'a Host,
        spec: &'a Spec,
        case: &'a Case,
        t0: Instant,
        sandbox: Sandbox,
    ) -> Run<'a> {
        let side = match case.target {
            Target::Server => Side::Server(ServerSide {
                listening: None,
                started_for: None,
            }),
            Target::Client => Side::Client(ClientSide { reference: None }),
        };
        Run {
            host,
            spec,
            case,
            t0,
            sandbox,
            transcript: Vec::new(),
            conns: Connections::default(),
            side,
            proc: None,
            exit_recorded: false,
            grader_error: false,
            last_stdin: Vec::new(),
            udp: crate::udp_peer::UdpPeers::with_faults(case.udp.faults.clone()),
            saw: Default::default(),
            last_datagram: Vec::new(),
            udp_noted: false,
            tcp_listener_for_udp: None,
            startup: None,
            tasks_at_signal: None,
        }
    }

    pub(super) fn event(&mut self, kind: EventKind) {
        self.transcript.push(Event {
            at_ms: self.t0.elapsed().as_millis() as u64,
            kind,
        });
    }

    /// Moves what the UDP sockets did into the transcript, at the time it happened.
    pub(super) fn take_udp_events(&mut self) {
        for (at, kind) in std::mem::take(&mut self.udp.events) {
            self.transcript.push(Event {
                at_ms: at.saturating_duration_since(self.t0).as_millis() as u64,
                kind,
            });
        }
    }

    pub(super) fn proc(&self) -> &StudentProcess {
        self.proc
            .as_ref()
            .expect("steps run only once the program started")
    }

    pub(super) fn who(&self) -> &'static str {
        self.case.target.as_str()
    }

    /// Where the student's server listens, once it does (never, for a client).
    pub(super) fn listening(&self) -> Option<Listening> {
        match &self.side {
            Side::Server(s) => s.listening,
            Side::Client(_) => None,
        }
    }

    /// Records the exit once we have seen it.
    pub(super) fn note_exit(&mut self) {
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
    pub(super) fn exit_suffix(&self) -> String {
        let Some(p) = self.proc.as_ref() else {
            return String::new();
        };
        match p.status() {
            Some(s) if p.stderr.snapshot().total > 0 => format!(
                "; the {} {} (see its last stderr lines below)",
                self.who(),
                describe_status(s)
            ),
            Some(s) => format!(
                "; the {} {} without a word on stderr",
                self.who(),
                describe_status(s)
            ),
            None => String::new(),
        }
    }

    /// Where a student client may connect, as the spec's `must_match` says, for reasons.
    pub(super) fn where_clients_connect(&self) -> String {
        let at = self.spec.connects_to;
        match self.spec.must_match {
            crate::spec::MustMatch::Port => format!("port {} of any address ({at})", at.port()),
            crate::spec::MustMatch::AddressAndPort => at.to_string(),
            crate::spec::MustMatch::Nothing => format!("{at} (and any address and port)"),
        }
    }

    /// Pids of the student's processes (for CPU use and the host-loopback socket search).
    pub(super) fn pids(&self) -> Vec<u32> {
        self.sandbox.pids(self.proc())
    }

    /// A deadline `within` from now that does not count the program's CPU waits.
    pub(super) fn fair_deadline(&self, within: Duration) -> Deadline {
        Deadline::new(within, self.wait_clock(self.pids()))
    }

    /// A clock of the CPU waits of `pids` that are not the case's own doing.
    pub(super) fn wait_clock(&self, pids: Vec<u32>) -> super::deadline::WaitClock {
        let quota = self.sandbox.cgroup.as_ref().and_then(|c| c.cpu_quota());
        super::deadline::WaitClock::new(pids, quota)
    }

    pub(super) fn cpu_time(&self) -> Duration {
        self.sandbox.cpu_time(self.proc())
    }

    /// The last line the program printed on stderr, as ": line" (or nothing), once its
    /// output is all read.
    pub(super) async fn last_stderr_line(&self) -> String {
        self.proc().output_settled(GRACE).await;
        crate::text::last_lines(&self.proc().stderr.snapshot().text(), 1)
            .pop()
            .map(|l| format!(": {l}"))
            .unwrap_or_default()
    }

    /// Waits for an exit that is under way (the connection it held was just closed or
    /// reset). Returns at once when the program is still serving.
    pub(super) async fn settle_exit(&mut self) {
        let peer_gone = self.conns.iter().any(|c| c.peer_closed().is_some());
        if peer_gone && self.proc.as_ref().is_some_and(|p| p.status().is_none()) {
            // A program that closed because it is ending (a traceback, then the
            // interpreter's shutdown closing its sockets) still runs when its FIN
            // comes: first wait until it waits for us or is gone, as before an action,
            // so whether the reason says it exited does not depend on the load.
            self.settle().await;
            if let Some(p) = &self.proc {
                let _ = tokio::time::timeout(SETTLE, p.exited()).await;
            }
        }
        self.collect_exit().await;
    }

    /// Records an exit that has happened in the kernel but not reached the grader yet
    /// (a zombie not reaped), so a report never says "still running" of a program that
    /// is dead.
    pub(super) async fn collect_exit(&mut self) {
        if let Some(p) = &self.proc {
            if p.status().is_none() && p.is_dead() {
                let _ = tokio::time::timeout(GRACE, p.exited()).await;
            }
        }
        self.note_exit();
    }
}
