"""HTTPS: protocol versions, ALPN, certificate, curl."""

import select
import shutil
import ssl
import subprocess
import time
import unittest

from astleyd_test import (ServerTestCase, cert_der, connect, read_lyrics,
                          request, tls_context)


def s_client(port, *opts):
    """openssl s_client against PORT: (exit status, combined output)."""
    r = subprocess.run(['openssl', 's_client', '-connect',
                        '127.0.0.1:%d' % port, '-servername', 'localhost']
                       + list(opts), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    return r.returncode, r.stdout.decode(errors='replace')


class TlsTest(ServerTestCase):
    SERVER = dict(workers=2)

    def test_get_over_tls(self):
        with connect(self.srv.tls_port, tls=True) as c:
            self.assertEqual(c.sock.getpeercert(binary_form=True), cert_der())
            c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertLyrics(c.read_response())
            c.send('HEAD / HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertLyrics(c.read_response('HEAD'), head=True)
            c.send('POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            r = c.read_response('POST')
            self.assertEqual(r.status_line, 'HTTP/1.1 405 Method Not Allowed')
            self.assertEqual(r.get('Connection'), 'close')
            self.assertClosed(c)

    def test_pipelined_over_tls(self):
        with connect(self.srv.tls_port, tls=True) as c:
            c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n' * 3)
            for _ in range(3):
                self.assertLyrics(c.read_response())
            self.assertOpen(c)

    def test_400_over_tls(self):
        with connect(self.srv.tls_port, tls=True) as c:
            c.send('NONSENSE\r\n\r\n')
            self.assertError(c.read_response(), 400, 'Bad Request')
            self.assertClosed(c)

    def version_ok(self, version, name):
        ctx = tls_context(min_version=version, max_version=version)
        with connect(self.srv.tls_port, ctx=ctx) as c:
            self.assertEqual(c.sock.version(), name)
            c.send('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            self.assertLyrics(c.read_response(), connection='close')
            self.assertClosed(c)

    def test_tls12_accepted(self):
        self.version_ok(ssl.TLSVersion.TLSv1_2, 'TLSv1.2')

    def test_tls13_accepted(self):
        self.version_ok(ssl.TLSVersion.TLSv1_3, 'TLSv1.3')

    def test_tls12_forward_secret_aead(self):
        ctx = tls_context(min_version=ssl.TLSVersion.TLSv1_2,
                          max_version=ssl.TLSVersion.TLSv1_2)
        with connect(self.srv.tls_port, ctx=ctx) as c:
            name = c.sock.cipher()[0]
        self.assertRegex(name, r'^ECDHE-ECDSA-(AES(128|256)-GCM|CHACHA20)')

    def test_tls11_refused_s_client(self):
        # Control: the same s_client invocation style works for TLS 1.2, so
        # a failure below really is the server refusing TLS 1.1.
        rc, out = s_client(self.srv.tls_port, '-tls1_2', '-cipher',
                           'DEFAULT@SECLEVEL=0')
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r'New, TLSv1\.2, Cipher is ECDHE-')
        self.assertIn('Server certificate', out)
        self.assertIn('Compression: NONE', out)
        for flag in ('-tls1_1', '-tls1'):
            with self.subTest(flag=flag):
                rc, out = s_client(self.srv.tls_port, flag, '-cipher',
                                   'DEFAULT@SECLEVEL=0')
                self.assertNotEqual(rc, 0, out)
                self.assertIn('New, (NONE), Cipher is (NONE)', out)
                self.assertIn('no peer certificate available', out)
                self.assertNotIn('Server certificate', out)
        # The refused handshakes did not disturb the service.
        self.assertLyrics(request(self.srv.tls_port, tls=True))

    def test_tls12_server_cipher_preference(self):
        # The client lists CHACHA20 first; the server's (Mozilla
        # intermediate) order puts AES128-GCM first and wins.
        ctx = tls_context(min_version=ssl.TLSVersion.TLSv1_2,
                          max_version=ssl.TLSVersion.TLSv1_2,
                          ciphers='ECDHE-ECDSA-CHACHA20-POLY1305:'
                                  'ECDHE-ECDSA-AES256-GCM-SHA384:'
                                  'ECDHE-ECDSA-AES128-GCM-SHA256')
        with connect(self.srv.tls_port, ctx=ctx) as c:
            self.assertEqual(c.sock.cipher()[0],
                             'ECDHE-ECDSA-AES128-GCM-SHA256')

    def test_tls12_weak_ciphers_refused(self):
        for cipher in ('ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384',
                       'AES128-GCM-SHA256', 'AES128-SHA'):
            with self.subTest(cipher=cipher):
                ctx = tls_context(min_version=ssl.TLSVersion.TLSv1_2,
                                  max_version=ssl.TLSVersion.TLSv1_2,
                                  ciphers=cipher + '@SECLEVEL=0')
                with self.assertRaises(ssl.SSLError):
                    connect(self.srv.tls_port, ctx=ctx).close()
        self.assertLyrics(request(self.srv.tls_port, tls=True))

    def test_tls12_renegotiation_refused(self):
        p = subprocess.Popen(['openssl', 's_client', '-connect',
                              '127.0.0.1:%d' % self.srv.tls_port, '-tls1_2'],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        out = b''
        try:
            deadline = time.monotonic() + 10
            asked = False
            while time.monotonic() < deadline:
                r, _, _ = select.select([p.stdout], [], [], 0.2)
                if r:
                    d = p.stdout.read1(65536)
                    if not d:
                        break
                    out += d
                if not asked and b'Verify return code' in out and \
                        b'---\n' in out.split(b'Verify return code')[-1]:
                    p.stdin.write(b'R\n')     # s_client: renegotiate
                    p.stdin.flush()
                    asked = True
        finally:
            p.kill()
            p.wait()
            p.stdin.close()
            p.stdout.close()
        text = out.decode(errors='replace')
        self.assertIn('New, TLSv1.2', text)
        self.assertIn('RENEGOTIATING', text)
        self.assertIn('no renegotiation', text)

    def test_tls11_refused_python(self):
        ctx = tls_context(max_version=ssl.TLSVersion.TLSv1_1,
                          ciphers='DEFAULT@SECLEVEL=0')
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        with self.assertRaises(ssl.SSLError):
            connect(self.srv.tls_port, ctx=ctx).close()

    def test_alpn_http11(self):
        for offer in (['http/1.1'], ['h2', 'http/1.1'],
                      ['spdy/3', 'http/1.1', 'h2']):
            with self.subTest(offer=offer):
                with connect(self.srv.tls_port,
                             ctx=tls_context(alpn=offer)) as c:
                    self.assertEqual(c.sock.selected_alpn_protocol(),
                                     'http/1.1')
                    c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
                    self.assertLyrics(c.read_response())

    def test_alpn_h2_only_not_selected(self):
        # Never claim h2: either no ALPN or a no_application_protocol alert.
        try:
            with connect(self.srv.tls_port, ctx=tls_context(alpn=['h2'])) as c:
                self.assertIsNone(c.sock.selected_alpn_protocol())
        except ssl.SSLError as e:
            self.assertRegex(str(e).upper(), r'NO[ _]APPLICATION[ _]PROTOCOL')

    def test_no_alpn_still_served(self):
        with connect(self.srv.tls_port, ctx=tls_context()) as c:
            self.assertIsNone(c.sock.selected_alpn_protocol())
            c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertLyrics(c.read_response())

    @unittest.skipUnless(shutil.which('curl'), 'curl not installed')
    def test_curl(self):
        for url in ('https://127.0.0.1:%d/' % self.srv.tls_port,
                    'http://127.0.0.1:%d/' % self.srv.port):
            with self.subTest(url=url):
                r = subprocess.run(['curl', '-sS', '-k', '--max-time', '10',
                                    url], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=20)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, read_lyrics())

    @unittest.skipUnless(shutil.which('curl'), 'curl not installed')
    def test_curl_keepalive_reuse(self):
        url = 'https://127.0.0.1:%d/' % self.srv.tls_port
        r = subprocess.run(['curl', '-sS', '-k', '-v', '--max-time', '10',
                            '-o', '/dev/null', url, '-o', '/dev/null', url],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        err = r.stderr.decode(errors='replace')
        self.assertIn('Re-using existing connection', err)
        self.assertIn('ALPN: server accepted http/1.1', err)


if __name__ == '__main__':
    unittest.main()


class DheTest(ServerTestCase):
    """The TLS 1.2 DHE suites of the Mozilla list can be negotiated (DH
    parameters by SSL_CTX_set_dh_auto).  They need an RSA certificate: the
    test ECDSA one can never pick them."""

    def test_dhe_rsa_with_an_rsa_certificate(self):
        import os
        from astleyd_test import _openssl
        srv = self.server(start=False)
        _openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout',
                 os.path.join(srv.dir, 'key.pem'), '-out',
                 os.path.join(srv.dir, 'cert.pem'), '-days', '2', '-subj',
                 '/CN=localhost')
        srv.start()
        rc, out = s_client(srv.tls_port, '-tls1_2', '-cipher',
                           'DHE-RSA-AES128-GCM-SHA256')
        self.assertEqual(rc, 0, out)
        self.assertIn('Cipher is DHE-RSA-AES128-GCM-SHA256', out)
        self.assertRegex(out, r'Server Temp Key: DH, 2048 bits')
        # The server's preference still puts ECDHE first.
        rc, out = s_client(srv.tls_port, '-tls1_2')
        self.assertEqual(rc, 0, out)
        self.assertIn('Cipher is ECDHE-RSA-AES128-GCM-SHA256', out)
