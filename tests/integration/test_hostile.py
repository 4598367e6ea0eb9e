"""Issue 4 on the wire, on both ports: framing that could be read two ways
closes, discarded bodies (Content-Length and chunked) keep pipelining in
step, conditional GET, OPTIONS, 505, bad escapes, absolute-form."""

import unittest

from astleyd_test import ServerTestCase, connect

GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'


class HostileTest(ServerTestCase):
    SERVER = dict(workers=2, extra={'max_body_size': '1k'})

    def ports(self):
        return ((self.srv.port, False), (self.srv.tls_port, True))

    def conn(self, port, tls):
        c = connect(port, tls=tls)
        self.addCleanup(c.close)
        return c

    def etag(self):
        c = self.conn(self.srv.port, False)
        c.send(GET)
        r = c.read_response()
        self.assertRegex(r.get('ETag'), r'^"[0-9a-f]{16}"$')
        return r.get('ETag')

    def test_chunked_body_discarded_then_pipelined(self):
        body = ('5;ext=1\r\nhello\r\n'
                '1a\r\n' + 'x' * 26 + '\r\n'
                '0\r\nTrailer: yes\r\n\r\n')
        req = ('POST /up HTTP/1.1\r\nHost: x\r\n'
               'Transfer-Encoding: chunked\r\n\r\n' + body + GET)
        for port, tls in self.ports():
            with self.subTest(tls=tls):
                c = self.conn(port, tls)
                c.send(req)
                self.assertEqual(c.read_response().status, 405)
                self.assertLyrics(c.read_response())
                self.assertOpen(c)

    def test_chunked_body_byte_by_byte(self):
        req = ('GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked'
               '\r\n\r\n3\r\nabc\r\n0\r\n\r\n' + GET)
        for port, tls in self.ports():
            with self.subTest(tls=tls):
                c = self.conn(port, tls)
                for ch in req:
                    c.send(ch)
                self.assertLyrics(c.read_response())
                self.assertLyrics(c.read_response())
                self.assertOpen(c)

    def test_content_length_body_discarded(self):
        req = ('HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n'
               'hello world' + GET)
        for port, tls in self.ports():
            with self.subTest(tls=tls):
                c = self.conn(port, tls)
                c.send(req)
                self.assertLyrics(c.read_response('HEAD'), head=True)
                self.assertLyrics(c.read_response())
                self.assertOpen(c)

    def test_chunked_body_over_limit_413(self):
        req = ('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked'
               '\r\n\r\n800\r\n' + 'y' * 2048 + '\r\n0\r\n\r\n')
        for port, tls in self.ports():
            with self.subTest(tls=tls):
                c = self.conn(port, tls)
                c.send(req)
                self.assertError(c.read_response(), 413, 'Content Too Large')
                self.assertClosed(c)

    def test_ambiguous_framing_400_and_close(self):
        cases = {
            'TE and CL': 'Transfer-Encoding: chunked\r\nContent-Length: 3',
            'CL differs': 'Content-Length: 3\r\nContent-Length: 4',
            'CL list differs': 'Content-Length: 3, 4',
            'CL not digits': 'Content-Length: +3',
            'TE not chunked last': 'Transfer-Encoding: chunked, gzip',
            'TE unknown': 'Transfer-Encoding: gzip',
            'bad chunk size': 'Transfer-Encoding: chunked\r\n\r\nzz',
        }
        for port, tls in self.ports():
            for name, fields in cases.items():
                with self.subTest(tls=tls, case=name):
                    c = self.conn(port, tls)
                    head, _, rest = fields.partition('\r\n\r\n')
                    c.send('POST / HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n%s%s'
                           % (head, rest + '\r\n' if rest else 'abc', GET))
                    self.assertError(c.read_response(), 400, 'Bad Request')
                    self.assertClosed(c)

    def test_te_in_http10_400(self):
        c = self.conn(self.srv.port, False)
        c.send('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n'
               '0\r\n\r\n')
        self.assertError(c.read_response(), 400, 'Bad Request')
        self.assertClosed(c)

    def test_conditional_get_304(self):
        etag = self.etag()
        cases = (
            ('If-None-Match: %s' % etag, 304),
            ('If-None-Match: "other", W/%s' % etag, 304),
            ('If-None-Match: *', 304),
            ('If-None-Match: "other"', 200),
            ('If-Modified-Since: Mon, 27 Jul 1987 00:00:00 GMT', 304),
            ('If-Modified-Since: Tue, 28 Jul 1987 00:00:00 GMT', 304),
            ('If-Modified-Since: Sunday, 26-Jul-87 23:59:59 GMT', 200),
            ('If-Modified-Since: Mon Jul 27 00:00:00 1987', 304),
            ('If-Modified-Since: not a date', 200),
            ('If-Modified-Since: Sun, 29 Feb 1987 00:00:00 GMT', 200),
            # If-None-Match decides alone when present (RFC 9110 13.2.2).
            ('If-None-Match: "other"\r\n'
             'If-Modified-Since: Mon, 27 Jul 1987 00:00:00 GMT', 200),
        )
        for port, tls in self.ports():
            c = self.conn(port, tls)
            for method in ('GET', 'HEAD'):
                for field, want in cases:
                    with self.subTest(tls=tls, method=method, field=field):
                        c.send('%s / HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n' %
                               (method, field))
                        r = c.read_response(method if want == 200 else 'HEAD')
                        if want == 200:
                            self.assertLyrics(r, head=method == 'HEAD')
                            continue
                        self.assertEqual(r.status_line,
                                         'HTTP/1.1 304 Not Modified', r)
                        self.assertEqual(r.get('ETag'), etag)
                        self.assertEqual(sorted(r.names()),
                                         ['Date', 'ETag', 'Last-Modified',
                                          'Server'], r.head)
            self.assertOpen(c)

    def test_expect_100_continue(self):
        # RFC 9110 10.1.1: a client waiting for 100 before it sends the
        # body gets it, then the answer; with the body already sent, no
        # 100 is needed and none comes.
        for port, tls in self.ports():
            with self.subTest(tls=tls):
                c = self.conn(port, tls)
                c.send('GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue'
                       '\r\nContent-Length: 5\r\n\r\n')
                r = c.read_response('HEAD')
                self.assertEqual(r.status_line, 'HTTP/1.1 100 Continue', r)
                c.send('hello')
                self.assertLyrics(c.read_response())
                c.send('GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue'
                       '\r\nContent-Length: 5\r\n\r\nhello')
                self.assertLyrics(c.read_response())
                self.assertOpen(c)

    def test_version_505_and_garbage_400(self):
        for port, tls in self.ports():
            for line, status in (('GET / HTTP/2.0', 505),
                                 ('GET / HTTP/3.0', 505),
                                 ('GET / HTTP/1.10', 400),
                                 ('GET / HTTPS/1.1', 400)):
                with self.subTest(tls=tls, line=line):
                    c = self.conn(port, tls)
                    c.send(line + '\r\nHost: x\r\n\r\n')
                    r = c.read_response()
                    self.assertEqual(r.status, status, r)
                    self.assertEqual(r.get('Connection'), 'close')
                    self.assertClosed(c)

    def test_bad_escape_and_encoded_nul_400(self):
        for target in ('/%00', '/a%2', '/%zz', '/%4'):
            with self.subTest(target=target):
                c = self.conn(self.srv.port, False)
                c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % target)
                self.assertError(c.read_response(), 400, 'Bad Request')
                self.assertClosed(c)

    def test_dot_segments_and_escapes_served(self):
        c = self.conn(self.srv.port, False)
        for target in ('/../../etc/passwd', '/a/./b/../c', '/%2e%2e/x',
                       '/%41?q=%zz', 'http://example.com/../x'):
            with self.subTest(target=target):
                c.send('GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % target)
                self.assertLyrics(c.read_response())
        self.assertOpen(c)

    def test_absolute_form_and_asterisk(self):
        c = self.conn(self.srv.port, False)
        c.send('GET http://example.com/x HTTP/1.1\r\nHost: other\r\n\r\n')
        self.assertLyrics(c.read_response())
        c.send('OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n')
        r = c.read_response('OPTIONS')
        self.assertEqual(r.status_line, 'HTTP/1.1 204 No Content')
        c.send('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n')
        r = c.read_response()
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.get('Allow'), 'GET, HEAD, OPTIONS')
        self.assertOpen(c)

    def test_bare_lf_and_leading_empty_lines(self):
        for port, tls in self.ports():
            with self.subTest(tls=tls):
                c = self.conn(port, tls)
                c.send('\r\n\r\nGET / HTTP/1.1\nHost: x\n\n')
                self.assertLyrics(c.read_response())
                self.assertOpen(c)

    def test_controls_obsfold_space_before_colon_400(self):
        for fields in ('X: a\x00b', 'X: a\rb', 'X: a\r\n b',
                       'Host : x', 'X\x7f: y', 'X: \x01'):
            with self.subTest(fields=fields):
                c = self.conn(self.srv.port, False)
                c.send('GET / HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n' % fields)
                self.assertError(c.read_response(), 400, 'Bad Request')
                self.assertClosed(c)


if __name__ == '__main__':
    unittest.main()
