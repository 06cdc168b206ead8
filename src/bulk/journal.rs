//! The journal: one JSON line per graded student, appended and fsynced as each
//! submission finishes, so that a run stopped by Ctrl-C, kill -9 or a lost machine loses
//! at most the students that were being graded.
//!
//! The first line describes the run (spec, cases, shard): `--resume` refuses a journal
//! made with another spec, and `merge` builds gradebook columns from it without needing
//! the spec. A kill can cut the last line short; reading drops such a tail (and
//! `--resume` truncates it before appending), while damage anywhere else is an error:
//! silently skipping a graded student would change the gradebook.

pub use crate::outcome::class::{CaseColumn, Outcome, RunHeader, StudentRecord};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "journal.jsonl";
/// Bumped when the line format changes incompatibly.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Run(RunHeader),
    Student(Box<StudentRecord>),
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot use the journal {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} already holds a journal of an earlier run; pass --resume to continue it, or choose another --out (or delete the folder) to start afresh")]
    Exists { path: PathBuf },
    #[error("{path} has no journal to resume; run without --resume to start")]
    Missing { path: PathBuf },
    #[error("{path}:{line}: not a journal line ({detail}); the journal is damaged: grade into a fresh --out")]
    Damaged {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error("{path} was written by a run with {what}; resume with the same spec and shard, or use a fresh --out")]
    Mismatch { path: PathBuf, what: String },
}

/// An open journal, appended to.
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Starts a new journal in `dir`; refuses to replace one.
    pub fn create(dir: &Path, header: &RunHeader) -> Result<Journal, JournalError> {
        let path = dir.join(FILE_NAME);
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let file = match OpenOptions::new().append(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(JournalError::Exists { path })
            }
            Err(e) => return Err(io(e)),
        };
        let mut j = Journal {
            file,
            path: path.clone(),
        };
        j.write(&Line::Run(header.clone())).map_err(io)?;
        Ok(j)
    }

    /// Opens the journal in `dir` to continue it: checks it was made by the same run,
    /// drops a cut-off last line, and returns the students already graded.
    pub fn resume(
        dir: &Path,
        header: &RunHeader,
    ) -> Result<(Journal, Vec<StudentRecord>), JournalError> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Err(JournalError::Missing { path });
        }
        let (old, records, good_len) = read_with_len(&path)?;
        if old.spec_hash != header.spec_hash || old.cases != header.cases {
            return Err(JournalError::Mismatch {
                path,
                what: "another spec (or another selection of cases)".into(),
            });
        }
        if old.shard != header.shard {
            return Err(JournalError::Mismatch {
                path,
                what: format!("--shard {}", old.shard.as_deref().unwrap_or("(none)")),
            });
        }
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new().write(true).open(&path).map_err(io)?;
        file.set_len(good_len).map_err(io)?;
        file.seek(io::SeekFrom::End(0)).map_err(io)?;
        Ok((
            Journal {
                file,
                path: path.clone(),
            },
            records,
        ))
    }

    /// Appends a student and makes it durable before returning.
    pub fn append(&mut self, record: &StudentRecord) -> Result<(), JournalError> {
        self.write(&Line::Student(Box::new(record.clone())))
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })
    }

    fn write(&mut self, line: &Line) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(io::Error::other)?;
        bytes.push(b'\n');
        // One write of the whole line: a kill leaves a prefix of it at worst.
        self.file.write_all(&bytes)?;
        self.file.sync_data()
    }
}

/// Reads a journal (for `merge`): its header and students.
pub fn read(path: &Path) -> Result<(RunHeader, Vec<StudentRecord>), JournalError> {
    read_with_len(path).map(|(h, r, _)| (h, r))
}

/// Also returns the length of the valid prefix (without a cut-off last line).
fn read_with_len(path: &Path) -> Result<(RunHeader, Vec<StudentRecord>, u64), JournalError> {
    let io = |source| JournalError::Io {
        path: path.into(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io)?);
    let mut header = None;
    let mut records = Vec::new();
    let mut good_len = 0u64;
    let mut buf = Vec::new();
    for n in 1.. {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf).map_err(io)?;
        if read == 0 {
            break;
        }
        let complete = buf.ends_with(b"\n");
        let line: Line = match serde_json::from_slice(&buf) {
            Ok(l) => l,
            // The line a kill interrupted: not durable, so never counted.
            Err(_) if !complete => break,
            Err(e) => {
                return Err(JournalError::Damaged {
                    path: path.into(),
                    line: n,
                    detail: e.to_string(),
                })
            }
        };
        if !complete {
            break;
        }
        good_len += read as u64;
        match (line, &header) {
            (Line::Run(h), None) => header = Some(h),
            (Line::Student(r), Some(_)) => records.push(*r),
            (Line::Run(_), Some(_)) => {
                return Err(JournalError::Damaged {
                    path: path.into(),
                    line: n,
                    detail: "a second run header".into(),
                })
            }
            (Line::Student(_), None) => {
                return Err(JournalError::Damaged {
                    path: path.into(),
                    line: n,
                    detail: "a student before the run header".into(),
                })
            }
        }
    }
    let header = header.ok_or_else(|| JournalError::Damaged {
        path: path.into(),
        line: 1,
        detail: "no run header".into(),
    })?;
    if header.version != VERSION {
        return Err(JournalError::Mismatch {
            path: path.into(),
            what: format!(
                "journal format {} (this sockgrade reads {VERSION})",
                header.version
            ),
        });
    }
    Ok((header, records, good_len))
}

/// The students of a journal one at a time, sorted by id, for reports over the whole
/// class (the HTML report) without holding every student's transcripts in memory: a first
/// pass notes where each student's line is, the iterator then reads them in order.
///
/// The journal must be complete (the run that wrote it has finished); a cut-off last line
/// is skipped as [`read`] does.
pub fn students_sorted(path: &Path) -> Result<SortedStudents, JournalError> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "type")]
        kind: String,
        student: Option<String>,
    }
    let io = |source| JournalError::Io {
        path: path.into(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut reader = BufReader::new(file);
    let mut index = Vec::new();
    let mut offset = 0u64;
    let mut buf = Vec::new();
    for n in 1.. {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf).map_err(io)?;
        if read == 0 || !buf.ends_with(b"\n") {
            break;
        }
        let peek: Peek = serde_json::from_slice(&buf).map_err(|e| JournalError::Damaged {
            path: path.into(),
            line: n,
            detail: e.to_string(),
        })?;
        if let ("student", Some(student)) = (peek.kind.as_str(), peek.student) {
            index.push((student, offset, read));
        }
        offset += read as u64;
    }
    index.sort();
    Ok(SortedStudents {
        file: reader.into_inner(),
        path: path.into(),
        index: index.into_iter(),
    })
}

/// See [`students_sorted`].
pub struct SortedStudents {
    file: File,
    path: PathBuf,
    index: std::vec::IntoIter<(String, u64, usize)>,
}

impl Iterator for SortedStudents {
    type Item = io::Result<StudentRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::io::Read;
        let (_, offset, len) = self.index.next()?;
        let mut buf = vec![0; len];
        let line = self
            .file
            .seek(io::SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut buf))
            .and_then(|_| serde_json::from_slice::<Line>(&buf).map_err(io::Error::other));
        Some(match line {
            Ok(Line::Student(r)) => Ok(*r),
            Ok(Line::Run(_)) => Err(io::Error::other(format!(
                "{}: the journal changed while the report was written",
                self.path.display()
            ))),
            Err(e) => Err(io::Error::other(format!("{}: {e}", self.path.display()))),
        })
    }
}
