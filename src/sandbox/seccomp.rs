//! The system calls a student program may not make, in the spirit of the default
//! profiles of Docker and Podman: what grading a socket homework never needs and what
//! widens the kernel's attack surface or reaches past the case's namespaces.
//!
//! # What is refused
//!
//! - **Socket families** other than `AF_UNIX`, `AF_INET`, `AF_INET6` and `AF_NETLINK`
//!   (`NETLINK_ROUTE` only: glibc's `getaddrinfo` and Java's interface list use it) fail
//!   with `EAFNOSUPPORT`, as on a kernel without them: `AF_VSOCK` above all (a vsock
//!   socket is not confined by the network namespace), `AF_PACKET`, `AF_ALG`, Bluetooth,
//!   `AF_KEY`, `AF_XDP`, … `socketpair` is `AF_UNIX` only.
//! - **Namespaces and mounts**: `unshare`, `setns`, `mount`, `umount2`, `pivot_root`,
//!   `chroot`, the new mount API (`open_tree`, `move_mount`, `fsopen`, `fsmount`,
//!   `fsconfig`, `fspick`, `mount_setattr`), and `clone` with any `CLONE_NEW*` flag: no
//!   user namespace, the usual door to root-only kernel code.
//! - **Kernel surfaces**: `bpf`, `perf_event_open`, `userfaultfd`, `io_uring_*` (which
//!   also creates sockets without `socket(2)`), `keyctl`, `add_key`, `request_key`,
//!   `kexec_*`, `init_module`, `finit_module`, `delete_module`, `reboot`, `swapon`,
//!   `swapoff`, `acct`, `quotactl`, `syslog`, clock and time setting, `iopl`, `ioperm`,
//!   `modify_ldt`, `lookup_dcookie`, `name_to_handle_at`, `open_by_handle_at`,
//!   `fanotify_init`, `vhangup`, and the obsolete calls (`uselib`, `ustat`, `sysfs`,
//!   `_sysctl`, `nfsservctl`).
//! - **Other processes**: `ptrace`, `process_vm_readv`/`writev`, `process_madvise`,
//!   `pidfd_getfd`, `kcmp`.
//!
//! These fail with `EPERM` (the program gets an error it can report, never a kill). Two
//! more fail with `ENOSYS`, so that the C library takes its older path: `clone3` (its
//! flags are in memory a filter cannot read; glibc then uses `clone`, whose flags are
//! checked) and, on x86_64, the x32 system call numbers. A 32-bit system call
//! (`int 0x80`) kills the process: the filters check the architecture first.
//!
//! # Why `seccompiler`
//!
//! The filter is compiled by `seccompiler` (rust-vmm, the library Firecracker jails its
//! VMMs with): pure Rust, no C library to install (the `libseccomp` bindings need
//! `libseccomp-dev` on every machine that builds sockgrade, and its dynamic library where
//! it runs), conditions on arguments (socket families, clone flags), and a program that
//! is plain data: compiled once per run, installed by a raw `seccomp(2)` between fork and
//! exec (no allocation), and handed as bytes to the fork server for its children. It
//! knows x86_64, aarch64 and riscv64; elsewhere there is no filter (said once).

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule,
};
use std::collections::BTreeMap;
use std::io;
use std::sync::OnceLock;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

/// The compiled filters, installed in this order (each is checked on every system call;
/// the strictest answer wins).
pub struct Filters {
    programs: Vec<BpfProgram>,
}

impl std::fmt::Debug for Filters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filters")
            .field(
                "instructions",
                &self.programs.iter().map(Vec::len).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const sock_filter,
}

impl Filters {
    /// The filters for this machine's architecture, compiled once.
    pub fn get() -> Result<&'static Filters, String> {
        static FILTERS: OnceLock<Result<Filters, String>> = OnceLock::new();
        FILTERS.get_or_init(compile).as_ref().map_err(Clone::clone)
    }

    /// Installs the filters on the calling thread. Needs `no_new_privs` (or
    /// CAP_SYS_ADMIN). Async-signal-safe: for use between fork and exec, last.
    ///
    /// # Safety
    /// Restricts the calling thread for good.
    pub unsafe fn install(&self) -> io::Result<()> {
        for p in &self.programs {
            let prog = SockFprog {
                len: p.len() as libc::c_ushort,
                filter: p.as_ptr(),
            };
            if libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                0 as libc::c_ulong,
                &prog as *const SockFprog,
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Each program as the bytes of its `struct sock_filter` array (native order), in
    /// hex: what the fork server's child installs (`warm.py`).
    pub fn to_hex(&self) -> Vec<String> {
        self.programs
            .iter()
            .map(|p| {
                let mut s = String::with_capacity(p.len() * 16);
                for i in p {
                    for b in i
                        .code
                        .to_ne_bytes()
                        .into_iter()
                        .chain([i.jt, i.jf])
                        .chain(i.k.to_ne_bytes())
                    {
                        s.push_str(&format!("{b:02x}"));
                    }
                }
                s
            })
            .collect()
    }
}

/// Refused with EPERM, whatever the arguments.
fn denied() -> Vec<i64> {
    // (seccompiler's architectures are all 64-bit: a `c_long` is an `i64`.)
    let mut v: Vec<i64> = vec![
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_lookup_dcookie,
        libc::SYS_name_to_handle_at,
        libc::SYS_open_by_handle_at,
        libc::SYS_fanotify_init,
        libc::SYS_vhangup,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_process_madvise,
        libc::SYS_pidfd_getfd,
        libc::SYS_kcmp,
        libc::SYS_nfsservctl,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_modify_ldt,
        libc::SYS_uselib,
        libc::SYS_ustat,
        libc::SYS_sysfs,
        libc::SYS__sysctl,
    ]);
    v
}

/// Socket families a homework may use.
const FAMILIES: [u64; 4] = [
    libc::AF_UNIX as u64,
    libc::AF_INET as u64,
    libc::AF_INET6 as u64,
    libc::AF_NETLINK as u64,
];

/// Namespace flags of `clone` (`CLONE_NEWTIME` shares its bit with the exit signal
/// there, and `unshare`, which takes it, is refused).
const CLONE_NEW: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| e.to_string())
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| e.to_string())
}

fn filter(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
    arch: seccompiler::TargetArch,
) -> Result<BpfProgram, String> {
    let f = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    f.try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

fn compile() -> Result<Filters, String> {
    let arch: seccompiler::TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|_| format!("no seccomp filter for {}", std::env::consts::ARCH))?;

    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> =
        denied().into_iter().map(|n| (n, Vec::new())).collect();
    // clone with any namespace flag (the flags are the first argument on every
    // architecture).
    eperm.insert(
        libc::SYS_clone,
        CLONE_NEW
            .iter()
            .map(|&f| rule(vec![cond(0, SeccompCmpOp::MaskedEq(f), f)?]))
            .collect::<Result<_, _>>()?,
    );

    let family_not_allowed: Vec<SeccompCondition> = FAMILIES
        .iter()
        .map(|&f| cond(0, SeccompCmpOp::Ne, f))
        .collect::<Result<_, _>>()?;
    let netlink_not_route = vec![
        cond(0, SeccompCmpOp::Eq, libc::AF_NETLINK as u64)?,
        cond(2, SeccompCmpOp::Ne, libc::NETLINK_ROUTE as u64)?,
    ];
    let families = BTreeMap::from([
        (
            libc::SYS_socket,
            vec![rule(family_not_allowed)?, rule(netlink_not_route)?],
        ),
        (
            libc::SYS_socketpair,
            vec![rule(vec![cond(
                0,
                SeccompCmpOp::Ne,
                libc::AF_UNIX as u64,
            )?])?],
        ),
    ]);

    let enosys = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);

    let mut programs = vec![
        filter(eperm, libc::EPERM, arch)?,
        filter(families, libc::EAFNOSUPPORT, arch)?,
        filter(enosys, libc::ENOSYS, arch)?,
    ];
    #[cfg(target_arch = "x86_64")]
    programs.push(x32_guard());
    Ok(Filters { programs })
}

/// x86_64 only: system call numbers with the x32 bit (`__X32_SYSCALL_BIT`) fail with
/// ENOSYS, so that no call escapes the checks above under another number. (The
/// architecture is checked by the filters before.)
#[cfg(target_arch = "x86_64")]
fn x32_guard() -> BpfProgram {
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JGE_K: u16 = 0x35;
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let ins = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        // seccomp_data.nr
        ins(BPF_LD_W_ABS, 0, 0, 0),
        ins(BPF_JGE_K, 0, 1, 0x4000_0000),
        ins(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        ins(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` in a forked child with the filters installed; returns its exit code.
    fn in_filtered_child(f: fn() -> i32) -> i32 {
        let filters = Filters::get().unwrap();
        // SAFETY: the child runs only system calls and leaves by _exit.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if filters.install().is_err() {
                    libc::_exit(200);
                }
                libc::_exit(f());
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            assert!(libc::WIFEXITED(status), "killed: {status}");
            libc::WEXITSTATUS(status)
        }
    }

    fn errno() -> i32 {
        io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    #[test]
    fn homework_sockets_are_allowed_and_vsock_is_not() {
        let code = in_filtered_child(|| {
            // SAFETY: plain system calls in the filtered child.
            unsafe {
                for (family, kind, proto) in [
                    (libc::AF_INET, libc::SOCK_STREAM, 0),
                    (libc::AF_INET6, libc::SOCK_DGRAM, 0),
                    (libc::AF_UNIX, libc::SOCK_STREAM, 0),
                    (libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE),
                ] {
                    if libc::socket(family, kind, proto) < 0 {
                        return 10 + family;
                    }
                }
                let mut sv = [0; 2];
                if libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) < 0 {
                    return 2;
                }
                for (family, kind, proto) in [
                    (libc::AF_VSOCK, libc::SOCK_STREAM, 0),
                    (libc::AF_PACKET, libc::SOCK_RAW, 0),
                    (libc::AF_ALG, libc::SOCK_SEQPACKET, 0),
                    (
                        libc::AF_NETLINK,
                        libc::SOCK_RAW,
                        libc::NETLINK_KOBJECT_UEVENT,
                    ),
                ] {
                    if libc::socket(family, kind, proto) >= 0 || errno() != libc::EAFNOSUPPORT {
                        return 100 + family;
                    }
                }
                0
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn namespaces_kernel_surfaces_and_other_processes_are_refused() {
        let code = in_filtered_child(|| {
            // SAFETY: plain system calls in the filtered child (none succeeds).
            unsafe {
                let checks: [(i32, libc::c_long); 5] = [
                    (1, libc::unshare(libc::CLONE_NEWUSER) as libc::c_long),
                    (2, libc::syscall(libc::SYS_bpf, 0, 0, 0)),
                    (3, libc::syscall(libc::SYS_userfaultfd, 0)),
                    (4, libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0)),
                    (5, libc::syscall(libc::SYS_io_uring_setup, 1, 0)),
                ];
                for (n, r) in checks {
                    if r >= 0 || errno() != libc::EPERM {
                        return n;
                    }
                }
                // A thread or a fork still works; a new user namespace does not.
                if libc::syscall(
                    libc::SYS_clone,
                    (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
                    0,
                    0,
                    0,
                    0,
                ) >= 0
                    || errno() != libc::EPERM
                {
                    return 6;
                }
                if libc::syscall(libc::SYS_clone3, 0, 0) >= 0 || errno() != libc::ENOSYS {
                    return 7;
                }
                let pid = libc::fork();
                if pid == 0 {
                    libc::_exit(0);
                }
                if pid < 0 {
                    return 8;
                }
                0
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn the_hex_form_is_the_programs_bytes() {
        let f = Filters::get().unwrap();
        let hex = f.to_hex();
        assert_eq!(hex.len(), f.programs.len());
        for (h, p) in hex.iter().zip(&f.programs) {
            assert_eq!(h.len(), p.len() * 16);
        }
    }
}
