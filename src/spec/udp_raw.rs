//! The UDP keys of a spec exactly as TOML says them (see [`super::raw`] for why raw
//! types exist); [`super::validate`] turns them into [`super::udp`].

use schemars::JsonSchema;
use serde::Deserialize;

/// The transport a program speaks.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawProtocol {
    /// Stream sockets: listen/accept, connect (the default).
    Tcp,
    /// Datagram sockets: bind, sendto/recvfrom.
    Udp,
}

/// One datagram: a text, a table, or a list of parts sent together as one datagram.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawDatagram {
    Text(String),
    Parts(Vec<RawPartItem>),
    Table(RawPartTable),
}

/// One part of a datagram: a text, or exactly one of `text` (with `repeat`), `hex`,
/// `u32be`, `file` (with `from`/`to`: a slice of a file of [files]).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawPartItem {
    Text(String),
    Table(RawPartTable),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPartTable {
    pub text: Option<String>,
    /// Bytes as pairs of hex digits, spaces allowed.
    pub hex: Option<String>,
    /// The text or hex bytes this many times.
    pub repeat: Option<u32>,
    /// A number as 4 bytes, big-endian (Python's struct.pack('!I', n)).
    pub u32be: Option<u32>,
    /// A file of [files] (all of it, or bytes `from`..`to`).
    pub file: Option<String>,
    pub from: Option<usize>,
    pub to: Option<usize>,
}

/// A datagram expectation: exactly one matcher, and where it must come from.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDatagramMatcher {
    /// Any datagram at all.
    pub any: Option<bool>,
    /// The datagram is exactly this (a text, or a list of parts as in send_datagram).
    pub exact: Option<RawDatagram>,
    pub exact_hex: Option<String>,
    /// The datagram contains this text.
    pub contains: Option<String>,
    /// Rust regex syntax, searched in the datagram.
    pub regex: Option<String>,
    /// "student": it must come from the student's socket (server cases: the address the
    /// grader sent to; client cases: the address the student's first datagram came
    /// from). "any" (the default): not checked.
    pub from: Option<String>,
}

/// A fault the reference side plays: exactly one key.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// The student's Nth datagram of the case is ignored, as if lost.
    pub drop: Option<u32>,
    /// The grader's Nth datagram goes out twice.
    pub duplicate: Option<u32>,
    /// [N, M]: the grader's Nth datagram goes out right after its Mth.
    pub reorder: Option<Vec<u32>>,
    /// { nth, by }: the grader's Nth datagram goes out `by` later.
    pub delay: Option<RawDelay>,
    /// { nth, to }: the grader's Nth datagram is cut to `to` bytes.
    pub truncate: Option<RawTruncate>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDelay {
    pub nth: u32,
    pub by: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTruncate {
    pub nth: u32,
    pub to: usize,
}

/// A built-in reference peer.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProtocolPeer {
    /// "stop-and-wait" (the protocol specs/stop-and-wait.toml defines).
    pub protocol: String,
    /// "sender" (the reference sends `file` to the student's server) or "receiver"
    /// (the student's client sends to it).
    pub role: String,
    /// Sender: the file of [files] it sends.
    pub file: Option<String>,
    /// Sender: time without an ACK before it sends again, e.g. "300ms" (default).
    pub rto: Option<String>,
}

/// What the built-in peer's transfer must come to.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTransfer {
    /// The transfer ends: the last packet is acknowledged.
    pub complete: Option<bool>,
    /// Receiver: what arrived equals this file of [files].
    pub equals_file: Option<String>,
}
