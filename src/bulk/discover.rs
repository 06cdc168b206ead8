//! Finding the students in a class folder, as course platforms export it.
//!
//! Every entry of the folder is one student: a folder of files, or a .zip / .tar.gz.
//! Platforms add their own naming, which is stripped to get a student id that reads well
//! in a gradebook and hashes the same on every machine (for `--shard`):
//!
//! - Moodle: `Li Lei_123456_assignsubmission_file_/` → `Li Lei` (the files are one level
//!   deeper than expected; the file finder of the sandbox already looks one level down);
//! - Canvas: `lilei_12345_67890_tcp_server.zip` or `lilei_LATE_12345_...` → `lilei`;
//! - GitHub Classroom: a folder of repos `tcp-homework-octocat/` sharing one prefix → `octocat`.
//!
//! Nothing is read beyond names here: unpacking and file finding happen per student when
//! it is graded, so a broken entry is that student's error, never the class's.

use super::archive::Format;
use regex::Regex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// One student's submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Normalized id: the gradebook's first column and the shard key.
    pub student: String,
    /// The folder or archive as found in the class folder.
    pub source: PathBuf,
    /// What is wrong with the entry itself (it is still listed, graded as an error).
    pub problem: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot read the class folder {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not a folder; pass the folder that holds one folder or archive per student")]
    NotAFolder(PathBuf),
    #[error("{path} holds no student folder or archive (it contains: {contents}); to grade a single submission use `sockgrade run SPEC {path}`")]
    Empty { path: PathBuf, contents: String },
}

/// The students of `root`, sorted by id, plus the entries that were ignored.
pub fn discover(root: &Path) -> Result<(Vec<Submission>, Vec<String>), DiscoverError> {
    if !root.is_dir() {
        return Err(DiscoverError::NotAFolder(root.into()));
    }
    let unreadable = |source| DiscoverError::Unreadable {
        path: root.into(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(root)
        .map_err(unreadable)?
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    entries.sort_by_key(|e| e.file_name());
    let mut found = Vec::new();
    let mut ignored = Vec::new();
    let mut seen = Vec::new();
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        seen.push(name.clone());
        if name.starts_with('.') || name == "__MACOSX" {
            // Not a student (an editor's or a zip tool's leftovers), but said, so that a
            // student whose folder is named `.hidden` is not left out unseen.
            ignored.push(format!("{name} (hidden)"));
            continue;
        }
        let path = e.path();
        let ty = match e.file_type() {
            Ok(t) => t,
            Err(err) => {
                found.push(Submission {
                    student: name.clone(),
                    source: path,
                    problem: Some(format!("cannot read this entry: {err}")),
                });
                continue;
            }
        };
        if ty.is_symlink() {
            // The class folder is ours, but a link in it could point anywhere.
            found.push(Submission { student: strip_ext(&name), source: path, problem: Some("is a symbolic link; links are not followed (copy the real folder or archive here)".into()) });
        } else if ty.is_dir() || (ty.is_file() && Format::of(&path).is_some()) {
            found.push(Submission {
                student: strip_ext(&name),
                source: path,
                problem: None,
            });
        } else {
            ignored.push(name);
        }
    }
    if found.is_empty() {
        let mut contents = seen.join(", ");
        if contents.is_empty() {
            contents = "nothing".into();
        }
        return Err(DiscoverError::Empty {
            path: root.into(),
            contents,
        });
    }
    let classroom = classroom_prefix(&found);
    for s in &mut found {
        s.student = normalize(&s.student, classroom.as_deref());
    }
    dedupe(&mut found);
    found.sort_by(|a, b| a.student.cmp(&b.student));
    Ok((found, ignored))
}

fn strip_ext(name: &str) -> String {
    let lower = name.to_lowercase();
    for ext in [".tar.gz", ".tgz", ".zip"] {
        if lower.ends_with(ext) {
            return name[..name.len() - ext.len()].to_string();
        }
    }
    name.to_string()
}

static MOODLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+?)_\d+_assignsubmission_[A-Za-z]+_?.*$").expect("valid regex")
});
static CANVAS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z0-9]+)_(?:LATE_|late_)?\d+_\d+_.+$").expect("valid regex")
});

/// The Canvas user id in the name of a Canvas submission download
/// (`lilei_12345_67890_hw.zip` → `12345`): the `ID` column of Canvas's grade import.
pub fn canvas_user_id(name: &str) -> Option<String> {
    static ID: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[A-Za-z0-9]+_(?:LATE_|late_)?(\d+)_\d+_.+$").expect("valid regex")
    });
    if MOODLE.is_match(name) {
        return None;
    }
    ID.captures(name).map(|c| c[1].to_string())
}

/// The platform's decoration removed, and characters that make poor file names replaced.
fn normalize(name: &str, classroom: Option<&str>) -> String {
    let id = if let Some(c) = MOODLE.captures(name) {
        c[1].to_string()
    } else if let Some(c) = CANVAS.captures(name) {
        c[1].to_string()
    } else if let Some(rest) = classroom.and_then(|p| name.strip_prefix(p)) {
        rest.to_string()
    } else {
        name.to_string()
    };
    let id: String = id
        .trim()
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if id.is_empty() {
        name.to_string()
    } else {
        id
    }
}

/// GitHub Classroom names every repo `<assignment>-<username>`: when every student entry
/// is a git repo and all share a prefix ending in '-', that prefix is the assignment.
fn classroom_prefix(found: &[Submission]) -> Option<String> {
    if found.len() < 2 || !found.iter().all(|s| s.source.join(".git").exists()) {
        return None;
    }
    let first = &found[0].student;
    let mut len = first.len();
    for s in &found[1..] {
        len = first
            .bytes()
            .zip(s.student.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    let prefix = &first[..len];
    let cut = prefix.rfind('-')? + 1;
    // Every id must keep a non-empty username.
    found
        .iter()
        .all(|s| s.student.len() > cut)
        .then(|| first[..cut].to_string())
}

/// Two entries normalizing to the same id (`alice/` and `alice.zip`) keep their full
/// entry names instead, so no student silently replaces another.
fn dedupe(found: &mut [Submission]) {
    let mut count: HashMap<String, usize> = HashMap::new();
    for s in found.iter() {
        *count.entry(s.student.clone()).or_default() += 1;
    }
    for s in found.iter_mut() {
        if count[&s.student] > 1 {
            s.student = s
                .source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| s.student.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_names() {
        assert_eq!(
            normalize("Li Lei_123456_assignsubmission_file_", None),
            "Li Lei"
        );
        assert_eq!(normalize("lilei_12345_67890_tcp_server", None), "lilei");
        assert_eq!(normalize("lilei_LATE_12345_67890_hw", None), "lilei");
        assert_eq!(normalize("tcp-hw-octocat", Some("tcp-hw-")), "octocat");
        assert_eq!(normalize("alice", None), "alice");
        assert_eq!(strip_ext("bob.tar.gz"), "bob");
        assert_eq!(strip_ext("bob.ZIP"), "bob");
    }

    #[test]
    fn canvas_ids() {
        assert_eq!(
            canvas_user_id("lilei_12345_67890_hw.zip").as_deref(),
            Some("12345")
        );
        assert_eq!(
            canvas_user_id("lilei_LATE_12345_67890_hw.zip").as_deref(),
            Some("12345")
        );
        assert_eq!(canvas_user_id("Li Lei_123456_assignsubmission_file_"), None);
        assert_eq!(canvas_user_id("alice"), None);
    }
}
