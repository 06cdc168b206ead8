"""Model of specs/chat.toml (see model.py)."""
import os
from model import *

PORT = 25555


def settled(prog, threads, within=2.0):
    """Waits until the server has `threads` threads, all asleep (a thread per client is
    started after the client joined the list): the model's `expect_accepted`."""
    end = time.monotonic() + within
    d = '/proc/%d/task' % prog.p.pid
    while True:
        try:
            tasks = os.listdir(d)
            states = [open('%s/%s/stat' % (d, t)).read().rsplit(')', 1)[1].split()[0] for t in tasks]
        except OSError:
            states = []
        if len(states) == threads and all(s == 'S' for s in states):
            return
        check(time.monotonic() < end, 'server has %d threads (%s), expected %d asleep' % (len(states), states, threads))
        time.sleep(0.005)  # /proc has no event to wait on; this is the harness, not the grader


def server_case(steps):
    def run(folder):
        prog = Program(folder, ['python3', 'chat_server.py'])
        try:
            wait_bound(prog, PORT)
            steps(prog)
        finally:
            prog.kill()
    return run


def join(prog, n):
    conns = [Conn.connect(PORT) for _ in range(n)]
    settled(prog, 1 + n)
    return conns


def to_other(prog):
    a, b = join(prog, 2)
    a.send('hi B\n')
    b.expect_exact('hi B\n')


def not_back(prog):
    a, b = join(prog, 2)
    a.send('only for others\n')
    b.expect_exact('only for others\n')
    a.expect_nothing(0.3)


def to_all(prog):
    a, b, c = join(prog, 3)
    # `contains`, not `exact`: an echo back to the sender is another case's business.
    import re
    a.send('hello all\n')
    b.expect_regex(re.escape('hello all\n'), '"hello all"')
    c.expect_regex(re.escape('hello all\n'), '"hello all"')
    c.send('from C\n')
    a.expect_regex(re.escape('from C\n'), '"from C"')
    b.expect_regex(re.escape('from C\n'), '"from C"')


def order(prog):
    a, b = join(prog, 2)
    for w in ('one', 'two', 'three'):
        a.send(w + '\n')
    b.expect_exact('one\ntwo\nthree\n')


def leaving(prog):
    a, b, c = join(prog, 3)
    b.close()
    time.sleep(0.2)  # the spec's `pause = "200ms"`: B left a moment ago
    a.send('still there?\n')
    c.expect_exact('still there?\n')
    a.send('hello?\n')
    c.expect_exact('hello?\n')


CASES = [
    ('a line reaches the other client', server_case(to_other), True),
    ('the sender does not get its own line back', server_case(not_back), True),
    ('a line reaches every other client', server_case(to_all), True),
    ('lines arrive in the order they were sent', server_case(order), True),
    ('one client leaving does not break the chat', server_case(leaving), True),
]

if __name__ == '__main__':
    main_for(CASES, 'fixtures/gallery/chat', 'specs/chat.expect')
