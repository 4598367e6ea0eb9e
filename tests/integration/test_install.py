"""make install with PREFIX and DESTDIR puts every file where the system
looks for it, pointed at PREFIX and SYSCONFDIR, rebuilds what a new PREFIX
changes, installs a config that passes its own -t, an init script that
works with the config's pidfile, a log directory as Debian's Apache has
it, and never overwrites an edited config or a certificate."""

import grp
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from astleyd_test import ROOT, alive, is_root, request, wait_for
from test_system import InitFixture

ADM = None
try:
    ADM = grp.getgrnam('adm').gr_gid
except KeyError:
    pass


def kernel_sandbox():
    """True if this kernel has Landlock (so `sandbox on` passes -t)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint(1)) >= 1


def has_start_stop_daemon():
    return bool(shutil.which('start-stop-daemon') or
                os.path.exists('/sbin/start-stop-daemon'))


class InstallTest(unittest.TestCase):

    @classmethod
    def install(cls, prefix, destdir, *args):
        return subprocess.run(
            ['make', '-s', 'install', 'PREFIX=' + prefix,
             'DESTDIR=' + destdir] + list(args), cwd=cls.src,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=240)

    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix='astleyd-install-')
        cls.addClassCleanup(shutil.rmtree, cls.dest, True)
        # A scratch copy of the tree, so the build tree under test and a
        # concurrent build are left alone.
        cls.src = os.path.join(cls.dest, 'src')
        shutil.copytree(ROOT, cls.src, ignore=shutil.ignore_patterns(
            'build', '.git', '*.pem', '*.log', '*.pid', '*.sock'))
        # One build tree for three PREFIXes in a row: each must rebuild
        # what names its PREFIX.  /opt/ast last: the tests below reinstall
        # it.
        cls.r_local = os.path.join(cls.dest, 'usr-local')
        cls.r_usr = os.path.join(cls.dest, 'usr')
        cls.root = os.path.join(cls.dest, 'root')
        cls.installs = [cls.install('/usr/local', cls.r_local),
                        cls.install('/usr', cls.r_usr),
                        cls.install('/opt/ast', cls.root)]
        cls.installed = cls.installs[-1]

    def setUp(self):
        for r in self.installs:
            self.assertEqual(r.returncode, 0,
                             r.stdout.decode(errors='replace'))

    def path(self, p, root=None):
        return os.path.join(root or self.root, p.lstrip('/'))

    def read(self, p, root=None):
        with open(self.path(p, root)) as f:
            return f.read()

    def test_files_in_place(self):
        for p, mode in (('/opt/ast/sbin/astleyd', 0o755),
                        ('/opt/ast/etc/astleyd/astleyd.conf', None),
                        ('/opt/ast/share/man/man8/astleyd.8', 0o644),
                        ('/opt/ast/share/man/man5/astleyd.conf.5', 0o644),
                        ('/opt/ast/share/astleyd/gen-cert', 0o755),
                        ('/opt/ast/etc/init.d/astleyd', 0o755),
                        ('/opt/ast/etc/systemd/system/astleyd.service',
                         0o644),
                        ('/opt/ast/etc/logrotate.d/astleyd', 0o644)):
            with self.subTest(path=p):
                st = os.stat(self.path(p))
                if mode is not None:
                    self.assertEqual(st.st_mode & 0o777, mode)
        self.assertTrue(os.path.isdir(self.path('/var/log/astleyd')))

    def test_paths_point_at_prefix(self):
        r = subprocess.run([self.path('/opt/ast/sbin/astleyd'), '-h'],
                           stdout=subprocess.PIPE, timeout=10)
        self.assertIn(b'/opt/ast/etc/astleyd/astleyd.conf', r.stdout)
        conf = self.read('/opt/ast/etc/astleyd/astleyd.conf')
        self.assertRegex(conf, r'(?m)^pidfile\s+/run/astleyd\.pid$')
        self.assertRegex(conf,
                         r'(?m)^access_log\s+/var/log/astleyd/access\.log$')
        for p in ('/opt/ast/etc/init.d/astleyd',
                  '/opt/ast/etc/systemd/system/astleyd.service',
                  '/opt/ast/etc/logrotate.d/astleyd'):
            with self.subTest(path=p):
                text = self.read(p)
                self.assertIn('/opt/ast/sbin/astleyd', text)
                self.assertIn('/opt/ast/etc/astleyd/astleyd.conf', text)
                self.assertNotIn('/usr/local', text)

    def version(self, binary):
        r = subprocess.run([binary, '-V'], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        self.assertEqual(r.returncode, 0, r.stdout)
        return r.stdout.decode()

    def test_prefix_change_rebuilds(self):
        """Installed one after the other from one tree, each binary has
        its own PREFIX's config path built in."""
        for root, prefix, conf in (
                (self.r_local, '/usr/local',
                 '/usr/local/etc/astleyd/astleyd.conf'),
                (self.r_usr, '/usr', '/etc/astleyd/astleyd.conf'),
                (self.root, '/opt/ast', '/opt/ast/etc/astleyd/astleyd.conf')):
            with self.subTest(prefix=prefix):
                out = self.version(self.path(prefix + '/sbin/astleyd', root))
                self.assertIn('\nconfiguration file: %s\n' % conf, out)
                self.assertIn('\nprefix: %s\n' % prefix, out)
                r = subprocess.run([self.path(prefix + '/sbin/astleyd',
                                              root), '-h'],
                                   stdout=subprocess.PIPE, timeout=10)
                self.assertIn('(default %s)' % conf, r.stdout.decode())
        # The same PREFIX again compiles nothing.
        r = subprocess.run(['make', 'install', 'PREFIX=/opt/ast',
                            'DESTDIR=' + self.root], cwd=self.src,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=240)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotRegex(r.stdout.decode(), r'(?m)^\S*cc .* -c ')

    def test_sysconfdir(self):
        """PREFIX=/usr: everything under /etc; any other PREFIX: all of
        it under PREFIX/etc, nothing in /etc."""
        for root, prefix, etc in ((self.r_usr, '/usr', '/etc'),
                                  (self.r_local, '/usr/local',
                                   '/usr/local/etc'),
                                  (self.root, '/opt/ast', '/opt/ast/etc')):
            with self.subTest(prefix=prefix):
                for p in ('astleyd/astleyd.conf', 'astleyd/cert.pem',
                          'init.d/astleyd', 'systemd/system/astleyd.service',
                          'logrotate.d/astleyd'):
                    self.assertTrue(os.path.isfile(
                        self.path(etc + '/' + p, root)), etc + '/' + p)
                if prefix == '/usr':
                    self.assertFalse(os.path.exists(
                        self.path('/usr/etc', root)))
                else:
                    self.assertFalse(os.path.exists(self.path('/etc', root)))
                conf = etc + '/astleyd/astleyd.conf'
                sbin = prefix + '/sbin/astleyd'
                init = self.read(etc + '/init.d/astleyd', root)
                self.assertIn('DAEMON=%s\n' % sbin, init)
                self.assertIn('CONFIG=%s\n' % conf, init)
                unit = self.read(etc + '/systemd/system/astleyd.service',
                                 root)
                self.assertIn('ExecStart=%s -d -f %s\n' % (sbin, conf), unit)
                rot = self.read(etc + '/logrotate.d/astleyd', root)
                self.assertIn('%s -f %s -s reopen' % (sbin, conf), rot)
                for page in ('/share/man/man8/astleyd.8',
                             '/share/man/man5/astleyd.conf.5'):
                    self.assertIn(conf, self.read(prefix + page, root))

    def test_installed_config_passes_t(self):
        """The installed config, with its certificate made at install
        time, passes -t of the installed binary.  Its log path is moved
        into DESTDIR (not this machine's /var/log)."""
        etc = self.path('/opt/ast/etc/astleyd')
        self.assertEqual(os.stat(etc + '/key.pem').st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(etc + '/cert.pem').st_mode & 0o777, 0o644)
        text = self.read('/opt/ast/etc/astleyd/astleyd.conf')
        self.assertNotIn('make run', text)
        self.assertIn('/opt/ast/share/astleyd/gen-cert -s', text)
        self.assertRegex(text, r'(?m)^tls_certificate\s+cert\.pem$')
        text = text.replace('/var/log/astleyd/',
                            self.path('/var/log/astleyd') + '/')
        if not kernel_sandbox():
            text = re.sub(r'(?m)^sandbox\s.*$', 'sandbox off', text)
        conf = os.path.join(etc, 'moved-logs.conf')
        with open(conf, 'w') as f:
            f.write(text)
        r = subprocess.run([self.path('/opt/ast/sbin/astleyd'), '-t', '-f',
                            conf], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn(b'test is successful', r.stdout)

    def test_certificate_kept_and_gen_cert_no(self):
        etc = self.path('/opt/ast/etc/astleyd')
        with open(etc + '/cert.pem', 'rb') as f:
            cert = f.read()
        r = self.install('/opt/ast', self.root)
        self.assertEqual(r.returncode, 0, r.stdout)
        with open(etc + '/cert.pem', 'rb') as f:
            self.assertEqual(f.read(), cert)
        # Only a key there: no new pair either.
        other = os.path.join(self.dest, 'key-only')
        os.makedirs(other + '/opt/ast/etc/astleyd')
        with open(other + '/opt/ast/etc/astleyd/key.pem', 'w') as f:
            f.write('operator\n')
        r = self.install('/opt/ast', other)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertFalse(os.path.exists(other + '/opt/ast/etc/astleyd/'
                                        'cert.pem'))
        nocert = os.path.join(self.dest, 'no-cert')
        r = self.install('/opt/ast', nocert, 'GEN_CERT=no')
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertTrue(os.path.exists(nocert + '/opt/ast/etc/astleyd/'
                                       'astleyd.conf'))
        self.assertFalse(os.path.exists(nocert + '/opt/ast/etc/astleyd/'
                                        'cert.pem'))

    def test_log_dir_and_file_modes(self):
        """root:adm, 0750 and 0640, as Debian's Apache (the owner only
        when make install runs as root)."""
        st = os.stat(self.path('/var/log/astleyd'))
        self.assertEqual(st.st_mode & 0o7777, 0o750)
        lst = os.stat(self.path('/var/log/astleyd/access.log'))
        self.assertEqual(lst.st_mode & 0o7777, 0o640)
        self.assertEqual(lst.st_size, 0)
        if not is_root():
            self.assertEqual((st.st_uid, lst.st_uid), (os.getuid(),) * 2)
            return
        if ADM is None:
            self.skipTest('no adm group on this machine')
        self.assertEqual((st.st_uid, st.st_gid), (0, ADM))
        self.assertEqual((lst.st_uid, lst.st_gid), (0, ADM))

    def test_edited_config_kept(self):
        conf = self.path('/opt/ast/etc/astleyd/astleyd.conf')
        with open(conf, 'a') as f:
            f.write('# edited by the operator\n')
        r = self.install('/opt/ast', self.root)
        self.assertEqual(r.returncode, 0, r.stdout)
        with open(conf) as f:
            self.assertTrue(f.read().endswith('# edited by the operator\n'))

    @unittest.skipUnless(has_start_stop_daemon(),
                         'start-stop-daemon (dpkg) is not installed')
    def test_installed_init_script(self):
        """The installed init script and binary, pointed by a defaults
        file at a config whose pidfile is not the default, start, report,
        rotate, test and stop it; the pidfile ends with a newline and the
        log file the server creates is 0640."""
        logdir = tempfile.mkdtemp(prefix='logs-', dir=self.dest)
        log = os.path.join(logdir, 'access.log')
        fx = InitFixture(self, workers=1,
                         daemon=self.path('/opt/ast/sbin/astleyd'),
                         extra={'access_log': log})
        os.chmod(logdir, 0o755)
        os.mkdir(os.path.join(fx.srv.dir, 'state'))
        fx.pidfile = fx.srv.pidfile = os.path.join(fx.srv.dir, 'state',
                                                   'other.pid')
        fx.sock = re.sub(r'\.pid$', '.sock', fx.pidfile)
        fx.srv.write_conf(fx.srv.conf_text().replace(
            'pidfile astleyd.pid', 'pidfile state/other.pid'))
        with open(fx.defaults, 'a') as f:
            f.write('PIDFILE=/nonexistent/astleyd.pid\n')
        init = self.path('/opt/ast/etc/init.d/astleyd')

        def expect(action, status):
            return fx.expect(action, status, script=init)

        out = expect('status', 3)
        self.assertIn('not running', out)
        out = expect('configtest', 0)
        self.assertIn('test is successful', out)
        expect('rotate', 7)
        expect('start', 0)
        pid = fx.master()
        with open(fx.pidfile, 'rb') as f:
            self.assertEqual(f.read(), b'%d\n' % pid)
        fx.assert_serving()
        self.assertEqual(os.stat(log).st_mode & 0o777, 0o640)
        out = expect('status', 0)
        self.assertRegex(out, r'\b%d\b' % pid)
        os.rename(log, log + '.1')
        expect('rotate', 0)
        self.assertTrue(os.path.exists(log), 'rotate did not reopen')
        self.assertEqual(os.stat(log).st_mode & 0o777, 0o640)
        # The old generation finishes into the old file: an old worker
        # that has not run its SIGQUIT handler yet may take a request.
        self.assertTrue(wait_for(lambda: request(
            fx.srv.port, host=fx.srv.host) and os.path.getsize(log) > 0, 5,
            0.2), 'no line in the reopened log')
        expect('stop', 0)
        fx.assert_stopped(pid)
        self.assertFalse(alive(pid))
        expect('status', 3)


if __name__ == '__main__':
    unittest.main()
