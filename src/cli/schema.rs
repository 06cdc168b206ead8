//! `sockgrade schema`: the JSON Schema of spec files, for editors.

use super::Error;
use std::process::ExitCode;

pub(super) fn schema() -> Result<ExitCode, Error> {
    print!("{}", crate::spec::raw::json_schema());
    Ok(ExitCode::SUCCESS)
}
