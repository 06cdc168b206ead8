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
pub const TCP_TIME_WAIT: u8 = 0x06;

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

/// Every UDP socket listed in a `net` folder of /proc (same columns as TCP's; a bound
/// socket has state 07, "closed", and no remote address unless connected).
pub fn udp_table_of(dir: &str) -> Vec<TcpEntry> {
    let mut out = Vec::new();
    for file in ["udp", "udp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("{dir}/{file}")) {
            out.extend(text.lines().skip(1).filter_map(parse_line));
        }
    }
    out
}

/// Bound UDP sockets of the namespace `pid` is in; with `owned_by`, only those whose
/// inode is in the set (on a shared host, other programs bind UDP too).
pub fn udp_bound(pid: u32, owned_by: Option<&HashSet<u64>>) -> Vec<TcpEntry> {
    udp_table_of(&format!("/proc/{pid}/net"))
        .into_iter()
        .filter(|e| e.local.port() != 0 && owned_by.is_none_or(|set| set.contains(&e.inode)))
        .collect()
}

/// Where a UDP datagram that reached `reference` from `student` was sent before a
/// redirect took it there: the original destination of its conntrack entry
/// (`/proc/net/nf_conntrack` of the namespace `dir` names), the UDP analogue of TCP's
/// `SO_ORIGINAL_DST`. None when conntrack has no such entry (nothing was redirected).
pub fn udp_original_dst(
    dir: &str,
    student: SocketAddr,
    reference: SocketAddr,
) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(format!("{dir}/nf_conntrack")).ok()?;
    text.lines().find_map(|line| {
        if !line.contains(" udp ") {
            return None;
        }
        // Two tuples: the original (as sent), then the reply (as answered).
        let fields: Vec<(&str, &str)> = line
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .collect();
        let get = |k: &str, nth: usize| {
            fields
                .iter()
                .filter(|(key, _)| *key == k)
                .nth(nth)
                .map(|(_, v)| *v)
        };
        let addr = |ip: &str, port: &str| -> Option<SocketAddr> {
            Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
        };
        let orig_src = addr(get("src", 0)?, get("sport", 0)?)?;
        let orig_dst = addr(get("dst", 0)?, get("dport", 0)?)?;
        let reply_src = addr(get("src", 1)?, get("sport", 1)?)?;
        (orig_src == student && reply_src.port() == reference.port() && orig_dst != reply_src)
            .then_some(orig_dst)
    })
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

/// Which of these processes holds the socket `inode`, and its command line.
pub(crate) fn socket_holder(pids: &[u32], inode: u64) -> Option<(u32, String)> {
    socket_holders(pids, inode).into_iter().next()
}

/// Every one of these processes that holds the socket `inode` (a socket is shared by
/// the processes a fork made), with its command line.
pub(crate) fn socket_holders(pids: &[u32], inode: u64) -> Vec<(u32, String)> {
    pids.iter()
        .filter(|&&pid| socket_inodes(&[pid]).contains(&inode))
        .map(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let words: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            (pid, words.join(" "))
        })
        .collect()
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

/// What one thread of the program is doing, as `/proc/PID/task/TID/{stat,wchan}` say.
struct ThreadState {
    /// `R` running or runnable, `D` in the kernel uninterruptibly, `S` asleep, ...
    state: Option<char>,
    /// Where it sleeps, without the compiler's suffix (`poll_schedule_timeout`, not
    /// `poll_schedule_timeout.constprop.0`): the names differ between kernels.
    wchan: String,
}

/// Sleeps that are the program writing: a full pipe or socket buffer puts a busy loop
/// to sleep too.
const WRITING: &[&str] = &["pipe_write", "sk_stream_wait_memory"];
/// Sleeps that are the program's own pause (`time.sleep`, `nanosleep`): it will act
/// again by itself.
const PAUSING: &[&str] = &["hrtimer_nanosleep", "do_nanosleep", "clock_nanosleep"];
/// Sleeps where a server waits for connections (`accept()`, or `select`/`poll`/`epoll`
/// on the listening socket), as different kernels name them.
const WAITING_FOR_CLIENTS: &[&str] = &[
    "inet_csk_accept",
    "do_select",
    "do_sys_poll",
    "poll_schedule_timeout",
    "ep_poll",
    "do_epoll_wait",
];

/// How many of `pids` are alive, and how many threads they have together (each
/// process's main thread included): what a limit that counts tasks counted.
pub(crate) fn task_counts(pids: &[u32]) -> (usize, usize) {
    pids.iter()
        .filter_map(|pid| std::fs::read_dir(format!("/proc/{pid}/task")).ok())
        .fold((0, 0), |(procs, threads), tasks| {
            (procs + 1, threads + tasks.flatten().count())
        })
}

/// Every thread of `pids`; a process that is gone has none.
fn threads(pids: &[u32]) -> Vec<ThreadState> {
    let mut out = Vec::new();
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let state = std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|s| s.rfind(')').and_then(|i| s[i + 2..].chars().next()));
            let mut wchan = std::fs::read_to_string(t.path().join("wchan")).unwrap_or_default();
            if let Some(dot) = wchan.find('.') {
                wchan.truncate(dot);
            }
            out.push(ThreadState { state, wchan });
        }
    }
    out
}

/// Whether these processes wait for the next client and do nothing else: no thread
/// running or waiting for a CPU, none blocked writing, and one asleep where a server
/// waits for connections. Where that cannot be read, the answer is no: the next case
/// then gets a fresh process, as without `share_process`.
pub(crate) fn waiting_for_clients(pids: &[u32]) -> bool {
    let threads = threads(pids);
    threads
        .iter()
        .all(|t| t.state != Some('R') && !WRITING.contains(&t.wchan.as_str()))
        && threads
            .iter()
            .any(|t| WAITING_FOR_CLIENTS.contains(&t.wchan.as_str()))
}

/// Whether the program has done all it can by itself and now waits for the outside
/// world (a connection, data, stdin, a child): no thread running, waiting for a CPU or
/// in the kernel uninterruptibly, none writing, none in a pause of its own. A program
/// that is gone is settled too.
pub(crate) fn settled(pids: &[u32]) -> bool {
    threads(pids).iter().all(|t| {
        // A sleeping thread read at the instant it goes to sleep or wakes has no wchan
        // yet ("0"): that is not a wait, and taking it for one acted too early.
        let known = !t.wchan.is_empty() && t.wchan != "0";
        matches!(t.state, Some('S') | Some('T') | Some('t') | Some('Z'))
            && (known || t.state == Some('Z'))
            && !WRITING.contains(&t.wchan.as_str())
            && !PAUSING.contains(&t.wchan.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_is_not_settled_and_a_blocking_read_is() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let mut reader = std::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (s, r) = (sleeper.id(), reader.id());
        // Each reaches its sleep in a moment: wait for that, not for a time.
        let asleep = |pid: u32| {
            threads(&[pid])
                .iter()
                .all(|t| t.state == Some('S') && !t.wchan.is_empty() && t.wchan != "0")
        };
        while !asleep(s) || !asleep(r) {
            std::thread::yield_now();
        }
        assert!(
            !settled(&[s]),
            "{:?}",
            threads(&[s]).iter().map(|t| &t.wchan).collect::<Vec<_>>()
        );
        assert!(
            settled(&[r]),
            "{:?}",
            threads(&[r]).iter().map(|t| &t.wchan).collect::<Vec<_>>()
        );
        assert!(!settled(&[s, r]));
        sleeper.kill().unwrap();
        reader.kill().unwrap();
        sleeper.wait().unwrap();
        reader.wait().unwrap();
    }

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

/// Each thread of `pids`, by thread id: the time it has spent on a CPU and the time it
/// has spent runnable but not running, in nanoseconds (`/proc/<pid>/task/<tid>/schedstat`,
/// its first two fields).
pub fn task_times(pids: &[u32]) -> Vec<(u32, TaskTimes)> {
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
                let mut f = s.split_whitespace().map(|v| v.parse::<u64>().ok());
                if let (Some(Some(run)), Some(Some(wait))) = (f.next(), f.next()) {
                    out.push((tid, TaskTimes { run, wait }));
                }
            }
        }
    }
    out
}

/// One thread's `schedstat` times, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskTimes {
    /// On a CPU.
    pub run: u64,
    /// Runnable, waiting for a CPU (or throttled by its cgroup's quota).
    pub wait: u64,
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
