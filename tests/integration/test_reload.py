"""Reload (astleyd -s reload, SIGHUP) under traffic: nothing lost, a
renewed certificate served, session tickets kept, a bad reload leaves the
running generation untouched, listening sockets carried over, requests in
progress on old workers finished (issue 3, "Reload")."""

import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import unittest

from astleyd_test import (IO_TIMEOUT, Conn, ServerTestCase, alive, children,
                          connect, control, free_port, listening_sockets,
                          make_certs, occupy_port, read_lyrics, request,
                          socket_inodes, socket_owner, tls_context, wait_for)

RELOAD_OK = re.compile(r'^reload ok: generation ([0-9]+), ([0-9]+) workers '
                       r'serving\n$')
GET = 'GET / HTTP/1.1\r\nHost: reload\r\n\r\n'
GET_CLOSE = 'GET / HTTP/1.1\r\nHost: reload\r\nConnection: close\r\n\r\n'
TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3


def pem_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def connect_session(port, ctx, session=None, host='127.0.0.1'):
    """A TLS Conn offering SESSION (a ticket) for resumption."""
    s = socket.create_connection((host, port), IO_TIMEOUT)
    try:
        s.settimeout(IO_TIMEOUT)
        s = ctx.wrap_socket(s, session=session)
    except BaseException:
        s.close()
        raise
    return Conn(s)


class ReloadTestCase(ServerTestCase):

    def reload_ok(self, srv, workers=None):
        """-s reload must succeed; returns its generation."""
        rc, out, err = control(srv, 'reload')
        self.assertEqual((rc, err), (0, ''), 'reload: %r %r\n%s' %
                         (out, err, srv.read_log()[-4000:]))
        m = RELOAD_OK.match(out)
        self.assertIsNotNone(m, 'reload output %r' % out)
        self.assertEqual(int(m.group(2)),
                         srv.workers if workers is None else workers, out)
        return int(m.group(1))

    def reload_fails(self, srv, *needles):
        """-s reload must fail, saying why on stderr; returns stderr."""
        rc, out, err = control(srv, 'reload')
        self.assertEqual((rc, out), (1, ''), 'reload should fail: %r %r' %
                         (out, err))
        self.assertIn('reload failed, the old configuration keeps serving: ',
                      err)
        self.assertEqual(err.count('\n'), 1, 'one line: %r' % err)
        for n in needles:
            self.assertIn(n, err)
        return err

    def assertServes(self, srv, der=None, n=4):
        """N requests on each port answered; the TLS peer certificate is
        DER if given."""
        for _ in range(n):
            self.assertLyrics(request(srv.port, host=srv.host))
            with connect(srv.tls_port, host=srv.host, tls=True) as c:
                if der is not None:
                    self.assertEqual(c.sock.getpeercert(binary_form=True),
                                     der, 'wrong certificate served')
                c.send(GET)
                self.assertLyrics(c.read_response())


# ------------------------------------------------------------ zero loss

class Hammer:
    """Client threads on both ports while the test reloads.

    Two kinds of client, on the plain and on the TLS port:
      - "new": a new connection per request (Connection: close).  Every
        one must succeed: a refused connect, a reset, an EOF or a timeout
        is a failure.
      - "keep-alive": reuses its connection as long as the server keeps it
        open.  Like a real HTTP client (RFC 9112 9.3.1), it resends a
        request only when the connection was closed before any byte of
        the response arrived *and* the connection had already carried a
        response (a reused keep-alive connection that the server may have
        closed as idle).  Those resends are counted, not failures.  Any
        other error, a first request that fails, or a partial response is
        a failure.
    Every response must be a complete 200 with the exact 980-byte body.
    """

    def __init__(self, srv):
        self.srv = srv
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.errors = []
        self.counts = {}
        self.closes = {}        # keep-alive: Connection: close received
        self.resent = 0
        self.lyrics = read_lyrics()
        self.threads = []
        for tls in (False, True):
            for kind in ('new', 'keep-alive'):
                name = '%s %s' % ('tls' if tls else 'plain', kind)
                self.counts[name] = 0
                self.closes[name] = 0
                target = self.new_loop if kind == 'new' else self.ka_loop
                self.threads.append(threading.Thread(
                    target=self.guard, args=(target, name, tls), daemon=True))

    def port(self, tls):
        return self.srv.tls_port if tls else self.srv.port

    def fail(self, name, what):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append('%s: %s' % (name, what))

    def check(self, resp, close):
        if resp.status != 200 or resp.get('Content-Length') != '980' or \
                resp.body != self.lyrics:
            return 'bad response %r' % resp
        if close and resp.get('Connection') != 'close':
            return 'no Connection: close in %r' % resp.head
        return None

    def guard(self, fn, name, tls):
        try:
            fn(name, tls)
        except Exception as e:          # a bug in the loop is a failure
            self.fail(name, 'client crashed: %r' % e)

    def new_loop(self, name, tls):
        ctx = tls_context() if tls else None
        while not self.stop.is_set():
            try:
                with connect(self.port(tls), host=self.srv.host,
                             ctx=ctx) as c:
                    c.send(GET_CLOSE)
                    r = c.read_response()
            except (OSError, AssertionError) as e:
                self.fail(name, repr(e))
                continue
            bad = self.check(r, close=True)
            if bad:
                self.fail(name, bad)
            with self.lock:
                self.counts[name] += 1

    def ka_loop(self, name, tls):
        ctx = tls_context() if tls else None
        c = None
        used = False            # this connection already carried a response
        while not self.stop.is_set():
            if c is None:
                try:
                    c = connect(self.port(tls), host=self.srv.host, ctx=ctx)
                except OSError as e:
                    self.fail(name, 'connect: %r' % e)
                    continue
                used = False
            try:
                c.send(GET)
                r = c.read_response()
            except (OSError, AssertionError) as e:
                nothing = c.buf == b'' and not isinstance(e, socket.timeout) \
                    and 'EOF in body' not in str(e)
                c.close()
                c = None
                if used and nothing:
                    with self.lock:
                        self.resent += 1
                    continue
                self.fail(name, '%s: %r' % ('reused' if used else 'first',
                                            e))
                continue
            bad = self.check(r, close=False)
            if bad:
                self.fail(name, bad)
            with self.lock:
                self.counts[name] += 1
            if r.get('Connection') == 'close':
                with self.lock:
                    self.closes[name] += 1
                c.close()
                c = None
            else:
                used = True
        if c is not None:
            c.close()

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(IO_TIMEOUT * 2 + 2)
        return [t for t in self.threads if t.is_alive()]


class ZeroLossTest(ReloadTestCase):

    def test_five_reloads_under_load_lose_nothing(self):
        # keepalive_requests high enough that only a reload makes the
        # server close a keep-alive connection.
        srv = self.server(workers=4, extra={'keepalive_requests': 1000000})
        gens = []
        snaps = []
        h = Hammer(srv)
        t0 = time.monotonic()
        h.start()
        try:
            time.sleep(0.5)
            for _ in range(5):
                with h.lock:
                    snaps.append(dict(h.counts))
                gens.append(self.reload_ok(srv))
                time.sleep(0.4)
            time.sleep(0.3)
            with h.lock:
                snaps.append(dict(h.counts))
        finally:
            stuck = h.finish()
        took = time.monotonic() - t0
        self.assertEqual(stuck, [], 'client threads did not finish')
        total = sum(h.counts.values())
        summary = '%d requests %r, keep-alive closes %r, %d resent, %.1fs' % (
            total, h.counts, h.closes, h.resent, took)
        if os.environ.get('ASTLEYD_TEST_VERBOSE'):
            print(summary)
        self.assertEqual(h.errors, [], summary)
        self.assertEqual(gens, list(range(gens[0], gens[0] + 5)), gens)
        self.assertLess(took, 12, summary)
        # Enough traffic, and every kind of client busy between every two
        # reloads, so none of them can pass by doing nothing.
        self.assertGreaterEqual(total, 500, summary)
        for a, b in zip(snaps, snaps[1:]):
            for name in h.counts:
                self.assertGreaterEqual(b[name] - a[name], 3,
                                        '%s idle between reloads: %r' %
                                        (name, snaps))
        # Each keep-alive connection was on an old worker at each reload
        # and was answered there with Connection: close, not dropped.
        for name, n in h.closes.items():
            if 'keep-alive' in name:
                self.assertGreaterEqual(n, 5, summary)
        # Old generations all drained: exactly the new workers remain.
        srv.wait_workers(4, timeout=8)
        self.assertServes(srv)


# ----------------------------------------------------------- certificates

class CertificateTest(ReloadTestCase):

    def test_renewed_certificate_served_after_reload(self):
        srv = self.server(workers=2)
        old_der = pem_der(os.path.join(srv.dir, 'cert.pem'))
        newdir = tempfile.mkdtemp(prefix='astleyd-renewed-')
        self.addCleanup(shutil.rmtree, newdir, True)
        make_certs(newdir)
        new_der = pem_der(os.path.join(newdir, 'cert.pem'))
        self.assertNotEqual(new_der, old_der)
        self.assertServes(srv, old_der)
        # Renewal writes the new pair over the old files (as certbot's
        # deploy hooks or a copy do); until the reload the old one serves.
        for name in ('cert.pem', 'key.pem'):
            with open(os.path.join(newdir, name), 'rb') as src, \
                    open(os.path.join(srv.dir, name), 'wb') as dst:
                dst.write(src.read())
        self.assertServes(srv, old_der, n=2)
        self.reload_ok(srv)
        for v in (TLS12, TLS13):
            ctx = tls_context(min_version=v, max_version=v)
            for _ in range(4):
                with connect(srv.tls_port, ctx=ctx) as c:
                    self.assertEqual(c.sock.getpeercert(binary_form=True),
                                     new_der, 'old certificate after reload')
                    c.send(GET)
                    self.assertLyrics(c.read_response())
        self.assertServes(srv, new_der)


class SessionTicketTest(ReloadTestCase):

    def new_session(self, srv, ctx):
        with connect_session(srv.tls_port, ctx) as c:
            c.send(GET)
            self.assertLyrics(c.read_response())
            self.assertFalse(c.sock.session_reused)
            sess = c.sock.session
        self.assertIsNotNone(sess)
        self.assertTrue(sess.has_ticket, 'no session ticket issued')
        return sess

    def resumes(self, srv, ctx, sess):
        with connect_session(srv.tls_port, ctx, sess) as c:
            c.send(GET)
            self.assertLyrics(c.read_response())
            return c.sock.session_reused

    def test_tickets_resume_after_reload(self):
        srv = self.server(workers=2)
        for v in (TLS12, TLS13):
            with self.subTest(version=v.name):
                ctx = tls_context(min_version=v, max_version=v)
                sess = self.new_session(srv, ctx)
                self.assertTrue(self.resumes(srv, ctx, sess),
                                'no resumption before any reload')
                old = srv.wait_workers(2)
                self.reload_ok(srv)
                # Served by the new generation only.
                srv.wait_workers(2, exclude=old)
                self.assertTrue(wait_for(
                    lambda: not any(alive(p) for p in old), 5))
                self.assertTrue(self.resumes(srv, ctx, sess),
                                'ticket issued before the reload did not '
                                'resume after it')
                # The keys rotate: two reloads later that ticket is no
                # longer accepted (a full handshake, not an error).
                self.reload_ok(srv)
                self.assertFalse(self.resumes(srv, ctx, sess),
                                 'ticket key never rotated out')

    def test_tickets_resume_on_every_worker(self):
        # With worker_connections 1, a worker holding a connection that
        # is in the middle of a request has no room and leaves the
        # listeners: connections held that way are on different
        # workers, which socket_owner confirms.
        n = 4
        srv = self.server(workers=n, extra={'worker_connections': 1})
        for v in (TLS12, TLS13):
            ctx = tls_context(min_version=v, max_version=v)
            sess = self.new_session(srv, ctx)
            for phase in ('before reload', 'after reload'):
                with self.subTest(version=v.name, phase=phase):
                    workers = srv.wait_workers(n)
                    conns = []
                    try:
                        for _ in range(n):
                            c = connect_session(srv.tls_port, ctx, sess)
                            conns.append(c)
                            c.send(GET)
                            self.assertLyrics(c.read_response())
                            c.send('GET / HTTP/1.1\r\n')
                            time.sleep(0.1)     # the worker reads it
                        reused = [c.sock.session_reused for c in conns]
                        owners = {socket_owner(workers, c, srv.tls_port)
                                  for c in conns}
                    finally:
                        for c in conns:
                            c.close()
                    self.assertEqual(reused, [True] * n)
                    self.assertEqual(owners, set(workers),
                                     'connections not spread over workers')
                if phase == 'before reload':
                    self.reload_ok(srv)
                    srv.wait_workers(n, exclude=workers)


# ------------------------------------------------------------ bad reloads

class FailedReloadTest(ReloadTestCase):

    def assertUntouched(self, srv, workers, der):
        # Nothing forked either: the master's children are the workers
        # and the key process it had, not a new key process on its way
        # out (the reload's last step starts one).
        self.assertEqual([p for p in children(srv.pid) if p not in workers],
                         srv.keyproc_pids(), 'a child came and went')
        self.assertEqual(srv.worker_pids(), workers, 'workers changed')
        self.assertServes(srv, der, n=2)
        time.sleep(0.2)
        self.assertEqual(srv.worker_pids(), workers,
                         'workers changed after a failed reload')

    def test_failed_reload_keeps_keepalive_timeout(self):
        # A reload that fails late (a bad log path, after the listeners
        # were prepared) must leave the running workers' timeouts alone:
        # an idle keep-alive client is still closed after keepalive_timeout.
        srv = self.server(workers=1, extra={'keepalive_timeout': '1s'})
        good = srv.conf_text()
        srv.write_conf(good.replace('keepalive_timeout 1s',
                                    'keepalive_timeout 0') +
                       'access_log /nonexistent/dir/access.log\n')
        self.reload_fails(srv, '/nonexistent/dir/access.log')
        with connect(srv.port) as c:
            c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertLyrics(c.read_response())
            t0 = time.monotonic()
            self.assertEqual(c.read_until_eof(5), b'')
            took = time.monotonic() - t0
        self.assertLess(took, 2.5, 'idle keep-alive lasted %.1fs' % took)

    def test_broken_config(self):
        srv = self.server(workers=2)
        der = pem_der(os.path.join(srv.dir, 'cert.pem'))
        gen = self.reload_ok(srv)
        workers = srv.wait_workers(2)
        good = srv.conf_text()
        lines = good.splitlines()
        lines.insert(2, 'bogus_directive on')
        srv.write_conf('\n'.join(lines) + '\n')
        err = self.reload_fails(srv, '%s:3: unknown directive '
                                '"bogus_directive"' % srv.conf)
        self.assertRegex(err, r'^reload failed, the old configuration keeps '
                         r'serving: /\S+:3: ')
        self.assertUntouched(srv, workers, der)
        # A bad value (workers 0) as well, with its line.
        srv.write_conf(good.replace('workers 2', 'workers 0'))
        n = good.splitlines().index('workers 2') + 1
        self.reload_fails(srv, '%s:%d: ' % (srv.conf, n), 'workers')
        self.assertUntouched(srv, workers, der)
        # The failed attempts did not use up generations.
        srv.write_conf(good)
        self.assertEqual(self.reload_ok(srv), gen + 1)
        srv.wait_workers(2, exclude=workers)
        self.assertServes(srv, der)

    def test_bad_certificate_key_or_log_path(self):
        srv = self.server(workers=2)
        der = pem_der(os.path.join(srv.dir, 'cert.pem'))
        workers = srv.wait_workers(2)
        key = os.path.join(srv.dir, 'key.pem')
        good = srv.conf_text()

        with self.subTest('missing key file'):
            os.rename(key, key + '.away')
            try:
                self.reload_fails(srv, 'tls_certificate_key %s: ' % key,
                                  'No such file or directory')
                self.assertUntouched(srv, workers, der)
            finally:
                os.rename(key + '.away', key)

        with self.subTest('key does not match the certificate'):
            other = os.path.join(srv.dir, 'other-key.pem')
            srv.write_conf(good.replace('tls_certificate_key key.pem',
                                        'tls_certificate_key other-key.pem'))
            err = self.reload_fails(srv, 'tls_certificate_key %s' % other)
            self.assertRegex(err, r'mismatch|does not match')
            self.assertUntouched(srv, workers, der)

        with self.subTest('unreadable certificate'):
            srv.write_conf(good.replace('tls_certificate cert.pem',
                                        'tls_certificate nowhere.pem'))
            self.reload_fails(srv, os.path.join(srv.dir, 'nowhere.pem'))
            self.assertUntouched(srv, workers, der)

        with self.subTest('access_log in a missing directory'):
            path = os.path.join(srv.dir, 'no-such-dir', 'access.log')
            srv.write_conf(good + 'access_log %s\n' % path)
            self.reload_fails(srv, path)
            self.assertUntouched(srv, workers, der)

        srv.write_conf(good)
        self.reload_ok(srv)
        srv.wait_workers(2, exclude=workers)
        self.assertServes(srv, der)

    def test_port_that_cannot_be_bound(self):
        srv = self.server(workers=2, listen=['127.0.0.1:%d' % free_port()])
        der = pem_der(os.path.join(srv.dir, 'cert.pem'))
        workers = srv.wait_workers(2)
        before = listening_sockets(srv.pid)
        taken, fresh = free_port(), free_port()
        mine = occupy_port(taken, '127.0.0.1')
        self.addCleanup(mine.close)
        # The new address listed first is bound, then given up again when
        # the taken one fails.
        srv.listen = ['127.0.0.1:%d' % srv.port, '127.0.0.1:%d' % fresh,
                      '127.0.0.1:%d' % taken]
        srv.write_conf()
        self.reload_fails(srv, 'listen 127.0.0.1:%d: ' % taken,
                          'Address already in use')
        self.assertUntouched(srv, workers, der)
        self.assertEqual(listening_sockets(srv.pid), before,
                         'listening sockets changed by a failed reload')
        with self.assertRaises(ConnectionRefusedError):
            request(fresh)
        # The taken port is ours, not served: our socket gets the client.
        probe = socket.create_connection(('127.0.0.1', taken), IO_TIMEOUT)
        self.addCleanup(probe.close)
        mine.settimeout(IO_TIMEOUT)
        peer, addr = mine.accept()
        peer.close()
        self.assertEqual(addr[1], probe.getsockname()[1])
        # Once the port is free the same config loads.
        mine.close()
        self.reload_ok(srv)
        srv.wait_workers(2, exclude=workers)
        for port in (srv.port, fresh, taken):
            self.assertLyrics(request(port))


# --------------------------------------------------------- listen sockets

class ListenerTest(ReloadTestCase):

    def test_sockets_kept_added_and_removed(self):
        a, b, c, t = (free_port() for _ in range(4))
        srv = self.server(workers=2, listen=['127.0.0.1:%d' % a,
                                             '127.0.0.1:%d' % b],
                          listen_tls=['127.0.0.1:%d' % t])
        old = srv.wait_workers(2)
        before = listening_sockets(srv.pid)
        self.assertEqual(sorted(before), sorted([a, b, t]), before)
        self.assertTrue(all(len(v) == 1 for v in before.values()), before)
        srv.listen = ['127.0.0.1:%d' % a, '127.0.0.1:%d' % c]
        srv.write_conf()
        self.reload_ok(srv)
        after = listening_sockets(srv.pid)
        self.assertEqual(sorted(after), sorted([a, c, t]), after)
        self.assertEqual(after[a], before[a], 'unchanged address re-bound')
        self.assertEqual(after[t], before[t], 'unchanged TLS address '
                         're-bound')
        new = srv.wait_workers(2, exclude=old)
        self.assertTrue(wait_for(lambda: not any(alive(p) for p in old), 5),
                        'old workers did not exit')
        # The new workers hold the very same sockets.
        for w in new:
            held = set(socket_inodes(w).values())
            for port in (a, c, t):
                self.assertIn(next(iter(after[port])), held, (w, port))
            self.assertNotIn(next(iter(before[b])), held)
        self.assertLyrics(request(a))
        self.assertLyrics(request(c))
        self.assertLyrics(request(t, tls=True))
        with self.assertRaises(ConnectionRefusedError):
            request(b)


# ----------------------------------------------- old workers finish their work

class OldWorkersTest(ReloadTestCase):

    def test_keepalive_and_partial_request_answered(self):
        srv = self.server(workers=2, extra={'keepalive_timeout': '30s'})
        old = srv.wait_workers(2)
        idle, partial = self.hold_connections(srv)
        owners = {socket_owner(old, idle, srv.port),
                  socket_owner(old, partial, srv.tls_port)}
        self.assertLessEqual(owners, set(old), 'not held by the old workers')
        self.reload_ok(srv)
        new = sorted(set(srv.worker_pids()) - set(old))
        self.assertEqual(len(new), 2, srv.worker_pids())
        # The new generation serves while the old one finishes.
        self.assertLyrics(request(srv.port))
        self.assertTrue(all(alive(p) for p in owners), 'old worker gave up '
                        'a connection it was serving')
        idle.send(GET)
        self.assertLyrics(idle.read_response(), connection='close')
        self.assertClosed(idle)
        partial.send('\r\n')
        self.assertLyrics(partial.read_response(), connection='close')
        self.assertClosed(partial)
        self.assertTrue(wait_for(lambda: not any(alive(p) for p in old), 5),
                        'old workers did not exit once done')
        # Reaped, and no one else started.
        self.assertTrue(wait_for(lambda: srv.worker_pids() == new, 3),
                        (srv.worker_pids(), new))

    def test_slow_reader_gets_complete_responses(self):
        # A pipelining client that reads slowly: the old worker is blocked
        # writing when the reload comes.  Every response it gets is
        # complete; the last one says Connection: close, then EOF.
        srv = self.server(workers=1, extra={'send_timeout': '30s'})
        old = srv.wait_workers(1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(IO_TIMEOUT)
        s.connect(('127.0.0.1', srv.port))
        c = Conn(s)
        self.addCleanup(c.close)
        # More than the socket buffers take (the kernel lets the
        # server's send buffer grow to a few megabytes).
        n = 5000
        burst = ''.join('GET /%d HTTP/1.1\r\nHost: x\r\n\r\n' % i
                        for i in range(n)).encode()
        sender = threading.Thread(target=lambda: self._send_all(s, burst),
                                  daemon=True)
        sender.start()
        # Read a few so the worker is surely writing, then stall.
        for _ in range(3):
            self.assertLyrics(c.read_response())
        time.sleep(0.3)
        self.assertEqual(socket_owner(old, c, srv.port), old[0])
        self.reload_ok(srv)
        got = 3
        while True:
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, read_lyrics())
            got += 1
            if r.get('Connection') == 'close':
                break
            self.assertIsNone(r.get('Connection'), r.head)
            self.assertLess(got, n, 'reload never reached the connection')
        self.assertClosed(c)
        sender.join(IO_TIMEOUT)
        self.assertTrue(wait_for(lambda: not alive(old[0]), 5))

    @staticmethod
    def _send_all(s, data):
        try:
            s.sendall(data)
        except OSError:
            pass                # the server closed after Connection: close

    def test_old_workers_bounded_by_shutdown_timeout(self):
        # Old workers finish what they are doing, but no longer than
        # shutdown_timeout, however long the other timeouts are.
        srv = self.server(workers=2, extra={'shutdown_timeout': '1s',
                                            'header_timeout': '60s',
                                            'keepalive_timeout': '60s'})
        old = srv.wait_workers(2)
        idle, partial = self.hold_connections(srv, partial_tls=False,
                                              timeout=10)
        t0 = time.monotonic()
        self.reload_ok(srv)
        gone = wait_for(lambda: not any(alive(p) for p in old), 3)
        took = time.monotonic() - t0
        self.assertTrue(gone, 'old workers %r still alive %.1fs after the '
                        'reload with shutdown_timeout 1s' %
                        ([p for p in old if alive(p)], took))
        self.assertLyrics(request(srv.port))


if __name__ == '__main__':
    unittest.main()
