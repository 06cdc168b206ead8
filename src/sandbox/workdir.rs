//! A throw-away copy of a submission, one per case, and finding the student's file in it.
//!
//! The original submission is never written: the program runs in the copy, and the
//! copy is deleted with the case. Only regular files and folders are copied; symlinks
//! and special files are skipped (a symlink could point anywhere on the grader's disk),
//! and the copy stops at a size cap so a 2 GB file costs the student, not the disk.

use std::io;
use std::path::{Path, PathBuf};

/// Largest submission copied for a case.
pub const MAX_COPY_BYTES: u64 = 64 << 20;

/// Deepest folder copied: a homework nests a few; a tree a build made may be a chain
/// thousands deep, whose paths outgrow `PATH_MAX` (and the report's reasons).
pub const MAX_COPY_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum WorkdirError {
    #[error("no file matches {patterns}; the submission contains: {contents}")]
    Missing { patterns: String, contents: String },
    #[error("several files match {pattern:?}: {matches}; rename the one to grade as {first:?}")]
    Ambiguous {
        pattern: String,
        matches: String,
        first: String,
    },
    #[error("the submission is larger than {} MiB", MAX_COPY_BYTES >> 20)]
    TooLarge,
    #[error("the submission nests folders more than {MAX_COPY_DEPTH} deep ({path}/…)")]
    TooDeep { path: String },
    #[error(
        "the submission has more files and folders than a case's work folder holds ({} at most)",
        super::scratch::WORK_FILES
    )]
    DoesNotFit,
    #[error("cannot copy the submission's {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Finds the student's file: the first pattern that matches wins; exact names are
/// tried as they are; a pattern matching several files is ambiguous. Looks in the
/// submission's top folder, then one level down (platform exports nest a folder).
pub fn find_file(submission: &Path, patterns: &[String]) -> Result<PathBuf, WorkdirError> {
    let mut dirs = vec![submission.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(submission) {
        let mut subs: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.path())
            .filter(|p| !is_hidden(p))
            .collect();
        subs.sort();
        dirs.extend(subs);
    }
    for dir in &dirs {
        for pattern in patterns {
            let Ok(glob) = glob::Pattern::new(pattern) else {
                continue;
            };
            let mut matches: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(rd) => rd
                    .flatten()
                    .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                    .filter(|e| glob.matches(&e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .collect(),
                Err(_) => continue,
            };
            matches.sort();
            match matches.len() {
                0 => continue,
                1 => {
                    return Ok(matches
                        .remove(0)
                        .strip_prefix(submission)
                        .map(Path::to_path_buf)
                        .unwrap_or_default())
                }
                _ => {
                    let names: Vec<String> = matches
                        .iter()
                        .map(|m| {
                            m.strip_prefix(submission)
                                .unwrap_or(m)
                                .display()
                                .to_string()
                        })
                        .collect();
                    return Err(WorkdirError::Ambiguous {
                        pattern: pattern.clone(),
                        first: patterns[0].clone(),
                        matches: names.join(", "),
                    });
                }
            }
        }
    }
    Err(WorkdirError::Missing {
        patterns: patterns.join(", "),
        contents: list_contents(submission),
    })
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .map(|n| n.to_string_lossy().starts_with('.'))
        .unwrap_or(false)
}

fn list_contents(dir: &Path) -> String {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => return format!("(unreadable: {e})"),
    };
    names.sort();
    if names.is_empty() {
        "nothing (an empty folder)".into()
    } else {
        let n = names.len();
        names.truncate(12);
        let mut s = names.join(", ");
        if n > 12 {
            s.push_str(&format!(", … ({n} entries)"));
        }
        s
    }
}

/// Copies `from` into `to` (which exists), regular files and folders only. A folder at
/// a time from an explicit list, not by recursion: the tree may be one a build made.
pub fn copy_submission(from: &Path, to: &Path) -> Result<u64, WorkdirError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| match source.raw_os_error() {
            Some(libc::ENOSPC) => WorkdirError::DoesNotFit,
            _ => WorkdirError::Io { path, source },
        }
    };
    let mut total = 0;
    let top = from;
    let mut folders = vec![(from.to_path_buf(), to.to_path_buf(), 0)];
    while let Some((from, to, depth)) = folders.pop() {
        for entry in std::fs::read_dir(&from).map_err(io(&from))? {
            let entry = entry.map_err(io(&from))?;
            let ty = entry.file_type().map_err(io(&entry.path()))?;
            let dest = to.join(entry.file_name());
            if ty.is_dir() {
                if entry.file_name() == ".git" {
                    continue;
                }
                if depth == MAX_COPY_DEPTH {
                    // Named by its first folders only: the whole path may be kilobytes.
                    let rel = from.strip_prefix(top).unwrap_or(&from);
                    let head: PathBuf = rel.components().take(3).collect();
                    return Err(WorkdirError::TooDeep {
                        path: head.display().to_string(),
                    });
                }
                std::fs::create_dir(&dest).map_err(io(&dest))?;
                folders.push((entry.path(), dest, depth + 1));
            } else if ty.is_file() {
                let len = entry.metadata().map_err(io(&entry.path()))?.len();
                total += len;
                if total > MAX_COPY_BYTES {
                    return Err(WorkdirError::TooLarge);
                }
                std::fs::copy(entry.path(), &dest).map_err(io(&dest))?;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_folders_but_not_a_chain_deeper_than_the_cap() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        let mut deep = from.path().join("src");
        for _ in 1..MAX_COPY_DEPTH {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("x.py"), "x").unwrap();
        std::fs::create_dir(from.path().join(".git")).unwrap();
        std::fs::write(from.path().join(".git/HEAD"), "ref").unwrap();
        assert_eq!(copy_submission(from.path(), to.path()).unwrap(), 1);
        assert!(to
            .path()
            .join(deep.strip_prefix(from.path()).unwrap())
            .join("x.py")
            .exists());
        assert!(!to.path().join(".git").exists());
        std::fs::create_dir(deep.join("d")).unwrap();
        let other = tempfile::tempdir().unwrap();
        let err = copy_submission(from.path(), other.path())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the submission nests folders more than 64 deep (src/d/d/…)"
        );
    }
}
