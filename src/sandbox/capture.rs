//! Capture of a student program's stdout or stderr: flood-safe and matchable.
//!
//! A reader task drains the pipe for as long as the program runs, so a program that
//! prints without end never blocks on a full pipe (which would change its behaviour) and
//! never grows the grader's memory: only a head and a tail of at most `limit` bytes are
//! kept for the report. Besides that, a bounded window of output not yet matched by an
//! `expect_stdout` step is kept, so matching works across chunk boundaries.

use crate::text::keep_last;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;

/// Bytes of not-yet-matched output kept for `expect_stdout` (a sliding window).
const MATCH_WINDOW: usize = 64 << 10;

#[derive(Debug, Default)]
struct State {
    head: Vec<u8>,
    tail: Vec<u8>,
    total: u64,
    window: Vec<u8>,
    closed: bool,
}

/// One captured stream, shared between its reader task and the engine.
#[derive(Debug, Clone)]
pub struct Capture {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    limit: usize,
    /// The pipe's read end while the reader owns it (-1 before and after), to ask the
    /// kernel whether output is waiting that the reader has not taken yet.
    pipe: Arc<std::sync::atomic::AtomicI32>,
}

impl Capture {
    pub fn new(limit: u64) -> Capture {
        Capture {
            state: Arc::default(),
            changed: Arc::new(Notify::new()),
            limit: (limit as usize).max(2),
            pipe: Arc::new(std::sync::atomic::AtomicI32::new(-1)),
        }
    }

    /// Drains `reader` until EOF (the program and all its children closed the pipe).
    pub fn spawn_reader<R: AsyncRead + std::os::fd::AsRawFd + Unpin + Send + 'static>(
        &self,
        mut reader: R,
    ) -> tokio::task::JoinHandle<()> {
        self.pipe
            .store(reader.as_raw_fd(), std::sync::atomic::Ordering::SeqCst);
        let me = self.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 << 10];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => me.push(&buf[..n]),
                }
            }
            me.pipe.store(-1, std::sync::atomic::Ordering::SeqCst);
            me.state.lock().unwrap().closed = true;
            me.changed.notify_waiters();
        })
    }

    fn push(&self, chunk: &[u8]) {
        let mut s = self.state.lock().unwrap();
        s.total += chunk.len() as u64;
        let half = self.limit / 2;
        let room = half.saturating_sub(s.head.len());
        let (to_head, rest) = chunk.split_at(room.min(chunk.len()));
        s.head.extend_from_slice(to_head);
        if !rest.is_empty() {
            s.tail.extend_from_slice(rest);
            keep_last(&mut s.tail, half);
        }
        s.window.extend_from_slice(chunk);
        keep_last(&mut s.window, MATCH_WINDOW);
        drop(s);
        self.changed.notify_waiters();
    }

    /// Waits until `f` accepts the unmatched window (it returns how many bytes it
    /// consumed) or the stream ends. Returns `Some(consumed bytes)` or `None` at EOF.
    /// The caller races this against its deadline.
    pub async fn wait_for(&self, mut f: impl FnMut(&[u8]) -> Option<usize>) -> Option<Vec<u8>> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state.lock().unwrap();
                if let Some(end) = f(&s.window) {
                    return Some(s.window.drain(..end).collect());
                }
                if s.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Waits until the stream has ended (every writer gone and everything read). Race
    /// it against a deadline: a daemon the program left behind may hold the pipe.
    pub async fn closed(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state.lock().unwrap().closed {
                return;
            }
            notified.await;
        }
    }

    /// Starts a new segment: what was printed so far is forgotten (report, matching and
    /// byte count), so a case that shares a process sees only its own output.
    pub fn begin_segment(&self) {
        let mut s = self.state.lock().unwrap();
        s.head.clear();
        s.tail.clear();
        s.window.clear();
        s.total = 0;
    }

    /// Whether the program has written output that the reader has not taken yet: on a
    /// busy machine the grader can be slower than the program, and that lag is not the
    /// program's.
    pub fn lagging(&self) -> bool {
        let fd = self.pipe.load(std::sync::atomic::Ordering::SeqCst);
        if fd < 0 {
            return false;
        }
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes an int; a stale fd only makes the ioctl fail.
        unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) == 0 && n > 0 }
    }

    /// The output not yet consumed by a match (for "what came back" in a failure).
    pub fn unmatched(&self) -> Vec<u8> {
        let s = self.state.lock().unwrap();
        s.window[s.window.len().saturating_sub(MATCH_WINDOW)..].to_vec()
    }

    /// Everything kept for the report.
    pub fn snapshot(&self) -> Captured {
        let s = self.state.lock().unwrap();
        let half = self.limit / 2;
        Captured {
            head: s.head.clone(),
            tail: s.tail[s.tail.len().saturating_sub(half)..].to_vec(),
            total: s.total,
        }
    }
}

/// What was kept of one stream at the end of a case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
    /// Bytes the program wrote in all, kept or not.
    pub total: u64,
}

impl Captured {
    /// Head and tail joined, with a marker where bytes were dropped.
    pub fn text(&self) -> Vec<u8> {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut out = self.head.clone();
        if self.total > kept {
            out.extend_from_slice(
                format!("\n[… {} bytes not kept …]\n", self.total - kept).as_bytes(),
            );
        }
        out.extend_from_slice(&self.tail);
        out
    }

    pub fn truncated(&self) -> bool {
        self.total > (self.head.len() + self.tail.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_head_and_tail_of_a_flood() {
        let cap = Capture::new(8);
        cap.push(b"abcdefgh");
        cap.push(b"ijklmnop");
        let s = cap.snapshot();
        assert_eq!(s.head, b"abcd");
        assert_eq!(s.tail, b"mnop");
        assert_eq!(s.total, 16);
        assert!(String::from_utf8_lossy(&s.text()).contains("8 bytes not kept"));
    }

    #[tokio::test]
    async fn matches_across_chunks() {
        let cap = Capture::new(1024);
        cap.push(b"Reply: po");
        cap.push(b"ng\n");
        let got = cap
            .wait_for(|w| w.windows(4).position(|x| x == b"pong").map(|p| p + 4))
            .await;
        assert_eq!(got.unwrap(), b"Reply: pong");
    }
}
