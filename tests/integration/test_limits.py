"""max_uri_size (414), max_header_size and the field count (431),
max_body_size (413), keepalive_requests."""

import unittest

from astleyd_test import BODY_405, ServerTestCase, connect


class LimitsTest(ServerTestCase):
    SERVER = dict(workers=1, extra={'max_uri_size': '1k',
                                    'max_header_size': '2k',
                                    'max_body_size': '4k',
                                    'keepalive_requests': '3'})

    def send(self, data, method='GET'):
        c = connect(self.srv.port)
        self.addCleanup(c.close)
        c.send(data)
        return c, c.read_response(method)

    def test_long_uri_414(self):
        c, r = self.send('GET /%s HTTP/1.1\r\nHost: x\r\n\r\n' % ('u' * 2000))
        self.assertError(r, 414, 'URI Too Long')
        self.assertClosed(c)

    def test_uri_under_limit_served(self):
        c, r = self.send('GET /%s HTTP/1.1\r\nHost: x\r\n\r\n' % ('u' * 900))
        self.assertLyrics(r)
        self.assertOpen(c)

    def test_big_header_431(self):
        c, r = self.send('GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n' %
                         ('h' * 3000))
        self.assertError(r, 431, 'Request Header Fields Too Large')
        self.assertClosed(c)

    def test_header_under_limit_served(self):
        c, r = self.send('GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n' %
                         ('h' * 1500))
        self.assertLyrics(r)
        self.assertOpen(c)

    def test_too_many_fields_431(self):
        # Host and 128 more: one over HTTP_MAX_FIELDS.
        fields = ''.join('X-%d: 1\r\n' % i for i in range(128))
        c, r = self.send('GET / HTTP/1.1\r\nHost: x\r\n%s\r\n' % fields)
        self.assertError(r, 431, 'Request Header Fields Too Large')
        self.assertClosed(c)

    def test_many_fields_under_limit_served(self):
        # 100 fields and the few a client and a proxy add (issue 11).
        fields = ''.join('X-%d: 1\r\n' % i for i in range(100)) + \
            'User-Agent: t\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.1\r\n'
        c, r = self.send('GET / HTTP/1.1\r\nHost: x\r\n%s\r\n' % fields)
        self.assertLyrics(r)

    def test_big_body_413_without_reading_it(self):
        # The Content-Length alone decides; the body is never sent.
        c, r = self.send('POST / HTTP/1.1\r\nHost: x\r\n'
                         'Content-Length: 5000\r\n\r\n', 'POST')
        self.assertIn(r.status_line, ('HTTP/1.1 413 Content Too Large',
                                      'HTTP/1.1 413 Payload Too Large'), r)
        self.assertError(r, 413, r.reason)
        self.assertClosed(c)

    def test_body_under_limit_discarded(self):
        c, r = self.send('POST / HTTP/1.1\r\nHost: x\r\n'
                         'Content-Length: 4000\r\n\r\n' + 'b' * 4000 +
                         'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'POST')
        self.assertEqual(r.status_line, 'HTTP/1.1 405 Method Not Allowed')
        self.assertEqual(r.body, BODY_405)
        self.assertLyrics(c.read_response())
        self.assertOpen(c)

    def test_keepalive_requests(self):
        c = connect(self.srv.port)
        self.addCleanup(c.close)
        for i in range(2):
            c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertLyrics(c.read_response())
        c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n' * 2)
        # The 3rd response is the last: it says so, and nothing follows.
        self.assertLyrics(c.read_response(), connection='close')
        self.assertClosed(c)


if __name__ == '__main__':
    unittest.main()
