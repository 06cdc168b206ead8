//! Events: the contract between the runner, which emits them as grading goes, and the
//! reporters that show progress (as in nextest's `reporter/events.rs`). The runner
//! never formats anything; a reporter never runs anything. Final reports read the
//! finished [`SubmissionResult`](super::SubmissionResult) instead.

use super::class::StudentRecord;
use super::CaseResult;

/// What happens while one submission is graded, in the order it happens.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A case got a slot and starts (`index` into the spec's cases).
    CaseStarted { index: usize, name: String },
    /// A case ended, with its verdict.
    CaseFinished {
        index: usize,
        result: Box<CaseResult>,
    },
}

/// What happens while a class is graded, in the order it happens: the progress display
/// and the journal consume these.
#[derive(Debug)]
pub enum ClassEvent {
    /// A student's submission is being unpacked and graded.
    StudentStarted { student: String },
    /// A student is done (graded, or found impossible to grade).
    StudentFinished(Box<StudentRecord>),
}
