"""Model of specs/kv-store.toml (see model.py)."""
import random
from model import *

PORT = 26379


def server_case(steps):
    def run(folder):
        prog = Program(folder, ['python3', 'kv_server.py'])
        try:
            wait_bound(prog, PORT)
            steps(prog)
        finally:
            prog.kill()
    return run


def talk(c, line, answer):
    c.send(line + '\n')
    c.expect_exact(answer + '\n')


def set_get(prog):
    c = Conn.connect(PORT)
    talk(c, 'SET name Ada', 'OK')
    talk(c, 'GET name', 'VALUE Ada')


def get_missing(prog):
    c = Conn.connect(PORT)
    talk(c, 'GET nosuchkey', 'NOT_FOUND')
    talk(c, 'SET x 1', 'OK')


def delete(prog):
    c = Conn.connect(PORT)
    talk(c, 'SET color red', 'OK')
    talk(c, 'DEL color', 'DELETED')
    talk(c, 'DEL color', 'NOT_FOUND')


def across(prog):
    rng = random.Random('student-42')
    key = 'k' + ''.join(rng.choice('abcdefgh') for _ in range(6))
    value = ''.join(rng.choice('0123456789') for _ in range(6))
    a = Conn.connect(PORT)
    talk(a, 'SET %s %s' % (key, value), 'OK')
    a.close()
    b = Conn.connect(PORT)
    talk(b, 'GET ' + key, 'VALUE ' + value)


def whole_line(prog):
    c = Conn.connect(PORT)
    c.send('SET na')
    c.expect_nothing(0.3)
    c.send('me Ada\n')
    c.expect_exact('OK\n')
    talk(c, 'GET name', 'VALUE Ada')


def two_in_one(prog):
    c = Conn.connect(PORT)
    c.send('SET a 1\nGET a\n')
    c.expect_exact('OK\nVALUE 1\n')


def spaces(value):
    def run(prog):
        c = Conn.connect(PORT)
        talk(c, 'SET greeting ' + value, 'OK')
        talk(c, 'GET greeting', 'VALUE ' + value)
    return run


def unknown(prog):
    c = Conn.connect(PORT)
    talk(c, 'FLY away', 'ERROR')


CASES = [
    ('SET then GET on one connection', server_case(set_get), True),
    ('GET of a missing key says NOT_FOUND', server_case(get_missing), True),
    ('DEL removes a key', server_case(delete), True),
    ('values are kept across connections', server_case(across), True),
    ('waits for the whole line', server_case(whole_line), True),
    ('two commands in one segment', server_case(two_in_one), True),
    ('a value may hold spaces: hello big world', server_case(spaces('hello big world')), True),
    ('a value may hold spaces: naïve café', server_case(spaces('naïve café')), True),
    ('an unknown command says ERROR', server_case(unknown), True),
]

if __name__ == '__main__':
    main_for(CASES, 'fixtures/gallery/kv-store', 'specs/kv-store.expect')
