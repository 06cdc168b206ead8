//! What the engine asks of a case's box, so that it never reaches into the box's parts:
//! start the program with the spec's limits (warm or cold), its pids and CPU time,
//! where it listens (through copies of its descriptors, or the kernel's TCP table where
//! `pidfd_getfd` is missing), whether it waits for clients, and stopping it.

use super::process::{Launch, StudentProcess};
use super::{proc_net, sockets, Host, Sandbox};
use crate::spec::{Limits, Program};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// How a start went: the process and whether it was forked from a fork server, or why
/// it could not start; and a note for the transcript when it started cold although it
/// could have started warm.
pub(crate) struct Launched {
    pub(crate) result: Result<(StudentProcess, bool), String>,
    pub(crate) note: Option<String>,
}

impl Sandbox {
    /// Starts `program` in this box with `limits`: forked from the host's fork server
    /// when the program may start warm ([`super::warm`]), else cold.
    pub(crate) async fn launch(&self, host: &Host, program: &Program, limits: &Limits) -> Launched {
        let argv = self.argv(program);
        let launch = Launch {
            argv: argv.clone(),
            cwd: self.workdir.path().to_path_buf(),
            env: self.env(host, program),
            netns: self.netns.as_ref().map(|n| n.as_raw_fd()),
            cgroup: self.cgroup.as_ref().map(|c| c.joiner()),
            limits,
            // Without a memory cgroup, the per-process address-space limit is the fallback.
            rlimit_memory: !self.cgroup.as_ref().is_some_and(|c| c.memory_limited()),
            rlimit_processes: !self.cgroup.as_ref().is_some_and(|c| c.process_limited()),
            confine: self.confinement.clone(),
        };
        let warm = match program.warm_start && super::warm::eligible(&argv, &self.file) {
            true => Some(host.warm.server(Path::new(&argv[0]), &launch.env).await),
            false => None,
        };
        let cold = |launch: Launch<'_>| {
            StudentProcess::spawn(launch)
                .map(|p| (p, false))
                .map_err(|e| format!("it could not be started: {e}"))
        };
        let mut note = None;
        let result = match warm {
            Some(Ok(server)) => match StudentProcess::spawn_warm(&launch, &server).await {
                Ok(p) => Ok((p, true)),
                // The server died under us: this case (and the next) start cold.
                Err(e) if server.is_dead() => {
                    note = Some(format!(
                        "started cold: the fork server for {} is gone ({e})",
                        argv[0]
                    ));
                    cold(launch)
                }
                Err(e) => Err(format!("the fork server could not start it: {e}")),
            },
            Some(Err(why)) => {
                note = Some(format!(
                    "started cold: no fork server for {} ({why})",
                    argv[0]
                ));
                cold(launch)
            }
            None => cold(launch),
        };
        Launched { result, note }
    }

    /// Pids of the program's processes: its cgroup's, else its process group's.
    pub(crate) fn pids(&self, proc: &StudentProcess) -> Vec<u32> {
        match &self.cgroup {
            Some(cg) => cg.pids().into_iter().map(|p| p as u32).collect(),
            None => proc_net::group_pids(proc.pid),
        }
    }

    /// CPU time the program used: its cgroup's count, else the sum over its processes.
    pub(crate) fn cpu_time(&self, proc: &StudentProcess) -> Duration {
        if let Some(cg) = &self.cgroup {
            if let Ok(d) = cg.cpu_time() {
                return d;
            }
        }
        let ticks: u64 = self
            .pids(proc)
            .iter()
            .filter_map(|p| proc_net::read_stat(*p))
            .map(|s| s.cpu_ticks)
            .sum();
        Duration::from_secs_f64(ticks as f64 / proc_net::ticks_per_second() as f64)
    }

    /// The program's sockets, seen through copies of its descriptors (`pidfd_getfd`).
    pub(crate) fn sockets(
        &self,
        proc: &StudentProcess,
    ) -> std::io::Result<Vec<sockets::SocketInfo>> {
        sockets::sockets_of(&self.pids(proc))
    }

    /// A listening TCP socket of the program (on `port` when given), or None yet.
    pub(crate) fn listening_socket(
        &self,
        proc: &StudentProcess,
        port: Option<u16>,
    ) -> Option<SocketAddr> {
        let pids = self.pids(proc);
        // Port 0: a socket the kernel already calls listening but has not given its
        // port yet (listen() on an unbound socket); no one can connect to it yet.
        let wanted = |a: &SocketAddr| a.port() != 0 && port.is_none_or(|p| a.port() == p);
        match sockets::sockets_of(&pids) {
            Ok(list) => list
                .into_iter()
                .filter(|s| s.listening)
                .filter_map(|s| s.local)
                .find(wanted),
            // No pidfd_getfd here: read the kernel's TCP table instead.
            Err(_) => {
                let owned = if self.netns.is_some() {
                    None
                } else {
                    Some(proc_net::socket_inodes(&pids))
                };
                proc_net::listeners(proc.pid, owned.as_ref())
                    .into_iter()
                    .map(|l| l.local)
                    .find(wanted)
            }
        }
    }

    /// Why a port cannot be bound again: who still uses it in the case's network.
    pub(crate) fn port_use(&self, proc: &StudentProcess, port: u16) -> PortUse {
        let on_port: Vec<_> = self
            .tcp_table()
            .into_iter()
            .filter(|e| e.local.port() == port)
            .collect();
        if let Some(l) = on_port.iter().find(|e| e.state == proc_net::TCP_LISTEN) {
            return PortUse::Listening(proc_net::socket_holder(&self.pids(proc), l.inode));
        }
        match on_port.len() {
            0 => PortUse::Unknown,
            n if on_port.iter().all(|e| e.state == proc_net::TCP_TIME_WAIT) => PortUse::TimeWait(n),
            _ => PortUse::Connections(on_port.len()),
        }
    }

    /// The processes of the program holding the student's end of a TCP connection
    /// (`student` its address, `grader` the other end), with their command lines.
    pub(crate) fn connection_holders(
        &self,
        proc: &StudentProcess,
        student: SocketAddr,
        grader: SocketAddr,
    ) -> Vec<(u32, String)> {
        // Addresses as the case's network sees them may differ from the grader's view
        // (a redirect): the ports are enough to tell the connection apart there.
        let Some(entry) = self.tcp_table().into_iter().find(|e| {
            (e.local == student && e.remote == grader)
                || (e.local.port() == student.port() && e.remote.port() == grader.port())
        }) else {
            return Vec::new();
        };
        proc_net::socket_holders(&self.pids(proc), entry.inode)
    }

    /// A bound UDP socket of the program (on `port` when given), or None yet: a UDP
    /// server binds and never listens. Through copies of its descriptors, else the
    /// kernel's UDP table.
    pub(crate) fn bound_udp_socket(
        &self,
        proc: &StudentProcess,
        port: Option<u16>,
    ) -> Option<SocketAddr> {
        let pids = self.pids(proc);
        let wanted = |a: &SocketAddr| a.port() != 0 && port.is_none_or(|p| a.port() == p);
        match sockets::sockets_of(&pids) {
            Ok(list) => list
                .into_iter()
                .filter(|s| s.datagram && s.peer.is_none())
                .filter_map(|s| s.local)
                .find(wanted),
            Err(_) => {
                let owned = (self.netns.is_none()).then(|| proc_net::socket_inodes(&pids));
                let mut all = proc_net::udp_bound(proc.pid, owned.as_ref());
                all.retain(|e| e.remote.port() == 0);
                all.into_iter().map(|e| e.local).find(wanted)
            }
        }
    }

    /// The UDP analogue of [`Sandbox::redirect_clients_to`]: every datagram a client
    /// sends in the case's network, to any port, reaches the reference socket at `port`.
    pub(crate) async fn redirect_udp_clients_to(&self, port: u16) -> Result<(), String> {
        let Some(ns) = &self.netns else {
            return Ok(());
        };
        let ns = ns.try_clone().map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || ns.redirect_udp_to(port))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot install the UDP redirect: {e}"))
    }

    /// Where a UDP client meant its datagram from `student` to go, when a redirect took
    /// it to the reference socket at `reference` (conntrack of the case's network).
    pub(crate) fn udp_meant_for(
        &self,
        student: SocketAddr,
        reference: SocketAddr,
    ) -> Option<SocketAddr> {
        self.netns.as_ref()?;
        self.in_net(move || proc_net::udp_original_dst("/proc/thread-self/net", student, reference))
            .ok()
            .flatten()
    }

    /// The kernel's TCP table of the case's network.
    pub(crate) fn tcp_table(&self) -> Vec<proc_net::TcpEntry> {
        self.in_net(|| proc_net::tcp_table_of("/proc/thread-self/net"))
            .unwrap_or_default()
    }

    /// Whether the program waits for the next client and does nothing else
    /// (see [`proc_net::waiting_for_clients`]).
    pub(crate) fn waiting_for_clients(&self, proc: &StudentProcess) -> bool {
        proc_net::waiting_for_clients(&self.pids(proc))
    }

    /// Whether the program has done all it can by itself and waits for the outside
    /// world (see [`proc_net::settled`]).
    pub(crate) fn settled(&self, proc: &StudentProcess) -> bool {
        proc_net::settled(&self.pids(proc))
    }

    /// Whether the program ran into the memory limit of its cgroup.
    pub(crate) fn memory_limit_hit(&self) -> bool {
        self.cgroup.as_ref().is_some_and(|cg| cg.memory_limit_hit())
    }

    /// The program's processes alive now, and their threads together (see
    /// [`proc_net::task_counts`]).
    pub(crate) fn task_counts(&self, proc: &StudentProcess) -> (usize, usize) {
        proc_net::task_counts(&self.pids(proc))
    }

    /// Whether the program ran into the process limit of its cgroup.
    pub(crate) fn process_limit_hit(&self) -> bool {
        self.cgroup
            .as_ref()
            .is_some_and(|cg| cg.process_limit_hit())
    }

    /// Stops the program and everything it started (see [`StudentProcess::terminate`]).
    pub(crate) async fn stop(&self, proc: &mut StudentProcess, grace: Duration) {
        proc.terminate(self.cgroup.as_ref(), grace).await;
    }

    /// Whether the case has a network of its own.
    pub(crate) fn own_network(&self) -> bool {
        self.netns.is_some()
    }

    /// Sends every TCP connection made in the case's network to `port` (nft), so a
    /// client reaches the reference server whatever address it names.
    pub(crate) async fn redirect_clients_to(&self, port: u16) -> Result<(), String> {
        let Some(ns) = &self.netns else {
            return Ok(());
        };
        // `nft` blocks for ~17 ms (see `redirect_tcp_to`): off the runtime's threads,
        // on a handle of the namespace of its own.
        let ns = ns.try_clone().map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || ns.redirect_tcp_to(port))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot install the redirect: {e}"))
    }

    /// The address a connection accepted by the reference server was meant for: where
    /// the client connected before a redirect took it to us, or else the local address.
    pub(crate) fn meant_for(
        &self,
        host: &Host,
        stream: &tokio::net::TcpStream,
        fallback: SocketAddr,
    ) -> SocketAddr {
        let local = || stream.local_addr().unwrap_or(fallback);
        match (&self.netns, host.redirect) {
            (Some(_), true) => super::netns::original_dst(std::os::fd::AsFd::as_fd(stream))
                .unwrap_or_else(|_| local()),
            _ => local(),
        }
    }
}

/// Who still uses a port that cannot be bound again (see [`Sandbox::port_use`]).
pub(crate) enum PortUse {
    /// A listening socket is still open, held by this process of the program (pid,
    /// command line), when it can be found.
    Listening(Option<(u32, String)>),
    /// No process holds the port, but this many connections on it are in TIME_WAIT.
    TimeWait(usize),
    /// Connections on the port are still open (held, or closing).
    Connections(usize),
    /// Nothing on the port in the case's network (or it cannot be read).
    Unknown,
}
