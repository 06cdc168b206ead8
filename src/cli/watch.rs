//! `sockgrade watch SPEC DIR`: a student's loop. Grades the submission, then grades it
//! again each time one of its files changes (saved from an editor), clearing the screen
//! and saying what changed since the last run: the cases that now pass or now fail, and
//! the score's move.
//!
//! Changes are seen with `notify` (inotify on Linux), debounced so that an editor's
//! save (write to a temporary file, rename, chmod) is one change. A change made while a
//! grading runs starts one more grading right after it. The grader never writes into
//! DIR (cases run on a throw-away copy), so its own work cannot trigger a grading.

use super::run::TargetArg;
use super::{detect_host, runtime, usage, Error};
use crate::outcome::SubmissionResult;
use crate::plan::Plan;
use crate::report;
use crate::runner::Grading;
use crate::sandbox::IsolationRequest;
use crate::spec::Spec;
use notify_debouncer_mini::{new_debouncer, notify::RecursiveMode, DebounceEventResult};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Time an editor's save takes to settle (write, rename, chmod): events closer than
/// this are one change.
const DEBOUNCE: Duration = Duration::from_millis(150);

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The spec file (TOML).
    pub spec: PathBuf,
    /// The submission: the folder with your files; it is graded again when they change.
    pub submission: PathBuf,
    /// Run only this case (repeat for more).
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    /// Run only the cases of this side.
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// How to isolate each case: auto picks the best this machine allows.
    #[arg(long, value_enum, default_value_t = IsolationRequest::Auto)]
    pub isolation: IsolationRequest,
    /// Cases run at once (default: 32 per CPU, at most 64).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Show every case's transcript, passed ones too.
    #[arg(long, short)]
    pub verbose: bool,
}

pub(super) fn watch(args: WatchArgs) -> Result<ExitCode, Error> {
    let spec = Spec::load(&args.spec)?;
    if !args.submission.is_dir() {
        return Err(usage(format!(
            "the submission {} is not a folder\n  = help: pass the folder that holds your files",
            args.submission.display()
        )));
    }
    let plan = Plan::new(&spec, &args.cases, args.target.map(Into::into)).map_err(usage)?;
    let host = detect_host(args.isolation)?;
    let runtime = runtime()?;
    let jobs = args.jobs.unwrap_or_else(crate::runner::default_jobs);
    let spec = crate::runner::interpreter::resolve_spec(&spec);
    // One grading for every run: the fork server stays warm between saves.
    let grading = Grading::new(
        Arc::new(host),
        Arc::new(spec),
        args.spec.display().to_string(),
        plan,
        jobs,
    );

    let (tx, rx) = std::sync::mpsc::channel::<DebounceEventResult>();
    let mut debouncer = new_debouncer(DEBOUNCE, tx)
        .map_err(|e| usage(format!("cannot watch for file changes: {e}")))?;
    debouncer
        .watcher()
        .watch(&args.submission, RecursiveMode::Recursive)
        .map_err(|e| {
            usage(format!(
                "cannot watch {} for changes: {e}\n  = help: on Linux, raise fs.inotify.max_user_watches",
                args.submission.display()
            ))
        })?;

    // The watcher reports absolute paths: the changed files are named relative to this.
    let watched = args
        .submission
        .canonicalize()
        .unwrap_or(args.submission.clone());
    let terminal = std::io::stdout().is_terminal();
    let mut last: Option<SubmissionResult> = None;
    let mut changed: Vec<String> = Vec::new();
    loop {
        let result = runtime.block_on(grading.grade(
            args.submission.clone(),
            args.submission.display().to_string(),
            Vec::new(),
            None,
            None,
        ));
        let result = result.expect("these slots are never closed");
        let mut text = String::new();
        if terminal {
            // Clear the screen and go home: each grading replaces the last one.
            text.push_str("\x1b[2J\x1b[H");
        } else {
            text.push_str("\n──────── sockgrade watch: graded again ────────\n\n");
        }
        text.push_str(&report::text::render(&result, args.verbose));
        if let Some(before) = &last {
            text.push('\n');
            text.push_str(&report::changes::render(before, &result, &changed));
        }
        text.push_str(&format!(
            "\nwatching {} for changes (Ctrl-C to stop)\n",
            args.submission.display()
        ));
        anstream::print!("{text}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        last = Some(result);
        changed = wait_for_change(&rx, &watched)?;
    }
}

/// Blocks until a file of the submission changes; returns the changed files, relative
/// to `dir`. Changes already queued (made during the last grading) count at once.
fn wait_for_change(
    rx: &std::sync::mpsc::Receiver<DebounceEventResult>,
    dir: &Path,
) -> Result<Vec<String>, Error> {
    loop {
        let batch = rx.recv().map_err(|_| usage("the file watcher stopped"))?;
        let mut files: Vec<String> = Vec::new();
        let mut add = |batch: DebounceEventResult| match batch {
            Ok(events) => {
                for e in events {
                    // The folder itself changes with every file made or removed in it.
                    if ignored(&e.path) || e.path == dir || e.path.is_dir() {
                        continue;
                    }
                    let name = e
                        .path
                        .strip_prefix(dir)
                        .unwrap_or(&e.path)
                        .display()
                        .to_string();
                    if !files.contains(&name) {
                        files.push(name);
                    }
                }
            }
            Err(e) => anstream::eprintln!("warning: watching for changes: {e}"),
        };
        add(batch);
        while let Ok(more) = rx.try_recv() {
            add(more);
        }
        if !files.is_empty() {
            files.sort();
            return Ok(files);
        }
    }
}

/// Files whose change is not the student's edit: Python's bytecode cache, editors' swap,
/// backup and lock files, version control.
fn ignored(path: &Path) -> bool {
    path.components().any(|c| {
        let c = c.as_os_str().to_string_lossy();
        c == "__pycache__" || c == ".git"
    }) || path.file_name().is_some_and(|n| {
        let n = n.to_string_lossy();
        n.ends_with(".pyc")
            || n.ends_with('~')
            || n.ends_with(".swp")
            || n.ends_with(".swx")
            || n.starts_with(".#")
            || n == "4913" // vim's probe file
    })
}

#[cfg(test)]
mod tests {
    use super::ignored;
    use std::path::Path;

    #[test]
    fn editor_and_cache_files_are_not_changes() {
        assert!(ignored(Path::new("/s/__pycache__/x.cpython-311.pyc")));
        assert!(ignored(Path::new("/s/.tcp_server.py.swp")));
        assert!(ignored(Path::new("/s/tcp_server.py~")));
        assert!(ignored(Path::new("/s/.git/index")));
        assert!(!ignored(Path::new("/s/tcp_server.py")));
    }
}
