//! The filesystem a case sees: a minimal root built for it alone, so that nothing of the
//! machine is there to be read but what running a program needs.
//!
//! # What is in it
//!
//! | path | what | why |
//! |---|---|---|
//! | `/usr`, and `/bin`, `/sbin`, `/lib*` (symlinks as on the host, or read-only binds) | read-only | interpreters, compilers (`gcc`, `java`), their libraries, `bash` for pyenv shims |
//! | `/etc/…` (an allowlist: `ld.so.cache`, `hosts`, `passwd`, `localtime`, `alternatives`, `python*`, `java*`, `ssl`, …) | read-only | the dynamic loader, name lookups of `localhost`, Java's configuration |
//! | the interpreter's prefix and the `PATH` trees outside `/usr` (a pyenv root) | read-only | the interpreter itself |
//! | `/dev/{null,zero,full,random,urandom}`, `/dev/fd`, `/dev/std*` | devices | what programs open |
//! | `/tmp`, `/var/tmp`, `/dev/shm` | small fresh tmpfs | scratch space and `multiprocessing` locks, gone with the case |
//! | the work folder, at its own path | read-write | the submission's copy |
//! | `/proc` | a fresh procfs of the case's PID namespace | only the case's own processes, not the grader's command line |
//!
//! Nothing else exists: not the class folder, the spec, a reference solution, `--out`,
//! `/run` (host unix sockets such as Docker's or D-Bus'), `/home`, `/root` (but for the
//! `PATH` trees), `/autograder/source`, `/sys`, other cases' copies. The root itself and
//! `/dev` are read-only tmpfs, so nothing can be created next to what is there.
//!
//! # How
//!
//! [`RootPlan::new`] plans it before any fork (paths as C strings, steps in order);
//! [`RootPlan::build`] carries it out in the case's init process ([`super::caseinit`])
//! with raw system calls only (no allocation: it runs in a fork of the threaded grader):
//! detached clones of every source (`open_tree(OPEN_TREE_CLONE)`, made read-only, nosuid
//! and nodev), a tmpfs staged over the work folder's own path (the namespace is private:
//! the host never sees it), the clones attached inside it, `/proc` mounted, the root
//! sealed read-only, then `pivot_root` into it and the old root detached.

use std::collections::HashSet;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

// Kernel ABI (linux/mount.h, linux/fcntl.h), spelled out so the module does not depend on
// how recent the libc crate is.
const AT_RECURSIVE: libc::c_uint = 0x8000;
const AT_EMPTY_PATH: libc::c_uint = 0x1000;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// Clones kept open at once in the init process (on its stack).
pub(crate) const MAX_CLONES: usize = 96;

/// Scratch space of a case (`/tmp` and the like): small, and charged to the case's
/// memory cgroup like any other memory it uses.
const TMP_OPTIONS: &str = "mode=1777,size=64m,nr_inodes=16384";
/// The root and `/dev`: mount points only.
const ROOT_OPTIONS: &str = "mode=755,size=1m,nr_inodes=4096";

/// Top-level entries of the host kept as they are (a symlink stays a symlink, as with a
/// merged `/usr`; a folder is bound read-only).
const SYSTEM: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Entries of `/etc` a program may need; the rest of `/etc` (machine configuration,
/// credentials of services) is not there. Names, or prefixes ending in `*`.
const ETC: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "hosts",
    "host.conf",
    "nsswitch.conf",
    "gai.conf",
    "resolv.conf",
    "protocols",
    "services",
    "passwd",
    "group",
    "os-release",
    "debian_version",
    "lsb-release",
    "locale.alias",
    "locale.conf",
    "mime.types",
    "alternatives",
    "ssl",
    "python*",
    "java*",
];

/// Device nodes of the host bound into the case's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

/// Files of `/proc` that tell about the whole machine's tasks (names and pids of every
/// process, in the scheduler's and timers' debug views) or the kernel: covered with
/// `/dev/null`, as container runtimes do.
const PROC_MASKS: &[&str] = &[
    "kcore",
    "keys",
    "timer_list",
    "sched_debug",
    "latency_stats",
    "timer_stats",
    "sysrq-trigger",
];

/// Where a clone comes from and how it is attached.
struct Source {
    path: CString,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Read-only, nosuid, nodev.
    ReadOnly,
    /// The work folder: writable, nosuid, nodev.
    Writable,
    /// A device node: read-only, nosuid, noexec (device access allowed).
    Device,
}

/// One step, in order; every path is the staged one (below the work folder's path).
enum Step {
    Mkdir(CString),
    /// An empty file, as a mount point for a file.
    File(CString),
    Symlink {
        target: CString,
        path: CString,
    },
    Tmpfs {
        path: CString,
        options: CString,
    },
    /// Clone number `clone` attached at `path`.
    Attach {
        clone: usize,
        path: CString,
    },
    /// A fresh procfs: the PID namespace of the process that mounts it.
    Proc(CString),
    /// `/dev/null` bound over `path`, if `path` exists.
    Mask(CString),
    /// That mount (alone) made read-only.
    Seal(CString),
}

/// A case's root, planned before the fork.
pub(crate) struct RootPlan {
    stage: CString,
    sources: Vec<Source>,
    steps: Vec<Step>,
    dev_null: CString,
    root_options: CString,
    /// The trees outside the system folders that the case sees.
    exposed: Vec<PathBuf>,
}

impl std::fmt::Debug for RootPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootPlan")
            .field("stage", &self.stage)
            .field("exposed", &self.exposed)
            .finish()
    }
}

/// Builds the plan: tracks what is made where.
struct Planner {
    stage: PathBuf,
    sources: Vec<Source>,
    steps: Vec<Step>,
    /// Folders made (or mounted on) in the new root, as paths of the new root.
    made: HashSet<PathBuf>,
    /// Paths of the new root where a read-only tree is attached: nothing goes below them.
    bound: Vec<PathBuf>,
}

impl Planner {
    fn staged(&self, path: &Path) -> io::Result<CString> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        cstring(&self.stage.join(rel))
    }

    /// Whether `path` lies in (or is) an attached tree.
    fn inside_bound(&self, path: &Path) -> bool {
        self.bound.iter().any(|b| path.starts_with(b))
    }

    /// Folders from the root down to `path` (inclusive).
    fn mkdirs(&mut self, path: &Path) -> io::Result<()> {
        let mut at = PathBuf::from("/");
        for part in path.components().skip(1) {
            at.push(part);
            if self.made.insert(at.clone()) {
                let staged = self.staged(&at)?;
                self.steps.push(Step::Mkdir(staged));
            }
        }
        Ok(())
    }

    fn attach(&mut self, source: &Path, at: &Path, kind: Kind, file: bool) -> io::Result<()> {
        if let Some(parent) = at.parent() {
            self.mkdirs(parent)?;
        }
        let staged = self.staged(at)?;
        if file {
            self.steps.push(Step::File(staged.clone()));
        } else if self.made.insert(at.to_path_buf()) {
            self.steps.push(Step::Mkdir(staged.clone()));
        }
        self.sources.push(Source {
            path: cstring(source)?,
            kind,
        });
        self.steps.push(Step::Attach {
            clone: self.sources.len() - 1,
            path: staged,
        });
        if kind != Kind::Writable {
            self.bound.push(at.to_path_buf());
        }
        Ok(())
    }

    fn symlink(&mut self, target: &Path, at: &Path) -> io::Result<()> {
        let path = self.staged(at)?;
        self.steps.push(Step::Symlink {
            target: cstring(target)?,
            path,
        });
        Ok(())
    }

    fn tmpfs(&mut self, at: &Path, options: &str) -> io::Result<()> {
        self.mkdirs(at)?;
        let path = self.staged(at)?;
        self.steps.push(Step::Tmpfs {
            path,
            options: CString::new(options).expect("no NUL"),
        });
        Ok(())
    }

    /// A host entry kept as it is: a symlink copied, a folder or file bound read-only.
    fn keep(&mut self, host: &Path) -> io::Result<()> {
        let Ok(meta) = std::fs::symlink_metadata(host) else {
            return Ok(());
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(host)?;
            if let Some(parent) = host.parent() {
                self.mkdirs(parent)?;
            }
            self.symlink(&target, host)
        } else if meta.is_dir() {
            self.attach(host, host, Kind::ReadOnly, false)
        } else if meta.is_file() {
            self.attach(host, host, Kind::ReadOnly, true)
        } else {
            Ok(())
        }
    }
}

impl RootPlan {
    /// Plans the root of a case whose work folder is `workdir` (canonical), with the
    /// read-only `trees` (interpreter prefixes, `PATH` entries) outside the system ones.
    pub(crate) fn new(workdir: &Path, trees: &[PathBuf]) -> io::Result<RootPlan> {
        let mut p = Planner {
            stage: workdir.to_path_buf(),
            sources: Vec::new(),
            steps: Vec::new(),
            made: HashSet::from([PathBuf::from("/")]),
            bound: Vec::new(),
        };
        for name in SYSTEM {
            p.keep(&Path::new("/").join(name))?;
        }
        p.mkdirs(Path::new("/etc"))?;
        let mut etc: Vec<PathBuf> = std::fs::read_dir("/etc")?
            .flatten()
            .filter(|e| etc_wanted(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        etc.sort();
        for entry in etc {
            p.keep(&entry)?;
        }

        p.tmpfs(Path::new("/dev"), ROOT_OPTIONS)?;
        for dev in DEVICES {
            let host = Path::new("/dev").join(dev);
            if std::fs::metadata(&host).is_ok() {
                p.attach(&host, &host, Kind::Device, true)?;
            }
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            p.symlink(Path::new(target), &Path::new("/dev").join(name))?;
        }
        p.tmpfs(Path::new("/dev/shm"), TMP_OPTIONS)?;
        p.tmpfs(Path::new("/tmp"), TMP_OPTIONS)?;
        p.tmpfs(Path::new("/var/tmp"), TMP_OPTIONS)?;

        // The work folder at its own path, so the paths the grader gives (the file, the
        // working folder, HOME) are the same inside. Not inside a read-only tree.
        if p.inside_bound(workdir) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the work folder {} is inside a system folder",
                    workdir.display()
                ),
            ));
        }
        p.attach(workdir, workdir, Kind::Writable, false)?;

        // Outermost first, nothing already there, nothing that holds the work folder.
        let mut wanted: Vec<PathBuf> = trees
            .iter()
            .filter_map(|t| t.canonicalize().ok())
            .filter(|t| t.is_dir() && t.parent().is_some())
            .filter(|t| !t.starts_with(workdir) && !workdir.starts_with(t))
            .collect();
        wanted.sort();
        wanted.dedup();
        let outermost: Vec<PathBuf> = wanted
            .iter()
            .filter(|t| !wanted.iter().any(|o| o != *t && t.starts_with(o)))
            .cloned()
            .collect();
        let mut exposed = Vec::new();
        for tree in outermost {
            // Already there (below /usr), or below a link of the host's (/bin).
            if p.inside_bound(&tree) || p.made.contains(&tree) {
                continue;
            }
            if p.sources.len() >= MAX_CLONES {
                break;
            }
            p.attach(&tree, &tree, Kind::ReadOnly, false)?;
            exposed.push(tree);
        }

        p.mkdirs(Path::new("/proc"))?;
        let proc_path = p.staged(Path::new("/proc"))?;
        p.steps.push(Step::Proc(proc_path));
        for name in PROC_MASKS {
            let path = p.staged(&Path::new("/proc").join(name))?;
            p.steps.push(Step::Mask(path));
        }
        let dev = p.staged(Path::new("/dev"))?;
        p.steps.push(Step::Seal(dev));
        p.steps.push(Step::Seal(cstring(workdir)?));
        if p.sources.len() > MAX_CLONES {
            return Err(io::Error::other(format!(
                "a case's root would need {} mounts (at most {MAX_CLONES})",
                p.sources.len()
            )));
        }
        Ok(RootPlan {
            dev_null: p.staged(Path::new("/dev/null"))?,
            root_options: CString::new(ROOT_OPTIONS).expect("no NUL"),
            stage: cstring(workdir)?,
            sources: p.sources,
            steps: p.steps,
            exposed,
        })
    }

    /// The trees outside the system folders that the case sees (read-only).
    pub(crate) fn exposed(&self) -> &[PathBuf] {
        &self.exposed
    }

    /// Builds the root and enters it with `pivot_root`. Only in a process of its own in a
    /// private mount namespace (the case's init); async-signal-safe. On error, the index
    /// of the failing step comes with the error (for the message).
    ///
    /// # Safety
    /// Only in a fork of the grader that owns its mount namespace (it replaces its root).
    pub(crate) unsafe fn build(&self) -> Result<(), (usize, io::Error)> {
        let root = c"/";
        let err = |step: usize| (step, io::Error::last_os_error());
        // Nothing done here propagates back to the grader's mounts.
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) < 0
        {
            return Err(err(0));
        }
        let mut fds: [libc::c_int; MAX_CLONES] = [-1; MAX_CLONES];
        let built = self.stage_and_enter(&mut fds);
        for fd in fds {
            if fd >= 0 {
                libc::close(fd);
            }
        }
        built
    }

    unsafe fn stage_and_enter(
        &self,
        fds: &mut [libc::c_int; MAX_CLONES],
    ) -> Result<(), (usize, io::Error)> {
        let err = |step: usize| (step, io::Error::last_os_error());
        let empty = c"";
        // 1. Detached clones of every source, taken before the stage covers anything.
        for (i, source) in self.sources.iter().enumerate() {
            let fd = libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                source.path.as_ptr(),
                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
            );
            if fd < 0 {
                return Err(err(1000 + i));
            }
            fds[i] = fd as libc::c_int;
            let (set, clear) = match source.kind {
                Kind::ReadOnly => (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0),
                Kind::Writable => (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, MOUNT_ATTR_RDONLY),
                Kind::Device => (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0),
            };
            if mount_setattr(
                fds[i],
                empty.as_ptr(),
                AT_EMPTY_PATH | AT_RECURSIVE,
                set,
                clear,
            ) < 0
            {
                return Err(err(1000 + i));
            }
        }
        // 2. The stage: a tmpfs over the work folder's path (only in this namespace).
        let tmpfs = c"tmpfs";
        if libc::mount(
            tmpfs.as_ptr(),
            self.stage.as_ptr(),
            tmpfs.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            self.root_options.as_ptr().cast(),
        ) < 0
        {
            return Err(err(1));
        }
        // 3. Its contents.
        for (i, step) in self.steps.iter().enumerate() {
            let at = 2 + i;
            let ok = match step {
                Step::Mkdir(path) => {
                    libc::mkdir(path.as_ptr(), 0o755) == 0
                        || *libc::__errno_location() == libc::EEXIST
                }
                Step::File(path) => {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o444,
                    );
                    if fd >= 0 {
                        libc::close(fd);
                    }
                    fd >= 0
                }
                Step::Symlink { target, path } => {
                    libc::symlink(target.as_ptr(), path.as_ptr()) == 0
                        || *libc::__errno_location() == libc::EEXIST
                }
                Step::Tmpfs { path, options } => {
                    libc::mount(
                        tmpfs.as_ptr(),
                        path.as_ptr(),
                        tmpfs.as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        options.as_ptr().cast(),
                    ) == 0
                }
                Step::Attach { clone, path } => {
                    libc::syscall(
                        libc::SYS_move_mount,
                        fds[*clone],
                        empty.as_ptr(),
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    ) == 0
                }
                Step::Proc(path) => {
                    let proc_ = c"proc";
                    libc::mount(
                        proc_.as_ptr(),
                        path.as_ptr(),
                        proc_.as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        std::ptr::null(),
                    ) == 0
                }
                Step::Mask(path) => {
                    libc::mount(
                        self.dev_null.as_ptr(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ) == 0
                        || *libc::__errno_location() == libc::ENOENT
                }
                Step::Seal(path) => {
                    mount_setattr(libc::AT_FDCWD, path.as_ptr(), 0, MOUNT_ATTR_RDONLY, 0) == 0
                }
            };
            if !ok {
                return Err(err(at));
            }
        }
        // 4. In, and the old root gone: `pivot_root(".", ".")` stacks the old root on
        // the new one, and the lazy unmount takes it (and every mount under it) away.
        let dot = c".";
        let at = 2 + self.steps.len();
        if libc::chdir(self.stage.as_ptr()) < 0
            || libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) < 0
            || libc::umount2(dot.as_ptr(), libc::MNT_DETACH) < 0
            || libc::chdir(c"/".as_ptr()) < 0
        {
            return Err(err(at));
        }
        Ok(())
    }

    /// What step `n` of [`RootPlan::build`] did, for an error message.
    pub(crate) fn describe_step(&self, n: usize) -> String {
        let show = |c: &CString| c.to_string_lossy().into_owned();
        match n {
            0 => "make the mounts private".into(),
            1 => format!("mount the stage at {}", show(&self.stage)),
            n if n >= 1000 => match self.sources.get(n - 1000) {
                Some(s) => format!("clone {}", show(&s.path)),
                None => format!("step {n}"),
            },
            n => match self.steps.get(n - 2) {
                Some(Step::Mkdir(p)) => format!("make {}", show(p)),
                Some(Step::File(p)) => format!("make the file {}", show(p)),
                Some(Step::Symlink { path, .. }) => format!("link {}", show(path)),
                Some(Step::Tmpfs { path, .. }) => format!("mount a tmpfs at {}", show(path)),
                Some(Step::Attach { clone, path }) => format!(
                    "attach {} at {}",
                    show(&self.sources[*clone].path),
                    show(path)
                ),
                Some(Step::Proc(p)) => format!("mount /proc at {}", show(p)),
                Some(Step::Mask(p)) => format!("mask {}", show(p)),
                Some(Step::Seal(p)) => format!("make {} read-only", show(p)),
                None => "pivot_root into the new root".into(),
            },
        }
    }
}

fn etc_wanted(name: &str) -> bool {
    ETC.iter().any(|w| match w.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *w,
    })
}

/// The prefix of an interpreter: `/opt/py/bin/python3` → `/opt/py`, both as given (a
/// virtual environment's folder) and with symlinks resolved (where its library is).
pub(crate) fn interpreter_trees(program: &Path) -> Vec<PathBuf> {
    let prefix = |p: &Path| -> Option<PathBuf> {
        let dir = p.parent()?;
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("bin" | "sbin") => dir.parent().map(Path::to_path_buf),
            _ => Some(dir.to_path_buf()),
        }
    };
    if !program.is_absolute() {
        return Vec::new();
    }
    let mut out = Vec::new();
    // As given, its folder's symlinks resolved but not the file's own.
    if let Some(dir) = program.parent().and_then(|d| d.canonicalize().ok()) {
        if let Some(name) = program.file_name() {
            out.extend(prefix(&dir.join(name)));
        }
    }
    if let Ok(real) = program.canonicalize() {
        out.extend(prefix(&real));
    }
    out
}

/// The trees the student's `PATH` (the grader's) needs: each entry, the pyenv root
/// instead of its `shims` (a shim runs `$PYENV_ROOT/libexec` and `versions/`), and
/// `PYENV_ROOT` itself.
pub(crate) fn path_trees() -> Vec<PathBuf> {
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
    wanted.retain(|p| p.is_absolute());
    wanted
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} contains a NUL byte", path.display()),
        )
    })
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

unsafe fn mount_setattr(
    dirfd: libc::c_int,
    path: *const libc::c_char,
    flags: libc::c_uint,
    set: u64,
    clear: u64,
) -> libc::c_long {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    libc::syscall(
        libc::SYS_mount_setattr,
        dirfd,
        path,
        flags,
        &attr as *const MountAttr,
        std::mem::size_of::<MountAttr>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreter_prefixes() {
        assert_eq!(
            interpreter_trees(Path::new("python3")),
            Vec::<PathBuf>::new()
        );
        let t = interpreter_trees(Path::new("/bin/sh"));
        assert!(!t.is_empty(), "{t:?}");
    }

    #[test]
    fn the_plan_has_the_system_the_work_folder_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().canonicalize().unwrap();
        let plan = RootPlan::new(&work, &[PathBuf::from("/usr/bin"), work.clone()]).unwrap();
        // /usr/bin is inside /usr; the work folder is there already.
        assert_eq!(plan.exposed(), &[] as &[PathBuf]);
        let steps: Vec<String> = (2..2 + plan.steps.len())
            .map(|n| plan.describe_step(n))
            .collect();
        let text = steps.join("\n");
        assert!(text.contains("attach /usr at"), "{text}");
        assert!(text.contains("mount /proc at"), "{text}");
        assert!(
            text.contains(&format!("attach {} at", work.display())),
            "{text}"
        );
        assert!(!text.contains("attach /run"), "{text}");
        assert!(!text.contains("/etc/shadow"), "{text}");
    }
}
