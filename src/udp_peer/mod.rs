//! The reference side of a UDP case: its sockets, and the faults it plays.
//!
//! UDP has no connection: a datagram arrives whole or not at all, from some address.
//! So a [`UdpPeers`] keeps one socket per name the spec gives (`peer = "a"`), hands each
//! received datagram to the step that waits for it as a unit, with where it came from
//! and where it was sent, and sends each datagram through the case's [`Fault`]s: the
//! grader is the network here (no netem), so it loses the student's Nth datagram, or
//! repeats, swaps, holds back or cuts its own.
//!
//! Everything it does is written to [`UdpPeers::events`] as it happens (the engine
//! moves them into the transcript), so a wait cut short by a deadline still shows
//! what came before it.

pub(crate) mod stop_and_wait;

use crate::outcome::EventKind;
use crate::spec::Fault;
use crate::text::quote;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Largest UDP payload: every datagram is read whole.
const MAX_DATAGRAM: usize = 65535;

/// One datagram the reference received.
#[derive(Debug, Clone)]
pub(crate) struct Datagram {
    pub(crate) data: Vec<u8>,
    pub(crate) from: SocketAddr,
    /// Its destination as the packet said (`IP_ORIGDSTADDR`), when the socket asked.
    pub(crate) to: Option<SocketAddr>,
}

/// One reference socket.
pub(crate) struct PeerSocket {
    sock: Arc<UdpSocket>,
    pub(crate) local: SocketAddr,
    /// Where the student's first datagram to this socket came from.
    pub(crate) student: Option<SocketAddr>,
    /// Where the student's last datagram to this socket came from: where an answer goes.
    pub(crate) last_from: Option<SocketAddr>,
    /// The destination address of the student's last datagram: answers go out from it
    /// (`IP_PKTINFO`), as from a socket bound to that address. The wildcard socket
    /// would pick the source by route (127.0.0.1 towards a client on 127.0.0.1), and a
    /// connected client drops an answer from anywhere but where it sent. A redirected
    /// datagram's destination is 127.0.0.1: the answer from it matches conntrack's
    /// reply tuple, which turns its source back into the address the client sent to.
    reply_from: Option<Ipv4Addr>,
}

impl PeerSocket {
    /// Wraps a bound, non-blocking std socket (made inside the case's namespace).
    pub(crate) fn new(sock: std::net::UdpSocket) -> io::Result<PeerSocket> {
        let local = sock.local_addr()?;
        Ok(PeerSocket {
            sock: Arc::new(UdpSocket::from_std(sock)?),
            local,
            student: None,
            last_from: None,
            reply_from: None,
        })
    }

    /// Receives one datagram whole, with its destination when `IP_RECVORIGDSTADDR` is on.
    async fn recv(&self) -> io::Result<Datagram> {
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::READABLE, || {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                let mut cmsg = nix::cmsg_space!(libc::sockaddr_in);
                let mut iov = [io::IoSliceMut::new(&mut buf)];
                let msg = recvmsg::<SockaddrStorage>(
                    fd,
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT,
                )
                .map_err(io::Error::from)?;
                let n = msg.bytes;
                let from = msg
                    .address
                    .and_then(|a| {
                        a.as_sockaddr_in()
                            .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                            .or_else(|| {
                                a.as_sockaddr_in6()
                                    .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                            })
                    })
                    .ok_or_else(|| io::Error::other("a datagram without a sender address"))?;
                let mut to = None;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::Ipv4OrigDstAddr(sin) = c {
                            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                            to = Some(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)));
                        }
                    }
                }
                buf.truncate(n);
                Ok(Datagram {
                    data: buf,
                    from,
                    to,
                })
            })
            .await
    }
}

/// Sends one datagram to `to`, from the address `from` when given (`IP_PKTINFO`'s
/// `ipi_spec_dst`: the source address of the answer, whatever the route would pick).
async fn send_from(
    sock: &UdpSocket,
    bytes: &[u8],
    to: SocketAddr,
    from: Option<Ipv4Addr>,
) -> io::Result<usize> {
    let (Some(from), SocketAddr::V4(to4)) = (from, to) else {
        return sock.send_to(bytes, to).await;
    };
    let info = libc::in_pktinfo {
        ipi_ifindex: 0,
        ipi_spec_dst: libc::in_addr {
            s_addr: u32::from(from).to_be(),
        },
        ipi_addr: libc::in_addr { s_addr: 0 },
    };
    let dest = nix::sys::socket::SockaddrIn::from(to4);
    let fd = sock.as_raw_fd();
    sock.async_io(Interest::WRITABLE, || {
        nix::sys::socket::sendmsg(
            fd,
            &[io::IoSlice::new(bytes)],
            &[nix::sys::socket::ControlMessage::Ipv4PacketInfo(&info)],
            MsgFlags::MSG_DONTWAIT,
            Some(&dest),
        )
        .map_err(io::Error::from)
    })
    .await
}

fn now(e: EventKind) -> (tokio::time::Instant, EventKind) {
    (tokio::time::Instant::now(), e)
}

/// The case's faults and how far the counts are.
#[derive(Default)]
struct FaultPlan {
    faults: Vec<Fault>,
    /// Datagrams received from the student so far.
    received: u32,
    /// Datagrams the reference sent so far.
    sent: u32,
    /// A datagram held back by `reorder`: it goes out after the reference's `after`th.
    held: Option<Held>,
}

struct Held {
    after: u32,
    peer: String,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// The reference sockets of one UDP case, by name.
#[derive(Default)]
pub(crate) struct UdpPeers {
    sockets: HashMap<String, PeerSocket>,
    plan: FaultPlan,
    /// The student's datagrams a `drop` fault lost, by number.
    pub(crate) dropped: Vec<u32>,
    /// What happened since the engine last took them (see the module doc).
    pub(crate) events: Vec<(tokio::time::Instant, EventKind)>,
}

impl UdpPeers {
    pub(crate) fn with_faults(faults: Vec<Fault>) -> UdpPeers {
        UdpPeers {
            plan: FaultPlan {
                faults,
                ..FaultPlan::default()
            },
            ..UdpPeers::default()
        }
    }

    /// The student's datagram lost by a `drop` fault, when nothing came after it.
    pub(crate) fn last_lost(&self) -> Option<u32> {
        self.dropped
            .last()
            .copied()
            .filter(|n| *n == self.plan.received)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&PeerSocket> {
        self.sockets.get(name)
    }

    pub(crate) fn insert(&mut self, name: &str, s: PeerSocket) {
        self.sockets.insert(name.to_string(), s);
    }

    /// Sends `bytes` from `peer` to `to`, through the faults.
    pub(crate) async fn send(
        &mut self,
        peer: &str,
        to: SocketAddr,
        bytes: &[u8],
    ) -> io::Result<()> {
        self.plan.sent += 1;
        let n = self.plan.sent;
        let mut bytes = bytes.to_vec();
        let mut fault = None;
        for f in self.plan.faults.clone() {
            match f {
                Fault::Truncate { nth, to } if nth == n && to < bytes.len() => {
                    bytes.truncate(to);
                    fault = Some(f.to_string());
                }
                Fault::Reorder(first, after) if first == n => {
                    self.events.push(now(EventKind::Note {
                        text: format!("datagram #{n} to {to} held back: {f}"),
                    }));
                    self.plan.held = Some(Held {
                        after,
                        peer: peer.to_string(),
                        to,
                        bytes,
                    });
                    return Ok(());
                }
                Fault::Delay { nth, by } if nth == n => {
                    self.delayed(peer, to, bytes, by, f.to_string())?;
                    return Ok(());
                }
                _ => {}
            }
        }
        self.send_now(peer, to, &bytes, fault.clone()).await?;
        if self.plan.faults.contains(&Fault::Duplicate(n)) {
            self.send_now(peer, to, &bytes, Some(Fault::Duplicate(n).to_string()))
                .await?;
        }
        if self.plan.held.as_ref().is_some_and(|h| h.after == n) {
            let h = self.plan.held.take().expect("checked");
            let why = format!("sent after #{n} (reorder)");
            self.send_now(&h.peer, h.to, &h.bytes, Some(why)).await?;
        }
        Ok(())
    }

    async fn send_now(
        &mut self,
        peer: &str,
        to: SocketAddr,
        bytes: &[u8],
        fault: Option<String>,
    ) -> io::Result<()> {
        let s = self
            .sockets
            .get(peer)
            .ok_or_else(|| io::Error::other("no such peer"))?;
        send_from(&s.sock, bytes, to, s.reply_from).await?;
        self.events.push(now(EventKind::DatagramSent {
            peer: peer.to_string(),
            to: to.to_string(),
            bytes: bytes.len(),
            data: quote(bytes),
            fault,
        }));
        Ok(())
    }

    /// A datagram that goes out later: the delay is the behaviour under test, so it is
    /// a timer of its own, and the steps go on meanwhile.
    fn delayed(
        &mut self,
        peer: &str,
        to: SocketAddr,
        bytes: Vec<u8>,
        by: Duration,
        why: String,
    ) -> io::Result<()> {
        let s = self
            .sockets
            .get(peer)
            .ok_or_else(|| io::Error::other("no such peer"))?;
        let (sock, from) = (s.sock.clone(), s.reply_from);
        self.events.push(now(EventKind::DatagramSent {
            peer: peer.to_string(),
            to: to.to_string(),
            bytes: bytes.len(),
            data: quote(&bytes),
            fault: Some(why),
        }));
        tokio::spawn(async move {
            tokio::time::sleep(by).await;
            let _ = send_from(&sock, &bytes, to, from).await;
        });
        Ok(())
    }

    /// Waits for the next datagram at `peer` that no fault drops. Cancel-safe: a
    /// datagram is taken from the socket only inside one poll.
    pub(crate) async fn recv(&mut self, peer: &str) -> io::Result<Datagram> {
        loop {
            let s = self
                .sockets
                .get(peer)
                .ok_or_else(|| io::Error::other("no such peer"))?;
            let d = s.recv().await?;
            self.plan.received += 1;
            let n = self.plan.received;
            if self.plan.faults.contains(&Fault::Drop(n)) {
                self.dropped.push(n);
                self.events.push(now(EventKind::DatagramDropped {
                    peer: peer.to_string(),
                    from: d.from.to_string(),
                    bytes: d.data.len(),
                    data: quote(&d.data),
                    fault: Fault::Drop(n).to_string(),
                }));
                continue;
            }
            let s = self.sockets.get_mut(peer).expect("looked up above");
            s.student.get_or_insert(d.from);
            s.last_from = Some(d.from);
            s.reply_from = match d.to {
                Some(SocketAddr::V4(to)) => Some(*to.ip()),
                _ => None,
            };
            self.events.push(now(EventKind::DatagramReceived {
                peer: peer.to_string(),
                from: d.from.to_string(),
                bytes: d.data.len(),
                data: quote(&d.data),
            }));
            return Ok(d);
        }
    }

    /// Whether a datagram waits unread at `peer` (the grader late to look, not the
    /// program late to send): see `engine::deadline`.
    pub(crate) fn unread_check(&self, peer: &str) -> impl Fn() -> bool + 'static {
        let fd = self.sockets.get(peer).map(|s| s.sock.as_raw_fd());
        move || fd.is_some_and(crate::sys::readable_now)
    }
}
