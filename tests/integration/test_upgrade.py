"""Binary upgrade: `astleyd -s upgrade` starts the binary the master was
started from as a new master, hands it the listening sockets and ticket
keys, and finishes once the new one serves."""

import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import time

from astleyd_test import (IO_TIMEOUT, Conn, ServerTestCase, alive,
                          children, control, listening_sockets, request,
                          tls_context, wait_for)
from test_reload import Hammer
from test_system import NotifySocket

UPGRADED = re.compile(r'^upgrade: new master ([0-9]+) serving, old master '
                      r'([0-9]+) finishing$')
GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'


def connect_session(port, ctx, session=None):
    s = socket.create_connection(('127.0.0.1', port), IO_TIMEOUT)
    s.settimeout(IO_TIMEOUT)
    return Conn(ctx.wrap_socket(s, session=session))


class UpgradeTest(ServerTestCase):

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix='astleyd-notify-')
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def upgradable(self, **kw):
        """A server started from its own copy of the binary, which a
        test may then replace, as a package upgrade does."""
        srv = self.server(start=False, **kw)
        os.mkdir(os.path.join(srv.dir, 'sbin'), 0o755)
        copy = os.path.join(srv.dir, 'sbin', 'astleyd')
        shutil.copy2(srv.bin, copy)
        srv.bin = copy
        srv.start()
        return srv

    def replace_binary(self, srv, text):
        tmp = srv.bin + '.new'
        with open(tmp, 'w') as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.rename(tmp, srv.bin)

    def upgrade_ok(self, srv):
        old = srv.pid
        rc, out, err = control(srv, 'upgrade', timeout=60)
        self.assertEqual(rc, 0, out + err + srv.read_log())
        m = UPGRADED.match(out.strip())
        self.assertIsNotNone(m, out)
        new = int(m.group(1))
        self.assertEqual(int(m.group(2)), old)
        self.assertNotEqual(new, old)
        # The old master finishes and exits 0; the pidfile is the new one's.
        if not srv.daemon:
            self.assertEqual(srv.proc.wait(15), 0, srv.read_log())
        srv.adopt(new)
        self.assertTrue(wait_for(lambda: srv.read_pidfile() == new, 5),
                        'pidfile not handed over')
        return new

    def test_upgrade_under_load_loses_nothing(self):
        srv = self.upgradable(workers=2,
                              extra={'keepalive_requests': 1000000})
        before = listening_sockets(srv.pid)
        self.assertEqual(len(before), 2)
        ctx = tls_context(min_version=ssl.TLSVersion.TLSv1_3)
        with connect_session(srv.tls_port, ctx) as c:
            c.send(GET)
            self.assertLyrics(c.read_response())
            c.send(GET)
            c.read_response()
            sess = c.sock.session
        h = Hammer(srv)
        h.start()
        try:
            time.sleep(0.5)
            with h.lock:
                at_upgrade = sum(h.counts.values())
            new = self.upgrade_ok(srv)
            time.sleep(0.5)
            with h.lock:
                after = dict(h.counts)
        finally:
            stuck = h.finish()
        self.assertEqual(stuck, [])
        summary = '%r requests (%d before the upgrade, %d by 0.5 s after '\
            'it), %d errors, %d resent, keep-alive closes %r' % (
                h.counts, at_upgrade, sum(after.values()), len(h.errors),
                h.resent, h.closes)
        if os.environ.get('ASTLEYD_TEST_VERBOSE'):
            print(summary)
        self.assertEqual(h.errors, [], summary)
        self.assertGreater(sum(after.values()), at_upgrade + 50, summary)
        # The same listening sockets, now held by the new master.
        self.assertEqual(listening_sockets(new), before)
        # A session from before still resumes.
        with connect_session(srv.tls_port, ctx, sess) as c:
            c.send(GET)
            self.assertLyrics(c.read_response())
            self.assertTrue(c.sock.session_reused,
                            'ticket keys were not handed over')
        # And the new master is a master like any other.
        rc, out, err = control(srv, 'reload')
        self.assertEqual(rc, 0, err)
        self.assertIn(srv.stop(), (0, None))

    def test_upgrade_twice_as_a_daemon(self):
        srv = self.upgradable(workers=1, daemon=True)
        first = srv.pid
        second = self.upgrade_ok(srv)
        self.assertLyrics(request(srv.port))
        third = self.upgrade_ok(srv)
        self.assertEqual(len({first, second, third}), 3)
        self.assertLyrics(request(srv.tls_port, tls=True))
        rc, out, err = control(srv, 'status')
        self.assertEqual(rc, 0, err)
        self.assertIn('master %d,' % third, out)

    def test_broken_binary_keeps_the_old_master(self):
        srv = self.upgradable(workers=1)
        pid = srv.pid
        self.replace_binary(srv, '#!/bin/sh\necho "no such luck" >&2\n'
                            'exit 3\n')
        rc, out, err = control(srv, 'upgrade', timeout=60)
        self.assertEqual(rc, 1, out)
        self.assertIn('upgrade failed, the old master keeps serving: the '
                      'new master exited with status 3: no such luck', err)
        self.assertEqual(srv.read_pidfile(), pid)
        self.assertLyrics(request(srv.port))
        # The control socket is still the old master's.
        self.assertEqual(control(srv, 'reload')[0], 0)

    def test_unexecutable_binary_keeps_the_old_master(self):
        srv = self.upgradable(workers=1)
        os.chmod(srv.bin, stat.S_IRUSR)
        rc, out, err = control(srv, 'upgrade', timeout=60)
        self.assertEqual(rc, 1, out)
        self.assertRegex(err, r'upgrade failed, the old master keeps '
                         r'serving: the new master exited with status 127: '
                         r'\S+/sbin/astleyd: Permission denied')
        self.assertLyrics(request(srv.port))

    def test_broken_config_keeps_the_old_master(self):
        srv = self.upgradable(workers=1)
        pid = srv.pid
        srv.write_conf(srv.conf_text() + 'workers lots\n')
        rc, out, err = control(srv, 'upgrade', timeout=60)
        self.assertEqual(rc, 1, out)
        self.assertRegex(err, r'upgrade failed, the old master keeps '
                         r'serving: the new master exited with status 1: '
                         r'%s:[0-9]+: workers' % re.escape(srv.conf))
        self.assertEqual(srv.read_pidfile(), pid)
        self.assertLyrics(request(srv.port))

    def test_refused_while_stopping(self):
        srv = self.upgradable(workers=1, extra={'drain_timeout': '3s'})
        srv.signal(signal.SIGQUIT)          # draining for 3 s
        time.sleep(0.3)
        rc, out, err = control(srv, 'upgrade')
        self.assertEqual(rc, 1)
        self.assertIn('upgrade refused: the server is stopping', err)

    def test_systemd_follows_the_new_master(self):
        # Under systemd (NotifyAccess=all): the new master says READY=1
        # with its MAINPID; the old one does not say STOPPING=1.
        name = os.path.join(self.tmpdir(), 'notify')
        ns = NotifySocket(self, name)
        srv = self.upgradable(workers=1, env={'NOTIFY_SOCKET': name})
        pid, f = ns.expect('READY')
        self.assertEqual(f.get('MAINPID'), str(srv.pid))
        old = srv.pid
        new = self.upgrade_ok(srv)
        pid, f = ns.expect('READY')
        self.assertEqual((pid, f.get('MAINPID')), (new, str(new)), ns.seen)
        self.assertIsNone(ns.recv(1.0), 'the old master %d said more: %r'
                          % (old, ns.seen))

    def test_stop_while_the_new_master_starts(self):
        # The old master is told to stop before the new one serves: the
        # new one goes too, the client is told, the old one exits at
        # once (it used to spin, then kill a new master that served).
        srv = self.upgradable(workers=1)
        real = srv.bin + '.real'
        os.rename(srv.bin, real)
        self.replace_binary(srv, '#!/bin/sh\nsleep 2\nexec %s "$@"\n' %
                            real)
        client = subprocess.Popen([srv.bin, '-f', srv.conf, '-s',
                                   'upgrade'], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.addCleanup(client.kill)
        self.assertTrue(wait_for(lambda: len(children(srv.pid)) > 2, 5),
                        'no new master started')
        new = [p for p in children(srv.pid) if p not in
               srv.worker_pids() + srv.keyproc_pids()]
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        out, err = client.communicate(timeout=15)
        self.assertEqual(client.returncode, 1, out)
        self.assertIn('upgrade abandoned: the server is stopping', err)
        self.assertEqual(srv.proc.wait(10), 0, srv.read_log())
        self.assertLess(time.monotonic() - t0, 5)
        self.assertTrue(wait_for(lambda: not any(alive(p) for p in new), 5),
                        'the new master outlived the stop')
