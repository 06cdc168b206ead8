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
#                 stderr, then the cgroup.procs files, the network namespace, and the
#                 case's PID, IPC and mount namespaces (its init's, see caseinit.rs).
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
    """The request's descriptors: stdio, cgroup.procs files, network namespace, and the
    case's PID, IPC and mount namespaces."""
    stdio, fds = fds[:3], fds[3:]
    groups, fds = fds[: req["cgroups"]], fds[req["cgroups"]:]
    netns = fds.pop(0) if req["netns"] else None
    namespaces = fds[:3] if req["namespaces"] else None
    return stdio, groups, netns, namespaces


def enter(req, fds, keep):
    """The child's way into its sandbox (process.rs's pre_exec, in the same order). It
    was born in the case's PID namespace (the server forked it from there)."""
    stdio, groups, netns, namespaces = split(req, fds)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    for fd in groups:
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


def reap(ctl):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ctl.send(json.dumps({"exit": pid, "status": status}).encode())


def launch(ctl, req, fds):
    """Forks a child for `req`. Returns the request in the child, None in the server."""
    ack_r, ack_w = os.pipe()
    namespaces = split(req, list(fds))[3]
    if namespaces is not None:
        # Our next child is born in the case's PID namespace; we stay where we are.
        try:
            check(libc.setns(namespaces[0], CLONE_NEWPID), "setns(pid)")
        except OSError as e:
            os.close(ack_r)
            os.close(ack_w)
            ctl.send(json.dumps({"id": req["id"], "error": "%s" % e}).encode())
            return None
    try:
        pid = os.fork()
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
            enter(req, fds, ack_w)
        except BaseException as e:
            os.write(ack_w, ("%s: %s" % (type(e).__name__, e)).encode("utf-8", "replace"))
            os._exit(127)
        os.write(ack_w, b"ok")
        os.close(ack_w)
        return req
    os.close(ack_w)
    ack = b""
    while True:
        chunk = os.read(ack_r, 4096)
        if not chunk:
            break
        ack += chunk
    os.close(ack_r)
    if ack == b"ok":
        ctl.send(json.dumps({"id": req["id"], "pid": pid}).encode())
    else:
        os.waitpid(pid, 0)
        error = ack.decode("utf-8", "replace") or "the child died on its way into the sandbox"
        ctl.send(json.dumps({"id": req["id"], "error": error}).encode())
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
            msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 16)
            if not msg:
                os._exit(0)
            req = launch(ctl, json.loads(msg), fds)
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


run(serve()["argv"])
