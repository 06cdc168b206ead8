//! The end of a case: the program stopped (or kept for the next case that shares it),
//! and what happened turned into a verdict, a reason and the case's result.

use super::context::{Listening, Run, Side};
use super::shared::Kept;
use super::GRACE;
use crate::outcome::{CaseResult, EventKind, Failure, Status};
use crate::sandbox::process::describe_status;
use crate::text::last_lines;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

const STDERR_LINES: usize = 8;

/// What runtimes print when a thread cannot be started (Python, Java, glibc's
/// pthread_create in C's perror): a program that died of the task limit said which.
const THREAD_REFUSED: &[&str] = &[
    "can't start new thread",
    "unable to create native thread",
    "unable to create new native thread",
];

impl Run<'_> {
    /// Ends the case: stops the program and everything it started, then builds the result.
    pub(super) async fn finish(mut self, failure: Option<Failure>) -> CaseResult {
        // A program that just reset or closed a connection is usually exiting: give
        // the exit a moment to be reaped so the report says how it ended, not "running".
        if failure.is_some() {
            self.settle_exit().await;
        } else {
            self.collect_exit().await;
        }
        let exit_before = self.proc.as_ref().and_then(|p| p.status());
        let tasks = self.tasks();
        if let Some(p) = self.proc.as_mut() {
            self.sandbox.stop(p, GRACE).await;
        }
        let exit = match (exit_before, &self.proc) {
            (Some(s), _) => Some(describe_status(s)),
            (None, Some(_)) => {
                Some("still running at the end of the case (stopped by the grader)".to_string())
            }
            (None, None) => None,
        };
        self.result(failure, exit_before, exit, tasks)
    }

    /// Ends a case that shares the server process: a process still running is kept
    /// (with the case's connections, for [`Kept::recycle`]), one that exited is cleared up.
    pub(super) async fn finish_shared(
        mut self,
        failure: Option<Failure>,
    ) -> (CaseResult, Option<Kept>) {
        if failure.is_some() {
            self.settle_exit().await;
        } else {
            self.collect_exit().await;
        }
        let exit_before = self.proc.as_ref().and_then(|p| p.status());
        let stderr = self
            .proc
            .as_ref()
            .map(|p| p.stderr.snapshot().text())
            .unwrap_or_default();
        let tasks = self.tasks();
        let keep = exit_before.is_none()
            && self.proc.is_some()
            && self.listening().is_some()
            && self.limit_hit(None, &stderr, tasks).is_none();
        if !keep {
            if let Some(p) = self.proc.as_mut() {
                self.sandbox.stop(p, GRACE).await;
            }
        }
        let exit = match (exit_before, &self.proc) {
            (Some(s), _) => Some(describe_status(s)),
            (None, Some(_)) if keep => Some(
                "still running at the end of the case (kept running for the cases that share it)"
                    .to_string(),
            ),
            (None, Some(_)) => {
                Some("still running at the end of the case (stopped by the grader)".to_string())
            }
            (None, None) => None,
        };
        let mut result = self.result(failure, exit_before, exit, tasks);
        result.shared_process = true;
        if !keep {
            return (result, None);
        }
        let (listening, started_for): (Listening, String) = match self.side {
            Side::Server(s) => (
                s.listening.expect("kept only when listening"),
                s.started_for.unwrap_or_else(|| self.case.name.clone()),
            ),
            Side::Client(_) => unreachable!("only server cases share a process"),
        };
        let kept = Kept {
            sandbox: self.sandbox,
            proc: self.proc.expect("kept only when running"),
            listening,
            started_for,
            conns: self.conns,
        };
        (result, Some(kept))
    }

    /// The program's processes and threads still alive, read before it is stopped (see
    /// [`Self::limit_hit`]); those alive when the case signalled it, if it has exited
    /// since (a thread flood that Ctrl-C ended was called processes).
    fn tasks(&self) -> (usize, usize) {
        let now = self
            .proc
            .as_ref()
            .map(|p| self.sandbox.task_counts(p))
            .unwrap_or_default();
        match self.tasks_at_signal {
            Some(before) if now.0 == 0 => before,
            _ => now,
        }
    }

    /// The case's result, once the program is stopped (or kept for the next case).
    fn result(
        &mut self,
        failure: Option<Failure>,
        exit_before: Option<ExitStatus>,
        exit: Option<String>,
        tasks: (usize, usize),
    ) -> CaseResult {
        let (stdout, stderr) = match &self.proc {
            Some(p) => (p.stdout.snapshot(), p.stderr.snapshot()),
            None => Default::default(),
        };
        // Tracebacks name the throw-away copy: show the student's own file names.
        let workdir = format!("{}/", self.sandbox.workdir.path().display());
        let clean = |s: String| s.replace(&workdir, "");
        let failure = failure.map(|f| Failure {
            got: clean(f.got),
            ..f
        });
        let mut reason = failure
            .as_ref()
            .map(|f| format!("{}: expected {}, got {}", f.action, f.expected, f.got));
        // A limit hit is the real reason, whatever step it broke.
        if let Some(limit) = self.limit_hit(exit_before, &stderr.text(), tasks) {
            reason = Some(limit);
        }
        let status = match (&reason, self.grader_error) {
            (_, true) => Status::Error,
            (Some(_), false) => Status::Failed,
            (None, false) => Status::Passed,
        };
        if stdout.truncated() || stderr.truncated() {
            self.event(EventKind::Note {
                text: format!(
                    "output kept: the first and last {} KiB of each stream",
                    self.spec.limits.output_bytes / 2048
                ),
            });
        }
        let passed = status == Status::Passed;
        // A step's own hint says more than the case's.
        let step_hint = failure
            .as_ref()
            .and_then(|f| f.step.checked_sub(1))
            .and_then(|i| self.case.steps.get(i))
            .and_then(|s| s.hint.clone());
        CaseResult {
            name: self.case.name.clone(),
            target: self.case.target,
            status,
            score: if passed { self.case.points } else { 0 },
            max_score: self.case.points,
            informational: self.case.informational,
            reason,
            failure,
            hint: if passed {
                None
            } else {
                step_hint.or_else(|| self.case.hint.clone())
            },
            exit,
            stderr_tail: last_lines(&stderr.text(), STDERR_LINES)
                .into_iter()
                .map(clean)
                .collect(),
            stdout_tail: last_lines(&stdout.text(), 4)
                .into_iter()
                .map(clean)
                .collect(),
            stdout_bytes: stdout.total,
            stderr_bytes: stderr.total,
            duration_ms: self.t0.elapsed().as_millis() as u64,
            visibility: self.case.visibility,
            show: self.case.show.clone(),
            shared_process: false,
            not_run: None,
            transcript: std::mem::take(&mut self.transcript),
        }
    }

    /// A limit the program ran into, in words, or None. `stderr` is what it printed:
    /// the kernel keeps no counter for the open-file and file-size limits, but the
    /// program's own error says it (Python ignores SIGXFSZ and raises OSError instead).
    /// `tasks`: the program's processes and threads alive before it was stopped.
    fn limit_hit(
        &self,
        exit: Option<ExitStatus>,
        stderr: &[u8],
        (processes, threads): (usize, usize),
    ) -> Option<String> {
        let limits = &self.spec.limits;
        let who = self.who();
        if self.sandbox.memory_limit_hit() {
            return Some(format!(
                "the {who} used more than {} MiB of memory (the limit) and was killed",
                limits.memory_bytes >> 20
            ));
        }
        let said = |what: &str| stderr.windows(what.len()).any(|w| w == what.as_bytes());
        if self.sandbox.process_limit_hit() {
            // The limit counts processes and threads together (`pids.max`): which the
            // program multiplied is told by what was alive (most threads beyond one
            // per process), or else by its own error (a program that died of it).
            let by_threads = if processes > 0 {
                threads - processes > processes
            } else {
                THREAD_REFUSED.iter().any(|w| said(w))
            };
            return Some(if by_threads {
                format!("the {who} started more than {} threads at once (the limit counts processes and threads); pthread_create/threading.Thread failed", limits.processes)
            } else {
                format!("the {who} tried to run more than {} processes at once (the limit); fork() was refused", limits.processes)
            });
        }
        if let Some(full) = self.sandbox.workdir.full() {
            return Some(work_folder_full(who, full));
        }
        if let Some(sig) = exit.and_then(|s| s.signal()) {
            if sig == libc::SIGXCPU {
                return Some(format!(
                    "the {who} used more than {} of CPU time (the limit) and was killed",
                    humantime::format_duration(limits.cpu_time)
                ));
            }
            if sig == libc::SIGXFSZ {
                return Some(format!(
                    "the {who} wrote a file larger than {} MiB (the limit)",
                    limits.file_size_bytes >> 20
                ));
            }
        }
        if said("[Errno 24] Too many open files") {
            return Some(format!(
                "the {who} tried to keep more than {} files and sockets open at once (the limit)",
                limits.open_files
            ));
        }
        if said("[Errno 27] File too large") {
            return Some(format!(
                "the {who} wrote a file larger than {} MiB (the limit)",
                limits.file_size_bytes >> 20
            ));
        }
        None
    }
}

/// The reason of a program that filled its (bounded) work folder.
pub(super) fn work_folder_full(who: &str, full: crate::sandbox::scratch::Full) -> String {
    format!(
        "the work folder is full: the {who} filled it to {full} (the limit of a case's work folder), and writing more failed with \"No space left on device\""
    )
}
