//! Steps on the reference peer's UDP sockets. A datagram is a unit: each expectation
//! takes exactly one, whole, with the address it came from.

use super::super::context::Run;
use super::StepCtx;
use crate::outcome::{EventKind, Failure};
use crate::spec::udp::datagram_matches;
use crate::spec::{DatagramFrom, Matcher, ProtocolPeer, SawRole, Target, Transfer};
use crate::text::quote;
use crate::udp_peer::{stop_and_wait, Datagram};
use std::net::SocketAddr;
use std::time::Duration;

/// UDP datagrams of the case's network that reached a port nobody listens on
/// (`/proc/net/snmp`, Udp NoPorts): where an answer to a fixed address goes.
fn no_ports(run: &Run<'_>) -> Option<u64> {
    run.sandbox.netns.as_ref()?;
    run.sandbox
        .in_net(|| {
            let text = std::fs::read_to_string("/proc/thread-self/net/snmp").ok()?;
            let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
            let (names, values) = (udp.next()?, udp.next()?);
            let i = names.split_whitespace().position(|n| n == "NoPorts")?;
            values.split_whitespace().nth(i)?.parse().ok()
        })
        .ok()
        .flatten()
}

impl Run<'_> {
    /// Where a step's datagram goes: the student's bound socket (server cases), or
    /// where the student's last datagram came from (client cases).
    fn datagram_target(&mut self, peer: &str) -> Result<SocketAddr, String> {
        match self.case.target {
            Target::Server => {
                self.udp_peer_for_server(peer)
                    .map_err(|e| format!("a UDP socket for the reference peer: {e}"))?;
                Ok(self.listening().expect("bound before steps").addr)
            }
            Target::Client => self.udp.get(peer).and_then(|p| p.last_from).ok_or_else(|| {
                "the client has sent no datagram yet, so there is no address to answer".to_string()
            }),
        }
    }

    pub(super) async fn send_datagram(
        &mut self,
        cx: StepCtx<'_>,
        peer: &str,
        bytes: &[u8],
    ) -> Result<(), Failure> {
        let to = self
            .datagram_target(peer)
            .map_err(|e| cx.fail(format!("to send {}", quote(bytes)), e))?;
        let r = self.udp.send(peer, to, bytes).await;
        self.take_udp_events();
        r.map_err(|e| {
            cx.fail(
                format!("to send {} to {to}", quote(bytes)),
                format!("sendto failed: {e}"),
            )
        })?;
        self.last_datagram = bytes.to_vec();
        Ok(())
    }

    /// Waits for the next datagram at `peer`, which must match as a whole (and come
    /// from the student's socket, with `from = "student"`).
    pub(super) async fn expect_datagram(
        &mut self,
        mut cx: StepCtx<'_>,
        peer: &str,
        matcher: &Matcher,
        from: DatagramFrom,
    ) -> Result<(), Failure> {
        if self.case.target == Target::Server {
            self.udp_peer_for_server(peer)
                .map_err(|e| cx.fail(matcher.describe(), e.to_string()))?;
        }
        let lost_before = no_ports(self);
        let late = self.udp.unread_check(peer);
        let got = cx.deadline.race(self.udp.recv(peer), late).await;
        self.take_udp_events();
        let sent = (!self.last_datagram.is_empty()).then(|| quote(&self.last_datagram));
        let fail = |cx: &StepCtx<'_>, got: String| Failure {
            sent: sent.clone(),
            ..cx.fail(matcher.describe(), got)
        };
        let d: Datagram = match got {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(fail(&cx, format!("recvfrom failed in the grader: {e}"))),
            None => {
                let lost = match (lost_before, no_ports(self)) {
                    (Some(a), Some(b)) if b > a => format!(
                        "; meanwhile {} datagram(s) went to a port where nobody listens: the {} sent to another address than the one the request came from",
                        b - a,
                        self.who()
                    ),
                    _ => String::new(),
                };
                let lost_by_fault = match self.udp.last_lost() {
                    Some(n) => format!("; the {}'s datagram #{n} was dropped (this case's fault: as if lost on the network) and nothing came after it: it must be sent again after a timeout", self.who()),
                    None => String::new(),
                };
                let got = match self.other_protocol_note() {
                    Some(other) => other,
                    None => format!(
                        "no datagram within {}{lost}{lost_by_fault}{}",
                        cx.within,
                        self.exit_suffix()
                    ),
                };
                return Err(fail(&cx, got));
            }
        };
        if self.case.target == Target::Client {
            self.note_meant_for(peer, &d);
        }
        let what = format!(
            "the datagram {} ({} bytes) from {}",
            quote(&d.data),
            d.data.len(),
            d.from
        );
        if from == DatagramFrom::Student {
            let want = match self.case.target {
                Target::Server => self.listening().map(|l| l.addr),
                Target::Client => self.udp.get(peer).and_then(|p| p.student),
            };
            if let Some(want) = want.filter(|w| *w != d.from) {
                let why = match self.case.target {
                    Target::Server => format!("not from {want}, where the request went: the answer was sent from another socket (another port); answer with the socket that received the request"),
                    Target::Client => format!("not from {want}, where its first datagram came from: the client sent from another socket"),
                };
                return Err(fail(&cx, format!("received {what}, {why}")));
            }
        }
        if !datagram_matches(matcher, &d.data) {
            return Err(fail(&cx, format!("received {what}")));
        }
        Ok(())
    }

    /// Client cases: the first datagram says where the client meant to send it (a
    /// redirect may have brought it here from another address or port).
    fn note_meant_for(&mut self, peer: &str, d: &Datagram) {
        let Some(p) = self.udp.get(peer) else { return };
        if p.student != Some(d.from) || self.udp_noted {
            return;
        }
        self.udp_noted = true;
        let local = p.local;
        let meant = self
            .sandbox
            .udp_meant_for(d.from, local)
            .or(d.to)
            .unwrap_or(local);
        let want = self.spec.connects_to;
        let text = match meant == want || (meant.port() == want.port() && want.ip().is_loopback() && meant.ip().is_loopback()) {
            true => format!("the client sends from {} to {meant}", d.from),
            false => format!("the client sent to {meant}, not {want}; the grader's network took it to the reference peer"),
        };
        self.event(EventKind::Note { text });
    }

    /// Nothing reaches `peer` for `window`: the window is the behaviour under test.
    pub(super) async fn expect_no_datagram(
        &mut self,
        cx: StepCtx<'_>,
        peer: &str,
        window: Duration,
    ) -> Result<(), Failure> {
        if self.case.target == Target::Server {
            self.udp_peer_for_server(peer)
                .map_err(|e| cx.fail("no datagram", e.to_string()))?;
        }
        let t = tokio::time::Instant::now();
        let got = tokio::time::timeout(window, self.udp.recv(peer)).await;
        self.take_udp_events();
        match got {
            Err(_) => Ok(()),
            Ok(Ok(d)) => Err(cx.fail(
                format!("no datagram for {}", humantime::format_duration(window)),
                format!(
                    "received the datagram {} ({} bytes) from {} after {} ms",
                    quote(&d.data),
                    d.data.len(),
                    d.from,
                    t.elapsed().as_millis()
                ),
            )),
            Ok(Err(e)) => {
                Err(cx.fail("no datagram", format!("recvfrom failed in the grader: {e}")))
            }
        }
    }

    /// Plays the case's protocol peer until its transfer is over.
    pub(super) async fn expect_transfer(
        &mut self,
        mut cx: StepCtx<'_>,
        t: &Transfer,
    ) -> Result<(), Failure> {
        let Some(ProtocolPeer::StopAndWait { role, data, rto }) = self.case.udp.peer.clone() else {
            unreachable!("validated: expect_transfer needs a protocol peer")
        };
        let expected = format!(
            "the stop-and-wait transfer to complete within {}",
            cx.within
        );
        let outcome = match role {
            SawRole::Sender => {
                let to = self
                    .datagram_target("main")
                    .map_err(|e| cx.fail(expected.clone(), e))?;
                let late = self.udp.unread_check("main");
                let run = stop_and_wait::send(&mut self.udp, "main", to, &data, rto, &mut self.saw);
                cx.deadline.race(run, late).await
            }
            SawRole::Receiver => {
                let late = self.udp.unread_check("main");
                let run = stop_and_wait::receive(&mut self.udp, "main", &mut self.saw);
                cx.deadline.race(run, late).await
            }
        };
        self.take_udp_events();
        let stalled = |run: &Run<'_>| match &run.saw.last {
            Some(l) => format!("the transfer stalled; last: {l}{}", run.exit_suffix()),
            None => format!("no packet within {}{}", cx.within, run.exit_suffix()),
        };
        match outcome {
            None => Err(cx.fail(expected, stalled(self))),
            Some(Err(why)) => Err(cx.fail(expected, why)),
            Some(Ok(())) => match t {
                Transfer::Complete => Ok(()),
                Transfer::Equals { name, bytes } if *bytes == self.saw.received => Ok(()),
                Transfer::Equals { name, bytes } => {
                    let got = &self.saw.received;
                    let at = got
                        .iter()
                        .zip(bytes.iter())
                        .position(|(a, b)| a != b)
                        .unwrap_or(got.len().min(bytes.len()));
                    Err(cx.fail(
                        format!("the {} bytes of {name:?}", bytes.len()),
                        format!("received {} bytes, different from byte {at} on", got.len()),
                    ))
                }
            },
        }
    }
}
