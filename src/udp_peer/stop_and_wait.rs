//! The built-in stop-and-wait peer (the protocol `specs/stop-and-wait.toml` defines):
//! DATA `b'D' + seq + payload` (at most 1000 bytes), END `b'E' + seq` (seq = the number
//! of DATA packets), ACK `b'A' + seq`; numbers are 4 bytes big-endian; one packet
//! outstanding at a time.
//!
//! Both roles go through [`UdpPeers`], so the case's faults apply to them as to a step
//! list. Their progress is kept in a [`SawState`] outside the future, so a transfer
//! that stalls until the step's deadline is reported with where it stalled.

use super::UdpPeers;
use std::net::SocketAddr;
use std::time::Duration;

/// Payload bytes per DATA packet.
pub(crate) const CHUNK: usize = 1000;
/// Sends of one packet before the reference sender gives up.
pub(crate) const MAX_TRIES: u32 = 20;

/// How far a transfer got, in words for the report.
#[derive(Debug, Default)]
pub(crate) struct SawState {
    /// The last thing that happened, e.g. "DATA 1 (1000 bytes) received and acknowledged".
    pub(crate) last: Option<String>,
    /// Receiver: the bytes kept, in order.
    pub(crate) received: Vec<u8>,
    pub(crate) done: bool,
}

fn packet(kind: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![kind];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn parse(p: &[u8]) -> Option<(u8, u32)> {
    (p.len() >= 5).then(|| (p[0], u32::from_be_bytes([p[1], p[2], p[3], p[4]])))
}

/// The reference sends `data` to the student's receiver at `to`; `Err` says why it
/// gave up. The RTO is the protocol's timer: its waits are the behaviour under test.
pub(crate) async fn send(
    peers: &mut UdpPeers,
    peer: &str,
    to: SocketAddr,
    data: &[u8],
    rto: Duration,
    state: &mut SawState,
) -> Result<(), String> {
    let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
    let n = chunks.len() as u32;
    for seq in 0..=n {
        let (p, what) = match chunks.get(seq as usize) {
            Some(c) => (packet(b'D', seq, c), format!("DATA {seq}")),
            None => (packet(b'E', n, &[]), format!("END {n}")),
        };
        let mut acked = false;
        for tries in 1..=MAX_TRIES {
            peers
                .send(peer, to, &p)
                .await
                .map_err(|e| format!("sendto failed: {e}"))?;
            state.last = Some(format!("{what} sent {tries} time(s), not acknowledged yet"));
            let wait = async {
                loop {
                    let d = peers.recv(peer).await?;
                    if parse(&d.data) == Some((b'A', seq)) && d.data.len() == 5 {
                        return Ok::<_, std::io::Error>(());
                    }
                }
            };
            match tokio::time::timeout(rto, wait).await {
                Ok(Ok(())) => {
                    acked = true;
                    break;
                }
                Ok(Err(e)) => return Err(format!("recvfrom failed in the grader: {e}")),
                Err(_) => continue,
            }
        }
        if !acked {
            return Err(format!(
                "{what} was sent {MAX_TRIES} times, every {}, and never acknowledged with ACK {seq}",
                humantime::format_duration(rto)
            ));
        }
        state.last = Some(format!("{what} acknowledged"));
    }
    state.done = true;
    Ok(())
}

/// The reference receives from the student's sender at `peer`, acknowledging as the
/// protocol says, until the END that follows the last DATA is acknowledged.
pub(crate) async fn receive(
    peers: &mut UdpPeers,
    peer: &str,
    state: &mut SawState,
) -> Result<(), String> {
    let mut expected: u32 = 0;
    loop {
        let d = peers
            .recv(peer)
            .await
            .map_err(|e| format!("recvfrom failed in the grader: {e}"))?;
        let Some((kind, seq)) = parse(&d.data) else {
            state.last = Some(format!(
                "a {}-byte datagram that is no packet (ignored)",
                d.data.len()
            ));
            continue;
        };
        let ack = |seq| packet(b'A', seq, &[]);
        match kind {
            b'D' if seq == expected => {
                state.received.extend_from_slice(&d.data[5..]);
                expected += 1;
                peers
                    .send(peer, d.from, &ack(seq))
                    .await
                    .map_err(|e| e.to_string())?;
                state.last = Some(format!(
                    "DATA {seq} ({} bytes) received and acknowledged",
                    d.data.len() - 5
                ));
            }
            b'D' | b'E' if seq < expected => {
                peers
                    .send(peer, d.from, &ack(seq))
                    .await
                    .map_err(|e| e.to_string())?;
                state.last = Some(format!(
                    "{} {seq} again (a retransmission), acknowledged again",
                    kind as char
                ));
            }
            b'E' if seq == expected => {
                peers
                    .send(peer, d.from, &ack(seq))
                    .await
                    .map_err(|e| e.to_string())?;
                state.last = Some(format!("END {seq} received and acknowledged"));
                state.done = true;
                return Ok(());
            }
            b'D' | b'E' => {
                state.last = Some(format!(
                    "{} {seq} while {expected} was expected (ignored, no ACK)",
                    if kind == b'D' { "DATA" } else { "END" }
                ));
            }
            _ => {
                state.last = Some(format!(
                    "a packet of unknown type {:?} (ignored)",
                    kind as char
                ));
            }
        }
    }
}
