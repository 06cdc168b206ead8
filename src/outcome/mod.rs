//! What grading produces: the verdict of each case with its reason and transcript, and
//! the result of a whole submission; for a class, the records and rows that the journal,
//! the gradebook and the class reports share ([`class`]). Reports only read these;
//! nothing here runs anything.

pub mod class;
pub mod events;

use crate::spec::{Show, Target, Visibility};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    /// The program did something wrong.
    Failed,
    /// The case could not be run at all (missing file, sandbox set-up failure).
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One timestamped thing that happened during a case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Milliseconds since the case started.
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    Started {
        command: Vec<String>,
        pid: u32,
        /// Forked from a fork server ([`crate::sandbox::warm`]) rather than started cold.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        warm: bool,
    },
    Listening {
        address: String,
    },
    Connected {
        conn: String,
        address: String,
    },
    Accepted {
        conn: String,
    },
    ClientConnected {
        conn: String,
        from: String,
        meant_for: String,
    },
    Sent {
        conn: String,
        bytes: usize,
        data: String,
    },
    Received {
        conn: String,
        bytes: usize,
        data: String,
    },
    Shutdown {
        conn: String,
    },
    Closed {
        conn: String,
        how: CloseHow,
    },
    PeerClosed {
        conn: String,
        how: CloseHow,
    },
    Stdin {
        data: String,
    },
    StdinClosed,
    Output {
        stream: crate::spec::Stream,
        data: String,
    },
    Signal {
        signal: String,
    },
    Exited {
        status: String,
    },
    Idle {
        window_ms: u64,
        cpu_ms: u64,
        /// Time the program waited for a CPU; the window was extended by it.
        cpu_wait_ms: u64,
    },
    PortFree {
        address: String,
        free: bool,
    },
    Note {
        text: String,
    },
    /// UDP: the reference socket `peer` sent a datagram (`fault`: what a fault did to it).
    DatagramSent {
        peer: String,
        to: String,
        bytes: usize,
        data: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fault: Option<String>,
    },
    /// UDP: the reference socket `peer` received a datagram.
    DatagramReceived {
        peer: String,
        from: String,
        bytes: usize,
        data: String,
    },
    /// UDP: a datagram of the student's that a fault dropped (as if lost).
    DatagramDropped {
        peer: String,
        from: String,
        bytes: usize,
        data: String,
        fault: String,
    },
    /// UDP: where the student's server is bound (it never listens).
    Bound {
        address: String,
    },
}

/// How a connection was closed, by the grader ([`EventKind::Closed`]) or by the
/// student's side ([`EventKind::PeerClosed`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CloseHow {
    /// An orderly close.
    Fin,
    /// A reset.
    Rst,
}

impl From<crate::spec::CloseKind> for CloseHow {
    fn from(k: crate::spec::CloseKind) -> CloseHow {
        match k {
            crate::spec::CloseKind::Fin => CloseHow::Fin,
            crate::spec::CloseKind::Rst => CloseHow::Rst,
        }
    }
}

/// Why a case failed, in the words a student needs: the step, what was sent, what was
/// expected, and what came back (or that nothing did).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    /// 1-based step number, 0 when the failure is before any step (start-up).
    pub step: usize,
    /// Line of the step in the spec.
    pub line: usize,
    /// The step in words, e.g. `wait for any non-empty data on "main" (2s)`.
    pub action: String,
    /// The last bytes the grader sent on this connection (or to stdin), if any.
    pub sent: Option<String>,
    pub expected: String,
    pub got: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    pub name: String,
    pub target: Target,
    pub status: Status,
    pub score: u32,
    pub max_score: u32,
    pub informational: bool,
    /// One line: why it failed or could not run.
    pub reason: Option<String>,
    pub failure: Option<Failure>,
    pub hint: Option<String>,
    /// How the student's process ended, e.g. "exited with code 1", "killed by SIGINT",
    /// or "still running (stopped by the grader)".
    pub exit: Option<String>,
    pub stderr_tail: Vec<String>,
    pub stdout_tail: Vec<String>,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub duration_ms: u64,
    /// When a student may see this case (from the spec; reports for students obey it).
    pub visibility: Visibility,
    /// What a student may see of a failure (from the spec): see [`crate::visibility`].
    pub show: Show,
    /// The case ran on a server process shared with other cases of the submission
    /// (the spec's `share_process`), not on one started for it alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared_process: bool,
    /// Not run: the program of this side could not start in the case named here (a
    /// start-up failure is learned once per submission and side; `reason` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
    pub transcript: Vec<Event>,
}

/// A side's build (the spec's `build`), run once per submission before the side's cases.
/// A failed one is the one result of its side: the side's cases are errors that did not
/// run ([`SubmissionResult::not_run_because`]), each pointing here instead of repeating it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BuildResult {
    pub target: Target,
    /// The command as run (`{file}` filled in).
    pub command: Vec<String>,
    /// `passed` when it built, `error` when it did not.
    pub status: Status,
    /// Why it did not build, one line: how the build ended and the compiler's first error
    /// (`tcp_server.c:27:5: error: expected ';' before 'while'`).
    pub reason: Option<String>,
    /// What the build printed (stderr, then stdout), its first error first, cut to the
    /// build's output limit; only kept when it did not build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
    pub duration_ms: u64,
}

impl BuildResult {
    /// "the server did not build" / "the server built in 0.3 s".
    pub fn summary(&self) -> String {
        match self.status {
            Status::Passed => format!(
                "the {} built in {:.1} s",
                self.target,
                self.duration_ms as f64 / 1000.0
            ),
            _ => format!("the {} did not build", self.target),
        }
    }
}

impl CaseResult {
    /// A case that could not run at all (its box or its program failed to start), after
    /// `elapsed` of trying.
    pub fn errored(
        case: &crate::spec::Case,
        reason: String,
        elapsed: std::time::Duration,
    ) -> CaseResult {
        CaseResult {
            duration_ms: elapsed.as_millis() as u64,
            ..CaseResult::without_run(case, Status::Error, reason)
        }
    }

    /// A case that never reached its steps: scored 0, with `status` and one line of
    /// reason, and nothing of a program's run. Every way a case can end before it runs
    /// (a box that cannot be made, a side that did not build or start) is one of these.
    pub fn without_run(case: &crate::spec::Case, status: Status, reason: String) -> CaseResult {
        CaseResult {
            name: case.name.clone(),
            target: case.target,
            status,
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
            duration_ms: 0,
            visibility: case.visibility,
            show: case.show.clone(),
            shared_process: false,
            not_run: None,
            transcript: Vec::new(),
        }
    }

    /// A case that did not run because its side could not start at all (its build
    /// failed): an error, scored 0, saying why in one line.
    pub fn not_run(case: &crate::spec::Case, reason: String) -> CaseResult {
        CaseResult::without_run(case, Status::Error, reason)
    }
}

/// How much a submission's cases were isolated from the machine and from each other
/// (`sockgrade run --isolation`; what the sandbox could give on this machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// The host loopback, one case at a time.
    None,
    /// A network namespace per case.
    Netns,
    /// A network namespace, a cgroup, a minimal root, PID and IPC namespaces, a uid and a
    /// seccomp filter per case.
    Full,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::None => "none",
            Isolation::Netns => "netns",
            Isolation::Full => "full",
        }
    }

    /// Cases can run at the same time only when each has its own network.
    pub fn parallel(self) -> bool {
        self != Isolation::None
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmissionResult {
    pub submission: String,
    pub spec: String,
    pub isolation: Isolation,
    pub score: u32,
    pub max_score: u32,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub notes: Vec<String>,
    /// The spec's default visibility (Gradescope's top-level `visibility`).
    pub visibility: Visibility,
    /// Wall-clock time of the whole grading, cases running in parallel.
    pub duration_ms: u64,
    /// In a student's view ([`crate::visibility::student_view`]): how many cases are
    /// withheld; while any is, the total score is not shown (as on Gradescope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<usize>,
    /// The builds of the sides that have one (the spec's `build`), before any case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builds: Vec<BuildResult>,
    pub cases: Vec<CaseResult>,
}

impl SubmissionResult {
    pub fn new(
        submission: String,
        spec: String,
        isolation: Isolation,
        notes: Vec<String>,
        cases: Vec<CaseResult>,
    ) -> Self {
        let graded = cases.iter().filter(|c| !c.informational);
        let score = graded.clone().map(|c| c.score).sum();
        let max_score = graded.clone().map(|c| c.max_score).sum();
        let count = |s: Status| graded.clone().filter(|c| c.status == s).count();
        // Cases overlap in time, so the longest is a lower bound of the wall-clock time;
        // the runner, which knows better, overwrites it.
        let duration_ms = cases.iter().map(|c| c.duration_ms).max().unwrap_or(0);
        SubmissionResult {
            submission,
            spec,
            isolation,
            score,
            max_score,
            passed: count(Status::Passed),
            failed: count(Status::Failed),
            errors: count(Status::Error),
            notes,
            visibility: Visibility::Visible,
            duration_ms,
            withheld: None,
            builds: Vec::new(),
            cases,
        }
    }

    /// The failed build that kept `case` from running, if any: reports show the build
    /// once and such cases as "not run" beneath it.
    pub fn not_run_because(&self, case: &CaseResult) -> Option<&BuildResult> {
        if case.status != Status::Error {
            return None;
        }
        self.builds
            .iter()
            .find(|b| b.target == case.target && b.status != Status::Passed)
    }

    /// Time spent building, all sides together.
    pub fn build_ms(&self) -> u64 {
        self.builds.iter().map(|b| b.duration_ms).sum()
    }

    /// The submission's status: `error` when a case could not run, else `passed` when
    /// every graded case passed, else `failed`.
    pub fn status(&self) -> Status {
        if self.errors > 0 {
            Status::Error
        } else if self.all_passed() {
            Status::Passed
        } else {
            Status::Failed
        }
    }

    /// Every graded case passed.
    pub fn all_passed(&self) -> bool {
        self.cases
            .iter()
            .filter(|c| !c.informational)
            .all(|c| c.status == Status::Passed)
    }
}
