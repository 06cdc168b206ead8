//! The spec file exactly as TOML says it, nothing more.
//!
//! These types only mirror the file (serde, `deny_unknown_fields`, spans kept with
//! [`Spanned`]), so that a typo is reported by serde with the list of allowed keys, and
//! every value that still needs checking (durations, regexes, addresses, step order) keeps
//! the place it came from. [`super::validate`] turns them into the domain types of
//! [`super`], in which an invalid spec cannot be represented.
//!
//! The same types generate the spec's JSON Schema (`schema/spec.schema.json`, printed by
//! `sockgrade schema`), so editors complete and check exactly the keys serde accepts.
//! `Spanned` has no schema of its own: every spanned field says what it holds with
//! `#[schemars(with = ...)]`, and the doc comments become the schema's descriptions
//! (shown by editors on hover), so write them for instructors.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;

/// A sockgrade spec: how to run one socket assignment and the cases that grade it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sockgrade spec")]
pub struct RawSpec {
    /// The assignment this spec grades.
    #[schemars(with = "RawAssignment")]
    pub assignment: Spanned<RawAssignment>,
    /// Defaults for every case: deadlines, visibility, what students may see.
    #[serde(default)]
    #[schemars(with = "Option<RawDefaults>")]
    pub defaults: Option<Spanned<RawDefaults>>,
    /// Resource limits of the student's programs, per case.
    #[serde(default)]
    #[schemars(with = "Option<RawLimits>")]
    pub limits: Option<Spanned<RawLimits>>,
    /// How to start the student's server (needed by cases with target = "server").
    #[schemars(with = "Option<RawProgram>")]
    pub server: Option<Spanned<RawProgram>>,
    /// How to start the student's client (needed by cases with target = "client").
    #[schemars(with = "Option<RawProgram>")]
    pub client: Option<Spanned<RawProgram>>,
    /// The cases, graded in this order: write each as a [[case]] table.
    #[serde(default, rename = "case")]
    #[schemars(with = "Vec<RawCase>")]
    pub cases: Vec<Spanned<RawCase>>,
    /// Files written into the program's folder before every case, by path relative to
    /// it: { text }, { hex }, { from = "data/x.png" } (beside the spec) or
    /// { random_bytes = "1MiB" } (drawn per student, like [random]).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawDataFile>")]
    pub files: BTreeMap<String, Spanned<RawDataFile>>,
    /// Values drawn per student (seeded by the submission's name and the spec's): the
    /// same in every run for one student, different between students. `{name}` in a
    /// step is the value; `{name|upper}`, `{name|lower}`, `{name|len}`, `{name|hex}`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawRandom>")]
    pub random: BTreeMap<String, Spanned<RawRandom>>,
}

/// A data file: exactly one of `text`, `hex`, `from`, `random_bytes`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDataFile {
    pub text: Option<String>,
    /// Bytes as pairs of hex digits, spaces allowed.
    pub hex: Option<String>,
    /// A file beside the spec (relative to the spec's folder).
    pub from: Option<String>,
    /// Random bytes of this size, e.g. "1MiB", drawn per student.
    pub random_bytes: Option<String>,
}

/// A random value: `length` characters from `letters`, after `prefix`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRandom {
    pub letters: String,
    pub length: u32,
    pub prefix: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAssignment {
    /// Short name, used in reports and gradebooks, e.g. "tcp-basics".
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// A longer title for people.
    pub title: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Default deadline of a step that waits for something, e.g. "2s".
    #[schemars(with = "Option<String>")]
    pub within: Option<Spanned<String>>,
    /// Default deadline of a whole case, e.g. "20s".
    #[schemars(with = "Option<String>")]
    pub case_timeout: Option<Spanned<String>>,
    /// How long a server may take to start listening, or a client to connect, e.g. "5s".
    #[schemars(with = "Option<String>")]
    pub startup: Option<Spanned<String>>,
    /// When students may see a case that does not say (Gradescope's words). Default "visible".
    #[schemars(with = "Option<super::Visibility>")]
    pub visibility: Option<Spanned<String>>,
    /// What students may see of a failure, for cases that do not say. Default: everything but the transcript.
    #[schemars(with = "Option<Vec<super::Detail>>")]
    pub show: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Memory of all the student's processes together, e.g. "256MiB".
    #[schemars(with = "Option<String>")]
    pub memory: Option<Spanned<String>>,
    /// Processes and threads the program may start.
    #[schemars(with = "Option<u64>")]
    pub processes: Option<Spanned<u64>>,
    /// CPU time of the whole case, e.g. "10s".
    #[schemars(with = "Option<String>")]
    pub cpu_time: Option<Spanned<String>>,
    /// Open files per process (at least 8).
    #[schemars(with = "Option<u64>")]
    pub open_files: Option<Spanned<u64>>,
    /// Output kept per stream for the report, e.g. "64KiB"; the rest is read and dropped.
    #[schemars(with = "Option<String>")]
    pub output: Option<Spanned<String>>,
    /// Largest file the program may write, e.g. "16MiB".
    #[schemars(with = "Option<String>")]
    pub file_size: Option<Spanned<String>>,
    /// The largest TCP send buffer the program's sockets may grow to, e.g. "64KiB" (the
    /// case's network gets net.ipv4.tcp_wmem = "4096 16384 <this>"): with it a send()
    /// on a socket with a timeout returns short for large data, as it would on a slow
    /// network, so send() instead of sendall() shows at 1 MiB.
    #[schemars(with = "Option<String>")]
    pub send_buffer: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProgram {
    /// The command; "{file}" stands for the student's file, e.g. ["python3", "{file}"].
    #[schemars(with = "Vec<String>")]
    pub command: Spanned<Vec<String>>,
    /// Python 2 submissions: the command used instead when the student's file does not
    /// compile with `command`'s interpreter but compiles with this one's.
    #[schemars(with = "Option<Vec<String>>")]
    pub fallback_command: Option<Spanned<Vec<String>>>,
    /// The student's file: a name or glob pattern, or a list of them (first match wins).
    #[schemars(with = "OneOrMany")]
    pub file: Spanned<OneOrMany>,
    /// Server only: where the server listens, when the spec wants to say it (else it is discovered).
    #[schemars(with = "Option<String>")]
    pub listen: Option<Spanned<String>>,
    /// Client only: where the reference server listens for the student's client, e.g. "127.0.0.1:8888".
    #[schemars(with = "Option<String>")]
    pub connects_to: Option<Spanned<String>>,
    /// Extra environment variables for the student program.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Server only: run the server cases one after another against one started server
    /// (start it once, fresh connections per case), where the assignment allows it: a
    /// server that serves client after client. Cases that signal the server or wait for
    /// its exit still get a process of their own, as does a case with `fresh_process = true`.
    /// Reports say which cases shared a process.
    #[schemars(with = "Option<bool>")]
    pub share_process: Option<Spanned<bool>>,
    /// Python 3 programs (`command` = [python3, "{file}", ...]) are forked from an
    /// interpreter that has already started (a fork server), in the same sandbox, instead
    /// of starting python3 afresh for every case: start-up is most of what grading costs.
    /// Default true; false starts every process cold.
    #[schemars(with = "Option<bool>")]
    pub warm_start: Option<Spanned<bool>>,
    /// Files written beside the program before every case (as [files]).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawDataFile>")]
    pub files: BTreeMap<String, Spanned<RawDataFile>>,
    /// "tcp" (default) or "udp": a UDP server only binds (the grader finds its bound
    /// socket, on any port); a UDP client's datagrams reach the reference peer whatever
    /// address it sends to.
    #[schemars(with = "Option<super::udp_raw::RawProtocol>")]
    pub protocol: Option<Spanned<String>>,
    /// Client only: what of `connects_to` the student's connect() must match. "port"
    /// (the default): any address at that port (a classroom machine's IP works);
    /// "address_and_port": exactly `connects_to`; "nothing": any address and port (the
    /// grader takes every connection, which needs Debian's nftables where it runs).
    #[schemars(with = "Option<MustMatch>")]
    pub must_match: Option<Spanned<MustMatch>>,
    /// Builds the program once per submission, before any case: a command run in the
    /// case sandbox with the network off, e.g. ["gcc", "-O2", "-Wall", "-o", "server", "{file}"]
    /// or ["javac", "{file}"]. The files it makes are in every case's work folder. A failed
    /// build is one result for the side, and its cases do not run.
    #[schemars(with = "Option<Vec<String>>")]
    pub build: Option<Spanned<Vec<String>>>,
    /// The build's own limits (the case limits of [limits] apply to the built program).
    #[schemars(with = "Option<RawBuildLimits>")]
    pub build_limits: Option<Spanned<RawBuildLimits>>,
}

/// Limits of a build (`build_limits`): all of its processes together.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBuildLimits {
    /// How long the build may take, e.g. "60s" (default "60s"); its CPU time by twice that.
    #[schemars(with = "Option<String>")]
    pub time: Option<Spanned<String>>,
    /// Memory of the build's processes together, e.g. "1GiB" (default "1GiB").
    #[schemars(with = "Option<String>")]
    pub memory: Option<Spanned<String>>,
    /// Processes and threads the build may start (default 64).
    #[schemars(with = "Option<u64>")]
    pub processes: Option<Spanned<u64>>,
    /// Output of the build kept per stream for the report, e.g. "64KiB" (default "64KiB").
    #[schemars(with = "Option<String>")]
    pub output: Option<Spanned<String>>,
}

/// What of `connects_to` a student client's connect() must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MustMatch {
    /// Any address, the spec's port.
    #[default]
    Port,
    /// The spec's address and port.
    AddressAndPort,
    /// Any address and any port.
    Nothing,
}

#[derive(Debug, Deserialize, JsonSchema)]
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

/// One case: a named, scored scenario played against one side of the student's work.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCase {
    /// Unique name; reports and gradebooks use it as a key.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Which program the case grades.
    #[schemars(with = "super::Target")]
    pub target: Spanned<String>,
    /// Points for passing (default 1).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub points: Option<Spanned<u32>>,
    /// Reported apart and never scored.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub informational: Option<Spanned<bool>>,
    /// Shown to the student when the case fails.
    pub hint: Option<String>,
    /// Deadline of the whole case, e.g. "20s" (default: defaults.case_timeout).
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// When students may see this case (Gradescope's words; default: defaults.visibility).
    #[schemars(with = "Option<super::Visibility>")]
    pub visibility: Option<Spanned<String>>,
    /// What students may see of a failure, e.g. ["step", "sent", "hint"] (default: defaults.show).
    #[schemars(with = "Option<Vec<super::Detail>>")]
    pub show: Option<Spanned<Vec<Spanned<String>>>>,
    /// Server cases: true runs this case on a server process of its own even when
    /// [server] share_process = true; false makes it share one (it must not signal the
    /// server or wait for its exit).
    #[schemars(with = "Option<bool>")]
    pub fresh_process: Option<Spanned<bool>>,
    /// UDP cases: faults the reference side plays, e.g. [{ drop = 2 }] (the student's
    /// 2nd datagram is lost).
    #[schemars(with = "Option<Vec<super::udp_raw::RawFault>>")]
    pub faults: Option<Spanned<Vec<super::udp_raw::RawFault>>>,
    /// UDP cases: a built-in reference peer playing a protocol instead of a step list,
    /// e.g. { protocol = "stop-and-wait", role = "sender", file = "data.bin", rto = "300ms" }.
    #[schemars(with = "Option<super::udp_raw::RawProtocolPeer>")]
    pub peer: Option<Spanned<super::udp_raw::RawProtocolPeer>>,
    /// The steps, in order; each does exactly one thing.
    #[schemars(with = "Vec<RawStep>")]
    pub steps: Spanned<Vec<Spanned<RawStep>>>,
    /// Arguments appended to the program's command for this case, e.g. ["big.bin"].
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables for this case (over the program's `env`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text the program reads on stdin, written as it starts.
    pub stdin: Option<String>,
    /// Files written beside the program for this case (as [files]).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawDataFile>")]
    pub files: BTreeMap<String, Spanned<RawDataFile>>,
    /// Server cases: the steps run for N clients at once, each on its own connections,
    /// in lockstep (step 1 for every client, then step 2 ...); `{client}` is 1..N and
    /// [random] values are drawn per client. The case fails if any client does.
    #[schemars(with = "Option<u32>")]
    pub clients: Option<Spanned<u32>>,
    /// One case per table: `{key}` in the name, steps, args and stdin is the table's value.
    #[schemars(with = "Option<Vec<BTreeMap<String, String>>>")]
    pub for_each: Option<Spanned<Vec<BTreeMap<String, String>>>>,
}

/// One step: exactly one action key plus optional modifiers (`within`, `conn`).
///
/// Every action is an optional field (rather than a serde enum) so that an unknown key
/// gets serde's "expected one of ..." list, and "two actions in one step" gets our own
/// message pointing at the step.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
pub struct RawStep {
    // Connections (server targets: the grader connects; client targets: it accepts).
    /// Server targets: connect to the student's server; a name ("second") or {} for "main".
    #[schemars(with = "Option<RawConnName>")]
    pub connect: Option<Spanned<RawConnName>>,
    /// Client targets: accept the student's client connection; a name or {}.
    #[schemars(with = "Option<RawConnName>")]
    pub accept: Option<Spanned<RawConnName>>,
    /// Server targets: the server has called accept() on every connection made so far.
    #[schemars(with = "Option<bool>")]
    pub expect_accepted: Option<Spanned<bool>>,
    // Data.
    /// Send text, or { text | hex, repeat }.
    #[schemars(with = "Option<RawPayload>")]
    pub send: Option<Spanned<RawPayload>>,
    /// Wait for received data to match (tolerant of segmentation).
    #[schemars(with = "Option<RawMatcher>")]
    pub expect: Option<Spanned<RawMatcher>>,
    // Closing.
    /// Half-close: "write" (shutdown SHUT_WR, keep reading).
    #[schemars(with = "Option<String>")]
    pub shutdown: Option<Spanned<String>>,
    /// Close the connection: "fin" (orderly) or "rst" (abortive).
    #[schemars(with = "Option<String>")]
    pub close: Option<Spanned<String>>,
    /// Wait for the student's side to close: "fin", "rst" or "any".
    #[schemars(with = "Option<String>")]
    pub expect_close: Option<Spanned<String>>,
    // The student's process.
    /// The program uses almost no CPU for a while: "500ms" or { for = "500ms", max_cpu = 0.1 }.
    #[schemars(with = "Option<RawIdle>")]
    pub expect_idle: Option<Spanned<RawIdle>>,
    /// Send a signal to the program, e.g. "SIGINT" (Ctrl-C).
    #[schemars(with = "Option<String>")]
    pub signal: Option<Spanned<String>>,
    /// Wait for the program to exit: {} (any), { code = 0 }, { signal = "SIGINT" }, { success = true }.
    #[schemars(with = "Option<RawExit>")]
    pub expect_exit: Option<Spanned<RawExit>>,
    /// After expect_exit: the port can be bound again.
    #[schemars(with = "Option<bool>")]
    pub expect_port_free: Option<Spanned<bool>>,
    /// Client targets: type text on the program's stdin: text, or { text | hex, repeat }
    /// (a long line).
    #[schemars(with = "Option<RawPayload>")]
    pub write_stdin: Option<Spanned<RawPayload>>,
    /// Client targets: close stdin (Ctrl-D).
    #[schemars(with = "Option<bool>")]
    pub close_stdin: Option<Spanned<bool>>,
    /// Wait for the program's stdout to match.
    #[schemars(with = "Option<RawMatcher>")]
    pub expect_stdout: Option<Spanned<RawMatcher>>,
    /// Wait for the program's stderr to match.
    #[schemars(with = "Option<RawMatcher>")]
    pub expect_stderr: Option<Spanned<RawMatcher>>,
    // Datagrams (UDP).
    /// UDP: send one datagram: text, { hex } / { text, repeat }, or a list of parts
    /// (text, { u32be = N }, { hex }, { file, from, to }) sent as one datagram.
    #[schemars(with = "Option<super::udp_raw::RawDatagram>")]
    pub send_datagram: Option<Spanned<super::udp_raw::RawDatagram>>,
    /// UDP: the next datagram matches, as a whole (never joined or split); `from =
    /// "student"` also requires it to come from the student's socket.
    #[schemars(with = "Option<super::udp_raw::RawDatagramMatcher>")]
    pub expect_datagram: Option<Spanned<super::udp_raw::RawDatagramMatcher>>,
    /// UDP: no datagram arrives for this long, e.g. "300ms".
    #[schemars(with = "Option<String>")]
    pub expect_no_datagram: Option<Spanned<String>>,
    /// UDP: the case's built-in protocol peer finishes: { complete = true } or
    /// { equals_file = "data.bin" } (what it received equals that file of [files]).
    #[schemars(with = "Option<super::udp_raw::RawTransfer>")]
    pub expect_transfer: Option<Spanned<super::udp_raw::RawTransfer>>,
    // Modifiers.
    /// UDP: the reference socket this step uses (default "main"); each name is a
    /// socket of its own, on its own port.
    #[schemars(with = "Option<String>")]
    pub peer: Option<Spanned<String>>,
    /// Deadline of this step, e.g. "3s" (steps that wait only).
    #[schemars(with = "Option<String>")]
    pub within: Option<Spanned<String>>,
    /// The connection this step acts on (default: the last one opened).
    #[schemars(with = "Option<String>")]
    pub conn: Option<Spanned<String>>,
    // Issue 13: timing, streams and files.
    /// Nothing arrives and the connection stays open for the duration: "300ms" or { for = "300ms" }.
    #[schemars(with = "Option<RawWindow>")]
    pub expect_nothing: Option<Spanned<RawWindow>>,
    /// No FIN or RST for the duration (data may arrive; it is kept for the next expect).
    #[schemars(with = "Option<RawWindow>")]
    pub expect_open: Option<Spanned<RawWindow>>,
    /// The reference does nothing for the duration (a delay under test, never a wait).
    #[schemars(with = "Option<RawWindow>")]
    pub pause: Option<Spanned<RawWindow>>,
    /// Counts and hashes what arrives without keeping it: { skip, count, at_least, sha256, equals_file }.
    #[schemars(with = "Option<RawBytesCheck>")]
    pub expect_bytes: Option<Spanned<RawBytesCheck>>,
    /// A file the program wrote: { path, text | hex | sha256 | equals_file }.
    #[schemars(with = "Option<RawFileCheck>")]
    pub expect_file: Option<Spanned<RawFileCheck>>,
    /// Server targets: every connection so far is accept()ed and the server waits for the next.
    #[schemars(with = "Option<bool>")]
    pub expect_waiting: Option<Spanned<bool>>,
    /// Shown instead of the case's hint when this step fails.
    pub hint: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawWindow {
    Window(String),
    Table(RawWindowTable),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWindowTable {
    #[serde(rename = "for")]
    pub window: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBytesCheck {
    /// Leading bytes left out (a header).
    pub skip: Option<u64>,
    /// Exactly this many bytes.
    pub count: Option<u64>,
    /// At least this many bytes.
    pub at_least: Option<u64>,
    /// SHA-256 of the bytes, 64 hex digits.
    pub sha256: Option<String>,
    /// Equal to a file of [files] (its size is the count).
    pub equals_file: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFileCheck {
    /// Path relative to the program's folder.
    pub path: String,
    pub text: Option<String>,
    pub hex: Option<String>,
    pub sha256: Option<String>,
    /// Equal to a file of [files].
    pub equals_file: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawConnName {
    Name(String),
    Table(RawConnTable),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConnTable {
    pub name: Option<String>,
    /// The reference socket's receive buffer (SO_RCVBUF), e.g. "4KiB".
    pub recv_buffer: Option<String>,
    /// The reference reads at most this fast, e.g. "256KiB/s".
    pub read_rate: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawPayload {
    Text(String),
    Table(RawPayloadTable),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPayloadTable {
    pub text: Option<String>,
    /// Bytes as pairs of hex digits, spaces allowed: "de ad be ef".
    pub hex: Option<String>,
    pub repeat: Option<u32>,
    /// One message as several writes (each its own segment), `delay` apart.
    pub pieces: Option<Vec<String>>,
    /// Between pieces, e.g. "100ms".
    pub delay: Option<String>,
    /// A file of [files] (or the case's files).
    pub file: Option<String>,
    /// Put the file's length first: "u32be", "u16be", "u64be" or "u32le".
    pub length_prefix: Option<String>,
    /// Send the file in pieces of this size, e.g. "64KiB", `delay` apart.
    pub piece_size: Option<String>,
}

/// Exactly one matcher.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMatcher {
    pub any: Option<bool>,
    pub exact: Option<String>,
    pub exact_hex: Option<String>,
    pub contains: Option<String>,
    pub not_contains: Option<String>,
    /// Rust regex syntax (like Python's re, without look-around).
    pub regex: Option<String>,
    /// What a student reads instead of the regex or hex in "expected".
    pub label: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawIdle {
    Window(String),
    Table(RawIdleTable),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIdleTable {
    #[serde(rename = "for")]
    pub window: String,
    /// Largest share of one CPU the process may use meanwhile, 0.0..1.0.
    pub max_cpu: Option<f64>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExit {
    pub code: Option<i32>,
    pub signal: Option<String>,
    pub success: Option<bool>,
}

/// The JSON Schema of the spec file (draft-07: what taplo / Even Better TOML read).
pub fn json_schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<RawSpec>();
    serde_json::to_string_pretty(&schema).expect("a schema is plain JSON") + "\n"
}
