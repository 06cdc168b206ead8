//! The test spec: what an instructor writes, as validated domain types.
//!
//! A spec file goes through two stages, as in cargo-nextest's config:
//! [`raw`] mirrors the TOML with serde (spans kept), and [`validate`] turns it into the
//! types below, collecting *every* problem as a [`SpecError`] that names file, line,
//! column, key path and what is allowed. Past that point nothing can be malformed: a
//! duration is a [`Duration`], a regex is compiled, a step that sends always has an open
//! connection to send on.

pub mod error;
pub mod extra;
mod personalize;
pub mod raw;
pub mod udp;
pub mod udp_raw;
pub mod validate;

pub use extra::{ByteCheck, ConnOpts, DataFile, FileCheck, FileSource, LengthPrefix, RandomVar};

pub use error::{SpecError, SpecErrors};
pub use raw::MustMatch;
pub use udp::{DatagramFrom, Fault, PeerName, Protocol, ProtocolPeer, SawRole, Transfer, UdpCase};

use regex::bytes::Regex;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A whole validated spec.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub title: Option<String>,
    pub defaults: Defaults,
    pub limits: Limits,
    pub server: Option<Program>,
    pub client: Option<Program>,
    /// Client targets: where the reference server listens (the student's hardcoded
    /// address usually, and the fallback when connections cannot be redirected).
    pub connects_to: SocketAddr,
    /// What of `connects_to` a student client's connect() must match.
    pub must_match: MustMatch,
    pub cases: Vec<Case>,
    /// `[random]`: values drawn per student (see [`Spec::for_student`]).
    pub random: Vec<RandomVar>,
    /// Whether [`Spec::for_student`] has drawn this spec's random values and files.
    pub personalized: bool,
}

impl Spec {
    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> Result<Spec, SpecErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SpecErrors::single(SpecError::io(path, &e)))?;
        validate::parse(path, &text)
    }

    pub fn program(&self, target: Target) -> Option<&Program> {
        match target {
            Target::Server => self.server.as_ref(),
            Target::Client => self.client.as_ref(),
        }
    }

    /// The spec with `target`'s program run by `command` instead (an interpreter
    /// resolved once, or the fallback picked for one submission). Cases are shared data,
    /// so the copy is cheap next to running them.
    pub fn with_command(&self, target: Target, command: Vec<String>) -> Spec {
        let mut spec = self.clone();
        let program = match target {
            Target::Server => spec.server.as_mut(),
            Target::Client => spec.client.as_mut(),
        };
        if let Some(p) = program {
            p.command = command;
        }
        spec
    }

    pub fn max_score(&self) -> u32 {
        self.cases.iter().map(|c| c.points).sum()
    }
}

#[derive(Debug, Clone)]
pub struct Defaults {
    pub within: Duration,
    pub case_timeout: Duration,
    pub startup: Duration,
    /// Visibility of a case that does not say (Gradescope's top-level `visibility`).
    pub visibility: Visibility,
    /// What a student may see of a failure, for cases that do not say.
    pub show: Show,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            within: Duration::from_secs(2),
            case_timeout: Duration::from_secs(20),
            startup: Duration::from_secs(5),
            visibility: Visibility::Visible,
            show: Show::default(),
        }
    }
}

/// When a student may see a case, in Gradescope's words (so a spec means the same on
/// Gradescope and in `sockgrade run --student`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Always shown.
    #[default]
    Visible,
    /// Never shown to students (instructors see it).
    Hidden,
    /// Shown once the due date (or the late due date) has passed.
    AfterDueDate,
    /// Shown once the instructor publishes the grades.
    AfterPublished,
}

impl Visibility {
    pub const ALL: [Visibility; 4] = [
        Visibility::Visible,
        Visibility::Hidden,
        Visibility::AfterDueDate,
        Visibility::AfterPublished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Visible => "visible",
            Visibility::Hidden => "hidden",
            Visibility::AfterDueDate => "after_due_date",
            Visibility::AfterPublished => "after_published",
        }
    }
}

/// One part of a failure report that a spec may show to students or withhold
/// (e.g. show what was sent but not the expected reply).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    /// Which step failed and what it did ("wait up to 2s for any non-empty data").
    Step,
    /// The bytes the grader last sent before the failure.
    Sent,
    /// What the step expected.
    Expected,
    /// What came back instead (or that nothing did).
    Got,
    /// The one-line reason when no step explains the failure (a limit, a start-up error).
    Reason,
    /// How the student's program ended (exit code, signal, still running).
    Exit,
    /// The last lines of the program's stderr (a Python traceback).
    Stderr,
    /// The last lines of the program's stdout.
    Stdout,
    /// The case's hint.
    Hint,
    /// The timestamped transcript of everything that happened.
    Transcript,
}

impl Detail {
    pub const ALL: [Detail; 10] = [
        Detail::Step,
        Detail::Sent,
        Detail::Expected,
        Detail::Got,
        Detail::Reason,
        Detail::Exit,
        Detail::Stderr,
        Detail::Stdout,
        Detail::Hint,
        Detail::Transcript,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Detail::Step => "step",
            Detail::Sent => "sent",
            Detail::Expected => "expected",
            Detail::Got => "got",
            Detail::Reason => "reason",
            Detail::Exit => "exit",
            Detail::Stderr => "stderr",
            Detail::Stdout => "stdout",
            Detail::Hint => "hint",
            Detail::Transcript => "transcript",
        }
    }

    pub fn parse(s: &str) -> Option<Detail> {
        Detail::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// The parts of a failure a student may see. Without `show` in the spec: everything
/// but the transcript (long, and the text report too shows it only with --verbose).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Show(pub std::collections::BTreeSet<Detail>);

impl Default for Show {
    fn default() -> Self {
        Show(
            Detail::ALL
                .into_iter()
                .filter(|d| *d != Detail::Transcript)
                .collect(),
        )
    }
}

impl Show {
    pub fn all() -> Show {
        Show(Detail::ALL.into_iter().collect())
    }

    pub fn has(&self, d: Detail) -> bool {
        self.0.contains(&d)
    }
}

/// Resource limits of one case's student processes (all of them together where the
/// kernel allows: a cgroup; else per process: rlimits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    pub processes: u64,
    pub cpu_time: Duration,
    pub open_files: u64,
    /// Bytes of stdout and of stderr kept for the report (head and tail); the rest is
    /// read and dropped so that a flood never blocks or bloats anything.
    pub output_bytes: u64,
    pub file_size_bytes: u64,
    /// The largest TCP send buffer a student's socket may grow to (the case's network
    /// gets `net.ipv4.tcp_wmem = "4096 16384 <this>"`), when the spec caps it.
    pub send_buffer: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            processes: 64,
            cpu_time: Duration::from_secs(10),
            open_files: 256,
            output_bytes: 64 << 10,
            file_size_bytes: 16 << 20,
            send_buffer: None,
        }
    }
}

/// How to start one side of the student's work.
#[derive(Debug, Clone)]
pub struct Program {
    /// The command; `{file}` stands for the student's file found by `files`.
    pub command: Vec<String>,
    /// Used instead of `command` for a file that `command`'s interpreter cannot compile
    /// but this one can (Python 2 code under `python3`); decided once per submission.
    pub fallback_command: Option<Vec<String>>,
    /// File names or glob patterns, first match wins.
    pub files: Vec<String>,
    /// Server only: where it listens, if the spec says so (else it is discovered).
    pub listen: Option<SocketAddr>,
    pub env: BTreeMap<String, String>,
    /// Server only: the spec's `share_process` (each case's [`Case::share_process`] says
    /// whether it does).
    pub share_process: bool,
    /// Whether a Python 3 command may start from a fork server ([`crate::sandbox::warm`]).
    pub warm_start: bool,
    /// TCP (listen/accept, connect) or UDP (bind, sendto/recvfrom).
    pub protocol: Protocol,
    /// Run once per submission before the side's cases (a compiler), if any.
    pub build: Option<Build>,
}

/// A side's build step: `command` (with `{file}` and `{stem}` as in a program's command)
/// run once per submission, in a case sandbox with the network off, under `limits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub command: Vec<String>,
    pub limits: BuildLimits,
}

/// A build's own limits: all its processes together, as a case's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLimits {
    /// Wall-clock time (a hang is stopped there); its CPU time is bounded by twice that.
    pub time: Duration,
    pub memory_bytes: u64,
    pub processes: u64,
    pub output_bytes: u64,
}

impl Default for BuildLimits {
    /// A compiler's needs: javac starts ~30 threads and takes a few hundred MiB; gcc
    /// takes less than a second for a homework file. A minute bounds a hang.
    fn default() -> Self {
        BuildLimits {
            time: Duration::from_secs(60),
            memory_bytes: 1 << 30,
            processes: 64,
            output_bytes: 64 << 10,
        }
    }
}

impl BuildLimits {
    /// The limits a build's processes start with. Open files and file size are the
    /// case's, raised to what a compiler needs (its temporary files, an object file).
    pub fn as_limits(&self, case: &Limits) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes,
            processes: self.processes,
            // Twice the wall time: a compiler's threads (javac) use more CPU than wall
            // time, and a CPU limit equal to the wall limit would race it, so a hang
            // would be reported one way or the other by chance.
            cpu_time: self.time * 2,
            open_files: case.open_files.max(256),
            output_bytes: self.output_bytes,
            file_size_bytes: case.file_size_bytes.max(64 << 20),
            send_buffer: None,
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The student's server: the grader connects to it.
    Server,
    /// The student's client: it connects to the grader's reference server.
    Client,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Server => "server",
            Target::Client => "client",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub target: Target,
    pub points: u32,
    /// Reported apart and never scored (e.g. "serves two clients at once").
    pub informational: bool,
    pub hint: Option<String>,
    pub timeout: Duration,
    /// When a student may see this case (Gradescope's `visibility`).
    pub visibility: Visibility,
    /// What a student may see of a failure of this case.
    pub show: Show,
    /// Runs on a server process shared with the other cases that do (started once),
    /// instead of one of its own: `share_process` / `fresh_process`, for server cases
    /// whose steps leave the process running.
    pub share_process: bool,
    pub steps: Vec<Step>,
    /// UDP cases: faults the reference plays, and a built-in protocol peer.
    pub udp: UdpCase,
    /// Arguments appended to the program's command for this case.
    pub args: Vec<String>,
    /// Environment variables for this case (over the program's).
    pub env: BTreeMap<String, String>,
    /// What the program reads on stdin, written as it starts (stdin then stays open).
    pub stdin: Option<Vec<u8>>,
    /// Files written into the program's folder before it starts: the spec's `[files]`,
    /// the program's and the case's own, later ones winning.
    pub files: Vec<DataFile>,
}

impl Case {
    /// The first step that ends or signals the program, which a shared process cannot
    /// allow (the next case needs it running), if any.
    pub fn ends_process(&self) -> Option<&Step> {
        ends_process(&self.steps)
    }
}

/// The first of `steps` that ends or signals the program, if any.
pub fn ends_process(steps: &[Step]) -> Option<&Step> {
    steps.iter().find(|s| {
        matches!(
            s.action,
            Action::Signal { .. } | Action::ExpectExit(_) | Action::ExpectPortFree
        )
    })
}

#[derive(Debug, Clone)]
pub struct Step {
    pub action: Action,
    /// Deadline of a step that waits; ignored by steps that do not wait.
    pub within: Duration,
    /// 1-based line of the step in the spec, to point the reader at it.
    pub line: usize,
    /// Shown instead of the case's hint when this step fails.
    pub hint: Option<String>,
    /// What a student reads instead of the matcher (a regex, hex) in "expected".
    pub label: Option<String>,
    /// With `clients = N`: the client (1..N) this step belongs to; 0 otherwise.
    pub client: u32,
}

/// A connection's name inside one case ("main" unless the spec names it).
pub type ConnName = String;

#[derive(Debug, Clone)]
pub enum Action {
    /// Server targets: the reference client connects to the student's server.
    Connect {
        conn: ConnName,
        opts: ConnOpts,
    },
    /// Client targets: the reference server accepts the student's connection.
    Accept {
        conn: ConnName,
        opts: ConnOpts,
    },
    /// Server targets: the student's server has called accept() on every connection made so far.
    ExpectAccepted,
    Send {
        conn: ConnName,
        bytes: Vec<u8>,
    },
    Expect {
        conn: ConnName,
        matcher: Matcher,
    },
    /// Half-close: `shutdown(SHUT_WR)`, we keep reading.
    Shutdown {
        conn: ConnName,
    },
    Close {
        conn: ConnName,
        kind: CloseKind,
    },
    ExpectClose {
        conn: ConnName,
        kind: ExpectedClose,
    },
    ExpectIdle {
        window: Duration,
        max_cpu: f64,
    },
    Signal {
        signal: Signal,
    },
    ExpectExit(ExitExpectation),
    ExpectPortFree,
    WriteStdin {
        bytes: Vec<u8>,
    },
    CloseStdin,
    ExpectOutput {
        stream: Stream,
        matcher: Matcher,
    },
    /// UDP: one datagram from the reference socket `peer`.
    SendDatagram {
        peer: PeerName,
        bytes: Vec<u8>,
    },
    /// UDP: the next datagram `peer` receives matches, as a whole.
    ExpectDatagram {
        peer: PeerName,
        matcher: Matcher,
        from: DatagramFrom,
    },
    /// UDP: `peer` receives nothing for `window`.
    ExpectNoDatagram {
        peer: PeerName,
        window: Duration,
    },
    /// UDP: the case's built-in protocol peer finishes its transfer.
    ExpectTransfer(Transfer),
    /// One message as several writes with a delay between them.
    SendPieces {
        conn: ConnName,
        pieces: Vec<Vec<u8>>,
        delay: Duration,
    },
    /// A file of the case's `files`, optionally after its length, optionally in pieces.
    SendFile {
        conn: ConnName,
        file: String,
        length_prefix: Option<LengthPrefix>,
        piece_size: Option<usize>,
        delay: Duration,
    },
    /// Nothing arrives and the connection stays open for `window`.
    ExpectNothing {
        conn: ConnName,
        window: Duration,
    },
    /// No FIN or RST for `window` (data may arrive: it is kept for the next expect).
    ExpectOpen {
        conn: ConnName,
        window: Duration,
    },
    /// The reference does nothing for `window`.
    Pause {
        window: Duration,
    },
    /// Counts and hashes what arrives without keeping it.
    ExpectBytes {
        conn: ConnName,
        check: ByteCheck,
    },
    /// A file the program wrote in its folder.
    ExpectFile {
        path: String,
        check: FileCheck,
    },
    /// Server targets: every connection so far is accepted and the server is back
    /// asleep waiting for the next one (every thread idle, one in accept/select/poll).
    ExpectWaiting,
}

impl Action {
    /// Whether the step waits for something (and so has a deadline).
    pub fn waits(&self) -> bool {
        matches!(
            self,
            Action::Connect { .. }
                | Action::Accept { .. }
                | Action::ExpectAccepted
                | Action::Expect { .. }
                | Action::ExpectClose { .. }
                | Action::ExpectExit(_)
                | Action::ExpectOutput { .. }
                | Action::ExpectDatagram { .. }
                | Action::ExpectTransfer(_)
                | Action::ExpectBytes { .. }
                | Action::ExpectWaiting
        )
    }

    /// Whether the step delivers something to the program (a connection, data, a close,
    /// a signal, input): the grader first waits until the program waits for it.
    pub fn delivers(&self) -> bool {
        matches!(
            self,
            Action::Connect { .. }
                | Action::Send { .. }
                | Action::SendPieces { .. }
                | Action::SendFile { .. }
                | Action::Shutdown { .. }
                | Action::Close { .. }
                | Action::Signal { .. }
                | Action::WriteStdin { .. }
                | Action::CloseStdin
                | Action::ExpectBytes { .. }
                | Action::ExpectWaiting
        )
    }

    /// The connection the step acts on, if any.
    pub fn conn(&self) -> Option<&ConnName> {
        match self {
            Action::Connect { conn, .. }
            | Action::Accept { conn, .. }
            | Action::Send { conn, .. }
            | Action::Expect { conn, .. }
            | Action::Shutdown { conn }
            | Action::Close { conn, .. }
            | Action::ExpectClose { conn, .. }
            | Action::SendPieces { conn, .. }
            | Action::SendFile { conn, .. }
            | Action::ExpectNothing { conn, .. }
            | Action::ExpectOpen { conn, .. }
            | Action::ExpectBytes { conn, .. } => Some(conn),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// How the grader itself closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// close(): FIN.
    Fin,
    /// SO_LINGER 0 then close(): RST, an abortive close.
    Rst,
}

/// How the student's side is expected to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedClose {
    Fin,
    Rst,
    Any,
}

impl ExpectedClose {
    pub fn describe(self) -> &'static str {
        match self {
            ExpectedClose::Fin => "an orderly close (FIN: recv() returns b'')",
            ExpectedClose::Rst => "a reset (RST)",
            ExpectedClose::Any => "the connection to close (FIN or RST)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub nix::sys::signal::Signal);

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitExpectation {
    /// Exits at all, however.
    Any,
    Code(i32),
    Success,
    Signal(Signal),
}

impl fmt::Display for ExitExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitExpectation::Any => f.write_str("the program to exit"),
            ExitExpectation::Code(c) => write!(f, "the program to exit with code {c}"),
            ExitExpectation::Success => f.write_str("the program to exit with code 0"),
            ExitExpectation::Signal(s) => write!(f, "the program to be ended by {s}"),
        }
    }
}

/// What received bytes (or output) must look like. All matchers are applied to
/// everything received so far and not yet consumed, so a reply split over many
/// segments, or glued to the next one, matches the same.
#[derive(Debug, Clone)]
pub enum Matcher {
    Any,
    Exact(Vec<u8>),
    Contains(Vec<u8>),
    NotContains(Vec<u8>),
    Regex(Regex),
}

impl Matcher {
    /// Where the match ends in `buf` (the bytes it consumes), if it matches.
    pub fn find(&self, buf: &[u8]) -> Option<usize> {
        match self {
            Matcher::Any => (!buf.is_empty()).then_some(buf.len()),
            Matcher::Exact(want) => {
                (buf.len() >= want.len() && buf.starts_with(want)).then_some(want.len())
            }
            Matcher::Contains(want) => find_bytes(buf, want).map(|at| at + want.len()),
            // Judged only when the wait is over: see `is_negative`.
            Matcher::NotContains(want) => find_bytes(buf, want).is_none().then_some(buf.len()),
            Matcher::Regex(re) => re.find(buf).map(|m| m.end()),
        }
    }

    /// An exact match can no longer succeed once the buffer diverges from it.
    pub fn impossible(&self, buf: &[u8]) -> bool {
        match self {
            Matcher::Exact(want) => {
                let n = buf.len().min(want.len());
                buf[..n] != want[..n]
            }
            _ => false,
        }
    }

    /// `not_contains` passes when the deadline comes without the text: it waits the
    /// whole window instead of returning at the first match.
    pub fn is_negative(&self) -> bool {
        matches!(self, Matcher::NotContains(_))
    }

    pub fn describe(&self) -> String {
        match self {
            Matcher::Any => "any non-empty data".into(),
            Matcher::Exact(b) => format!("exactly {}", crate::text::quote(b)),
            Matcher::Contains(b) => format!("data containing {}", crate::text::quote(b)),
            Matcher::NotContains(b) => format!("no {}", crate::text::quote(b)),
            // A reason is one line: a newline or tab written into the pattern as such
            // (TOML's "\n") is shown as its escape.
            Matcher::Regex(re) => format!(
                "data matching /{}/",
                re.as_str()
                    .replace('\n', "\\n")
                    .replace('\r', "\\r")
                    .replace('\t', "\\t")
            ),
        }
    }
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Step {
    /// The step in words, for reports: what the grader did or waited for.
    pub fn describe(&self, target: Target) -> String {
        let within = humantime::format_duration(self.within);
        let who = target.as_str();
        match &self.action {
            Action::Connect { conn, .. } => format!("connect to the server (connection {conn:?})"),
            Action::Accept { conn, .. } => {
                format!("wait up to {within} for the client to connect (connection {conn:?})")
            }
            Action::ExpectAccepted => {
                format!("check within {within} that the server accept()ed every connection")
            }
            Action::Send { conn, bytes } => {
                format!("send {} on {conn:?}", crate::text::quote(bytes))
            }
            Action::Expect { conn, matcher } => {
                let what = self.label.clone().unwrap_or_else(|| matcher.describe());
                format!("wait up to {within} for {what} on {conn:?}")
            }
            Action::Shutdown { conn } => {
                format!("half-close {conn:?} (shutdown SHUT_WR: the {who}'s recv() returns b'')")
            }
            Action::Close {
                conn,
                kind: CloseKind::Fin,
            } => format!("close {conn:?} (FIN)"),
            Action::Close {
                conn,
                kind: CloseKind::Rst,
            } => format!("reset {conn:?} (abortive close: RST)"),
            Action::ExpectClose { conn, kind } => format!(
                "wait up to {within} for the {who} to close {conn:?}: {}",
                kind.describe()
            ),
            Action::ExpectIdle { window, .. } => format!(
                "watch the {who}'s CPU use for {}",
                humantime::format_duration(*window)
            ),
            Action::Signal { signal } if signal.0 == nix::sys::signal::Signal::SIGINT => {
                "press Ctrl-C (SIGINT to the process group)".into()
            }
            Action::Signal { signal } => format!("send {signal} to the {who}"),
            Action::ExpectExit(e) => format!("wait up to {within} for {e}"),
            Action::ExpectPortFree => "check that the port can be bound again".into(),
            Action::WriteStdin { bytes } => format!("type {} on stdin", crate::text::quote(bytes)),
            Action::CloseStdin => "close stdin (Ctrl-D: input() raises EOFError)".into(),
            Action::ExpectOutput { stream, matcher } => format!(
                "wait up to {within} for {} on {}",
                self.label
                    .clone()
                    .unwrap_or_else(|| matcher.describe().replacen("data", "output", 1)),
                stream.as_str()
            ),
            Action::SendDatagram { peer, bytes } => udp::describe_send(peer, bytes),
            Action::ExpectDatagram {
                peer,
                matcher,
                from,
            } => udp::describe_expect(peer, matcher, *from, &within.to_string()),
            Action::ExpectNoDatagram { peer, window } => udp::describe_no_datagram(peer, *window),
            Action::ExpectTransfer(t) => udp::describe_transfer(t, &within.to_string()),
            other => extra::describe(other, &within.to_string(), who),
        }
    }
}
