"""A Python model of the gallery's specs: NOT the grader.

It plays each case of a gallery spec (specs/<assignment>.toml) against each fixture
folder by hand-written Python. It was written so that the fixtures and the `.expect`
files could be checked before sockgrade implemented the keys the specs needed; now
tests/gallery.rs checks them with the grader itself (`check --against --expect`), and
this model only helps to try a new fixture's behaviour outside the grader. Run it as root inside a private network
namespace (run.sh does that), so the fixtures' fixed ports never clash with anything.

Waiting is on events with deadlines (the port listening, data, FIN, exit); a sleep appears
only where the spec itself says "pause" or "send in pieces with a delay".
"""
import hashlib
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time


class CaseFailed(Exception):
    pass


def check(cond, why):
    if not cond:
        raise CaseFailed(why)


def netns_setup(wmem_max=None):
    """Bring lo up in this (private) namespace; optionally cap TCP send buffers."""
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
    if wmem_max:
        with open('/proc/sys/net/ipv4/tcp_wmem', 'w') as f:
            f.write('4096 16384 %d' % wmem_max)


class Program:
    """A student program run in a throw-away copy of its folder, output drained."""

    def __init__(self, folder, argv, files=None, stdin=True, build=None):
        self.dir = tempfile.mkdtemp(prefix='gallery-')
        for name in os.listdir(folder):
            src = os.path.join(folder, name)
            if os.path.isfile(src):
                shutil.copy(src, self.dir)
        for name, data in (files or {}).items():
            path = os.path.join(self.dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                f.write(data)
        if build:
            # The proposed `build`: here once per case, in the throw-away copy.
            b = subprocess.run(build, cwd=self.dir, capture_output=True, text=True, timeout=120)
            if b.returncode != 0:
                shutil.rmtree(self.dir, ignore_errors=True)
                first = next((l for l in b.stderr.splitlines() if 'error' in l), b.stderr[:200])
                raise CaseFailed('build failed (%s): %s' % (' '.join(build), first))
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        self.p = subprocess.Popen(argv, cwd=self.dir, env=env,
                                  stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True)
        self.out = bytearray()
        self.err = bytearray()
        self.cond = threading.Condition()
        for stream, buf in ((self.p.stdout, self.out), (self.p.stderr, self.err)):
            threading.Thread(target=self._drain, args=(stream, buf), daemon=True).start()

    def _drain(self, stream, buf):
        while True:
            d = os.read(stream.fileno(), 65536)
            if not d:
                return
            with self.cond:
                if len(buf) < 1 << 20:
                    buf.extend(d)
                self.cond.notify_all()

    def expect_stdout(self, text, within=2.0):
        end = time.monotonic() + within
        with self.cond:
            while text.encode() not in self.out:
                left = end - time.monotonic()
                check(left > 0, 'stdout never showed %r; it has %r' % (text, bytes(self.out[-300:])))
                self.cond.wait(left)

    def write_stdin(self, text):
        self.p.stdin.write(text.encode())
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def expect_exit(self, within=2.0, code=None):
        try:
            rc = self.p.wait(within)
        except subprocess.TimeoutExpired:
            raise CaseFailed('still running after %.1fs' % within)
        if code is not None:
            check(rc == code, 'exited with %s, expected %s; stderr: %s' % (rc, code, self.stderr_tail()))
        return rc

    def stderr_tail(self):
        return bytes(self.err[-400:]).decode(errors='replace')

    def file(self, name):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            return None
        with open(path, 'rb') as f:
            return f.read()

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _proc_ports(kind):
    """Local ports bound in this namespace: LISTEN for tcp, any bound socket for udp."""
    ports = set()
    for fam in ('', '6'):
        try:
            with open('/proc/net/%s%s' % (kind, fam)) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    port = int(parts[1].rsplit(':', 1)[1], 16)
                    if kind == 'udp' or parts[3] == '0A':
                        ports.add(port)
        except FileNotFoundError:
            pass
    return ports


def wait_bound(prog, port, kind='tcp', within=5.0):
    """Waits until the program listens (tcp) or has bound (udp) `port`, or exits."""
    end = time.monotonic() + within
    while port not in _proc_ports(kind):
        if prog.p.poll() is not None:
            raise CaseFailed('exited (%s) before %s port %d was bound: %s'
                             % (prog.p.returncode, kind, port, prog.stderr_tail()))
        check(time.monotonic() < end, 'never bound %s port %d' % (kind, port))
        time.sleep(0.01)  # /proc has no event to wait on; this is the harness, not the grader


class Conn:
    """The reference side of one TCP connection, with the spec's steps."""

    def __init__(self, sock):
        self.s = sock
        self.buf = bytearray()
        self.closed = None  # None, 'fin' or 'rst'

    @classmethod
    def connect(cls, port, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(('127.0.0.1', port))
        return cls(s)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            # The student closed while we were sending: say so in the next expect's reason.
            self.closed = self.closed or 'fin'
            self._peek_reply()
            raise CaseFailed('the connection closed while sending (%s); it had answered %r'
                             % (e.strerror, bytes(self.buf[:200])))

    def _peek_reply(self):
        try:
            self.s.setblocking(False)
            self.buf.extend(self.s.recv(65536))
        except OSError:
            pass

    def send_pieces(self, pieces, delay):
        for i, p in enumerate(pieces):
            if i:
                time.sleep(delay)  # the delay is the behaviour under test
            self.send(p)

    def _read(self, timeout, limit=65536):
        if self.closed:
            return False
        r, _, _ = select.select([self.s], [], [], max(timeout, 0))
        if not r:
            return False
        try:
            d = self.s.recv(limit)
        except ConnectionResetError:
            self.closed = 'rst'
            return True
        if not d:
            self.closed = 'fin'
        self.buf.extend(d)
        return True

    def expect_exact(self, data, within=2.0):
        """The next bytes are exactly `data` (in any segmentation)."""
        if isinstance(data, str):
            data = data.encode()
        end = time.monotonic() + within
        while len(self.buf) < len(data) and not self.closed:
            if not self._read(end - time.monotonic()) and time.monotonic() >= end:
                break
        got = bytes(self.buf[:len(data)])
        check(got == data, 'expected %r, got %r%s' % (data, got, ' then ' + self.closed if self.closed else ''))
        del self.buf[:len(data)]

    def expect_until(self, marker, within=2.0):
        """Bytes up to and including `marker` (e.g. the end of HTTP headers)."""
        end = time.monotonic() + within
        while marker not in self.buf and not self.closed:
            if not self._read(end - time.monotonic()) and time.monotonic() >= end:
                break
        i = self.buf.find(marker)
        check(i >= 0, 'expected %r, got %r%s' % (marker, bytes(self.buf[:200]), ' then ' + self.closed if self.closed else ''))
        got = bytes(self.buf[:i + len(marker)])
        del self.buf[:i + len(marker)]
        return got

    def expect_regex(self, pattern, label, within=2.0):
        """Waits until what arrived so far matches; consumes nothing (like a contains)."""
        import re
        rx = re.compile(pattern.encode())
        end = time.monotonic() + within
        while not rx.search(self.buf) and not self.closed:
            if not self._read(end - time.monotonic()) and time.monotonic() >= end:
                break
        check(rx.search(self.buf), 'expected %s, got %r%s' % (label, bytes(self.buf[:200]), ' then ' + self.closed if self.closed else ''))

    def expect_nothing(self, dur):
        """Nothing arrives (and no close) for `dur`."""
        end = time.monotonic() + dur
        while time.monotonic() < end and not self.buf and not self.closed:
            self._read(end - time.monotonic())
        check(not self.buf, 'expected nothing for %.0fms, got %r' % (dur * 1000, bytes(self.buf)))
        check(not self.closed, 'expected nothing for %.0fms, the connection closed (%s)' % (dur * 1000, self.closed))

    def expect_close(self, within=2.0):
        end = time.monotonic() + within
        while not self.closed and time.monotonic() < end:
            self._read(end - time.monotonic())
        check(not self.buf, 'expected the close, got data %r' % bytes(self.buf[:200]))
        check(self.closed == 'fin', 'expected FIN, got %s' % (self.closed or 'nothing (still open)'))

    def expect_open(self, dur):
        """No FIN/RST for `dur` (data may arrive)."""
        end = time.monotonic() + dur
        while time.monotonic() < end and not self.closed:
            self._read(end - time.monotonic())
        check(not self.closed, 'the connection closed (%s) within %.0fms' % (self.closed, dur * 1000))

    def expect_count(self, n, within, slow=None):
        """Reads everything until close or deadline; slow = (chunk, pause) reads slowly."""
        h = hashlib.sha256()
        total = 0
        end = time.monotonic() + within
        while not self.closed and time.monotonic() < end and total <= n:
            if slow:
                time.sleep(slow[1])  # reading slowly is the behaviour under test
            if self._read(end - time.monotonic(), slow[0] if slow else 65536):
                h.update(self.buf)
                total += len(self.buf)
                self.buf.clear()
        return total, h.hexdigest()

    def close(self, rst=False):
        if rst:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        self.s.close()


def listener(port, rcvbuf=None):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind(('127.0.0.1', port))
    s.listen(5)
    return s


def accept(ls, prog, within=5.0):
    end = time.monotonic() + within
    while True:
        r, _, _ = select.select([ls], [], [], 0.05)
        if r:
            c, _ = ls.accept()
            return Conn(c)
        if prog.p.poll() is not None:
            raise CaseFailed('exited (%s) without connecting: %s' % (prog.p.returncode, prog.stderr_tail()))
        check(time.monotonic() < end, 'never connected')


def read_expect(path):
    """Parses a `.expect` file: {fixture: set(case names)}, in file order."""
    sections = {}
    cur = None
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('[') and line.endswith(']'):
                cur = line[1:-1]
                sections[cur] = set()
            else:
                sections[cur].add(line)
    return sections


class Peer:
    """A reference UDP socket: datagram steps, with the sender's address checked."""

    def __init__(self, port=0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(('127.0.0.1', port))
        self.last_from = None

    def send(self, data, to):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendto(data, to)

    def recv(self, within):
        r, _, _ = select.select([self.s], [], [], max(within, 0))
        if not r:
            return None
        data, addr = self.s.recvfrom(65536)
        self.last_from = addr
        return data

    def expect(self, data, within=2.0, frm=None):
        if isinstance(data, str):
            data = data.encode()
        got = self.recv(within)
        check(got is not None, 'expected a datagram %r, none came within %.1fs' % (data[:60], within))
        check(got == data, 'expected a datagram %r, got %r (%d bytes)' % (data[:60], got[:60], len(got)))
        if frm:
            check(self.last_from == frm, 'the answer came from %s:%d, not from %s:%d where the request went'
                  % (self.last_from + frm))

    def expect_none(self, dur):
        got = self.recv(dur)
        check(got is None, 'expected no datagram for %.0fms, got %r' % (dur * 1000, got))


def run_gallery(fixtures_dir, expect_file, cases, only=None):
    """cases: [(name, fn(folder) -> None or raises CaseFailed, graded: bool)].
    The fixtures run are those named in the .expect file (a folder may hold several
    assignments' fixtures, as fixtures/udp/ does)."""
    expected = read_expect(expect_file)
    names = sorted(expected)
    wrong = 0
    for fx in names:
        if only and fx not in only:
            continue
        folder = os.path.join(fixtures_dir, fx)
        failed = set()
        print('== %s' % fx)
        for name, fn, graded in cases:
            t = time.monotonic()
            try:
                fn(folder)
                verdict = 'pass'
            except CaseFailed as e:
                verdict = 'FAIL: %s' % e
                if graded:
                    failed.add(name)
            except Exception as e:  # a harness error is a failure too, shown as such
                verdict = 'FAIL (harness %s): %s' % (type(e).__name__, e)
                if graded:
                    failed.add(name)
            print('   %-52s %5.2fs %s' % (name[:52], time.monotonic() - t, verdict[:160]))
        want = expected.get(fx)
        if want is None:
            print('   !! not in %s' % expect_file)
            wrong += 1
        elif want != failed:
            print('   !! expected to fail %s, failed %s' % (sorted(want), sorted(failed)))
            wrong += 1
        else:
            print('   ok: fails exactly %s' % (sorted(failed) or 'nothing'))
    print('%d fixture(s) did not meet the expectation' % wrong)
    return wrong


def main_for(cases, fixtures_rel, expect_rel, wmem_max=None):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    netns_setup(wmem_max)
    only = set(sys.argv[1:]) or None
    sys.exit(1 if run_gallery(os.path.join(root, fixtures_rel), os.path.join(root, expect_rel), cases, only) else 0)
