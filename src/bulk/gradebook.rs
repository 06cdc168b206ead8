//! The outputs of a class run: `gradebook.csv` and a JSON and a text report per student.
//!
//! The gradebook is rebuilt from the journal's records, sorted by student, so an
//! interrupted-and-resumed run, or shards merged, give the same file as one
//! uninterrupted run. Reports are written as each student finishes (before the journal
//! line, so a journaled student always has its reports), and only a slim [`Row`] per
//! student stays in memory: a class of thousands does not hold thousands of transcripts.

use super::journal::{CaseColumn, Outcome, RunHeader, StudentRecord};
use crate::outcome::Status;
use crate::report;
use std::io;
use std::path::{Path, PathBuf};

pub const GRADEBOOK: &str = "gradebook.csv";
/// Per-student reports, in a folder of their own so no student id collides with ours.
pub const REPORTS: &str = "reports";

/// One gradebook line, and what the class summary needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub student: String,
    pub score: u32,
    pub max: u32,
    /// Per case, in the header's order: its status, or `None` when it did not run.
    pub cases: Vec<Option<(Status, u32)>>,
    /// `passed` (every graded case), `failed`, or `error` (something could not run).
    pub status: &'static str,
    pub note: String,
    /// Sum of the cases' durations: the grading time this submission cost.
    pub duration_ms: u64,
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
                let status = if result.errors > 0 {
                    "error"
                } else if result.all_passed() {
                    "passed"
                } else {
                    "failed"
                };
                // A case that could not run says why (a missing file, usually).
                let mut notes = r.notes.clone();
                if let Some(reason) = result
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
                    status: "error",
                    note: notes.join("; "),
                    duration_ms: 0,
                }
            }
        }
    }
}

/// Writes `gradebook.csv` in `out` (through a temporary file, so a reader never sees
/// half of it): student, score, max, one column per case, status, note.
///
/// A graded case's cell is the points earned; an informational case's is its status
/// (`passed`/`failed`); a case that could not run is `error`, one that did not run empty.
pub fn write_gradebook(out: &Path, header: &RunHeader, rows: &mut [Row]) -> io::Result<PathBuf> {
    rows.sort_by(|a, b| a.student.cmp(&b.student));
    let path = out.join(GRADEBOOK);
    let tmp = out.join(format!(".{GRADEBOOK}.tmp"));
    {
        let mut w = csv::Writer::from_path(&tmp)?;
        let mut head = vec!["student".to_string(), "score".into(), "max".into()];
        head.extend(header.cases.iter().map(column_title));
        head.extend(["status".to_string(), "note".into()]);
        w.write_record(&head)?;
        for r in rows.iter() {
            let mut line = vec![r.student.clone(), r.score.to_string(), r.max.to_string()];
            for (col, cell) in header.cases.iter().zip(&r.cases) {
                line.push(match cell {
                    None => String::new(),
                    Some((Status::Error, _)) => "error".into(),
                    Some((s, _)) if col.informational => s.as_str().into(),
                    Some((_, score)) => score.to_string(),
                });
            }
            line.extend([r.status.to_string(), r.note.clone()]);
            w.write_record(&line)?;
        }
        w.flush()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn column_title(c: &CaseColumn) -> String {
    if c.informational {
        format!("{} ({}, info)", c.name, c.target)
    } else {
        format!("{} ({}, {} pt)", c.name, c.target, c.points)
    }
}

/// Writes `reports/<student>.json` and `reports/<student>.txt` (no colour).
pub fn write_reports(out: &Path, r: &StudentRecord) -> io::Result<()> {
    let dir = out.join(REPORTS);
    std::fs::create_dir_all(&dir)?;
    let (json, text) = match &r.outcome {
        Outcome::Graded(result) => {
            // The result's notes already hold the record's (interpreter, skipped files).
            let text =
                anstream::adapter::strip_str(&report::text::render(result, false)).to_string();
            (report::json::render(result), text)
        }
        Outcome::Error(reason) => {
            let v = serde_json::json!({ "submission": r.source, "student": r.student, "error": reason, "notes": r.notes });
            (
                serde_json::to_string_pretty(&v).map_err(io::Error::other)? + "\n",
                format!("sockgrade  ·  {}\n\nnot graded: {reason}\n", r.source),
            )
        }
    };
    // Not `with_extension`: an id such as `li.lei` has a dot of its own.
    let stem = file_stem(&r.student);
    std::fs::write(dir.join(format!("{stem}.json")), json)?;
    std::fs::write(dir.join(format!("{stem}.txt")), text)
}

/// A student id as a file name: ids come from file names already, but `.` prefixes and
/// separators are neutralized in case a platform put them there.
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
