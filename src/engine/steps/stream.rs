//! Steps added for the gallery (issue 13): sends in pieces and of files, silence and
//! openness over a window, a pause, whole-stream byte checks that keep nothing, a file
//! the program wrote, and "back waiting for clients".

use super::super::context::Run;
use super::super::deadline::{far_future, never, Deadline};
use super::connection::received_of;
use super::StepCtx;
use crate::outcome::{EventKind, Failure};
use crate::peer::PeerClosed;
use crate::spec::extra::hex;
use crate::spec::{Action, ByteCheck, ConnName, FileCheck, LengthPrefix};
use crate::text::quote;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Bytes of the two sides shown at the first difference.
const SHOW_DIFF: usize = 12;

/// `de ad be ef`, the first 64 bytes of `b` (then "…").
fn spaced_hex(b: &[u8]) -> String {
    let shown: Vec<String> = b.iter().take(64).map(|x| format!("{x:02x}")).collect();
    let more = if b.len() > 64 { " …" } else { "" };
    format!("{}{more}", shown.join(" "))
}

fn short_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where two streams first differ, fed piece by piece without keeping either.
#[derive(Default)]
struct FirstDiff {
    at: Option<u64>,
    got: Vec<u8>,
    want: Vec<u8>,
}

impl FirstDiff {
    /// `got` arrived at offset `off`; `want` is the whole expected content.
    fn feed(&mut self, off: u64, got: &[u8], want: &[u8]) {
        if self.at.is_some() {
            return;
        }
        let o = off as usize;
        let w = want.get(o..).unwrap_or(&[]);
        let n = got.len().min(w.len());
        if let Some(i) = (0..n).find(|&i| got[i] != w[i]) {
            self.at = Some(off + i as u64);
            self.got = got[i..(i + SHOW_DIFF).min(got.len())].to_vec();
            self.want = w[i..(i + SHOW_DIFF).min(w.len())].to_vec();
        }
    }
}

impl Run<'_> {
    pub(super) async fn stream_step(
        &mut self,
        cx: StepCtx<'_>,
        action: &Action,
    ) -> Result<(), Failure> {
        match action {
            Action::SendPieces {
                conn,
                pieces,
                delay,
            } => self.send_pieces(cx, conn, pieces.clone(), *delay).await,
            Action::SendFile {
                conn,
                file,
                length_prefix,
                piece_size,
                delay,
            } => {
                self.send_file(cx, conn, file, *length_prefix, *piece_size, *delay)
                    .await
            }
            Action::ExpectNothing { conn, window } => self.expect_nothing(cx, conn, *window).await,
            Action::ExpectOpen { conn, window } => self.expect_open(cx, conn, *window).await,
            Action::Pause { window } => {
                // The delay is the behaviour under test (a client that pauses).
                tokio::time::sleep(*window).await;
                Ok(())
            }
            Action::ExpectBytes { conn, check } => self.expect_bytes(cx, conn, check).await,
            Action::ExpectFile { path, check } => self.expect_file(cx, path, check).await,
            Action::ExpectWaiting => self.expect_waiting(cx).await,
            _ => unreachable!("the other steps are dispatched in steps/mod.rs"),
        }
    }

    fn data_file(&self, name: &str) -> Arc<Vec<u8>> {
        self.case
            .files
            .iter()
            .find(|f| f.path == name)
            .expect("validated: a step names one of the case's files")
            .bytes()
    }

    /// Sends `pieces` one write each (TCP_NODELAY: each its own segment), `delay` apart.
    async fn send_pieces(
        &mut self,
        cx: StepCtx<'_>,
        conn: &ConnName,
        pieces: Vec<Vec<u8>>,
        delay: Duration,
    ) -> Result<(), Failure> {
        let who = self.who();
        let within = cx.step.within;
        let n = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            if i > 0 && !delay.is_zero() {
                // The pause between pieces is what the step tests.
                tokio::time::sleep(delay).await;
            }
            let c = self.conns.get_mut(conn);
            let r = Deadline::new(
                within,
                super::super::deadline::WaitClock::new(Vec::new(), None),
            )
            .race(c.send(&piece), never)
            .await;
            let data = quote(&piece);
            match r {
                Some(Ok(())) => self.event(EventKind::Sent {
                    conn: conn.clone(),
                    bytes: piece.len(),
                    data,
                }),
                Some(Err(e)) => {
                    let c = self.conns.get_mut(conn);
                    c.read_ready();
                    let answered = c.pending().to_vec();
                    self.settle_exit().await;
                    let suffix = self.exit_suffix();
                    let after = match answered.is_empty() {
                        true => String::new(),
                        false => format!(" after answering {}", quote(&answered)),
                    };
                    return Err(cx.fail(
                        format!("to send piece {} of {n}, {data}", i + 1),
                        format!("the {who} had closed the connection{after}: it did not wait for the rest ({e}){suffix}"),
                    ));
                }
                None => {
                    return Err(cx.fail(
                        format!("to send piece {} of {n}, {data}", i + 1),
                        format!(
                            "the {who} did not read: it could not be sent within {}",
                            cx.within
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    async fn send_file(
        &mut self,
        cx: StepCtx<'_>,
        conn: &ConnName,
        file: &str,
        prefix: Option<LengthPrefix>,
        piece_size: Option<usize>,
        delay: Duration,
    ) -> Result<(), Failure> {
        let content = self.data_file(file);
        let mut all = prefix
            .map(|p| p.encode(content.len() as u64))
            .unwrap_or_default();
        all.extend_from_slice(&content);
        let size = piece_size.unwrap_or(all.len()).max(1);
        let who = self.who();
        let total = all.len();
        let mut sent = 0;
        for (i, piece) in all.chunks(size).enumerate() {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let c = self.conns.get_mut(conn);
            let r = Deadline::new(
                cx.step.within,
                super::super::deadline::WaitClock::new(Vec::new(), None),
            )
            .race(c.send(piece), never)
            .await;
            match r {
                Some(Ok(())) => sent += piece.len(),
                Some(Err(e)) => {
                    self.settle_exit().await;
                    let suffix = self.exit_suffix();
                    return Err(cx.fail(format!("to send {total} bytes of {file:?}"), format!("send failed after {sent} bytes: {e} (the {who} closed or reset the connection){suffix}")));
                }
                None => return Err(cx.fail(format!("to send {total} bytes of {file:?}"), format!("the {who} stopped reading: {sent} bytes sent, the rest could not be sent within {}", cx.within))),
            }
        }
        self.event(EventKind::Sent {
            conn: conn.clone(),
            bytes: total,
            data: format!("{total} bytes: the file {file:?}"),
        });
        Ok(())
    }

    /// Nothing arrives and no close for `window` (plain time: a window, not a deadline).
    async fn expect_nothing(
        &mut self,
        cx: StepCtx<'_>,
        conn: &ConnName,
        window: Duration,
    ) -> Result<(), Failure> {
        let who = self.who();
        let w = humantime::format_duration(window).to_string();
        let c = self.conns.get_mut(conn);
        let end = tokio::time::Instant::now() + window;
        let mut open = true;
        while c.pending().is_empty() && open {
            match tokio::time::timeout_at(end, c.read_more()).await {
                Ok(more) => open = more,
                Err(_) => break,
            }
        }
        let pending = c.pending().to_vec();
        let total = c.pending_total();
        let closed = c.peer_closed();
        let sent = (!c.last_sent.is_empty()).then(|| quote(&c.last_sent));
        if pending.is_empty() && closed.is_none() {
            return Ok(());
        }
        if !pending.is_empty() {
            self.event(EventKind::Received {
                conn: conn.clone(),
                bytes: total as usize,
                data: quote(&pending),
            });
        }
        let got = match (pending.is_empty(), closed) {
            (false, _) => format!(
                "received {} before the request was complete",
                received_of(&pending, total)
            ),
            (true, Some(PeerClosed::Rst)) => {
                format!("the connection was reset (RST){}", self.exit_suffix())
            }
            (true, _) => format!(
                "the {who} closed the connection (FIN){}",
                self.exit_suffix()
            ),
        };
        Err(Failure {
            sent,
            ..cx.fail(format!("nothing for {w}, the connection still open"), got)
        })
    }

    /// No FIN or RST for `window`; data is read and kept for the next expect.
    async fn expect_open(
        &mut self,
        cx: StepCtx<'_>,
        conn: &ConnName,
        window: Duration,
    ) -> Result<(), Failure> {
        let who = self.who();
        let w = humantime::format_duration(window).to_string();
        let c = self.conns.get_mut(conn);
        let end = tokio::time::Instant::now() + window;
        let closed = c.wait_close(end, u64::MAX).await;
        let Some(how) = closed else { return Ok(()) };
        self.event(EventKind::PeerClosed {
            conn: conn.clone(),
            how: how.into(),
        });
        self.settle_exit().await;
        let got = match how {
            PeerClosed::Fin => format!(
                "the {who} closed the connection (FIN){}",
                self.exit_suffix()
            ),
            PeerClosed::Rst => format!("the connection was reset (RST){}", self.exit_suffix()),
        };
        Err(cx.fail(format!("the connection to stay open for {w}"), got))
    }

    /// Counts (and hashes, and compares) what arrives, keeping none of it.
    async fn expect_bytes(
        &mut self,
        mut cx: StepCtx<'_>,
        conn: &ConnName,
        check: &ByteCheck,
    ) -> Result<(), Failure> {
        let who = self.who();
        let file = check.equals_file.as_ref().map(|f| self.data_file(f));
        let count = check.count.or(file.as_ref().map(|f| f.len() as u64));
        struct State {
            skipped: u64,
            got: u64,
            hash: Sha256,
            diff: FirstDiff,
            closed: Option<PeerClosed>,
        }
        let mut st = State {
            skipped: 0,
            got: 0,
            hash: Sha256::new(),
            diff: FirstDiff::default(),
            closed: None,
        };
        let c = self.conns.get_mut(conn);
        let late = c.unread_check();
        let skip = check.skip;
        let at_least = check.at_least;
        let want_file = file.clone();
        let work = async {
            loop {
                // Take what the check still wants of the pending bytes.
                let room = match count {
                    Some(n) => (skip - st.skipped) + (n - st.got),
                    None => u64::MAX,
                };
                let take = c.take_pending(room.min(usize::MAX as u64) as usize);
                let mut piece = &take[..];
                let s = ((skip - st.skipped) as usize).min(piece.len());
                st.skipped += s as u64;
                piece = &piece[s..];
                if !piece.is_empty() {
                    st.hash.update(piece);
                    if let Some(f) = &want_file {
                        st.diff.feed(st.got, piece, f);
                    }
                    st.got += piece.len() as u64;
                }
                let done = match (count, at_least) {
                    (Some(n), _) => st.got >= n,
                    (None, Some(n)) => st.got >= n,
                    _ => false,
                };
                if done {
                    return;
                }
                if !c.read_more().await {
                    st.closed = c.peer_closed();
                    // What arrived with the close is still to be taken.
                    if c.pending().is_empty() {
                        return;
                    }
                }
            }
        };
        let finished = cx.deadline.race(work, late).await.is_some();
        let _ = far_future;
        let extra = c.pending().len();
        let sent = (!c.last_sent.is_empty()).then(|| quote(&c.last_sent));
        self.event(EventKind::Received {
            conn: conn.clone(),
            bytes: (st.skipped + st.got) as usize,
            data: format!("{} bytes (counted, not kept)", st.skipped + st.got),
        });
        let after = if skip > 0 {
            format!(" after the first {skip}")
        } else {
            String::new()
        };
        let expected = {
            let mut e = match (count, at_least) {
                (Some(n), _) => format!("{n} bytes{after}"),
                (None, Some(n)) => format!("at least {n} bytes{after}"),
                _ => "bytes".into(),
            };
            if let Some(f) = &check.equals_file {
                e.push_str(&format!(", equal to {f:?}"));
            }
            if let Some(h) = &check.sha256 {
                e.push_str(&format!(" with SHA-256 {}", hex(h)));
            }
            e
        };
        let ended = match st.closed {
            Some(PeerClosed::Fin) => format!(", then the {who} closed the connection (FIN)"),
            Some(PeerClosed::Rst) => ", then the connection was reset (RST)".to_string(),
            None if !finished => format!(" within {}: nothing more came", cx.within),
            None => String::new(),
        };
        let short = match (count, at_least) {
            (Some(n), _) => st.got < n,
            (None, Some(n)) => st.got < n,
            _ => false,
        };
        if short {
            let of = count.or(at_least).unwrap_or(0);
            let got = format!(
                "only {} of {of} bytes{after}{ended}{}",
                st.got,
                self.exit_suffix()
            );
            return Err(Failure {
                sent,
                ..cx.fail(expected, got)
            });
        }
        if let (Some(at), Some(name)) = (st.diff.at, &check.equals_file) {
            let got = format!(
                "the bytes{after} differ from {name:?} from byte {at} on: got {}, expected {}",
                short_hex(&st.diff.got),
                short_hex(&st.diff.want)
            );
            return Err(Failure {
                sent,
                ..cx.fail(expected, got)
            });
        }
        let digest: [u8; 32] = st.hash.finalize().into();
        if let Some(want) = &check.sha256 {
            if &digest != want {
                let got = format!("{} bytes{after} with SHA-256 {}", st.got, hex(&digest));
                return Err(Failure {
                    sent,
                    ..cx.fail(expected, got)
                });
            }
        }
        if count.is_some() && extra > 0 {
            // More came right after them: a longer stream than the spec says.
            let got = format!("{} bytes{after}, then {extra} more", st.got);
            return Err(Failure {
                sent,
                ..cx.fail(expected, got)
            });
        }
        Ok(())
    }

    /// A file the program wrote in its folder, compared by size, hash and content.
    async fn expect_file(
        &mut self,
        cx: StepCtx<'_>,
        path: &str,
        check: &FileCheck,
    ) -> Result<(), Failure> {
        let who = self.who();
        let full = self.sandbox.workdir.path().join(path);
        let (want, want_name): (Option<Arc<Vec<u8>>>, String) = match check {
            // Bytes given as hex that are not text are shown as hex: quoted, they would
            // read as GBK characters ("\xde\xad\xbe\xef" is valid GBK).
            FileCheck::Bytes(b) if std::str::from_utf8(b).is_err() => (
                Some(Arc::new(b.clone())),
                format!("the bytes {}", spaced_hex(b)),
            ),
            FileCheck::Bytes(b) => (Some(Arc::new(b.clone())), quote(b)),
            FileCheck::EqualsFile(f) => (Some(self.data_file(f)), format!("the content of {f:?}")),
            FileCheck::Sha256(h) => (None, format!("content with SHA-256 {}", hex(h))),
        };
        let read =
            tokio::task::block_in_place(|| -> std::io::Result<(u64, [u8; 32], FirstDiff)> {
                use std::io::Read;
                let mut f = std::fs::File::open(&full)?;
                let mut buf = vec![0u8; 64 << 10];
                let (mut n, mut h, mut diff) = (0u64, Sha256::new(), FirstDiff::default());
                loop {
                    let k = f.read(&mut buf)?;
                    if k == 0 {
                        break;
                    }
                    h.update(&buf[..k]);
                    if let Some(w) = &want {
                        diff.feed(n, &buf[..k], w);
                    }
                    n += k as u64;
                }
                Ok((n, h.finalize().into(), diff))
            });
        let expected = format!("{path:?} to hold {want_name}");
        let (size, digest, diff) = match read {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(cx.fail(
                    expected,
                    format!("the {who} wrote no file {path:?} in its folder"),
                ))
            }
            Err(e) => return Err(cx.fail(expected, format!("cannot read {path:?}: {e}"))),
        };
        let ok = match (check, &want) {
            (FileCheck::Sha256(h), _) => &digest == h,
            (_, Some(w)) => size == w.len() as u64 && diff.at.is_none(),
            _ => true,
        };
        if ok {
            return Ok(());
        }
        let mut got = format!(
            "{path:?} holds {size} bytes (SHA-256 {})",
            &hex(&digest)[..16]
        );
        if let Some(w) = &want {
            let wd: [u8; 32] = Sha256::digest(&w[..]).into();
            got.push_str(&format!(
                ", expected {} bytes (SHA-256 {})",
                w.len(),
                &hex(&wd)[..16]
            ));
            match diff.at {
                Some(at) => got.push_str(&format!(
                    "; they differ from byte {at} on: got {}, expected {}",
                    short_hex(&diff.got),
                    short_hex(&diff.want)
                )),
                None if (size as usize) < w.len() => got.push_str(
                    "; the file stops early: its bytes are the start of what was expected",
                ),
                None => got.push_str("; the expected bytes are followed by more"),
            }
        }
        Err(cx.fail(expected, got))
    }

    /// Every connection made so far is accepted, and the server is back asleep waiting
    /// for the next (every thread idle, one in accept/select/poll): so a connection it
    /// registers in a list after accept() is registered.
    async fn expect_waiting(&mut self, mut cx: StepCtx<'_>) -> Result<(), Failure> {
        let ready =
            || self.not_accepted_now() == 0 && self.sandbox.waiting_for_clients(self.proc());
        let wait = async {
            let mut tick = tokio::time::interval(super::super::POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if ready() {
                    return;
                }
            }
        };
        if cx.deadline.race(wait, never).await.is_some() || ready() {
            return Ok(());
        }
        let waiting = self.not_accepted_now();
        let got = if waiting > 0 {
            format!("{waiting} connection(s) still waited in the listen queue after {}: the server did not call accept(){}", cx.within, self.exit_suffix())
        } else {
            format!("the server was still busy after {} (running, or blocked somewhere else than accept()){}", cx.within, self.exit_suffix())
        };
        Err(cx.fail(
            "the server to accept() every connection and wait for the next",
            got,
        ))
    }
}
