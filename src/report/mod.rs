//! Reports: each format reads the same [`SubmissionResult`](crate::outcome::SubmissionResult)
//! and writes it one way. Every `render` is a pure function of the result: nothing here
//! runs anything, reads the clock or the environment (the CLI writes the files that CI
//! systems read, such as `$GITHUB_STEP_SUMMARY`).

pub mod changes;
pub mod github;
pub mod gradescope;
pub mod html;
pub mod json;
pub mod junit;
pub mod sequence;
pub mod submission;
pub mod summary;
pub mod text;

/// Output formats of `sockgrade run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: a line per case, then what went wrong and a hint.
    Text,
    /// For programs: score, cases, reasons and transcripts.
    Json,
    /// Gradescope's results.json (tests with visibility; failure details as the spec's `show` allows).
    Gradescope,
    /// JUnit XML: one testsuite per submission, one testcase per case.
    Junit,
    /// GitHub Actions: the text report plus `::error` annotations; writes the job summary and the Classroom result when run in Actions.
    Github,
    /// One self-contained HTML page: each case with a sequence diagram of its connection.
    Html,
}

/// Text without terminal colours, for formats read outside a terminal.
pub fn plain(s: &str) -> String {
    anstream::adapter::strip_str(s).to_string()
}
