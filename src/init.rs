//! `sockgrade init [DIR]`: a starter spec an instructor edits rather than writes from
//! nothing. It is the shipped seed homework (`specs/tcp-basics.toml`, embedded at build
//! time so the starter is always a spec the test suite grades with), with the spec's
//! JSON Schema written beside it so editors complete and check keys at once.

use std::path::{Path, PathBuf};

/// The seed homework's spec, comments and all.
pub const STARTER: &str = include_str!("../specs/tcp-basics.toml");
/// File names written by `init`.
pub const SPEC_FILE: &str = "sockgrade.toml";
pub const SCHEMA_FILE: &str = "spec.schema.json";

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{} already exists; sockgrade init never overwrites a file\n  = help: pass another folder (sockgrade init DIR), or move the file away", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {source}\n  = help: check that the folder is writable", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The starter spec as written: its `#:schema` line points at the schema beside it.
pub fn starter_spec() -> String {
    let mut lines = STARTER.lines();
    let first = lines.next().unwrap_or("");
    let rest: Vec<&str> = lines.collect();
    debug_assert!(
        first.starts_with("#:schema"),
        "specs/tcp-basics.toml starts with its #:schema line"
    );
    format!("#:schema ./{SCHEMA_FILE}\n{}\n", rest.join("\n"))
}

/// Writes the starter spec and the schema into `dir` (created if missing); returns the
/// files written. Checks both names first, so it writes both or nothing.
pub fn init(dir: &Path) -> Result<Vec<PathBuf>, InitError> {
    let spec = dir.join(SPEC_FILE);
    let schema = dir.join(SCHEMA_FILE);
    for p in [&spec, &schema] {
        if p.exists() {
            return Err(InitError::Exists(p.clone()));
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| InitError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for (path, text) in [
        (&spec, starter_spec()),
        (&schema, crate::spec::raw::json_schema()),
    ] {
        // create_new: a file that appeared since the check is still not overwritten.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => InitError::Exists(path.clone()),
                _ => InitError::Io {
                    path: path.clone(),
                    source,
                },
            })?;
        std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|source| InitError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(vec![spec, schema])
}
