//! `sockgrade grade SPEC CLASS`: grade a whole class, with progress, Ctrl-C handling,
//! the class summary and where the outputs are.

use super::progress::Progress;
use super::{detect_host, runtime, Error};
use crate::bulk::class::{self, Class};
use crate::bulk::shard::Shard;
use crate::bulk::{self, ClassRun, Outputs, DEFAULT_OUT};
use crate::outcome::events::ClassEvent;
use crate::report::summary;
use crate::sandbox::IsolationRequest;
use crate::spec::Spec;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

const GRADE_EXAMPLES: &str = "\
Examples:
  sockgrade grade specs/tcp-basics.toml class/
      grade every student folder or archive in class/ into sockgrade-out/
  sockgrade grade specs/tcp-basics.toml class/ --resume
      after Ctrl-C or a crash: grade only the students not yet in the journal
  sockgrade grade specs/tcp-basics.toml class/ --shard 2/4 --out out-2
      one of 4 runners (CI matrix, Kubernetes Indexed Job); then `sockgrade merge out-*`

Exit codes: 0 the run completed (see gradebook.csv for scores), 1 it did not complete,
2 usage or spec error, 130 interrupted (run again with --resume).
If the grader itself crashes, --resume grades again the students it was grading; one it
crashed on twice is graded as an error, so the class completes.";

/// Printed if the grader aborts (a stack overflow): what to do next.
const CRASHED: &str =
    "\nsockgrade stopped unexpectedly (see above). Every student graded so far is in the \
journal: run the same command with --resume to continue. A student whose grading stops \
the grader twice is graded as an error, so the class completes.\n";

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
    /// Write a packet capture of each case into DIR/STUDENT/ (pcap: Wireshark,
    /// `tshark -r`, `tcpdump -r`), taken in the case's own network namespace.
    #[arg(long, value_name = "DIR")]
    pub pcap: Option<PathBuf>,
}

pub(super) fn grade(args: GradeArgs) -> Result<ExitCode, Error> {
    let spec = Spec::load(&args.spec)?;
    let spec_text = std::fs::read_to_string(&args.spec).unwrap_or_default();
    let mut run = ClassRun::open(
        &spec,
        &spec_text,
        &args.submissions,
        &args.out,
        args.shard,
        args.resume,
    )?;
    let host = detect_host(args.isolation)?;
    let run_ignored = run.ignored.clone();
    if !run.ignored.is_empty() {
        anstream::eprintln!(
            "note: not graded (hidden, or not a folder or archive): {}",
            run.ignored.join(", ")
        );
    }
    let jobs = args.jobs.unwrap_or_else(crate::runner::default_jobs).max(1);
    if args.resume {
        anstream::eprintln!(
            "resuming: {} graded already, {} to go",
            run.resumed,
            run.todo.len()
        );
        if !run.retried.is_empty() {
            anstream::eprintln!(
                "note: the grader stopped while grading {}: graded again, one at a time (one it stops on again is graded as an error)",
                run.retried.join(", ")
            );
        }
        if !run.given_up.is_empty() {
            anstream::eprintln!(
                "note: the grader stopped twice while grading {}: graded as errors so the class completes",
                run.given_up.join(", ")
            );
        }
    }
    crate::sys::say_on_abort(CRASHED);
    let runtime = runtime()?;
    if args.pcap.is_some() {
        super::run::pcap_possible(&host)?;
    }
    let mut class = Class::new(
        host,
        &spec,
        args.spec.display().to_string(),
        run.plan.clone(),
        jobs,
    );
    class.pcap = args.pcap.clone();
    class.journal = Some(run.journal());
    let class = Arc::new(class);
    let todo = std::mem::take(&mut run.todo);
    let alone = run.retried.len();
    let total = run.total() as u64;
    let (stopped, failure) = runtime.block_on(async {
        let mut progress = Progress::new(run.graded() as u64, total);
        let (tx, mut rx) = mpsc::channel::<ClassEvent>(64);
        let producer = tokio::spawn(class::grade_all(class.clone(), todo, alone, tx));
        let mut sigint = signal(SignalKind::interrupt()).ok();
        let mut sigterm = signal(SignalKind::terminate()).ok();
        let mut stopping = false;
        let mut failure = None;
        loop {
            tokio::select! {
                event = rx.recv() => {
                    let record = match event {
                        None => break,
                        Some(ClassEvent::StudentStarted { student }) => {
                            progress.started(&student);
                            continue;
                        }
                        Some(ClassEvent::StudentFinished(record)) => record,
                    };
                    match run.record(&record) {
                        Ok(row) => progress.finished(row),
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
        // The students still being graded were stopped on purpose, not crashed on.
        if let Err(e) = run.journal().stopping() {
            failure.get_or_insert(e.into());
        }
        progress.finish();
        (stopping, failure)
    });
    let outputs = run.finish()?;
    let graded = outputs.rows.len();
    let printed = print_outputs(&args.out, outputs);
    if !run_ignored.is_empty() {
        anstream::println!(
            "not graded (hidden, or not a folder or archive): {}",
            run_ignored.join(", ")
        );
    }
    printed?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    if stopped || (graded as u64) < total {
        anstream::eprintln!("stopped: {graded} of {total} students graded; run the same command with --resume to grade the rest");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// The class summary, then where the outputs are: the last lines an instructor reads.
/// Returns the error of writing the class outputs, if any, once the summary is out.
pub(super) fn print_outputs(out: &Path, outputs: Outputs) -> Result<(), bulk::BulkError> {
    anstream::print!("{}", summary::render(&outputs.header, &outputs.rows));
    anstream::println!(
        "\ngradebook: {}   reports: {}",
        outputs.gradebook.display(),
        out.join(bulk::gradebook::REPORTS).display()
    );
    anstream::println!(
        "class report: {}   LMS import (Canvas, Moodle): {}",
        out.join(bulk::gradebook::HTML).display(),
        out.join(bulk::gradebook::LMS).display()
    );
    outputs.written
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// First signal: finish the running cases, start no more. Second: quit now, here in the
/// command line rather than through the library (students die with the grader:
/// PR_SET_PDEATHSIG; their cgroups are removed by the next run).
fn stop_or_quit(class: &Class, progress: &Progress, stopping: &mut bool) {
    if *stopping {
        if let Some(j) = &class.journal {
            let _ = j.stopping();
        }
        progress.say("stopping now; graded students are in the journal");
        std::process::exit(130);
    }
    *stopping = true;
    class.stop();
    progress.say("stopping: no new case starts, running cases finish (Ctrl-C again to quit at once); then run with --resume");
}
