"""GET, HEAD, 405 and 400: exact responses of the contract."""

import hashlib
import unittest

from astleyd_test import (BODY_405, LYRICS_LEN, LYRICS_SHA256, ServerTestCase,
                          connect, parse_imf_fixdate, read_lyrics, wait_for)


EXACT_200 = (b'HTTP/1.1 200 OK\r\n'
             b'Server: astleyd\r\n'
             b'Date: %s\r\n'
             b'Last-Modified: Mon, 27 Jul 1987 00:00:00 GMT\r\n'
             b'Content-Type: text/plain; charset=UTF-8\r\n'
             b'Content-Length: 980\r\n'
             b'\r\n')


def without_etag(head):
    """HEAD minus an ETag line: the contract allows one to be added."""
    return b''.join(l + b'\r\n' for l in head.split(b'\r\n')
                    if l and not l.startswith(b'ETag: ')) + b'\r\n'


class LyricsFile(unittest.TestCase):
    """The expected body itself: guards against a corrupted project copy."""

    def test_known_properties(self):
        body = read_lyrics()
        self.assertEqual(len(body), LYRICS_LEN)
        self.assertTrue(body.startswith(b'\n\nWe\'re no strangers to love\n'))
        self.assertTrue(body.endswith(b'Never gonna tell a lie and hurt you'
                                      b'\n\n'))
        self.assertEqual(hashlib.sha256(body).hexdigest(), LYRICS_SHA256)


class HttpTest(ServerTestCase):
    SERVER = dict(workers=2)

    def exchange(self, data, method=None, close=True):
        """Send DATA on a fresh connection, read one response and, when
        CLOSE, require EOF right after it (nothing after the body)."""
        with connect(self.srv.port) as c:
            c.send(data)
            if method is None:
                method = data.split(' ', 1)[0]
            r = c.read_response(method)
            if close:
                self.assertClosed(c)
            else:
                self.assertOpen(c)
            return r

    def test_get_exact(self):
        r = self.exchange('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n',
                          close=False)
        self.assertLyrics(r)
        # Header order of the contract, one space after the colon, CRLF.
        names = [n for n in r.names() if n != 'ETag']
        self.assertEqual(names, ['Server', 'Date', 'Last-Modified',
                                 'Content-Type', 'Content-Length'])
        # Byte for byte, with this response's Date (and no ETag line).
        self.assertEqual(without_etag(r.head) + r.body,
                         EXACT_200 % r.get('Date').encode() + read_lyrics())

    def test_get_body_properties(self):
        r = self.exchange('GET / HTTP/1.1\r\nHost: x\r\nConnection: close'
                          '\r\n\r\n')
        self.assertEqual(len(r.body), 980)
        self.assertTrue(r.body.startswith(b'\n\n'))
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), LYRICS_SHA256)
        self.assertEqual(r.body, read_lyrics())

    def test_get_any_target(self):
        for target in ('/', '/index.html', '/a/b/c?x=1&y=2', '/%7Euser',
                       '/never/gonna/give/you/up', '/?q=' + 'r' * 200,
                       'http://x/absolute-form'):
            with self.subTest(target=target):
                r = self.exchange('GET %s HTTP/1.1\r\nHost: x\r\n'
                                  'Connection: close\r\n\r\n' % target)
                self.assertLyrics(r, connection='close')

    def test_connection_close_nothing_after_body(self):
        with connect(self.srv.port) as c:
            c.send('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            raw = c.read_until_eof()
        head, sep, body = raw.partition(b'\r\n\r\n')
        self.assertEqual(sep, b'\r\n\r\n', raw[:300])
        self.assertEqual(body, read_lyrics(), 'body (and nothing after it)')
        self.assertIn(b'\r\nConnection: close\r\n', head + b'\r\n')

    def test_head_exact(self):
        with connect(self.srv.port) as c:
            c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            g = c.read_response('GET')
            c.send('HEAD / HTTP/1.1\r\nHost: x\r\n\r\n')
            h = c.read_response('HEAD')
            self.assertOpen(c)
        self.assertLyrics(h, head=True)
        self.assertEqual(without_etag(h.head),
                         EXACT_200 % h.get('Date').encode())
        # Same status and headers as GET (Date may tick over a second).
        strip = lambda r: [(k, v) for k, v in r.headers if k != 'Date']
        self.assertEqual(strip(h), strip(g))

    def test_head_no_body_then_eof(self):
        with connect(self.srv.port) as c:
            c.send('HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            raw = c.read_until_eof()
        self.assertEqual(raw.count(b'\r\n\r\n'), 1, raw)
        self.assertTrue(raw.endswith(b'\r\n\r\n'), 'bytes after HEAD: %r' % raw)
        self.assertIn(b'\r\nContent-Length: 980\r\n', raw)

    def check_405(self, r):
        self.assertEqual(r.status_line, 'HTTP/1.1 405 Method Not Allowed', r)
        self.assertEqual(r.get('Content-Type'), 'text/plain; charset=UTF-8')
        # The contract's "59 bytes" miscounts: the text is 58.
        self.assertEqual(len(BODY_405), 58)
        self.assertEqual(r.get('Content-Length'), '58')
        self.assertEqual(r.body, BODY_405)
        self.assertIsNone(r.get('Connection'))
        allowed = {'Server', 'Date', 'Allow', 'Content-Type',
                   'Content-Length'}
        self.assertEqual([n for n in r.names() if n not in allowed], [],
                         r.head)
        self.assertIsNotNone(r.get('Allow'), r.head)
        if r.get('Server') is not None:
            self.assertEqual(r.get('Server'), 'astleyd')
        if r.get('Date') is not None:
            self.assertDate(r.get('Date'))

    def test_405_exact(self):
        for method in ('POST', 'PUT', 'DELETE', 'PATCH', 'TRACE', 'BREW',
                       'get', 'Get'):
            with self.subTest(method=method):
                r = self.exchange('%s / HTTP/1.1\r\nHost: x\r\n'
                                  'Content-Length: 0\r\n\r\n' % method,
                                  method=method, close=False)
                self.check_405(r)

    def test_405_allow_header(self):
        # Issue 4: 405 lists the same methods as OPTIONS answers with.
        r = self.exchange('POST / HTTP/1.1\r\nHost: x\r\n\r\n',
                          close=False)
        self.assertEqual(r.get('Allow'), 'GET, HEAD, OPTIONS', r.head)

    def test_options_is_204(self):
        # RFC 9110 9.3.7: 204 with Allow, no body, no Content-Length;
        # both origin-form and asterisk-form, and the connection stays.
        for target in ('/', '*', '/any/path'):
            r = self.exchange('OPTIONS %s HTTP/1.1\r\nHost: x\r\n\r\n' %
                              target, close=False)
            self.assertEqual(r.status_line, 'HTTP/1.1 204 No Content', r)
            self.assertEqual(r.get('Allow'), 'GET, HEAD, OPTIONS', r.head)
            self.assertEqual(r.body, b'')
            self.assertEqual(sorted(r.names()), ['Allow', 'Date', 'Server'],
                             r.head)

    def test_asterisk_only_with_options(self):
        r = self.exchange('GET * HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertEqual(r.status, 400, r)

    def test_405_with_close(self):
        r = self.exchange('DELETE / HTTP/1.1\r\nHost: x\r\n'
                          'Connection: close\r\n\r\n')
        self.assertEqual(r.status_line, 'HTTP/1.1 405 Method Not Allowed')
        self.assertEqual(r.get('Connection'), 'close')
        self.assertEqual(r.body, BODY_405)

    def test_400_malformed(self):
        cases = {
            'junk line': 'HELLO\r\n\r\n',
            'binary junk': '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03'
                           '\r\n\r\n',
            'no Host in HTTP/1.1': 'GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n',
            'two Host fields': 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
            'header without colon': 'GET / HTTP/1.1\r\nHost: x\r\nBogus\r\n'
                                    '\r\n',
            'space before colon': 'GET / HTTP/1.1\r\nHost : x\r\n\r\n',
            'bad Content-Length': 'GET / HTTP/1.1\r\nHost: x\r\n'
                                  'Content-Length: abc\r\n\r\n',
            'negative Content-Length': 'GET / HTTP/1.1\r\nHost: x\r\n'
                                       'Content-Length: -1\r\n\r\n',
            'conflicting Content-Length': 'GET / HTTP/1.1\r\nHost: x\r\n'
                                          'Content-Length: 1\r\n'
                                          'Content-Length: 2\r\n\r\nab',
            'no version': 'GET /\r\nHost: x\r\n\r\n',
            'bad version': 'GET / HTTQ/1.1\r\nHost: x\r\n\r\n',
            'control char in target': 'GET /a\x01b HTTP/1.1\r\nHost: x\r\n'
                                      '\r\n',
            'space in target': 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n',
            'empty method': ' / HTTP/1.1\r\nHost: x\r\n\r\n',
            'bad method char': 'G(T / HTTP/1.1\r\nHost: x\r\n\r\n',
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                with connect(self.srv.port) as c:
                    c.send(data)
                    r = c.read_response('GET')
                    # Whatever followed, nothing more comes: close.
                    self.assertClosed(c)
                self.assertError(r, 400, 'Bad Request')

    def test_400_then_pipelined_request_not_answered(self):
        with connect(self.srv.port) as c:
            c.send('JUNK\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n')
            r = c.read_response()
            self.assertError(r, 400, 'Bad Request')
            self.assertClosed(c)

    def test_http10_without_host(self):
        r = self.exchange('GET / HTTP/1.0\r\n\r\n')
        self.assertLyrics(r, connection='close')

    def test_header_names_case_insensitive(self):
        r = self.exchange('GET / HTTP/1.1\r\nhOsT: x\r\nCONNECTION: close'
                          '\r\n\r\n')
        self.assertLyrics(r, connection='close')

    def test_no_request_headers_echoed(self):
        r = self.exchange('GET / HTTP/1.1\r\nHost: example.org\r\n'
                          'User-Agent: never-gonna\r\nAccept: */*\r\n'
                          'X-Give-You-Up: 1\r\nCookie: a=b\r\n\r\n',
                          close=False)
        self.assertLyrics(r)
        for n in ('Host', 'User-Agent', 'Accept', 'X-Give-You-Up', 'Cookie'):
            self.assertEqual(r.get_all(n), [], r.head)
        self.assertNotIn(b'example.org', r.head)
        self.assertNotIn(b'never-gonna', r.head)

    def test_folded_whitespace_values(self):
        # Optional whitespace around field values is not part of the value.
        r = self.exchange('GET / HTTP/1.1\r\nHost:x\r\n'
                          'Connection:   close  \r\n\r\n')
        self.assertLyrics(r, connection='close')

    def test_date_ticks(self):
        # Date is current on every response, not frozen at startup.
        req = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
        with connect(self.srv.port) as c:
            c.send(req)
            first = c.read_response().get('Date')
            self.assertDate(first, slack=3)

            def ticked():
                c.send(req)
                d = c.read_response().get('Date')
                return d if d != first else None
            later = wait_for(ticked, 3, interval=0.1)
        self.assertIsNotNone(later, 'Date stuck at %r for 3 s' % first)
        self.assertDate(later, slack=3)
        self.assertGreater(parse_imf_fixdate(later), parse_imf_fixdate(first))


if __name__ == '__main__':
    unittest.main()
