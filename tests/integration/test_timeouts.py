"""header_timeout, handshake_timeout, keepalive_timeout, send_timeout (1 s)."""

import select
import socket
import threading
import time
import unittest

from astleyd_test import ServerTestCase, connect, request

T = 1.0                     # every timeout in this server's config
LOW, HIGH = 0.7 * T, 3.5 * T


class TimeoutTest(ServerTestCase):
    SERVER = dict(workers=1, extra={'header_timeout': '1s',
                                    'handshake_timeout': '1s',
                                    'keepalive_timeout': '1s',
                                    'send_timeout': '1s'})

    def assertTookAbout(self, seconds, what):
        self.assertGreaterEqual(seconds, LOW, '%s after only %.2fs' %
                                (what, seconds))
        self.assertLessEqual(seconds, HIGH, '%s took %.2fs' % (what, seconds))

    def raw(self, port):
        s = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.addCleanup(s.close)
        return s

    def wait_close(self, s):
        """(bytes, seconds) until the server closes S."""
        t0 = time.monotonic()
        data = b''
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                data += d
        except ConnectionResetError:
            pass
        return data, time.monotonic() - t0

    def test_silent_tls_connection_closed(self):
        s = self.raw(self.srv.tls_port)
        data, took = self.wait_close(s)
        self.assertEqual(data, b'')
        self.assertTookAbout(took, 'silent TLS connection closed')

    def test_silent_tls_connection_does_not_wedge_port(self):
        s = self.raw(self.srv.tls_port)      # occupies the only worker
        t0 = time.monotonic()
        result = {}

        def client():
            try:
                result['r'] = request(self.srv.tls_port, tls=True)
            except Exception as e:           # reported below
                result['e'] = e
        t = threading.Thread(target=client)
        t.start()
        t.join(HIGH + 5)
        took = time.monotonic() - t0
        self.assertNotIn('e', result)
        self.assertIn('r', result, 'second TLS client not served')
        self.assertLyrics(result['r'])
        self.assertLessEqual(took, HIGH, 'second client waited %.2fs' % took)
        data, _ = self.wait_close(s)
        self.assertEqual(data, b'')

    def test_partial_handshake_closed(self):
        s = self.raw(self.srv.tls_port)
        # The first 5 bytes of a ClientHello record, then nothing.
        s.sendall(b'\x16\x03\x01\x02\x00')
        data, took = self.wait_close(s)
        self.assertTookAbout(took, 'half handshake closed')
        self.assertNotIn(b'HTTP/', data)
        self.assertLyrics(request(self.srv.tls_port, tls=True))

    def test_silent_plain_connection_closed_silently(self):
        s = self.raw(self.srv.port)
        data, took = self.wait_close(s)
        self.assertEqual(data, b'', 'nothing sent: close without 408')
        self.assertTookAbout(took, 'silent connection closed')
        self.assertLyrics(request(self.srv.port))

    def check_408(self, c):
        t0 = time.monotonic()
        r = c.read_response()
        took = time.monotonic() - t0
        self.assertError(r, 408, 'Request Timeout')
        self.assertClosed(c)
        self.assertTookAbout(took, '408')

    def test_partial_request_408(self):
        c = connect(self.srv.port, timeout=10)
        self.addCleanup(c.close)
        c.send('GET / HTTP/1.1\r\nHost: x\r\n')
        self.check_408(c)

    def test_partial_request_line_408(self):
        c = connect(self.srv.port, timeout=10)
        self.addCleanup(c.close)
        c.send('GE')
        self.check_408(c)

    def test_partial_request_408_tls(self):
        c = connect(self.srv.tls_port, tls=True, timeout=10)
        self.addCleanup(c.close)
        c.send('GET / HTTP/1.1\r\nHo')
        self.check_408(c)

    def idle_keepalive(self, tls):
        port = self.srv.tls_port if tls else self.srv.port
        c = connect(port, tls=tls, timeout=10)
        self.addCleanup(c.close)
        c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertLyrics(c.read_response())
        data, took = c.wait_eof(10)
        self.assertEqual(data, b'', 'idle keep-alive close must be silent')
        self.assertTookAbout(took, 'idle keep-alive closed')

    def test_idle_keepalive_closed_silently(self):
        self.idle_keepalive(False)

    def test_idle_keepalive_closed_silently_tls(self):
        self.idle_keepalive(True)

    def test_keepalive_within_timeout_served(self):
        c = connect(self.srv.port, timeout=10)
        self.addCleanup(c.close)
        for _ in range(3):
            c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertLyrics(c.read_response())
            self.assertTrue(c.idle(0.5 * T))
        c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertLyrics(c.read_response())

    def test_slow_but_timely_client_served(self):
        c = connect(self.srv.port, timeout=10)
        self.addCleanup(c.close)
        for part in ('GET / HT', 'TP/1.1\r\nHost:', ' x\r\n\r\n'):
            c.send(part)
            time.sleep(0.25 * T)
        self.assertLyrics(c.read_response())

    def test_client_that_never_reads_is_cut_off(self):
        # Pipelined requests whose responses are never read: once the
        # socket buffers are full the worker's write blocks, and
        # send_timeout frees the (only) worker.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(('127.0.0.1', self.srv.port))

        def flood():
            try:
                s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n' * 40000)
            except OSError:
                pass                    # blocked, then reset or closed
        t = threading.Thread(target=flood, daemon=True)
        t.start()
        t0 = time.monotonic()
        # Queued behind the flood, which the only worker accepted first.
        r = request(self.srv.port)
        took = time.monotonic() - t0
        self.assertLyrics(r)
        self.assertLessEqual(took, HIGH, 'worker held %.2fs by a client '
                             'that does not read' % took)
        # The stuck connection was closed by the server, not served to
        # the end once we start reading: EOF (or a reset) long before the
        # 40000 responses.
        s.settimeout(10)
        got = 0
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                got += len(d)
        except ConnectionResetError:
            pass
        self.assertLess(got, 40000 * 1100 // 2,
                        'a client that did not read got %d bytes' % got)
        t.join(10)

    def test_trickle_cut_off(self):
        # One header byte every 0.3 s: header_timeout bounds the whole
        # header, not each read.
        s = self.raw(self.srv.port)
        req = b'GET / HTTP/1.1\r\nHost: x\r\nX-Trickle: ' + b'a' * 60 + \
            b'\r\n\r\n'
        t0 = time.monotonic()
        sent = 0
        data = b''
        cut = False
        while sent < len(req) and time.monotonic() - t0 < 10:
            r, _, _ = select.select([s], [], [], 0.3)
            if r:
                cut = True
                break
            try:
                s.sendall(req[sent:sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            sent += 1
        took = time.monotonic() - t0
        self.assertTrue(cut, 'server waited for the whole trickled header '
                        '(%d bytes, %.1fs)' % (sent, took))
        data, _ = self.wait_close(s)
        self.assertLessEqual(took, HIGH, 'cut off only after %.2fs' % took)
        self.assertGreaterEqual(took, LOW)
        if data:
            self.assertTrue(data.startswith(b'HTTP/1.1 408 Request Timeout'
                                            b'\r\n'), data)
        self.assertLyrics(request(self.srv.port))


if __name__ == '__main__':
    unittest.main()
