"""Behind a load balancer, without one: PROXY protocol v1 and v2 on both
ports, untrusted sources, /healthz and the drain at a graceful stop, 421
for the wrong scheme, plain HTTP on the TLS port (issue 11)."""

import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import time

from astleyd_test import (BIN, ServerTestCase, _child_env, alive, free_port,
                          tls_context, wait_for)

GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'

SIG2 = b'\r\n\r\n\x00\r\nQUIT\n'


def v1(src, sport, dport=1):
    fam, dst = ('TCP6', '::1') if ':' in src else ('TCP4', '127.0.0.1')
    return ('PROXY %s %s %s %d %d\r\n' % (fam, src, dst, sport,
                                          dport)).encode()


def v2(src, sport, dst='127.0.0.1', dport=1, local=False, tlvs=b''):
    if local:
        return SIG2 + bytes([0x20, 0x00]) + struct.pack('!H', len(tlvs)) + \
            tlvs
    if ':' in src:
        fam, addrs = 0x21, socket.inet_pton(socket.AF_INET6, src) + \
            socket.inet_pton(socket.AF_INET6, '::1')
    else:
        fam, addrs = 0x11, socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack('!HH', sport, dport) + tlvs
    return SIG2 + bytes([0x21, fam]) + struct.pack('!H', len(body)) + body


def exchange(port, data, tls=False, timeout=5):
    """Sends DATA (after which a TLS handshake if TLS) and GET with close;
    returns everything until EOF, or b'' when the server closed first."""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        s.sendall(data)
        if tls:
            ctx = tls_context()
            try:
                s = ctx.wrap_socket(s, server_hostname='localhost')
            except (ssl.SSLError, OSError):
                return b''
        try:
            s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nConnection: close'
                      b'\r\n\r\n')
        except OSError:
            return b''
        out = b''
        while True:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                break
            if not d:
                break
            out += d
        return out
    finally:
        s.close()


class ProxyProtocolTest(ServerTestCase):

    def proxied(self, trusted='127.0.0.0/8', extra=None):
        self.pp, self.ppt = free_port(), free_port()
        # Clients' errors are logged at info.
        conf = {'access_log': 'access.log', 'error_log': 'stderr info',
                'proxy_protocol_from': trusted}
        conf.update(extra or {})
        lines = '\n'.join(['listen 127.0.0.1:%d proxy_protocol' % self.pp,
                           'listen_tls 127.0.0.1:%d proxy_protocol' %
                           self.ppt] + ['%s %s' % kv for kv in conf.items()])
        return self.server(workers=1, extra=lines)

    def access_lines(self, srv, n):
        path = os.path.join(srv.dir, 'access.log')

        def lines():
            try:
                with open(path) as f:
                    got = f.read().splitlines()
            except FileNotFoundError:
                return None
            return got if len(got) >= n else None
        got = wait_for(lines, 5)
        self.assertIsNotNone(got, 'fewer than %d access log lines' % n)
        return got

    def test_v1_and_v2_both_ports_log_the_client(self):
        srv = self.proxied()
        cases = [(self.pp, False, v1('192.0.2.1', 1111)),
                 (self.pp, False, v2('192.0.2.2', 2222)),
                 (self.ppt, True, v1('2001:db8::3', 3333)),
                 (self.ppt, True, v2('198.51.100.4', 4444,
                                     tlvs=b'\x01\x00\x08http/1.1'))]
        for port, tls, hdr in cases:
            out = exchange(port, hdr, tls)
            self.assertTrue(out.startswith(b'HTTP/1.1 200 OK\r\n'), out[:80])
        clients = [l.split()[0] for l in self.access_lines(srv, 4)]
        # The start-up check came first, on the plain port.
        self.assertEqual(clients[-4:], ['192.0.2.1', '192.0.2.2',
                                        '2001:db8::3', '198.51.100.4'])

    def test_v2_local_keeps_the_connection_address(self):
        srv = self.proxied()
        out = exchange(self.pp, v2(None, 0, local=True))
        self.assertTrue(out.startswith(b'HTTP/1.1 200 OK\r\n'), out[:80])
        self.assertEqual(self.access_lines(srv, 1)[-1].split()[0],
                         '127.0.0.1')

    def test_header_split_byte_by_byte(self):
        self.proxied()
        for port, tls, hdr in ((self.pp, False, v2('192.0.2.9', 9)),
                               (self.ppt, True, v1('192.0.2.8', 8))):
            s = socket.create_connection(('127.0.0.1', port), timeout=5)
            self.addCleanup(s.close)
            for b in hdr:
                s.send(bytes([b]))
                time.sleep(0.005)
            if tls:
                s = tls_context().wrap_socket(s, server_hostname='x')
            s.sendall(GET.encode())
            self.assertTrue(s.recv(20).startswith(b'HTTP/1.1 200 OK'))

    def test_bad_headers_close(self):
        srv = self.proxied()
        bad = [b'GET / HTTP/1.1\r\nHost: x\r\n\r\n',   # no header at all
               b'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n',     # LF only
               b'PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n',
               SIG2 + b'\x22\x11\x00\x0c' + b'\0' * 12,  # version 2, cmd 2
               SIG2 + b'\x21\x11\xff\xff']              # oversized
        for data in bad:
            for port, tls in ((self.pp, False), (self.ppt, True)):
                out = exchange(port, data, tls)
                self.assertEqual(out, b'', (data, port))
        # A truncated header is closed at its deadline, silently.
        srv2 = self.proxied(extra={'header_timeout': '1s',
                                   'handshake_timeout': '1s'})
        for port in (self.pp, self.ppt):
            s = socket.create_connection(('127.0.0.1', port), timeout=5)
            self.addCleanup(s.close)
            s.sendall(v1('192.0.2.1', 1)[:20])
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b'')
            self.assertLess(time.monotonic() - t0, 4)
        self.assertRegex(srv.read_log() + srv2.read_log(),
                         'malformed PROXY protocol header')

    def test_untrusted_source_closed_and_logged(self):
        srv = self.proxied(trusted='192.0.2.0/24')
        for port, tls in ((self.pp, False), (self.ppt, True)):
            self.assertEqual(exchange(port, v1('192.0.2.1', 1), tls), b'')
        self.assertTrue(wait_for(lambda: re.search(
            r'127\.0\.0\.1: not in proxy_protocol_from: closed',
            srv.read_log()), 5), srv.read_log())

    def test_proxy_protocol_from_required(self):
        srv = self.server(start=False)
        p = free_port()
        srv.write_conf(srv.conf_text() + 'listen 127.0.0.1:%d '
                       'proxy_protocol\n' % p)
        r = subprocess.run([BIN, '-t', '-f', srv.conf], capture_output=True,
                           text=True, env=_child_env(), timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn('proxy_protocol_from is required', r.stderr)
        srv.write_conf(srv.conf_text() + 'listen 127.0.0.1:%d proxy\n' % p)
        r = subprocess.run([BIN, '-t', '-f', srv.conf], capture_output=True,
                           text=True, env=_child_env(), timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r':\d+: listen: unknown option "proxy"')
        for bad in ('10.0.0.1/8', '10.0.0.0/33', 'x', '::1/129', '1.2.3.4/'):
            srv.write_conf(srv.conf_text() +
                           'proxy_protocol_from %s\n' % bad)
            r = subprocess.run([BIN, '-t', '-f', srv.conf],
                               capture_output=True, text=True,
                               env=_child_env(), timeout=20)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn('proxy_protocol_from', r.stderr, bad)


class RoutingTest(ServerTestCase):
    SERVER = dict(workers=1, extra={'access_log': 'access.log',
                                    'error_log': 'stderr info'})

    def test_wrong_scheme_is_421(self):
        for port, tls, target in ((self.srv.port, False, 'https://x/'),
                                  (self.srv.tls_port, True, 'http://x/')):
            s = socket.create_connection(('127.0.0.1', port), timeout=5)
            self.addCleanup(s.close)
            if tls:
                s = tls_context().wrap_socket(s, server_hostname='x')
            s.sendall(('GET %s HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n'
                       'Host: x\r\nConnection: close\r\n\r\n' %
                       target).encode())
            out = b''
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
            self.assertTrue(out.startswith(b'HTTP/1.1 421 Misdirected '
                                           b'Request\r\n'), out[:80])
            # Not a framing error: the connection goes on.
            self.assertIn(b'HTTP/1.1 200 OK\r\n', out)

    def test_plain_http_on_tls_port(self):
        out = exchange(self.srv.tls_port, b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertTrue(out.startswith(b'HTTP/1.1 400 Bad Request\r\n'),
                        out[:80])
        self.assertIn(b'plain HTTP request was sent to the HTTPS port', out)
        self.assertTrue(wait_for(lambda: 'plain HTTP request on a TLS port'
                                 in self.srv.read_log(), 5))

    def test_healthz(self):
        out = exchange(self.srv.port, b'GET /healthz HTTP/1.1\r\nHost: x\r\n'
                       b'\r\n')
        self.assertTrue(out.startswith(b'HTTP/1.1 200 OK\r\n'), out[:80])
        self.assertIn(b'Content-Length: 3\r\n\r\nok\nHTTP/1.1 200 OK\r\n',
                      out)

    def test_usr1_to_a_worker_cuts_nothing(self):
        w = self.srv.wait_workers(1)[0]
        os.kill(w, signal.SIGUSR1)
        time.sleep(0.2)
        self.assertTrue(alive(w))
        self.assertEqual(self.srv.worker_pids(), [w])


class DrainTest(ServerTestCase):

    def test_drain_then_graceful_stop(self):
        srv = self.server(workers=2, extra={'drain_timeout': '1500ms'})
        healthz = b'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close' \
            b'\r\n\r\n'
        self.assertTrue(exchange(srv.port, healthz).startswith(
            b'HTTP/1.1 200 '))
        quit_ = subprocess.Popen([BIN, '-f', srv.conf, '-s', 'quit'],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=_child_env())
        self.addCleanup(lambda: quit_.poll() is None and quit_.kill())
        t0 = time.monotonic()
        seen_503 = 0
        # Everything is served during the drain; /healthz says 503.
        while time.monotonic() - t0 < 1.2:
            for port, tls in ((srv.port, False), (srv.tls_port, True)):
                out = exchange(port, b'', tls)
                self.assertTrue(out.startswith(b'HTTP/1.1 200 OK'), out[:60])
            out = exchange(srv.port, healthz)
            if out.startswith(b'HTTP/1.1 503 Service Unavailable\r\n'):
                seen_503 += 1
            else:
                self.assertLess(time.monotonic() - t0, 0.3, out[:60])
            time.sleep(0.05)
        self.assertGreater(seen_503, 3)
        out, err = quit_.communicate(timeout=15)
        took = time.monotonic() - t0
        self.assertEqual(quit_.returncode, 0, err)
        self.assertGreaterEqual(took, 1.4)
        self.assertLess(took, 8)
        with self.assertRaises(OSError):
            socket.create_connection(('127.0.0.1', srv.port), timeout=2)

    def test_worker_lost_during_drain_is_replaced(self):
        # The pool is kept during a drain: a worker that dies is
        # replaced, and the new one answers /healthz with 503 too.
        srv = self.server(workers=2, extra={'drain_timeout': '3s'})
        old = srv.wait_workers(2)
        healthz = b'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close' \
            b'\r\n\r\n'
        t0 = time.monotonic()
        srv.signal(signal.SIGQUIT)
        time.sleep(0.2)
        for w in old:
            os.kill(w, signal.SIGKILL)
        new = srv.wait_workers(2, exclude=old, timeout=2.5)
        self.assertLess(time.monotonic() - t0, 2.8, 'respawn too slow for '
                        'this test')
        for _ in range(4):
            self.assertTrue(exchange(srv.port, b'').startswith(
                b'HTTP/1.1 200 OK'))
            self.assertTrue(exchange(srv.port, healthz).startswith(
                b'HTTP/1.1 503 '), 'a worker forked during the drain '
                'does not know of it')
        self.assertTrue(all(alive(p) for p in new))
        srv.wait_exit(timeout=10)
        self.assertGreaterEqual(time.monotonic() - t0, 2.9)
