"""Stop, quit, master death, daemon start, respawn back-off and the
control socket (issue 3, "Stop", "Start", "Respawn", "A reload whose
outcome the operator can see")."""

import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest

import astleyd_test as T
from astleyd_test import (IO_TIMEOUT, START_TIMEOUT, ServerTestCase,
                          alive, cmdline, connect, control,
                          is_root, occupy_port, port_bindable, proc_state,
                          request, run_bin, wait_for)

GET = 'GET / HTTP/1.1\r\nHost: life\r\n\r\n'


def sock_path(srv):
    return re.sub(r'\.pid$', '.sock', srv.pidfile)


class LifecycleTestCase(ServerTestCase):

    def assertAllGone(self, srv, workers, rc=0):
        """Master and WORKERS gone (not even zombies of ours), pidfile and
        control socket removed, every port bindable again."""
        if srv.proc is not None:
            self.assertEqual(srv.wait_exit(5), rc, srv.read_log()[-4000:])
        else:
            self.assertTrue(wait_for(lambda: not alive(srv.pid), 5),
                            'master %d still running' % srv.pid)
        # The master reaps every worker before it exits.
        left = [p for p in workers if proc_state(p) is not None]
        self.assertEqual(left, [], 'workers left: %r' %
                         [(p, proc_state(p)) for p in left])
        self.assertFalse(os.path.exists(srv.pidfile), 'pidfile left behind')
        self.assertFalse(os.path.exists(sock_path(srv)),
                         'control socket left behind')
        for port in (srv.port, srv.tls_port):
            self.assertTrue(port_bindable(port), 'port %d still bound' %
                            port)


# ------------------------------------------------------------------ stop

class StopTest(LifecycleTestCase):

    def test_s_stop(self):
        srv = self.server(workers=2)
        workers = srv.wait_workers(2)
        idle = connect(srv.port)        # an idle keep-alive client
        self.addCleanup(idle.close)
        idle.send(GET)
        self.assertLyrics(idle.read_response())
        t0 = time.monotonic()
        rc, out, err = control(srv, 'stop')
        took = time.monotonic() - t0
        self.assertEqual((rc, out, err),
                         (0, 'stop in progress\nstop: stopped\n', ''))
        # Fast: the idle connection does not hold the stop up.
        self.assertLess(took, 3)
        # -s stop returned only once the master was gone.
        self.assertIsNotNone(wait_for(lambda: srv.proc.poll() is not None,
                                      1), 'master still running after '
                             '-s stop returned')
        self.assertAllGone(srv, workers)
        self.assertEqual(idle.read_until_eof(), b'')

    def test_s_quit_answers_keepalive_request(self):
        srv = self.server(workers=2, extra={'keepalive_timeout': '30s',
                                            'shutdown_timeout': '10s'})
        workers = srv.wait_workers(2)
        idle, partial = self.hold_connections(srv)
        quit_ = subprocess.Popen([T.BIN, '-f', srv.conf, '-s', 'quit'],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=T._child_env())
        self.addCleanup(lambda: quit_.poll() is None and quit_.kill())
        time.sleep(0.3)
        self.assertIsNone(quit_.poll(), '-s quit returned while requests '
                          'were in progress')
        # A worker holding no connection may already be gone; one that
        # holds these two must not be.
        self.assertTrue(any(alive(p) for p in workers))
        t0 = time.monotonic()
        idle.send(GET)
        self.assertLyrics(idle.read_response(), connection='close')
        self.assertClosed(idle)
        partial.send('\r\n')
        self.assertLyrics(partial.read_response(), connection='close')
        self.assertClosed(partial)
        out, err = quit_.communicate(timeout=10)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertEqual((quit_.returncode, out.decode(), err.decode()),
                         (0, 'graceful stop in progress\nquit: stopped\n',
                          ''))
        self.assertAllGone(srv, workers)

    def test_s_stop_during_graceful_stop_makes_it_fast(self):
        srv = self.server(workers=1, extra={'keepalive_timeout': '30s',
                                            'shutdown_timeout': '20s'})
        workers = srv.wait_workers(1)
        idle = connect(srv.port)
        self.addCleanup(idle.close)
        idle.send(GET)
        self.assertLyrics(idle.read_response())
        quit_ = subprocess.Popen([T.BIN, '-f', srv.conf, '-s', 'quit'],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=T._child_env())
        self.addCleanup(lambda: quit_.poll() is None and quit_.kill())
        time.sleep(0.3)
        self.assertIsNone(quit_.poll())     # the idle client holds it
        t0 = time.monotonic()
        st, out, err = control(srv, 'reload', timeout=10)
        self.assertEqual((st, err.strip()),
                         (1, 'reload refused: the server is stopping'), out)
        st, out, err = control(srv, 'stop', timeout=10)
        self.assertEqual((st, out), (0, 'stop in progress\nstop: stopped\n'),
                         err)
        self.assertLess(time.monotonic() - t0, 5)
        quit_.communicate(timeout=10)
        self.assertEqual(quit_.returncode, 0)
        self.assertAllGone(srv, workers)

    def test_sigquit_idle_keepalive_answered_then_bounded(self):
        srv = self.server(workers=2, extra={'keepalive_timeout': '30s',
                                            'shutdown_timeout': '2s'})
        workers = srv.wait_workers(2)
        conns = []
        for _ in range(2):
            c = connect(srv.port, timeout=10)
            self.addCleanup(c.close)
            c.send(GET)
            self.assertLyrics(c.read_response())
            conns.append(c)
        active, silent = conns
        t0 = time.monotonic()
        srv.signal(signal.SIGQUIT)
        time.sleep(0.3)
        active.send(GET)
        self.assertLyrics(active.read_response(), connection='close')
        self.assertClosed(active)
        # The silent one keeps its worker until shutdown_timeout, no longer.
        self.assertEqual(srv.wait_exit(6), 0)
        took = time.monotonic() - t0
        self.assertGreater(took, 1.5, 'graceful stop did not wait for the '
                           'open keep-alive connection')
        self.assertLess(took, 2 + 1.5, 'not bounded by shutdown_timeout')
        self.assertEqual(silent.read_until_eof(), b'')
        self.assertAllGone(srv, workers)

    def test_sigterm_with_client_not_reading(self):
        # More responses than the socket buffers hold (the kernel grows
        # the server's send buffer to megabytes), and all on one
        # connection, so the worker is left blocked writing.
        srv = self.server(workers=1, extra={'shutdown_timeout': '1s',
                                            'send_timeout': '60s',
                                            'keepalive_requests': 1000000})
        workers = srv.wait_workers(1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(IO_TIMEOUT)
        s.connect(('127.0.0.1', srv.port))
        burst = (GET * 10000).encode()
        s.settimeout(1)
        try:
            s.sendall(burst)            # the server stops reading too
        except socket.timeout:
            pass
        self.assertTrue(alive(workers[0]))
        # Only once the server's send queue is full and still is the
        # worker surely blocked writing (a worker that could finish its
        # response would rightly exit at once).
        port = s.getsockname()[1]

        def send_q():
            out = subprocess.run(['ss', '-tnH', 'state', 'established',
                                  'dport', '= :%d' % port],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL,
                                 timeout=5).stdout.split()
            return int(out[1]) if len(out) > 1 else 0
        last = [-1]

        def stalled():
            q = send_q()
            done = q > 0 and q == last[0]
            last[0] = q
            return done
        self.assertTrue(wait_for(stalled, 10, interval=0.3),
                        'the send queue never filled up')
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(5), 0)
        took = time.monotonic() - t0
        self.assertLess(took, 1 + 2, 'SIGTERM took %.1fs' % took)
        # The worker was still writing when shutdown_timeout ran out.
        self.assertIn('still busy after shutdown_timeout: killing it',
                      srv.read_log())
        self.assertAllGone(srv, workers)

    def test_sigkill_master_workers_exit(self):
        srv = self.server(workers=3, extra={'keepalive_timeout': '30s',
                                            'header_timeout': '30s'})
        workers = srv.wait_workers(3)
        idle, partial = self.hold_connections(srv, timeout=10)
        t0 = time.monotonic()
        srv.signal(signal.SIGKILL)
        srv.proc.wait(5)
        gone = wait_for(lambda: not any(alive(p) for p in workers), 1.5)
        self.assertTrue(gone, 'orphaned workers still running after %.1fs: '
                        '%r' % (time.monotonic() - t0,
                                [p for p in workers if alive(p)]))
        self.assertEqual(idle.read_until_eof(), b'')
        # A pidfile and control socket left by a killed master do not
        # stop the next start, and the new master answers -s.
        self.assertTrue(os.path.exists(srv.pidfile))
        self.assertTrue(os.path.exists(sock_path(srv)))
        srv.start()
        self.assertEqual(srv.read_pidfile(), srv.pid)
        self.assertLyrics(request(srv.port))
        rc, out, err = control(srv, 'reload')
        self.assertEqual(rc, 0, out + err)
        self.assertIn('reload ok', out)


# ---------------------------------------------------------------- daemon

class DaemonTest(LifecycleTestCase):

    def daemon_server(self, **kw):
        """A Server to be started as a daemon by launch()."""
        srv = self.server(start=False, **kw)
        srv.daemon = True
        srv.sandir = os.path.join(srv.dir, 'san')
        os.mkdir(srv.sandir)
        os.chmod(srv.sandir, 0o1777)
        os.chmod(srv.dir, 0o711)
        return srv

    def launch(self, srv):
        """Run the launcher (no -d) to completion: (status, out, err)."""
        r = subprocess.run([T.BIN, '-f', srv.conf], cwd=srv.dir,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=START_TIMEOUT,
                           env=T._child_env(srv.sandir))
        return (r.returncode, r.stdout.decode(errors='replace'),
                r.stderr.decode(errors='replace'))

    def assertServingNow(self, srv, workers):
        """Right as the launcher returns, without any polling."""
        self.assertTrue(os.path.exists(srv.pidfile),
                        'no pidfile when the launcher returned')
        pid = srv.read_pidfile()
        srv.pid = pid
        self.assertTrue(alive(pid), 'pidfile names dead pid %d' % pid)
        self.assertEqual(cmdline(pid), srv.master_title())
        self.assertLyrics(request(srv.port, host=srv.host))
        self.assertLyrics(request(srv.tls_port, host=srv.host, tls=True))
        w = srv.worker_pids()
        self.assertEqual(len(w), workers, w)
        self.assertTrue(all(cmdline(p) == T.WORKER_TITLE for p in w), w)
        self.assertTrue(stat.S_ISSOCK(os.stat(sock_path(srv)).st_mode))
        return pid

    def test_launcher_returns_when_serving(self):
        srv = self.daemon_server(workers=3)
        rc, out, err = self.launch(srv)
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertServingNow(srv, 3)
        workers = srv.worker_pids()
        rc, out, err = control(srv, 'stop')
        self.assertEqual((rc, err), (0, ''), out)
        self.assertAllGone(srv, workers)

    def test_launcher_fails_when_port_taken(self):
        srv = self.daemon_server(workers=2)
        mine = occupy_port(srv.tls_port, '::' if T.has_ipv6() else
                           '0.0.0.0')
        self.addCleanup(mine.close)
        rc, out, err = self.launch(srv)
        self.assertEqual((rc, out), (1, ''), err)
        self.assertIn('listen_tls %s: Address already in use' %
                      srv.listen_tls[0], err)
        self.assertFalse(os.path.exists(srv.pidfile))
        self.assertFalse(os.path.exists(sock_path(srv)))
        with self.assertRaises(ConnectionRefusedError):
            request(srv.port)

    def test_stale_pidfile_does_not_block_start(self):
        srv = self.daemon_server(workers=1)
        dead = subprocess.Popen(['true'])
        dead.wait()
        with open(srv.pidfile, 'w') as f:
            f.write('%d\n' % dead.pid)
        # And a control socket file nobody listens on.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(sock_path(srv))
        s.close()
        rc, out, err = self.launch(srv)
        self.assertEqual((rc, out, err), (0, '', ''))
        pid = self.assertServingNow(srv, 1)
        self.assertNotEqual(pid, dead.pid)
        rc, out, err = control(srv, 'reload')
        self.assertEqual(rc, 0, out + err)
        self.assertIn('reload ok', out)
        workers = srv.wait_workers(1)
        rc, out, err = control(srv, 'stop')
        self.assertEqual(rc, 0, out + err)
        self.assertAllGone(srv, workers)

    def test_pidfile_is_pid_and_newline(self):
        """The pidfile holds the master's pid and a newline, nothing
        else, in the foreground and as a daemon (whose pid is not the
        launcher's), over a longer stale one."""
        fg = self.server(workers=1)
        with open(fg.pidfile, 'rb') as f:
            self.assertEqual(f.read(), b'%d\n' % fg.pid)
        srv = self.daemon_server(workers=1)
        with open(srv.pidfile, 'w') as f:
            f.write('%d\n' % (2 ** 62))
        rc, out, err = self.launch(srv)
        self.assertEqual((rc, out, err), (0, '', ''))
        pid = self.assertServingNow(srv, 1)
        with open(srv.pidfile, 'rb') as f:
            self.assertEqual(f.read(), b'%d\n' % pid)
        workers = srv.worker_pids()
        rc, out, err = control(srv, 'stop')
        self.assertEqual(rc, 0, out + err)
        self.assertAllGone(srv, workers)


# --------------------------------------------------------------- respawn

RESPAWN_RE = re.compile(r'respawning in ([0-9]+) ms')


class RespawnTest(LifecycleTestCase):

    def test_backoff_when_workers_keep_dying(self):
        srv = self.server(workers=2)
        first = srv.wait_workers(2)
        killed = []
        t0 = time.monotonic()
        # Kill every worker the moment it appears, for 3 seconds.
        while time.monotonic() - t0 < 3:
            for p in srv.worker_pids():
                if p not in killed:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    killed.append(p)
            time.sleep(0.002)
        time.sleep(0.2)                 # the master logs the last deaths
        log = srv.read_log()
        forks = len(killed) - len(first)
        self.assertLess(forks, 20, 'fork storm: %d workers in 3 s\n%s' %
                        (forks, log))
        self.assertGreaterEqual(forks, 2, log)
        for p in killed:
            self.assertIn('worker %d killed by signal 9' % p, log)
        delays = [int(d) for d in RESPAWN_RE.findall(log)]
        self.assertGreaterEqual(len(delays), 4, log)
        self.assertEqual(delays[0], 100, log)
        for a, b in zip(delays, delays[1:]):
            self.assertEqual(b, min(2 * a, 10000), 'delays %r' % delays)
        # Left alone, the pool recovers to its size and serves.
        new = srv.wait_workers(2, exclude=killed, timeout=8)
        self.assertLyrics(request(srv.port))
        self.assertLyrics(request(srv.tls_port, tls=True))
        # A worker that served a while and then dies is replaced at once:
        # the back-off is over.
        time.sleep(1.2)
        os.kill(new[0], signal.SIGKILL)
        t1 = time.monotonic()
        srv.wait_workers(2, exclude=killed + [new[0]], timeout=5)
        # (The back-off would be seconds by now.)
        self.assertLess(time.monotonic() - t1, 2,
                        'healthy worker not replaced at once\n%s' %
                        srv.read_log())


# --------------------------------------------------------- control socket

NOBODY_CLIENT = r'''
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print('connect failed: %s' % e.__class__.__name__)
    sys.exit(0)
data = b''
try:
    s.sendall(b'stop\n')
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
except OSError:
    pass                # closed on us: the same as no reply
print('reply: %r' % data)
'''


class ControlTest(LifecycleTestCase):

    def test_not_running(self):
        srv = self.server(start=False)
        path = sock_path(srv)
        for cmd in ('reload', 'stop', 'quit', 'reopen'):
            rc, out, err = control(srv, cmd)
            self.assertEqual((rc, out), (1, ''), err)
            self.assertEqual(err, 'astleyd: not running? control socket '
                             '%s: No such file or directory\n' % path)
        # A socket file left behind, nobody listening.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
        rc, out, err = control(srv, 'reload')
        self.assertEqual((rc, out), (1, ''), err)
        self.assertEqual(err, 'astleyd: not running? control socket %s: '
                         'Connection refused\n' % path)

    def test_bogus_command_is_usage(self):
        srv = self.server(workers=1)
        workers = srv.wait_workers(1)
        for args in (['-s', 'bogus'], ['-s', 'RELOAD'], ['-s', '']):
            rc, out, err = run_bin(['-f', srv.conf] + args)
            self.assertEqual((rc, out), (1, ''), args)
            # What is wrong first, then the usage.
            first, rest = err.split('\n', 1)
            self.assertEqual(first, 'astleyd: invalid -s command "%s" '
                             '(reload, stop, quit, reopen, upgrade or status)'
                             % args[1])
            self.assertTrue(rest.startswith('usage: astleyd'), err)
        self.assertEqual(srv.worker_pids(), workers)
        self.assertLyrics(request(srv.port))

    def test_socket_mode_0600(self):
        srv = self.server(workers=1)
        st = os.lstat(sock_path(srv))
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, os.geteuid())
        # Reopen does not change it.
        rc, out, err = control(srv, 'reopen')
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'^reopened logs, generation [0-9]+\n$')
        self.assertEqual(stat.S_IMODE(os.lstat(sock_path(srv)).st_mode),
                         0o600)

    @unittest.skipUnless(is_root(), 'running a client as nobody needs root')
    def test_other_user_refused(self):
        srv = self.server(workers=1)
        workers = srv.wait_workers(1)
        path = sock_path(srv)
        nobody = pwd.getpwnam('nobody')
        os.chmod(srv.dir, 0o711)        # let nobody reach the socket path

        def as_nobody():
            r = subprocess.run([sys.executable, '-c', NOBODY_CLIENT, path],
                               user=nobody.pw_uid, group=nobody.pw_gid,
                               extra_groups=[], cwd='/',
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=20)
            return r.stdout.decode(errors='replace').strip()

        self.assertEqual(as_nobody(), 'connect failed: PermissionError')
        # astleyd -s says so, not "not running?".
        r = subprocess.run([T.BIN, '-f', srv.conf, '-s', 'reload'],
                           user=nobody.pw_uid, group=nobody.pw_gid,
                           extra_groups=[], cwd='/', env=T._child_env(),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=20)
        self.assertEqual((r.returncode, r.stdout), (1, b''), r.stderr)
        self.assertEqual(r.stderr.decode(), 'astleyd: permission denied: '
                         'control socket %s: Permission denied (only root '
                         "and the master's user may ask)\n" % path)
        # Even with the mode loosened, the master asks who is calling,
        # and says why it will not answer.
        os.chmod(path, 0o666)
        self.assertEqual(as_nobody(), 'reply: %r' % (
            b"error permission denied: only root and the master's user "
            b"may ask\n"))
        self.assertIn('control: refused a client with uid %d' %
                      nobody.pw_uid, srv.read_log())
        self.assertTrue(alive(srv.pid))
        self.assertEqual(srv.worker_pids(), workers)
        self.assertLyrics(request(srv.port))
        rc, out, err = control(srv, 'reload')
        self.assertEqual(rc, 0, out + err)


if __name__ == '__main__':
    unittest.main()
