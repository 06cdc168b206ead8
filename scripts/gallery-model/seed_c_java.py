"""Model of specs/tcp-basics-c.toml and tcp-basics-java.toml (see model.py): the
seed homework's cases (specs/tcp-basics.toml), plus "sends a long line completely".
Usage: run.sh seed_c_java c|java [fixture ...]"""
import errno
import signal
import sys
from model import *

PORT = 8888
LANG = sys.argv.pop(1)
if LANG == 'c':
    BUILD = {'server': ['gcc', '-O2', '-Wall', '-o', 'tcp_server', 'tcp_server.c'],
             'client': ['gcc', '-O2', '-Wall', '-o', 'tcp_client', 'tcp_client.c']}
    # stdbuf -oL: C's stdout is block-buffered into a pipe (as Python's without -u).
    RUN = {'server': ['stdbuf', '-oL', './tcp_server'], 'client': ['stdbuf', '-oL', './tcp_client']}
else:
    BUILD = {'server': ['javac', 'TcpServer.java'], 'client': ['javac', 'TcpClient.java']}
    RUN = {'server': ['java', '-cp', '.', 'TcpServer'], 'client': ['java', '-cp', '.', 'TcpClient']}


def server_case(steps):
    def run(folder):
        prog = Program(folder, RUN['server'], build=BUILD['server'])
        try:
            wait_bound(prog, PORT)
            steps(prog)
        finally:
            prog.kill()
    return run


def cpu(prog):
    with open('/proc/%d/stat' % prog.p.pid) as f:
        parts = f.read().rsplit(')', 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf('SC_CLK_TCK')


def close_after_data(c, within=2.0):
    """expect_close = "fin": data before the FIN is allowed (the reply to "bye")."""
    end = time.monotonic() + within
    while not c.closed and time.monotonic() < end:
        c._read(end - time.monotonic())
        if len(c.buf) > 10000:
            break
    check(c.closed == 'fin', 'expected FIN, got %s after %d bytes' % (c.closed or 'nothing', len(c.buf)))


def s1(prog):
    Conn.connect(PORT)


def s2(prog):
    c = Conn.connect(PORT)
    c.send('hello\n')
    check(c._read(2.0) and c.buf, 'no reply')


def s3(prog):
    c = Conn.connect(PORT)
    for m in ('first message\n', 'second message\n', 'third message\n'):
        c.buf.clear()
        c.send(m)
        check(c._read(2.0) and c.buf, 'no reply to %r' % m)


def s4(prog):
    c = Conn.connect(PORT)
    c.send('the quick brown fox jumps over the lazy dog\n')
    prog.expect_stdout('the quick brown fox jumps over the lazy dog')


def s5(prog):
    c = Conn.connect(PORT)
    c.send('bye\n')
    c.s.shutdown(socket.SHUT_WR)
    close_after_data(c)


def s6(prog):
    c = Conn.connect(PORT)
    c.send('bye\n')
    c.s.shutdown(socket.SHUT_WR)
    c._read(0.2)
    t0 = cpu(prog)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # keep draining, or a spinning server blocks on send
        c._read(end - time.monotonic())
        c.buf.clear()
    used = cpu(prog) - t0
    check(used < 0.05, 'used %.2fs of CPU in 0.5s' % used)


def s7(prog):
    a = Conn.connect(PORT)
    a.send('hello from the first client\n')
    check(a._read(2.0) and a.buf, 'no reply to the first client')
    a.close()
    try:
        b = Conn.connect(PORT)
    except ConnectionRefusedError:
        raise CaseFailed('the second client was refused (%s)' % prog.stderr_tail()[-100:])
    b.send('hello from the second client\n')
    check(b._read(2.0) and b.buf, 'no reply to the second client')


def s8(prog):
    c = Conn.connect(PORT)
    c.send('hello\n')
    check(c._read(2.0) and c.buf, 'no reply')
    c.close()
    try:
        os.killpg(prog.p.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    prog.expect_exit()
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        t.bind(('0.0.0.0', PORT))
    except OSError as e:
        raise CaseFailed('port still busy: %s' % e)
    finally:
        t.close()


def client_case(steps, rcvbuf=None):
    def run(folder):
        ls = listener(PORT, rcvbuf=rcvbuf)
        prog = None
        try:
            prog = Program(folder, RUN['client'], build=BUILD['client'])
            c = accept(ls, prog)
            steps(prog, c)
        finally:
            if prog:
                prog.kill()
            ls.close()
    return run


def c1(prog, c):
    pass


def c2(prog, c):
    prog.write_stdin('hello sockgrade\n')
    c.expect_regex('hello sockgrade', '"hello sockgrade"')


def c3(prog, c):
    prog.write_stdin('ping\n')
    c.expect_regex('ping', '"ping"')
    c.send('pong-4711\n')
    prog.expect_stdout('pong-4711')


def c4(prog, c):
    prog.write_stdin('x\n')
    c.expect_regex('x', 'x')
    c.send('ok\n')
    prog.write_stdin('\n')
    c.buf.clear()
    c.expect_close()
    prog.expect_exit(code=0)


def c5(prog, c):
    prog.write_stdin('x\n')
    c.expect_regex('x', 'x')
    c.send('ok\n')
    c.s.shutdown(socket.SHUT_WR)
    try:
        prog.write_stdin('again\n')
    except BrokenPipeError:
        pass
    prog.expect_exit(within=3.0, code=0)


def c6(prog, c):
    prog.close_stdin()
    prog.expect_exit(code=0)


def long_line(prog, c):
    prog.write_stdin('a' * (1 << 20) + '\n')
    total, _ = c.expect_count(1 << 20, within=10, slow=(4096, 0.016))  # about 256 KiB/s
    check(total >= 1 << 20, 'received %d of %d bytes of the line' % (total, 1 << 20))


CASES = [
    ('accepts a connection', server_case(s1), True),
    ('replies to a message', server_case(s2), True),
    ('several messages on one connection', server_case(s3), True),
    ('prints each message it receives', server_case(s4), True),
    ('closes after the client closes', server_case(s5), True),
    ('does not busy-loop after the client closes', server_case(s6), True),
    ('serves the next client after the first leaves', server_case(s7), True),
    ('exits on Ctrl-C and frees the port', server_case(s8), True),
    ('connects to the server', client_case(c1), True),
    ('sends what the user typed', client_case(c2), True),
    ("prints the server's reply", client_case(c3), True),
    ('ends on an empty line and closes', client_case(c4), True),
    ('copes with the server closing first', client_case(c5), True),
    ('handles end of input (Ctrl-D)', client_case(c6), False),
    ('sends a long line completely', client_case(long_line, rcvbuf=4096), True),
]

if __name__ == '__main__':
    main_for(CASES, 'fixtures/' + LANG, 'specs/tcp-basics-%s.expect' % LANG, wmem_max=65536)
