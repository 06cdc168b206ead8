//! A start-up failure is learned once per submission and side.
//!
//! Every case of a side starts the same program the same way before its first step, so
//! a server that never listens, a file with a syntax error or a missing file fails
//! every case identically. Without this, each of a silent server's cases waits out the
//! whole start-up deadline, holding a slot of the class: 8 cases × 5 s instead of 5 s.
//!
//! The first case of a side to get the gate (the leader) starts the program while the
//! others wait *without* holding a slot. When the leader's program starts, the others
//! run as usual; when it fails to start for a reason of the student's (it exited or
//! never listened, its file is missing), the others are not run and carry the leader's
//! explanation. A failure that is not the student's (the spec's command cannot start,
//! no port for the reference server) decides nothing: the next case leads.

use crate::outcome::{CaseResult, Status};
use crate::spec::{Case, Target};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How the leader's start-up ended, as the followers need it.
#[derive(Debug, Clone)]
pub(crate) struct StartFailure {
    /// The case that found out.
    pub(crate) case: String,
    /// Why, in one line ("the server exited with code 1 before it listened: …").
    pub(crate) why: String,
    /// The leader's status, which the others share: failed (the program would not
    /// start), or error (it could not be started: its file is missing).
    pub(crate) status: Status,
}

struct Gate {
    turn: Arc<Semaphore>,
    outcome: Mutex<Option<Result<(), StartFailure>>>,
}

/// The gates of one submission, one per side.
pub(crate) struct StartGates {
    server: Arc<Gate>,
    client: Arc<Gate>,
}

/// What a case does after [`StartGates::enter`].
pub(crate) enum Entry {
    /// Start as usual, and report how the start went through the ticket.
    Lead(Ticket),
    /// The program of this side started in another case: start as usual.
    Go,
    /// The program of this side could not start: do not run.
    Skip(StartFailure),
}

/// The leader's duty: say how the start went. Dropped unsaid (a grader error, a
/// cancelled case), the next case waiting leads instead.
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    _turn: OwnedSemaphorePermit,
}

impl Ticket {
    pub(crate) fn started(self) {
        *self.gate.outcome.lock().expect("not poisoned") = Some(Ok(()));
    }

    pub(crate) fn failed(self, case: &str, why: String, status: Status) {
        *self.gate.outcome.lock().expect("not poisoned") = Some(Err(StartFailure {
            case: case.to_string(),
            why,
            status,
        }));
    }
}

impl StartGates {
    pub(crate) fn new() -> StartGates {
        let gate = || {
            Arc::new(Gate {
                turn: Arc::new(Semaphore::new(1)),
                outcome: Mutex::new(None),
            })
        };
        StartGates {
            server: gate(),
            client: gate(),
        }
    }

    /// Waits until the start-up of `target` is known, or until it is this case's turn
    /// to find out.
    pub(crate) async fn enter(&self, target: Target) -> Entry {
        let gate = match target {
            Target::Server => &self.server,
            Target::Client => &self.client,
        };
        let turn = Arc::clone(&gate.turn)
            .acquire_owned()
            .await
            .expect("the gate is never closed");
        match gate.outcome.lock().expect("not poisoned").clone() {
            Some(Ok(())) => Entry::Go,
            Some(Err(f)) => Entry::Skip(f),
            None => Entry::Lead(Ticket {
                gate: Arc::clone(gate),
                _turn: turn,
            }),
        }
    }
}

/// The result of a case not run because its side's program could not start.
pub(crate) fn not_run(case: &Case, failure: &StartFailure) -> CaseResult {
    CaseResult {
        // The leader's own words: which case happened to lead depends on scheduling,
        // and a gradebook note must not (`not_run` names the leader for reports).
        not_run: Some(failure.case.clone()),
        ..CaseResult::without_run(case, failure.status, failure.why.clone())
    }
}
