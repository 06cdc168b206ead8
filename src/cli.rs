//! The command line: clap types, options validated once, and the exit codes.
//!
//! Exit codes: 0 every graded case passed (or the spec is valid), 1 some case failed,
//! 2 a usage or spec error (nothing was graded).

use crate::plan::Plan;
use crate::report::{self, Format};
use crate::sandbox::{Host, IsolationRequest};
use crate::spec::{Spec, Target};
use crate::visibility::Moment;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

const EXAMPLES: &str = "\
Examples:
  sockgrade run specs/tcp-basics.toml fixtures/good
      grade one submission (a folder with tcp_server.py / tcp_client.py)
  sockgrade run specs/tcp-basics.toml my-homework --target server
      a student checks only the server half
  sockgrade run specs/tcp-basics.toml sub --case \"replies to a message\" --verbose
      one case, with the full transcript
  sockgrade run specs/tcp-basics.toml sub --format json > result.json
  sockgrade run specs/tcp-basics.toml sub --student
      what a student would see on Gradescope (hidden cases left out)
  sockgrade run specs/tcp-basics.toml /autograder/submission --format gradescope > results.json
  sockgrade check specs/tcp-basics.toml
      validate a spec and print what it would run
  sockgrade check specs/tcp-basics.toml --against references/
      grade pass/<name>/ and fail/<name>/ solutions: do they score as they should?
  sockgrade init my-course
      write a starter spec (and its JSON Schema) to edit
  sockgrade grade specs/tcp-basics.toml class/ --out grades
      grade a whole class (see `sockgrade grade --help`)";

#[derive(Debug, Parser)]
#[command(name = "sockgrade", version, about = "Grades TCP socket homework by running it against a reference peer over real sockets", after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Grade one submission.
    #[command(after_help = EXAMPLES)]
    Run(RunArgs),
    /// Grade a whole class: a gradebook, reports, progress, resumable, shardable.
    Grade(crate::bulk::GradeArgs),
    /// Join the outputs of `grade --shard` runs into one gradebook.
    Merge(crate::bulk::MergeArgs),
    /// Validate a spec and print the cases it would run; with --against, test it on reference solutions.
    Check(CheckArgs),
    /// Write a starter spec (the seed homework, commented) and its JSON Schema into DIR.
    Init {
        /// Where to write sockgrade.toml and spec.schema.json (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print the JSON Schema of spec files (for editors: taplo, Even Better TOML).
    Schema,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The spec file (TOML).
    pub spec: PathBuf,
    /// A folder with pass/<name>/ solutions that must score full marks and fail/<name>/
    /// ones that must lose points (or fail exactly the cases listed in their sockgrade-expect.txt).
    #[arg(long, value_name = "DIR")]
    pub against: Option<PathBuf>,
    /// How to isolate each case (with --against).
    #[arg(long, value_enum, default_value_t = IsolationRequest::Auto)]
    pub isolation: IsolationRequest,
    /// Cases run at once (with --against).
    #[arg(long, short)]
    pub jobs: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The spec file (TOML).
    pub spec: PathBuf,
    /// The submission: a folder with the student's files.
    pub submission: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Run only this case (repeat for more).
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    /// Run only the cases of this side.
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// How to isolate each case: auto picks the best this machine allows.
    #[arg(long, value_enum, default_value_t = IsolationRequest::Auto)]
    pub isolation: IsolationRequest,
    /// Cases run at once (default: 32 per CPU, at most 64: cases mostly wait).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Show every case's transcript, passed ones too.
    #[arg(long, short)]
    pub verbose: bool,
    /// Show only what a student would see on Gradescope: hidden cases left out (and the
    /// total with them), failures cut to the spec's `show`. WHEN: open (default),
    /// after-due-date, published. The exit code then reflects the shown cases only.
    #[arg(long, value_enum, value_name = "WHEN", num_args = 0..=1, default_missing_value = "open", require_equals = true)]
    pub student: Option<Moment>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TargetArg {
    Server,
    Client,
}

impl From<TargetArg> for Target {
    fn from(t: TargetArg) -> Target {
        match t {
            TargetArg::Server => Target::Server,
            TargetArg::Client => Target::Client,
        }
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check(args),
        Command::Run(args) => run(args),
        Command::Init { dir } => match crate::init::init(&dir) {
            Ok(files) => {
                for f in &files {
                    anstream::println!("wrote {}", f.display());
                }
                anstream::println!(
                    "\nnext: edit {0}, then `sockgrade check {0}`",
                    files[0].display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(&format!("error: {e}")),
        },
        Command::Schema => {
            print!("{}", crate::spec::raw::json_schema());
            ExitCode::SUCCESS
        }
        Command::Grade(args) => crate::bulk::grade_main(args),
        Command::Merge(args) => crate::bulk::merge_main(args),
    }
}

/// `check SPEC`: validate and describe; `check SPEC --against DIR`: grade reference
/// solutions and compare with what they should score.
fn check(args: CheckArgs) -> ExitCode {
    let spec = match Spec::load(&args.spec) {
        Ok(s) => s,
        Err(e) => return usage_error(&e.to_string()),
    };
    let plan = Plan::new(&spec, &[], None).expect("a valid spec has cases");
    let Some(dir) = args.against else {
        anstream::print!("{}", plan.describe(&spec));
        anstream::println!("\nthe spec is valid.");
        return ExitCode::SUCCESS;
    };
    let refs = match crate::check::discover(&dir, &spec) {
        Ok(r) => r,
        Err(e) => return usage_error(&format!("error: {e}")),
    };
    let (host, runtime) = match host_and_runtime(args.isolation) {
        Ok(hr) => hr,
        Err(code) => return code,
    };
    let jobs = args.jobs.unwrap_or_else(crate::runner::default_jobs);
    let spec_name = args.spec.display().to_string();
    let rows = runtime.block_on(crate::check::run(
        Arc::new(host),
        Arc::new(spec),
        spec_name,
        &plan,
        refs,
        jobs,
    ));
    anstream::print!("{}", crate::check::table(&rows));
    if rows.iter().all(|r| r.wrong.is_none()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What `run` and `check --against` need before grading: the host's isolation,
/// detected once, and the runtime.
fn host_and_runtime(
    isolation: IsolationRequest,
) -> Result<(Host, tokio::runtime::Runtime), ExitCode> {
    let host = Host::detect(isolation).map_err(|e| {
        usage_error(&format!(
            "error: {e}\n  = help: run as root, or pass --isolation none"
        ))
    })?;
    // Notes about this machine are for whoever runs the grader, said once; they never
    // enter a report, which a student may read and which must not depend on the machine.
    for note in &host.notes {
        anstream::eprintln!("note: {note}");
    }
    let runtime = crate::runner::runtime()
        .map_err(|e| usage_error(&format!("error: cannot start the async runtime: {e}")))?;
    Ok((host, runtime))
}

fn usage_error(msg: &str) -> ExitCode {
    anstream::eprintln!("{}", msg.trim_end());
    ExitCode::from(2)
}

fn run(args: RunArgs) -> ExitCode {
    let spec = match Spec::load(&args.spec) {
        Ok(s) => s,
        Err(e) => return usage_error(&e.to_string()),
    };
    if !args.submission.is_dir() {
        return usage_error(&format!("error: the submission {} is not a folder\n  = help: pass the folder that holds the student's files", args.submission.display()));
    }
    let plan = match Plan::new(&spec, &args.cases, args.target.map(Into::into)) {
        Ok(p) => p,
        Err(e) => return usage_error(&format!("error: {e}")),
    };
    let (host, runtime) = match host_and_runtime(args.isolation) {
        Ok(hr) => hr,
        Err(code) => return code,
    };
    let jobs = args.jobs.unwrap_or_else(crate::runner::default_jobs);
    let spec_name = args.spec.display().to_string();
    // Interpreters resolved once, and Python 2 files run by the spec's fallback_command.
    let targets: Vec<Target> = plan.cases.iter().map(|&i| spec.cases[i].target).collect();
    let (spec, choices) = crate::bulk::interpreter::choose(
        &crate::bulk::interpreter::resolve_spec(&spec),
        &targets,
        &args.submission,
    );
    let result = runtime.block_on(crate::runner::grade_submission(
        Arc::new(host),
        Arc::new(spec),
        spec_name,
        &plan,
        args.submission.clone(),
        jobs,
    ));
    let mut result = match args.student {
        Some(at) => crate::visibility::student_view(&result, at),
        None => result,
    };
    result.notes.extend(choices.into_iter().map(|c| c.note));
    let text = match args.format {
        Format::Text => report::text::render(&result, args.verbose),
        Format::Json => report::json::render(&result),
        Format::Gradescope => report::gradescope::render(&result),
        Format::Junit => report::junit::render(&result),
        Format::Github => {
            if let Err(e) = write_github_files(&result) {
                anstream::eprintln!("warning: {e}");
            }
            report::github::render(&result)
        }
    };
    anstream::print!("{text}");
    if result.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// In GitHub Actions: append the job summary to `$GITHUB_STEP_SUMMARY` and the
/// Classroom result to `$GITHUB_OUTPUT` (each only when its variable is set).
fn write_github_files(result: &crate::outcome::SubmissionResult) -> Result<(), String> {
    use std::io::Write;
    let append = |var: &str, text: String| -> Result<(), String> {
        let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                format!(
                    "cannot open ${var} ({}): {e}",
                    PathBuf::from(&path).display()
                )
            })?;
        f.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write ${var}: {e}"))
    };
    append("GITHUB_STEP_SUMMARY", report::github::summary(result))?;
    append("GITHUB_OUTPUT", report::github::classroom_output(result))
}
