//! Confinement of a student process: it runs without the grader's privileges, sees the
//! machine read-only except its own work folder, and cannot reach other students' copies.
//!
//! [`Confinement::prepare`] plans everything before the fork (paths as C strings, the
//! order of the mounts, the case's uid) and hands the work folder to that uid;
//! [`Confinement::apply_in_child`] carries the plan out between fork and exec with raw
//! system calls only: no allocation, no lock, nothing that is not async-signal-safe.
//!
//! # What the child gets
//!
//! 1. A mount namespace of its own (`unshare(CLONE_NEWNS)`, `/` made `MS_REC|MS_PRIVATE`
//!    so nothing propagates back to the grader's view).
//! 2. Detached clones (`open_tree(OPEN_TREE_CLONE)`) of the work folder (read-write,
//!    nosuid, nodev) and of the few trees under `/root` that the student's `PATH` needs
//!    (read-only), taken before anything is covered.
//! 3. The whole tree made read-only in one call (`mount_setattr(MOUNT_ATTR_RDONLY,
//!    AT_RECURSIVE)`): writes anywhere else fail with `EROFS`, the submission included.
//! 4. Fresh small tmpfs on `/tmp`, `/var/tmp`, `/dev/shm`, the grader's temp folder and
//!    the work folder's parent: programs that need scratch space get it, it vanishes with
//!    the case, and the other cases' copies (the work folder's neighbours) are not there
//!    at all. The folders above those must be searchable by others (`prepare` checks).
//! 5. A tmpfs over `/root` (read-only once set up) holding only the `PATH` trees found
//!    under it (the pyenv root for a pyenv shim), so the interpreter is reachable while
//!    the grader's own files (credentials, configuration, submissions kept there) are not.
//! 6. The work folder attached again at its own path, and the working folder re-entered
//!    through the new mounts.
//! 7. Privileges dropped for good: securebits locked (`NOROOT`, no `KEEP_CAPS`, no
//!    ambient raise), the bounding and ambient sets cleared, no supplementary groups,
//!    `setresgid`/`setresuid` to the case's own uid, every capability set emptied,
//!    `no_new_privs`; the parent-death signal, which the kernel clears on a change of
//!    credentials, is armed again.
//!
//! # Why a real uid, and one per case
//!
//! Staying uid 0 without capabilities was the alternative: simpler (no chown, `/root`
//! stays reachable), but a capless uid-0 process may still signal every uid-0 process,
//! the grader included, and owns every root-owned file that some mount leaves
//! writable. A real uid removes both. A *shared* unprivileged uid such as 65534 was
//! rejected after measuring what it implies here: this kernel has no Yama, so processes
//! of one uid may `ptrace` each other, and a student could attach to another case's
//! server running in parallel and read or change it; they could also kill each other's
//! processes; and `RLIMIT_NPROC`, which `process.rs` sets per case, counts all processes
//! of the *real uid* machine-wide, so parallel cases (and anything else running as
//! `nobody`) would eat one another's process budget (`execve` even fails with `EAGAIN`
//! when the uid is over the limit at `setuid` time). Hence each case gets a uid of its
//! own from an unassigned range (`0x4000_0000 + pid << 8 + n`, gid the same), and
//! [`Confinement::prepare`] hands the work folder (a throw-away copy) to it with `lchown`
//! (never following a symlink the student left there). Such a uid has no name in
//! `/etc/passwd`: `pwd.getpwuid(os.getuid())` raises `KeyError` (set `USER`/`LOGNAME`
//! for `getpass.getuser()`).
//!
//! # Cost
//!
//! Measured by `cost_per_spawn` below on the development machine (2 cores, Linux 6.18,
//! 20 mounts, debug build): `apply_in_child` takes 0.15–0.2 ms per spawn (median; max
//! 0.3 ms); spawning and reaping `/bin/true` costs 0.4 ms more than without it (the
//! namespace's teardown at exit included; up to 1.1 ms on a busy machine). The chown in
//! `prepare` is one `lchown` per file of the submission.
//!
//! # For the rest of the grader
//!
//! An unprivileged uid cannot bind ports below 1024: where a spec's server port is one,
//! the case's network namespace needs `net.ipv4.ip_unprivileged_port_start = 0` (a
//! per-namespace sysctl). Two processes of one case each get their own private `/tmp`;
//! they share the work folder.
//!
//! # What it does not do
//!
//! No pid namespace: `/proc` (read-only) still lists every process and their command
//! lines, though other uids' environments and memory are not readable. Files outside
//! the temp folder and `/root` stay readable where their modes allow (the whole point
//! is that they are not writable). File descriptors inherited without `O_CLOEXEC` that
//! point outside would still work: the grader opens everything close-on-exec.

use std::collections::HashSet;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

// Kernel ABI (linux/mount.h, linux/fcntl.h, linux/securebits.h, linux/capability.h),
// spelled out so the module does not depend on how recent the libc crate is.
const AT_RECURSIVE: libc::c_uint = 0x8000;
const AT_EMPTY_PATH: libc::c_uint = 0x1000;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const PR_CAP_AMBIENT_CLEAR_ALL: libc::c_ulong = 4;

/// Clones kept open at once in the child (on its stack): the work folder and the trees
/// under `/root` that `PATH` needs.
const MAX_CLONES: usize = 16;

/// Scratch space of a case (`/tmp` and the like): small, and charged to the case's
/// memory cgroup like any other memory it uses.
const TMP_OPTIONS: &str = "mode=1777,size=64m,nr_inodes=16384";
/// The tmpfs hiding `/root`: mount points only.
const HOME_OPTIONS: &str = "mode=755,size=1m,nr_inodes=1024";
/// The grader's home, hidden but for what `PATH` needs from it.
const HOME: &str = "/root";

/// Case uids (and gids): `UID_BASE + (grader pid << 8) + n`, below 2^31, far from any
/// account or the usual container ranges.
const UID_BASE: u32 = 0x4000_0000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

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

/// A tree cloned before anything is covered, attached again later.
struct TreeClone {
    path: CString,
    writable: bool,
}

/// One step of the plan carried out in the child, in order.
enum Step {
    /// A fresh tmpfs.
    Tmpfs { path: CString, options: CString },
    /// A mount point inside a fresh tmpfs (`EEXIST` is fine).
    Mkdir(CString),
    /// Clone number `clone` attached at `path`.
    Attach { clone: usize, path: CString },
    /// That mount (alone, not what is mounted below it) made read-only.
    Seal(CString),
}

/// A case's confinement, planned before the fork.
pub struct Confinement {
    workdir: PathBuf,
    uid: u32,
    gid: u32,
    clones: Vec<TreeClone>,
    steps: Vec<Step>,
    workdir_c: CString,
    root_c: CString,
    empty_c: CString,
    tmpfs_c: CString,
    covered: Vec<PathBuf>,
    exposed: Vec<PathBuf>,
}

impl std::fmt::Debug for Confinement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confinement")
            .field("workdir", &self.workdir)
            .field("uid", &self.uid)
            .field("covered", &self.covered)
            .field("exposed", &self.exposed)
            .finish()
    }
}

impl Confinement {
    /// Prepares confinement for one case: `workdir` is the case's writable folder. Call
    /// it once the submission is copied in: the folder and everything in it are handed
    /// to the case's uid (files added later stay the grader's, readable if their modes
    /// say so). One per case, shared (`Arc`) by all the case's processes so that they
    /// run as one uid; each call allocates a new uid.
    pub fn prepare(workdir: &Path) -> io::Result<Confinement> {
        let workdir = workdir.canonicalize()?;
        if !workdir.is_dir() || workdir.parent().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a work folder", workdir.display()),
            ));
        }
        let (uid, gid) = next_case_ids();
        chown_tree(&workdir, uid, gid)?;

        // Folders covered by a fresh tmpfs; the home is sealed read-only once its mount
        // points are made.
        let mut covers: Vec<(PathBuf, &'static str, bool)> = Vec::new();
        let mut candidates: Vec<(PathBuf, &'static str, bool)> = ["/tmp", "/var/tmp", "/dev/shm"]
            .iter()
            .map(|p| (PathBuf::from(p), TMP_OPTIONS, false))
            .collect();
        candidates.push((std::env::temp_dir(), TMP_OPTIONS, false));
        // The work folder's own parent: its neighbours (other cases' copies) are never
        // visible, wherever the grader keeps them.
        if let Some(parent) = workdir.parent().filter(|p| p.parent().is_some()) {
            candidates.push((parent.to_path_buf(), TMP_OPTIONS, false));
        }
        candidates.push((PathBuf::from(HOME), HOME_OPTIONS, true));
        for (path, options, seal) in candidates {
            let Ok(path) = path.canonicalize() else {
                continue;
            };
            // Never cover the root, the work folder, or a folder inside it.
            if !path.is_dir() || path.parent().is_none() || path.starts_with(&workdir) {
                continue;
            }
            if !covers.iter().any(|(p, _, _)| *p == path) {
                covers.push((path, options, seal));
            }
        }
        covers.sort_by_key(|(p, _, _)| p.components().count());
        // The folders above it that stay as they are must let the case's uid through.
        for dir in workdir.ancestors().skip(1) {
            if covers.iter().any(|(c, _, _)| dir.starts_with(c)) {
                continue;
            }
            let mode = std::fs::metadata(dir)?.mode();
            if mode & 0o001 == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("the work folder {} is out of reach of an unprivileged user: {} has mode {:o}", workdir.display(), dir.display(), mode & 0o7777),
                ));
            }
        }

        // Trees that PATH needs from under a covered folder, attached again read-only.
        let exposed = path_trees(
            &covers.iter().map(|(p, _, _)| p.clone()).collect::<Vec<_>>(),
            &workdir,
        );

        let mut clones = vec![TreeClone {
            path: cstring(&workdir)?,
            writable: true,
        }];
        for tree in &exposed {
            clones.push(TreeClone {
                path: cstring(tree)?,
                writable: false,
            });
        }

        let mut steps = Vec::new();
        let mut made: HashSet<PathBuf> = HashSet::new();
        let cover_of = |path: &Path, strict: bool| -> Option<PathBuf> {
            covers
                .iter()
                .map(|(p, _, _)| p)
                .filter(|p| path.starts_with(p) && (!strict || *p != path))
                .max_by_key(|p| p.components().count())
                .cloned()
        };
        for (path, options, _) in &covers {
            if let Some(outer) = cover_of(path, true) {
                mount_points(&outer, path, &mut made, &mut steps)?;
            }
            steps.push(Step::Tmpfs {
                path: cstring(path)?,
                options: CString::new(*options).expect("no NUL"),
            });
        }
        let mut attaches: Vec<(usize, &Path)> = vec![(0, workdir.as_path())];
        attaches.extend(
            exposed
                .iter()
                .enumerate()
                .map(|(i, p)| (i + 1, p.as_path())),
        );
        attaches.sort_by_key(|(_, p)| p.components().count());
        for (clone, path) in attaches {
            // Outside every cover the mount point is still there, read-only.
            if let Some(outer) = cover_of(path, false) {
                mount_points(&outer, path, &mut made, &mut steps)?;
            }
            steps.push(Step::Attach {
                clone,
                path: cstring(path)?,
            });
        }
        for (path, _, seal) in &covers {
            if *seal {
                steps.push(Step::Seal(cstring(path)?));
            }
        }

        Ok(Confinement {
            workdir_c: cstring(&workdir)?,
            workdir,
            uid,
            gid,
            clones,
            steps,
            root_c: CString::new("/").expect("no NUL"),
            empty_c: CString::new("").expect("no NUL"),
            tmpfs_c: CString::new("tmpfs").expect("no NUL"),
            covered: covers.into_iter().map(|(p, _, _)| p).collect(),
            exposed,
        })
    }

    /// Whether this machine supports it (root, mount namespaces, the new mount API);
    /// checked once by a probe: a forked child confines itself to a scratch folder and
    /// writes a file there as the case uid.
    pub fn available() -> Result<(), String> {
        static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
        PROBE.get_or_init(probe).clone()
    }

    /// Runs in the child between fork and exec (async-signal-safe). Call it last in
    /// pre_exec (after setns/cgroup join, which need privileges).
    pub fn apply_in_child(&self) -> io::Result<()> {
        // SAFETY: raw system calls on C strings prepared before the fork and on buffers
        // of this stack frame; nothing allocates or takes a lock.
        unsafe {
            // The working folder std entered before us, entered again through the new
            // mounts at the end (the old entry would stay on the read-only copy).
            let mut cwd = [0 as libc::c_char; libc::PATH_MAX as usize];
            let have_cwd = !libc::getcwd(cwd.as_mut_ptr(), cwd.len()).is_null();

            self.new_mount_tree()?;

            if !have_cwd || libc::chdir(cwd.as_ptr()) < 0 {
                check(libc::chdir(self.workdir_c.as_ptr()))?;
            }
            self.drop_privileges()
        }
    }

    /// Steps 1 to 6 (the mounts) carried out in a short-lived thread of the grader, for
    /// a child of the fork server ([`super::warm`]) to enter with `setns(2)`: the
    /// namespace is returned as a descriptor. `unshare(CLONE_NEWNS)` in a thread changes
    /// that thread alone (it unshares its filesystem context too), and the thread ends
    /// right after, so the grader's own view never changes. The credentials (step 7)
    /// are the child's to drop.
    pub fn mount_namespace(self: &std::sync::Arc<Self>) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        let me = self.clone();
        std::thread::Builder::new()
            .name("sockgrade-mounts".into())
            .spawn(move || {
                // SAFETY: raw system calls on C strings prepared by `prepare`; this
                // thread's mount namespace and filesystem context are its own.
                unsafe {
                    me.new_mount_tree()?;
                    let fd = libc::open(
                        c"/proc/thread-self/ns/mnt".as_ptr(),
                        libc::O_RDONLY | libc::O_CLOEXEC,
                    );
                    check(fd)?;
                    Ok(std::os::fd::OwnedFd::from_raw_fd(fd))
                }
            })?
            .join()
            .map_err(|_| io::Error::other("the mount thread panicked"))?
    }

    /// A one-line description for reports, the same for every case of a run (no uid
    /// number, no temp path), e.g. "read-only filesystem except the work folder, private
    /// /tmp, /var/tmp and /dev/shm, /root hidden but for PATH, a uid of its own, no
    /// capabilities".
    pub fn describe(&self) -> String {
        let covered = |p: &str| self.covered.iter().any(|c| c.as_os_str() == p);
        let private: Vec<&str> = ["/tmp", "/var/tmp", "/dev/shm"]
            .into_iter()
            .filter(|p| covered(p))
            .collect();
        let mut s = String::from("read-only filesystem except the work folder");
        match private.split_last() {
            None => {}
            Some((last, [])) => s.push_str(&format!(", private {last}")),
            Some((last, rest)) => s.push_str(&format!(", private {} and {last}", rest.join(", "))),
        }
        if covered(HOME) {
            s.push_str(if self.exposed.is_empty() {
                ", /root hidden"
            } else {
                ", /root hidden but for PATH"
            });
        }
        s.push_str(", a uid of its own, no capabilities");
        s
    }

    /// The case's uid (its gid is the same number).
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The case's gid.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The work folder, as the child sees it (canonical).
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Steps 1 to 6 of the module doc: a mount namespace of the caller's own (a child
    /// process, or a thread of the grader) with the confined view built in it.
    unsafe fn new_mount_tree(&self) -> io::Result<()> {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            std::ptr::null(),
            self.root_c.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        let mut fds: [libc::c_int; MAX_CLONES] = [-1; MAX_CLONES];
        let built = self.build_tree(&mut fds);
        for fd in fds {
            if fd >= 0 {
                libc::close(fd);
            }
        }
        built
    }

    /// Steps 2 to 6 of the module doc. `fds` receives the clones, closed by the caller.
    unsafe fn build_tree(&self, fds: &mut [libc::c_int; MAX_CLONES]) -> io::Result<()> {
        for (i, clone) in self.clones.iter().enumerate() {
            let fd = libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                clone.path.as_ptr(),
                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            fds[i] = fd as libc::c_int;
            let attr = if clone.writable {
                MountAttr {
                    attr_set: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                    attr_clr: MOUNT_ATTR_RDONLY,
                    propagation: 0,
                    userns_fd: 0,
                }
            } else {
                MountAttr {
                    attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                    attr_clr: 0,
                    propagation: 0,
                    userns_fd: 0,
                }
            };
            mount_setattr(
                fds[i],
                self.empty_c.as_ptr(),
                AT_EMPTY_PATH | AT_RECURSIVE,
                &attr,
            )?;
        }
        let readonly = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        mount_setattr(
            libc::AT_FDCWD,
            self.root_c.as_ptr(),
            AT_RECURSIVE,
            &readonly,
        )?;
        for step in &self.steps {
            match step {
                Step::Tmpfs { path, options } => check(libc::mount(
                    self.tmpfs_c.as_ptr(),
                    path.as_ptr(),
                    self.tmpfs_c.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    options.as_ptr().cast(),
                ))?,
                Step::Mkdir(path) => {
                    if libc::mkdir(path.as_ptr(), 0o755) < 0
                        && *libc::__errno_location() != libc::EEXIST
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
                Step::Attach { clone, path } => {
                    let r = libc::syscall(
                        libc::SYS_move_mount,
                        fds[*clone],
                        self.empty_c.as_ptr(),
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    );
                    if r < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Step::Seal(path) => mount_setattr(libc::AT_FDCWD, path.as_ptr(), 0, &readonly)?,
            }
        }
        Ok(())
    }

    /// Step 7 of the module doc.
    unsafe fn drop_privileges(&self) -> io::Result<()> {
        let mut pdeath: libc::c_int = 0;
        libc::prctl(libc::PR_GET_PDEATHSIG, &mut pdeath as *mut libc::c_int);
        // Root is never special again, and the change of uid below must drop every
        // capability (no KEEP_CAPS, no opting out of the fixup, no ambient raise).
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
        // Raw calls: they change only this (the only) thread, without glibc's machinery
        // for broadcasting to threads that no longer exist after the fork.
        check_long(libc::syscall(
            libc::SYS_setgroups,
            0 as libc::size_t,
            std::ptr::null::<libc::gid_t>(),
        ))?;
        check_long(libc::syscall(
            libc::SYS_setresgid,
            self.gid,
            self.gid,
            self.gid,
        ))?;
        check_long(libc::syscall(
            libc::SYS_setresuid,
            self.uid,
            self.uid,
            self.uid,
        ))?;
        // The change of uid emptied effective and permitted; empty inheritable too.
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
        ))?;
        check(libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0,
            0,
            0,
        ))?;
        // A change of credentials clears the parent-death signal: arm it again.
        if pdeath != 0 {
            check(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                pdeath as libc::c_ulong,
                0,
                0,
                0,
            ))?;
        }
        Ok(())
    }
}

/// The next case's uid and gid.
fn next_case_ids() -> (u32, u32) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xff;
    let id = UID_BASE + ((std::process::id() & 0x3f_ffff) << 8) + n;
    (id, id)
}

/// Hands `dir` and everything in it to `uid`, never following a symlink.
fn chown_tree(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            chown_tree(&path, uid, gid)?;
        } else {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// The trees the student's `PATH` (the grader's) needs from under `covers`: each entry
/// found there, the pyenv root instead of its `shims` (a shim runs `$PYENV_ROOT/libexec`
/// and `versions/`), and `PYENV_ROOT` itself; nested ones folded into their outermost.
fn path_trees(covers: &[PathBuf], workdir: &Path) -> Vec<PathBuf> {
    let mut wanted: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for entry in std::env::split_paths(&path) {
            let entry = if entry.file_name().is_some_and(|n| n == "shims") {
                entry.parent().map(Path::to_path_buf).unwrap_or(entry)
            } else {
                entry
            };
            wanted.push(entry);
        }
    }
    if let Some(root) = std::env::var_os("PYENV_ROOT") {
        wanted.push(PathBuf::from(root));
    }
    let mut trees: Vec<PathBuf> = wanted
        .into_iter()
        .filter(|p| p.is_absolute())
        .filter_map(|p| p.canonicalize().ok())
        .filter(|p| p.is_dir())
        .filter(|p| covers.iter().any(|c| p.starts_with(c) && p != c))
        // Already visible (inside the work folder), or would expose it.
        .filter(|p| !p.starts_with(workdir) && !workdir.starts_with(p))
        .collect();
    trees.sort();
    trees.dedup();
    let outermost: Vec<PathBuf> = trees
        .iter()
        .filter(|p| !trees.iter().any(|q| q != *p && p.starts_with(q)))
        .cloned()
        .collect();
    outermost.into_iter().take(MAX_CLONES - 1).collect()
}

/// Mount points from `outer` (a fresh tmpfs, exclusive) down to `path` (inclusive).
fn mount_points(
    outer: &Path,
    path: &Path,
    made: &mut HashSet<PathBuf>,
    steps: &mut Vec<Step>,
) -> io::Result<()> {
    let Ok(rest) = path.strip_prefix(outer) else {
        return Ok(());
    };
    let mut at = outer.to_path_buf();
    for part in rest.components() {
        at.push(part);
        if made.insert(at.clone()) {
            steps.push(Step::Mkdir(cstring(&at)?));
        }
    }
    Ok(())
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} contains a NUL byte", path.display()),
        )
    })
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn check_long(r: libc::c_long) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

unsafe fn mount_setattr(
    dirfd: libc::c_int,
    path: *const libc::c_char,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> io::Result<()> {
    check_long(libc::syscall(
        libc::SYS_mount_setattr,
        dirfd,
        path,
        flags,
        attr as *const MountAttr,
        std::mem::size_of::<MountAttr>(),
    ))
}

/// Exit codes of the probe's child besides an errno.
const PROBE_CANNOT_WRITE: i32 = 250;

fn probe() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root (a mount namespace per case, and a uid to drop to)".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("sockgrade-probe-")
        .tempdir()
        .map_err(|e| format!("cannot make a scratch folder: {e}"))?;
    let conf = Confinement::prepare(dir.path()).map_err(|e| format!("cannot prepare: {e}"))?;
    let file = cstring(&conf.workdir().join("probe")).map_err(|e| e.to_string())?;
    // SAFETY: the child runs only async-signal-safe code (apply_in_child, open, _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: in the child of fork; leaves only by _exit.
        unsafe {
            let code = match conf.apply_in_child() {
                Err(e) => e.raw_os_error().unwrap_or(1).clamp(1, 249),
                Ok(()) => {
                    let fd = libc::open(
                        file.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o600,
                    );
                    if fd < 0 {
                        PROBE_CANNOT_WRITE
                    } else {
                        0
                    }
                }
            };
            libc::_exit(code);
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(format!("waitpid: {}", io::Error::last_os_error()));
        }
    }
    if !libc::WIFEXITED(status) {
        return Err("the probe was killed".into());
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        PROBE_CANNOT_WRITE => Err("a confined process cannot write to its work folder".into()),
        errno => Err(format!(
            "cannot confine a process: {}",
            io::Error::from_raw_os_error(errno)
        )),
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    // pre_exec closures must be Send + Sync + 'static.
    fn is<T: Send + Sync + 'static>() {}
    is::<Confinement>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Output, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Root and a working probe, or a printed reason to skip.
    fn can_run() -> bool {
        if let Err(why) = Confinement::available() {
            eprintln!("skipped: confinement unavailable here: {why}");
            return false;
        }
        true
    }

    /// A command set up as process.rs sets up a student's: its own session, the
    /// parent-death signal, no_new_privs, then the confinement last.
    fn confined(conf: &Arc<Confinement>, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(conf.workdir())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", conf.workdir())
            .env("PYTHONDONTWRITEBYTECODE", "1");
        if let Ok(root) = std::env::var("PYENV_ROOT") {
            cmd.env("PYENV_ROOT", root);
        }
        let conf = Arc::clone(conf);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                conf.apply_in_child()
            });
        }
        cmd
    }

    fn python(conf: &Arc<Confinement>, code: &str, args: &[&str]) -> Output {
        let out = confined(conf, "python3")
            .arg("-c")
            .arg(code)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("python3 starts");
        eprintln!(
            "stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn case_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("sockgrade-")
            .tempdir()
            .unwrap()
    }

    #[test]
    fn plan_without_root() {
        let dir = case_dir();
        // chown needs root; without it prepare fails, which is the honest answer.
        let Ok(conf) = Confinement::prepare(dir.path()) else {
            eprintln!("skipped: prepare needs root");
            return;
        };
        let d = conf.describe();
        assert!(
            d.starts_with("read-only filesystem except the work folder, private /tmp"),
            "{d}"
        );
        assert!(d.ends_with(", a uid of its own, no capabilities"), "{d}");
        let other = Confinement::prepare(dir.path()).unwrap();
        assert_ne!(conf.uid(), other.uid(), "each case has a uid of its own");
        assert!(conf.uid() >= UID_BASE && conf.uid() < 0x8000_0000);
        eprintln!("{d}");
    }

    #[test]
    fn prepare_hands_the_folder_over_without_following_symlinks() {
        if !can_run() {
            return;
        }
        let outside = tempfile::NamedTempFile::new().unwrap();
        let dir = case_dir();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.py"), "print(1)\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let conf = Confinement::prepare(dir.path()).unwrap();
        for p in ["", "sub", "sub/a.py"] {
            assert_eq!(
                std::fs::metadata(dir.path().join(p)).unwrap().uid(),
                conf.uid(),
                "{p}"
            );
        }
        assert_eq!(
            std::fs::symlink_metadata(dir.path().join("link"))
                .unwrap()
                .uid(),
            conf.uid()
        );
        assert_eq!(
            std::fs::metadata(outside.path()).unwrap().uid(),
            0,
            "the symlink's target is not touched"
        );
    }

    #[test]
    fn python_starts_and_uses_its_work_folder() {
        if !can_run() {
            return;
        }
        let dir = case_dir();
        std::fs::write(dir.path().join("input.txt"), "hello").unwrap();
        let conf = Arc::new(Confinement::prepare(dir.path()).unwrap());
        let code = r#"
import os, tempfile
assert os.getcwd() == os.environ["HOME"], os.getcwd()
data = open("input.txt").read()
open("output.txt", "w").write(data.upper())
os.mkdir("made")
open("made/x.txt", "w").write("x")
os.remove("input.txt")
# scratch space works, and a multiprocessing lock needs /dev/shm
with tempfile.TemporaryFile() as f: f.write(b"scratch")
import multiprocessing; multiprocessing.Lock()
print("ok")
"#;
        let out = python(&conf, code, &[]);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("output.txt")).unwrap(),
            "HELLO"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made/x.txt")).unwrap(),
            "x"
        );
        assert_eq!(
            std::fs::metadata(dir.path().join("output.txt"))
                .unwrap()
                .uid(),
            conf.uid()
        );
        assert!(!dir.path().join("input.txt").exists());
    }

    /// Tries to write each path (overwriting it if it is there); prints one line per
    /// path: "ok" or the errno name.
    const WRITE_ALL: &str = r#"
import sys, errno
for p in sys.argv[1:]:
    try:
        with open(p, "r+b" if __import__("os").path.exists(p) else "wb") as f:
            f.seek(0); f.write(b"PWNED")
        print(p, "ok")
    except OSError as e:
        print(p, errno.errorcode.get(e.errno, e.errno))
"#;

    fn results(out: &Output) -> Vec<(String, String)> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.rsplit_once(' ')
                    .map(|(p, r)| (p.to_string(), r.to_string()))
            })
            .collect()
    }

    #[test]
    fn writes_outside_the_work_folder_fail_or_vanish() {
        if !can_run() {
            return;
        }
        let dir = case_dir();
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // Another student's copy, next to this one in the temp folder.
        let sibling = case_dir();
        let sibling_file = sibling.path().join("server.py");
        std::fs::write(&sibling_file, "print('theirs')\n").unwrap();
        // A file of the grader's in its (hidden) home.
        let home_file = PathBuf::from(format!("/root/.sockgrade-confine-test-{name}"));
        std::fs::write(&home_file, "grader's\n").unwrap();
        let conf = Arc::new(Confinement::prepare(dir.path()).unwrap());
        let outside = format!("../{name}-outside.txt");
        let tmp_x = format!("/tmp/{name}-x");
        let root_x = format!("/root/{name}-x");
        let sibling_s = sibling_file.display().to_string();
        let home_s = home_file.display().to_string();
        let shm_x = format!("/dev/shm/{name}-x");
        let out = python(
            &conf,
            WRITE_ALL,
            &[
                &outside,
                &tmp_x,
                &root_x,
                &sibling_s,
                &home_s,
                "/etc/hostname",
                &shm_x,
            ],
        );
        let home_after = std::fs::read(&home_file);
        let _ = std::fs::remove_file(&home_file);
        assert!(out.status.success());
        let r = results(&out);
        assert_eq!(r.len(), 7, "{r:?}");
        // Writes to the private temp folders succeed, in a tmpfs of the case.
        assert_eq!(r[0].1, "ok");
        assert_eq!(r[1].1, "ok");
        assert!(!std::env::temp_dir()
            .join(format!("{name}-outside.txt"))
            .exists());
        assert!(!Path::new(&tmp_x).exists());
        // Others fail.
        assert_eq!(r[2].1, "EROFS", "{r:?}");
        assert_eq!(r[3].1, "ENOENT", "the other copy is not there: {r:?}");
        // The grader's home is hidden (its file is not there) and read-only.
        assert_eq!(r[4].1, "EROFS", "{r:?}");
        assert_eq!(home_after.unwrap(), b"grader's\n");
        assert!(r[5].1 == "EROFS" || r[5].1 == "EACCES", "{r:?}");
        assert_eq!(r[6].1, "ok");
        assert!(!Path::new(&root_x).exists());
        assert_eq!(std::fs::read(&sibling_file).unwrap(), b"print('theirs')\n");
        assert!(!Path::new(&shm_x).exists());
    }

    /// A folder outside every place the confinement covers (/tmp, /var/tmp, /dev/shm,
    /// /root): the crate's target folder, unless the checkout itself lives in one of them
    /// (CI may clone into /tmp), then a folder of /var/lib (these tests run as root).
    fn elsewhere() -> PathBuf {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/confine-tests");
        let covered = ["/tmp", "/var/tmp", "/dev/shm", "/root"]
            .iter()
            .any(|c| target.starts_with(c));
        if covered {
            PathBuf::from("/var/lib/sockgrade-tests/confine")
        } else {
            target
        }
    }

    #[test]
    fn elsewhere_the_neighbours_are_hidden_and_the_rest_read_only() {
        if !can_run() {
            return;
        }
        // A work folder outside the temp folder: base/<parent>/case.
        let base = elsewhere();
        std::fs::create_dir_all(&base).unwrap();
        let parent = tempfile::tempdir_in(&base).unwrap();
        let unique = parent
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let work = parent.path().join("case");
        std::fs::create_dir(&work).unwrap();
        let neighbour = parent.path().join("neighbour.txt");
        std::fs::write(&neighbour, "untouched").unwrap();
        // World-writable: only the read-only mount stands in the way.
        let open_file = base.join(format!("{unique}-open.txt"));
        std::fs::write(&open_file, "untouched").unwrap();
        std::fs::set_permissions(
            &open_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o666),
        )
        .unwrap();
        let conf = Arc::new(Confinement::prepare(&work).unwrap());
        let up = format!("../../{unique}-outside.txt");
        let open_rel = format!("../../{unique}-open.txt");
        let out = python(
            &conf,
            WRITE_ALL,
            &["../neighbour.txt", &up, &open_rel, "inside.txt"],
        );
        let open_after = std::fs::read(&open_file);
        let _ = std::fs::remove_file(&open_file);
        assert!(out.status.success());
        let r = results(&out);
        // The neighbour is not there (the parent is a fresh tmpfs: the write lands there).
        assert_eq!(
            r.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
            ["ok", "EROFS", "EROFS", "ok"],
            "{r:?}"
        );
        assert_eq!(std::fs::read(&neighbour).unwrap(), b"untouched");
        assert!(!base.join(format!("{unique}-outside.txt")).exists());
        assert_eq!(open_after.unwrap(), b"untouched");
        assert_eq!(std::fs::read(work.join("inside.txt")).unwrap(), b"PWNED");
    }

    #[test]
    fn an_unreachable_work_folder_is_refused() {
        if !can_run() {
            return;
        }
        let base = elsewhere();
        std::fs::create_dir_all(&base).unwrap();
        let locked = tempfile::tempdir_in(&base).unwrap();
        std::fs::set_permissions(
            locked.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let work = locked.path().join("parent/case");
        std::fs::create_dir_all(&work).unwrap();
        let err = Confinement::prepare(&work).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("has mode 700"), "{err}");
    }

    #[test]
    fn no_privileges_left() {
        if !can_run() {
            return;
        }
        let dir = case_dir();
        let conf = Arc::new(Confinement::prepare(dir.path()).unwrap());
        let code = r#"
import os, signal, ctypes
status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
for k in ["Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"]:
    print(k, " ".join(status[k].split()) or "-")
sig = ctypes.c_int(-1)
ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(sig))  # PR_GET_PDEATHSIG
print("PdeathSig", sig.value)
for s in (0, signal.SIGTERM):
    try:
        os.kill(os.getppid(), s)
        print("Kill", s, "allowed")
    except PermissionError:
        print("Kill", int(s), "EPERM")
"#;
        let out = python(&conf, code, &[]);
        assert!(out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let get = |k: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        let id = conf.uid();
        assert_eq!(get("Uid"), format!("{id} {id} {id} {id}"));
        assert_eq!(get("Gid"), format!("{id} {id} {id} {id}"));
        assert_eq!(get("Groups"), "-");
        for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(get(k), "0000000000000000", "{k}");
        }
        assert_eq!(get("NoNewPrivs"), "1");
        assert_eq!(
            get("PdeathSig"),
            libc::SIGKILL.to_string(),
            "re-armed after the change of uid"
        );
        assert_eq!(get("Kill 0"), "EPERM");
        assert_eq!(get(&format!("Kill {}", libc::SIGTERM)), "EPERM");
    }

    #[test]
    fn cost_per_spawn() {
        if !can_run() {
            return;
        }
        const RUNS: usize = 40;
        let dir = case_dir();
        let conf = Arc::new(Confinement::prepare(dir.path()).unwrap());
        let mut fds = [0; 2];
        // SAFETY: a pipe of our own; the children write to it before exec.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let (rd, wr) = (fds[0], fds[1]);
        let mut in_child = Vec::new();
        let mut confined_total = Vec::new();
        let mut plain_total = Vec::new();
        for _ in 0..RUNS {
            let mut cmd = Command::new("/bin/true");
            cmd.current_dir(dir.path());
            let c = Arc::clone(&conf);
            // SAFETY: clock_gettime and write are async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let now = || {
                        let mut ts: libc::timespec = std::mem::zeroed();
                        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
                        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
                    };
                    let t0 = now();
                    c.apply_in_child()?;
                    let ns = now() - t0;
                    libc::write(wr, (&ns as *const u64).cast(), 8);
                    Ok(())
                });
            }
            let t = Instant::now();
            assert!(cmd.status().unwrap().success());
            confined_total.push(t.elapsed());
            let mut ns = 0u64;
            // SAFETY: reads the 8 bytes the child wrote before exec.
            assert_eq!(
                unsafe { libc::read(rd, (&mut ns as *mut u64).cast(), 8) },
                8
            );
            in_child.push(Duration::from_nanos(ns));

            let t = Instant::now();
            assert!(Command::new("/bin/true")
                .current_dir(dir.path())
                .status()
                .unwrap()
                .success());
            plain_total.push(t.elapsed());
        }
        // SAFETY: our own descriptors.
        unsafe {
            libc::close(rd);
            libc::close(wr);
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let apply = median(&mut in_child);
        let (with, without) = (median(&mut confined_total), median(&mut plain_total));
        eprintln!(
            "apply_in_child: median {:?}, max {:?}; spawn+wait of /bin/true: {:?} confined, {:?} plain (+{:?})",
            apply,
            in_child.last().unwrap(),
            with,
            without,
            with.saturating_sub(without)
        );
        // The target is < 2 ms; a loaded CI machine gets slack.
        assert!(apply < Duration::from_millis(20), "{apply:?}");
    }
}
