//! Grading a whole class, as a library: `sockgrade grade` and `sockgrade merge` (in
//! [`crate::cli`]) drive it and print what it returns.
//!
//! One run grades every submission of a class folder, survives being interrupted, and
//! leaves a gradebook. Data flows as in the rest of the crate, one way:
//!
//! - [`discover`]: the class folder → students (platform layouts, normalized ids);
//! - [`archive`]: a student's .zip / .tar.gz → a throw-away folder, safely;
//! - [`class`]: every submission through [`crate::runner::grade_submission`], sharing one
//!   case limit;
//! - [`journal`]: each finished student appended and fsynced (resume, merge);
//! - [`gradebook`]: `gradebook.csv` and per-student reports;
//! - [`shard`]: `--shard K/N`, a stable share of the class for one of N runners.
//!
//! [`ClassRun`] is one `grade` run from its journal to its outputs; [`merge`] joins the
//! journals of sharded runs. Errors are returned, never printed: [`BulkError::incomplete`]
//! tells the command line which exit code each one means.

pub mod archive;
pub mod class;
pub mod discover;
pub mod gradebook;
pub mod journal;
pub mod shard;

use crate::plan::Plan;
use crate::spec::Spec;
use discover::Submission;
use gradebook::Row;
use journal::{CaseColumn, Journal, RunHeader, StudentRecord};
use shard::Shard;
use std::path::{Path, PathBuf};

/// Where `grade` and `merge` write unless told otherwise.
pub const DEFAULT_OUT: &str = "sockgrade-out";

#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Discover(#[from] discover::DiscoverError),
    #[error("cannot write to {path}: {source}; check the --out folder (permissions, free space)")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}")]
    Usage { what: String },
}

impl BulkError {
    /// The run could not complete (its outputs could not be written): exit code 1, where
    /// every other error (usage, spec, journal) means nothing was done: 2.
    pub fn incomplete(&self) -> bool {
        matches!(self, BulkError::Output { .. })
    }
}

fn output_err(path: &Path) -> impl FnOnce(std::io::Error) -> BulkError + '_ {
    move |source| BulkError::Output {
        path: path.into(),
        source,
    }
}

fn header_for(spec: &Spec, spec_text: &str, plan: &Plan, shard: Option<Shard>) -> RunHeader {
    let cases: Vec<CaseColumn> = plan
        .cases
        .iter()
        .map(|&i| &spec.cases[i])
        .map(|c| CaseColumn {
            name: c.name.clone(),
            target: c.target,
            points: c.points,
            informational: c.informational,
        })
        .collect();
    RunHeader {
        version: journal::VERSION,
        assignment: spec.name.clone(),
        spec_hash: format!("{:016x}", shard::fnv1a64(spec_text.as_bytes())),
        max_score: cases
            .iter()
            .filter(|c| !c.informational)
            .map(|c| c.points)
            .sum(),
        cases,
        shard: shard.map(|s| s.to_string()),
    }
}

/// One `grade` run, from its journal to its outputs: the students still to grade, and
/// the gradebook rows of those graded (only slim rows stay in memory).
pub struct ClassRun {
    pub header: RunHeader,
    pub plan: Plan,
    /// The students to grade in this run (not yet in the journal, in this shard).
    pub todo: Vec<Submission>,
    /// Entries of the class folder that are neither a folder nor an archive.
    pub ignored: Vec<String>,
    /// Students graded by an earlier run (`--resume`).
    pub resumed: usize,
    /// Students an earlier run died while grading, once: graded again in this one, one
    /// at a time, first (they are the first of `todo`).
    pub retried: Vec<String>,
    /// Students earlier runs died while grading twice: recorded as errors by this one.
    pub given_up: Vec<String>,
    out: PathBuf,
    journal: Journal,
    rows: Vec<Row>,
    total: usize,
}

/// Times the grader may die while grading one student before that student is recorded
/// as an error: once may be the machine (a kill, a lost node); twice is the submission.
const CRASHES: u32 = 2;

/// The error result of a student the grader died while grading `times` times.
fn crashed_record(sub: &Submission, times: u32) -> StudentRecord {
    let times = match times {
        2 => "twice".to_string(),
        n => format!("{n} times"),
    };
    StudentRecord {
        student: sub.student.clone(),
        source: sub.source.display().to_string(),
        notes: Vec::new(),
        outcome: journal::Outcome::Error(format!(
            "the grader stopped {times} while grading this submission (sockgrade itself \
             crashed or was killed each time, the last time while grading it alone: e.g. a \
             stack overflow on what the program left behind; the grader's error output of \
             those runs says why); graded as an error so the class completes"
        )),
    }
}

/// What a finished `grade` or `merge` wrote.
pub struct Outputs {
    pub header: RunHeader,
    /// Sorted by student.
    pub rows: Vec<Row>,
    pub gradebook: PathBuf,
    /// Writing the class outputs beside the gradebook (LMS file, HTML report): the
    /// summary is worth printing even when this failed.
    pub written: Result<(), BulkError>,
}

impl ClassRun {
    /// Plans the run of `spec` (its text hashed into the journal) on the class folder
    /// `submissions` into `out`: discovers the students, keeps those of `shard`, and
    /// starts a journal (or continues it, with `resume`).
    pub fn open(
        spec: &Spec,
        spec_text: &str,
        submissions: &Path,
        out: &Path,
        shard: Option<Shard>,
        resume: bool,
    ) -> Result<ClassRun, BulkError> {
        let plan = Plan::new(spec, &[], None).map_err(|e| BulkError::Usage {
            what: e.to_string(),
        })?;
        let header = header_for(spec, spec_text, &plan, shard);
        let (all, ignored) = discover::discover(submissions)?;
        let selected: Vec<_> = all
            .into_iter()
            .filter(|s| shard.is_none_or(|k| k.contains(&s.student)))
            .collect();

        std::fs::create_dir_all(out).map_err(output_err(out))?;
        let (journal, done, unfinished) = if resume {
            Journal::resume(out, &header)?
        } else {
            (
                Journal::create(out, &header)?,
                Vec::new(),
                Default::default(),
            )
        };
        let graded: std::collections::HashSet<&str> =
            done.iter().map(|r| r.student.as_str()).collect();
        let todo: Vec<_> = selected
            .iter()
            .filter(|s| !graded.contains(s.student.as_str()))
            .cloned()
            .collect();
        let (crashed, todo): (Vec<_>, Vec<_>) = todo
            .into_iter()
            .partition(|s| unfinished.get(&s.student).is_some_and(|&n| n >= CRASHES));
        // Those the grader died while grading first, to be graded one at a time.
        let (mut todo, rest): (Vec<_>, Vec<_>) = todo
            .into_iter()
            .partition(|s| unfinished.contains_key(&s.student));
        let retried = todo.iter().map(|s| s.student.clone()).collect();
        todo.extend(rest);
        let rows: Vec<Row> = done.iter().map(|r| Row::new(&header, r)).collect();
        let mut run = ClassRun {
            total: rows.len() + todo.len() + crashed.len(),
            resumed: done.len(),
            retried,
            given_up: crashed.iter().map(|s| s.student.clone()).collect(),
            header,
            plan,
            todo,
            ignored,
            out: out.to_path_buf(),
            journal,
            rows,
        };
        for s in crashed {
            run.record(&crashed_record(&s, unfinished[&s.student]))?;
        }
        Ok(run)
    }

    /// The journal, for the gradings to note when each student's starts.
    pub fn journal(&self) -> Journal {
        self.journal.clone()
    }

    /// Students graded so far, by this run and those it resumed.
    pub fn graded(&self) -> usize {
        self.rows.len()
    }

    /// Students of the run, graded or not.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Keeps a finished student: its reports first, then its journal line (so a
    /// journaled student always has its reports); returns its gradebook row.
    pub fn record(&mut self, record: &StudentRecord) -> Result<&Row, BulkError> {
        let kept = gradebook::write_reports(&self.out, record)
            .map_err(output_err(&self.out.join(gradebook::REPORTS)))
            .and_then(|()| Ok(self.journal.append(record)?));
        if let Err(e) = kept {
            self.journal.failed();
            return Err(e);
        }
        self.rows.push(Row::new(&self.header, record));
        Ok(self.rows.last().expect("just pushed"))
    }

    /// Writes the gradebook, then the class outputs beside it.
    pub fn finish(self) -> Result<Outputs, BulkError> {
        let ClassRun {
            header,
            out,
            mut rows,
            ..
        } = self;
        let gradebook = gradebook::write_gradebook(&out, &header, &mut rows)
            .map_err(output_err(&out.join(gradebook::GRADEBOOK)))?;
        // The class report reads the full results back from the journal, one student at
        // a time: only the slim rows were kept in memory.
        let records = journal::students_sorted(&out.join(journal::FILE_NAME))?;
        let written = write_class_outputs(&out, &header, &rows, records);
        Ok(Outputs {
            header,
            rows,
            gradebook,
            written,
        })
    }
}

/// The files made for people and course platforms beside the gradebook: `lms.csv` and
/// `report.html` (`rows` sorted by student, `records` the same students in full).
fn write_class_outputs<R, I>(
    out: &Path,
    header: &RunHeader,
    rows: &[Row],
    records: I,
) -> Result<(), BulkError>
where
    R: std::borrow::Borrow<StudentRecord>,
    I: IntoIterator<Item = std::io::Result<R>>,
{
    gradebook::write_lms(out, header, rows).map_err(output_err(&out.join(gradebook::LMS)))?;
    gradebook::write_html(out, header, rows, records)
        .map_err(output_err(&out.join(gradebook::HTML)))?;
    Ok(())
}

/// What `merge` did: the outputs, and the shards missing from the merge (their students
/// are not in the gradebook), if any.
pub struct Merged {
    pub outputs: Outputs,
    pub missing: Option<String>,
}

/// Joins the journals in `dirs` (output folders of `grade --shard`, or journal files)
/// into one journal, gradebook and reports in `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Merged, BulkError> {
    let mut header: Option<RunHeader> = None;
    let mut shards = Vec::new();
    let mut records: Vec<(StudentRecord, PathBuf)> = Vec::new();
    for dir in dirs {
        let path = if dir.is_dir() {
            dir.join(journal::FILE_NAME)
        } else {
            dir.clone()
        };
        let (h, recs) = journal::read(&path)?;
        match &header {
            None => {
                header = Some(RunHeader {
                    shard: None,
                    ..h.clone()
                })
            }
            Some(first) if first.spec_hash != h.spec_hash || first.cases != h.cases => {
                return Err(BulkError::Usage {
                    what: format!(
                        "{} was graded with another spec than {}; merge only shards of one run",
                        path.display(),
                        dirs[0].display()
                    ),
                })
            }
            Some(_) => {}
        }
        shards.push(h.shard.clone());
        records.extend(recs.into_iter().map(|r| (r, path.clone())));
    }
    let header = header.expect("clap requires at least one folder");
    records.sort_by(|a, b| a.0.student.cmp(&b.0.student));
    for w in records.windows(2) {
        if w[0].0.student == w[1].0.student {
            return Err(BulkError::Usage {
                what: format!(
                    "the student {:?} is in both {} and {}; merge outputs of different shards only",
                    w[0].0.student,
                    w[0].1.display(),
                    w[1].1.display()
                ),
            });
        }
    }
    let missing = missing_shards(&shards);

    std::fs::create_dir_all(out).map_err(output_err(out))?;
    let mut journal = Journal::create(out, &header)?;
    let mut rows = Vec::new();
    for (r, _) in &records {
        gradebook::write_reports(out, r).map_err(output_err(&out.join(gradebook::REPORTS)))?;
        journal.append(r)?;
        rows.push(Row::new(&header, r));
    }
    let gradebook = gradebook::write_gradebook(out, &header, &mut rows)
        .map_err(output_err(&out.join(gradebook::GRADEBOOK)))?;
    let written = write_class_outputs(
        out,
        &header,
        &rows,
        records.iter().map(|(r, _)| Ok::<_, std::io::Error>(r)),
    );
    Ok(Merged {
        outputs: Outputs {
            header,
            rows,
            gradebook,
            written,
        },
        missing,
    })
}

/// "shard 2/3 is missing" when the merged shards do not cover 1..=N exactly once.
fn missing_shards(shards: &[Option<String>]) -> Option<String> {
    let parsed: Vec<Shard> = shards
        .iter()
        .flatten()
        .filter_map(|s| s.parse().ok())
        .collect();
    let n = parsed.first()?.count;
    let missing: Vec<String> = (1..=n)
        .filter(|k| !parsed.iter().any(|s| s.index == *k && s.count == n))
        .map(|k| format!("{k}/{n}"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "shard{} {} {} missing",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            if missing.len() > 1 { "are" } else { "is" }
        )
    })
}
