//! What happened on the wire: a packet capture of one case's network namespace, written
//! as a classic pcap file that Wireshark, `tshark` and `tcpdump -r` open (`--pcap DIR`).
//!
//! The namespace has only `lo`, so a capture on its `lo` holds exactly the case's traffic:
//! the reference peer and the student's program, nothing else of the machine. An
//! `AF_PACKET` socket is opened inside the namespace ([`NetNs::run_in`]: a socket keeps
//! the namespace it was made in) and bound to its `lo` before the program starts; a
//! thread of its own writes each packet to the file as it comes (so a 64 MiB reply is not
//! held in memory) and, when the capture is stopped after the case, drains what is still
//! queued. The kernel stamps each packet (`SO_TIMESTAMPNS`), so a late reader does not
//! move the times.
//!
//! On `lo` the kernel hands a packet socket every packet twice, once going out and once
//! coming in; like libpcap, only the incoming copy is kept. Frames carry the Ethernet
//! header `lo` gives them (all zero addresses): link type 1, as `tcpdump -i lo` writes.
//!
//! Written by hand: the format is two fixed headers (24 bytes per file, 16 per packet),
//! and a crate would add nothing but a dependency.

use super::netns::NetNs;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// The largest frame `lo` carries (its MTU is 65536) with its Ethernet header.
const SNAPLEN: usize = 65536 + 14;
/// Past this many bytes in the file, packets are cut to their headers: the capture stays
/// readable (every SYN, FIN and RST is there) when a program floods its peer.
const FULL_BYTES: u64 = 32 << 20;
const HEADERS_ONLY: usize = 128;
/// The socket's receive buffer: room for a burst while the writer thread is not running.
const RCVBUF: libc::c_int = 8 << 20;
/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u32 = 1;

/// A capture running on one namespace's `lo`.
pub struct PacketCapture {
    path: PathBuf,
    /// Written once to tell the writer to drain and stop.
    stop: OwnedFd,
    writer: JoinHandle<io::Result<CaptureStats>>,
}

/// What a capture wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub packets: u64,
    /// Packets written cut to their headers (past [`FULL_BYTES`]).
    pub cut: u64,
    /// Packets the kernel dropped because the buffer was full.
    pub dropped: u64,
}

impl PacketCapture {
    /// Starts capturing `ns`'s loopback into a new pcap file at `path` (replaced if it
    /// exists). Call before the program starts.
    pub fn start(ns: &NetNs, path: &Path) -> io::Result<PacketCapture> {
        let sock = ns.run_in(open_socket)??;
        let file = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let mut out = BufWriter::with_capacity(64 << 10, file);
        write_file_header(&mut out)?;
        // SAFETY: eventfd returns a new descriptor we own, or -1.
        let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if stop == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `stop` is a fresh descriptor owned by nobody else.
        let stop = unsafe { OwnedFd::from_raw_fd(stop) };
        let stop_reader = stop.try_clone()?;
        let writer = std::thread::Builder::new()
            .name("sockgrade-pcap".into())
            .spawn(move || write_packets(sock, stop_reader, out))?;
        Ok(PacketCapture {
            path: path.to_path_buf(),
            stop,
            writer,
        })
    }

    /// Stops the capture after what the kernel has queued is written, and closes the
    /// file. Blocks until then (a few milliseconds): call it off the async threads.
    pub fn stop(self) -> io::Result<CaptureStats> {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local u64 to our eventfd.
        unsafe { libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
        match self.writer.join() {
            Ok(r) => {
                r.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))
            }
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

/// A packet socket bound to `lo` with kernel timestamps; run inside the namespace.
fn open_socket() -> io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
    // SAFETY: plain syscalls on a descriptor we own; arguments are valid locals.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto);
        if fd == -1 {
            return Err(with(
                io::Error::last_os_error(),
                "socket(AF_PACKET) (needs CAP_NET_RAW)",
            ));
        }
        let sock = OwnedFd::from_raw_fd(fd);
        let lo = libc::if_nametoindex(c"lo".as_ptr());
        if lo == 0 {
            return Err(with(io::Error::last_os_error(), "the namespace's lo"));
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto as u16;
        addr.sll_ifindex = lo as i32;
        let bound = libc::bind(
            fd,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        if bound == -1 {
            return Err(with(
                io::Error::last_os_error(),
                "bind the packet socket to lo",
            ));
        }
        let on: libc::c_int = 1;
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &on)?;
        // FORCE (root) goes past rmem_max; the plain one is the fallback.
        if setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF).is_err() {
            let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF);
        }
        Ok(sock)
    }
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a live T of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn with(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The writer thread: waits for packets or the stop, writes what comes; on the stop,
/// drains the queue and returns.
fn write_packets(
    sock: OwnedFd,
    stop: OwnedFd,
    mut out: BufWriter<File>,
) -> io::Result<CaptureStats> {
    let mut stats = CaptureStats::default();
    let mut written: u64 = 24;
    let mut buf = vec![0u8; SNAPLEN];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds; no timeout: the stop event ends the wait.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let stopping = fds[1].revents != 0;
        // Everything queued now (on a stop: everything the case sent).
        while let Some(p) = recv_packet(&sock, &mut buf)? {
            let Some(p) = p else { continue };
            let keep = if written > FULL_BYTES {
                p.len.min(HEADERS_ONLY)
            } else {
                p.len
            };
            if keep < p.len {
                stats.cut += 1;
            }
            write_record(&mut out, p.sec, p.nsec, &buf[..keep], p.orig_len)?;
            written += 16 + keep as u64;
            stats.packets += 1;
        }
        if stopping {
            stats.dropped = dropped(&sock);
            out.flush()?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            return Ok(stats);
        }
    }
}

/// One received frame: its time, the bytes in the buffer and its length on the wire.
struct Packet {
    sec: u32,
    nsec: u32,
    len: usize,
    orig_len: usize,
}

/// The next queued frame without blocking: `None` when the queue is empty,
/// `Some(None)` for an outgoing copy (skipped).
fn recv_packet(sock: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<Option<Packet>>> {
    // SAFETY: msghdr points to live locals (address, one iovec over `buf`, a control
    // buffer aligned for cmsghdr) for the duration of the call.
    unsafe {
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut addr as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        let n = libc::recvmsg(
            sock.as_raw_fd(),
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        );
        if n == -1 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                io::ErrorKind::Interrupted => Ok(Some(None)),
                _ => Err(e),
            };
        }
        if addr.sll_pkttype == libc::PACKET_OUTGOING {
            return Ok(Some(None));
        }
        let (mut sec, mut nsec) = (0u32, 0u32);
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                (sec, nsec) = (ts.tv_sec as u32, ts.tv_nsec as u32);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        let orig_len = n as usize;
        Ok(Some(Some(Packet {
            sec,
            nsec,
            len: orig_len.min(buf.len()),
            orig_len,
        })))
    }
}

/// Packets the kernel dropped for want of buffer room (PACKET_STATISTICS).
fn dropped(sock: &OwnedFd) -> u64 {
    let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as u32;
    // SAFETY: the kernel writes at most `len` bytes into `st`.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    };
    if r == 0 {
        st.tp_drops as u64
    } else {
        0
    }
}

/// The pcap file header: microsecond times, version 2.4, Ethernet frames.
fn write_file_header(w: &mut impl Write) -> io::Result<()> {
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?; // thiszone
    w.write_all(&0u32.to_le_bytes())?; // sigfigs
    w.write_all(&(SNAPLEN as u32).to_le_bytes())?;
    w.write_all(&LINKTYPE_ETHERNET.to_le_bytes())
}

fn write_record(
    w: &mut impl Write,
    sec: u32,
    nsec: u32,
    data: &[u8],
    orig_len: usize,
) -> io::Result<()> {
    w.write_all(&sec.to_le_bytes())?;
    w.write_all(&(nsec / 1000).to_le_bytes())?;
    w.write_all(&(data.len() as u32).to_le_bytes())?;
    w.write_all(&(orig_len as u32).to_le_bytes())?;
    w.write_all(data)
}

/// A case's capture file name: its name made safe for a file name (letters and digits
/// kept, in any script; the rest one `-`), then its target.
pub fn file_name(case: &str, target: &str) -> String {
    let mut slug = String::new();
    for c in case.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(80).collect();
    format!("{slug}-{target}.pcap")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_files_by_case_and_target() {
        assert_eq!(
            file_name("closes after the client closes", "server"),
            "closes-after-the-client-closes-server.pcap"
        );
        assert_eq!(
            file_name("../etc/passwd!", "client"),
            "etc-passwd-client.pcap"
        );
        assert_eq!(file_name("回显 (echo)", "server"), "回显-echo-server.pcap");
    }

    /// A connection made, used and closed in a namespace is in the file, each packet
    /// once: SYN, SYN-ACK, ACK, data, FIN... (root only; skipped elsewhere).
    #[test]
    fn captures_a_namespace_loopback_connection() {
        let Ok(ns) = NetNs::create() else {
            eprintln!("skipped: no network namespaces here (needs root)");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pcap");
        let cap = PacketCapture::start(&ns, &path).unwrap();
        ns.run_in(|| {
            use std::io::{Read, Write};
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (mut s, _) = l.accept().unwrap();
            c.write_all(b"hello pcap").unwrap();
            let mut got = [0u8; 10];
            s.read_exact(&mut got).unwrap();
        })
        .unwrap();
        let stats = cap.stop().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
        // SYN, SYN-ACK, ACK, data, ACK, then FIN/ACK exchanges on drop: each once.
        assert!(stats.packets >= 5, "{stats:?}");
        let needle = b"hello pcap";
        let hits = bytes.windows(needle.len()).filter(|w| w == needle).count();
        assert_eq!(hits, 1, "the data packet once, not its outgoing copy too");
        assert_eq!(stats.dropped, 0);
    }
}
