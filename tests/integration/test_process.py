"""Process model: titles, privilege drop, respawn, signals, pidfile, daemon."""

import ctypes
import grp
import os
import pwd
import re
import signal
import socket
import ssl
import threading
import time
import unittest

from astleyd_test import (START_TIMEOUT, WORKER_TITLE, ServerTestCase, alive,
                          cmdline, connect, free_port, has_ipv6, is_root,
                          port_bindable, proc_ids, request, run_bin,
                          wait_for)



def become_subreaper():
    """Adopt orphans so a daemonized master's exit status reaches us."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0     # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def catches(pid, sig):
    """Whether process PID has a handler for SIG (SigCgt in its status)."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('SigCgt:'):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


class ProcessTest(ServerTestCase):

    def test_sigterm_during_startup_is_a_clean_exit(self):
        # A stop asked for before every worker reported ready is still a
        # stop that was asked for: exit status 0, not a failed start (a
        # worker killed before its ready message made it 1).
        # The window is between the master's handlers and its last
        # worker's ready message; a few tries find it.
        for _ in range(5):
            srv = self.server(workers=4, start=False)
            srv.start(wait=False)
            self.assertTrue(wait_for(lambda: catches(srv.pid, signal.SIGTERM),
                                     START_TIMEOUT, 0.001),
                            'the master never caught SIGTERM')
            os.kill(srv.pid, signal.SIGTERM)
            self.assertEqual(srv.wait_exit(), 0, srv.read_log())
            log = srv.read_log()
            self.assertIn('stopping', log)
            if 'started:' not in log.split('stopping', 1)[0]:
                # It never says it started (nor READY=1) once stopping.
                self.assertNotIn('started:', log)
                return
        self.skipTest('every worker was ready before SIGTERM in 5 tries')

    def test_titles_and_worker_count(self):
        srv = self.server(workers=3)
        self.assertEqual(cmdline(srv.pid), srv.master_title())
        workers = srv.wait_workers(3)
        for w in workers:
            self.assertEqual(cmdline(w), WORKER_TITLE)

    def test_workers_auto(self):
        srv = self.server(workers='auto')
        ncpu = {os.cpu_count(), len(os.sched_getaffinity(0))}
        w = wait_for(lambda: len(srv.worker_pids()) in ncpu and
                     srv.worker_pids(), 5)
        self.assertTrue(w, 'workers auto: %r workers, CPUs %r' %
                        (srv.worker_pids(), ncpu))

    def test_workers_default_is_auto(self):
        srv = self.server(workers=None)
        ncpu = {os.cpu_count(), len(os.sched_getaffinity(0))}
        w = wait_for(lambda: len(srv.worker_pids()) in ncpu, 5)
        self.assertTrue(w, '%r workers, CPUs %r' % (srv.worker_pids(), ncpu))

    @unittest.skipUnless(is_root(), 'privilege drop needs root')
    def test_workers_not_root(self):
        srv = self.server(workers=2)
        uid = pwd.getpwnam('nobody').pw_uid
        try:
            gid = grp.getgrnam('nogroup').gr_gid
        except KeyError:
            gid = pwd.getpwnam('nobody').pw_gid
        for w in srv.wait_workers(2):
            ids = proc_ids(w)
            self.assertEqual(ids['Uid'], [uid] * 4, 'worker %d %r' % (w, ids))
            self.assertEqual(ids['Gid'], [gid] * 4, 'worker %d %r' % (w, ids))
            self.assertNotIn(0, ids['Uid'] + ids['Gid'] + ids['Groups'])
            self.assertIn(ids['Groups'], ([], [gid]))
        # The master keeps root to re-read keys on reload.
        self.assertEqual(proc_ids(srv.pid)['Uid'][1], 0)
        self.assertLyrics(request(srv.port))

    @unittest.skipUnless(is_root(), 'privilege drop needs root')
    def test_workers_user_group_directives(self):
        try:
            pw = pwd.getpwnam('daemon')
            gr = grp.getgrnam('daemon')
        except KeyError:
            self.skipTest('no daemon user/group')
        srv = self.server(extra={'user': 'daemon', 'group': 'daemon'})
        for w in srv.wait_workers(2):
            ids = proc_ids(w)
            self.assertEqual(ids['Uid'], [pw.pw_uid] * 4)
            self.assertEqual(ids['Gid'], [gr.gr_gid] * 4)

    def test_workers_hold_no_files(self):
        # Before its first accept a worker closes what it must not hold:
        # the pidfile, pipes to the master, certificate files.  Beyond
        # stdio only sockets and the epoll instance remain.
        # The ready pipe is closed once the worker has reported that it
        # accepts, a moment after fork: poll for that state, bounded.
        srv = self.server(workers=2)

        def held(w):
            fds = {}
            for fd in os.listdir('/proc/%d/fd' % w):
                try:
                    fds[int(fd)] = os.readlink('/proc/%d/fd/%s' % (w, fd))
                except OSError:
                    pass
            return fds

        for w in srv.wait_workers(2):
            def clean():
                extra = {fd: t for fd, t in held(w).items() if fd > 2 and
                         not t.startswith(('socket:', 'anon_inode:'))}
                return extra or None
            wait_for(lambda: clean() is None, 5)
            self.assertEqual(clean(), None, 'worker %d holds %r' %
                             (w, clean()))
            self.assertNotIn(srv.pidfile, held(w).values())

    def test_killed_worker_replaced(self):
        srv = self.server(workers=2)
        old = srv.wait_workers(2)
        os.kill(old[0], signal.SIGKILL)
        t0 = time.monotonic()
        new = srv.wait_workers(2, exclude=[old[0]], timeout=5)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertIn(old[1], new)
        for _ in range(10):
            self.assertLyrics(request(srv.port))
            self.assertLyrics(request(srv.tls_port, tls=True))
        self.assertEqual(cmdline(srv.pid), srv.master_title())

    def test_all_workers_killed_replaced(self):
        srv = self.server(workers=2)
        old = srv.wait_workers(2)
        for w in old:
            os.kill(w, signal.SIGKILL)
        srv.wait_workers(2, exclude=old, timeout=5)
        self.assertLyrics(request(srv.port))

    def test_sigterm_stops_everything(self):
        srv = self.server(workers=2)
        workers = srv.wait_workers(2)
        c = connect(srv.port)          # an idle keep-alive client
        self.addCleanup(c.close)
        c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertLyrics(c.read_response())
        self.assertTrue(os.path.exists(srv.pidfile))
        self.assertEqual(srv.read_pidfile(), srv.pid)
        t0 = time.monotonic()
        self.assertEqual(srv.stop(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertTrue(wait_for(lambda: not any(alive(p) for p in workers),
                                 3), 'workers outlived the master')
        self.assertFalse(os.path.exists(srv.pidfile), 'pidfile left behind')
        self.assertTrue(port_bindable(srv.port))
        self.assertTrue(port_bindable(srv.tls_port))
        # A new server on the same ports works straight away.
        srv2 = self.server(listen=srv.listen, listen_tls=srv.listen_tls)
        self.assertLyrics(request(srv2.port))
        self.assertLyrics(request(srv2.tls_port, tls=True))

    def test_sigint_and_sigquit_stop(self):
        for sig in (signal.SIGINT, signal.SIGQUIT):
            with self.subTest(sig=sig.name):
                srv = self.server(workers=1)
                workers = srv.wait_workers(1)
                self.assertEqual(srv.stop(sig), 0)
                self.assertFalse(os.path.exists(srv.pidfile))
                self.assertTrue(wait_for(
                    lambda: not any(alive(p) for p in workers), 3))
                self.assertTrue(port_bindable(srv.port))

    def test_sigterm_lets_response_finish(self):
        # A request whose header completes right after SIGTERM still gets
        # its whole response; idle clients just see EOF.
        srv = self.server(workers=1)
        c = connect(srv.port)
        self.addCleanup(c.close)
        c.send('GET / HTTP/1.1\r\nHost: x\r\n')
        time.sleep(0.1)                # the worker is in the header read
        srv.signal(signal.SIGTERM)
        c.send('Connection: close\r\n\r\n')
        try:
            r = c.read_response()
        except (OSError, AssertionError) as e:
            r = e
        # Either answered fully or closed before anything was sent: never
        # a truncated response.
        if isinstance(r, Exception):
            self.assertEqual(c.buf, b'', 'truncated response: %r' % r)
            self.assertNotIn('EOF in body', str(r))
        else:
            self.assertLyrics(r, connection='close')
        self.assertEqual(srv.wait_exit(), 0)

    def test_graceful_stop_bounded_by_shutdown_timeout(self):
        # SIGQUIT waits for requests in progress, but no longer than
        # shutdown_timeout, even when header_timeout is much longer.
        srv = self.server(workers=1, extra={'shutdown_timeout': '1s',
                                            'header_timeout': '60s'})
        c = connect(srv.port, timeout=10)
        self.addCleanup(c.close)
        c.send('GET / HTTP/1.1\r\nHost: x\r\n')      # and then nothing
        time.sleep(0.1)
        t0 = time.monotonic()
        self.assertEqual(srv.stop(signal.SIGQUIT), 0)
        took = time.monotonic() - t0
        self.assertLess(took, 4, 'SIGQUIT took %.1fs' % took)
        self.assertFalse(os.path.exists(srv.pidfile))

    def test_graceful_stop_finishes_request_in_progress(self):
        # SIGQUIT: a request that arrives on an open connection before the
        # worker gave up on it is answered completely.
        srv = self.server(workers=1, extra={'shutdown_timeout': '5s'})
        c = connect(srv.port, timeout=10)
        self.addCleanup(c.close)
        c.send('GET / HTTP/1.1\r\nHost: x\r\n')
        time.sleep(0.1)
        srv.signal(signal.SIGQUIT)
        time.sleep(0.1)
        c.send('\r\n')
        self.assertLyrics(c.read_response(), connection='close')
        self.assertClosed(c)
        self.assertEqual(srv.wait_exit(), 0)

    def reload(self, srv, **changes):
        for k, v in changes.items():
            setattr(srv, k, v)
        srv.write_conf()
        srv.signal(signal.SIGHUP)

    def test_sighup_new_worker_count(self):
        srv = self.server(workers=2)
        old = srv.wait_workers(2)
        self.reload(srv, workers=3)
        new = srv.wait_workers(3, exclude=old, timeout=8)
        self.assertEqual(len(set(new)), 3)
        self.assertTrue(wait_for(lambda: not any(alive(p) for p in old), 8),
                        'old workers still running')
        self.assertEqual(cmdline(srv.pid), srv.master_title())
        self.assertLyrics(request(srv.port))
        self.assertLyrics(request(srv.tls_port, tls=True))
        # And back down.
        self.reload(srv, workers=1)
        srv.wait_workers(1, exclude=new, timeout=8)
        self.assertLyrics(request(srv.port))

    def test_sighup_new_listen_port(self):
        srv = self.server(workers=2)
        old_port = srv.port
        new_port = free_port()
        self.reload(srv, listen=['*:%d' % new_port])

        def serves():
            try:
                return request(new_port).status == 200
            except (OSError, AssertionError):
                return False
        self.assertTrue(wait_for(serves, 8), 'new port %d not served\n%s' %
                        (new_port, srv.read_log()))
        self.assertLyrics(request(new_port))
        # An old worker that took the connection in the instant before
        # it saw its QUIT answers it, with "Connection: close".
        resp = request(srv.tls_port, tls=True)
        self.assertIn(resp.get('Connection'), (None, 'close'))
        self.assertLyrics(resp, connection=resp.get('Connection'))

        def old_closed():
            try:
                request(old_port)
                return False
            except ConnectionRefusedError:
                return True
            except (OSError, AssertionError):
                return False
        self.assertTrue(wait_for(old_closed, 8),
                        'port %d dropped from the config still accepts' %
                        old_port)

    def test_sighup_keeps_unchanged_listener(self):
        # Clients hammering the unchanged port during reloads are never
        # refused or dropped: the listening socket survives, and a request
        # a worker has accepted is answered.
        srv = self.server(workers=2)
        old = srv.wait_workers(2)
        errors = []
        served = [0]
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                try:
                    r = request(srv.port, 'GET / HTTP/1.1\r\nHost: x\r\n'
                                'Connection: close\r\n\r\n')
                    if r.status != 200:
                        errors.append(r.status_line)
                    served[0] += 1
                except (OSError, AssertionError) as e:
                    errors.append(repr(e))
        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for _ in range(3):
                time.sleep(0.2)
                self.reload(srv, workers=2)
                old = srv.wait_workers(2, exclude=old, timeout=8)
            time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertGreater(served[0], 10)
        self.assertEqual(errors, [], '%d requests served' % served[0])

    def test_sighup_broken_config_keeps_serving(self):
        srv = self.server(workers=2)
        old = srv.wait_workers(2)
        good = srv.conf_text()
        lines = good.splitlines()
        lines.insert(3, 'never_gonna_give_you_up 1')
        srv.write_conf('\n'.join(lines) + '\n')
        srv.signal(signal.SIGHUP)
        pat = re.compile(r'reload failed.*%s:4: ' % re.escape(srv.conf))
        logged = wait_for(lambda: pat.search(srv.read_log()), 8)
        self.assertTrue(logged, 'no "reload failed ... %s:4: " in log:\n%s' %
                        (srv.conf, srv.read_log()))
        self.assertIn('never_gonna_give_you_up', srv.read_log())
        self.assertEqual(srv.worker_pids(), old)
        for _ in range(4):
            self.assertLyrics(request(srv.port))
            self.assertLyrics(request(srv.tls_port, tls=True))
        time.sleep(0.3)
        self.assertEqual(srv.worker_pids(), old)
        # A later good reload still works.
        srv.write_conf(good.replace('workers 2', 'workers 1'))
        srv.signal(signal.SIGHUP)
        srv.wait_workers(1, exclude=old, timeout=8)
        self.assertLyrics(request(srv.port))

    def test_sighup_broken_certificate_keeps_serving(self):
        srv = self.server(workers=2)
        old = srv.wait_workers(2)
        with open(os.path.join(srv.dir, 'cert.pem'), 'rb') as f:
            cert = f.read()
        with open(os.path.join(srv.dir, 'cert.pem'), 'w') as f:
            f.write('not a certificate\n')
        srv.signal(signal.SIGHUP)
        logged = wait_for(lambda: 'reload failed' in srv.read_log(), 8)
        self.assertTrue(logged, srv.read_log())
        self.assertIn('cert.pem', srv.read_log())
        self.assertEqual(srv.worker_pids(), old)
        with connect(srv.tls_port, tls=True) as c:
            self.assertEqual(c.sock.getpeercert(binary_form=True),
                             ssl.PEM_cert_to_DER_cert(cert.decode()))
            c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertLyrics(c.read_response())

    def test_second_instance_refused(self):
        srv = self.server(workers=1)
        other = self.server(workers=1, start=False)
        other.write_conf(other.conf_text().replace(
            'pidfile astleyd.pid', 'pidfile %s' % srv.pidfile))
        rc, out, err = run_bin(['-d', '-f', other.conf], timeout=START_TIMEOUT)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('already running', err)
        self.assertRegex(err, r'\b%d\b' % srv.pid)
        self.assertEqual(srv.read_pidfile(), srv.pid)
        self.assertEqual(cmdline(srv.pid), srv.master_title())
        self.assertLyrics(request(srv.port))
        # The refused instance did not grab its ports either.
        with self.assertRaises(ConnectionRefusedError):
            request(other.port)

    def test_second_instance_same_config_refused(self):
        srv = self.server(workers=1)
        rc, out, err = run_bin(['-d', '-f', srv.conf], timeout=START_TIMEOUT)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('already running', err)
        self.assertEqual(srv.read_pidfile(), srv.pid)
        self.assertLyrics(request(srv.port))
        self.assertEqual(len(srv.wait_workers(1)), 1)

    def test_daemon_mode(self):
        reaper = become_subreaper()
        srv = self.server(daemon=True, workers=1)
        self.assertTrue(alive(srv.pid))
        self.assertNotEqual(srv.pid, srv.proc.pid)
        self.assertEqual(srv.proc.returncode, 0)
        self.assertTrue(srv.bound_at_launch,
                        'launcher exited before the port was listening')
        self.assertEqual(cmdline(srv.pid), srv.master_title())
        # Detached: own session, not our process group.
        self.assertEqual(os.getsid(srv.pid), srv.pid)
        self.assertEqual(os.readlink('/proc/%d/cwd' % srv.pid), '/')
        self.assertLyrics(request(srv.port))
        self.assertLyrics(request(srv.tls_port, tls=True))
        workers = srv.wait_workers(1)
        rc = srv.stop(signal.SIGTERM)
        if reaper:
            self.assertEqual(rc, 0)
        self.assertFalse(os.path.exists(srv.pidfile), 'pidfile left behind')
        self.assertTrue(wait_for(lambda: not any(alive(p) for p in workers),
                                 3))
        self.assertTrue(port_bindable(srv.port))

    def test_daemon_startup_error_reported(self):
        srv = self.server(daemon=True, start=False)
        srv.write_conf(srv.conf_text() + 'workers_bogus 3\n')
        rc, out, err = run_bin(['-f', srv.conf], timeout=START_TIMEOUT)
        self.assertEqual(rc, 1, out + err)
        n = len(srv.conf_text().splitlines()) + 1
        self.assertIn('%s:%d:' % (srv.conf, n), err)
        self.assertFalse(os.path.exists(srv.pidfile))


if __name__ == '__main__':
    unittest.main()
