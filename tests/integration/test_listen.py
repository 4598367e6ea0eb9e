"""listen / listen_tls addresses: dual-stack wildcard, specific v4 and v6."""

import socket
import unittest

from astleyd_test import ServerTestCase, free_port, has_ipv6, request

need_v6 = unittest.skipUnless(has_ipv6(), 'host has no IPv6 loopback')


def refused(host, port):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host, port))
    except ConnectionRefusedError:
        return True
    finally:
        s.close()
    return False


class ListenTest(ServerTestCase):

    def get_ok(self, port, host, tls=False):
        r = request(port, host=host, tls=tls)
        self.assertLyrics(r)

    def test_wildcard_ipv4(self):
        srv = self.server()
        self.assertTrue(srv.listen[0].startswith('*:'))
        self.get_ok(srv.port, '127.0.0.1')
        self.get_ok(srv.tls_port, '127.0.0.1', tls=True)

    @need_v6
    def test_wildcard_ipv6(self):
        srv = self.server()
        self.get_ok(srv.port, '::1')
        self.get_ok(srv.tls_port, '::1', tls=True)

    def test_specific_ipv4(self):
        p, t = free_port(), free_port()
        srv = self.server(listen=['127.0.0.1:%d' % p],
                          listen_tls=['127.0.0.1:%d' % t])
        self.get_ok(p, '127.0.0.1')
        self.get_ok(t, '127.0.0.1', tls=True)
        if has_ipv6():
            self.assertTrue(refused('::1', p), 'v4-only listener took ::1')
            self.assertTrue(refused('::1', t), 'v4-only listener took ::1')
        self.assertEqual(srv.port, p)

    @need_v6
    def test_specific_ipv6(self):
        p, t = free_port(), free_port()
        self.server(listen=['[::1]:%d' % p], listen_tls=['[::1]:%d' % t])
        self.get_ok(p, '::1')
        self.get_ok(t, '::1', tls=True)
        self.assertTrue(refused('127.0.0.1', p), '[::1] listener took IPv4')
        self.assertTrue(refused('127.0.0.1', t), '[::1] listener took IPv4')

    @need_v6
    def test_v6_any_is_dual_stack(self):
        p, t = free_port(), free_port()
        self.server(listen=['[::]:%d' % p], listen_tls=['[::]:%d' % t])
        for host in ('127.0.0.1', '::1'):
            with self.subTest(host=host):
                self.get_ok(p, host)
                self.get_ok(t, host, tls=True)

    def test_several_listeners(self):
        p1, p2, t1, t2 = free_port(), free_port(), free_port(), free_port()
        self.server(listen=['127.0.0.1:%d' % p1, '*:%d' % p2],
                    listen_tls=['*:%d' % t1, '127.0.0.1:%d' % t2])
        for port, tls in ((p1, False), (p2, False), (t1, True), (t2, True)):
            with self.subTest(port=port, tls=tls):
                self.get_ok(port, '127.0.0.1', tls=tls)

    def test_plain_port_does_not_speak_tls(self):
        srv = self.server()
        with self.assertRaises((OSError, AssertionError)):
            request(srv.port, tls=True)
        # ... and the TLS port does not answer cleartext with the lyrics.
        try:
            r = request(srv.tls_port)
        except (OSError, AssertionError):
            r = None
        self.assertTrue(r is None or r.status == 400, r)
        self.get_ok(srv.port, '127.0.0.1')
        self.get_ok(srv.tls_port, '127.0.0.1', tls=True)


if __name__ == '__main__':
    unittest.main()
