"""The Debian package: `make deb` builds it, lintian finds nothing at its
default level, it holds every file where Debian looks for it with the
configuration as a conffile, and its maintainer scripts do what they
should.  Nothing is installed on this machine: the package is unpacked
with dpkg-deb into a temp dir, and the postinst and postrm run with their
absolute paths moved under a throw-away root, with adduser stubbed out and
debhelper's service sections (update-rc.d, deb-systemd-helper,
invoke-rc.d) cut."""

import gzip
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from astleyd_test import ROOT, is_root

TOOLS = ('dpkg-buildpackage', 'dpkg-deb', 'dh', 'lintian', 'fakeroot')
MISSING = [t for t in TOOLS if shutil.which(t) is None]
BUILD_TIMEOUT = 240

# Every path the package must ship, and its mode.
FILES = {
    '/usr/sbin/astleyd': 0o755,
    '/etc/astleyd/astleyd.conf': 0o644,
    '/etc/init.d/astleyd': 0o755,
    '/etc/logrotate.d/astleyd': 0o644,
    '/lib/systemd/system/astleyd.service': 0o644,
    '/usr/share/man/man8/astleyd.8.gz': 0o644,
    '/usr/share/man/man5/astleyd.conf.5.gz': 0o644,
    '/usr/share/astleyd/gen-cert': 0o755,
    '/usr/share/doc/astleyd/copyright': 0o644,
}
CONFFILES = ('/etc/astleyd/astleyd.conf', '/etc/init.d/astleyd',
             '/etc/logrotate.d/astleyd')
# The paths the maintainer scripts touch; the tests move them under a
# temp root.
SCRIPT_PATHS = ('/etc/astleyd', '/var/log/astleyd', '/var/lib/astleyd',
                '/usr/share/astleyd')


def run(args, **kw):
    kw.setdefault('timeout', 60)
    return subprocess.run(args, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          **kw)


def changelog_version():
    with open(os.path.join(ROOT, 'debian', 'changelog')) as f:
        return re.match(r'astleyd \(([^)]+)\)', f.readline()).group(1)


def kernel_sandbox():
    """True if this kernel has Landlock (so `sandbox on` passes -t)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint(1)) >= 1


@unittest.skipIf(MISSING, 'Debian build tools missing: %s (scripts/deps '
                 'test installs them)' % ' '.join(MISSING))
class DebTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='astleyd-deb-')
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        # A scratch copy of the tree: the build tree under test and its
        # build/deb are left alone.
        cls.src = os.path.join(cls.tmp, 'src')
        shutil.copytree(ROOT, cls.src, ignore=shutil.ignore_patterns(
            'build', '.git', '*.pem', '*.log', '*.pid', '*.sock',
            '__pycache__'))
        # lintian runs below, on its own, so its lines can be read.
        cls.built = run(['make', '-s', 'deb', 'LINTIAN='], cwd=cls.src,
                        timeout=BUILD_TIMEOUT)
        cls.out = cls.built.stdout.decode(errors='replace')
        cls.deb = os.path.join(cls.src, 'build', 'deb',
                               'astleyd_%s_%s.deb' % (
                                   changelog_version(),
                                   run(['dpkg', '--print-architecture'])
                                   .stdout.decode().strip()))
        if cls.built.returncode != 0 or not os.path.exists(cls.deb):
            return
        cls.lintian = run(['lintian', cls.deb], timeout=120)
        cls.root = os.path.join(cls.tmp, 'root')
        cls.ctl = os.path.join(cls.tmp, 'control')
        run(['dpkg-deb', '-x', cls.deb, cls.root]).check_returncode()
        run(['dpkg-deb', '-e', cls.deb, cls.ctl]).check_returncode()

    def setUp(self):
        self.assertEqual(self.built.returncode, 0, self.out[-4000:])
        self.assertTrue(os.path.exists(self.deb), self.out[-4000:])

    def path(self, p):
        return os.path.join(self.root, p.lstrip('/'))

    def read(self, p):
        if p.endswith('.gz'):
            with gzip.open(self.path(p), 'rt') as f:
                return f.read()
        with open(self.path(p)) as f:
            return f.read()

    # ------------------------------------------------------------- package

    def test_lintian_clean(self):
        out = self.lintian.stdout.decode(errors='replace')
        bad = [l for l in out.splitlines() if re.match(r'[EW]: ', l)]
        self.assertEqual(bad, [], out)
        # Any override says why, in a comment just above it.
        ov = os.path.join(ROOT, 'debian', 'astleyd.lintian-overrides')
        if os.path.exists(ov):
            with open(ov) as f:
                lines = f.read().splitlines()
            for i, l in enumerate(lines):
                if l.strip() and not l.startswith('#'):
                    self.assertTrue(i > 0 and lines[i - 1].startswith('#'),
                                    'override without a reason: ' + l)

    def test_file_list(self):
        r = run(['dpkg-deb', '-c', self.deb])
        listed = {}
        for line in r.stdout.decode().splitlines():
            f = line.split()
            listed[f[-1].lstrip('.').rstrip('/')] = (f[0], f[1])
        for p, mode in FILES.items():
            with self.subTest(path=p):
                self.assertIn(p, listed)
                self.assertEqual(listed[p][1], 'root/root')
                self.assertEqual(os.stat(self.path(p)).st_mode & 0o777, mode)
        # Nothing the postinst makes is shipped.
        for p in listed:
            self.assertFalse(p.endswith('.pem'), p)
            self.assertFalse(p.startswith('/var/log'), p)

    def test_conffiles(self):
        with open(os.path.join(self.ctl, 'conffiles')) as f:
            conffiles = f.read().split()
        for p in CONFFILES:
            self.assertIn(p, conffiles)

    def test_version_from_changelog(self):
        version = changelog_version()
        r = run(['dpkg-deb', '-f', self.deb, 'Version'])
        self.assertEqual(r.stdout.decode().strip(), version)
        r = run([self.path('/usr/sbin/astleyd'), '-v'])
        self.assertEqual(r.stdout.decode().strip(), 'astleyd ' + version)

    def test_depends(self):
        r = run(['dpkg-deb', '-f', self.deb, 'Depends'])
        deps = r.stdout.decode()
        for d in ('adduser', 'openssl', 'libssl3', 'libbsd0', 'libseccomp2'):
            self.assertIn(d, deps)

    def test_hardened_binary(self):
        r = run(['readelf', '-h', '-d', '-l', self.path('/usr/sbin/astleyd')])
        out = r.stdout.decode()
        self.assertIn('DYN (Position-Independent Executable file)', out)
        self.assertIn('GNU_RELRO', out)
        self.assertRegex(out, r'FLAGS.*\bBIND_NOW\b|FLAGS_1.*\bNOW\b')

    def test_paths_are_the_packages(self):
        r = run([self.path('/usr/sbin/astleyd'), '-h'])
        self.assertIn(b'/etc/astleyd/astleyd.conf', r.stdout)
        r = run([self.path('/usr/sbin/astleyd'), '-V'])
        self.assertIn(b'\nconfiguration file: /etc/astleyd/astleyd.conf\n'
                      b'prefix: /usr\n', r.stdout)
        conf = self.read('/etc/astleyd/astleyd.conf')
        for d, v in (('user', 'astleyd'), ('group', 'astleyd'),
                     ('pidfile', '/run/astleyd.pid'),
                     ('tls_certificate', '/etc/astleyd/cert.pem'),
                     ('tls_certificate_key', '/etc/astleyd/key.pem'),
                     ('access_log', '/var/log/astleyd/access.log')):
            with self.subTest(directive=d):
                self.assertRegex(conf, r'(?m)^%s\s+%s$' % (d, re.escape(v)))
        self.assertNotIn('make run', conf)
        for p in ('/etc/init.d/astleyd', '/lib/systemd/system/astleyd.service',
                  '/etc/logrotate.d/astleyd', '/usr/share/man/man8/astleyd.8.gz',
                  '/usr/share/man/man5/astleyd.conf.5.gz'):
            with self.subTest(path=p):
                text = self.read(p)
                self.assertNotIn('/usr/local', text)
                self.assertIn('/etc/astleyd/astleyd.conf', text)
        unit = self.read('/lib/systemd/system/astleyd.service')
        self.assertIn('ExecStart=/usr/sbin/astleyd -d -f '
                      '/etc/astleyd/astleyd.conf', unit)
        init = self.read('/etc/init.d/astleyd')
        self.assertIn('DAEMON=/usr/sbin/astleyd', init)
        self.assertIn('CONFIG=/etc/astleyd/astleyd.conf', init)

    # ---------------------------------------------------- maintainer scripts

    def test_scripts_syntax(self):
        for s in ('preinst', 'postinst', 'prerm', 'postrm'):
            p = os.path.join(self.ctl, s)
            if not os.path.exists(p):
                continue
            with self.subTest(script=s):
                r = run(['sh', '-n', p])
                self.assertEqual(r.returncode, 0, r.stdout)
                if shutil.which('shellcheck'):
                    r = run(['shellcheck', '-s', 'sh', '-S', 'warning', p])
                    self.assertEqual(r.returncode, 0, r.stdout)

    def test_service_started_on_install(self):
        with open(os.path.join(self.ctl, 'postinst')) as f:
            post = f.read()
        self.assertIn("deb-systemd-helper enable 'astleyd.service'", post)
        # Started; on an upgrade neither stopped nor restarted: the
        # postinst's astleyd -s upgrade replaces the binary in place.
        self.assertIn("deb-systemd-invoke start 'astleyd.service'", post)
        self.assertNotIn('_dh_action', post)
        self.assertIn('update-rc.d astleyd defaults', post)
        self.assertIn('invoke-rc.d --skip-systemd-native astleyd', post)
        # The certificate is made before debhelper's part starts it.
        self.assertLess(post.index('make_cert\n'),
                        post.index('# Automatically added by'))

    def test_gen_cert(self):
        d = os.path.join(self.tmp, 'gencert')
        r = run([self.path('/usr/share/astleyd/gen-cert'), '-s', d])
        self.assertEqual(r.returncode, 0, r.stdout)
        cert, key = os.path.join(d, 'cert.pem'), os.path.join(d, 'key.pem')
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(cert).st_mode & 0o777, 0o644)
        # -s: self-signed by the openssl CLI, never by a mkcert CA; the
        # postinst asks for that.
        with open(os.path.join(self.ctl, 'postinst')) as f:
            self.assertIn('/usr/share/astleyd/gen-cert -s /etc/astleyd',
                          f.read())
        subj = run(['openssl', 'x509', '-noout', '-subject', '-in', cert])
        iss = run(['openssl', 'x509', '-noout', '-issuer', '-in', cert])
        self.assertEqual(subj.stdout.split(b'=', 1)[1],
                         iss.stdout.split(b'=', 1)[1])
        with open(cert, 'rb') as f:
            before = f.read()
        r = run([self.path('/usr/share/astleyd/gen-cert'), '-s', d])
        self.assertEqual(r.returncode, 1)
        self.assertIn(b'exists', r.stdout)
        with open(cert, 'rb') as f:
            self.assertEqual(f.read(), before)

    def test_configtest_of_shipped_config(self):
        """The unpacked binary passes -t with the shipped configuration,
        its paths moved into a temp dir, and a certificate from the
        packaged gen-cert."""
        d = os.path.join(self.tmp, 'configtest')
        r = run([self.path('/usr/share/astleyd/gen-cert'), d])
        self.assertEqual(r.returncode, 0, r.stdout)
        conf = self.read('/etc/astleyd/astleyd.conf')
        conf = conf.replace('/etc/astleyd/', d + '/')
        conf = conf.replace('/run/astleyd.pid', d + '/astleyd.pid')
        conf = conf.replace('/var/log/astleyd/', d + '/')
        # No astleyd user on this machine: the package's postinst makes it.
        conf = re.sub(r'(?m)^user\s.*$', 'user nobody', conf)
        conf = re.sub(r'(?m)^group\s.*$', 'group nogroup', conf)
        if not kernel_sandbox():
            conf = re.sub(r'(?m)^sandbox\s.*$', 'sandbox off', conf)
        path = os.path.join(d, 'astleyd.conf')
        with open(path, 'w') as f:
            f.write(conf)
        r = run([self.path('/usr/sbin/astleyd'), '-t', '-f', path])
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn(b'test is successful', r.stdout)

    # The postinst and postrm, run for real against a throw-away root.

    def script(self, name, root):
        """Maintainer script NAME with its paths moved under ROOT and
        debhelper's sections (which talk to init systems) cut."""
        with open(os.path.join(self.ctl, name)) as f:
            text = f.read()
        text = re.sub(r'(?ms)^# Automatically added by.*?'
                      r'^# End automatically added section\n', '', text)
        self.assertNotIn('deb-systemd', text)
        self.assertNotIn('update-rc.d', text)
        for p in SCRIPT_PATHS:
            text = text.replace(p, root + p)
        path = os.path.join(root, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def fake_root(self):
        """A throw-away root holding the unpacked package's files the
        scripts read, with the same path moves, and stub commands."""
        root = tempfile.mkdtemp(prefix='root-', dir=self.tmp)
        os.makedirs(root + '/etc/astleyd')
        with open(root + '/etc/astleyd/astleyd.conf', 'w') as f:
            f.write(self.read('/etc/astleyd/astleyd.conf')
                    .replace('/etc/astleyd', root + '/etc/astleyd'))
        shutil.copytree(self.path('/usr/share/astleyd'),
                        root + '/usr/share/astleyd')
        stubs = os.path.join(root, 'stubs')
        os.makedirs(stubs)
        # No astleyd user yet; adduser only records how it was called.
        for name, body in (('getent', 'exit 2'),
                           ('adduser', 'echo "$*" >> "%s/adduser.log"' %
                            root)):
            with open(os.path.join(stubs, name), 'w') as f:
                f.write('#!/bin/sh\n%s\n' % body)
            os.chmod(os.path.join(stubs, name), 0o755)
        self.env = dict(os.environ, PATH=stubs + ':' + os.environ['PATH'])
        return root

    def maint(self, root, name, *args):
        r = run(['sh', '-e', self.script(name, root)] + list(args),
                env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout)
        return r

    @unittest.skipUnless(is_root(), 'the postinst chowns to root:adm')
    def test_postinst_first_install_and_purge(self):
        root = self.fake_root()
        self.maint(root, 'postinst', 'configure', '')
        with open(root + '/adduser.log') as f:
            self.assertEqual(f.read().split(),
                             ['--system', '--group', '--no-create-home',
                              '--home', '/nonexistent', '--quiet', 'astleyd'])
        cert = root + '/etc/astleyd/cert.pem'
        key = root + '/etc/astleyd/key.pem'
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertTrue(os.path.exists(cert))
        import grp
        adm = grp.getgrnam('adm').gr_gid
        st = os.stat(root + '/var/log/astleyd')
        self.assertEqual((st.st_mode & 0o777, st.st_uid, st.st_gid),
                         (0o750, 0, adm))
        st = os.stat(root + '/var/log/astleyd/access.log')
        self.assertEqual((st.st_mode & 0o777, st.st_uid, st.st_gid),
                         (0o640, 0, adm))
        # An upgrade makes no certificate, even when it is missing.
        with open(cert, 'rb') as f:
            pem = f.read()
        self.maint(root, 'postinst', 'configure', '0.0.9')
        with open(cert, 'rb') as f:
            self.assertEqual(f.read(), pem)
        # Purge, after dpkg has removed the conffiles: everything goes.
        os.unlink(root + '/etc/astleyd/astleyd.conf')
        self.maint(root, 'postrm', 'purge')
        for p in ('/etc/astleyd', '/var/log/astleyd', '/var/lib/astleyd'):
            self.assertFalse(os.path.exists(root + p), p)

    @unittest.skipUnless(is_root(), 'the postinst chowns to root:adm')
    def test_postinst_keeps_operator_certificate(self):
        root = self.fake_root()
        cert = root + '/etc/astleyd/cert.pem'
        with open(cert, 'w') as f:
            f.write('operator\n')
        self.maint(root, 'postinst', 'configure', '')
        self.assertFalse(os.path.exists(root + '/etc/astleyd/key.pem'))
        self.assertFalse(os.path.exists(root + '/var/lib/astleyd'))
        os.unlink(root + '/etc/astleyd/astleyd.conf')
        r = self.maint(root, 'postrm', 'purge')
        self.assertIn(b'leaving the certificate', r.stdout)
        with open(cert) as f:
            self.assertEqual(f.read(), 'operator\n')

    @unittest.skipUnless(is_root(), 'the postinst chowns to root:adm')
    def test_postinst_replaced_certificate_survives_purge(self):
        root = self.fake_root()
        self.maint(root, 'postinst', 'configure', '')
        key = root + '/etc/astleyd/key.pem'
        with open(key, 'w') as f:
            f.write('a real key\n')
        os.unlink(root + '/etc/astleyd/astleyd.conf')
        self.maint(root, 'postrm', 'purge')
        self.assertTrue(os.path.exists(key))
        self.assertFalse(os.path.exists(root + '/var/log/astleyd'))

    @unittest.skipUnless(is_root(), 'the postinst chowns to root:adm')
    def test_postinst_config_elsewhere(self):
        root = self.fake_root()
        conf = root + '/etc/astleyd/astleyd.conf'
        with open(conf) as f:
            text = f.read()
        with open(conf, 'w') as f:
            f.write(re.sub(r'(?m)^tls_certificate\s.*$',
                           'tls_certificate /srv/tls/cert.pem', text))
        self.maint(root, 'postinst', 'configure', '')
        self.assertFalse(os.path.exists(root + '/etc/astleyd/cert.pem'))
        self.assertFalse(os.path.exists(root + '/etc/astleyd/key.pem'))


if __name__ == '__main__':
    unittest.main()

    @unittest.skipUnless(is_root(), 'the postinst chowns to root:adm')
    def test_postinst_upgrades_in_place(self):
        # On an upgrade ($2: the old version) the postinst asks the
        # running master to start the new binary (astleyd -s upgrade);
        # debhelper does not stop or restart the service.
        for name in ('postinst', 'prerm'):
            p = os.path.join(self.ctl, name)
            if os.path.exists(p):
                with open(p) as f:
                    text = f.read()
                self.assertNotIn('deb-systemd-invoke restart', text, name)
                self.assertNotIn('deb-systemd-invoke stop', text, name)
        cases = (('0', 'upgrade: new master 42 serving, old master 41 '
                  'finishing', 'astleyd: upgrade: new master 42', ''),
                 ('1', 'astleyd: not running? control socket x: No such '
                  'file or directory', '', ''),
                 ('1', 'upgrade failed, the old master keeps serving: bad',
                  '', 'keeps serving the old binary: upgrade failed'))
        for rc, said, out, err in cases:
            with self.subTest(said=said):
                root = self.fake_root()
                stub = os.path.join(root, 'stubs', 'astleyd')  # on PATH
                with open(stub, 'w') as f:
                    f.write('#!/bin/sh\necho "$*" >> "%s/astleyd.log"\n'
                            'echo "%s"\nexit %s\n' % (root, said, rc))
                os.chmod(stub, 0o755)
                r = self.maint(root, 'postinst', 'configure', '0.0.9')
                with open(root + '/astleyd.log') as f:
                    self.assertEqual(f.read(), '-f %s/etc/astleyd/astleyd.conf'
                                     ' -s upgrade\n' % root)
                text = r.stdout.decode()
                self.assertIn(out, text)
                self.assertIn(err, text)
                if not err:
                    self.assertNotIn('not upgraded', text)
                # A first install starts it (debhelper) instead.
                os.unlink(root + '/astleyd.log')
                self.maint(root, 'postinst', 'configure', '')
                self.assertFalse(os.path.exists(root + '/astleyd.log'))
