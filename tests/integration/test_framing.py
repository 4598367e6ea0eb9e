"""Issue 11: framing as strict as the proxy's.  The same raw bytes go to
astleyd directly and through a real HAProxy (Debian package haproxy, mode
http, astleyd as its backend).  Whatever HAProxy rejects, astleyd must
reject too, with 400 (413 for a chunk size over max_body_size) and a
close.  Framing that two readers split differently is a smuggling hole
when the proxy passes the bytes on as they came, so what HAProxy does not
reject is checked as well: astleyd serves it or answers 400 and closes,
and a GET pipelined after each case (with Connection: close, to end the
exchange) is answered in step.

HAProxy's verdicts, one of:
  REJECTS  HAProxy answers 400 itself (or closes without an answer);
  SERVES   HAProxy forwards the request, framed its own way (chunked
           again, CRLFs, no extensions), and astleyd serves it;
  PASSES   HAProxy forwards the offending bytes as they came, and astleyd
           answers 400 and closes that connection, so nothing after them
           is read as a request.
Where astleyd and HAProxy 2.6.12 (Debian 12) differ, astleyd is the
stricter one, and each difference is harmless:
- SERVES: chunk lines and data ending in a bare LF, and a chunk size
  followed by BWS with no ";" ("5 "): HAProxy's chunk-size grammar is
  1*HEXDIG *WSP [";" ext] [CR] LF, but it sends the body on with CRLFs,
  so astleyd never sees them behind it; directly, astleyd holds to RFC
  9112 7.1 (CRLF; BWS only before a ";", as 7.1.1 has it).
- SERVES: Content-Length with Transfer-Encoding.  RFC 9112 6.1 lets a
  server reject it or go by Transfer-Encoding alone; HAProxy does the
  latter, drops Content-Length before forwarding and closes the client
  connection after the answer.  astleyd rejects it.
- SERVES: obs-fold, in a Transfer-Encoding field or a trailer.  HAProxy
  unfolds it before forwarding (RFC 9112 5.2 lets a proxy do that);
  astleyd rejects it (5.2 lets a server do that).
- PASSES: NUL in a field value or a trailer, and Transfer-Encoding in an
  HTTP/1.0 request: HAProxy 2.6.12 forwards them unchanged.
- REJECTS or PASSES: a non-token byte in a trailer name ("X : y").
  HAProxy 2.6.12 parses trailers with a struct h1m whose err_pos it does
  not initialise (later releases copy it from the message), so whether
  it rejects such a byte or lets it through depends on what was on its
  stack.  astleyd rejects it either way.
The 413 case is a limit, not framing: HAProxy answers 400 for a chunk
size of 2^52 and more, astleyd 413 for one over max_body_size.

Skipped only if haproxy is not installed (scripts/deps test installs
it).  HAProxy runs in the foreground (-db) from a config in a temp dir,
as root or as the test user alike (no user/group directives), and is
stopped and waited for when the class is done.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from astleyd_test import (LEAVE, Response, ServerTestCase, body_length,
                          free_port, wait_for)

HAPROXY = shutil.which('haproxy') or next(
    (p for p in ('/usr/sbin/haproxy', '/usr/local/sbin/haproxy')
     if os.access(p, os.X_OK)), None)

FOLLOW = b'GET /follow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
CHUNKED = b'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
GET = b'GET / HTTP/1.1\r\nHost: x\r\n'
POST = b'POST / HTTP/1.1\r\nHost: x\r\n'

ACCEPT = 'accept'
# HAProxy's verdicts, as the docstring explains them.
REJECTS, SERVES, PASSES = 'rejects', 'serves', 'passes'

# (name, raw request, astleyd's verdict (ACCEPT or a status), HAProxy's)
CASES = (
    # Chunked bodies both accept (RFC 9112 7.1): the controls.
    ('chunked body', CHUNKED + b'5\r\nhello\r\n0\r\n\r\n', ACCEPT, SERVES),
    ('BWS before ;', CHUNKED + b'5 ;a=b\r\nhello\r\n0\t;c\r\n\r\n',
     ACCEPT, SERVES),
    ('trailer', CHUNKED + b'5\r\nhello\r\n0\r\nX-T: v\r\n\r\n',
     ACCEPT, SERVES),
    ('leading zeros', CHUNKED + b'0005\r\nhello\r\n000\r\n\r\n',
     ACCEPT, SERVES),

    # Chunk-size lines.
    ('5 5', CHUNKED + b'5 5\r\nhello\r\n0\r\n\r\n', 400, REJECTS),
    ('5 TAB 5', CHUNKED + b'5\t5\r\nhello\r\n0\r\n\r\n', 400, REJECTS),
    ('extension without ;', CHUNKED + b'5 a=b\r\nhello\r\n0\r\n\r\n',
     400, REJECTS),
    ('junk after the size', CHUNKED + b'5x\r\nhello\r\n0\r\n\r\n',
     400, REJECTS),
    ('last chunk 0 0', CHUNKED + b'5\r\nhello\r\n0 0\r\n\r\n', 400, REJECTS),
    ('0x prefix', CHUNKED + b'0x5\r\nhello\r\n0\r\n\r\n', 400, REJECTS),
    ('no size', CHUNKED + b'\r\nhello\r\n0\r\n\r\n', 400, REJECTS),
    ('bare CR after the size', CHUNKED + b'5\rhello\r\n0\r\n\r\n',
     400, REJECTS),
    ('size over the body limit', CHUNKED + b'ffffffffffffffff\r\n',
     413, REJECTS),
    ('BWS without ;', CHUNKED + b'5 \r\nhello\r\n0\r\n\r\n', 400, SERVES),

    # Line ends in the chunked body: CRLF only.
    ('bare LF after the size', CHUNKED + b'5\nhello\r\n0\r\n\r\n',
     400, SERVES),
    ('bare LF after an extension', CHUNKED + b'5;a\nhello\r\n0\r\n\r\n',
     400, SERVES),
    ('bare LF after the data', CHUNKED + b'5\r\nhello\n0\r\n\r\n',
     400, SERVES),
    ('bare LF after the last chunk', CHUNKED + b'5\r\nhello\r\n0\n\r\n',
     400, SERVES),
    ('bare LF ending the body', CHUNKED + b'5\r\nhello\r\n0\r\n\n',
     400, SERVES),
    ('bare LF after a trailer', CHUNKED + b'0\r\nX: y\n\r\n', 400, SERVES),
    ('bare LF everywhere', CHUNKED + b'5\nhello\n0\nX: y\n\n', 400, SERVES),
    ('no CRLF after the data', CHUNKED + b'5\r\nhelloX0\r\n\r\n',
     400, REJECTS),
    ('more data than the size', CHUNKED + b'3\r\nhello\r\n0\r\n\r\n',
     400, REJECTS),

    # Trailer lines: field lines, name ":" value.
    ('trailer without a colon', CHUNKED + b'0\r\nX y\r\n\r\n', 400, REJECTS),
    ('trailer name alone', CHUNKED + b'0\r\nX\r\n\r\n', 400, REJECTS),
    # HAProxy 2.6.12 may take these either way (see the docstring).
    ('space before a trailer colon', CHUNKED + b'0\r\nX : y\r\n\r\n',
     400, (REJECTS, PASSES)),
    ('( in a trailer name', CHUNKED + b'0\r\nX(: y\r\n\r\n',
     400, (REJECTS, PASSES)),
    ('empty trailer name', CHUNKED + b'0\r\n: y\r\n\r\n', 400, REJECTS),
    ('bare CR in a trailer', CHUNKED + b'0\r\nX: a\rb\r\n\r\n',
     400, REJECTS),
    ('NUL in a trailer', CHUNKED + b'0\r\nX: a\0b\r\n\r\n', 400, PASSES),
    ('obs-fold in a trailer', CHUNKED + b'0\r\nA: 1\r\n b\r\n\r\n',
     400, SERVES),

    # Message framing in the head (RFC 9112 6.1, 6.3).
    ('TE and CL', POST + b'Transfer-Encoding: chunked\r\n'
     b'Content-Length: 3\r\n\r\n0\r\n\r\n', 400, SERVES),
    ('CL and TE', POST + b'Content-Length: 3\r\n'
     b'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, SERVES),
    ('CL differs', POST + b'Content-Length: 3\r\nContent-Length: 4\r\n\r\n'
     b'abcd', 400, REJECTS),
    ('CL list differs', POST + b'Content-Length: 3, 4\r\n\r\nabcd',
     400, REJECTS),
    ('CL list agrees', POST + b'Content-Length: 3, 3\r\n\r\nabc',
     ACCEPT, SERVES),
    ('CL with a sign', POST + b'Content-Length: +3\r\n\r\nabc', 400, REJECTS),
    ('CL with a space inside', POST + b'Content-Length: 3 3\r\n\r\nabc',
     400, REJECTS),
    ('TE chunked, gzip', POST + b'Transfer-Encoding: chunked, gzip\r\n\r\n'
     b'0\r\n\r\n', 400, REJECTS),
    ('TE gzip alone', POST + b'Transfer-Encoding: gzip\r\n\r\nabc',
     400, REJECTS),
    ('TE chunked twice', POST + b'Transfer-Encoding: chunked, chunked'
     b'\r\n\r\n0\r\n\r\n', 400, REJECTS),
    ('TE with space before the colon', POST + b'Transfer-Encoding : '
     b'chunked\r\n\r\n0\r\n\r\n', 400, REJECTS),
    ('TE by obs-fold', POST + b'Transfer-Encoding:\r\n chunked\r\n\r\n'
     b'0\r\n\r\n', 400, SERVES),
    ('TE in HTTP/1.0', b'POST / HTTP/1.0\r\nTransfer-Encoding: chunked'
     b'\r\n\r\n0\r\n\r\n', 400, PASSES),

    # Bare CR in fields other than Host, and NUL (RFC 9112 2.2, 5.5).
    ('bare CR in a field', GET + b'X: a\rb\r\n\r\n', 400, REJECTS),
    ('CR CR LF ending a field', GET + b'X: a\r\r\n\r\n', 400, REJECTS),
    ('bare CR ending TE', POST + b'Transfer-Encoding: chunked\r\r\n\r\n'
     b'0\r\n\r\n', 400, REJECTS),
    ('NUL in a field', GET + b'X: a\0b\r\n\r\n', 400, PASSES),
    ('bare LF head', b'GET / HTTP/1.1\nHost: x\n\n', ACCEPT, SERVES),
)


class Outcome:
    """What a client got for one case: the answers up to the close."""

    def __init__(self, data, reset):
        self.responses = []
        self.reset = reset
        rest = data
        while b'\r\n\r\n' in rest:
            i = rest.index(b'\r\n\r\n') + 4
            r = Response(rest[:i], b'')
            n = body_length('GET', r)
            r.body, rest = rest[i:i + n], rest[i + n:]
            self.responses.append(r)
        self.trailing = rest

    @property
    def first(self):
        return self.responses[0] if self.responses else None

    @staticmethod
    def source(r):
        """Who wrote response R: astleyd, or HAProxy itself."""
        return 'astleyd' if (r.get('Server') or '').lower() == 'astleyd' \
            else 'haproxy'

    def proxy_verdict(self, ok_status):
        """REJECTS, SERVES or PASSES for an answer through HAProxy, else
        a description of the unexpected."""
        r = self.first
        if r is None or (self.source(r) == 'haproxy' and r.status == 400):
            return REJECTS
        if self.source(r) == 'astleyd' and r.status == ok_status:
            return SERVES
        # HAProxy keeps its client connection: astleyd's Connection:
        # close is hop-by-hop and does not reach the client.
        if self.source(r) == 'astleyd' and r.status == 400:
            return PASSES
        return str(self)

    def __str__(self):
        if not self.responses:
            return 'closed, no answer' + (' (reset)' if self.reset else '')
        return ', '.join('%d from %s' % (r.status, self.source(r))
                         for r in self.responses) + ', then closed'


class FramingTest(ServerTestCase):
    SERVER = dict(workers=1)

    @classmethod
    def setUpClass(cls):
        if HAPROXY is None:
            raise unittest.SkipTest('haproxy is not installed (Debian '
                                    'package haproxy; scripts/deps test)')
        super().setUpClass()
        cls.hdir = tempfile.mkdtemp(prefix='astleyd-haproxy-')
        cls.addClassCleanup(cls.remove_hdir)
        cls.hport = free_port()
        cfg = os.path.join(cls.hdir, 'haproxy.cfg')
        with open(cfg, 'w') as f:
            # No user/group: it runs as whoever runs the test.  Timeouts
            # below the client's, so a case HAProxy waits on still ends.
            f.write('global\n'
                    '\tmaxconn 64\n'
                    '\tnbthread 1\n'
                    'defaults\n'
                    '\tmode http\n'
                    '\ttimeout connect 3s\n'
                    '\ttimeout client 3s\n'
                    '\ttimeout server 3s\n'
                    'frontend fe\n'
                    '\tbind 127.0.0.1:%d\n'
                    '\tdefault_backend be\n'
                    'backend be\n'
                    '\tserver astleyd %s:%d\n'
                    % (cls.hport, cls.srv.host, cls.srv.port))
        cls.hlogpath = os.path.join(cls.hdir, 'haproxy.log')
        with open(cls.hlogpath, 'wb') as log:
            cls.haproxy = subprocess.Popen(
                [HAPROXY, '-db', '-f', cfg], cwd=cls.hdir,
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        cls.addClassCleanup(cls.stop_haproxy)
        if not wait_for(cls.haproxy_ready, 10):
            raise AssertionError('haproxy not listening on %d\n%s' %
                                 (cls.hport, cls.haproxy_log()))

    @classmethod
    def haproxy_ready(cls):
        if cls.haproxy.poll() is not None:
            raise AssertionError('haproxy exited with %d\n%s' %
                                 (cls.haproxy.returncode, cls.haproxy_log()))
        try:
            socket.create_connection(('127.0.0.1', cls.hport), 1).close()
            return True
        except OSError:
            return False

    @classmethod
    def haproxy_log(cls):
        with open(cls.hlogpath, 'rb') as f:
            return f.read().decode(errors='replace')

    @classmethod
    def stop_haproxy(cls):
        """SIGTERM is HAProxy's hard stop; it must be gone after it."""
        if cls.haproxy.poll() is None:
            cls.haproxy.send_signal(signal.SIGTERM)
            try:
                cls.haproxy.wait(10)
            except subprocess.TimeoutExpired:
                cls.haproxy.kill()
                cls.haproxy.wait(5)
                raise AssertionError('haproxy ignored SIGTERM for 10s')

    @classmethod
    def remove_hdir(cls):
        if LEAVE:
            sys.stderr.write('ASTLEYD_TEST_LEAVE: kept %s\n' % cls.hdir)
        else:
            shutil.rmtree(cls.hdir, ignore_errors=True)

    def exchange(self, port, raw):
        """Send RAW and the closing GET at once; read until the close."""
        s = socket.create_connection(('127.0.0.1', port), 5)
        self.addCleanup(s.close)
        s.settimeout(10)
        s.sendall(raw + FOLLOW)
        data, reset = b'', False
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        except ConnectionResetError:
            reset = True
        except socket.timeout:
            self.fail('no close within 10s; received %r' % data[:300])
        return Outcome(data, reset)

    def test_framing_verdicts(self):
        for name, raw, want, proxy in CASES:
            with self.subTest(case=name):
                self.check_case(name, raw, want, proxy)
        self.assertIsNone(self.haproxy.poll(), 'haproxy died\n%s' %
                          self.haproxy_log())

    def check_case(self, name, raw, want, proxy):
        ok = 405 if raw.startswith(b'POST') else 200
        direct = self.exchange(self.srv.port, raw)
        via = self.exchange(self.hport, raw)
        verdict = via.proxy_verdict(ok)
        why = '%s: astleyd %s; via HAProxy %s' % (name, direct, via)

        # astleyd's own verdict, as the unit tests have it: served and in
        # step for the pipelined GET, or refused and closed.
        r = direct.first
        self.assertIsNotNone(r, why)
        if want == ACCEPT:
            self.assertEqual([x.status for x in direct.responses], [ok, 200],
                             why)
            self.assertEqual(direct.responses[1].body[:4], b'\n\nWe', why)
        else:
            self.assertError(r, want, {400: 'Bad Request',
                                       413: 'Content Too Large'}[want])
            self.assertEqual(len(direct.responses), 1, why)
            self.assertEqual(direct.trailing, b'', why)

        # The requirement: whatever HAProxy rejects, astleyd rejects.
        if verdict == REJECTS:
            self.assertNotEqual(want, ACCEPT, why)
            self.assertEqual(direct.source(r), 'astleyd', why)
            self.assertIn(r.status, (400, 413), why)
            self.assertEqual(r.get('Connection'), 'close', why)
        # What HAProxy passes on, astleyd serves or refuses with a close;
        # an answer after it is the pipelined GET's, so the two stayed in
        # step.
        for x in via.responses[1:]:
            self.assertEqual((via.source(x), x.status), ('astleyd', 200),
                             why)
        if want == ACCEPT:
            self.assertEqual(verdict, SERVES, why)
            self.assertEqual(len(via.responses), 2, why)
        # Keeps the table, and the differences in the docstring, true.
        self.assertIn(verdict, proxy if isinstance(proxy, tuple) else
                      (proxy,), 'not the documented HAProxy verdict: ' + why)


if __name__ == '__main__':
    unittest.main()
