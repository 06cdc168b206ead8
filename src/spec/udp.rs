//! The UDP part of a spec (issue 16): which protocol a program speaks, the datagram
//! steps, the faults the reference side plays, and the built-in protocol peers.
//!
//! A datagram is a unit: an expectation looks at exactly one datagram, never at a
//! concatenation of several (as TCP's `expect` does) and never at part of one.

use super::Matcher;
use std::fmt;
use std::time::Duration;

/// The transport a program speaks: a TCP server listens and accepts, a UDP server only
/// binds; a TCP client connects, a UDP client sends datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One of the reference's UDP sockets in a case ("main" unless a step names it).
pub type PeerName = String;

/// Where an expected datagram must come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramFrom {
    /// Not checked.
    Any,
    /// Server cases: the address the grader's datagrams went to (the student's bound
    /// socket); client cases: the address the student's first datagram came from.
    Student,
}

/// A fault the reference side plays on the datagrams of a case (no netem: the grader
/// is the peer, so it loses, repeats, swaps, holds back or cuts datagrams itself).
/// "The student's Nth" counts datagrams the grader received in the case; "the
/// reference's Nth" counts those it sent; both from 1, over all its sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The student's Nth datagram is ignored, as if lost: no step sees it.
    Drop(u32),
    /// The reference's Nth datagram goes out twice.
    Duplicate(u32),
    /// The reference's Nth datagram is held back and goes out right after its Mth.
    Reorder(u32, u32),
    /// The reference's Nth datagram goes out `by` later (the steps do not wait for it).
    Delay { nth: u32, by: Duration },
    /// The reference's Nth datagram is cut to `to` bytes.
    Truncate { nth: u32, to: usize },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Drop(n) => write!(f, "the student's datagram #{n} is dropped (lost)"),
            Fault::Duplicate(n) => write!(f, "the grader's datagram #{n} is sent twice"),
            Fault::Reorder(n, m) => {
                write!(f, "the grader's datagram #{n} is sent after its #{m}")
            }
            Fault::Delay { nth, by } => write!(
                f,
                "the grader's datagram #{nth} is delayed by {}",
                humantime::format_duration(*by)
            ),
            Fault::Truncate { nth, to } => {
                write!(f, "the grader's datagram #{nth} is cut to {to} bytes")
            }
        }
    }
}

/// Which side of the stop-and-wait protocol the reference plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SawRole {
    /// The reference sends a file; the student's server receives it.
    Sender,
    /// The reference receives; the student's client sends a file.
    Receiver,
}

/// A built-in reference peer that plays a protocol instead of a step list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolPeer {
    /// The protocol of `specs/stop-and-wait.toml`: DATA `b'D' + seq + payload`, END
    /// `b'E' + seq`, ACK `b'A' + seq` (seq: 4 bytes big-endian), one packet outstanding.
    StopAndWait {
        role: SawRole,
        /// Sender: the bytes it sends (a file of `[files]`).
        data: Vec<u8>,
        /// Sender: how long it waits for an ACK before sending again.
        rto: Duration,
    },
}

/// What `expect_transfer` checks once the built-in peer's transfer is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    /// The transfer ended (the last packet acknowledged).
    Complete,
    /// Receiver: the bytes received equal these (a file of `[files]`).
    Equals { name: String, bytes: Vec<u8> },
}

/// What a case's UDP side has besides its steps.
#[derive(Debug, Clone, Default)]
pub struct UdpCase {
    pub faults: Vec<Fault>,
    pub peer: Option<ProtocolPeer>,
}

/// The words of a datagram step, for reports.
pub(super) fn describe_send(peer: &str, bytes: &[u8]) -> String {
    format!(
        "send the datagram {} ({} bytes) from peer {peer:?}",
        crate::text::quote(bytes),
        bytes.len()
    )
}

pub(super) fn describe_expect(
    peer: &str,
    matcher: &Matcher,
    from: DatagramFrom,
    within: &str,
) -> String {
    let from = match from {
        DatagramFrom::Any => "",
        DatagramFrom::Student => ", from the student's socket",
    };
    format!(
        "wait up to {within} for a datagram of {} at peer {peer:?}{from}",
        matcher.describe()
    )
}

pub(super) fn describe_no_datagram(peer: &str, window: Duration) -> String {
    format!(
        "check that no datagram reaches peer {peer:?} for {}",
        humantime::format_duration(window)
    )
}

pub(super) fn describe_transfer(t: &Transfer, within: &str) -> String {
    match t {
        Transfer::Complete => format!("wait up to {within} for the transfer to complete"),
        Transfer::Equals { name, .. } => {
            format!("wait up to {within} for the transfer of {name:?} to complete")
        }
    }
}

/// Whether a whole datagram matches: `exact` is the datagram, `contains` and `regex`
/// look inside it, `any` takes any datagram (even an empty one).
pub fn datagram_matches(matcher: &Matcher, data: &[u8]) -> bool {
    match matcher {
        Matcher::Any => true,
        Matcher::Exact(want) => data == want.as_slice(),
        Matcher::NotContains(_) => matcher.find(data).is_some() || data.is_empty(),
        Matcher::Contains(_) | Matcher::Regex(_) => matcher.find(data).is_some(),
    }
}
