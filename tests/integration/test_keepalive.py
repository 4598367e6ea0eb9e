"""Persistent connections, pipelining, split requests, the 405 limit."""

import time
import unittest

from astleyd_test import BODY_405, ServerTestCase, connect

GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
HEAD = 'HEAD / HTTP/1.1\r\nHost: x\r\n\r\n'
POST = 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'


class KeepAliveTest(ServerTestCase):
    SERVER = dict(workers=2)

    def conn(self):
        c = connect(self.srv.port)
        self.addCleanup(c.close)
        return c

    def assert405(self, r, close=False):
        # test_http checks every header of a 405; here: which one, in order.
        self.assertEqual(r.status_line, 'HTTP/1.1 405 Method Not Allowed', r)
        self.assertEqual(r.body, BODY_405)
        self.assertEqual(r.get('Connection'), 'close' if close else None,
                         r.head)

    def test_keepalive_default_http11(self):
        c = self.conn()
        for i in range(5):
            c.send(GET)
            self.assertLyrics(c.read_response())
            self.assertOpen(c, 0.1)
        c.send(HEAD)
        self.assertLyrics(c.read_response('HEAD'), head=True)
        self.assertOpen(c)

    def test_connection_close(self):
        for value in ('close', 'Close', 'CLOSE', 'keep-alive, close'):
            with self.subTest(value=value):
                with connect(self.srv.port) as c:
                    c.send('GET / HTTP/1.1\r\nHost: x\r\nConnection: %s\r\n'
                           '\r\n' % value)
                    self.assertLyrics(c.read_response(), connection='close')
                    self.assertClosed(c)

    def test_close_after_keepalive_requests(self):
        c = self.conn()
        c.send(GET)
        self.assertLyrics(c.read_response())
        c.send('HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        self.assertLyrics(c.read_response('HEAD'), connection='close',
                          head=True)
        self.assertClosed(c)

    def test_http10_closes_by_default(self):
        c = self.conn()
        c.send('GET / HTTP/1.0\r\nHost: x\r\n\r\n')
        self.assertLyrics(c.read_response(), connection='close')
        self.assertClosed(c)

    def test_http10_keepalive(self):
        c = self.conn()
        for value in ('keep-alive', 'Keep-Alive'):
            c.send('GET / HTTP/1.0\r\nConnection: %s\r\n\r\n' % value)
            self.assertLyrics(c.read_response(), connection='keep-alive')
            self.assertOpen(c)
        c.send('HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
        self.assertLyrics(c.read_response('HEAD'), connection='keep-alive',
                          head=True)
        self.assertOpen(c)
        # A 1.0 request without keep-alive on the same connection ends it.
        c.send('GET / HTTP/1.0\r\n\r\n')
        self.assertLyrics(c.read_response(), connection='close')
        self.assertClosed(c)

    def test_pipelined_three_in_one_send(self):
        c = self.conn()
        c.send(GET + HEAD + 'GET /third HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertLyrics(c.read_response('GET'))
        self.assertLyrics(c.read_response('HEAD'), head=True)
        self.assertLyrics(c.read_response('GET'))
        self.assertOpen(c)

    def test_pipelined_mixed_in_order(self):
        c = self.conn()
        c.send(HEAD + POST + GET + 'GET / HTTP/1.1\r\nHost: x\r\n'
               'Connection: close\r\n\r\n' + GET)
        self.assertLyrics(c.read_response('HEAD'), head=True)
        self.assert405(c.read_response('POST'))
        self.assertLyrics(c.read_response('GET'))
        self.assertLyrics(c.read_response('GET'), connection='close')
        # The request after "Connection: close" is never answered.
        self.assertClosed(c)

    def test_split_byte_by_byte(self):
        c = self.conn()
        data = ('GET /split HTTP/1.1\r\nHost: x\r\nUser-Agent: trickle\r\n'
                '\r\n').encode()
        for i in range(len(data)):
            c.send(data[i:i + 1])
            time.sleep(0.002)
            if i < len(data) - 1:
                # No response before the header is complete.
                self.assertTrue(c.idle(0), 'response before end of header '
                                '(after %r)' % data[:i + 1])
        self.assertLyrics(c.read_response())
        # ... and the connection still serves the next request.
        c.send(GET)
        self.assertLyrics(c.read_response())
        self.assertOpen(c)

    def test_split_at_crlf_boundaries(self):
        c = self.conn()
        for part in ('GET / HTTP/1.1\r', '\nHost: x\r\n\r', '\n'):
            c.send(part)
            time.sleep(0.05)
        self.assertLyrics(c.read_response())
        self.assertOpen(c)

    def test_get_body_discarded(self):
        c = self.conn()
        c.send('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n'
               'GET /evil HTTP/1.1\r\n' + GET)
        self.assertLyrics(c.read_response())
        # The body "GET /evil HTTP/1.1\r\n" is not a request.
        self.assertLyrics(c.read_response())
        self.assertOpen(c)

    def test_head_and_405_bodies_discarded(self):
        c = self.conn()
        c.send('HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
               'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n'
               'PUT / HTTP/' + GET)
        self.assertLyrics(c.read_response('HEAD'), head=True)
        self.assert405(c.read_response('POST'))
        self.assertLyrics(c.read_response('GET'))
        self.assertOpen(c)

    def test_body_arriving_later_discarded(self):
        c = self.conn()
        c.send('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n'
               '01234')
        time.sleep(0.05)
        c.send('56789' + GET)
        self.assert405(c.read_response('POST'))
        self.assertLyrics(c.read_response('GET'))
        self.assertOpen(c)

    def test_fourth_405_closes(self):
        c = self.conn()
        for i in range(3):
            c.send(POST)
            self.assert405(c.read_response('POST'))
            self.assertOpen(c, 0.2)
        c.send(POST)
        self.assert405(c.read_response('POST'), close=True)
        self.assertClosed(c)

    def test_fourth_405_closes_despite_gets_between(self):
        c = self.conn()
        for i in range(3):
            c.send('PUT /x HTTP/1.1\r\nHost: x\r\n\r\n' if i == 1 else POST)
            self.assert405(c.read_response('X'))
            c.send(GET)
            self.assertLyrics(c.read_response())
            self.assertOpen(c, 0.1)
        c.send('DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assert405(c.read_response('DELETE'), close=True)
        self.assertClosed(c)

    def test_fourth_405_pipelined(self):
        c = self.conn()
        c.send(POST * 4 + GET)
        for i in range(3):
            self.assert405(c.read_response('POST'))
        self.assert405(c.read_response('POST'), close=True)
        self.assertClosed(c)

    def test_405_count_is_per_connection(self):
        for _ in range(2):
            with connect(self.srv.port) as c:
                for i in range(3):
                    c.send(POST)
                    self.assert405(c.read_response('POST'))
                self.assertOpen(c, 0.1)

    def test_no_artificial_delay(self):
        # The prototype slept 0.25 s per request: 20 round trips took 5 s.
        c = self.conn()
        t0 = time.monotonic()
        for _ in range(20):
            c.send(GET)
            self.assertLyrics(c.read_response())
        took = time.monotonic() - t0
        self.assertLess(took, 2.0, '20 requests took %.2fs' % took)

    def test_many_requests_one_connection(self):
        c = self.conn()
        c.send(GET * 50)
        for i in range(50):
            self.assertLyrics(c.read_response())
        self.assertOpen(c)


if __name__ == '__main__':
    unittest.main()
