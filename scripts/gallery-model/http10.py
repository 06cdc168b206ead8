"""Model of specs/http10.toml (see model.py)."""
from model import *

PORT = 28080
FILES = {'www/index.html': b'<h1>Welcome</h1>\n', 'www/hello.txt': b'hello, web\n'}
OK = (r'^HTTP/1\.[01] 200', 'a status line "HTTP/1.0 200 OK"')


def server_case(steps):
    def run(folder):
        prog = Program(folder, ['python3', 'http_server.py'], files=FILES)
        try:
            wait_bound(prog, PORT)
            steps(prog)
        finally:
            prog.kill()
    return run


def get(path):
    c = Conn.connect(PORT)
    c.send('GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' % path)
    return c


def ok200(prog):
    c = get('/hello.txt')
    c.expect_regex(*OK)
    c.expect_regex(r'\r\n\r\nhello, web\n', 'the file after the blank line')


def length(prog):
    c = get('/hello.txt')
    c.expect_regex(r'(?i)\r\ncontent-length: *11\r\n', 'a header "Content-Length: 11"')


def missing(prog):
    c = get('/nosuchfile.html')
    c.expect_regex(r'^HTTP/1\.[01] 404', 'a status line "HTTP/1.0 404 Not Found"')


def closes(prog):
    c = get('/hello.txt')
    c.expect_until(b'\r\n\r\n')
    c.expect_exact('hello, web\n')
    c.expect_close()


def blank_line(prog):
    c = Conn.connect(PORT)
    c.send('GET /hello.txt HTTP/1.0\r\nHost: localhost\r\n')
    c.expect_nothing(0.5)
    c.send('\r\n')
    c.expect_regex(*OK)


def pieces(prog):
    c = Conn.connect(PORT)
    c.send_pieces(['GET /hel', 'lo.txt HTTP/1.0\r\n', '\r\n'], 0.1)
    c.expect_regex(*OK)
    c.expect_regex(r'hello, web\n', 'the file')


def index(prog):
    c = get('/')
    c.expect_regex(*OK)
    c.expect_regex(r'<h1>Welcome</h1>', 'the content of index.html')


CASES = [
    ('serves a file with status 200', server_case(ok200), True),
    ('sends a Content-Length that matches the body', server_case(length), True),
    ('answers 404 for a missing file', server_case(missing), True),
    ('closes the connection after the response', server_case(closes), True),
    ('waits for the blank line that ends the request', server_case(blank_line), True),
    ('a request line in pieces', server_case(pieces), True),
    ('serves / as index.html', server_case(index), True),
]

if __name__ == '__main__':
    main_for(CASES, 'fixtures/gallery/http10', 'specs/http10.expect')
