//! Start-up of a case: the reference server (client cases), the program, and for a
//! server the wait until it listens. A shared server that is already listening only
//! has its output segment begun.

use super::context::{fail, Listening, Run, Side};
use super::deadline::Deadline;
use super::GRACE;
use crate::outcome::{EventKind, Failure};
use crate::sandbox::process::describe_status;
use crate::spec::{MustMatch, Target};
use crate::text::{last_lines, quote};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::net::TcpListener;

impl Run<'_> {
    /// Starts the program; for a server, waits until it listens.
    pub(super) async fn start(&mut self) -> Result<(), Failure> {
        if let Side::Server(s) = &self.side {
            if let (Some(proc), Some(l), Some(first)) = (&self.proc, s.listening, &s.started_for) {
                // A shared server: already listening, and back in accept() (checked when
                // the previous case ended). Only what it prints from now on is this case's.
                proc.stdout.begin_segment();
                proc.stderr.begin_segment();
                let text = format!(
                    "shared server process (pid {}, started for case {first:?}): no new start, fresh connections (the spec's share_process)",
                    proc.pid
                );
                self.event(EventKind::Note { text });
                self.event(EventKind::Listening {
                    address: l.addr.to_string(),
                });
                return Ok(());
            }
        }
        let startup = self.spec.defaults.startup;
        let udp = self.protocol() == crate::spec::Protocol::Udp;
        if self.case.target == Target::Client && udp {
            self.open_udp_reference().await.map_err(|e| {
                self.grader_error = true;
                fail(
                    0,
                    0,
                    "start the reference peer".into(),
                    "a free UDP port for the reference peer",
                    e,
                )
            })?;
        } else if self.case.target == Target::Client {
            let reference = self.open_reference_server().await.map_err(|e| {
                self.grader_error = true;
                fail(
                    0,
                    0,
                    "start the reference server".into(),
                    "a free port for the reference server",
                    e,
                )
            })?;
            if let Side::Client(c) = &mut self.side {
                c.reference = Some(reference);
            }
        }
        let program = self
            .spec
            .program(self.case.target)
            .expect("validated")
            .for_case(self.case);
        let program = &program;
        self.prepare_case_files()?;
        let argv = self.sandbox.argv(program);
        let launched = self
            .sandbox
            .launch(self.host, program, &self.spec.limits)
            .await;
        if let Some(text) = launched.note {
            self.event(EventKind::Note { text });
        }
        let (proc, warm) = launched.result.map_err(|e| {
            // The command is the spec's and the machine's, not the student's doing.
            self.grader_error = true;
            fail(
                0,
                0,
                format!("start the {}", self.who()),
                format!("`{}` to start", argv.join(" ")),
                e,
            )
        })?;
        self.event(EventKind::Started {
            command: argv,
            pid: proc.pid,
            warm,
        });
        self.proc = Some(proc);
        if let Some(input) = &self.case.stdin {
            let r = self
                .proc
                .as_mut()
                .expect("just set")
                .write_stdin(input)
                .await;
            if let Err(e) = r {
                self.event(EventKind::Note {
                    text: format!("the case's stdin could not be written: {e}"),
                });
            }
        }
        if self.case.target == Target::Server {
            let deadline = self.fair_deadline(startup);
            let listening = match udp {
                true => self.wait_bound(deadline).await?,
                false => self.wait_listening(deadline).await?,
            };
            if let Side::Server(s) = &mut self.side {
                s.listening = Some(listening);
            }
            self.event(match udp {
                true => EventKind::Bound {
                    address: listening.bound.to_string(),
                },
                false => EventKind::Listening {
                    address: listening.addr.to_string(),
                },
            });
        }
        Ok(())
    }

    async fn open_reference_server(&mut self) -> Result<TcpListener, String> {
        let want = self.spec.connects_to;
        let recv_buffer = self.case.steps.iter().find_map(|s| match &s.action {
            crate::spec::Action::Accept { opts, .. } => opts.recv_buffer,
            _ => None,
        });
        // In a namespace every address is local, so listening on the wildcard address at
        // the spec's port takes the student's connection whatever IP it names (unless the
        // spec wants the exact address); on the host, only the exact address is ours to
        // take. What a client must match does not depend on the isolation: where this
        // machine cannot honour the spec, the case says so (below) rather than grading
        // differently.
        let bind = match (self.sandbox.own_network(), self.spec.must_match) {
            (true, MustMatch::Port | MustMatch::Nothing) => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), want.port())
            }
            _ => want,
        };
        let listener = self
            .sandbox
            .in_net(move || -> std::io::Result<std::net::TcpListener> {
                let s = socket2::Socket::new(
                    socket2::Domain::for_address(bind),
                    socket2::Type::STREAM,
                    None,
                )?;
                s.set_reuse_address(true)?;
                // Accepted sockets inherit the buffer, and its window is set at the
                // handshake: so it is set on the listener, before listen().
                if let Some(n) = recv_buffer {
                    s.set_recv_buffer_size(n as usize)?;
                }
                s.bind(&bind.into())?;
                s.listen(64)?;
                s.set_nonblocking(true)?;
                Ok(s.into())
            })
            .and_then(|r| r)
            .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
        if self.spec.must_match == MustMatch::Nothing {
            if self.host.redirect && self.sandbox.own_network() {
                self.sandbox.redirect_clients_to(want.port()).await?;
            } else {
                let why = match self.sandbox.own_network() {
                    true => "`nft` is not installed (Debian: nftables)",
                    false => "cases run on this machine's own network (no namespace)",
                };
                self.event(EventKind::Note {
                    text: format!("the spec takes a client's connection to any address and port, but here {why}: only a connection to port {} reaches the reference server", want.port()),
                });
            }
        }
        TcpListener::from_std(listener).map_err(|e| e.to_string())
    }

    /// Writes the case's data files into the program's folder, and caps the send buffer
    /// of the case's network (`limits.send_buffer`).
    fn prepare_case_files(&mut self) -> Result<(), Failure> {
        let dir = self.sandbox.workdir.path().to_path_buf();
        for f in &self.case.files {
            let path = dir.join(&f.path);
            let bytes = f.bytes();
            let r = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| std::fs::write(&path, &bytes[..]));
            if let Err(e) = r {
                self.grader_error = true;
                return Err(fail(
                    0,
                    0,
                    "write the case's files".into(),
                    format!("{:?} written", f.path),
                    e.to_string(),
                ));
            }
        }
        if let Some(max) = self.spec.limits.send_buffer {
            let value = format!("4096 16384 {max}");
            let set = match self.sandbox.own_network() {
                true => self
                    .sandbox
                    .in_net(move || std::fs::write("/proc/sys/net/ipv4/tcp_wmem", value))
                    .and_then(|r| r)
                    .map_err(|e| e.to_string()),
                false => Err("the case has no network of its own".to_string()),
            };
            if let Err(e) = set {
                self.event(EventKind::Note {
                    text: format!("limits.send_buffer not applied ({e}): the program's send buffer may grow to the machine's default"),
                });
            }
        }
        Ok(())
    }

    /// Waits until the server has a listening socket, or dies trying.
    async fn wait_listening(&mut self, mut deadline: Deadline) -> Result<Listening, Failure> {
        let want_port = self
            .spec
            .server
            .as_ref()
            .and_then(|s| s.listen)
            .map(|a| a.port());
        let startup = humantime::format_duration(self.spec.defaults.startup).to_string();
        let action = || "start the server and wait until it listens".to_string();
        let expected = || format!("a listening TCP socket within {startup}");
        let (sandbox, proc) = (&self.sandbox, self.proc());
        let listens = async {
            let mut tick = super::Backoff::new();
            loop {
                tokio::select! {
                    biased;
                    status = proc.exited() => return Err(status),
                    // Before the deadline: a socket that appeared while a busy grader was
                    // late to look still counts.
                    _ = tick.tick() => {
                        if let Some(local) = sandbox.listening_socket(proc, want_port) {
                            return Ok(local);
                        }
                    }
                }
            }
        };
        // Looks are up to POLL_MAX apart: one that was due when the time ran out still
        // counts (the socket is there, only not seen yet).
        let there_unseen = || sandbox.listening_socket(proc, want_port).is_some();
        match deadline.race(listens, there_unseen).await {
            Some(Ok(bound)) => {
                let ip = match bound.ip() {
                    IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ip => ip,
                };
                Ok(Listening {
                    addr: SocketAddr::new(ip, bound.port()),
                    bound,
                })
            }
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
                        "the server {} during start-up, before it could take a connection{why}",
                        describe_status(status)
                    ),
                ))
            }
            None => {
                let out = self.proc().stdout.snapshot();
                let printed = if out.total == 0 {
                    String::new()
                } else {
                    format!("; it printed {}", quote(&out.text()))
                };
                // Listening, but elsewhere than the spec says (or on the other protocol):
                // say where.
                let elsewhere =
                    want_port.and_then(|_| self.sandbox.listening_socket(self.proc(), None));
                // A program that keeps its own CPU busy (busy processes started before
                // listen()) starves its own start-up: say so, it is the real reason.
                let pids = self.pids();
                let busy = match pids.len() > 1 {
                    true => format!(
                        "; meanwhile its {} processes used {} ms of CPU time (busy loops before listen())",
                        pids.len(),
                        self.cpu_time().as_millis()
                    ),
                    false => String::new(),
                };
                let got = match (self.other_protocol_note(), elsewhere, want_port) {
                    (Some(note), _, _) => note,
                    (None, Some(at), Some(port)) => format!(
                        "the server listens on {at}, not on port {port} as the assignment says{printed}"
                    ),
                    _ => format!("no listening socket after {startup}: the server never reached listen(){printed}{busy}"),
                };
                let expected = match want_port {
                    Some(port) => format!("a listening TCP socket on port {port} within {startup}"),
                    None => expected(),
                };
                Err(fail(0, 0, action(), expected, got))
            }
        }
    }
}
