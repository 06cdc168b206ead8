//! Progress of a class run: a bar on a terminal (indicatif), one plain line per student
//! otherwise (CI logs, `| tee`), so a log stays readable and greppable.

use crate::outcome::class::Row;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub enum Progress {
    Bar(ProgressBar),
    Lines { done: u64, total: u64 },
}

impl Progress {
    /// `done` of `total` are already graded (a resumed run).
    pub fn new(done: u64, total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total).with_position(done);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} students  eta {eta}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            Progress::Bar(bar)
        } else {
            Progress::Lines { done, total }
        }
    }

    /// A student's grading started: named on the bar (plain lines say only who finished).
    pub fn started(&self, student: &str) {
        if let Progress::Bar(b) = self {
            b.set_message(format!("grading {student}"));
        }
    }

    pub fn finished(&mut self, row: &Row) {
        let line = format!("{}: {}/{} {}", row.student, row.score, row.max, row.status);
        match self {
            Progress::Bar(b) => {
                b.inc(1);
                b.set_message(line);
            }
            Progress::Lines { done, total } => {
                *done += 1;
                eprintln!("[{done}/{total}] {line}");
            }
        }
    }

    /// A message that must stay visible (not overwritten by the bar).
    pub fn say(&self, msg: &str) {
        match self {
            Progress::Bar(b) => b.println(msg),
            Progress::Lines { .. } => eprintln!("{msg}"),
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}
