//! Where the grader puts what students' programs write: the work folders of its cases
//! and builds (and the folders archives are unpacked into), their limits, and their
//! removal.
//!
//! - **One folder per grader**, `sockgrade-<pid>-<start time>-<pid namespace>` in the
//!   temp folder (mode 0700), named so that a later grader can tell whether its owner
//!   still lives. It exists while work folders do. A grader killed with `kill -9` runs
//!   no clean-up: the next grader's first work folder sweeps the folders of dead owners
//!   ([`sweep`]), never one of a live grader (same pid *and* start time).
//! - **A work folder is bounded** when the grader may mount (root, isolated): it is a
//!   tmpfs of [`WORK_BYTES`] and [`WORK_FILES`] mounted before the submission is copied
//!   in. A program that writes more gets `ENOSPC` ("No space left on device"), the
//!   host's disk is never touched, and the pages are memory, charged to the memory
//!   cgroup of the case that wrote them. [`WorkFolder::full`] tells the verdict.
//! - **Removal never recurses over a student's tree**: a bounded folder is unmounted
//!   (`MNT_DETACH`, no walk at all) and its empty mount point removed; an unbounded one
//!   (no root) is removed by [`remove_tree`], an iterative walk by descriptors, with
//!   neither recursion (a 20,000-deep chain overflowed a 2 MiB thread stack) nor full
//!   paths (longer than `PATH_MAX` there).

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};

/// Bytes of a bounded work folder: the largest submission copied
/// ([`super::workdir::MAX_COPY_BYTES`], 64 MiB) and as much again written by the program
/// (four files at the default file-size limit). A homework writes kilobytes (a log, a
/// received file); 1 GiB written in 0.8 s stops here. Below the default memory limit
/// (256 MiB), which these pages count towards, so the folder fills before the case is
/// killed for its memory, and the reason says which.
pub const WORK_BYTES: u64 = 128 << 20;

/// Files and folders of a bounded work folder: more than an archive may hold
/// ([`crate::bulk::archive::MAX_ENTRIES`], 10,000), so that any submission that unpacks
/// fits; a program making 20,000 files (or a 20,000-deep chain) stops here. Each costs
/// the kernel about 1 KiB, charged like the pages.
pub const WORK_FILES: u64 = 16_384;

/// A work folder of a case or a build, removed when dropped.
#[derive(Debug)]
pub struct WorkFolder {
    path: PathBuf,
    /// Whether it is a tmpfs of its own (bounded).
    mounted: bool,
    /// Keeps the grader's folder while this one lives.
    _owner: Arc<OwnerFolder>,
}

/// What filled a bounded work folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Bytes,
    Files,
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Full::Bytes => write!(f, "{} MiB", WORK_BYTES >> 20),
            Full::Files => write!(f, "{WORK_FILES} files and folders"),
        }
    }
}

impl WorkFolder {
    /// A new, empty work folder (mode 0700) in the grader's folder: a tmpfs of its own
    /// when `bounded` (needs `CAP_SYS_ADMIN`).
    pub fn new(bounded: bool) -> io::Result<WorkFolder> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let owner = OwnerFolder::get()?;
        let path = owner
            .path
            .join(format!("w{}", SERIAL.fetch_add(1, Ordering::Relaxed)));
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&path)?;
        let mut folder = WorkFolder {
            path,
            mounted: false,
            _owner: owner,
        };
        if bounded {
            let options = format!("mode=0700,size={WORK_BYTES},nr_inodes={WORK_FILES}");
            nix::mount::mount(
                Some("tmpfs"),
                &folder.path,
                Some("tmpfs"),
                nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
                Some(options.as_str()),
            )
            .map_err(io::Error::from)?;
            folder.mounted = true;
        }
        Ok(folder)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is bounded (a tmpfs of its own).
    pub fn bounded(&self) -> bool {
        self.mounted
    }

    /// Whether a bounded folder is full, and of what: writes to it fail with `ENOSPC`.
    pub fn full(&self) -> Option<Full> {
        if !self.mounted {
            return None;
        }
        let st = nix::sys::statvfs::statvfs(&self.path).ok()?;
        if st.blocks_available() == 0 {
            Some(Full::Bytes)
        } else if st.files_available() == 0 {
            Some(Full::Files)
        } else {
            None
        }
    }
}

impl Drop for WorkFolder {
    fn drop(&mut self) {
        remove_work_folder(&self.path, self.mounted);
    }
}

/// Removes a work folder: unmounts it if it is a mount (nothing to walk), then removes
/// what is left without recursion. Errors are dropped: a folder that cannot be removed
/// now is swept with its grader's folder.
fn remove_work_folder(path: &Path, mounted: bool) {
    if mounted {
        let _ = nix::mount::umount2(
            path,
            nix::mount::MntFlags::MNT_DETACH | nix::mount::MntFlags::UMOUNT_NOFOLLOW,
        );
        if std::fs::remove_dir(path).is_ok() {
            return;
        }
    }
    let _ = remove_tree(path);
}

/// Removes `path` and everything below it, never following a symlink, with one
/// descriptor open at a time (a chain deeper than the open-file limit is fine), no
/// recursion (a chain deeper than any stack is fine) and names relative to their folder
/// only (a chain longer than `PATH_MAX` is fine). Folders that deny their owner writing
/// or searching are opened up first (the grader's own uid, without root).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    /// A folder on the way down: its name in its parent, its identity (checked when
    /// going back up through `..`) and its subfolders not yet removed.
    struct Level {
        name: OsString,
        id: (u64, u64),
        pending: Vec<OsString>,
    }
    let mut cur = open_dir(None, path.as_os_str())?;
    let mut stack = vec![Level {
        name: OsString::new(),
        id: identity(&cur)?,
        pending: empty_files(&cur)?,
    }];
    loop {
        let top = stack.last_mut().expect("the top level stays until the end");
        if let Some(name) = top.pending.pop() {
            match open_dir(Some(&cur), &name) {
                Ok(fd) => {
                    cur = fd;
                    stack.push(Level {
                        name,
                        id: identity(&cur)?,
                        pending: empty_files(&cur)?,
                    });
                }
                // Gone or replaced meanwhile: whatever it is now, unlink it.
                Err(_) => unlink(&cur, name.as_os_str(), UnlinkatFlags::NoRemoveDir)?,
            }
            continue;
        }
        let done = stack.pop().expect("just looked at it");
        let Some(parent) = stack.last() else {
            break;
        };
        let up = open_dir(Some(&cur), OsStr::new(".."))?;
        // Moved elsewhere meanwhile: `..` is not the folder we came from.
        if identity(&up)? != parent.id {
            return Err(io::Error::other(format!(
                "{} changed while it was being removed",
                path.display()
            )));
        }
        cur = up;
        unlink(&cur, done.name.as_os_str(), UnlinkatFlags::RemoveDir)?;
    }
    drop(cur);
    std::fs::remove_dir(path)
}

/// Opens a folder (never through a symlink); one that denies its owner is opened up.
fn open_dir(at: Option<&OwnedFd>, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let dirfd = at.map(|f| f.as_raw_fd());
    let fd = match openat(dirfd, name, flags, Mode::empty()) {
        Err(Errno::EACCES) => {
            nix::sys::stat::fchmodat(
                dirfd,
                name,
                Mode::S_IRWXU,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )?;
            openat(dirfd, name, flags, Mode::empty())?
        }
        r => r?,
    };
    // SAFETY: a descriptor just opened, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn identity(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let st = fstat(fd.as_raw_fd())?;
    Ok((st.st_dev, st.st_ino))
}

/// Unlinks everything in the folder but subfolders, whose names it returns.
fn empty_files(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let fd = dir.as_raw_fd();
    let mut listing = Dir::openat(
        Some(fd),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut subs = Vec::new();
    let mut files: Vec<CString> = Vec::new();
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            Some(t) => t == Type::Directory,
            None => fstatat(Some(fd), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR),
        };
        if is_dir {
            subs.push(OsStr::from_bytes(name.to_bytes()).to_os_string());
        } else {
            files.push(name.to_owned());
        }
    }
    for name in files {
        unlink(dir, name.as_c_str(), UnlinkatFlags::NoRemoveDir)?;
    }
    Ok(subs)
}

/// Unlinks `name` in `dir` (gone already is fine); a folder that denies its owner
/// writing is opened up first (fails harmlessly on someone else's).
fn unlink<P: ?Sized + nix::NixPath>(
    dir: &OwnedFd,
    name: &P,
    flag: UnlinkatFlags,
) -> io::Result<()> {
    let fd = Some(dir.as_raw_fd());
    let retry = match unlinkat(fd, name, flag) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EACCES) => {
            nix::sys::stat::fchmod(dir.as_raw_fd(), Mode::S_IRWXU)?;
            unlinkat(fd, name, flag)
        }
        Err(e) => Err(e),
    };
    match retry {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The grader's own folder, removed once no work folder is left in it.
#[derive(Debug)]
struct OwnerFolder {
    path: PathBuf,
}

impl OwnerFolder {
    fn get() -> io::Result<Arc<OwnerFolder>> {
        static CURRENT: Mutex<Weak<OwnerFolder>> = Mutex::new(Weak::new());
        static SWEPT: Once = Once::new();
        let temp = std::env::temp_dir();
        SWEPT.call_once(|| {
            sweep(&temp);
        });
        let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(owner) = current.upgrade() {
            return Ok(owner);
        }
        let me = Owner::me().ok_or_else(|| io::Error::other("cannot read /proc/self"))?;
        let path = temp.join(me.folder_name());
        match std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&path)
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let owner = Arc::new(OwnerFolder { path });
        *current = Arc::downgrade(&owner);
        Ok(owner)
    }
}

impl Drop for OwnerFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Who owns a grader's folder: a process, told apart from a later one with its pid
/// by its start time, in a PID namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pid: u32,
    start: u64,
    pid_ns: u64,
}

const PREFIX: &str = "sockgrade-";

impl Owner {
    fn me() -> Option<Owner> {
        Some(Owner {
            pid: std::process::id(),
            start: start_time(std::process::id())?,
            pid_ns: pid_namespace()?,
        })
    }

    fn folder_name(&self) -> String {
        format!("{PREFIX}{}-{}-{}", self.pid, self.start, self.pid_ns)
    }

    /// The owner a folder's name says, if it is a grader's folder.
    fn of(name: &str) -> Option<Owner> {
        let mut parts = name.strip_prefix(PREFIX)?.split('-');
        let owner = Owner {
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
            pid_ns: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(owner)
    }

    /// Whether the owner is alive. Owners of another PID namespace (a container sharing
    /// the temp folder) cannot be told: alive for all we know.
    fn alive(&self) -> bool {
        if Some(self.pid_ns) != pid_namespace() {
            return true;
        }
        start_time(self.pid) == Some(self.start)
    }
}

/// A process's start time (clock ticks after boot), from `/proc/<pid>/stat`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command's `)`: state is the 3rd field, start time the 22nd.
    stat.rsplit_once(") ")?.1.split(' ').nth(19)?.parse().ok()
}

fn pid_namespace() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let s = link.to_string_lossy();
    s.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Removes the folders of graders that are dead (killed before they could clean up):
/// the work folders in them unmounted or removed, then the folder. Returns what it
/// removed.
pub(crate) fn sweep(temp: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = Owner::of(&name.to_string_lossy()) else {
            continue;
        };
        // Only a folder of our own uid (and not a symlink): the temp folder is everyone's,
        // and what another user put there under such a name is theirs, not a grader's.
        let ours = entry.metadata().is_ok_and(|m| {
            m.is_dir() && std::os::unix::fs::MetadataExt::uid(&m) == nix::unistd::geteuid().as_raw()
        });
        if owner.alive() || !ours {
            continue;
        }
        let dir = entry.path();
        if let Ok(work) = std::fs::read_dir(&dir) {
            for w in work.flatten() {
                // A mount point or not: `EINVAL` says it is not one.
                remove_work_folder(&w.path(), true);
            }
        }
        if remove_tree(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of `depth` folders below `top`, made with relative names only.
    fn chain(top: &Path, depth: usize) {
        let mut cur = open_dir(None, top.as_os_str()).unwrap();
        for i in 0..depth {
            nix::sys::stat::mkdirat(Some(cur.as_raw_fd()), "d", Mode::S_IRWXU).unwrap();
            if i % 1000 == 0 {
                // Some files on the way, and a symlink that must not be followed.
                let f = openat(
                    Some(cur.as_raw_fd()),
                    "f",
                    OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::S_IRUSR,
                )
                .unwrap();
                nix::unistd::close(f).unwrap();
                nix::unistd::symlinkat("/", Some(cur.as_raw_fd()), "root").unwrap();
            }
            cur = open_dir(Some(&cur), OsStr::new("d")).unwrap();
        }
    }

    /// Issue 12, item 7: std's recursive removal of a 20,000-deep chain overflowed the
    /// stack of a runtime thread. The walk uses none: here on a 64 KiB stack.
    #[test]
    fn removes_a_20000_deep_chain_on_a_small_stack() {
        // In memory where there is a tmpfs: 20,000 folders on this disk take a minute
        // to remove (`rm -rf` too).
        let shm = Path::new("/dev/shm");
        let top = match shm.is_dir() {
            true => tempfile::tempdir_in(shm),
            false => tempfile::tempdir(),
        }
        .unwrap();
        let victim = top.path().join("tree");
        std::fs::create_dir(&victim).unwrap();
        // Something the symlinks point at survives.
        let outside = tempfile::NamedTempFile::new().unwrap();
        chain(&victim, 20_000);
        let path = victim.clone();
        let removed = std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || remove_tree(&path))
            .unwrap()
            .join()
            .expect("the removal did not overflow");
        removed.unwrap();
        assert!(!victim.exists());
        assert!(outside.path().exists());
        assert!(Path::new("/usr").exists());
    }

    #[test]
    fn removes_folders_that_deny_their_owner() {
        let top = tempfile::tempdir().unwrap();
        let t = top.path().join("t");
        std::fs::create_dir_all(t.join("a/b")).unwrap();
        std::fs::write(t.join("a/b/x"), "x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.join("a/b"), std::fs::Permissions::from_mode(0o500)).unwrap();
        std::fs::set_permissions(t.join("a"), std::fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&t).unwrap();
        assert!(!t.exists());
        remove_tree(&t).unwrap();
    }

    #[test]
    fn owners_are_read_from_names() {
        let me = Owner::me().unwrap();
        assert_eq!(Owner::of(&me.folder_name()), Some(me.clone()));
        assert!(me.alive());
        assert_eq!(Owner::of("sockgrade-unpacked-x1y2"), None);
        assert_eq!(Owner::of("sockgrade-12-34"), None);
        assert_eq!(Owner::of("sockgrade-12-34-56-78"), None);
        // The same pid, started at another time: a later process, not the owner.
        let other = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(!other.alive());
        // Another PID namespace: cannot be told, left alone.
        let elsewhere = Owner {
            pid_ns: me.pid_ns + 1,
            start: me.start + 1,
            ..me
        };
        assert!(elsewhere.alive());
    }

    #[test]
    fn the_sweep_removes_dead_graders_folders_only() {
        let temp = tempfile::tempdir().unwrap();
        let me = Owner::me().unwrap();
        let dead = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        let mine = temp.path().join(me.folder_name());
        let theirs = temp.path().join(dead.folder_name());
        for d in [&mine, &theirs] {
            std::fs::create_dir_all(d.join("w0/deep/er")).unwrap();
            std::fs::write(d.join("w0/deep/er/code.py"), "print(1)").unwrap();
        }
        let stranger = temp.path().join("sockgrade-someone-else");
        std::fs::create_dir(&stranger).unwrap();
        // A dead owner's name on a symlink (to a folder that must survive), and on a
        // folder of another uid: another user's doing, left alone.
        let target = temp.path().join("target");
        std::fs::create_dir_all(target.join("w0")).unwrap();
        let link = temp.path().join(
            Owner {
                start: me.start + 2,
                ..me.clone()
            }
            .folder_name(),
        );
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let foreign = temp.path().join(
            Owner {
                start: me.start + 3,
                ..me.clone()
            }
            .folder_name(),
        );
        std::fs::create_dir(&foreign).unwrap();
        let is_root = nix::unistd::geteuid().is_root();
        if is_root {
            std::os::unix::fs::lchown(&foreign, Some(54321), Some(54321)).unwrap();
        }
        let mut swept = sweep(temp.path());
        swept.sort();
        let mut want = vec![theirs.clone()];
        if !is_root {
            want.push(foreign.clone());
            want.sort();
        }
        assert_eq!(swept, want);
        assert!(!theirs.exists());
        assert!(mine.join("w0/deep/er/code.py").exists());
        assert!(stranger.exists());
        assert!(target.join("w0").exists());
        assert!(link.exists());
    }

    #[test]
    fn a_bounded_folder_is_full_at_its_limit_and_leaves_nothing() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
        let w = WorkFolder::new(true).unwrap();
        assert!(w.bounded());
        let path = w.path().to_path_buf();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let owner = path.parent().unwrap().to_path_buf();
        assert_eq!(
            std::fs::metadata(&owner).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(w.full(), None);
        let mut n = 0;
        let err = loop {
            match std::fs::write(path.join(format!("f{n}")), "") {
                Ok(()) => n += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert!(n < WORK_FILES as usize, "{n}");
        assert_eq!(w.full(), Some(Full::Files));
        drop(w);
        assert!(!path.exists());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(path.to_str().unwrap()), "{mounts}");
    }
    use std::os::unix::fs::PermissionsExt;

    /// What a bounded work folder costs a case (the README's isolation section quotes
    /// these): the mount and the unmount, beside a plain folder, and the teardown of a
    /// folder full of files, unmounted or walked.
    #[test]
    fn cost_per_case() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
        use std::time::{Duration, Instant};
        const RUNS: usize = 1000;
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let mut out = String::new();
        for bounded in [false, true] {
            let (mut make, mut remove) = (Vec::new(), Vec::new());
            for _ in 0..RUNS {
                let t = Instant::now();
                let w = WorkFolder::new(bounded).unwrap();
                make.push(t.elapsed());
                std::fs::write(w.path().join("tcp_server.py"), "print(1)\n").unwrap();
                let t = Instant::now();
                drop(w);
                remove.push(t.elapsed());
            }
            out += &format!(
                "bounded {bounded}: make {:?}, remove {:?} (medians of {RUNS})\n",
                median(make),
                median(remove)
            );
        }
        // A folder of 10,000 files: unmounted, or walked on the same tmpfs.
        for bounded in [true, false] {
            let w = WorkFolder::new(true).unwrap();
            let dir = w.path().join("t");
            std::fs::create_dir(&dir).unwrap();
            for i in 0..10_000 {
                std::fs::write(dir.join(format!("f{i}")), "").unwrap();
            }
            let t = Instant::now();
            if bounded {
                drop(w);
            } else {
                remove_tree(&dir).unwrap();
            }
            out += &format!(
                "10,000 files, bounded {bounded}: removed in {:?}\n",
                t.elapsed()
            );
        }
        eprintln!("{out}");
    }
}
