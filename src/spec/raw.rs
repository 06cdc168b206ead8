//! The spec file exactly as TOML says it, nothing more.
//!
//! These types only mirror the file (serde, `deny_unknown_fields`, spans kept with
//! [`Spanned`]), so that a typo is reported by serde with the list of allowed keys, and
//! every value that still needs checking (durations, regexes, addresses, step order) keeps
//! the place it came from. [`super::validate`] turns them into the domain types of
//! [`super`], in which an invalid spec cannot be represented.

use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub assignment: Spanned<RawAssignment>,
    #[serde(default)]
    pub defaults: Option<Spanned<RawDefaults>>,
    #[serde(default)]
    pub limits: Option<Spanned<RawLimits>>,
    pub server: Option<Spanned<RawProgram>>,
    pub client: Option<Spanned<RawProgram>>,
    #[serde(default, rename = "case")]
    pub cases: Vec<Spanned<RawCase>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssignment {
    pub name: Spanned<String>,
    pub title: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Default deadline of a step that waits for something.
    pub within: Option<Spanned<String>>,
    /// Default deadline of a whole case.
    pub case_timeout: Option<Spanned<String>>,
    /// How long a server may take to start listening, or a client to connect.
    pub startup: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub memory: Option<Spanned<String>>,
    pub processes: Option<Spanned<u64>>,
    pub cpu_time: Option<Spanned<String>>,
    pub open_files: Option<Spanned<u64>>,
    pub output: Option<Spanned<String>>,
    pub file_size: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProgram {
    pub command: Spanned<Vec<String>>,
    /// Python 2 submissions: the command used instead when the student's file does not
    /// compile with `command`'s interpreter but compiles with this one's.
    pub fallback_command: Option<Spanned<Vec<String>>>,
    pub file: Spanned<OneOrMany>,
    /// Server only: where the server listens, when the spec wants to say it.
    pub listen: Option<Spanned<String>>,
    /// Client only: where the reference server listens for the student's client.
    pub connects_to: Option<Spanned<String>>,
    /// Extra environment variables for the student program.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCase {
    pub name: Spanned<String>,
    pub target: Spanned<String>,
    #[serde(default)]
    pub points: Option<Spanned<u32>>,
    #[serde(default)]
    pub informational: Option<Spanned<bool>>,
    pub hint: Option<String>,
    pub timeout: Option<Spanned<String>>,
    pub steps: Spanned<Vec<Spanned<RawStep>>>,
}

/// One step: exactly one action key plus optional modifiers (`within`, `conn`).
///
/// Every action is an optional field (rather than a serde enum) so that an unknown key
/// gets serde's "expected one of ..." list, and "two actions in one step" gets our own
/// message pointing at the step.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    // Connections (server targets: the grader connects; client targets: it accepts).
    pub connect: Option<Spanned<RawConnName>>,
    pub accept: Option<Spanned<RawConnName>>,
    pub expect_accepted: Option<Spanned<bool>>,
    // Data.
    pub send: Option<Spanned<RawPayload>>,
    pub expect: Option<Spanned<RawMatcher>>,
    // Closing.
    pub shutdown: Option<Spanned<String>>,
    pub close: Option<Spanned<String>>,
    pub expect_close: Option<Spanned<String>>,
    // The student's process.
    pub expect_idle: Option<Spanned<RawIdle>>,
    pub signal: Option<Spanned<String>>,
    pub expect_exit: Option<Spanned<RawExit>>,
    pub expect_port_free: Option<Spanned<bool>>,
    pub write_stdin: Option<Spanned<String>>,
    pub close_stdin: Option<Spanned<bool>>,
    pub expect_stdout: Option<Spanned<RawMatcher>>,
    pub expect_stderr: Option<Spanned<RawMatcher>>,
    // Modifiers.
    pub within: Option<Spanned<String>>,
    pub conn: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawConnName {
    Name(String),
    Table(RawConnTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnTable {
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawPayload {
    Text(String),
    Table(RawPayloadTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPayloadTable {
    pub text: Option<String>,
    pub hex: Option<String>,
    pub repeat: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatcher {
    pub any: Option<bool>,
    pub exact: Option<String>,
    pub exact_hex: Option<String>,
    pub contains: Option<String>,
    pub not_contains: Option<String>,
    pub regex: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawIdle {
    Window(String),
    Table(RawIdleTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdleTable {
    #[serde(rename = "for")]
    pub window: String,
    /// Largest share of one CPU the process may use meanwhile, 0.0..1.0.
    pub max_cpu: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExit {
    pub code: Option<i32>,
    pub signal: Option<String>,
    pub success: Option<bool>,
}
