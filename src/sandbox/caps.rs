//! Capabilities given up for good, with raw system calls only (async-signal-safe: they
//! run between fork and exec). A case's student processes ([`super::confine`]) give up
//! everything and change uid; the case's init ([`super::caseinit`]) stays uid 0 of its
//! namespaces but keeps no capability.

use crate::sys::{check, check_long};
use std::io;

// Kernel ABI (linux/securebits.h, linux/capability.h), spelled out so the module does
// not depend on how recent the libc crate is.
const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const PR_CAP_AMBIENT_CLEAR_ALL: libc::c_ulong = 4;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Root is never special again, and a change of uid drops every capability (no
/// KEEP_CAPS, no opting out of the fixup, no ambient raise); the bounding and ambient
/// sets emptied. Async-signal-safe.
pub(crate) unsafe fn lock_securebits_and_bounding() -> io::Result<()> {
    let bits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP_LOCKED
        | SECBIT_KEEP_CAPS_LOCKED
        | SECBIT_NO_CAP_AMBIENT_RAISE
        | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    check(libc::prctl(libc::PR_SET_SECUREBITS, bits, 0, 0, 0))?;
    // Older kernels lack ambient capabilities (EINVAL): then there are none to clear.
    libc::prctl(libc::PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for cap in 0..64 {
        if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) < 0 {
            // EINVAL past the last capability this kernel knows.
            if *libc::__errno_location() == libc::EINVAL {
                break;
            }
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Every capability set of this thread emptied. Async-signal-safe.
pub(crate) unsafe fn empty_capability_sets() -> io::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    check_long(libc::syscall(
        libc::SYS_capset,
        &mut header as *mut CapHeader,
        data.as_ptr(),
    ))
}

/// For the case's init: it stays uid 0 but keeps no capability, now or after its exec,
/// and can gain none. Async-signal-safe.
///
/// # Safety
/// Changes the calling process's credentials for good.
pub(crate) unsafe fn drop_capabilities() -> io::Result<()> {
    lock_securebits_and_bounding()?;
    empty_capability_sets()?;
    check(libc::prctl(
        libc::PR_SET_NO_NEW_PRIVS,
        1 as libc::c_ulong,
        0,
        0,
        0,
    ))
}
