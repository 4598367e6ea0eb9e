"""The worker sandbox (issue 10): seccomp and no_new_privs in every worker
with the default config, `sandbox log` and `off`, what -t reports, the
master's note of a worker killed by SIGSYS, no inherited descriptor in a
worker, and workers holding exactly the configured group."""

import grp
import os
import signal
import subprocess
import tempfile
import unittest

import astleyd_test as T
from astleyd_test import ServerTestCase, is_root, proc_ids, request, wait_for


def proc_status(pid):
    """{field: value} of /proc/PID/status."""
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            out[k] = v.strip()
    return out


def kernel_sandbox():
    """None if this kernel has Landlock and seccomp filters, else why not
    (then `sandbox on` refuses to start)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    if libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint(1)) < 1:
        return 'no Landlock'
    with open('/proc/self/status') as f:
        if 'Seccomp:' not in f.read():
            return 'no seccomp'
    return None


def start_with(srv, **popen):
    """Start SRV (Server(start=False)) like Server.start does, with extra
    subprocess.Popen arguments."""
    srv.log = open(srv.logpath, 'ab')
    srv.proc = subprocess.Popen([T.BIN, '-d', '-f', srv.conf], cwd=srv.dir,
                                stdin=subprocess.DEVNULL, stdout=srv.log,
                                stderr=subprocess.STDOUT,
                                env=T._child_env(), **popen)
    srv.pid = srv.proc.pid
    srv.wait_ready()


@unittest.skipIf(kernel_sandbox(), kernel_sandbox())
class SandboxTest(ServerTestCase):

    def assertSandboxed(self, srv, seccomp, nnp):
        for w in srv.wait_workers():
            # A worker titles itself before its last set-up step.
            wait_for(lambda: proc_status(w)['Seccomp'] == str(seccomp), 5)
            st = proc_status(w)
            self.assertEqual(st['Seccomp'], str(seccomp), (w, st))
            self.assertEqual(st['NoNewPrivs'], str(nnp), (w, st))
        # The master is not sandboxed: it re-reads keys on reload.
        self.assertEqual(proc_status(srv.pid)['Seccomp'], '0')

    def test_default_is_on(self):
        srv = self.server()
        self.assertSandboxed(srv, 2, 1)
        self.assertEqual(request(srv.port).status, 200)
        self.assertEqual(request(srv.tls_port, tls=True).status, 200)

    def test_log(self):
        srv = self.server(extra={'sandbox': 'log'})
        self.assertSandboxed(srv, 2, 1)
        self.assertEqual(request(srv.tls_port, tls=True).status, 200)

    def test_off(self):
        srv = self.server(extra={'sandbox': 'off'})
        self.assertSandboxed(srv, 0, 0)
        self.assertEqual(request(srv.tls_port, tls=True).status, 200)

    def test_reload_to_off_and_back(self):
        srv = self.server()
        old = srv.wait_workers()
        srv.extra = {'sandbox': 'off'}
        srv.write_conf()
        rc, out, err = T.control(srv, 'reload')
        self.assertEqual(rc, 0, out + err)
        srv.wait_workers(exclude=old, timeout=15)
        self.assertSandboxed(srv, 0, 0)

    def test_t_reports_the_sandbox(self):
        srv = self.server(start=False)
        for value, want in (('on', r'astleyd: sandbox: on \(Landlock ABI '
                                   r'[0-9]+, seccomp filter of [0-9]+ '
                                   r'calls\)\n'),
                            ('log', r'astleyd: sandbox: log \(seccomp filter '
                                    r'of [0-9]+ calls, the kernel logs any '
                                    r'other; no Landlock\)\n'),
                            ('off', r'astleyd: sandbox: off\n')):
            srv.extra = {'sandbox': value}
            srv.write_conf()
            rc, out, err = T.run_bin(['-t', '-f', srv.conf])
            self.assertEqual(rc, 0, err)
            self.assertRegex(err, want)
        srv.extra = None
        srv.write_conf()
        rc, out, err = T.run_bin(['-t', '-f', srv.conf])
        self.assertRegex(err, r'sandbox: on \(', 'on is the default')

    def test_bad_value(self):
        srv = self.server(start=False)
        srv.extra = {'sandbox': 'maybe'}
        srv.write_conf()
        rc, out, err = T.run_bin(['-t', '-f', srv.conf])
        self.assertEqual(rc, 1)
        self.assertRegex(err, r'astleyd\.conf:[0-9]+: sandbox: invalid value '
                              r'"maybe" \(on, log or off\)')

    def test_sigsys_is_logged_and_respawned(self):
        srv = self.server(workers=1)
        # The one SIGSYS this test causes is not a finding.
        srv.check_log = lambda: None
        w = srv.wait_workers()
        os.kill(w[0], signal.SIGSYS)
        srv.wait_workers(exclude=w)
        self.assertTrue(wait_for(lambda: 'SIGSYS' in srv.read_log(), 5))
        self.assertIn('worker %d killed by signal %d (SIGSYS: a system call '
                      'outside the sandbox' % (w[0], signal.SIGSYS),
                      srv.read_log())
        self.assertEqual(request(srv.port).status, 200)

    def test_inherited_descriptor_never_reaches_a_worker(self):
        # (exec 7</etc/shadow; astleyd ...): fd 7 must be closed at start.
        secret = '/etc/shadow' if is_root() and os.path.exists(
            '/etc/shadow') else None
        tmp = None
        if secret is None:
            tmp = tempfile.NamedTemporaryFile(prefix='astleyd-secret-')
            self.addCleanup(tmp.close)
            secret = tmp.name
        fd = os.open(secret, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        srv = self.server(start=False)
        start_with(srv, pass_fds=(fd, 7),
                   preexec_fn=lambda: os.dup2(fd, 7))
        for pid in [srv.pid] + srv.wait_workers():
            links = []
            for f in os.listdir('/proc/%d/fd' % pid):
                try:
                    links.append(os.readlink('/proc/%d/fd/%s' % (pid, f)))
                except OSError:
                    pass
            self.assertNotIn(secret, links, pid)

    @unittest.skipUnless(is_root(), 'privilege drop needs root')
    def test_workers_hold_exactly_the_configured_group(self):
        srv = self.server(start=False)
        start_with(srv, extra_groups=[0, 4])
        self.assertEqual(sorted(proc_ids(srv.pid)['Groups']), [0, 4])
        gid = grp.getgrnam('nogroup').gr_gid
        for w in srv.wait_workers():
            ids = proc_ids(w)
            self.assertEqual(ids['Groups'], [gid], w)
            self.assertEqual(set(ids['Gid']), {gid}, w)
            self.assertNotIn(0, ids['Uid'] + ids['Gid'] + ids['Groups'])


if __name__ == '__main__':
    unittest.main()
