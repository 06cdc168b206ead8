"""Model of specs/echo-quit.toml (see model.py)."""
import random
import threading
from model import *

PORT = 21567


def server_case(steps):
    def run(folder):
        prog = Program(folder, ['python3', 'echo_server.py'])
        try:
            wait_bound(prog, PORT)
            steps(prog)
        finally:
            prog.kill()
    return run


def upper(prog):
    c = Conn.connect(PORT)
    c.send('hello world\n')
    c.expect_exact('HELLO WORLD\n')


def several(prog):
    c = Conn.connect(PORT)
    for w in ('first', 'second', 'third'):
        c.send(w + '\n')
        c.expect_exact(w.upper() + '\n')
    c.send('one\ntwo\n')
    c.expect_exact('ONE\nTWO\n')
    c.expect_open(0.3)


def whole_line(prog):
    c = Conn.connect(PORT)
    c.send('hel')
    c.expect_nothing(0.3)
    c.send('lo\n')
    c.expect_exact('HELLO\n')


def quit_in_pieces(prog):
    c = Conn.connect(PORT)
    c.send_pieces(['QU', 'IT\n'], 0.1)
    c.expect_exact('BYE\n')
    c.expect_close()


def quit_closes(prog):
    c = Conn.connect(PORT)
    c.send('hi\n')
    c.expect_exact('HI\n')
    c.send('QUIT\n')
    c.expect_exact('BYE\n')
    c.expect_close()


def quit_only_that(prog):
    a = Conn.connect(PORT)
    a.send('i am first\n')
    a.expect_exact('I AM FIRST\n')
    b = Conn.connect(PORT)
    b.send('i am second\n')
    b.expect_exact('I AM SECOND\n')
    a.send('QUIT\n')
    a.expect_exact('BYE\n')
    a.expect_close()
    b.send('still here\n')
    b.expect_exact('STILL HERE\n')
    b.expect_open(0.3)


def two_at_once(prog):
    a = Conn.connect(PORT)
    a.send('first\n')
    a.expect_exact('FIRST\n')
    b = Conn.connect(PORT)
    b.send('second\n')
    b.expect_exact('SECOND\n', within=1.0)
    a.send('first again\n')
    a.expect_exact('FIRST AGAIN\n')


def five_at_once(prog):
    rng = random.Random('student-42')  # the spec's seeded random word, per student
    words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(8)) for _ in range(5)]
    conns = [Conn.connect(PORT) for _ in words]
    errors = []

    def client(c, w):
        try:
            c.send('%s\n' % w)
            c.expect_exact('%s\n' % w.upper(), within=1.0)
        except CaseFailed as e:
            errors.append('client with %s: %s' % (w, e))
    ts = [threading.Thread(target=client, args=cw) for cw in zip(conns, words)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, '; '.join(errors))


CASES = [
    ('replies with the line in upper case', server_case(upper), True),
    ('answers every line on one connection', server_case(several), True),
    ('waits for the whole line', server_case(whole_line), True),
    ('QUIT sent in pieces still quits', server_case(quit_in_pieces), True),
    ('QUIT says BYE and closes', server_case(quit_closes), True),
    ('QUIT closes only that client', server_case(quit_only_that), True),
    ('serves two clients at the same time', server_case(two_at_once), True),
    ('five clients at once each get their own word', server_case(five_at_once), True),
]

if __name__ == '__main__':
    main_for(CASES, 'fixtures/gallery/echo-quit', 'specs/echo-quit.expect')
