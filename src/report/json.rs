//! The JSON report: the whole result, transcripts included.

use crate::outcome::SubmissionResult;

pub fn render(result: &SubmissionResult) -> String {
    serde_json::to_string_pretty(result).expect("results are plain data") + "\n"
}
