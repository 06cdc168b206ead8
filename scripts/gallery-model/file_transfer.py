"""Model of specs/file-transfer.toml (see model.py). The namespace caps TCP send
buffers at 64 KiB (the proposed `send_buffer`), which is what makes a send() of 1 MiB short."""
import hashlib
import random
import struct
from model import *

PORT = 23456
BIG = random.Random('student-42-big.bin').randbytes(1 << 20)  # the spec's seeded random file


def server_case(steps):
    def run(folder):
        prog = Program(folder, ['python3', 'file_server.py'])
        try:
            wait_bound(prog, PORT)
            steps(prog)
        finally:
            prog.kill()
    return run


def expect_file(prog, name, data):
    got = prog.file(name)
    check(got is not None, '%s was not written' % name)
    check(got == data, '%s has %d bytes (sha256 %s), expected %d (sha256 %s)' % (
        name, len(got), hashlib.sha256(got).hexdigest()[:12], len(data), hashlib.sha256(data).hexdigest()[:12]))


def small(prog):
    c = Conn.connect(PORT)
    c.send(bytes.fromhex('0000000b') + b'hello world')
    c.expect_exact('OK 11\n')
    c.expect_close()
    expect_file(prog, 'received.bin', b'hello world')


def big_in_pieces(prog):
    c = Conn.connect(PORT)
    data = struct.pack('!I', len(BIG)) + BIG
    c.send_pieces([data[i:i + 65536] for i in range(0, len(data), 65536)], 0.02)
    c.expect_exact('OK 1048576\n', within=5)
    c.expect_close()
    expect_file(prog, 'received.bin', BIG)


def split_header(prog):
    c = Conn.connect(PORT)
    c.send_pieces([b'\x00\x00', b'\x00\x05hello'], 0.1)
    c.expect_exact('OK 5\n')
    expect_file(prog, 'received.bin', b'hello')


def empty(prog):
    c = Conn.connect(PORT)
    c.send(b'\x00\x00\x00\x00')
    c.expect_exact('OK 0\n')
    c.expect_close()
    expect_file(prog, 'received.bin', b'')


def next_upload(prog):
    for text in (b'first file', b'the second file'):
        c = Conn.connect(PORT)
        c.send(struct.pack('!I', len(text)) + text)
        c.expect_exact('OK %d\n' % len(text))
        c.expect_close()
        expect_file(prog, 'received.bin', text)


def client_case(files, args, steps):
    def run(folder):
        ls = listener(PORT, rcvbuf=4096)
        prog = Program(folder, ['python3', 'file_client.py'] + args, files=files)
        try:
            c = accept(ls, prog)
            steps(prog, c)
        finally:
            prog.kill()
            ls.close()
    return run


def header_then_bytes(prog, c):
    c.expect_exact(bytes.fromhex('0000000b') + b'hello world')
    c.send('OK 11\n')
    c.close()
    prog.expect_stdout('OK 11')
    prog.expect_exit(code=0)


def whole_mib(prog, c):
    total, digest = c.expect_count(len(BIG) + 4, within=10, slow=(16384, 0.01))
    check(total == len(BIG) + 4, 'received %d bytes, expected %d (4 + big.bin)' % (total, len(BIG) + 4))
    c.send('OK 1048576\n')
    c.close()
    prog.expect_exit(code=0)


def prints_reply(prog, c):
    c.expect_until(b'notes')
    c.send('OK 5\n')
    c.close()
    prog.expect_stdout('OK 5')
    prog.expect_exit(code=0)


CASES = [
    ('stores a small file and answers OK with its size', server_case(small), True),
    ('stores 1 MiB sent in pieces', server_case(big_in_pieces), True),
    ('a header split across two segments', server_case(split_header), True),
    ('an empty file', server_case(empty), True),
    ('serves the next upload', server_case(next_upload), True),
    ('sends a 4-byte big-endian length, then the file', client_case({'data.bin': b'hello world'}, ['data.bin'], header_then_bytes), True),
    ('sends all of a 1 MiB file to a slow reader', client_case({'big.bin': BIG}, ['big.bin'], whole_mib), True),
    ('prints the server\'s answer and exits', client_case({'notes.txt': b'notes'}, ['notes.txt'], prints_reply), True),
]

if __name__ == '__main__':
    main_for(CASES, 'fixtures/gallery/file-transfer', 'specs/file-transfer.expect', wmem_max=65536)
