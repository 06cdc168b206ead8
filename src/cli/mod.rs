//! The command line: one module per command (`run`, `check`, `grade`, `merge`, `init`,
//! `schema`), each with its arguments, its printing and its exit code. Library code
//! returns results or errors; they become messages and exit codes here, in one place
//! ([`Error`] and [`main`]).
//!
//! Exit codes of `run` and `check`: 0 every graded case passed (or the spec is valid),
//! 1 some case failed, 2 a usage or spec error (nothing was graded). `grade` and `merge`:
//! 0 the run completed, 1 it did not, 2 a usage, spec or journal error, 130 interrupted.

mod check;
mod grade;
mod init;
mod merge;
pub mod pid1;
mod progress;
mod run;
mod schema;
mod watch;

pub use check::CheckArgs;
pub use grade::GradeArgs;
pub use merge::MergeArgs;
pub use run::{RunArgs, TargetArg};
pub use watch::WatchArgs;

use crate::sandbox::{Host, IsolationRequest};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  sockgrade run specs/tcp-basics.toml fixtures/good
      grade one submission (a folder with tcp_server.py / tcp_client.py)
  sockgrade run specs/tcp-basics.toml my-homework --target server
      a student checks only the server half
  sockgrade run specs/tcp-basics.toml sub --case \"replies to a message\" --verbose
      one case, with the full transcript
  sockgrade run specs/tcp-basics.toml sub --format json > result.json
  sockgrade watch specs/tcp-basics.toml my-homework --target server
      grade again each time a file of my-homework is saved, and say what changed
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
    /// Grade one submission, then again each time one of its files changes.
    Watch(WatchArgs),
    /// Grade a whole class: a gradebook, reports, progress, resumable, shardable.
    Grade(GradeArgs),
    /// Join the outputs of `grade --shard` runs into one gradebook.
    Merge(MergeArgs),
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

/// Runs a parsed command line; returns the process exit code. The only place where an
/// error is printed and turned into an exit code.
pub fn main(cli: Cli) -> ExitCode {
    let done = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Watch(args) => watch::watch(args),
        Command::Check(args) => check::check(args),
        Command::Grade(args) => grade::grade(args),
        Command::Merge(args) => merge::merge(args),
        Command::Init { dir } => init::init(&dir),
        Command::Schema => schema::schema(),
    };
    match done {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

/// Why a command stopped before it could finish, and so its exit code.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// The spec file is missing or invalid (its message names file, line, column, key).
    #[error("{0}")]
    Spec(#[from] crate::spec::SpecErrors),
    /// A usage error: bad arguments, a machine that cannot do what was asked.
    #[error("error: {0}")]
    Usage(String),
    /// `grade` or `merge` could not do its work.
    #[error("error: {0}")]
    Bulk(#[from] crate::bulk::BulkError),
}

impl Error {
    /// Prints the error (the only place errors are printed) and returns its exit code.
    fn report(self) -> ExitCode {
        match &self {
            // Usage and spec messages may end with a line of help: never a blank line.
            Error::Spec(_) | Error::Usage(_) => {
                anstream::eprintln!("{}", self.to_string().trim_end())
            }
            Error::Bulk(_) => anstream::eprintln!("{self}"),
        }
        match &self {
            Error::Bulk(e) if e.incomplete() => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    }
}

/// A usage error from anything that displays.
fn usage(e: impl std::fmt::Display) -> Error {
    Error::Usage(e.to_string())
}

/// The host's isolation, detected once, with its notes said once on stderr: notes about
/// this machine are for whoever runs the grader; they never enter a report, which a
/// student may read and which must not depend on the machine.
fn detect_host(isolation: IsolationRequest) -> Result<Host, Error> {
    let host = Host::detect(isolation).map_err(|e| {
        usage(format!(
            "{e}\n  = help: run as root or where unprivileged user namespaces are allowed, or pass --isolation none"
        ))
    })?;
    for note in &host.notes {
        anstream::eprintln!("note: {note}");
    }
    Ok(host)
}

/// The async runtime every grading command runs on.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    crate::runner::runtime().map_err(|e| usage(format!("cannot start the async runtime: {e}")))
}
