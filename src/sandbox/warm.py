# sockgrade's warm start: a fork server for Python 3 student programs (see warm.rs).
#
# Started once per interpreter and run by the grader (as the grader's user), it has
# already paid for Python's start-up (site, .pth hooks: 40 ms of CPU or more), and forks
# a child for each student program. The child enters the case's sandbox with the same
# steps, in the same order, as the cold path's pre_exec (process.rs, confine.rs), then
# runs the student's file as `python3 FILE` would: as __main__, with sys.argv, sys.path[0],
# __file__, the environment and the working folder of a fresh start.
#
# Protocol, on the SOCK_SEQPACKET socket at fd 3 (one JSON object per message):
#   us -> grader: {"ready": version}   once, then {"id", "pid"} per started child,
#                 {"id", "error"} when a child could not enter its sandbox, and
#                 {"exit": pid, "status": wait status} when a child ends (after its reply).
#   grader -> us: a launch request (fields below) with its descriptors: stdin, stdout,
#                 stderr, then the cgroup.procs files, the case's cgroup2 directory (when
#                 "cgroup_dir" gives the index of its cgroup.procs), the network namespace,
#                 and the case's PID, IPC and mount namespaces (its init's, see caseinit.rs).
# The grader closing the socket ends the server; the grader's death kills it (pdeathsig).
import ctypes
import gc
import json
import os
import resource
import select
import signal
import socket
import sys

if sys.version_info < (3, 9):  # socket.recv_fds
    raise SystemExit("warm start needs Python 3.9 or later")

CTL = 3
# The server's own PID namespace, to point its children back at after forking one into
# a case's.
OWN_PIDNS = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
# Frames of this file and of the `-c` bootstrap are left out of student tracebacks.
OURS = ("<sockgrade warm start>", "<string>")

libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_INTO_CGROUP = 0x200000000
SYS_CLONE3 = 435  # the same on every architecture (the unified syscall table)
PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# NOROOT, NOROOT_LOCKED, NO_SETUID_FIXUP_LOCKED, KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE(_LOCKED)
SECUREBITS = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 7)


def check(ret, what):
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def drop_privileges(uid, gid):
    """confine.rs's drop_privileges, step for step."""
    check(libc.prctl(PR_SET_SECUREBITS, SECUREBITS, 0, 0, 0), "securebits")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0:
            if ctypes.get_errno() == 22:  # EINVAL: past the last capability
                break
            check(-1, "capability bounding set")
    # In the grader's user namespace (no root) setgroups is denied, and the groups stay.
    with open("/proc/self/setgroups") as f:
        if f.read().strip() != "deny":
            os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    # The change of uid emptied effective and permitted; empty inheritable too.
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    check(libc.capset(header, data), "capset")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # A change of credentials clears the parent-death signal: arm it again.
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp(programs):
    """The grader's compiled filters (seccomp.rs), each the bytes of a sock_filter array."""
    for text in programs:
        raw = bytes.fromhex(text)
        buf = ctypes.create_string_buffer(raw, len(raw))
        prog = SockFprog(len(raw) // 8, ctypes.cast(buf, ctypes.c_void_p))
        check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0), "seccomp")


def split(req, fds):
    """The request's descriptors: stdio, cgroup.procs files, the cgroup2 directory,
    network namespace, and the case's PID, IPC and mount namespaces."""
    stdio, fds = fds[:3], fds[3:]
    groups, fds = fds[: req["cgroups"]], fds[req["cgroups"]:]
    cgroup_dir = fds.pop(0) if req.get("cgroup_dir") is not None else None
    netns = fds.pop(0) if req["netns"] else None
    namespaces = fds[:3] if req["namespaces"] else None
    return stdio, groups, cgroup_dir, netns, namespaces


class CloneArgs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack",
        "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")]


# Called with the GIL held, as os.fork calls fork(): the child must not find it taken
# by a thread that does not exist there.
_syscall = ctypes.PyDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long
# Whether clone3 may create children into a cgroup here; False once the kernel (older
# than 5.7) or a seccomp policy of our own container said no.
clone_into_works = True


def fork_into(cgroup_dir):
    """os.fork, but the child is born in the cgroup2 group `cgroup_dir` (clone3 with
    CLONE_INTO_CGROUP), so it does not have to move there: a move waits for the kernel's
    global cgroup lock (an RCU grace period, ~11 ms), a birth does not (cgroup.rs,
    CgroupJoiner::clone_into). None when the kernel cannot, and the caller forks."""
    global clone_into_works
    if cgroup_dir is None or not clone_into_works:
        return None
    args = CloneArgs(flags=CLONE_INTO_CGROUP, exit_signal=signal.SIGCHLD, cgroup=cgroup_dir)
    # What os.fork does around fork(): locks taken and released, at-fork hooks run
    # (random reseeds itself in the child), the interpreter's thread state made whole.
    ctypes.pythonapi.PyOS_BeforeFork()
    pid = _syscall(SYS_CLONE3, ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    ctypes.pythonapi.PyOS_AfterFork_Parent()
    if pid > 0:
        return pid
    # ENOSYS, EPERM (a seccomp policy), E2BIG/EINVAL (before 5.7): never again this run.
    # Anything else (EAGAIN, ENOMEM, a dead PID namespace) is fork's to report.
    if err in (38, 1, 7, 22):
        clone_into_works = False
        return None
    raise OSError(err, os.strerror(err))


def enter(req, fds, keep, born_in):
    """The child's way into its sandbox (process.rs's pre_exec, in the same order). It
    was born in the case's PID namespace (the server forked it from there), and in the
    cgroup whose cgroup.procs is `born_in` if any."""
    stdio, groups, _, netns, namespaces = split(req, fds)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    for i, fd in enumerate(groups):
        if i != born_in:
            os.write(fd, b"0")
    if netns is not None:
        check(libc.setns(netns, CLONE_NEWNET), "setns(net)")
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for res, value in req["rlimits"]:
        resource.setrlimit(res, (value, value))
    if namespaces is not None:
        check(libc.setns(namespaces[1], CLONE_NEWIPC), "setns(ipc)")
        check(libc.setns(namespaces[2], CLONE_NEWNS), "setns(mnt)")
    os.chdir(req["cwd"])
    if req.get("uid") is not None:
        drop_privileges(req["uid"], req["gid"])
    for i, fd in enumerate(stdio):
        os.dup2(fd, i)
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 20)
    resource.setrlimit(resource.RLIMIT_NOFILE, (req["nofile"], req["nofile"]))
    os.environ.clear()
    os.environ.update(dict(req["env"]))
    # Last, as in the cold path: the steps above need what it refuses.
    install_seccomp(req.get("seccomp") or [])


# Children forked but not yet in their sandbox, by the read end of their "ack" pipe:
# (request id, pid, what the child said so far). The server does not wait for them:
# a child's way in includes cgroup moves, each waiting ~11 ms for the kernel (an RCU
# grace period, cgroup.rs), and children moving at the same time share that wait
# (8 at once: 25 ms, against 8 x 14 ms one after the other), so the next launch is
# forked meanwhile.
entering = {}
# Exit statuses of children reaped before their reply was sent (it must come first).
held = {}


def reap(ctl):
    pending = {pid for _, pid, _ in entering.values()}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in pending:
            held[pid] = status
            continue
        ctl.send(json.dumps({"exit": pid, "status": status}).encode())


def read_ack(ctl, poller, fd):
    """Reads what a child entering its sandbox said; once it is done (the pipe closed),
    replies to its launch: its pid, or why it could not enter."""
    req_id, pid, said = entering[fd]
    chunk = os.read(fd, 4096)
    if chunk:
        said += chunk
        return
    del entering[fd]
    poller.unregister(fd)
    os.close(fd)
    if said == b"ok":
        ctl.send(json.dumps({"id": req_id, "pid": pid}).encode())
        if pid in held:
            ctl.send(json.dumps({"exit": pid, "status": held.pop(pid)}).encode())
    else:
        if held.pop(pid, None) is None:
            os.waitpid(pid, 0)
        error = said.decode("utf-8", "replace") or "the child died on its way into the sandbox"
        ctl.send(json.dumps({"id": req_id, "error": error}).encode())


def launch(ctl, poller, req, fds):
    """Forks a child for `req`. Returns the request in the child, None in the server
    (which replies once the child has entered its sandbox, see `entering`)."""
    ack_r, ack_w = os.pipe()
    _, _, cgroup_dir, _, namespaces = split(req, list(fds))
    if namespaces is not None:
        # Our next child is born in the case's PID namespace; we stay where we are.
        try:
            check(libc.setns(namespaces[0], CLONE_NEWPID), "setns(pid)")
        except OSError as e:
            os.close(ack_r)
            os.close(ack_w)
            ctl.send(json.dumps({"id": req["id"], "error": "%s" % e}).encode())
            return None
    born_in = None
    try:
        pid = fork_into(cgroup_dir)
        if pid is None:
            pid = os.fork()
        else:
            born_in = req["cgroup_dir"]
    except OSError as e:
        pid = None
        error = "fork: %s (the case's namespace has ended)" % e
    if namespaces is not None and pid != 0:
        # Without root (the grader's user namespace) the way back is refused (EPERM: our
        # own PID namespace belongs to the machine's user namespace); harmless, as every
        # launch of a confined run points the next child at its case first.
        if libc.setns(OWN_PIDNS, CLONE_NEWPID) < 0 and ctypes.get_errno() != 1:  # EPERM
            check(-1, "setns(pid) back")
    if pid is None:
        os.close(ack_r)
        os.close(ack_w)
        ctl.send(json.dumps({"id": req["id"], "error": error}).encode())
        return None
    if pid == 0:
        os.close(ack_r)
        # The socket is closed below with every other descriptor; the object must not
        # close "its" fd again later, when that number may be the student's.
        ctl.detach()
        try:
            enter(req, fds, ack_w, born_in)
        except BaseException as e:
            os.write(ack_w, ("%s: %s" % (type(e).__name__, e)).encode("utf-8", "replace"))
            os._exit(127)
        os.write(ack_w, b"ok")
        os.close(ack_w)
        return req
    os.close(ack_w)
    entering[ack_r] = (req["id"], pid, bytearray())
    poller.register(ack_r, select.POLLIN)
    return None


def serve():
    """Answers launch requests until the grader goes away; returns only in a child."""
    ctl = socket.socket(fileno=CTL)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    # What the start-up created is never freed: keep the collector away from it, so a
    # child's first collection does not copy every page of the parent's heap.
    gc.freeze()
    ctl.send(json.dumps({"ready": sys.version}).encode())
    poller = select.poll()
    poller.register(ctl, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == wake_r:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                reap(ctl)
                continue
            if fd in entering:
                read_ack(ctl, poller, fd)
                continue
            msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 16)
            if not msg:
                os._exit(0)
            req = launch(ctl, poller, json.loads(msg), fds)
            if req is not None:
                return req
            for f in fds:
                os.close(f)


def quiet_excepthook(kind, value, tb):
    pass


def run(argv):
    """Runs the student's file as the interpreter runs a script given on its command line."""
    import builtins
    import importlib.machinery
    import __main__

    path = os.path.abspath(argv[1])
    sys.argv = list(argv[1:])
    sys.orig_argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    with open(path, "rb") as f:
        source = f.read()
    ns = __main__.__dict__
    ns.clear()
    ns.update(
        __name__="__main__",
        __doc__=None,
        __package__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", path),
        __spec__=None,
        __annotations__={},
        __builtins__=builtins,
        __file__=path,
        __cached__=None,
    )
    global preloaded
    # A count, not the names: copying them would touch (and copy) a page per name.
    preloaded = len(sys.modules)
    try:
        exec(compile(source, path, "exec", dont_inherit=True), ns)
    except SystemExit:
        raise
    except BaseException as e:
        # What the interpreter does with an uncaught exception, minus our frames: the
        # (student's or default) excepthook gets the traceback from the student's first
        # frame on. Re-raised past a hook that has already spoken, it then ends the
        # process as a cold start would: code 1, or death by SIGINT for Ctrl-C, after
        # the usual finalization (non-daemon threads joined, atexit, flush).
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename in OURS:
            tb = tb.tb_next
        # (The default hook prints the exception's own traceback, not its argument's.)
        sys.excepthook(type(e), e.with_traceback(tb), tb)
        sys.excepthook = quiet_excepthook
        raise


# How many modules were loaded before the student's code ran (the server's own); those
# imported since come after them in sys.modules.
preloaded = 0


def clear_namespace(d):
    """Empties a module's globals as the interpreter's teardown does (so __del__ methods
    run, files flush): names with one leading underscore first, then all but
    __builtins__, each set to None."""
    for first in (True, False):
        for name in list(d):
            if not isinstance(name, str) or name == "__builtins__":
                continue
            if first and not (name.startswith("_") and not name.startswith("__")):
                continue
            try:
                d[name] = None
            except Exception:
                pass


def flush_std_files():
    """sys.stdout then sys.stderr flushed, as the interpreter does at exit; False when
    stdout could not be (what makes `python3 FILE` exit with 120)."""
    ok = True
    for name in ("stdout", "stderr"):
        f = getattr(sys, name, None)
        try:
            if f is None or f.closed:
                continue
            f.flush()
        except Exception as e:
            ok = False
            if name == "stdout":
                try:
                    sys.stderr.write("Exception ignored in: %r\n%s: %s\n" % (f, type(e).__name__, e))
                except Exception:
                    pass
    return ok


def finish(code, sigint=False):
    """Ends the child as `python3 FILE` ends, minus what only frees memory.

    The interpreter's own teardown (Py_FinalizeEx) frees every object and module, and
    in a forked child that writes to every page inherited from the server: measured,
    1,700 page copies and 9 ms of CPU per exit, for memory the exit frees anyway. So
    the steps a program can see are taken here, in the interpreter's order: non-daemon
    threads joined, atexit functions, standard streams flushed, Ctrl-C back to its
    default, garbage collected (finalizers of cycles), the student's module globals
    cleared (__del__ methods, files and sockets flushed and closed), streams flushed
    again; then the process exits without the rest."""
    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            threading._shutdown()
        except BaseException as e:
            sys.stderr.write("Exception ignored on threading shutdown:\n%s: %s\n" % (type(e).__name__, e))
    import atexit

    atexit._run_exitfuncs()
    ok = flush_std_files()
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    except Exception:
        pass
    gc.collect()
    import __main__

    clear_namespace(__main__.__dict__)
    # The modules imported since, newest first, read from the end of sys.modules (so
    # the server's own are not touched).
    since = []
    for name in reversed(sys.modules):
        if len(since) >= len(sys.modules) - preloaded:
            break
        since.append(name)
    for name in since:
        module = sys.modules.get(name)
        d = getattr(module, "__dict__", None)
        if name != "__main__" and isinstance(d, dict):
            clear_namespace(d)
    gc.collect()
    ok = flush_std_files() and ok
    if sigint:
        # As the interpreter ends on an uncaught KeyboardInterrupt: killed by SIGINT.
        os.kill(os.getpid(), signal.SIGINT)
        os._exit(130)
    os._exit(code if ok else 120)


def exit_code(e):
    """The exit status of an uncaught SystemExit, as the interpreter reports it."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write("%s\n" % (code,))
    except Exception:
        pass
    return 1


req = serve()  # returns only in a child
try:
    run(req["argv"])
except SystemExit as e:
    finish(exit_code(e))
except KeyboardInterrupt:
    finish(1, sigint=True)
except BaseException:
    finish(1)
finish(0)
