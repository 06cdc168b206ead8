"""Model of specs/udp-basics.toml (see model.py)."""
from model import *

PORT = 21567
SERVER = ('127.0.0.1', PORT)


def server_case(steps):
    def run(folder):
        prog = Program(folder, ['python3', 'udp_server.py'])
        try:
            wait_bound(prog, PORT, 'udp')
            steps(prog)
        finally:
            prog.kill()
    return run


def echo(prog):
    a = Peer()
    a.send('hello', SERVER)
    a.expect('hello')


def same_port(prog):
    a = Peer()
    a.send('ping', SERVER)
    a.expect('ping', frm=SERVER)


def each_sender(prog):
    a, b = Peer(), Peer()
    a.send('aaa', SERVER)
    b.send('bbb', SERVER)
    a.expect('aaa')
    b.expect('bbb')


def long_one(prog):
    a = Peer()
    a.send('x' * 1000, SERVER)
    a.expect('x' * 1000)


def one_per(prog):
    a = Peer()
    for w in ('one', 'two', 'three'):
        a.send(w, SERVER)
    for w in ('one', 'two', 'three'):
        a.expect(w)
    a.expect_none(0.3)


def client_case(steps):
    def run(folder):
        ref = Peer(PORT)
        prog = Program(folder, ['python3', 'udp_client.py'])
        try:
            steps(prog, ref)
        finally:
            prog.kill()
            ref.s.close()
    return run


def sends_typed(prog, ref):
    prog.write_stdin('hello udp\n')
    ref.expect('hello udp')


def prints_reply(prog, ref):
    prog.write_stdin('ping\n')
    ref.expect('ping')
    ref.send('pong-4711', ref.last_from)
    prog.expect_stdout('pong-4711')


def empty_line(prog, ref):
    prog.write_stdin('x\n')
    ref.expect('x')
    ref.send('X', ref.last_from)
    prog.write_stdin('\n')
    prog.expect_exit(code=0)


CASES = [
    ('echoes a datagram', server_case(echo), True),
    ('answers from the port it is bound to', server_case(same_port), True),
    ('answers each sender at its own address', server_case(each_sender), True),
    ('echoes a long datagram whole', server_case(long_one), True),
    ('one answer per datagram', server_case(one_per), True),
    ('sends what the user typed as one datagram', client_case(sends_typed), True),
    ('prints the reply', client_case(prints_reply), True),
    ('ends on an empty line', client_case(empty_line), True),
]

if __name__ == '__main__':
    main_for(CASES, 'fixtures/udp', 'specs/../fixtures/udp/udp-basics.expect')
