//! What the kernel says about a student's sockets and processes, read from `/proc`.
//!
//! The grader never guesses that a server "should be up by now": it reads the TCP
//! tables of the student's network namespace (`/proc/<pid>/net/tcp{,6}` shows the
//! namespace of `<pid>`) and sees the listening socket appear, or sees the socket of a
//! connection get a file descriptor, which is what `accept()` gives it.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// TCP states as the kernel numbers them (include/net/tcp_states.h).
pub const TCP_ESTABLISHED: u8 = 0x01;
pub const TCP_LISTEN: u8 = 0x0A;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    /// For a listening socket, the connections waiting in its accept queue.
    pub rx_queue: u64,
    /// 0 for a socket no process holds yet (still in an accept queue).
    pub inode: u64,
}

/// Every TCP socket of the network namespace `pid` is in.
pub fn tcp_table(pid: u32) -> Vec<TcpEntry> {
    tcp_table_of(&format!("/proc/{pid}/net"))
}

/// Every TCP socket listed in a `net` folder of /proc (`/proc/thread-self/net` is the
/// namespace of the calling thread).
pub fn tcp_table_of(dir: &str) -> Vec<TcpEntry> {
    let mut out = Vec::new();
    for file in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("{dir}/{file}")) {
            out.extend(text.lines().skip(1).filter_map(parse_line));
        }
    }
    out
}

fn parse_line(line: &str) -> Option<TcpEntry> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 {
        return None;
    }
    let (_, rx) = f[4].split_once(':')?;
    Some(TcpEntry {
        local: parse_addr(f[1])?,
        remote: parse_addr(f[2])?,
        state: u8::from_str_radix(f[3], 16).ok()?,
        rx_queue: u64::from_str_radix(rx, 16).ok()?,
        inode: f[9].parse().ok()?,
    })
}

/// "0100007F:22B8" → 127.0.0.1:8888. The address words are printed in host order.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok()?;
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            // A dual-stack socket bound to ::ffff:a.b.c.d is an IPv4 one to a client.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Socket inodes held open by these processes (`/proc/<pid>/fd/* -> socket:[N]`).
pub fn socket_inodes(pids: &[u32]) -> HashSet<u64> {
    let mut out = HashSet::new();
    for pid in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in dir.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    if let Ok(n) = n.parse() {
                        out.insert(n);
                    }
                }
            }
        }
    }
    out
}

/// Listening sockets. With `owned_by`, only those whose inode is in the set (needed on
/// a shared host loopback, where other programs listen too).
pub fn listeners(pid: u32, owned_by: Option<&HashSet<u64>>) -> Vec<TcpEntry> {
    tcp_table(pid)
        .into_iter()
        .filter(|e| e.state == TCP_LISTEN && owned_by.is_none_or(|set| set.contains(&e.inode)))
        .collect()
}

/// The student's end of one connection, found by its addresses.
pub fn connection(pid: u32, student_end: SocketAddr, grader_end: SocketAddr) -> Option<TcpEntry> {
    tcp_table(pid)
        .into_iter()
        .find(|e| e.local == student_end && e.remote == grader_end)
}

/// Processes whose process group is `pgid` (the fallback when there is no cgroup).
pub fn group_pids(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(stat) = read_stat(pid) {
            if stat.pgrp == pgid {
                out.push(pid);
            }
        }
    }
    out
}

/// The fields of `/proc/<pid>/stat` the grader uses.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub state: char,
    pub pgrp: u32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
}

pub fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        cpu_ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
    })
}

/// Clock ticks per second for `cpu_ticks`.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Whether these processes wait for the next client and do nothing else: no thread
/// running or waiting for a CPU, none blocked writing (a full pipe or socket buffer
/// puts a busy loop to sleep too), and one asleep where a server waits for
/// connections (`accept()`, or `select`/`poll`/`epoll` on the listening socket), as the
/// kernel names it in `/proc/PID/task/TID/wchan`. Where that cannot be read, the answer
/// is no: the next case then gets a fresh process, as without `share_process`.
pub(crate) fn waiting_for_clients(pids: &[u32]) -> bool {
    const WAITING: &[&str] = &["inet_csk_accept", "do_select", "do_sys_poll", "ep_poll"];
    const WRITING: &[&str] = &["pipe_write", "sk_stream_wait_memory"];
    let mut waiting = false;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let state = std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|s| s.rfind(')').and_then(|i| s[i + 2..].chars().next()));
            if state == Some('R') {
                return false;
            }
            let wchan = std::fs::read_to_string(t.path().join("wchan")).unwrap_or_default();
            if WRITING.contains(&wchan.as_str()) {
                return false;
            }
            waiting |= WAITING.contains(&wchan.as_str());
        }
    }
    waiting
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_listening_line() {
        let line = "   0: 0100007F:22B8 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0";
        let e = parse_line(line).unwrap();
        assert_eq!(e.local, "127.0.0.1:8888".parse().unwrap());
        assert_eq!(e.state, TCP_LISTEN);
        assert_eq!(e.rx_queue, 1);
        assert_eq!(e.inode, 12345);
    }

    #[test]
    fn sees_our_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let pid = std::process::id();
        let mine = socket_inodes(&[pid]);
        assert!(listeners(pid, Some(&mine)).iter().any(|e| e.local == addr));
    }
}

/// Time the threads of these processes spent runnable but waiting for a CPU, from
/// `/proc/<pid>/task/<tid>/schedstat` (its second field, in nanoseconds).
/// Time each thread of `pids` has spent runnable but not running (`schedstat`), by
/// thread id, in nanoseconds.
pub fn task_waits(pids: &[u32]) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                if let Some(ns) = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()) {
                    out.push((tid, ns));
                }
            }
        }
    }
    out
}

pub fn cpu_wait(pids: &[u32]) -> std::time::Duration {
    let mut ns: u64 = 0;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    std::time::Duration::from_nanos(ns)
}
