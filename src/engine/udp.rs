//! Start-up of a UDP case: the reference socket a UDP client sends to, and the wait
//! until a UDP server has bound its socket (it never listens); and the one-line
//! reasons for a program that speaks the other protocol than the spec says.

use super::context::{fail, Listening, Run};
use super::deadline::Deadline;
use super::GRACE;
use crate::outcome::{EventKind, Failure};
use crate::sandbox::process::describe_status;
use crate::spec::{Protocol, Target};
use crate::text::{last_lines, quote};
use crate::udp_peer::PeerSocket;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where the grader sends to reach a socket bound to `bound` (a wildcard made loopback).
pub(super) fn reachable(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

impl Run<'_> {
    /// The protocol the case's program speaks.
    pub(super) fn protocol(&self) -> Protocol {
        self.spec
            .program(self.case.target)
            .map(|p| p.protocol)
            .unwrap_or_default()
    }

    /// Client cases: the reference socket at the spec's `connects_to` port, on every
    /// address of the case's network (the local route makes any address local), with
    /// datagrams to any other port redirected to it (nft) where the host allows.
    pub(super) async fn open_udp_reference(&mut self) -> Result<(), String> {
        let want = self.spec.connects_to;
        let bind = match self.sandbox.own_network() {
            true => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), want.port()),
            false => want,
        };
        let sock = self
            .sandbox
            .in_net(move || -> std::io::Result<std::net::UdpSocket> {
                let s = socket2::Socket::new(
                    socket2::Domain::for_address(bind),
                    socket2::Type::DGRAM,
                    None,
                )?;
                s.set_reuse_address(true)?;
                if bind.is_ipv4() {
                    // The destination of each datagram as the packet says it.
                    nix::sys::socket::setsockopt(
                        &s,
                        nix::sys::socket::sockopt::Ipv4OrigDstAddr,
                        &true,
                    )
                    .map_err(std::io::Error::from)?;
                }
                s.bind(&bind.into())?;
                s.set_nonblocking(true)?;
                Ok(s.into())
            })
            .and_then(|r| r)
            .map_err(|e| format!("cannot bind UDP {bind}: {e}"))?;
        if self.host.redirect {
            self.sandbox.redirect_udp_clients_to(want.port()).await?;
        }
        let peer = PeerSocket::new(sock).map_err(|e| e.to_string())?;
        self.udp.insert("main", peer);
        // A TCP client's connect() to the port is taken (by the kernel; nobody accepts),
        // so that the wait for its first datagram can say it made a TCP connection. In
        // the case's own network only: on the host the port may be someone else's.
        if self.sandbox.own_network() {
            self.tcp_listener_for_udp = self
                .sandbox
                .in_net(move || std::net::TcpListener::bind(bind))
                .ok()
                .and_then(|r| r.ok());
        }
        Ok(())
    }

    /// A reference socket for a server case, made on first use of its name.
    pub(super) fn udp_peer_for_server(&mut self, name: &str) -> std::io::Result<()> {
        if self.udp.get(name).is_some() {
            return Ok(());
        }
        let to = self
            .listening()
            .expect("server cases bind before steps run")
            .addr;
        let bind = SocketAddr::new(
            match to {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            },
            0,
        );
        let sock = self
            .sandbox
            .in_net(move || -> std::io::Result<std::net::UdpSocket> {
                let s = std::net::UdpSocket::bind(bind)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })??;
        let peer = PeerSocket::new(sock)?;
        self.event(EventKind::Note {
            text: format!("reference peer {name:?} bound to {}", peer.local),
        });
        self.udp.insert(name, peer);
        Ok(())
    }

    /// Waits until the UDP server has a bound socket, or dies trying.
    pub(super) async fn wait_bound(
        &mut self,
        mut deadline: Deadline,
    ) -> Result<Listening, Failure> {
        let want_port = self
            .spec
            .server
            .as_ref()
            .and_then(|s| s.listen)
            .map(|a| a.port());
        let startup = humantime::format_duration(self.spec.defaults.startup).to_string();
        let action = || "start the server and wait until it binds its UDP socket".to_string();
        let expected = || format!("a bound UDP socket within {startup}");
        let (sandbox, proc) = (&self.sandbox, self.proc());
        let bound = async {
            let mut tick = super::Backoff::new();
            loop {
                tokio::select! {
                    biased;
                    status = proc.exited() => return Err(status),
                    _ = tick.tick() => {
                        if let Some(local) = sandbox.bound_udp_socket(proc, want_port) {
                            return Ok(local);
                        }
                    }
                }
            }
        };
        // Looks are up to POLL_MAX apart: one that was due when the time ran out still
        // counts (the socket is there, only not seen yet).
        let there_unseen = || sandbox.bound_udp_socket(proc, want_port).is_some();
        match deadline.race(bound, there_unseen).await {
            Some(Ok(bound)) => Ok(Listening {
                addr: reachable(bound),
                bound,
            }),
            Some(Err(status)) => {
                self.note_exit();
                self.proc().output_settled(GRACE).await;
                let last = last_lines(&self.proc().stderr.snapshot().text(), 1).pop();
                let why = last.map(|l| format!(": {l}")).unwrap_or_default();
                Err(fail(
                    0,
                    0,
                    action(),
                    expected(),
                    format!(
                        "the server {} before it bound a UDP socket{why}",
                        describe_status(status)
                    ),
                ))
            }
            None => {
                let other = self.other_protocol_note();
                let out = self.proc().stdout.snapshot();
                let printed = if out.total == 0 {
                    String::new()
                } else {
                    format!("; it printed {}", quote(&out.text()))
                };
                let got = match other {
                    Some(o) => o,
                    None => format!("no bound UDP socket after {startup}: the server never called bind(){printed}"),
                };
                Err(fail(0, 0, action(), expected(), got))
            }
        }
    }

    /// When the program holds a socket of the other protocol than the spec's: one line
    /// that says so (a UDP server under a TCP spec, a TCP server under a UDP one, and
    /// the same for clients).
    pub(super) fn other_protocol_note(&self) -> Option<String> {
        let proc = self.proc.as_ref()?;
        let list = self.sandbox.sockets(proc).ok()?;
        let who = self.who();
        let addr = |s: &crate::sandbox::sockets::SocketInfo| {
            s.local.map(|a| a.to_string()).unwrap_or_default()
        };
        match (self.protocol(), self.case.target) {
            (Protocol::Tcp, Target::Server) => list.iter().find(|s| s.datagram).map(|s| {
                format!("the {who} bound a UDP socket (SOCK_DGRAM) on {}, but this assignment is TCP: socket(AF_INET, SOCK_STREAM), then bind(), listen() and accept()", addr(s))
            }),
            // A client's UDP socket is bound only by its first sendto(): it may have none yet.
            (Protocol::Tcp, Target::Client) => list.iter().find(|s| s.datagram).map(|_| {
                format!("the {who} made a UDP socket (SOCK_DGRAM), but this assignment is TCP: socket(AF_INET, SOCK_STREAM), then connect()")
            }),
            (Protocol::Udp, Target::Server) => list.iter().find(|s| s.listening).map(|s| {
                format!("the server listens on TCP (SOCK_STREAM) at {}, but this assignment is UDP: socket(AF_INET, SOCK_DGRAM), bind(), then recvfrom()/sendto()", addr(s))
            }),
            (Protocol::Udp, Target::Client) => list.iter().find(|s| !s.datagram && s.peer.is_some()).map(|s| {
                format!("the client made a TCP connection (SOCK_STREAM) to {}, but this assignment is UDP: socket(AF_INET, SOCK_DGRAM), then sendto()", s.peer.map(|a| a.to_string()).unwrap_or_default())
            }),
        }
    }
}
