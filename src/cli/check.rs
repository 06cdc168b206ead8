//! `sockgrade check SPEC [--against DIR]`: validate a spec and describe it; with
//! `--against`, grade reference solutions and compare with what they should score.

use super::{detect_host, runtime, usage, Error};
use crate::plan::Plan;
use crate::runner::{interpreter, Grading};
use crate::sandbox::IsolationRequest;
use crate::spec::Spec;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The spec file (TOML).
    pub spec: PathBuf,
    /// A folder with pass/<name>/ solutions that must score full marks and fail/<name>/
    /// ones that must lose points (or fail exactly the cases listed in their sockgrade-expect.txt).
    #[arg(long, value_name = "DIR")]
    pub against: Option<PathBuf>,
    /// With --against: every folder of DIR is a submission, and FILE says which cases
    /// each must fail, one `[folder]` section each (empty: full marks).
    #[arg(long, value_name = "FILE", requires = "against")]
    pub expect: Option<PathBuf>,
    /// How to isolate each case (with --against).
    #[arg(long, value_enum, default_value_t = IsolationRequest::Auto)]
    pub isolation: IsolationRequest,
    /// Cases run at once (with --against).
    #[arg(long, short)]
    pub jobs: Option<usize>,
}

pub(super) fn check(args: CheckArgs) -> Result<ExitCode, Error> {
    let spec = Spec::load(&args.spec)?;
    let plan = Plan::new(&spec, &[], None).expect("a valid spec has cases");
    let Some(dir) = args.against else {
        anstream::print!("{}", plan.describe(&spec));
        anstream::println!("\nthe spec is valid.");
        return Ok(ExitCode::SUCCESS);
    };
    let refs = match &args.expect {
        Some(file) => crate::check::discover_expect(&dir, file, &spec),
        None => crate::check::discover(&dir, &spec),
    }
    .map_err(usage)?;
    let host = detect_host(args.isolation)?;
    let runtime = runtime()?;
    let jobs = args.jobs.unwrap_or_else(crate::runner::default_jobs);
    // Graded as `run` grades: interpreters resolved once, the same runner path.
    let grading = Grading::new(
        Arc::new(host),
        Arc::new(interpreter::resolve_spec(&spec)),
        args.spec.display().to_string(),
        plan,
        jobs,
    );
    let rows = runtime.block_on(crate::check::run(&grading, refs));
    anstream::print!("{}", crate::check::table(&rows));
    Ok(if rows.iter().all(|r| r.wrong.is_none()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
