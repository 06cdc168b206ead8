//! The student's sockets, seen through its own file descriptors.
//!
//! Waiting for a server to listen, or to accept, means looking at the program's sockets
//! every couple of milliseconds. The kernel's TCP tables (`/proc/net/tcp`) answer that
//! too, but reading them walks the host-wide listening hash on every read, which cost
//! the grader most of its CPU time. Instead, the grader copies each socket descriptor of
//! the program for an instant (`pidfd_getfd`, Linux 5.6+) and asks it directly:
//! listening? bound where? connected to whom? The copy is closed at once, so the
//! program's sockets live and die exactly as they would without the grader.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// One socket of the program, as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketInfo {
    pub listening: bool,
    /// A datagram socket (SOCK_DGRAM: UDP), not a stream one.
    pub datagram: bool,
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    /// The kernel's TCP state (`TCP_ESTABLISHED` = 1, `TCP_CLOSE_WAIT` = 8, ...), when
    /// TCP_INFO answers.
    pub state: Option<u8>,
    /// Listening sockets: connections waiting in the accept queue.
    pub queued: u32,
}

/// TCP state of a connection whose peer closed (FIN received) and the program has not.
pub const TCP_CLOSE_WAIT: u8 = 8;
/// TCP state of a connection that is over (reset), still held by the program.
pub const TCP_CLOSE: u8 = 7;

/// TCP_INFO of a socket: (state, for a listener the accept queue length).
fn tcp_info(fd: &OwnedFd) -> Option<(u8, u32)> {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0).then_some((info.tcpi_state, info.tcpi_unacked))
}

/// Every TCP/IP socket the processes `pids` hold, once each (a socket shared by a
/// parent and its child is the same socket). An error means this kernel or these
/// privileges do not allow `pidfd_getfd`: the caller falls back to the TCP tables.
pub fn sockets_of(pids: &[u32]) -> io::Result<Vec<SocketInfo>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for &pid in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let Some(pidfd) = crate::sys::pidfd_open(pid)? else {
            continue;
        };
        for entry in dir.flatten() {
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let Some(ino) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
            else {
                continue;
            };
            if !seen.insert(ino.to_string()) {
                continue;
            }
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            // SAFETY: pidfd_getfd returns a new descriptor we own, or -1.
            let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
            if copy < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    // The fd was closed meanwhile, or the process is gone: skip it.
                    Some(libc::EBADF) | Some(libc::ESRCH) => continue,
                    _ => return Err(e),
                }
            }
            // SAFETY: `copy` is a fresh descriptor owned by nobody else.
            let copy = unsafe { OwnedFd::from_raw_fd(copy as i32) };
            let sock = socket2::SockRef::from(&copy);
            let inet = |a: io::Result<socket2::SockAddr>| a.ok().and_then(|a| a.as_socket());
            let local = inet(sock.local_addr());
            if local.is_none() {
                continue; // a Unix socket, or an unbound one
            }
            let info = tcp_info(&copy);
            out.push(SocketInfo {
                listening: sock.is_listener().unwrap_or(false),
                datagram: sock.r#type().is_ok_and(|t| t == socket2::Type::DGRAM),
                local,
                peer: inet(sock.peer_addr()),
                state: info.map(|i| i.0),
                queued: info.map(|i| i.1).unwrap_or(0),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_a_listener_and_a_connection_of_this_process() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let s = match sockets_of(&[std::process::id()]) {
            Ok(s) => s,
            Err(e) => return eprintln!("skipped: pidfd_getfd is not allowed here ({e})"),
        };
        assert!(s
            .iter()
            .any(|i| i.listening && i.local == Some(l.local_addr().unwrap())));
        assert!(s.iter().any(|i| !i.listening
            && i.peer == Some(l.local_addr().unwrap())
            && i.local == Some(c.local_addr().unwrap())));
    }
}
