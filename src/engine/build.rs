//! A side's build: the spec's `build` (a compiler) run once per submission, before the
//! side's cases, in a box like a case's (a copy of the submission, a network namespace
//! of its own with nothing reachable, the cgroup, the confinement) under the build's own
//! limits, and waited for against the same fair deadline as a case's steps. What it
//! leaves in its work folder is the tree every case of the submission copies.
//!
//! A build that hangs is stopped at its time limit, one that floods output keeps only
//! its head and tail (`sandbox::capture`), a fork bomb or a memory hog meets the
//! cgroup: the build is the student's code (a compiler fed hostile input, or a build
//! script), contained as any student program is.

use super::deadline::{never, Deadline};
use super::GRACE;
use crate::outcome::{BuildResult, Status};
use crate::sandbox::process::describe_status;
use crate::sandbox::{Host, Sandbox};
use crate::spec::{Program, Spec, Target};
use crate::text::decode;
use std::path::Path;
use tokio::time::Instant;

/// Lines of a failed build's output kept for the report, from its first error on.
const OUTPUT_LINES: usize = 40;
/// Longest line kept (a flood on one line is cut).
const LINE_CHARS: usize = 300;

/// A finished build: its result, and when it built, the folder the cases copy.
pub(crate) struct Built {
    pub(crate) result: BuildResult,
    pub(crate) tree: Option<crate::sandbox::scratch::WorkFolder>,
}

/// Builds `target`'s program of the submission in `source` (the submission, or the tree
/// an earlier side's build left); `None` when that side has no build.
pub(crate) async fn build(
    host: &Host,
    spec: &Spec,
    target: Target,
    source: &Path,
    id: &str,
) -> Option<Built> {
    let program = spec.program(target)?;
    let build = program.build.as_ref()?;
    let t0 = Instant::now();
    let limits = build.limits.as_limits(&spec.limits);
    let failed = |command: Vec<String>, reason: String, output: Vec<String>| Built {
        result: BuildResult {
            target,
            command,
            status: Status::Error,
            reason: Some(reason),
            output,
            duration_ms: t0.elapsed().as_millis() as u64,
        },
        tree: None,
    };
    // Copying files and creating namespaces block: off the async threads.
    let sandbox = match tokio::task::block_in_place(|| {
        Sandbox::prepare(host, source, program, &limits, id)
    }) {
        Ok(s) => s,
        Err(e) => return Some(failed(build.command.clone(), e.to_string(), Vec::new())),
    };
    // The build is started as the program would be, with its own command, always cold.
    let builder = Program {
        command: build.command.clone(),
        warm_start: false,
        build: None,
        ..program.clone()
    };
    let argv = sandbox.argv(&builder);
    let (mut proc, _) = match sandbox.launch(host, &builder, &limits).await.result {
        Ok(p) => p,
        Err(e) => {
            let why = format!("`{}`: {e}", argv.join(" "));
            return Some(failed(argv, why, Vec::new()));
        }
    };
    // A compiler reads no input: one that asks gets an end of file, never a wait.
    proc.close_stdin();
    // The fair deadline does not charge the build for waiting for a CPU (a class
    // compiling on a busy machine); a build busy on its own (a flood, a loop) competes
    // with the grader for CPUs and would be credited without end: twice its time is
    // the most it gets.
    let quota = sandbox.cgroup.as_ref().and_then(|c| c.cpu_quota());
    let clock = super::deadline::WaitClock::new(sandbox.pids(&proc), quota);
    let mut deadline = Deadline::new(build.limits.time, clock);
    let status = tokio::time::timeout(build.limits.time * 2, deadline.race(proc.exited(), never))
        .await
        .ok()
        .flatten();
    if status.is_some() {
        proc.output_settled(GRACE).await;
    }
    // Whatever it left running (a daemon, a hung child) goes with the box.
    sandbox.stop(&mut proc, GRACE).await;
    let (stdout, stderr) = (proc.stdout.snapshot(), proc.stderr.snapshot());
    let mut text = decode(&stderr.text());
    text.push_str(&decode(&stdout.text()));
    let (first, output) = first_error_first(&text);
    let limit_hit = if sandbox.memory_limit_hit() {
        " (it ran out of memory: build_limits.memory)".to_string()
    } else if sandbox.process_limit_hit() {
        " (it reached its process limit: build_limits.processes)".to_string()
    } else if let Some(full) = sandbox.workdir.full() {
        format!(" ({})", super::verdict::work_folder_full("build", full))
    } else {
        String::new()
    };
    let reason = match status {
        Some(s) if s.success() => None,
        Some(s) => Some(format!(
            "`{}` {}{limit_hit}{}",
            argv.join(" "),
            describe_status(s),
            first.map(|l| format!(": {l}")).unwrap_or_default()
        )),
        None => Some(format!(
            "`{}` did not finish within {} (build_limits.time) and was stopped{limit_hit}{}",
            argv.join(" "),
            humantime::format_duration(build.limits.time),
            match (stdout.total + stderr.total, first) {
                (0, _) => String::new(),
                (_, Some(l)) => format!(": {l}"),
                (n, None) => format!("; it printed {n} bytes"),
            }
        )),
    };
    let duration_ms = t0.elapsed().as_millis() as u64;
    let Some(reason) = reason else {
        let Sandbox { workdir, .. } = sandbox;
        return Some(Built {
            result: BuildResult {
                target,
                command: argv,
                status: Status::Passed,
                reason: None,
                output: Vec::new(),
                duration_ms,
            },
            tree: Some(workdir),
        });
    };
    let mut built = failed(argv, reason, output);
    built.result.duration_ms = duration_ms;
    Some(built)
}

/// The first error line of a compiler's output (gcc's and javac's `file:line: error:`,
/// `fatal error:`, or else the first line that says "error"), and the output from that
/// line on, cut to [`OUTPUT_LINES`]: what a student must read first, not the warnings
/// before it. Without an error line, the output from its start.
fn first_error_first(text: &str) -> (Option<String>, Vec<String>) {
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l: String = l
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect();
            match l.char_indices().nth(LINE_CHARS) {
                Some((cut, _)) => format!("{}…", &l[..cut]),
                None => l,
            }
        })
        .collect();
    let is_error = |l: &str| l.contains("error:") || l.contains("Error:");
    let at = lines.iter().position(|l| is_error(l)).or_else(|| {
        lines
            .iter()
            .position(|l| l.to_lowercase().contains("error"))
    });
    let start = at.unwrap_or(0);
    let mut out: Vec<String> = lines[start..].iter().take(OUTPUT_LINES).cloned().collect();
    let left = lines.len() - start - out.len();
    if left > 0 {
        out.push(format!("[… {left} more lines]"));
    }
    if start > 0 {
        let s = if start == 1 { "" } else { "s" };
        out.push(format!(
            "[{start} line{s} before the first error not shown]"
        ));
    }
    let first = match at {
        Some(i) => Some(lines[i].clone()),
        None => lines.first().cloned(),
    };
    (first, out)
}

#[cfg(test)]
mod tests {
    use super::first_error_first;

    #[test]
    fn the_first_error_comes_first() {
        let gcc = "tcp_server.c: In function 'main':\n\
                   tcp_server.c:10:9: warning: unused variable 'x' [-Wunused-variable]\n\
                   tcp_server.c:27:5: error: expected ';' before 'while'\n\
                   tcp_server.c:30:1: error: expected declaration\n";
        let (first, out) = first_error_first(gcc);
        assert_eq!(
            first.as_deref(),
            Some("tcp_server.c:27:5: error: expected ';' before 'while'")
        );
        assert_eq!(
            out[0],
            "tcp_server.c:27:5: error: expected ';' before 'while'"
        );
        assert_eq!(
            out.last().unwrap(),
            "[2 lines before the first error not shown]"
        );
        let (first, out) = first_error_first("something went wrong\n");
        assert_eq!(first.as_deref(), Some("something went wrong"));
        assert_eq!(out, ["something went wrong"]);
    }
}
