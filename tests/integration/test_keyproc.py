"""The private key never enters a worker (issue 10): a key process holds
it and signs for the workers.  Handshakes (full and resumed, TLS 1.2 and
1.3) work through it; no worker's memory holds the private scalar while
the key process's does; a reload with a new key starts a new key process
and the old one exits; a key process that dies is replaced."""

import os
import re
import signal
import socket
import ssl
import subprocess
import time
import unittest

from astleyd_test import (IO_TIMEOUT, ServerTestCase, alive, cmdline, connect, control,
                          is_root, request, tls_context, wait_for, _openssl,
                          KEYPROC_TITLE)

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
MAX_MAPPING = 1 << 32
CHUNK = 1 << 24
GET = 'GET / HTTP/1.1\r\nHost: keyproc\r\nConnection: close\r\n\r\n'


def private_scalar(keypath):
    """The EC private scalar of KEYPATH as bytes (openssl ec -text)."""
    out = subprocess.run(['openssl', 'ec', '-in', keypath, '-text',
                          '-noout'], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True).stdout
    text = out.decode()
    m = re.search(r'priv:\s*\n((?:\s+[0-9a-f:]+\n)+)', text)
    hexs = re.sub(r'[^0-9a-f]', '', m.group(1))
    b = bytes.fromhex(hexs)
    # openssl prints a leading 00 when the top bit is set.
    return b[-32:] if len(b) > 32 else b.rjust(32, b'\0')


def memory_holds(pid, needle):
    """True if NEEDLE is in any readable mapping of PID (as root)."""
    with open('/proc/%d/maps' % pid) as maps, \
            open('/proc/%d/mem' % pid, 'rb', 0) as mem:
        for line in maps:
            fields = line.split()
            if 'r' not in fields[1]:
                continue
            if len(fields) > 5 and fields[5] in ('[vvar]', '[vsyscall]'):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split('-'))
            # Sanitizer shadow memory: terabytes of untouched zeroes.
            if hi - lo > MAX_MAPPING:
                continue
            tail = b''
            while lo < hi:
                n = min(CHUNK, hi - lo)
                try:
                    mem.seek(lo)
                    data = mem.read(n)
                except (OSError, OverflowError, ValueError):
                    break
                if needle in tail + data:
                    return True
                tail = data[-len(needle):]
                lo += n
    return False


def peer_cert(port, **kw):
    c = connect(port, tls=True, ctx=tls_context(**kw))
    try:
        return c.sock.getpeercert(binary_form=True)
    finally:
        c.close()


def pem_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class KeyProcessTest(ServerTestCase):

    def handshake_ok(self, srv, version, resume=False):
        ctx = tls_context(min_version=version, max_version=version)
        c = connect(srv.tls_port, tls=True, ctx=ctx)
        try:
            c.send(GET)
            r = c.read_response()
            self.assertEqual(r.status, 200)
            c.read_until_eof()
            sess = c.sock.session
        finally:
            c.close()
        if not resume:
            return
        self.assertIsNotNone(sess)
        for _ in range(2):
            raw = socket.create_connection(('127.0.0.1', srv.tls_port),
                                           IO_TIMEOUT)
            t = ctx.wrap_socket(raw, session=sess)
            try:
                self.assertTrue(t.session_reused, version)
                t.sendall(GET.encode())
                data = b''
                while True:
                    d = t.recv(65536)
                    if not d:
                        break
                    data += d
                self.assertTrue(data.startswith(b'HTTP/1.1 200'), data[:80])
            finally:
                t.close()

    def test_handshakes(self):
        srv = self.server()
        self.assertEqual(len(srv.keyproc_pids()), 1)
        for v in (TLS12, TLS13):
            self.handshake_ok(srv, v, resume=True)

    def test_other_key_types(self):
        """RSA (PKCS#1 and PSS padding done in the worker) and P-384."""
        for name, newkey in (('rsa', ['-newkey', 'rsa:2048']),
                             ('p384', ['-newkey', 'ec', '-pkeyopt',
                                       'ec_paramgen_curve:P-384'])):
            with self.subTest(name):
                srv = self.server(start=False)
                key = os.path.join(srv.dir, 'key.pem')
                cert = os.path.join(srv.dir, 'cert.pem')
                _openssl('req', '-x509', *newkey, '-nodes', '-keyout', key,
                         '-out', cert, '-days', '2', '-subj',
                         '/CN=localhost')
                srv.start()
                self.assertEqual(len(srv.keyproc_pids()), 1)
                for v in (TLS12, TLS13):
                    self.handshake_ok(srv, v)
                self.assertEqual(peer_cert(srv.tls_port), pem_der(cert))
                srv.stop()

    def test_off(self):
        srv = self.server(extra={'tls_key_process': 'off'})
        self.assertEqual(srv.keyproc_pids(), [])
        for v in (TLS12, TLS13):
            self.handshake_ok(srv, v)

    @unittest.skipUnless(is_root(), 'reading /proc/PID/mem of processes '
                         'running as nobody needs root')
    def test_no_key_in_workers(self):
        srv = self.server()
        scalar = private_scalar(os.path.join(srv.dir, 'key.pem'))
        self.assertEqual(len(scalar), 32)
        for v in (TLS12, TLS13):
            self.handshake_ok(srv, v)
        kp = srv.keyproc_pids()
        self.assertEqual(len(kp), 1)
        # The search works: the key process has the scalar ...
        self.assertTrue(memory_holds(kp[0], scalar),
                        'scalar not found in the key process')
        # ... and no worker, nor the master, has it.
        workers = srv.wait_workers()
        for pid in workers:
            self.assertFalse(memory_holds(pid, scalar),
                             'private key in worker %d' % pid)
        self.assertFalse(memory_holds(srv.pid, scalar),
                         'private key in the master')

    def test_reload_new_key(self):
        srv = self.server()
        old_kp = srv.keyproc_pids()
        self.assertEqual(len(old_kp), 1)
        old_cert = peer_cert(srv.tls_port)
        # A new certificate for other-key.pem.
        key = os.path.join(srv.dir, 'other-key.pem')
        cert = os.path.join(srv.dir, 'other-cert.pem')
        _openssl('req', '-x509', '-new', '-key', key, '-out', cert, '-days',
                 '2', '-subj', '/CN=localhost')
        srv.write_conf(srv.conf_text()
                       .replace('cert.pem', 'other-cert.pem')
                       .replace('tls_certificate_key key.pem',
                                'tls_certificate_key other-key.pem'))
        rc, out, err = control(srv, 'reload')
        self.assertEqual(rc, 0, (out, err, srv.read_log()))
        new = peer_cert(srv.tls_port)
        self.assertEqual(new, pem_der(cert))
        self.assertNotEqual(new, old_cert)
        for v in (TLS12, TLS13):
            self.handshake_ok(srv, v)
        self.assertTrue(wait_for(lambda: not alive(old_kp[0]) or None, 10),
                        'old key process %d still running' % old_kp[0])
        kp = srv.keyproc_pids()
        self.assertEqual(len(kp), 1)
        self.assertNotEqual(kp, old_kp)

    def test_reload_mismatched_key(self):
        srv = self.server()
        old_kp = srv.keyproc_pids()
        srv.write_conf(srv.conf_text().replace(
            'tls_certificate_key key.pem', 'tls_certificate_key '
            'other-key.pem'))
        rc, out, err = control(srv, 'reload')
        self.assertNotEqual(rc, 0)
        self.assertIn('does not match', out + err)
        self.assertEqual(srv.keyproc_pids(), old_kp)
        self.handshake_ok(srv, TLS13)

    def test_keyproc_killed(self):
        srv = self.server()
        kp = srv.keyproc_pids()
        self.assertEqual(cmdline(kp[0]), KEYPROC_TITLE)
        old_workers = srv.wait_workers()
        os.kill(kp[0], signal.SIGKILL)
        # A new key process and a new generation of workers.
        self.assertTrue(wait_for(lambda: [p for p in srv.keyproc_pids()
                                          if p != kp[0]] or None, 10),
                        srv.read_log())
        srv.wait_workers(exclude=old_workers, timeout=10)
        for v in (TLS12, TLS13):
            self.handshake_ok(srv, v)
        self.assertIn('key process %d killed by signal 9' % kp[0],
                      srv.read_log())
        self.assertEqual(request(srv.port, host=srv.host).status, 200)

    def test_stopped_and_continued_processes_live_on(self):
        # kill -STOP and -CONT (a debugger, an operator's pause): the
        # sandboxed key process and workers go on where they were; a
        # system call outside the filter would have killed them.
        srv = self.server(workers=2)
        kp = srv.keyproc_pids()
        workers = srv.wait_workers()
        for pid in kp + workers:
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.2)
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.3)
        for v in (TLS12, TLS13):
            self.handshake_ok(srv, v)
        self.assertEqual(srv.keyproc_pids(), kp, srv.read_log())
        self.assertEqual(srv.worker_pids(), workers, srv.read_log())
        self.assertNotIn('killed', srv.read_log())


if __name__ == '__main__':
    unittest.main()
