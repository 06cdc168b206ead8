//! One fresh Linux network namespace per test case.
//!
//! Students hardcode addresses and ports (`172.40.83.120:8888`, port 80, a
//! lab machine's IP, ...). Running each case in its own network namespace
//! gives us three things at once:
//!
//! * a private port space, so two cases graded concurrently can both bind
//!   `0.0.0.0:8888` without clashing;
//! * every address is local (a `local 0.0.0.0/0` route on `lo`), so whatever
//!   address the student hardcoded can be bound or connected to;
//! * nothing can leave the machine: the namespace has no interface but `lo`,
//!   so a student program can't reach the network even by accident.
//!
//! Namespaces belong to *threads*, not processes. Everything here that has to
//! be "inside" a namespace runs on a short-lived `std::thread` that enters it
//! and then exits, so no long-lived thread (in particular no tokio worker)
//! ever changes namespace. Sockets remember the namespace they were created
//! in, so a socket made on such a thread keeps working inside the namespace
//! from any thread afterwards (see [`NetNs::run_in`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::{panic, thread};

/// A fresh network namespace owned by one case: loopback up, and every IPv4
/// (and IPv6) address local (`ip route add local 0.0.0.0/0 dev lo` and
/// `local ::/0 dev lo`) so a student program can bind or connect any
/// hardcoded address (e.g. 172.40.83.120:8888) and the traffic never leaves
/// the namespace (it has no other interface).
///
/// The namespace lives as long as something refers to it: this value (it
/// holds an fd of `/proc/thread-self/ns/net`), a process inside it, or a
/// socket created inside it. Dropping the `NetNs` while a student process or
/// a reference-peer socket is still alive is therefore harmless; the kernel
/// tears the namespace down when the last of them goes.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
}

impl NetNs {
    /// Creates it. It runs once per test case, so it must be fast: no `ip`
    /// process is spawned (that alone costs milliseconds). Instead a
    /// short-lived std::thread calls `unshare(CLONE_NEWNET)` (only that thread
    /// moves, and it dies right after, so the caller's thread never changes
    /// namespace), keeps a handle on the namespace, brings `lo` up and adds
    /// the local routes with one rtnetlink batch.
    ///
    /// Measured on a 2-core VM: 0.6–0.9 ms, nearly all of it inside the
    /// kernel's `unshare` (registering the new namespace's sysctl tables,
    /// IPv6's mostly; a bare C loop of thread + unshare takes ~0.6 ms too).
    ///
    /// It also sets the namespace's `net.ipv6.ip_nonlocal_bind=1`: for IPv4
    /// the local route alone lets `bind` take any address, but IPv6 `bind`
    /// only accepts addresses actually assigned to an interface, route or not.
    ///
    /// Errors (EPERM when not root, ...) are returned with context, never
    /// panics. Their `kind()` is the errno's (e.g. `PermissionDenied`).
    pub fn create() -> io::Result<NetNs> {
        let nursery = nursery();
        on_helper_thread(move || {
            // Born from the nursery, the namespace gets a small TCP hash table of
            // its own (see `nursery`); without one, it shares the host's.
            if let Some(fd) = nursery {
                enter_raw(fd).map_err(|e| {
                    context(
                        e,
                        "setns into the namespace nursery (needs root / CAP_SYS_ADMIN)",
                    )
                })?;
            }
            // SAFETY: plain syscall, affects only this (throwaway) thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } == -1 {
                return Err(context(
                    io::Error::last_os_error(),
                    "unshare(CLONE_NEWNET) (needs root / CAP_SYS_ADMIN)",
                ));
            }
            // `thread-self`, not `self`: `/proc/self` is the main thread's view.
            let fd: OwnedFd = File::open("/proc/thread-self/ns/net")
                .map_err(|e| context(e, "open /proc/thread-self/ns/net"))?
                .into();
            rtnl::setup_loopback()?;
            allow_nonlocal_bind_v6()?;
            Ok(NetNs { fd })
        })?
    }

    /// The namespace fd, for the student process: its `pre_exec` calls
    /// `setns(fd, CLONE_NEWNET)` (async-signal-safe; [`enter_raw`] does it).
    /// The fd is close-on-exec, so the student never inherits it; it must stay
    /// open (keep the `NetNs` alive) until the child has been spawned.
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Runs `f` on a short-lived std::thread that has joined this namespace
    /// (setns), and returns its result.
    ///
    /// The grader uses it to create the reference peer's sockets inside the
    /// namespace: a socket stays in the namespace it was created in (its
    /// `bind`/`connect`/`accept` all happen there, whichever thread calls
    /// them later), so it can then be used from any tokio thread. Convert it
    /// to a tokio type *after* `run_in` returns, on a runtime thread:
    /// `from_std` registers with the reactor of the current runtime and the
    /// helper thread has none. For an async connect, create only the socket
    /// here (`socket2::Socket::new`) and connect it later with
    /// `tokio::net::TcpSocket::from_std_stream(..).connect(..)`.
    ///
    /// Never changes the calling thread's namespace. It does block the caller
    /// for a thread spawn + join (tens of µs) plus `f` itself; from async code
    /// that is fine for socket setup, use `spawn_blocking` for anything slow.
    /// If `f` panics, the panic is resumed on the caller.
    ///
    /// (The closure need not be `'static`: the thread is scoped, so it may
    /// borrow from the caller.)
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let ns = self.fd.as_fd();
        on_helper_thread(move || {
            enter_raw(ns.as_raw_fd()).map_err(|e| context(e, "setns(CLONE_NEWNET)"))?;
            Ok(f())
        })?
    }

    /// Installs an nf_tables ruleset in the namespace that redirects every
    /// outgoing TCP connection whose destination port is not `port` to `port`
    /// on loopback, so a student client that hardcodes any address and port
    /// reaches the reference server listening on `0.0.0.0:port` (IPv6
    /// connections are redirected to `[::1]:port`, so a dual-stack `[::]:port`
    /// listener catches both). [`original_dst`] tells where the client meant
    /// to go.
    ///
    /// The rule sits on the `output` hook, i.e. it applies to every connection
    /// started inside the namespace, the reference peer's own included.
    /// Calling it again replaces the previous rule (atomically).
    ///
    /// Uses Debian's `nft -f -`, started from a helper thread that has joined the
    /// namespace (a child starts in its creator's namespace), so no pre_exec is
    /// needed and std starts it with `posix_spawn` (no copy of the grader's page
    /// tables): the one exec in this module. `nft` takes ~3 ms of CPU but ~17 ms of
    /// wall time (the kernel waits for an RCU grace period when a nat hook is
    /// registered): call it where blocking is fine (`spawn_blocking`); only
    /// client-side cases need it, and writing nf_tables netlink batches by hand
    /// isn't worth it. Returns a clear `NotFound` error if `nft` is missing.
    pub fn redirect_tcp_to(&self, port: u16) -> io::Result<()> {
        self.apply_ruleset(redirect_ruleset(port))
    }

    /// Runs `nft -f -` with `script` inside the namespace.
    fn apply_ruleset(&self, script: String) -> io::Result<()> {
        let nft = find_program("nft", std::env::var_os("PATH").as_deref(), NFT_FALLBACKS)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "`nft` not found (PATH, /usr/sbin, /sbin): install nftables \
                     (Debian: apt-get install -y nftables) to redirect student clients",
                )
            })?;
        let out = self.run_in(|| -> io::Result<std::process::Output> {
            let mut child = Command::new(&nft)
                .args(["-f", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| {
                    context(
                        e,
                        &format!("spawn `{} -f -` in the namespace", nft.display()),
                    )
                })?;
            if let Some(mut stdin) = child.stdin.take() {
                // A write error (EPIPE if nft died early) shows up below as a
                // failed exit status with nft's own message, which is more useful.
                let _ = stdin.write_all(script.as_bytes());
            }
            child.wait_with_output()
        })??;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "`nft -f -` failed ({}): {}\nruleset was:\n{script}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// A second handle on the same namespace (e.g. for a blocking task).
    /// The UDP analogue of [`NetNs::redirect_tcp_to`]: every UDP datagram that starts a
    /// new flow in the namespace (a student client's first `sendto` to an address and
    /// port) goes to `port`; answers to it are un-NATed by conntrack. A table of its own,
    /// so that it never replaces the TCP redirect. The reference socket's own datagrams
    /// (source port `port`) are never redirected. TCP connections go to `port` too, where
    /// the grader listens only to name a client that speaks TCP under a UDP spec.
    pub fn redirect_udp_to(&self, port: u16) -> io::Result<()> {
        self.apply_ruleset(udp_redirect_ruleset(port))
    }

    pub fn try_clone(&self) -> io::Result<NetNs> {
        Ok(NetNs {
            fd: self.fd.try_clone()?,
        })
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Moves the calling thread into the network namespace `fd` (`setns(fd,
/// CLONE_NEWNET)`).
///
/// Async-signal-safe (one syscall and an errno read, no allocation), so it is
/// what a student process's `pre_exec` should call with
/// [`NetNs::as_raw_fd`]. Don't call it on a thread you intend to keep: use
/// [`NetNs::run_in`] for that.
pub fn enter_raw(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall; a bad fd is reported as EBADF/EINVAL.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Where the student's client meant to connect before the redirect:
/// `getsockopt(SOL_IP, SO_ORIGINAL_DST)` on an accepted socket
/// (`SOL_IPV6, IP6T_SO_ORIGINAL_DST` for an IPv6 connection; an IPv4
/// connection accepted on a dual-stack socket is reported as IPv4).
///
/// When conntrack has no entry for the connection (no redirect installed, so
/// no NAT happened), the address the client dialled is the one it reached,
/// and the socket's local address is returned.
pub fn original_dst(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    let sock = socket2::SockRef::from(&fd);
    let local = sock
        .local_addr()?
        .as_socket()
        .map(unmap_v4)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP socket"))?;
    let orig = if local.is_ipv4() {
        // SOL_IP works on an AF_INET6 socket too when the connection is IPv4.
        sock.original_dst()
    } else {
        sock.original_dst_ipv6()
    };
    match orig {
        Ok(addr) => addr.as_socket().map(unmap_v4).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "SO_ORIGINAL_DST: not an IP address",
            )
        }),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(local),
        Err(e) => Err(context(e, "getsockopt(SO_ORIGINAL_DST)")),
    }
}

/// True when this process can create network namespaces (tries once:
/// `NetNs::create()`, the answer is cached); used to pick isolation.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| NetNs::create().is_ok())
}

/// True when `nft` can be found (PATH, then /usr/sbin and /sbin), i.e. when
/// [`NetNs::redirect_tcp_to`] can work; without it, student clients must
/// dial the exact address and port the reference listens on.
pub fn nft_available() -> bool {
    find_program("nft", std::env::var_os("PATH").as_deref(), NFT_FALLBACKS).is_some()
}

/// Runs `f` on a fresh, scoped std::thread and returns its result; a panic in
/// `f` is resumed on the caller. Namespace changes made by `f` die with the
/// thread, which is the point.
fn on_helper_thread<T: Send>(f: impl FnOnce() -> T + Send) -> io::Result<T> {
    thread::scope(|s| {
        let handle = thread::Builder::new()
            .name("sockgrade-netns".into())
            .spawn_scoped(s, f)
            .map_err(|e| context(e, "spawn namespace helper thread"))?;
        match handle.join() {
            Ok(v) => Ok(v),
            Err(payload) => panic::resume_unwind(payload),
        }
    })
}

/// Buckets of each case namespace's own TCP hash table.
const CHILD_EHASH_ENTRIES: &[u8] = b"1024";

/// A namespace whose only use is to be the place case namespaces are created from.
///
/// Why: a new network namespace shares the host's TCP established-hash table (here
/// 262,144 buckets) unless the namespace that creates it sets
/// `net.ipv4.tcp_child_ehash_entries` (Linux 6.1+). Reading `/proc/<pid>/net/tcp`, which
/// the grader does every 2 ms while it waits for a server to listen or accept, walks
/// every bucket: 65 % of the grader's CPU time went there. Setting the sysctl in a
/// private nursery, never on the host, gives each case a table of 1,024 buckets and
/// makes those reads ~100 times cheaper. `None` where the kernel lacks the sysctl.
fn nursery() -> Option<RawFd> {
    static NURSERY: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();
    NURSERY
        .get_or_init(|| {
            on_helper_thread(|| -> io::Result<OwnedFd> {
                // SAFETY: plain syscall, affects only this (throwaway) thread.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } == -1 {
                    return Err(io::Error::last_os_error());
                }
                std::fs::write(
                    "/proc/sys/net/ipv4/tcp_child_ehash_entries",
                    CHILD_EHASH_ENTRIES,
                )?;
                Ok(File::open("/proc/thread-self/ns/net")?.into())
            })
            .ok()
            .and_then(Result::ok)
        })
        .as_ref()
        .map(|fd| fd.as_raw_fd())
}

/// Makes `bind` to any IPv6 address work in the current thread's namespace.
/// `/proc/sys/net` shows the namespace of the thread that opens it.
///
/// Two failures are tolerated rather than costing the whole isolation:
/// a missing file (IPv6 disabled on this kernel, nothing to do) and a
/// read-only `/proc/sys` (some containers; then only binding arbitrary IPv6
/// addresses is lost, connecting to them still works).
fn allow_nonlocal_bind_v6() -> io::Result<()> {
    match std::fs::write("/proc/sys/net/ipv6/ip_nonlocal_bind", b"1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Ok(()),
        r => r.map_err(|e| context(e, "set net.ipv6.ip_nonlocal_bind=1")),
    }?;
    // Student code runs under an unprivileged uid (see `confine`), and a few programs
    // bind ports below 1024 (80, 21): let them, in this namespace only.
    match std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", b"0") {
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::EROFS) => {
            Ok(())
        }
        r => r.map_err(|e| context(e, "set net.ipv4.ip_unprivileged_port_start=0")),
    }
}

const NFT_FALLBACKS: &[&str] = &["/usr/sbin/nft", "/sbin/nft"];

/// Looks `name` up in `path_var`, then in `fallbacks`: sbin is often missing
/// from PATH (cron, CI, `env -i`) even when running as root.
fn find_program(name: &str, path_var: Option<&OsStr>, fallbacks: &[&str]) -> Option<PathBuf> {
    let in_path = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name));
    in_path
        .chain(fallbacks.iter().map(PathBuf::from))
        .find(|p| crate::sys::is_executable(p))
}

/// The nf_tables ruleset for [`NetNs::redirect_tcp_to`]. The `table` +
/// `delete table` prelude makes it replace any previous version in the same
/// atomic transaction. `inet` covers IPv4 and IPv6; priority -100 is dstnat.
fn redirect_ruleset(port: u16) -> String {
    format!(
        "table inet sockgrade\n\
         delete table inet sockgrade\n\
         table inet sockgrade {{\n\
         \tchain redirect_out {{\n\
         \t\ttype nat hook output priority -100; policy accept;\n\
         \t\ttcp dport != {port} redirect to :{port}\n\
         \t}}\n\
         }}\n"
    )
}

/// The ruleset of [`NetNs::redirect_udp_to`]. Two rules, not one: nft 1.0.6 merges
/// `udp sport != P udp dport != P` into one compare of both ports, which matches when
/// *either* differs, so a datagram to the right port (from 10.9.8.7, say) was
/// redirected too, and the reference's answer to it as well (back to itself).
fn udp_redirect_ruleset(port: u16) -> String {
    format!(
        "table inet sockgrade_udp\n\
         delete table inet sockgrade_udp\n\
         table inet sockgrade_udp {{\n\
         \tchain redirect_out {{\n\
         \t\ttype nat hook output priority -100; policy accept;\n\
         \t\tudp sport {port} accept\n\
         \t\tudp dport != {port} redirect to :{port}\n\
         \t\tmeta l4proto tcp redirect to :{port}\n\
         \t}}\n\
         }}\n"
    )
}

/// `::ffff:a.b.c.d` (an IPv4 peer seen by a dual-stack socket) → `a.b.c.d`.
fn unmap_v4(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// Prefixes an error with what we were doing, keeping its kind.
fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Minimal hand-written rtnetlink: one `send` of three requests (link up, two
/// routes), then their acks, on a blocking socket in a thread
/// that is about to exit. The netlink crates (rtnetlink, neli, ...) are built
/// around an async runtime or a large generic message model; for one fixed
/// batch that is ~100 lines of byte layout, libc is simpler and faster. The constants are the kernel ABI
/// (`<linux/netlink.h>`, `<linux/rtnetlink.h>`) and are spelled out here
/// because their Rust types differ between libc versions.
mod rtnl {
    use super::context;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    const NLMSG_HDRLEN: usize = 16;
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_ACK: u16 = 0x4;
    const NLM_F_EXCL: u16 = 0x200;
    const NLM_F_CREATE: u16 = 0x400;
    const RTM_NEWLINK: u16 = 16;
    const RTM_NEWROUTE: u16 = 24;
    const RT_TABLE_LOCAL: u8 = 255;
    const RTPROT_BOOT: u8 = 3;
    const RT_SCOPE_HOST: u8 = 254;
    const RTN_LOCAL: u8 = 2;
    const RTN_UNREACHABLE: u8 = 7;
    const RTA_DST: u16 = 1;
    const RTA_OIF: u16 = 4;
    const IFF_UP: u32 = 0x1;

    /// One request of the batch, to match its ack and explain a failure.
    struct Step {
        what: &'static str,
        /// Fails harmlessly when the kernel has no IPv6 (EAFNOSUPPORT).
        ipv6: bool,
    }

    /// Brings `lo` up and adds `local 0.0.0.0/0` and `local ::/0` via `lo` to
    /// the local table, in the current thread's namespace.
    pub(super) fn setup_loopback() -> io::Result<()> {
        // SAFETY: plain call with a NUL-terminated string.
        let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
        if lo == 0 {
            return Err(context(io::Error::last_os_error(), "if_nametoindex(lo)"));
        }
        let mut batch = Vec::with_capacity(128);
        let steps = [
            Step {
                what: "rtnetlink: set lo up",
                ipv6: false,
            },
            Step {
                what: "rtnetlink: add route local 0.0.0.0/0 dev lo",
                ipv6: false,
            },
            Step {
                what: "rtnetlink: add route local ::/0 dev lo",
                ipv6: true,
            },
            Step {
                what: "rtnetlink: add route unreachable 0.0.0.0/8 table local",
                ipv6: false,
            },
            Step {
                what: "rtnetlink: add route unreachable 240.0.0.0/4 table local",
                ipv6: false,
            },
        ];
        // seq = index + 1
        push_msg(&mut batch, RTM_NEWLINK, 0, 1, &link_up(lo));
        let new = NLM_F_CREATE | NLM_F_EXCL;
        push_msg(
            &mut batch,
            RTM_NEWROUTE,
            new,
            2,
            &local_default_route(libc::AF_INET as u8, lo),
        );
        push_msg(
            &mut batch,
            RTM_NEWROUTE,
            new,
            3,
            &local_default_route(libc::AF_INET6 as u8, lo),
        );
        // Every address is local, except those no machine can own: a server bound to
        // 0.0.0.1 or 240.0.0.1 fails at bind() here as on every real machine, instead
        // of getting full marks. (0.0.0.0 itself is the wildcard, untouched.)
        push_msg(
            &mut batch,
            RTM_NEWROUTE,
            new,
            4,
            &unreachable_route([0, 0, 0, 0], 8),
        );
        push_msg(
            &mut batch,
            RTM_NEWROUTE,
            new,
            5,
            &unreachable_route([240, 0, 0, 0], 4),
        );

        // SAFETY: plain syscall; the fd is owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw == -1 {
            return Err(context(io::Error::last_os_error(), "socket(NETLINK_ROUTE)"));
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(raw) };

        // An unbound, unconnected netlink socket sends to the kernel (portid 0).
        loop {
            // SAFETY: buffer pointer/length come from a live Vec.
            let n = unsafe { libc::send(sock.as_raw_fd(), batch.as_ptr().cast(), batch.len(), 0) };
            if n >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(context(e, "rtnetlink: send"));
            }
        }
        read_acks(&sock, &steps)
    }

    /// Reads one ack per step (rtnetlink handles the batch synchronously
    /// inside `send`, so they are already queued) and returns the first
    /// failure, as an io::Error built from the ack's negative errno.
    fn read_acks(sock: &OwnedFd, steps: &[Step]) -> io::Result<()> {
        let mut acked = vec![false; steps.len()];
        let mut first_err: Option<io::Error> = None;
        let mut buf = [0u8; 4096];
        while acked.iter().any(|a| !a) {
            // SAFETY: buffer pointer/length come from a live array.
            let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(context(e, "rtnetlink: recv"));
            }
            let mut msgs = &buf[..n as usize];
            while msgs.len() >= NLMSG_HDRLEN {
                let len = u32_at(msgs, 0) as usize;
                if len < NLMSG_HDRLEN || len > msgs.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "rtnetlink: malformed reply",
                    ));
                }
                let ty = u16::from_ne_bytes([msgs[4], msgs[5]]);
                let seq = u32_at(msgs, 8) as usize;
                // struct nlmsgerr starts with `int error` (0 = ack, -errno = failure).
                if ty == NLMSG_ERROR && len >= NLMSG_HDRLEN + 4 && (1..=steps.len()).contains(&seq)
                {
                    acked[seq - 1] = true;
                    let errno = -(u32_at(msgs, NLMSG_HDRLEN) as i32);
                    let step = &steps[seq - 1];
                    let no_ipv6 = step.ipv6 && errno == libc::EAFNOSUPPORT;
                    if errno != 0 && !no_ipv6 && first_err.is_none() {
                        first_err = Some(context(io::Error::from_raw_os_error(errno), step.what));
                    }
                }
                msgs = &msgs[align4(len).min(msgs.len())..];
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn push_msg(buf: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, body: &[u8]) {
        let len = (NLMSG_HDRLEN + body.len()) as u32;
        buf.extend_from_slice(&len.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: 0 = kernel fills it
        buf.extend_from_slice(body);
        buf.resize(align4(buf.len()), 0);
    }

    /// struct ifinfomsg { family, pad, type, index, flags, change }.
    fn link_up(ifindex: u32) -> [u8; 16] {
        let mut m = [0u8; 16];
        m[0] = libc::AF_UNSPEC as u8;
        m[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        m[8..12].copy_from_slice(&IFF_UP.to_ne_bytes()); // ifi_flags
        m[12..16].copy_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change: only touch IFF_UP
        m
    }

    /// struct rtmsg + RTA_OIF: `local <any>/0 dev <ifindex> table local scope host`.
    fn local_default_route(family: u8, ifindex: u32) -> [u8; 20] {
        let mut m = [0u8; 20];
        m[0] = family; // rtm_family; m[1] rtm_dst_len = 0, m[2] src_len, m[3] tos
        m[4] = RT_TABLE_LOCAL;
        m[5] = RTPROT_BOOT; // what `ip route add` uses
        m[6] = RT_SCOPE_HOST;
        m[7] = RTN_LOCAL; // m[8..12] rtm_flags = 0
        m[12..14].copy_from_slice(&8u16.to_ne_bytes()); // rta_len
        m[14..16].copy_from_slice(&RTA_OIF.to_ne_bytes());
        m[16..20].copy_from_slice(&ifindex.to_ne_bytes());
        m
    }

    /// struct rtmsg + RTA_DST: `unreachable <net>/<len> table local`.
    fn unreachable_route(net: [u8; 4], len: u8) -> [u8; 20] {
        let mut m = [0u8; 20];
        m[0] = libc::AF_INET as u8;
        m[1] = len; // rtm_dst_len
        m[4] = RT_TABLE_LOCAL;
        m[5] = RTPROT_BOOT;
        m[7] = RTN_UNREACHABLE; // scope 0: universe, as `ip route add unreachable` uses
        m[12..14].copy_from_slice(&8u16.to_ne_bytes()); // rta_len
        m[14..16].copy_from_slice(&RTA_DST.to_ne_bytes());
        m[16..20].copy_from_slice(&net);
        m
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    fn align4(n: usize) -> usize {
        (n + 3) & !3
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    /// These tests need root; on a machine without it they print why and pass.
    fn skip() -> bool {
        if available() {
            false
        } else {
            eprintln!("skipping: cannot create network namespaces here (not root?)");
            true
        }
    }

    /// The redirect tests also need `nft` (Debian: `apt-get install -y nftables`).
    fn skip_without_nft() -> bool {
        if skip() {
            return true;
        }
        if nft_available() {
            return false;
        }
        eprintln!("skipping: `nft` not installed (apt-get install -y nftables)");
        true
    }

    fn netns_id_of_this_thread() -> PathBuf {
        std::fs::read_link("/proc/thread-self/ns/net").unwrap()
    }

    #[test]
    fn binds_and_connects_any_address() {
        if skip() {
            return;
        }
        let before = netns_id_of_this_thread();
        let ns = NetNs::create().unwrap();
        let addr: SocketAddr = "172.40.83.120:8888".parse().unwrap();
        let (peer, got) = ns
            .run_in(move || {
                let listener = TcpListener::bind(addr).unwrap();
                let mut client = TcpStream::connect(addr).unwrap();
                let (mut server, peer) = listener.accept().unwrap();
                client.write_all(b"ping").unwrap();
                let mut buf = [0; 4];
                server.read_exact(&mut buf).unwrap();
                server.write_all(b"pong").unwrap();
                let mut got = [0; 4];
                client.read_exact(&mut got).unwrap();
                assert_eq!(&buf, b"ping");
                (peer, got)
            })
            .unwrap();
        assert_eq!(&got, b"pong");
        // For a `local` route the kernel uses the destination as the source too.
        assert_eq!(peer.ip(), addr.ip());
        assert_eq!(
            netns_id_of_this_thread(),
            before,
            "caller's namespace changed"
        );
        assert_ne!(
            std::fs::read_link(format!("/proc/self/fd/{}", ns.as_raw_fd())).unwrap(),
            before,
            "NetNs is the host namespace"
        );
    }

    #[test]
    fn refuses_addresses_no_machine_can_own() {
        if skip() {
            return;
        }
        let ns = NetNs::create().unwrap();
        let results = ns
            .run_in(|| {
                [
                    "0.0.0.0",
                    "0.0.0.1",
                    "0.255.1.2",
                    "240.0.0.1",
                    "172.40.83.120",
                ]
                .map(|ip| {
                    (
                        ip,
                        TcpListener::bind((ip, 8888))
                            .map(drop)
                            .map_err(|e| e.kind()),
                    )
                })
            })
            .unwrap();
        for (ip, r) in results {
            let ownable = ip == "0.0.0.0" || ip == "172.40.83.120";
            assert_eq!(r.is_ok(), ownable, "{ip}: {r:?}");
            if !ownable {
                assert_eq!(r, Err(std::io::ErrorKind::AddrNotAvailable), "{ip}");
            }
        }
    }

    #[test]
    fn binds_any_ipv6_address() {
        if skip() {
            return;
        }
        let ns = NetNs::create().unwrap();
        let addr: SocketAddr = "[2001:db8::5]:8888".parse().unwrap();
        ns.run_in(move || {
            let listener = TcpListener::bind(addr).unwrap();
            let mut client = TcpStream::connect(addr).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            client.write_all(b"6").unwrap();
            let mut buf = [0; 1];
            server.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"6");
        })
        .unwrap();
        // The sysctl was set in the namespace only.
        let host = std::fs::read_to_string("/proc/sys/net/ipv6/ip_nonlocal_bind");
        if let Ok(host) = host {
            let inside = ns
                .run_in(|| std::fs::read_to_string("/proc/sys/net/ipv6/ip_nonlocal_bind").unwrap())
                .unwrap();
            assert_eq!(inside.trim(), "1");
            assert_eq!(
                host.trim(),
                "0",
                "host sysctl changed (was it 1 before the test?)"
            );
        }
    }

    #[test]
    fn two_namespaces_same_port_do_not_clash() {
        if skip() {
            return;
        }
        let any: SocketAddr = "0.0.0.0:8888".parse().unwrap();
        let (a, b) = (NetNs::create().unwrap(), NetNs::create().unwrap());
        let la = a.run_in(move || TcpListener::bind(any)).unwrap().unwrap();
        let lb = b.run_in(move || TcpListener::bind(any)).unwrap().unwrap();
        // A connection made in `a` lands on a's listener, not b's.
        let _c = a
            .run_in(|| TcpStream::connect("127.0.0.1:8888"))
            .unwrap()
            .unwrap();
        la.accept().unwrap();
        lb.set_nonblocking(true).unwrap();
        assert_eq!(lb.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn nothing_leaves_the_namespace() {
        if skip() {
            return;
        }
        let ns = NetNs::create().unwrap();
        let (ifaces, v4, v6, took) = ns
            .run_in(|| {
                // /proc/thread-self: /proc/net would show the main thread's namespace.
                let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
                let ifaces: Vec<String> = dev
                    .lines()
                    .skip(2)
                    .map(|l| l.split(':').next().unwrap().trim().to_string())
                    .collect();
                let t = Instant::now();
                let dns = SocketAddr::from((Ipv4Addr::new(8, 8, 8, 8), 53));
                let v4 = TcpStream::connect_timeout(&dns, Duration::from_secs(5));
                let dns6 =
                    SocketAddr::from(("2001:4860:4860::8888".parse::<Ipv6Addr>().unwrap(), 53));
                let v6 = TcpStream::connect_timeout(&dns6, Duration::from_secs(5));
                (ifaces, v4, v6, t.elapsed())
            })
            .unwrap();
        assert_eq!(ifaces, ["lo"], "the namespace must have no way out");
        // The local route makes 8.8.8.8 "this host": nobody listens, so an
        // immediate RST, not a timeout (which would mean packets went out).
        assert_eq!(v4.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(v6.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
        eprintln!("refused after {took:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redirected_child_reaches_listener_and_original_dst_is_reported() {
        if skip_without_nft() {
            return;
        }
        if find_program("python3", std::env::var_os("PATH").as_deref(), &[]).is_none() {
            eprintln!("skipping: python3 not found");
            return;
        }
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ns = NetNs::create().unwrap();
        ns.redirect_tcp_to(8888).unwrap();
        let std_listener = ns
            .run_in(|| {
                let l = TcpListener::bind("0.0.0.0:8888")?;
                l.set_nonblocking(true)?;
                io::Result::Ok(l)
            })
            .unwrap()
            .unwrap();
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();

        let fd = ns.as_raw_fd();
        let mut cmd = tokio::process::Command::new("python3");
        cmd.args([
            "-c",
            "import socket\n\
             s = socket.create_connection(('172.40.83.120', 9999))\n\
             s.sendall(b'hello')\n\
             print(s.recv(100).decode())\n",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true);
        // SAFETY: enter_raw is async-signal-safe.
        unsafe { cmd.pre_exec(move || enter_raw(fd)) };
        let mut child = cmd.spawn().unwrap();

        // Wait for whichever comes first: the connection, or the child dying
        // without making one.
        let (mut conn, _) = tokio::select! {
            accepted = listener.accept() => accepted.unwrap(),
            status = child.wait() => panic!("python3 exited before connecting: {status:?}"),
        };
        assert_eq!(
            original_dst(conn.as_fd()).unwrap(),
            "172.40.83.120:9999".parse().unwrap()
        );
        let mut buf = [0; 5];
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        conn.write_all(b"world").await.unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "world");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokio_sockets_from_run_in() {
        if skip_without_nft() {
            return;
        }
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ns = NetNs::create().unwrap();
        ns.redirect_tcp_to(8888).unwrap();
        // Created (and bound) inside the namespace, converted to tokio here,
        // on a runtime thread: from_std needs the runtime's reactor.
        let std_listener = ns
            .run_in(|| -> io::Result<TcpListener> {
                let s = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)?;
                s.set_only_v6(false)?; // dual stack: redirected IPv4 and IPv6 both land here
                s.set_reuse_address(true)?;
                s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 8888)).into())?;
                s.listen(16)?;
                s.set_nonblocking(true)?;
                Ok(s.into())
            })
            .unwrap()
            .unwrap();
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();

        for target in ["10.1.2.3:80", "[2001:db8::7]:443", "127.0.0.1:8888"] {
            let target: SocketAddr = target.parse().unwrap();
            // Only the socket needs creating inside; the async connect can
            // run on any tokio thread and still happens in the namespace.
            let sock = ns
                .run_in(move || {
                    let s = socket2::Socket::new(
                        socket2::Domain::for_address(target),
                        socket2::Type::STREAM,
                        None,
                    )?;
                    s.set_nonblocking(true)?;
                    io::Result::Ok(TcpStream::from(s))
                })
                .unwrap()
                .unwrap();
            let connect = tokio::net::TcpSocket::from_std_stream(sock).connect(target);
            let (client, accepted) = tokio::join!(connect, listener.accept());
            let (mut client, (mut server, _)) = (client.unwrap(), accepted.unwrap());
            assert_eq!(original_dst(server.as_fd()).unwrap(), target);
            client.write_all(b"x").await.unwrap();
            assert_eq!(server.read_u8().await.unwrap(), b'x');
        }
    }

    #[test]
    fn redirect_can_be_replaced() {
        if skip_without_nft() {
            return;
        }
        let ns = NetNs::create().unwrap();
        ns.redirect_tcp_to(1111).unwrap();
        ns.redirect_tcp_to(8888).unwrap();
        let (listener, _c) = ns
            .run_in(|| {
                let l = TcpListener::bind("0.0.0.0:8888").unwrap();
                (l, TcpStream::connect("192.0.2.1:1111").unwrap())
            })
            .unwrap();
        let (conn, _) = listener.accept().unwrap();
        assert_eq!(
            original_dst(conn.as_fd()).unwrap(),
            "192.0.2.1:1111".parse().unwrap()
        );
    }

    #[test]
    fn original_dst_without_redirect_is_local_addr() {
        if skip() {
            return;
        }
        let ns = NetNs::create().unwrap();
        let (listener, _c) = ns
            .run_in(|| {
                let l = TcpListener::bind("0.0.0.0:8888").unwrap();
                (l, TcpStream::connect("172.40.83.120:8888").unwrap())
            })
            .unwrap();
        let (conn, _) = listener.accept().unwrap();
        assert_eq!(
            original_dst(conn.as_fd()).unwrap(),
            "172.40.83.120:8888".parse().unwrap()
        );
    }

    #[test]
    fn run_in_propagates_panics_and_borrows() {
        if skip() {
            return;
        }
        let ns = NetNs::create().unwrap();
        let local = String::from("borrowed");
        assert_eq!(ns.run_in(|| local.len()).unwrap(), 8);
        let r = panic::catch_unwind(panic::AssertUnwindSafe(|| ns.run_in(|| panic!("boom"))));
        assert!(r.is_err());
    }

    #[test]
    fn create_without_cap_sys_admin_is_an_error() {
        if skip() {
            return;
        }
        // Capabilities are per thread and inherited by threads it spawns:
        // drop CAP_SYS_ADMIN from this helper thread's effective set only.
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const CAP_SYS_ADMIN: u32 = 21;
        let err = thread::spawn(|| {
            let mut hdr = Header {
                version: 0x2008_0522,
                pid: 0,
            };
            let mut data = [Data::default(); 2];
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()),
                    0
                );
                data[0].effective &= !(1 << CAP_SYS_ADMIN);
                assert_eq!(libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()), 0);
            }
            NetNs::create().unwrap_err()
        })
        .join()
        .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert!(err.to_string().contains("CAP_SYS_ADMIN"), "{err}");
    }

    #[test]
    fn missing_nft_is_a_clear_error() {
        assert_eq!(find_program("nft", Some(OsStr::new("")), &[]), None);
        assert_eq!(
            find_program("sh", Some(OsStr::new("/nonexistent")), &["/bin/sh"]),
            Some(PathBuf::from("/bin/sh"))
        );
    }

    #[test]
    fn create_is_fast() {
        if skip() {
            return;
        }
        const N: u32 = 100;
        let t = Instant::now();
        for _ in 0..N {
            drop(NetNs::create().unwrap());
        }
        let avg = t.elapsed() / N;
        eprintln!("NetNs::create(): {avg:?} on average over {N} runs");
        // Generous bound: the target is well under 1 ms, but CI machines vary.
        assert!(
            avg < Duration::from_millis(20),
            "NetNs::create() took {avg:?} on average"
        );
    }

    #[test]
    fn ruleset_text() {
        let r = redirect_ruleset(8888);
        assert!(r.contains("tcp dport != 8888 redirect to :8888"), "{r}");
        // One condition a rule: nft merges `udp sport != P udp dport != P` into a
        // compare of both ports at once, true when either differs.
        let r = udp_redirect_ruleset(8888);
        assert!(
            r.contains("\t\tudp sport 8888 accept\n\t\tudp dport != 8888 redirect to :8888\n"),
            "{r}"
        );
    }
}
