//! `sockgrade merge DIR...`: join the outputs of sharded `grade` runs.

use super::Error;
use crate::bulk::DEFAULT_OUT;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Output folders of `sockgrade grade --shard` (or their journal.jsonl files).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged gradebook, reports and journal go.
    #[arg(long, default_value = DEFAULT_OUT)]
    pub out: PathBuf,
}

pub(super) fn merge(args: MergeArgs) -> Result<ExitCode, Error> {
    let merged = crate::bulk::merge(&args.dirs, &args.out)?;
    super::grade::print_outputs(&args.out, merged.outputs)?;
    if let Some(m) = merged.missing {
        anstream::eprintln!("warning: {m}: their students are not in the gradebook");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
