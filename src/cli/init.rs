//! `sockgrade init [DIR]`: write the starter spec and its schema, and say what next.

use super::{usage, Error};
use std::path::Path;
use std::process::ExitCode;

pub(super) fn init(dir: &Path) -> Result<ExitCode, Error> {
    let files = crate::init::init(dir).map_err(usage)?;
    for f in &files {
        anstream::println!("wrote {}", f.display());
    }
    anstream::println!(
        "\nnext: edit {0}, then `sockgrade check {0}`",
        files[0].display()
    );
    Ok(ExitCode::SUCCESS)
}
