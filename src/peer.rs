//! The reference peer's side of one TCP connection.
//!
//! TCP is a byte stream: a reply may arrive in many segments, or glued to the next
//! one. So a [`Connection`] keeps every byte received and not yet consumed, and an
//! expectation is checked against that whole buffer each time more arrives, until it
//! matches, the peer closes, or the deadline passes. It also tells apart the three ways
//! a wait for the close can end: FIN (read returns 0, what `close()` sends), RST
//! (`ECONNRESET`), or nothing at all.

use crate::spec::{CloseKind, Matcher};
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How the student's side ended the connection, as seen from ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerClosed {
    Fin,
    Rst,
}

/// How a wait for data ended.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    Matched(Vec<u8>),
    /// The data can no longer match (an `exact` that diverged).
    Mismatch,
    /// The peer closed before a match; what was received stays in the buffer.
    Closed(PeerClosed),
    TimedOut,
}

pub(crate) struct Connection {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Set once the student's side closed (we saw FIN or RST).
    peer_closed: Option<PeerClosed>,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    /// Bytes received in all (for the transcript).
    pub(crate) received_total: u64,
    /// Bytes sent in all.
    pub(crate) sent_total: u64,
    pub(crate) last_sent: Vec<u8>,
    /// Bytes dropped from the front of the buffer since the last match (a flood), so
    /// that reports count what arrived, not what was kept.
    dropped: u64,
    /// `read_rate`: at most this many bytes per second are read; the next read is due
    /// at `read_due`.
    read_rate: Option<u64>,
    read_due: Option<Instant>,
}

/// Received data beyond this, not yet consumed, is dropped from the front: a program
/// that floods must not grow the grader's memory.
const MAX_BUFFER: usize = 256 << 10;

impl Connection {
    pub(crate) fn new(stream: TcpStream) -> io::Result<Connection> {
        let local = stream.local_addr()?;
        let remote = stream.peer_addr()?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: Some(stream),
            buf: Vec::new(),
            peer_closed: None,
            local,
            remote,
            received_total: 0,
            sent_total: 0,
            last_sent: Vec::new(),
            dropped: 0,
            read_rate: None,
            read_due: None,
        })
    }

    /// Reads at most `rate` bytes per second from now on (a slow reader).
    pub(crate) fn set_read_rate(&mut self, rate: Option<u64>) {
        self.read_rate = rate;
    }

    /// Bytes received and not consumed, counting those dropped from the front.
    pub(crate) fn pending_total(&self) -> u64 {
        self.buf.len() as u64 + self.dropped
    }

    /// Takes up to `max` pending bytes (the front of the buffer).
    pub(crate) fn take_pending(&mut self, max: usize) -> Vec<u8> {
        let n = max.min(self.buf.len());
        self.dropped = 0;
        self.buf.drain(..n).collect()
    }

    /// Whether the kernel holds data or a close for us that we have not read yet: on a
    /// busy machine the grader can be slower than the program, and that is not the
    /// program's delay. A check to call later, while a read borrows the connection.
    pub(crate) fn unread_check(&self) -> impl Fn() -> bool + 'static {
        let fd = self.stream.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        move || fd.is_some_and(crate::sys::readable_now)
    }

    /// Bytes received and not consumed by a match.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn peer_closed(&self) -> Option<PeerClosed> {
        self.peer_closed
    }

    /// Whether the student's program has spoken on this connection: data, or its FIN,
    /// received (read or still queued). Only an accepted connection can: a connection
    /// left in a listen queue gets nothing, and is reset (never FIN-closed) when the
    /// program dies. So a server that accepts and closes at once did accept.
    pub(crate) fn heard_from_peer(&self) -> bool {
        if self.received_total > 0 || self.peer_closed == Some(PeerClosed::Fin) {
            return true;
        }
        self.peek().is_some()
    }

    /// What waits to be read, without reading it: `Some(n > 0)` data, `Some(0)` the
    /// peer's FIN, `None` nothing yet (or a reset).
    fn peek(&self) -> Option<usize> {
        let stream = self.stream.as_ref()?;
        let mut byte = [0u8; 1];
        // SAFETY: a one-byte buffer on the stack; MSG_PEEK leaves the data queued.
        let n = unsafe {
            libc::recv(
                std::os::fd::AsRawFd::as_raw_fd(stream),
                byte.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        usize::try_from(n).ok()
    }

    /// Reads once more into the buffer. Returns false when nothing more can come.
    async fn fill(&mut self) -> bool {
        if self.peer_closed.is_some() {
            return false;
        }
        let Some(stream) = self.stream.as_mut() else {
            return false;
        };
        let mut chunk = [0u8; 16 << 10];
        // A slow reader reads small pieces, each when the rate allows it: the delay is
        // the behaviour under test (the student's sender must wait for room).
        // Time spent waiting for data earns no credit: a sender that paused (or had not
        // begun) meets the same rate afterwards, however long the wait (else a burst
        // after it would let a short send() go unnoticed on a loaded machine).
        let want = match self.read_rate {
            Some(rate) => {
                if let Some(due) = self.read_due {
                    tokio::time::sleep_until(due).await;
                }
                ((rate / 50) as usize).clamp(512, chunk.len())
            }
            None => chunk.len(),
        };
        let read = stream.read(&mut chunk[..want]).await;
        if let (Some(rate), Ok(n)) = (self.read_rate, &read) {
            let now = Instant::now();
            let from = self.read_due.map_or(now, |due| due.max(now));
            self.read_due =
                Some(from + std::time::Duration::from_secs_f64(*n as f64 / rate as f64));
        }
        match read {
            Ok(0) => {
                self.peer_closed = Some(PeerClosed::Fin);
                false
            }
            Ok(n) => {
                self.received_total += n as u64;
                self.buf.extend_from_slice(&chunk[..n]);
                // Counted from what keep_last really cut: it trims only past 1.5 times
                // the limit, so the excess over the limit is not what was dropped.
                let kept = self.buf.len();
                crate::text::keep_last(&mut self.buf, MAX_BUFFER);
                self.dropped += (kept - self.buf.len()) as u64;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                self.peer_closed = Some(PeerClosed::Rst);
                false
            }
            Err(_) => {
                self.peer_closed = Some(PeerClosed::Rst);
                false
            }
        }
    }

    /// Waits until the buffer matches, consuming the matched bytes.
    /// A negative matcher (`not_contains`) reads until the text arrives (`Mismatch`)
    /// and otherwise runs to the deadline, which is then its success.
    pub(crate) async fn read_until(&mut self, matcher: &Matcher, deadline: Instant) -> ReadOutcome {
        loop {
            if matcher.is_negative() {
                if matcher.find(&self.buf).is_none() {
                    return ReadOutcome::Mismatch;
                }
            } else {
                if let Some(end) = matcher.find(&self.buf) {
                    self.dropped = 0;
                    return ReadOutcome::Matched(self.buf.drain(..end).collect());
                }
                if matcher.impossible(&self.buf) {
                    return ReadOutcome::Mismatch;
                }
            }
            if let Some(how) = self.peer_closed {
                return ReadOutcome::Closed(how);
            }
            match tokio::time::timeout_at(deadline, self.fill()).await {
                Ok(_) => {}
                Err(_) => return ReadOutcome::TimedOut,
            }
        }
    }

    /// Waits for the student's side to close, reading (and keeping) any data before.
    /// Returns None when nothing closed before the deadline.
    /// Waits for the peer's FIN or RST, reading (and keeping the end of) what comes
    /// before it; gives up early once `budget` bytes have come instead.
    pub(crate) async fn wait_close(
        &mut self,
        deadline: Instant,
        budget: u64,
    ) -> Option<PeerClosed> {
        let start = self.received_total;
        loop {
            if let Some(how) = self.peer_closed {
                return Some(how);
            }
            if self.received_total - start > budget {
                return None;
            }
            if tokio::time::timeout_at(deadline, self.fill())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// Keeps reading until the deadline, so a program that writes to us never blocks
    /// on a full socket buffer while we watch it (e.g. during `expect_idle`).
    /// Reads once more (see `fill`): false when the peer closed.
    pub(crate) async fn read_more(&mut self) -> bool {
        self.fill().await
    }

    pub(crate) async fn absorb_until(&mut self, deadline: Instant) {
        while tokio::time::timeout_at(deadline, self.fill()).await == Ok(true) {}
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        // A FIN already queued with nothing before it: the program closed first. Say so
        // now, because the reset our data then draws would hide that FIN from a read.
        if self.peer_closed.is_none() && self.peek() == Some(0) {
            self.peer_closed = Some(PeerClosed::Fin);
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "closed"))?;
        stream.write_all(bytes).await?;
        self.sent_total += bytes.len() as u64;
        self.last_sent = bytes.to_vec();
        Ok(())
    }

    pub(crate) async fn shutdown_write(&mut self) -> io::Result<()> {
        match self.stream.as_mut() {
            Some(s) => s.shutdown().await,
            None => Ok(()),
        }
    }

    /// Reads whatever has arrived into the buffer, without waiting (what a program
    /// answered before it closed, to say so when a send fails).
    pub(crate) fn read_ready(&mut self) {
        let Some(stream) = self.stream.as_ref() else {
            return;
        };
        let mut chunk = [0u8; 16 << 10];
        while let Ok(n) = stream.try_read(&mut chunk) {
            if n == 0 {
                self.peer_closed.get_or_insert(PeerClosed::Fin);
                return;
            }
            self.received_total += n as u64;
            self.buf.extend_from_slice(&chunk[..n]);
            crate::text::keep_last(&mut self.buf, MAX_BUFFER);
        }
    }

    /// Reads and drops whatever has arrived, without waiting: closing a socket with
    /// unread data would send an RST instead of a FIN.
    pub(crate) fn discard_ready(&mut self) {
        let Some(stream) = self.stream.as_ref() else {
            return;
        };
        let mut chunk = [0u8; 16 << 10];
        loop {
            match stream.try_read(&mut chunk) {
                Ok(0) => {
                    self.peer_closed.get_or_insert(PeerClosed::Fin);
                    return;
                }
                Ok(n) => self.received_total += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.peer_closed.get_or_insert(PeerClosed::Rst);
                    return;
                }
            }
        }
    }

    /// Closes our side: FIN (close), or RST (SO_LINGER 0, then close).
    pub(crate) fn close(&mut self, kind: CloseKind) -> io::Result<()> {
        // An orderly close reads what has arrived first, as a client that recv()s each
        // reply whole would have: closing with unread data sends an RST, not a FIN.
        if kind == CloseKind::Fin {
            self.discard_ready();
        }
        if let Some(stream) = self.stream.take() {
            if kind == CloseKind::Rst {
                socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO))?;
            }
            drop(stream);
        }
        Ok(())
    }
}

/// How the reference saw the connection end, in the words of a result.
impl From<PeerClosed> for crate::outcome::CloseHow {
    fn from(k: PeerClosed) -> crate::outcome::CloseHow {
        match k {
            PeerClosed::Fin => crate::outcome::CloseHow::Fin,
            PeerClosed::Rst => crate::outcome::CloseHow::Rst,
        }
    }
}
