//! Grading a whole class: `sockgrade grade` and `sockgrade merge`.
//!
//! One command grades every submission of a class folder, shows progress, survives being
//! interrupted, and leaves a gradebook. Data flows as in the rest of the crate, one way:
//!
//! - [`discover`]: the class folder → students (platform layouts, normalized ids);
//! - [`archive`]: a student's .zip / .tar.gz → a throw-away folder, safely;
//! - [`interpreter`]: interpreters resolved once; Python 2 fallback per submission;
//! - [`class`]: every submission through the [`crate::runner`], sharing one case limit;
//! - [`journal`]: each finished student appended and fsynced (resume, merge);
//! - [`gradebook`]: `gradebook.csv` and per-student reports;
//! - [`summary`]: the class summary on the terminal;
//! - [`progress`]: a bar on a terminal, plain lines otherwise;
//! - [`shard`]: `--shard K/N`, a stable share of the class for one of N runners.
//!
//! Exit codes of `grade` and `merge`: 0 the run completed (whatever the students scored:
//! the gradebook says that); 1 it did not complete (outputs could not be written, or
//! `merge` found shards missing); 2 a usage, spec or journal error (nothing was graded);
//! 130 stopped by Ctrl-C or SIGTERM (the journal is valid: run again with `--resume`).

pub mod archive;
pub mod class;
pub mod discover;
pub mod gradebook;
pub mod interpreter;
pub mod journal;
pub mod progress;
pub mod shard;
pub mod summary;

use crate::plan::Plan;
use crate::runner;
use crate::sandbox::{Host, IsolationRequest};
use crate::spec::Spec;
use class::Class;
use gradebook::Row;
use journal::{CaseColumn, Journal, RunHeader, StudentRecord};
use shard::Shard;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, Semaphore};

pub const DEFAULT_OUT: &str = "sockgrade-out";

const GRADE_EXAMPLES: &str = "\
Examples:
  sockgrade grade specs/tcp-basics.toml class/
      grade every student folder or archive in class/ into sockgrade-out/
  sockgrade grade specs/tcp-basics.toml class/ --resume
      after Ctrl-C or a crash: grade only the students not yet in the journal
  sockgrade grade specs/tcp-basics.toml class/ --shard 2/4 --out out-2
      one of 4 runners (CI matrix, Kubernetes Indexed Job); then `sockgrade merge out-*`

Exit codes: 0 the run completed (see gradebook.csv for scores), 1 it did not complete,
2 usage or spec error, 130 interrupted (run again with --resume).";

#[derive(Debug, clap::Args)]
#[command(after_help = GRADE_EXAMPLES)]
pub struct GradeArgs {
    /// The spec file (TOML).
    pub spec: PathBuf,
    /// The class folder: one folder, .zip or .tar.gz per student (Moodle, Canvas and
    /// GitHub Classroom exports work as they are).
    pub submissions: PathBuf,
    /// Where the gradebook, reports and journal go.
    #[arg(long, default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Cases run at once for the whole class (default: 32 per CPU, at most 64: cases mostly wait).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Grade only shard K of N (1-based), chosen by a stable hash of the student id.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Continue the run journaled in --out: grade only the students not in it.
    #[arg(long)]
    pub resume: bool,
    /// How to isolate each case: auto picks the best this machine allows.
    #[arg(long, value_enum, default_value_t = IsolationRequest::Auto)]
    pub isolation: IsolationRequest,
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Output folders of `sockgrade grade --shard` (or their journal.jsonl files).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged gradebook, reports and journal go.
    #[arg(long, default_value = DEFAULT_OUT)]
    pub out: PathBuf,
}

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
    fn exit_code(&self) -> ExitCode {
        match self {
            BulkError::Output { .. } => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    }
}

fn output_err(path: &Path) -> impl FnOnce(std::io::Error) -> BulkError + '_ {
    move |source| BulkError::Output {
        path: path.into(),
        source,
    }
}

fn fail(e: BulkError) -> ExitCode {
    anstream::eprintln!("error: {e}");
    e.exit_code()
}

/// `sockgrade grade`.
pub fn grade_main(args: GradeArgs) -> ExitCode {
    let spec = match Spec::load(&args.spec) {
        Ok(s) => s,
        Err(e) => {
            anstream::eprintln!("{}", e.to_string().trim_end());
            return ExitCode::from(2);
        }
    };
    match grade(args, spec) {
        Ok(code) => code,
        Err(e) => fail(e),
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

fn grade(args: GradeArgs, spec: Spec) -> Result<ExitCode, BulkError> {
    let spec_text = std::fs::read_to_string(&args.spec).unwrap_or_default();
    let plan = Plan::new(&spec, &[], None).map_err(|e| BulkError::Usage {
        what: e.to_string(),
    })?;
    let header = header_for(&spec, &spec_text, &plan, args.shard);
    let (all, ignored) = discover::discover(&args.submissions)?;
    let selected: Vec<_> = all
        .into_iter()
        .filter(|s| args.shard.is_none_or(|k| k.contains(&s.student)))
        .collect();

    std::fs::create_dir_all(&args.out).map_err(output_err(&args.out))?;
    let (mut journal, done) = if args.resume {
        Journal::resume(&args.out, &header)?
    } else {
        (Journal::create(&args.out, &header)?, Vec::new())
    };
    let host = Host::detect(args.isolation).map_err(|e| BulkError::Usage {
        what: format!("{e}\n  = help: run as root, or pass --isolation none"),
    })?;
    for note in &host.notes {
        anstream::eprintln!("note: {note}");
    }
    if !ignored.is_empty() {
        anstream::eprintln!(
            "note: ignored (not a folder or archive): {}",
            ignored.join(", ")
        );
    }

    let graded: std::collections::HashSet<&str> = done.iter().map(|r| r.student.as_str()).collect();
    let todo: Vec<_> = selected
        .iter()
        .filter(|s| !graded.contains(s.student.as_str()))
        .cloned()
        .collect();
    let mut rows: Vec<Row> = done.iter().map(|r| Row::new(&header, r)).collect();
    let total = (rows.len() + todo.len()) as u64;
    let jobs = args.jobs.unwrap_or_else(runner::default_jobs).max(1);
    if args.resume {
        anstream::eprintln!(
            "resuming: {} graded already, {} to go",
            done.len(),
            todo.len()
        );
    }

    let runtime = runner::runtime().map_err(|e| BulkError::Usage {
        what: format!("cannot start the async runtime: {e}"),
    })?;
    let class = Arc::new(Class {
        slots: runner::case_slots(&host, jobs),
        in_flight: Arc::new(Semaphore::new(jobs.max(2))),
        host: Arc::new(host),
        spec: Arc::new(interpreter::resolve_spec(&spec)),
        spec_name: args.spec.display().to_string(),
        plan,
    });
    let out = args.out.clone();
    let outcome = runtime.block_on(async {
        let mut progress = progress::Progress::new(rows.len() as u64, total);
        let (tx, mut rx) = mpsc::channel::<StudentRecord>(64);
        let producer = tokio::spawn(class::grade_all(class.clone(), todo, tx));
        let mut sigint = signal(SignalKind::interrupt()).ok();
        let mut sigterm = signal(SignalKind::terminate()).ok();
        let mut stopping = false;
        let mut failure = None;
        loop {
            tokio::select! {
                record = rx.recv() => {
                    let Some(record) = record else { break };
                    // Reports first: a journaled student always has its reports.
                    let written = gradebook::write_reports(&out, &record).map_err(output_err(&out.join(gradebook::REPORTS))).and_then(|_| journal.append(&record).map_err(BulkError::from));
                    match written {
                        Ok(()) => {
                            let row = Row::new(&header, &record);
                            progress.finished(&row);
                            rows.push(row);
                        }
                        Err(e) if failure.is_none() => {
                            progress.say(&format!("error: {e}; stopping (the journal keeps what was written)"));
                            failure = Some(e);
                            class.stop();
                        }
                        Err(_) => {}
                    }
                }
                _ = recv(&mut sigint) => stop_or_quit(&class, &progress, &mut stopping),
                _ = recv(&mut sigterm) => stop_or_quit(&class, &progress, &mut stopping),
            }
        }
        let _ = producer.await;
        progress.finish();
        (stopping, failure)
    });
    let (stopped, failure) = outcome;
    let path = gradebook::write_gradebook(&args.out, &header, &mut rows)
        .map_err(output_err(&args.out.join(gradebook::GRADEBOOK)))?;
    // The class report reads the full results back from the journal, one student at a
    // time: only the slim rows were kept in memory.
    let records = journal::students_sorted(&args.out.join(journal::FILE_NAME))?;
    let written = write_class_outputs(&args.out, &header, &rows, records);
    anstream::print!("{}", summary::render(&header, &rows));
    print_outputs(&args.out, &path);
    written?;
    if let Some(e) = failure {
        return Err(e);
    }
    if stopped || (rows.len() as u64) < total {
        anstream::eprintln!("stopped: {} of {total} students graded; run the same command with --resume to grade the rest", rows.len());
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
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

/// Where the outputs are, after the summary: the last lines an instructor reads.
fn print_outputs(out: &Path, gradebook: &Path) {
    anstream::println!(
        "\ngradebook: {}   reports: {}",
        gradebook.display(),
        out.join(gradebook::REPORTS).display()
    );
    anstream::println!(
        "class report: {}   LMS import (Canvas, Moodle): {}",
        out.join(gradebook::HTML).display(),
        out.join(gradebook::LMS).display()
    );
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// First signal: finish the running cases, start no more. Second: quit now (students
/// die with the grader: PR_SET_PDEATHSIG; their cgroups are removed by the next run).
fn stop_or_quit(class: &Class, progress: &progress::Progress, stopping: &mut bool) {
    if *stopping {
        progress.say("stopping now; graded students are in the journal");
        std::process::exit(130);
    }
    *stopping = true;
    class.stop();
    progress.say("stopping: no new case starts, running cases finish (Ctrl-C again to quit at once); then run with --resume");
}

/// `sockgrade merge`.
pub fn merge_main(args: MergeArgs) -> ExitCode {
    match merge(args) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn merge(args: MergeArgs) -> Result<ExitCode, BulkError> {
    let mut header: Option<RunHeader> = None;
    let mut shards = Vec::new();
    let mut records: Vec<(StudentRecord, PathBuf)> = Vec::new();
    for dir in &args.dirs {
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
                        args.dirs[0].display()
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

    std::fs::create_dir_all(&args.out).map_err(output_err(&args.out))?;
    let mut journal = Journal::create(&args.out, &header)?;
    let mut rows = Vec::new();
    for (r, _) in &records {
        gradebook::write_reports(&args.out, r)
            .map_err(output_err(&args.out.join(gradebook::REPORTS)))?;
        journal.append(r)?;
        rows.push(Row::new(&header, r));
    }
    let path = gradebook::write_gradebook(&args.out, &header, &mut rows)
        .map_err(output_err(&args.out.join(gradebook::GRADEBOOK)))?;
    let written = write_class_outputs(
        &args.out,
        &header,
        &rows,
        records.iter().map(|(r, _)| Ok::<_, std::io::Error>(r)),
    );
    anstream::print!("{}", summary::render(&header, &rows));
    print_outputs(&args.out, &path);
    written?;
    if let Some(m) = missing {
        anstream::eprintln!("warning: {m}: their students are not in the gradebook");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
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
