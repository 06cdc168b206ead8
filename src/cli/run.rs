//! `sockgrade run SPEC SUBMISSION`: grade one submission and print its report.

use super::{detect_host, runtime, usage, Error};
use crate::outcome::events::RunEvent;
use crate::plan::Plan;
use crate::report::{self, Format};
use crate::runner::Grading;
use crate::sandbox::IsolationRequest;
use crate::spec::{Spec, Target};
use crate::visibility::Moment;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The spec file (TOML).
    pub spec: PathBuf,
    /// The submission: a folder with the student's files.
    pub submission: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Run only this case (repeat for more).
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    /// Run only the cases of this side.
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// How to isolate each case: auto picks the best this machine allows.
    #[arg(long, value_enum, default_value_t = IsolationRequest::Auto)]
    pub isolation: IsolationRequest,
    /// Cases run at once (default: 32 per CPU, at most 64: cases mostly wait).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Show every case's transcript, passed ones too.
    #[arg(long, short)]
    pub verbose: bool,
    /// Show only what a student would see on Gradescope: hidden cases left out (and the
    /// total with them), failures cut to the spec's `show`. WHEN: open (default),
    /// after-due-date, published. The exit code then reflects the shown cases only.
    #[arg(long, value_enum, value_name = "WHEN", num_args = 0..=1, default_missing_value = "open", require_equals = true)]
    pub student: Option<Moment>,
    /// Write a packet capture of each case into DIR (pcap: Wireshark, `tshark -r`,
    /// `tcpdump -r`), taken in the case's own network namespace: its traffic only.
    #[arg(long, value_name = "DIR")]
    pub pcap: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TargetArg {
    Server,
    Client,
}

impl From<TargetArg> for Target {
    fn from(t: TargetArg) -> Target {
        match t {
            TargetArg::Server => Target::Server,
            TargetArg::Client => Target::Client,
        }
    }
}

pub(super) fn run(args: RunArgs) -> Result<ExitCode, Error> {
    let spec = Spec::load(&args.spec)?;
    if !args.submission.is_dir() {
        return Err(usage(format!("the submission {} is not a folder\n  = help: pass the folder that holds the student's files", args.submission.display())));
    }
    let plan = Plan::new(&spec, &args.cases, args.target.map(Into::into)).map_err(usage)?;
    let host = detect_host(args.isolation)?;
    if args.pcap.is_some() {
        pcap_possible(&host)?;
    }
    let runtime = runtime()?;
    let jobs = args.jobs.unwrap_or_else(crate::runner::default_jobs);
    let spec_name = args.spec.display().to_string();
    // Interpreters resolved once (past pyenv shims); the runner picks the Python 2
    // fallback for the submission when its files need it.
    let spec = crate::runner::interpreter::resolve_spec(&spec);
    let grading = Grading::new(Arc::new(host), Arc::new(spec), spec_name, plan, jobs);
    // On a terminal, the text report is preceded by each case's line as it finishes;
    // those lines are erased before the report, which is then what a pipe would get.
    let live = args.format == Format::Text && std::io::stdout().is_terminal();
    let result = runtime.block_on(async {
        let (tx, rx) = mpsc::unbounded_channel();
        let shown = tokio::spawn(live_lines(rx, args.student, live));
        let result = grading
            .grade(
                args.submission.clone(),
                args.submission.display().to_string(),
                Vec::new(),
                Some(tx),
                args.pcap.clone(),
            )
            .await
            .expect("these slots are never closed");
        let lines = shown.await.unwrap_or(0);
        if lines > 0 {
            // Up over the live lines, and clear from there to the end of the screen
            // (past anstream, which would strip it under NO_COLOR).
            print!("\x1b[{lines}A\x1b[J");
        }
        result
    });
    let result = match args.student {
        Some(at) => crate::visibility::student_view(&result, at),
        None => result,
    };
    let text = match args.format {
        Format::Text => report::text::render(&result, args.verbose),
        Format::Json => report::json::render(&result),
        Format::Gradescope => report::gradescope::render(&result),
        Format::Junit => report::junit::render(&result),
        Format::Html => report::submission::render(&result, None),
        Format::Github => {
            if let Err(e) = write_github_files(&result) {
                anstream::eprintln!("warning: {e}");
            }
            report::github::render(&result)
        }
    };
    anstream::print!("{text}");
    Ok(if result.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A capture is of a case's own network namespace: without one (isolation none) there
/// is nothing to capture that is the case's alone.
pub(super) fn pcap_possible(host: &crate::sandbox::Host) -> Result<(), Error> {
    if host.isolation.parallel() {
        return Ok(());
    }
    Err(usage(
        "--pcap needs a network namespace per case, and this run has none (isolation: none): \
         the host's loopback carries other programs' traffic too\n  = help: run as root, or \
         where unprivileged user namespaces are allowed (isolation netns or full), or leave \
         out --pcap",
    ))
}

/// The live reporter of a text `run` on a terminal: each case's line as it finishes
/// (only the cases a student may see, with `--student`). Returns the lines printed;
/// when not `live`, it only drains the events.
///
/// The lines are erased afterwards by moving the cursor up by their count, which is
/// right only if each takes one row and none scrolled off the top: so each is cut to the
/// terminal's width, and once the screen is nearly full the last row counts the cases
/// that finished beyond it instead.
async fn live_lines(
    mut events: mpsc::UnboundedReceiver<RunEvent>,
    student: Option<Moment>,
    live: bool,
) -> usize {
    let (cols, rows) = terminal_size().unwrap_or((80, 24));
    let mut lines = 0;
    let mut more = 0;
    while let Some(event) = events.recv().await {
        let RunEvent::CaseFinished { result, .. } = event else {
            continue;
        };
        if !live || student.is_some_and(|at| !crate::visibility::shown(result.visibility, at)) {
            continue;
        }
        if lines + 2 < rows {
            anstream::println!("{}", fit_width(&report::text::case_line(&result), cols));
            lines += 1;
        } else {
            more += 1;
            let text = format!("  … and {more} more finished");
            if more == 1 {
                anstream::println!("{}", fit_width(&text, cols));
                lines += 1;
            } else {
                // Over the last row: up one, rewrite it.
                print!("\x1b[1A\r\x1b[K");
                anstream::println!("{}", fit_width(&text, cols));
            }
        }
    }
    lines
}

/// The terminal's columns and rows (of stdout), if it is one.
fn terminal_size() -> Option<(usize, usize)> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col as usize, ws.ws_row as usize))
}

/// `line` cut to fewer than `cols` columns of the terminal (a line exactly as wide as
/// the terminal wraps on some terminals), counting wide characters as two and skipping
/// colour escapes, which take no room; a cut line ends with `…` and a colour reset.
pub(crate) fn fit_width(line: &str, cols: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let room = cols.saturating_sub(1).max(2);
    let visible: String = anstream::adapter::strip_str(line).to_string();
    let total: usize = visible.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= room {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len());
    let mut width = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // A CSI sequence (`ESC [ params final`) passes through whole: no room taken.
            out.push(c);
            let mut first = true;
            for c in chars.by_ref() {
                out.push(c);
                if !first && ('@'..='~').contains(&c) {
                    break;
                }
                first = false;
            }
            continue;
        }
        let w = c.width().unwrap_or(0);
        if width + w > room - 1 {
            break;
        }
        width += w;
        out.push(c);
    }
    out.push('…');
    out.push_str("\x1b[0m");
    out
}

/// In GitHub Actions: append the job summary to `$GITHUB_STEP_SUMMARY` and the
/// Classroom result to `$GITHUB_OUTPUT` (each only when its variable is set).
fn write_github_files(result: &crate::outcome::SubmissionResult) -> Result<(), String> {
    use std::io::Write;
    let append = |var: &str, text: String| -> Result<(), String> {
        let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                format!(
                    "cannot open ${var} ({}): {e}",
                    PathBuf::from(&path).display()
                )
            })?;
        f.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write ${var}: {e}"))
    };
    append("GITHUB_STEP_SUMMARY", report::github::summary(result))?;
    append("GITHUB_OUTPUT", report::github::classroom_output(result))
}

#[cfg(test)]
mod tests {
    use super::fit_width;

    #[test]
    fn cuts_to_the_width_skipping_colour_and_counting_wide_characters() {
        assert_eq!(fit_width("short", 80), "short");
        assert_eq!(fit_width("abcdefghij", 8), "abcdef…\x1b[0m");
        // Colour escapes take no room; 中 takes two columns.
        assert_eq!(
            fit_width("\x1b[32m✓\x1b[0m 中文字", 6),
            "\x1b[32m✓\x1b[0m 中…\x1b[0m"
        );
        assert_eq!(
            fit_width("\x1b[32m✓\x1b[0m 中文", 7),
            "\x1b[32m✓\x1b[0m 中文"
        );
    }
}
