//! `sockgrade run SPEC SUBMISSION`: grade one submission and print its report.

use super::{detect_host, runtime, usage, Error};
use crate::plan::Plan;
use crate::report::{self, Format};
use crate::sandbox::IsolationRequest;
use crate::spec::{Spec, Target};
use crate::visibility::Moment;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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

pub(super) fn run(args: RunArgs) -> Result<ExitCode, Error> {
    let spec = Spec::load(&args.spec)?;
    if !args.submission.is_dir() {
        return Err(usage(format!("the submission {} is not a folder\n  = help: pass the folder that holds the student's files", args.submission.display())));
    }
    let plan = Plan::new(&spec, &args.cases, args.target.map(Into::into)).map_err(usage)?;
    let host = detect_host(args.isolation)?;
    let runtime = runtime()?;
    let jobs = args.jobs.unwrap_or_else(crate::runner::default_jobs);
    let spec_name = args.spec.display().to_string();
    // Interpreters resolved once (past pyenv shims); the runner picks the Python 2
    // fallback for the submission when its files need it.
    let spec = crate::runner::interpreter::resolve_spec(&spec);
    let result = runtime.block_on(crate::runner::grade_submission(
        Arc::new(host),
        Arc::new(spec),
        spec_name,
        &plan,
        args.submission.clone(),
        jobs,
    ));
    let result = match args.student {
        Some(at) => crate::visibility::student_view(&result, at),
        None => result,
    };
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
    Ok(if result.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
