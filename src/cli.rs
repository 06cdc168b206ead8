//! The command line: clap types, options validated once, and the exit codes.
//!
//! Exit codes: 0 every graded case passed (or the spec is valid), 1 some case failed,
//! 2 a usage or spec error (nothing was graded).

use crate::plan::Plan;
use crate::report::{self, Format};
use crate::sandbox::{Host, IsolationRequest};
use crate::spec::{Spec, Target};
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
  sockgrade check specs/tcp-basics.toml
      validate a spec and print what it would run
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
    /// Validate a spec and print the cases it would run.
    Check {
        /// The spec file (TOML).
        spec: PathBuf,
    },
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
    /// Cases run at once (default: twice the CPU count: cases mostly wait).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Show every case's transcript, passed ones too.
    #[arg(long, short)]
    pub verbose: bool,
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
        Command::Check { spec } => match Spec::load(&spec) {
            Ok(s) => {
                let plan = Plan::new(&s, &[], None).expect("a valid spec has cases");
                anstream::print!("{}", plan.describe(&s));
                anstream::println!("\nthe spec is valid.");
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(&e.to_string()),
        },
        Command::Run(args) => run(args),
        Command::Grade(args) => crate::bulk::grade_main(args),
        Command::Merge(args) => crate::bulk::merge_main(args),
    }
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
    let host = match Host::detect(args.isolation) {
        Ok(h) => h,
        Err(e) => return usage_error(&format!("error: {e}\n  = help: run as root, or pass --isolation none")),
    };
    let jobs = args.jobs.unwrap_or_else(|| 2 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let spec_name = args.spec.display().to_string();
    // Interpreters resolved once, and Python 2 files run by the spec's fallback_command.
    let targets: Vec<Target> = plan.cases.iter().map(|&i| spec.cases[i].target).collect();
    let (spec, choices) = crate::bulk::interpreter::choose(&crate::bulk::interpreter::resolve_spec(&spec), &targets, &args.submission);
    let mut result = runtime.block_on(crate::runner::grade_submission(Arc::new(host), Arc::new(spec), spec_name, &plan, args.submission.clone(), jobs));
    result.notes.extend(choices.into_iter().map(|c| c.note));
    let text = match args.format {
        Format::Text => report::text::render(&result, args.verbose),
        Format::Json => report::json::render(&result),
    };
    anstream::print!("{text}");
    if result.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
