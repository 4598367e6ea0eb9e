"""Listening sockets inherited the systemd way (LISTEN_FDS, LISTEN_PID,
LISTEN_FDNAMES: sd_listen_fds(3)), matched to listen lines by address."""

import os
import shutil
import socket

import unittest

from astleyd_test import (ServerTestCase, control, free_port, has_ipv6,
                          request, socket_inodes, wait_for)


def listening(port, host='127.0.0.1', v6only=False):
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if host == '::':
        # What systemd's ListenStream=PORT makes: dual-stack, unless
        # the unit says BindIPv6Only=ipv6-only.
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    s.bind((host, port))
    s.listen(16)
    return s


class InheritTest(ServerTestCase):

    def inherited_server(self, socks, names=None, listen_pid=None, **kw):
        for s in socks:
            self.addCleanup(s.close)
        srv = self.server(start=False, **kw)
        srv.start(wait=listen_pid is None, fds=socks, fdnames=names,
                  listen_pid=listen_pid)
        return srv

    def test_sockets_taken_over_by_address(self):
        p, q = free_port(), free_port()
        socks = [listening(p), listening(q)]
        ours = {os.fstat(s.fileno()).st_ino for s in socks}
        srv = self.inherited_server(
            socks, 'http:https', listen=['127.0.0.1:%d' % p],
            listen_tls=['127.0.0.1:%d' % q])
        # The very sockets we made, held by the master, not new ones.
        self.assertEqual(set(socket_inodes(srv.pid).values()) & ours, ours)
        for s in socks:
            s.close()                   # ours go; the server's stay
        self.assertLyrics(request(p))
        self.assertLyrics(request(q, tls=True))
        log = srv.read_log()
        self.assertIn('listen 127.0.0.1:%d: the inherited socket http' % p,
                      log)
        self.assertIn('listen_tls 127.0.0.1:%d: the inherited socket https'
                      % q, log)
        # A reload keeps them.
        self.assertEqual(control(srv, 'reload')[0], 0)
        self.assertEqual(set(socket_inodes(srv.pid).values()) & ours, ours)
        self.assertLyrics(request(p))

    def test_order_does_not_matter(self):
        # Matched by address, not by position or name.
        p, q = free_port(), free_port()
        socks = [listening(q), listening(p)]
        srv = self.inherited_server(
            socks, 'x:y', listen=['127.0.0.1:%d' % p],
            listen_tls=['127.0.0.1:%d' % q])
        for s in socks:
            s.close()
        self.assertLyrics(request(p))
        self.assertLyrics(request(q, tls=True))

    def test_unmatched_socket_closed_and_others_bound(self):
        p, q, r = free_port(), free_port(), free_port()
        extra = listening(r)
        ino = os.fstat(extra.fileno()).st_ino
        srv = self.inherited_server(
            [listening(p), extra], None, listen=['127.0.0.1:%d' % p],
            listen_tls=['127.0.0.1:%d' % q])
        self.assertLyrics(request(q, tls=True))     # bound by astleyd
        self.assertNotIn(ino, socket_inodes(srv.pid).values())
        self.assertRegex(srv.read_log(), r'inherited socket 4 \(127\.0\.0'
                         r'\.1 port %d\) matches no listen line: closed' % r)

    def test_not_ours_when_listen_pid_differs(self):
        # LISTEN_PID names another process: the descriptors are closed
        # like anything else inherited, and the port, still held by the
        # test, cannot be bound.
        p = free_port()
        srv = self.inherited_server([listening(p)], None, listen_pid='1',
                                    listen=['127.0.0.1:%d' % p])
        self.assertTrue(wait_for(srv.exited, 10), 'astleyd kept running')
        self.assertRegex(srv.read_log(), r'listen 127\.0\.0\.1:%d: Address '
                         r'already in use' % p)

    def test_not_a_listening_socket_ignored(self):
        # A connected socket or a plain file in the range is no listener.
        p = free_port()
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        srv = self.inherited_server([b, listening(p)], None,
                                    listen=['127.0.0.1:%d' % p])
        self.assertLyrics(request(p))
        self.assertNotIn(os.fstat(b.fileno()).st_ino,
                         socket_inodes(srv.pid).values())

    @unittest.skipUnless(has_ipv6(), 'no IPv6')
    def test_star_takes_a_dual_stack_socket(self):
        # ListenStream=1337 in a socket unit is [::]:1337, dual-stack:
        # what "listen *:1337" means.
        p = free_port()
        s = listening(p, '::')
        ino = os.fstat(s.fileno()).st_ino
        srv = self.inherited_server([s], 'web', listen=['*:%d' % p])
        self.assertIn(ino, socket_inodes(srv.pid).values())
        s.close()
        self.assertLyrics(request(p, host='127.0.0.1'))
        self.assertLyrics(request(p, host='::1'))

    @unittest.skipUnless(has_ipv6(), 'no IPv6')
    def test_ipv6_only_socket_for_star_is_said(self):
        p = free_port()
        s = listening(p, '::', v6only=True)
        self.addCleanup(s.close)
        srv = self.server(start=False, listen=['*:%d' % p])
        # Not through 127.0.0.1, which is the point: wait on ::1.
        srv.start(wait=False, fds=[s])

        def serving():
            try:
                return request(p, host='::1')
            except OSError:
                return None
        self.assertLyrics(wait_for(serving, 10))
        self.assertIn('*:%d: the inherited socket is IPv6 only' % p,
                      srv.read_log())

    def test_under_systemd_socket_activate(self):
        # systemd's own tool binds both ports, and on the first
        # connection execs astleyd with them: serve, reload, stop.
        tool = shutil.which('systemd-socket-activate')
        if tool is None:
            self.skipTest('systemd-socket-activate (Debian package '
                          'systemd) missing')
        p, q = free_port(), free_port()
        srv = self.server(start=False, listen=['127.0.0.1:%d' % p],
                          listen_tls=['127.0.0.1:%d' % q])
        srv.wrap = [tool, '-l', '127.0.0.1:%d' % p, '-l',
                    '127.0.0.1:%d' % q, '--fdname=http:https']
        for var in ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS'):
            srv.wrap += ['-E', var]
        srv.start()
        self.assertLyrics(request(p))
        self.assertLyrics(request(q, tls=True))
        log = srv.read_log()
        self.assertIn('the inherited socket http', log)
        self.assertIn('the inherited socket https', log)
        self.assertEqual(control(srv, 'reload')[0], 0)
        self.assertLyrics(request(q, tls=True))
        self.assertEqual(srv.stop(), 0)
