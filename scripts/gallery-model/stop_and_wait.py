"""Model of specs/stop-and-wait.toml (see model.py)."""
import random
import struct
from model import *

PORT = 21568
RECEIVER = ('127.0.0.1', PORT)
DATA = random.Random('student-42-data.bin').randbytes(2500)
CHUNKS = [DATA[i:i + 1000] for i in range(0, len(DATA), 1000)]


def D(seq, payload):
    return b'D' + struct.pack('!I', seq) + payload


def E(seq):
    return b'E' + struct.pack('!I', seq)


def A(seq):
    return b'A' + struct.pack('!I', seq)


# ── receiver cases: the reference is the sender ──

def receiver_case(steps):
    def run(folder):
        prog = Program(folder, ['python3', 'saw_receiver.py'])
        try:
            wait_bound(prog, PORT, 'udp')
            steps(prog)
        finally:
            prog.kill()
    return run


def expect_file(prog, data):
    got = prog.file('received.bin')
    check(got is not None, 'received.bin was not written')
    check(got == data, 'received.bin has %d bytes, expected %d' % (len(got), len(data)))


def in_order(prog):
    p = Peer()
    for seq, chunk in enumerate(CHUNKS):
        p.send(D(seq, chunk), RECEIVER)
        p.expect(A(seq), frm=RECEIVER)
    p.send(E(len(CHUNKS)), RECEIVER)
    p.expect(A(len(CHUNKS)), frm=RECEIVER)
    prog.expect_stdout('received 2500 bytes')
    expect_file(prog, DATA)


def duplicate(prog):
    p = Peer()
    p.send(D(0, CHUNKS[0]), RECEIVER)
    p.expect(A(0))
    p.send(D(0, CHUNKS[0]), RECEIVER)   # fault: our DATA 0 duplicated
    p.expect(A(0))
    p.send(D(1, CHUNKS[1]), RECEIVER)
    p.expect(A(1))
    p.send(E(2), RECEIVER)
    p.expect(A(2))
    prog.expect_stdout('received 2000 bytes')
    expect_file(prog, DATA[:2000])


def lost_ack(prog):
    p = Peer()
    p.send(D(0, CHUNKS[0]), RECEIVER)
    p.expect(A(0))
    p.send(D(1, CHUNKS[1]), RECEIVER)
    check(p.recv(2.0) == A(1), 'no ACK 1')   # fault: the student's 2nd datagram is "lost"
    p.expect_none(0.3)                        # the reference's retransmission timeout
    p.send(D(1, CHUNKS[1]), RECEIVER)
    p.expect(A(1))
    p.send(E(2), RECEIVER)
    p.expect(A(2))
    expect_file(prog, DATA[:2000])


# ── sender cases: the reference is the receiver ──

def sender_case(steps):
    def run(folder):
        ref = Peer(PORT)
        prog = Program(folder, ['python3', 'saw_sender.py', 'data.bin'], files={'data.bin': DATA})
        try:
            steps(prog, ref)
        finally:
            prog.kill()
            ref.s.close()
    return run


def numbered(prog, ref):
    for seq, chunk in enumerate(CHUNKS):
        ref.expect(D(seq, chunk))
        ref.send(A(seq), ref.last_from)
    ref.expect(E(len(CHUNKS)))
    ref.send(A(len(CHUNKS)), ref.last_from)
    prog.expect_exit(code=0)


def retransmits(prog, ref):
    ref.expect(D(0, CHUNKS[0]))
    ref.send(A(0), ref.last_from)
    ref.expect(D(1, CHUNKS[1]))              # fault: dropped, no ACK
    ref.expect(D(1, CHUNKS[1]), within=1.5)  # must come again
    ref.send(A(1), ref.last_from)
    ref.expect(D(2, CHUNKS[2]))
    ref.send(A(2), ref.last_from)
    ref.expect(E(3))
    ref.send(A(3), ref.last_from)
    prog.expect_exit(code=0)


def lossy(prog, ref):
    """The built-in reference receiver, dropping the student's 2nd and 5th datagrams."""
    expected, got, n, end = 0, b'', 0, time.monotonic() + 10
    while time.monotonic() < end:
        pkt = ref.recv(end - time.monotonic())
        if pkt is None:
            break
        n += 1
        if n in (2, 5):
            continue
        kind, seq = pkt[:1], struct.unpack('!I', pkt[1:5])[0]
        if kind == b'D' and seq == expected:
            got += pkt[5:]
            expected += 1
        if kind == b'E' and seq == expected:
            expected += 1
        if seq < expected:
            ref.send(A(seq), ref.last_from)
        if kind == b'E' and seq == expected - 1:
            break
    check(got == DATA, 'the reference received %d of %d bytes (%d datagrams, 2nd and 5th dropped)'
          % (len(got), len(DATA), n))
    prog.expect_exit(code=0)


CASES = [
    ('receives a file in order', receiver_case(in_order), True),
    ('keeps a duplicate packet once', receiver_case(duplicate), True),
    ('acknowledges again when its ACK is lost', receiver_case(lost_ack), True),
    ('sends the file in numbered packets', sender_case(numbered), True),
    ('retransmits a lost packet', sender_case(retransmits), True),
    ('sends a whole file over a lossy network', sender_case(lossy), True),
]

if __name__ == '__main__':
    main_for(CASES, 'fixtures/udp', 'specs/../fixtures/udp/stop-and-wait.expect')
