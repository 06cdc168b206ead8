//! Grading a whole class on one machine: submissions are unpacked and started a few at a
//! time, and all their cases share one limit of cases running at once, so the machine is
//! kept busy without being oversubscribed, whatever the mix of short and long cases.
//!
//! Stopping is cooperative: closing the two semaphores (cases, submissions) means no new
//! case starts; cases already running end as usual, with their teardown killing the
//! student's processes; submissions that did not finish are not reported (and so not
//! journaled) and are graded again by `--resume`.

use super::archive::{self, Format};
use super::discover::Submission;
use super::journal::{Journal, Outcome, StudentRecord};
use crate::outcome::events::ClassEvent;
use crate::plan::Plan;
use crate::runner::{interpreter, Grading};
use crate::sandbox::Host;
use crate::spec::Spec;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// What every submission of the run shares.
pub struct Class {
    /// The host, the spec (interpreters resolved once), the plan and the case slots.
    pub grading: Grading,
    /// Submissions being unpacked or graded at once (bounds temporary disk and memory).
    pub in_flight: Arc<Semaphore>,
    /// `--pcap DIR`: each student's captures go to a folder of DIR named for them.
    pub pcap: Option<PathBuf>,
    /// Where each student's start is noted before its grading begins (see
    /// [`super::journal`]): a grader that dies is then not stopped by the same student
    /// on every `--resume`.
    pub journal: Option<Journal>,
}

impl Class {
    /// A class run on `host`, at most `jobs` cases at once for the whole class.
    pub fn new(host: Host, spec: &Spec, spec_name: String, plan: Plan, jobs: usize) -> Class {
        Class {
            in_flight: Arc::new(Semaphore::new(jobs.max(2))),
            pcap: None,
            journal: None,
            grading: Grading::new(
                Arc::new(host),
                Arc::new(interpreter::resolve_spec(spec)),
                spec_name,
                plan,
                jobs,
            ),
        }
    }

    /// No new case or submission starts; running cases finish.
    pub fn stop(&self) {
        self.grading.slots.close();
        self.in_flight.close();
    }
}

/// Grades `todo`, telling `events` as each student starts and finishes (in the order
/// they finish). The first `alone` of them are graded one at a time, before the others:
/// the grader died while grading each (with others at once, maybe), and should it die
/// again, the student it was grading is then the only one it can be blamed on.
pub async fn grade_all(
    class: Arc<Class>,
    todo: Vec<Submission>,
    alone: usize,
    events: mpsc::Sender<ClassEvent>,
) {
    let mut set = tokio::task::JoinSet::new();
    for (i, sub) in todo.into_iter().enumerate() {
        let Ok(permit) = class.in_flight.clone().acquire_owned().await else {
            break;
        };
        let (class, events) = (class.clone(), events.clone());
        set.spawn(async move {
            let _permit = permit;
            let student = sub.student.clone();
            let student_name = student.clone();
            if let Some(journal) = &class.journal {
                // Durable before the grading begins. Should it fail, the student is
                // graded all the same: its result's journal line will fail too, and
                // that error stops the run and is reported.
                let _ = journal.started(&student);
            }
            crash_if_asked("SOCKGRADE_TEST_ABORT_ON", &student);
            let _ = events
                .send(ClassEvent::StudentStarted {
                    student: student.clone(),
                })
                .await;
            let (source, class2) = (sub.source.display().to_string(), class.clone());
            // Its own task: a panic while grading one student is that student's error,
            // never the end of the class.
            let graded = tokio::spawn(async move {
                crash_if_asked("SOCKGRADE_TEST_PANIC_ON", &sub.student);
                grade_one(&class2, sub).await
            });
            let record = match graded.await {
                Ok(record) => record,
                Err(e) if e.is_panic() => Some(StudentRecord {
                    student,
                    source,
                    notes: Vec::new(),
                    outcome: Outcome::Error(format!(
                        "the grader failed while grading this submission ({}); graded as an \
                         error so the class completes",
                        panic_message(e.into_panic().as_ref())
                    )),
                }),
                Err(_) => None,
            };
            if let Some(record) = record {
                let _ = events
                    .send(ClassEvent::StudentFinished(Box::new(record)))
                    .await;
                // Graded alone: the next starts once this result is durable, so that
                // a crash on the next is never blamed on this one too.
                if let (true, Some(journal)) = (i < alone, &class.journal) {
                    journal.finished(&student_name).await;
                }
            }
        });
        if i < alone {
            while set.join_next().await.is_some() {}
        }
    }
    while set.join_next().await.is_some() {}
}

/// What a panic said, for the error result of the student it happened on.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let said = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("a panic: {said}")
}

/// Tests only (debug builds): `SOCKGRADE_TEST_ABORT_ON=<student>` aborts the grader as
/// that student's grading begins, as a stack overflow does: the real process dies, so
/// what `--resume` does after a crash is tested without a submission that crashes it.
/// `SOCKGRADE_TEST_PANIC_ON=<student>` panics in that student's grading.
fn crash_if_asked(var: &str, student: &str) {
    if cfg!(debug_assertions) && std::env::var_os(var).is_some_and(|v| v == student) {
        if var.ends_with("ABORT_ON") {
            std::process::abort();
        }
        panic!("{var}={student}");
    }
}

/// One student: unpack, then grade as every submission is graded. `None` when stopped.
pub async fn grade_one(class: &Class, sub: Submission) -> Option<StudentRecord> {
    let source = sub.source.display().to_string();
    let record = |notes: Vec<String>, outcome| {
        Some(StudentRecord {
            student: sub.student.clone(),
            source: source.clone(),
            notes,
            outcome,
        })
    };
    if let Some(problem) = &sub.problem {
        return record(Vec::new(), Outcome::Error(format!("{source} {problem}")));
    }
    let path = sub.source.clone();
    let prepared = tokio::task::spawn_blocking(move || prepare(&path))
        .await
        .ok()?;
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => return record(Vec::new(), Outcome::Error(e)),
    };
    let result = class
        .grading
        .grade(
            prepared.dir.clone(),
            source.clone(),
            prepared.notes,
            None,
            class.pcap.as_ref().map(|d| d.join(&sub.student)),
        )
        .await
        .ok()?;
    // The work copy of an archive is no longer needed; delete it off the async threads.
    if let Some(tmp) = prepared.unpacked {
        tokio::task::spawn_blocking(move || drop(tmp));
    }
    // The record keeps the notes too (for students that could not be graded, the only
    // place they are): files left out of an archive, the interpreter picked.
    record(result.notes.clone(), Outcome::Graded(Box::new(result)))
}

/// A submission unpacked, ready to grade.
struct Prepared {
    dir: PathBuf,
    /// The folder an archive was unpacked into, deleted when dropped (by a walk that
    /// survives any tree an archive holds; swept by the next grader after a `kill -9`).
    unpacked: Option<crate::sandbox::scratch::WorkFolder>,
    /// Files left out of the archive.
    notes: Vec<String>,
}

/// Unpacks an archive (also one alone in a student's folder, as Moodle exports them).
/// Blocking: run off the async threads.
fn prepare(source: &Path) -> Result<Prepared, String> {
    let mut notes = Vec::new();
    let archive = if source.is_dir() {
        lone_archive(source)?
    } else {
        Some(source.to_path_buf())
    };
    let (dir, unpacked) = match archive {
        Some(a) => {
            let format = Format::of(&a).ok_or_else(|| {
                format!(
                    "{} is neither a folder nor a .zip or .tar.gz archive",
                    a.display()
                )
            })?;
            let tmp = crate::sandbox::scratch::WorkFolder::new(false)
                .map_err(|e| format!("cannot make a folder to unpack {} into: {e}", a.display()))?;
            let u = archive::extract(&a, format, tmp.path()).map_err(|e| e.to_string())?;
            if !u.skipped.is_empty() {
                notes.push(format!(
                    "left out of {}: {}",
                    a.file_name().unwrap_or_default().to_string_lossy(),
                    u.skipped.join(", ")
                ));
            }
            (tmp.path().to_path_buf(), Some(tmp))
        }
        None => (source.to_path_buf(), None),
    };
    Ok(Prepared {
        dir,
        unpacked,
        notes,
    })
}

/// The archive that is the only thing in a student's folder, if it is.
fn lone_archive(dir: &Path) -> Result<Option<PathBuf>, String> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    match entries.as_slice() {
        [one]
            if std::fs::symlink_metadata(one).is_ok_and(|m| m.is_file())
                && Format::of(one).is_some() =>
        {
            Ok(Some(one.clone()))
        }
        _ => Ok(None),
    }
}
