"""scripts/certbot-deploy-hook: certbot's deploy hook reloads astleyd and
fails loudly when the reload fails."""

import os
import shutil
import subprocess

import ssl

from astleyd_test import ROOT, ServerTestCase, make_certs, request


def served_cert(port):
    return ssl.get_server_certificate(('127.0.0.1', port))

HOOK = os.path.join(ROOT, 'scripts', 'certbot-deploy-hook')


class CertbotHookTest(ServerTestCase):

    def hook(self, srv):
        env = dict(os.environ, ASTLEYD=srv.bin, ASTLEYD_CONFIG=srv.conf,
                   RENEWED_DOMAINS='example.org www.example.org',
                   RENEWED_LINEAGE='/etc/letsencrypt/live/example.org')
        return subprocess.run([HOOK], env=env, capture_output=True,
                              text=True, timeout=60)

    def test_renewed_certificate_served(self):
        srv = self.server(workers=1)
        before = served_cert(srv.tls_port)
        # A renewal: a new certificate and key in place of the old.
        fresh = os.path.join(srv.dir, 'fresh')
        os.mkdir(fresh)
        make_certs(fresh)
        for name in ('cert.pem', 'key.pem'):
            shutil.copy(os.path.join(fresh, name),
                        os.path.join(srv.dir, name))
        r = self.hook(srv)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r'^astleyd: reload ok: generation 1, 1 '
                         r'workers serving \(renewed: example.org '
                         r'www.example.org\)$')
        self.assertNotEqual(served_cert(srv.tls_port), before)
        self.assertLyrics(request(srv.tls_port, tls=True))

    def test_failed_reload_fails_the_hook(self):
        srv = self.server(workers=1)
        with open(os.path.join(srv.dir, 'cert.pem'), 'w') as f:
            f.write('not a certificate\n')
        r = self.hook(srv)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('astleyd: RELOAD FAILED after renewing example.org '
                      'www.example.org; the old certificate keeps serving: '
                      'reload failed', r.stderr)
        self.assertIn('cert.pem', r.stderr)
        self.assertLyrics(request(srv.tls_port, tls=True))
