//! The journal: one JSON line per graded student, appended and fsynced as each
//! submission finishes, so that a run stopped by Ctrl-C, kill -9 or a lost machine loses
//! at most the students that were being graded.
//!
//! The first line describes the run (spec, cases, shard): `--resume` refuses a journal
//! made with another spec, and `merge` builds gradebook columns from it without needing
//! the spec. A kill can cut the last line short; reading drops such a tail (and
//! `--resume` truncates it before appending), while damage anywhere else is an error:
//! silently skipping a graded student would change the gradebook.
//!
//! A student's grading is journaled when it starts too (`started`), so that a grader
//! that dies while grading someone (a stack overflow is an abort, not a panic it can
//! catch) knows on `--resume` who it was grading: such a student is graded once more,
//! and one whose grading was started twice without finishing is recorded as an error,
//! so that one submission cannot stop a class from completing. A deliberate stop
//! (Ctrl-C, SIGTERM, an output error) journals the students it interrupted (`stopped`):
//! those starts were not crashes.

pub use crate::outcome::class::{CaseColumn, Outcome, RunHeader, StudentRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const FILE_NAME: &str = "journal.jsonl";
/// Bumped when the line format changes incompatibly.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Run(RunHeader),
    Student(Box<StudentRecord>),
    /// The grading of this student began (durable before it does).
    Started {
        student: String,
    },
    /// The run stopped on purpose while grading these students: their last start was
    /// not a crash.
    Stopped {
        students: Vec<String>,
    },
}

/// Gradings started and never finished that the grader died during (it did not stop
/// on purpose): how many times, per student.
pub type Unfinished = BTreeMap<String, u32>;

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

/// An open journal, appended to; clones append to the same file (the class's
/// gradings journal their starts, the command line their results).
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Mutex<Open>>,
    path: PathBuf,
    /// Bumped when a student's result is journaled (or the run gave up journaling).
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

struct Open {
    file: File,
    /// Students started and not yet finished in this run.
    in_flight: BTreeSet<String>,
    /// A result could not be kept: no more will be.
    failed: bool,
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
        let j = Journal::over(file, path.clone());
        j.write(&Line::Run(header.clone())).map_err(io)?;
        Ok(j)
    }

    fn over(file: File, path: PathBuf) -> Journal {
        Journal {
            inner: Arc::new(Mutex::new(Open {
                file,
                in_flight: BTreeSet::new(),
                failed: false,
            })),
            path,
            changed: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// Opens the journal in `dir` to continue it: checks it was made by the same run,
    /// drops a cut-off last line, and returns the students already graded and those
    /// whose grading the grader died during.
    pub fn resume(
        dir: &Path,
        header: &RunHeader,
    ) -> Result<(Journal, Vec<StudentRecord>, Unfinished), JournalError> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Err(JournalError::Missing { path });
        }
        let Read {
            header: old,
            records,
            unfinished,
            good_len,
        } = read_with_len(&path)?;
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
        Ok((Journal::over(file, path.clone()), records, unfinished))
    }

    /// Appends a student and makes it durable before returning.
    pub fn append(&mut self, record: &StudentRecord) -> Result<(), JournalError> {
        self.write(&Line::Student(Box::new(record.clone())))
            .map_err(|source| self.err(source))?;
        self.lock().in_flight.remove(&record.student);
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// A result could not be kept (the run stops): nobody waits for one any more.
    pub fn failed(&self) {
        self.lock().failed = true;
        self.changed.send_modify(|n| *n += 1);
    }

    /// Returns once `student`'s result is durable (or the run gave up keeping results).
    pub async fn finished(&self, student: &str) {
        let mut rx = self.changed.subscribe();
        let _ = rx
            .wait_for(|_| {
                let open = self.lock();
                open.failed || !open.in_flight.contains(student)
            })
            .await;
    }

    /// Notes that `student`'s grading begins, durably: call before it does.
    pub fn started(&self, student: &str) -> Result<(), JournalError> {
        self.write(&Line::Started {
            student: student.to_string(),
        })
        .map_err(|source| self.err(source))?;
        self.lock().in_flight.insert(student.to_string());
        Ok(())
    }

    /// Notes that the run stops on purpose (Ctrl-C, SIGTERM, an error it reports): the
    /// students being graded now were interrupted, not crashed on.
    pub fn stopping(&self) -> Result<(), JournalError> {
        let students: Vec<String> = self.lock().in_flight.iter().cloned().collect();
        if students.is_empty() {
            return Ok(());
        }
        self.write(&Line::Stopped { students })
            .map_err(|source| self.err(source))?;
        self.lock().in_flight.clear();
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // A panic while holding it cannot leave a half-written line behind (one write
        // per line): the file is still good to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, source: io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn write(&self, line: &Line) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let mut open = self.lock();
        // One write of the whole line: a kill leaves a prefix of it at worst.
        open.file.write_all(&bytes)?;
        open.file.sync_data()
    }
}

/// Reads a journal (for `merge`): its header and students.
pub fn read(path: &Path) -> Result<(RunHeader, Vec<StudentRecord>), JournalError> {
    read_with_len(path).map(|r| (r.header, r.records))
}

/// A journal read whole.
struct Read {
    header: RunHeader,
    records: Vec<StudentRecord>,
    unfinished: Unfinished,
    /// The length of the valid prefix (without a cut-off last line).
    good_len: u64,
}

fn read_with_len(path: &Path) -> Result<Read, JournalError> {
    let io = |source| JournalError::Io {
        path: path.into(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io)?);
    let mut header = None;
    let mut records = Vec::new();
    let mut unfinished = Unfinished::new();
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
            (Line::Student(r), Some(_)) => {
                unfinished.remove(&r.student);
                records.push(*r)
            }
            (Line::Started { student }, Some(_)) => *unfinished.entry(student).or_default() += 1,
            (Line::Stopped { students }, Some(_)) => {
                for s in students {
                    if let Some(n) = unfinished.get_mut(&s) {
                        *n -= 1;
                        if *n == 0 {
                            unfinished.remove(&s);
                        }
                    }
                }
            }
            (Line::Run(_), Some(_)) => {
                return Err(JournalError::Damaged {
                    path: path.into(),
                    line: n,
                    detail: "a second run header".into(),
                })
            }
            (_, None) => {
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
    Ok(Read {
        header,
        records,
        unfinished,
        good_len,
    })
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
            Ok(_) => Err(io::Error::other(format!(
                "{}: the journal changed while the report was written",
                self.path.display()
            ))),
            Err(e) => Err(io::Error::other(format!("{}: {e}", self.path.display()))),
        })
    }
}
