//! A class run's results, shared by the journal (which stores them), the gradebook and
//! the class reports (which read them): so `report/` reads results without knowing how
//! a class is graded.

use super::{Status, SubmissionResult};
use crate::spec::Target;
use serde::{Deserialize, Serialize};

/// What was run: the first line of every journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunHeader {
    pub version: u32,
    pub assignment: String,
    /// FNV-1a of the spec file's text: a resumed or merged run must use the same spec.
    pub spec_hash: String,
    pub cases: Vec<CaseColumn>,
    pub max_score: u32,
    /// `K/N` when the run graded one shard.
    pub shard: Option<String>,
}

/// A gradebook column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseColumn {
    pub name: String,
    pub target: Target,
    pub points: u32,
    pub informational: bool,
}

/// One student's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudentRecord {
    pub student: String,
    /// The folder or archive it came from.
    pub source: String,
    /// What grading needed beyond the spec: the interpreter picked, files skipped.
    pub notes: Vec<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Graded(Box<SubmissionResult>),
    /// The submission could not be graded at all (broken archive, unreadable entry).
    Error(String),
}

/// One gradebook line, and what the class summary needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub student: String,
    pub score: u32,
    pub max: u32,
    /// Per case, in the header's order: its status, or `None` when it did not run.
    pub cases: Vec<Option<(Status, u32)>>,
    /// `passed` (every graded case), `failed`, or `error` (something could not run).
    pub status: Status,
    pub note: String,
    /// Sum of the cases' durations: the grading time this submission cost.
    pub duration_ms: u64,
    /// Time its builds took (the spec's `build`), all sides together.
    pub build_ms: u64,
    /// The folder or archive it came from (its name may carry the platform's user id).
    pub source: String,
}

impl Row {
    pub fn new(header: &RunHeader, r: &StudentRecord) -> Row {
        match &r.outcome {
            Outcome::Graded(result) => {
                let cases = header
                    .cases
                    .iter()
                    .map(|col| {
                        result
                            .cases
                            .iter()
                            .find(|c| c.name == col.name)
                            .map(|c| (c.status, c.score))
                    })
                    .collect();
                let status = result.status();
                // A case that could not run says why (a missing file, usually); a
                // failed build says it once, with the compiler's first error.
                let mut notes = r.notes.clone();
                let failed_build = result.builds.iter().find(|b| b.status != Status::Passed);
                if let Some(b) = failed_build {
                    notes.push(format!(
                        "{}: {}",
                        b.summary(),
                        b.reason.as_deref().unwrap_or("")
                    ));
                } else if let Some(reason) = result
                    .cases
                    .iter()
                    .find(|c| c.status == Status::Error)
                    .and_then(|c| c.reason.clone())
                {
                    notes.push(reason);
                }
                Row {
                    student: r.student.clone(),
                    score: result.score,
                    max: result.max_score,
                    cases,
                    status,
                    note: notes.join("; "),
                    duration_ms: result.cases.iter().map(|c| c.duration_ms).sum(),
                    build_ms: result.build_ms(),
                    source: r.source.clone(),
                }
            }
            Outcome::Error(reason) => {
                let mut notes = r.notes.clone();
                notes.insert(0, reason.clone());
                Row {
                    student: r.student.clone(),
                    score: 0,
                    max: header.max_score,
                    cases: vec![None; header.cases.len()],
                    status: Status::Error,
                    note: notes.join("; "),
                    duration_ms: 0,
                    build_ms: 0,
                    source: r.source.clone(),
                }
            }
        }
    }
}

/// A student id as a file name (of their reports, `reports/<stem>.json` ...): ids come
/// from file names already, but `.` prefixes and separators are neutralized in case a
/// platform put them there.
pub fn file_stem(student: &str) -> String {
    let s: String = student
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | '\0') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}
