//! The outputs of a class run: `gradebook.csv` and a JSON and a text report per student.
//!
//! The gradebook is rebuilt from the journal's records, sorted by student, so an
//! interrupted-and-resumed run, or shards merged, give the same file as one
//! uninterrupted run. Reports are written as each student finishes (before the journal
//! line, so a journaled student always has its reports), and only a slim [`Row`] per
//! student stays in memory: a class of thousands does not hold thousands of transcripts.

pub use crate::outcome::class::Row;
use crate::outcome::class::{CaseColumn, Outcome, RunHeader, StudentRecord};
use crate::outcome::Status;
use crate::report;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const GRADEBOOK: &str = "gradebook.csv";
/// The gradebook as Canvas imports it (and Moodle, with a column mapping).
pub const LMS: &str = "lms.csv";
/// The class report: one self-contained HTML page.
pub const HTML: &str = "report.html";
/// Per-student reports, in a folder of their own so no student id collides with ours.
pub const REPORTS: &str = "reports";

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
            let mut line = vec![cell(&r.student), r.score.to_string(), r.max.to_string()];
            for (col, cell) in header.cases.iter().zip(&r.cases) {
                line.push(match cell {
                    None => String::new(),
                    Some((Status::Error, _)) => "error".into(),
                    Some((s, _)) if col.informational => s.as_str().into(),
                    Some((_, score)) => score.to_string(),
                });
            }
            line.extend([r.status.as_str().to_string(), cell(&r.note)]);
            w.write_record(&line)?;
        }
        w.flush()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// A text cell as a spreadsheet will not run it: a cell that begins with `=`, `+`, `-`,
/// `@`, a tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets
/// (a student folder named `=HYPERLINK(...)` would be a live link in the instructor's
/// gradebook). OWASP's advice: prefix such a cell with `'`, which they show as text.
pub(crate) fn cell(text: &str) -> String {
    match text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        true => format!("'{text}"),
        false => text.to_string(),
    }
}

/// Writes `lms.csv`, the score per student in the columns Canvas's gradebook import
/// requires: `Student, ID, SIS User ID, SIS Login ID, Section, <assignment>`.
///
/// Canvas matches rows by `ID` (its user id) first: a Canvas submission download names
/// files `<name>_<user id>_<submission id>_<file>`, so for such a class the `ID` column is
/// filled and the file imports as it is. For other layouts only `Student` is known; Canvas
/// then matches by name, or the instructor pastes the ids in. The other identity columns
/// stay empty rather than guessed: a wrong SIS id would put a grade on the wrong student.
/// Moodle's CSV grade import reads the same file once its `Student` column is mapped to a
/// user field (see docs/formats.md). A student who could not be graded gets 0, as in the
/// gradebook.
pub fn write_lms(out: &Path, header: &RunHeader, rows: &[Row]) -> io::Result<PathBuf> {
    let path = out.join(LMS);
    let tmp = out.join(format!(".{LMS}.tmp"));
    {
        let mut w = csv::Writer::from_path(&tmp)?;
        w.write_record([
            "Student",
            "ID",
            "SIS User ID",
            "SIS Login ID",
            "Section",
            header.assignment.as_str(),
        ])?;
        let mut rows: Vec<&Row> = rows.iter().collect();
        rows.sort_by(|a, b| a.student.cmp(&b.student));
        for r in rows {
            let name = Path::new(&r.source)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let id = super::discover::canvas_user_id(&name).unwrap_or_default();
            w.write_record([
                cell(&r.student).as_str(),
                cell(&id).as_str(),
                "",
                "",
                "",
                r.score.to_string().as_str(),
            ])?;
        }
        w.flush()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Writes `report.html` (through a temporary file): the class report of `rows` (sorted by
/// student, as [`write_gradebook`] leaves them), with each student's full result read from
/// `records` one at a time.
pub fn write_html<R, I>(
    out: &Path,
    header: &RunHeader,
    rows: &[Row],
    records: I,
) -> io::Result<PathBuf>
where
    R: std::borrow::Borrow<StudentRecord>,
    I: IntoIterator<Item = io::Result<R>>,
{
    let path = out.join(HTML);
    let tmp = out.join(format!(".{HTML}.tmp"));
    {
        let mut w = io::BufWriter::new(std::fs::File::create(&tmp)?);
        report::html::write(&mut w, header, rows, records)?;
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

/// Writes `reports/<student>.json`, `reports/<student>.txt` (no colour) and
/// `reports/<student>.html` (with a sequence diagram per case; the class report links it).
pub fn write_reports(out: &Path, r: &StudentRecord) -> io::Result<()> {
    let dir = out.join(REPORTS);
    std::fs::create_dir_all(&dir)?;
    let back = Some("../report.html");
    let (json, text, html) = match &r.outcome {
        Outcome::Graded(result) => {
            // The result's notes already hold the record's (interpreter, skipped files).
            let text =
                anstream::adapter::strip_str(&report::text::render(result, false)).to_string();
            (
                report::json::render(result),
                text,
                report::submission::render(result, back),
            )
        }
        Outcome::Error(reason) => {
            let v = serde_json::json!({ "submission": r.source, "student": r.student, "error": reason, "notes": r.notes });
            (
                serde_json::to_string_pretty(&v).map_err(io::Error::other)? + "\n",
                format!("sockgrade  ·  {}\n\nnot graded: {reason}\n", r.source),
                report::submission::not_graded(&r.source, reason, back),
            )
        }
    };
    // Not `with_extension`: an id such as `li.lei` has a dot of its own.
    let stem = file_stem(&r.student);
    std::fs::write(dir.join(format!("{stem}.json")), json)?;
    std::fs::write(dir.join(format!("{stem}.txt")), text)?;
    std::fs::write(dir.join(format!("{stem}.html")), html)
}

/// A student id as a file name ([`crate::outcome::class::file_stem`]).
pub fn file_stem(student: &str) -> String {
    crate::outcome::class::file_stem(student)
}
