//! Reports: each format reads the same [`SubmissionResult`] and writes it one way.
//! Nothing here runs anything.

pub mod json;
pub mod text;

/// Output formats of `sockgrade run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: a line per case, then what went wrong and a hint.
    Text,
    /// For programs: score, cases, reasons and transcripts.
    Json,
}
