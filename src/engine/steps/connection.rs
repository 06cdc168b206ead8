//! Steps on the reference peer's TCP connections.

use super::super::context::Run;
use super::super::deadline::{far_future, never};
use super::StepCtx;
use crate::outcome::{CloseHow, EventKind, Failure};
use crate::peer::{Connection, PeerClosed, ReadOutcome};
use crate::spec::{CloseKind, ConnName, ConnOpts, ExpectedClose, Matcher};
use crate::sys::readable_now;
use crate::text::quote;
use std::os::fd::AsRawFd;

/// Bytes a program may send while `expect_close` waits for it to close, beyond twice
/// what it was sent on the connection (an echo server that lags still sends all of
/// that back): one that sends more keeps sending (a loop that answers every empty
/// `recv`), so waiting on is only both sides burning CPU until the deadline, and the
/// verdict is already clear.
const CLOSE_FLOOD: u64 = 64 << 10;

/// What a program may send while `expect_close` waits, on a connection it was sent
/// `sent` bytes on.
fn close_flood(sent: u64) -> u64 {
    CLOSE_FLOOD + 2 * sent
}

fn describe_io(e: &std::io::Error, who: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => {
            format!("the connection was reset (RST) by the {who}")
        }
        std::io::ErrorKind::BrokenPipe => {
            format!("the {who} had closed the connection (broken pipe)")
        }
        _ => e.to_string(),
    }
}

/// "nothing" or the bytes quoted.
fn received(what: &[u8]) -> String {
    if what.is_empty() {
        "nothing".to_string()
    } else {
        quote(what)
    }
}

/// What arrived, counted in all: `kept` is the end of `total` bytes when a flood
/// outgrew the buffer (the count is then what arrived, not what was kept).
pub(super) fn received_of(kept: &[u8], total: u64) -> String {
    if total > kept.len() as u64 {
        // Only the very end: a quote of all that was kept would add its own, smaller,
        // "(N bytes in all)" and contradict the true total.
        let tail = &kept[kept.len().saturating_sub(64)..];
        format!("{total} bytes, ending with …{}", quote(tail))
    } else {
        received(kept)
    }
}

impl Run<'_> {
    /// Server targets: the reference client connects to the student's server.
    pub(super) async fn connect(
        &mut self,
        mut cx: StepCtx<'_>,
        conn: &ConnName,
        opts: &ConnOpts,
    ) -> Result<(), Failure> {
        let recv_buffer = opts.recv_buffer;
        let addr = self
            .listening()
            .expect("validated: connect is for servers, which listen before steps run")
            .addr;
        let expected = || format!("the server to take a connection on {addr}");
        // A refused connect while the program lives is a moment when nothing listened
        // (a server that makes a new listening socket for each client, or the instant
        // between the kernel marking a socket listening and taking connections on it): a
        // person would simply run their client again, so the reference client tries
        // again once the program listens, within the step's deadline.
        let mut refused = 0;
        let outcome = loop {
            let socket = self
                .client_socket(addr, recv_buffer)
                .map_err(|e| cx.fail("a socket for the reference client", e.to_string()))?;
            match cx.deadline.race(socket.connect(addr), never).await {
                Some(Err(e))
                    if e.kind() == std::io::ErrorKind::ConnectionRefused
                        && !self.proc().is_dead() =>
                {
                    refused += 1;
                    let port = Some(addr.port());
                    let listens_again = async {
                        let mut tick = tokio::time::interval(super::super::POLL);
                        // Delay, not burst: a loop that fell behind would otherwise be
                        // ready at every poll and starve the deadline it races.
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        loop {
                            tick.tick().await;
                            if self.proc().is_dead()
                                || self.sandbox.listening_socket(self.proc(), port).is_some()
                            {
                                return;
                            }
                        }
                    };
                    if cx.deadline.race(listens_again, never).await.is_none() {
                        break Some(Err(e));
                    }
                }
                other => break other,
            }
        };
        if refused > 0 {
            let text = format!("connect() to {addr} was refused {refused} time(s): the server was not listening at that moment; the reference client tried again");
            self.event(EventKind::Note { text });
        }
        match outcome {
            Some(Ok(stream)) => {
                let mut c = Connection::new(stream).map_err(|e| cx.fail("a connection", e.to_string()))?;
                c.set_read_rate(opts.read_rate);
                self.event(EventKind::Connected { conn: conn.clone(), address: addr.to_string() });
                self.conns.insert(conn, c);
                Ok(())
            }
            Some(Err(e)) if refused > 0 => Err(cx.fail(
                expected(),
                format!("connect() failed: {e}: the server stopped listening on {addr} and did not listen again within {}{}", cx.within, self.exit_suffix()),
            )),
            Some(Err(e)) => Err(cx.fail(expected(), format!("connect() failed: {e}{}{}", no_tcp_to(addr.ip()), self.exit_suffix()))),
            None => Err(cx.fail(
                expected(),
                format!("connect() did not complete within {}: the listen queue is full or the server stopped listening{}", cx.within, self.exit_suffix()),
            )),
        }
    }

    /// A non-blocking socket of the reference client, in the case's network.
    fn client_socket(
        &self,
        addr: std::net::SocketAddr,
        recv_buffer: Option<u32>,
    ) -> std::io::Result<tokio::net::TcpSocket> {
        let socket = self
            .sandbox
            .in_net(move || -> std::io::Result<std::net::TcpStream> {
                let s = socket2::Socket::new(
                    socket2::Domain::for_address(addr),
                    socket2::Type::STREAM,
                    None,
                )?;
                if let Some(n) = recv_buffer {
                    s.set_recv_buffer_size(n as usize)?;
                }
                s.set_nonblocking(true)?;
                Ok(s.into())
            })
            .and_then(|r| r)?;
        Ok(tokio::net::TcpSocket::from_std_stream(socket))
    }

    /// Client targets: the reference server accepts the student's connection.
    pub(super) async fn accept(
        &mut self,
        mut cx: StepCtx<'_>,
        conn: &ConnName,
        opts: &ConnOpts,
    ) -> Result<(), Failure> {
        enum Seen<T> {
            Accepted(T),
            Exited(std::process::ExitStatus),
        }
        let crate::engine::context::Side::Client(side) = &self.side else {
            unreachable!("validated: accept is for clients")
        };
        let listener = side
            .reference
            .as_ref()
            .expect("client cases have a reference server");
        let proc = self.proc();
        let event = async {
            tokio::select! {
                biased;
                r = listener.accept() => Seen::Accepted(r),
                status = proc.exited() => Seen::Exited(status),
            }
        };
        let fd = listener.as_raw_fd();
        let mut accepted = cx.deadline.race(event, || readable_now(fd)).await;
        // A client that connects, sends and exits at once: its exit can be seen before
        // the runtime reports the listener readable, with the connection already in the
        // queue (connect() returned). It did connect.
        if matches!(accepted, Some(Seen::Exited(_))) && readable_now(fd) {
            accepted = Some(Seen::Accepted(listener.accept().await));
        }
        let within = &cx.within;
        let expected = || format!("a connection from the client within {within}");
        match accepted {
            Some(Seen::Accepted(Ok((stream, from)))) => {
                let meant = self
                    .sandbox
                    .meant_for(self.host, &stream, self.spec.connects_to);
                let mut c =
                    Connection::new(stream).map_err(|e| cx.fail("a connection", e.to_string()))?;
                c.set_read_rate(opts.read_rate);
                self.event(EventKind::ClientConnected {
                    conn: conn.clone(),
                    from: from.to_string(),
                    meant_for: meant.to_string(),
                });
                if meant != self.spec.connects_to {
                    self.event(EventKind::Note { text: format!("the client connected to {meant}, not {}; the grader's network took it to the reference server", self.spec.connects_to) });
                }
                self.conns.insert(conn, c);
                Ok(())
            }
            Some(Seen::Accepted(Err(e))) => Err(cx.fail(
                "a connection from the client",
                format!("accept() failed in the grader: {e}"),
            )),
            Some(Seen::Exited(status)) => {
                self.note_exit();
                let last = self.last_stderr_line().await;
                let mut got = format!(
                    "the client {} without connecting{last}",
                    crate::sandbox::process::describe_status(status)
                );
                if last.contains("refused") {
                    got.push_str(&format!(
                        "; the reference server listens at {}",
                        self.where_clients_connect()
                    ));
                }
                Err(cx.fail(expected(), got))
            }
            None => {
                let out = self.proc().stdout.snapshot();
                let printed = if out.total == 0 {
                    "it printed nothing".to_string()
                } else {
                    format!("it printed {}", quote(&out.text()))
                };
                let got = match self.other_protocol_note() {
                    Some(other) => other,
                    None => format!("no connection within {within}; {printed}; the reference server listens at {}", self.where_clients_connect()),
                };
                Err(cx.fail(expected(), got))
            }
        }
    }

    /// Server targets: every connection made so far has been taken by accept(): the
    /// program holds a socket connected to our end, which a connection waiting in the
    /// listen queue is not.
    pub(super) async fn expect_accepted(&mut self, mut cx: StepCtx<'_>) -> Result<(), Failure> {
        let all_taken = async {
            let mut tick = tokio::time::interval(super::super::POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if self.not_accepted() == 0 {
                    return;
                }
            }
        };
        if cx.deadline.race(all_taken, never).await.is_some() {
            return Ok(());
        }
        // One last look, after the deadline.
        let waiting = self.not_accepted();
        if waiting == 0 {
            return Ok(());
        }
        Err(cx.fail(
            "the server to accept() the connection",
            format!("{waiting} connection(s) still waited in the listen queue after {}: the server did not call accept(){}", cx.within, self.exit_suffix()),
        ))
    }

    /// How many of the grader's connections still wait in the server's listen queue.
    pub(super) fn not_accepted_now(&self) -> usize {
        self.not_accepted()
    }

    fn not_accepted(&self) -> usize {
        match self.sandbox.sockets(self.proc()) {
            // Accepted: the program holds a socket whose peer is our end, or has
            // already sent on it or closed it, which only an accepted one can be.
            Ok(list) => self
                .conns
                .iter()
                .filter(|c| {
                    c.peer_closed().is_none()
                        && !c.heard_from_peer()
                        && !list.iter().any(|s| !s.listening && s.peer == Some(c.local))
                })
                .count(),
            // No pidfd_getfd here: a queued connection has no inode in the table.
            Err(_) => {
                let table = self.sandbox.tcp_table();
                self.conns
                    .iter()
                    .filter(|c| {
                        !c.heard_from_peer()
                            && table.iter().any(|e| {
                                e.local == c.remote
                                    && e.remote == c.local
                                    && e.inode == 0
                                    && e.state == crate::sandbox::proc_net::TCP_ESTABLISHED
                            })
                    })
                    .count()
            }
        }
    }

    pub(super) async fn send(
        &mut self,
        mut cx: StepCtx<'_>,
        conn: &ConnName,
        bytes: &[u8],
    ) -> Result<(), Failure> {
        let who = self.who();
        let c = self.conns.get_mut(conn);
        let r = cx.deadline.race(c.send(bytes), never).await;
        let data = quote(bytes);
        if matches!(r, Some(Err(_))) {
            self.settle_exit().await;
        }
        let suffix = self.exit_suffix();
        match r {
            Some(Ok(())) => {
                self.event(EventKind::Sent {
                    conn: conn.clone(),
                    bytes: bytes.len(),
                    data,
                });
                Ok(())
            }
            Some(Err(e)) => Err(cx.fail(
                format!("to send {data}"),
                format!("send failed: {}{suffix}", describe_io(&e, who)),
            )),
            None => Err(cx.fail(
                format!("to send {data}"),
                format!(
                    "the {who} did not read: the data could not be sent within {}",
                    cx.within
                ),
            )),
        }
    }

    /// Waits for data that matches, however the program's writes are cut into segments.
    pub(super) async fn expect(
        &mut self,
        mut cx: StepCtx<'_>,
        conn: &ConnName,
        matcher: &Matcher,
    ) -> Result<(), Failure> {
        let who = self.who();
        let c = self.conns.get_mut(conn);
        let far = far_future();
        let late = c.unread_check();
        let outcome = cx
            .deadline
            .race(c.read_until(matcher, far), late)
            .await
            .unwrap_or(ReadOutcome::TimedOut);
        if matches!(outcome, ReadOutcome::Mismatch) && !matcher.is_negative() {
            self.answer_in_full(conn).await;
        }
        let c = self.conns.get_mut(conn);
        let sent = (!c.last_sent.is_empty()).then(|| quote(&c.last_sent));
        let pending = c.pending().to_vec();
        let total = c.pending_total();
        // `not_contains` passes when the wait ends without the text (a close included:
        // a close is no answer); what arrived stays for the next expect.
        if matcher.is_negative() && !matches!(outcome, ReadOutcome::Mismatch) {
            return Ok(());
        }
        if matches!(outcome, ReadOutcome::Closed(_)) {
            self.settle_exit().await;
        }
        let got = match outcome {
            ReadOutcome::Matched(bytes) => {
                self.event(EventKind::Received {
                    conn: conn.clone(),
                    bytes: bytes.len(),
                    data: quote(&bytes),
                });
                return Ok(());
            }
            ReadOutcome::Mismatch => format!("received {}", received_of(&pending, total)),
            ReadOutcome::TimedOut => format!(
                "received {} within {}{}",
                received_of(&pending, total),
                cx.within,
                self.exit_suffix()
            ),
            ReadOutcome::Closed(PeerClosed::Fin) => format!(
                "received {}, then the {who} closed the connection (FIN){}",
                received_of(&pending, total),
                self.exit_suffix()
            ),
            ReadOutcome::Closed(PeerClosed::Rst) => format!(
                "received {}, then the connection was reset (RST){}",
                received_of(&pending, total),
                self.exit_suffix()
            ),
        };
        if !pending.is_empty() {
            self.event(EventKind::Received {
                conn: conn.clone(),
                bytes: total as usize,
                data: quote(&pending),
            });
        }
        Err(Failure {
            sent,
            ..cx.fail(matcher.describe(), got)
        })
    }

    /// After data that cannot match: waits until the program waits for us (or at most
    /// as [`Run::settle`] does) and reads what it sent meanwhile, up to 64 KiB, so the
    /// reason quotes its whole answer however its writes were cut into segments
    /// ("QU" then "IT\n" from a server answering each recv() reads "QUIT\n", not
    /// sometimes "QU").
    async fn answer_in_full(&mut self, conn: &ConnName) {
        self.settle().await;
        let c = self.conns.get_mut(conn);
        let (start, now) = (c.pending_total(), tokio::time::Instant::now());
        while c.pending_total() - start < 64 * 1024
            && tokio::time::timeout_at(now, c.read_more()).await == Ok(true)
        {}
    }

    /// Half-close: `shutdown(SHUT_WR)`, we keep reading.
    pub(super) async fn shutdown(
        &mut self,
        cx: StepCtx<'_>,
        conn: &ConnName,
    ) -> Result<(), Failure> {
        let who = self.who();
        self.conns
            .get_mut(conn)
            .shutdown_write()
            .await
            .map_err(|e| cx.fail("to half-close the connection", describe_io(&e, who)))?;
        self.event(EventKind::Shutdown { conn: conn.clone() });
        Ok(())
    }

    pub(super) fn close(
        &mut self,
        cx: StepCtx<'_>,
        conn: &ConnName,
        kind: CloseKind,
    ) -> Result<(), Failure> {
        self.conns
            .get_mut(conn)
            .close(kind)
            .map_err(|e| cx.fail("to close the connection", e.to_string()))?;
        self.event(EventKind::Closed {
            conn: conn.clone(),
            how: CloseHow::from(kind),
        });
        Ok(())
    }

    /// When a process other than the program itself holds the program's end of a
    /// connection that stayed open (a fork()ed child, a daemon), who: a close by the
    /// program sends no FIN while a copy of the socket is open elsewhere.
    fn held_by_a_child(
        &self,
        (student, grader): (std::net::SocketAddr, std::net::SocketAddr),
    ) -> String {
        let Some(proc) = self.proc.as_ref() else {
            return String::new();
        };
        let holders = self.sandbox.connection_holders(proc, student, grader);
        if holders.iter().all(|(pid, _)| *pid == proc.pid) {
            return String::new();
        }
        let named: Vec<String> = holders
            .iter()
            .map(|(pid, cmd)| self.describe_holder(*pid, cmd))
            .collect();
        format!(
            "; {} still {} the connection: no FIN is sent while any process holds it (after fork(), each process closes the sockets it does not use)",
            named.join(" and "),
            if named.len() > 1 { "hold" } else { "holds" }
        )
    }

    /// Waits for the program to close the connection (FIN or RST, as the spec says),
    /// reading what it sends meanwhile.
    pub(super) async fn expect_close(
        &mut self,
        mut cx: StepCtx<'_>,
        conn: &ConnName,
        kind: ExpectedClose,
    ) -> Result<(), Failure> {
        let c = self.conns.get_mut(conn);
        let before = c.received_total;
        let pending_before = c.pending().len();
        let far = far_future();
        let late = c.unread_check();
        let flood = close_flood(c.sent_total);
        // A flood ends the wait (None) as the deadline does.
        let seen = cx
            .deadline
            .race(c.wait_close(far, flood), late)
            .await
            .flatten();
        let extra = c.pending()[pending_before.min(c.pending().len())..].to_vec();
        let more = c.received_total - before;
        let sent = (!c.last_sent.is_empty()).then(|| quote(&c.last_sent));
        let ends = (c.remote, c.local);
        if !extra.is_empty() {
            self.event(EventKind::Received {
                conn: conn.clone(),
                bytes: more as usize,
                data: quote(&extra),
            });
        }
        if let Some(how) = seen {
            self.event(EventKind::PeerClosed {
                conn: conn.clone(),
                how: how.into(),
            });
        }
        if seen == Some(PeerClosed::Rst) {
            self.settle_exit().await;
        }
        // Of a flood only the end is kept: say which part is quoted.
        let data_note = match more {
            0 => String::new(),
            n if (extra.len() as u64) < n => format!(
                " (meanwhile it sent {more} more bytes, ending with: {})",
                quote(&extra)
            ),
            _ => format!(" (meanwhile it sent {more} more bytes: {})", quote(&extra)),
        };
        let got = match (seen, kind) {
            (Some(PeerClosed::Fin), ExpectedClose::Fin | ExpectedClose::Any) | (Some(PeerClosed::Rst), ExpectedClose::Rst | ExpectedClose::Any) => return Ok(()),
            (Some(PeerClosed::Rst), _) => format!("the connection was reset (RST) instead{data_note}{}", self.exit_suffix()),
            (Some(PeerClosed::Fin), _) => format!("an orderly close (FIN) instead{data_note}"),
            (None, _) if more > flood => format!("the connection stayed open: it kept sending instead of closing (the grader stopped reading after {} KiB){data_note}", flood >> 10),
            (None, _) => format!("the connection stayed open: neither FIN nor RST within {}{data_note}{}", cx.within, self.held_by_a_child(ends)),
        };
        Err(Failure {
            sent,
            ..cx.fail(kind.describe(), got)
        })
    }
}

/// Why no client can connect to a server listening on `ip`, where the address says it:
/// Linux lets a TCP socket bind and listen on a multicast or broadcast address (as it
/// lets UDP receive there), but a TCP connection can only go to one machine's address.
fn no_tcp_to(ip: std::net::IpAddr) -> String {
    let kind = match ip {
        std::net::IpAddr::V4(v) if v.is_multicast() => "a multicast address",
        std::net::IpAddr::V4(v) if v.is_broadcast() => "the broadcast address",
        std::net::IpAddr::V6(v) if v.is_multicast() => "a multicast address",
        _ => return String::new(),
    };
    format!(
        " ({ip} is {kind}: bind() and listen() accept it, but no TCP client can connect to it; \
         bind to '0.0.0.0' or to an address of the machine)"
    )
}
