"""make install with PREFIX and DESTDIR puts every file where the system
looks for it, pointed at PREFIX, and never overwrites an edited config."""

import os
import shutil
import subprocess
import tempfile
import unittest

from astleyd_test import ROOT


class InstallTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix='astleyd-install-')
        cls.addClassCleanup(shutil.rmtree, cls.dest, True)
        # A scratch copy of the tree, so the build tree under test and a
        # concurrent build are left alone.
        cls.src = os.path.join(cls.dest, 'src')
        shutil.copytree(ROOT, cls.src, ignore=shutil.ignore_patterns(
            'build', '.git', '*.pem', '*.log', '*.pid', '*.sock'))
        cls.root = os.path.join(cls.dest, 'root')
        cls.installed = subprocess.run(
            ['make', '-s', 'install', 'PREFIX=/opt/ast',
             'DESTDIR=' + cls.root], cwd=cls.src, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)

    def path(self, p):
        return os.path.join(self.root, p.lstrip('/'))

    def test_files_in_place(self):
        self.assertEqual(self.installed.returncode, 0,
                         self.installed.stdout.decode(errors='replace'))
        for p, mode in (('/opt/ast/sbin/astleyd', 0o755),
                        ('/opt/ast/etc/astleyd/astleyd.conf', None),
                        ('/opt/ast/share/man/man8/astleyd.8', 0o644),
                        ('/opt/ast/share/man/man5/astleyd.conf.5', 0o644),
                        ('/etc/init.d/astleyd', 0o755),
                        ('/etc/systemd/system/astleyd.service', 0o644),
                        ('/etc/logrotate.d/astleyd', 0o644)):
            with self.subTest(path=p):
                st = os.stat(self.path(p))
                if mode is not None:
                    self.assertEqual(st.st_mode & 0o777, mode)
        self.assertTrue(os.path.isdir(self.path('/var/log/astleyd')))

    def test_paths_point_at_prefix(self):
        self.assertEqual(self.installed.returncode, 0)
        r = subprocess.run([self.path('/opt/ast/sbin/astleyd'), '-h'],
                           stdout=subprocess.PIPE, timeout=10)
        self.assertIn(b'/opt/ast/etc/astleyd/astleyd.conf', r.stdout)
        with open(self.path('/opt/ast/etc/astleyd/astleyd.conf')) as f:
            conf = f.read()
        self.assertRegex(conf, r'(?m)^pidfile\s+/run/astleyd\.pid$')
        self.assertRegex(conf,
                         r'(?m)^access_log\s+/var/log/astleyd/access\.log$')
        for p in ('/etc/init.d/astleyd', '/etc/systemd/system/astleyd.service',
                  '/etc/logrotate.d/astleyd'):
            with self.subTest(path=p):
                with open(self.path(p)) as f:
                    text = f.read()
                self.assertIn('/opt/ast/', text)
                self.assertNotIn('/usr/local', text)

    def test_edited_config_kept(self):
        self.assertEqual(self.installed.returncode, 0)
        conf = self.path('/opt/ast/etc/astleyd/astleyd.conf')
        with open(conf, 'a') as f:
            f.write('# edited by the operator\n')
        r = subprocess.run(['make', '-s', 'install', 'PREFIX=/opt/ast',
                            'DESTDIR=' + self.root], cwd=self.src,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=240)
        self.assertEqual(r.returncode, 0, r.stdout)
        with open(conf) as f:
            self.assertTrue(f.read().endswith('# edited by the operator\n'))


if __name__ == '__main__':
    unittest.main()
