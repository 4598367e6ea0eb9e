"""One worker, many clients: the event loop never waits on one client.
Slow and silent clients on both ports, 5000 idle keep-alive connections,
worker_connections (eviction, waiting for a slot), fairness towards a
greedy pipelining client and one that never reads, and per-request
deadlines (header, body, handshake, keep-alive, send)."""

import os
import re
import resource
import select
import selectors
import socket
import struct
import threading
import time
import unittest

from astleyd_test import (Response, ServerTestCase, body_length, connect,
                          is_root, raise_nofile, read_lyrics, tcp_sockets,
                          tls_client_hello, wait_for)

GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
ESTABLISHED = 1             # /proc/net/tcp state
TICK = 0.1                  # trickling clients send one byte per TICK


def raw(port, rcvbuf=None, mss=None):
    """A connected non-blocking TCP socket.  A small RCVBUF and MSS keep
    what the kernel buffers for a client that does not read small: at
    loopback's 64 KiB MSS the server's send buffer grows to megabytes."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if mss:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        s.settimeout(5)
        s.connect(('127.0.0.1', port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def parse_response(data, method='GET'):
    """(Response, rest) for the complete response at the start of DATA, or
    None while it is incomplete."""
    i = data.find(b'\r\n\r\n')
    if i < 0:
        return None
    resp = Response(data[:i + 4], b'')
    n = body_length(method, resp)
    if len(data) < i + 4 + n:
        return None
    resp.body = data[i + 4:i + 4 + n]
    return resp, data[i + 4 + n:]


def server_end_open(port, client):
    """True while the server's end of CLIENT's connection to PORT is
    established: it is gone, or closing, once the server closed or shut
    it down, whether or not the client could see a FIN yet."""
    st = tcp_sockets(port).get((port, client.getsockname()[1]))
    return st is not None and st[0] == ESTABLISHED


def drain(sock, timeout):
    """(bytes, eof) read from SOCK until EOF or a reset, or for at most
    TIMEOUT seconds (eof False)."""
    end = time.monotonic() + timeout
    sock.setblocking(True)
    data = b''
    try:
        while True:
            sock.settimeout(max(0.01, end - time.monotonic()))
            d = sock.recv(1 << 20)
            if not d:
                return data, True
            data += d
    except ConnectionResetError:
        return data, True
    except socket.timeout:
        return data, False


def worker_lines(srv, word):
    """Log lines of SRV's workers (not its master) that contain WORD."""
    out = []
    for line in srv.read_log().splitlines():
        m = re.match(r'astleyd\[([0-9]+)\]: ', line)
        if m and int(m.group(1)) != srv.pid and word in line:
            out.append(line)
    return out


def wait_for_lines(srv, word, timeout=3):
    """worker_lines(SRV, WORD) once there are some, or None after
    TIMEOUT seconds."""
    return wait_for(lambda: worker_lines(srv, word), timeout)


class Prober(threading.Thread):
    """A fresh client on each port, cleartext then TLS, every PERIOD
    seconds until stop(); each must get the page within BOUND seconds.
    results: (tls, seconds, None or what went wrong)."""

    def __init__(self, test, srv, bound, period=0.1):
        super().__init__(daemon=True)
        self.test = test
        self.srv = srv
        self.bound = bound
        self.period = period
        self.halt = threading.Event()
        self.results = []

    def one(self, tls):
        t0 = time.monotonic()
        try:
            with connect(self.srv.tls_port if tls else self.srv.port,
                         tls=tls, timeout=self.bound) as c:
                c.send(GET)
                r = c.read_response()
            # Now, while its Date is current.
            self.test.assertLyrics(r)
            err = None
        except Exception as e:          # reported by check()
            err = e
        return tls, time.monotonic() - t0, err

    def run(self):
        while not self.halt.is_set():
            t = time.monotonic()
            for tls in (False, True):
                self.results.append(self.one(tls))
            self.halt.wait(max(0.0, t + self.period - time.monotonic()))

    def stop(self):
        self.halt.set()
        self.join(10)

    def check(self, minimum):
        """Every probe got the page within the bound; at least MINIMUM
        probes per port ran."""
        for tls in (False, True):
            mine = [r for r in self.results if r[0] == tls]
            for n, (_, took, err) in enumerate(mine):
                what = '%s probe %d of %d' % ('TLS' if tls else 'cleartext',
                                              n + 1, len(mine))
                if err is not None:
                    self.test.fail('%s, after %.2fs: %s' % (what, took, err))
                self.test.assertLessEqual(took, self.bound, '%s took %.2fs'
                                          % (what, took))
            self.test.assertGreaterEqual(len(mine), minimum, 'only %d %s '
                                         'probes ran' % (len(mine), 'TLS' if
                                                         tls else 'cleartext'))


class Slow:
    """One of the crowd of slow clients: its socket, what it still has to
    trickle, what it got and when."""

    def __init__(self, kind, port, sock):
        self.kind = kind
        self.port = port
        self.sock = sock
        self.t0 = time.monotonic()
        self.trickle = b''      # one byte per TICK
        self.next = self.t0 + TICK
        self.requests = 0       # pipelined by a client that never reads
        self.data = b''
        self.t_first = None     # first byte from the server
        self.t_end = None       # EOF or reset; server end closed (noread)
        self.shut = False


# The crowd: kind -> how many.
CROWD = {'silent': 250,         # cleartext, sends nothing
         'silent_tls': 250,     # TLS port, sends nothing
         'trickle': 200,        # a request head, a byte per TICK
         'hello': 100,          # a real ClientHello, then nothing
         'body': 50,            # a POST head, then its body a byte per TICK
         'noread': 50}          # 2000 pipelined GETs, never reads
CROWD_T = 3.0                   # header, handshake and send timeouts
CROWD_LOW, CROWD_HIGH = 0.7 * CROWD_T, CROWD_T + 2.5
PROBE_BOUND = 2.0


class WorkersTest(ServerTestCase):

    def nofile(self, n):
        """At least N descriptors for this process (and servers it starts
        from now on); restored at the end of the test."""
        old = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, old)
        if raise_nofile(n) is None:
            self.skipTest('needs %d descriptors; the hard RLIMIT_NOFILE of '
                          'this unprivileged process is %d' % (n, old[1]))

    def close_all(self, socks, reset=False):
        """Close every socket of SOCKS; with RESET by a reset, which
        leaves no TIME_WAIT behind (thousands slow /proc/net/tcp down)."""
        for s in socks:
            try:
                if reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack('ii', 1, 0))
                s.close()
            except OSError:
                pass

    # ------------------------------------------------------ slow and silent

    def test_slow_and_silent_clients_do_not_hold_the_worker(self):
        """With one worker, 900 clients that are silent, trickle a head,
        stop after the ClientHello, trickle a body or never read do not
        delay anybody: fresh clients on both ports get the page every
        100 ms.  Then each slow client ends at its own deadline: silent
        ones and TLS ones closed without a byte of HTTP, trickled heads
        and bodies with a 408, non-readers closed at send_timeout
        (keepalive_timeout is long, so that close is the send deadline)."""
        self.nofile(sum(CROWD.values()) + 200)
        t = '%gs' % CROWD_T
        srv = self.server(workers=1, extra={'header_timeout': t,
                                            'handshake_timeout': t,
                                            'send_timeout': t,
                                            'keepalive_timeout': '30s'})
        hello = tls_client_hello()
        pipeline = GET.encode() * 2000
        crowd = []
        self.addCleanup(lambda: self.close_all(c.sock for c in crowd))
        sel = selectors.DefaultSelector()
        self.addCleanup(sel.close)

        def add(kind, port, first=b'', trickle=b'', **kw):
            c = Slow(kind, port, raw(port, **kw))
            crowd.append(c)
            if first:
                n = c.sock.send(first)
                if kind == 'noread':
                    c.requests = n // len(GET)
            c.trickle = trickle
            if kind != 'noread':
                sel.register(c.sock, selectors.EVENT_READ, c)

        head = b'GET / HTTP/1.1\r\nHost: x\r\nX-Trickle: ' + b'a' * 200 + \
            b'\r\n\r\n'
        body = b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n'
        for i in range(max(CROWD.values())):
            if i < CROWD['silent']:
                add('silent', srv.port)
            if i < CROWD['silent_tls']:
                add('silent_tls', srv.tls_port)
            if i < CROWD['trickle']:
                add('trickle', srv.port, head[:1], head[1:])
            if i < CROWD['hello']:
                add('hello', srv.tls_port, hello)
            if i < CROWD['body']:
                add('body', srv.port, body + b'b', b'b' * 999)
            if i < CROWD['noread']:
                add('noread', srv.port, pipeline, rcvbuf=4096, mss=536)

        prober = Prober(self, srv, PROBE_BOUND)
        prober.start()
        self.addCleanup(prober.stop)
        live = set(crowd)
        end = time.monotonic() + CROWD_HIGH + 1.0
        scanned = 0.0
        while live and time.monotonic() < end:
            now = time.monotonic()
            for c in crowd:
                if c.trickle and c.t_first is None and c.t_end is None and \
                        now >= c.next:
                    c.next += TICK
                    try:
                        c.trickle = c.trickle[c.sock.send(c.trickle[:1]):]
                    except BlockingIOError:
                        pass
                    except OSError:
                        c.trickle = b''     # closed: recv will say so
            for key, _ in sel.select(0.02):
                c = key.data
                try:
                    d = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    d = b''
                now = time.monotonic()
                if not d:
                    c.t_end = now
                    sel.unregister(c.sock)
                    live.discard(c)
                    continue
                if c.t_first is None:
                    c.t_first = now
                c.data += d
                if c.kind in ('trickle', 'body') and not c.shut:
                    try:
                        done = parse_response(c.data)
                    except AssertionError:
                        done = True             # garbage: reported below
                    if done:
                        # Answered: let the lingering close end.
                        c.shut = True
                        try:
                            c.sock.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
            if now - scanned >= 0.1:
                scanned = now
                table = tcp_sockets(srv.port)
                for c in crowd:
                    if c.kind == 'noread' and c.t_end is None:
                        st = table.get((c.port, c.sock.getsockname()[1]))
                        if st is None or st[0] != ESTABLISHED:
                            c.t_end = now
                            live.discard(c)
        prober.stop()

        problems = []

        def bad(c, why):
            problems.append('%s client %d: %s' % (
                c.kind, [x for x in crowd if x.kind == c.kind].index(c), why))

        def at(c, t, what):
            if t is None:
                bad(c, 'no %s within %.1fs; got %r' % (what, end - c.t0,
                                                      c.data[:80]))
            elif not CROWD_LOW <= t - c.t0 <= CROWD_HIGH:
                bad(c, '%s after %.2fs, deadline %gs' % (what, t - c.t0,
                                                         CROWD_T))
            else:
                return True
            return False

        for c in crowd:
            if c.kind in ('silent', 'silent_tls'):
                if at(c, c.t_end, 'close') and c.data:
                    bad(c, 'sent nothing, got %r' % c.data[:80])
            elif c.kind == 'hello':
                if at(c, c.t_end, 'close') and b'HTTP/' in c.data:
                    bad(c, 'HTTP after a ClientHello: %r' % c.data[:80])
            elif c.kind in ('trickle', 'body'):
                if not at(c, c.t_first, '408'):
                    continue
                try:
                    r = parse_response(c.data)
                    self.assertIsNotNone(r, 'incomplete response')
                    self.assertError(r[0], 408, 'Request Timeout')
                    self.assertEqual(r[1], b'', 'bytes after the 408')
                except AssertionError as e:
                    bad(c, '%s: %r' % (e, c.data[:200]))
                    continue
                if c.t_end is None:
                    bad(c, 'still open after its 408 and our shutdown')
            elif at(c, c.t_end, 'close by the server'):
                data, eof = drain(c.sock, 5)
                got = data.count(b'HTTP/1.1 200 OK\r\n')
                if not eof:
                    bad(c, 'closed at its end but no EOF reached us')
                elif got >= c.requests:
                    bad(c, 'all %d responses fitted in the buffers: never '
                        'waited for send_timeout' % got)
        if problems:
            self.fail('%d of %d slow clients wrong (deadlines %gs); first '
                      'ones:\n%s' % (len(problems), len(crowd), CROWD_T,
                                     '\n'.join(problems[:12])))
        prober.check(10)

    # ------------------------------------------------------ many idle clients

    def answers(self, sel, n, timeout, what, on_done=None):
        """Until N responses came on the sockets registered in SEL (data: a
        [buffer]): one registered for writing is a connect in progress and
        gets a GET once connected.  Every response must be the page;
        ON_DONE(sock) after each."""
        lyrics = read_lyrics()
        end = time.monotonic() + timeout
        done = 0
        while done < n:
            left = end - time.monotonic()
            if left <= 0:
                self.fail('%s: %d of %d connections not answered within '
                          '%gs' % (what, n - done, n, timeout))
            for key, ev in sel.select(min(left, 1.0)):
                s, buf = key.fileobj, key.data
                if ev & selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    self.assertEqual(err, 0, '%s: connect: %s' %
                                     (what, os.strerror(err)))
                    s.send(GET.encode())
                    sel.modify(s, selectors.EVENT_READ, buf)
                    continue
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    d = b''
                if not d:
                    self.fail('%s: a connection was closed by the server '
                              'after %d answers; it got %r' %
                              (what, done, buf[0][:200]))
                buf[0] += d
                r = parse_response(buf[0])
                if r is None:
                    continue
                resp, rest = r
                if done == 0:
                    self.assertLyrics(resp)
                if resp.status_line != 'HTTP/1.1 200 OK' or rest or \
                        resp.body != lyrics or resp.get('Connection'):
                    self.fail('%s: wrong answer %r + %r' % (what, resp,
                                                            rest[:100]))
                sel.unregister(s)
                done += 1
                if on_done:
                    on_done(s)

    def test_5000_idle_keepalive_connections_on_one_worker(self):
        """One worker keeps 5000 keep-alive connections, each with one
        answered request, and answers the next request on every one of
        them, sent on all at once.  As root the server starts with a soft
        descriptor limit of 1024: its master must raise the limit to fit
        worker_connections."""
        n = 5000
        old = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, old)
        extra = {'worker_connections': n + 100, 'keepalive_timeout': '60s'}
        if is_root():
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (min(1024, old[1]), old[1]))
            srv = self.server(workers=1, extra=extra)
            raise_nofile(n + 300)
        else:
            self.nofile(n + 300)
            srv = self.server(workers=1, extra=extra)
        socks = []
        self.addCleanup(lambda: self.close_all(socks, reset=True))
        sel = selectors.DefaultSelector()
        self.addCleanup(sel.close)

        def open_one(_=None):
            if len(socks) == n:
                return
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.setblocking(False)
            s.connect_ex(('127.0.0.1', srv.port))
            sel.register(s, selectors.EVENT_WRITE, [b''])
        for _ in range(200):    # connections in progress at once
            open_one()
        self.answers(sel, n, 60, 'first request', open_one)
        time.sleep(0.5)
        for s in socks:
            s.send(GET.encode())
            sel.register(s, selectors.EVENT_READ, [b''])
        self.answers(sel, n, 60, 'second request')

    # ------------------------------------------------------ worker_connections

    def test_worker_connections_evicts_oldest_idle(self):
        """worker_connections 20 on one worker: with 20 idle keep-alive
        connections, a new client is still served; the oldest idle
        connection is closed silently for it, the most recent one stays.
        The warning naming worker_connections is logged once, however
        often it happens within a minute."""
        srv = self.server(workers=1, extra={'worker_connections': 20})
        idle = []
        for i in range(20):
            c = connect(srv.port)
            self.addCleanup(c.close)
            c.send(GET)
            self.assertLyrics(c.read_response())
            idle.append(c)
        # worker_connections 20 means 20 fit: nothing evicted yet.
        self.assertOpen(idle[0], 0.2)
        new = connect(srv.port, timeout=3)
        self.addCleanup(new.close)
        new.send(GET)
        self.assertLyrics(new.read_response())
        data, _ = idle[0].wait_eof(3)
        self.assertEqual(data, b'', 'an evicted idle connection is closed '
                         'silently')
        idle[-1].send(GET)
        self.assertLyrics(idle[-1].read_response())
        self.assertTrue(wait_for_lines(srv, 'worker_connections'),
                        'no warning with "worker_connections" in the log:\n%s'
                        % srv.read_log())
        for _ in range(3):
            c = connect(srv.port, timeout=3)
            self.addCleanup(c.close)
            c.send(GET)
            self.assertLyrics(c.read_response())
        time.sleep(0.2)
        lines = worker_lines(srv, 'worker_connections')
        self.assertEqual(len(lines), 1, 'the worker_connections warning '
                         'is rate-limited to one a minute:\n%s' %
                         '\n'.join(lines))

    def evicts_silent(self, tls):
        srv = self.server(workers=1, extra={'worker_connections': 20})
        silent = []
        for i in range(20):
            s = raw(srv.tls_port if tls else srv.port)
            self.addCleanup(s.close)
            silent.append(s)

        def all_accepted():
            table = tcp_sockets(srv.tls_port if tls else srv.port)
            return all(table.get((s.getpeername()[1], s.getsockname()[1]),
                                 (0, 0, 0))[2] for s in silent)
        self.assertTrue(wait_for(all_accepted, 5), 'the worker did not '
                        'accept all 20 silent connections')
        try:
            with connect(srv.tls_port if tls else srv.port, tls=tls,
                         timeout=3) as new:
                new.send(GET)
                r = new.read_response()
        except (OSError, AssertionError) as e:
            self.fail('a new client was not served while 20 connections '
                      'that sent nothing held every slot: %r' % e)
        self.assertLyrics(r)
        data, eof = drain(silent[0], 3)
        self.assertTrue(eof, 'the oldest silent connection was not closed')
        self.assertEqual(data, b'')
        self.assertTrue(wait_for_lines(srv, 'worker_connections'),
                        srv.read_log())

    def test_worker_connections_evicts_silent(self):
        """worker_connections 20, all held by connections that have not
        sent a byte: a new client is served, the oldest silent connection
        is closed for it, without a byte."""
        self.evicts_silent(False)

    def test_worker_connections_evicts_silent_tls(self):
        """As above on the TLS port: a connection that has not sent a byte
        of its handshake is no more use than a silent cleartext one."""
        self.evicts_silent(True)

    def test_worker_connections_full_waits_for_a_slot(self):
        """worker_connections 20, all held by requests in progress (half
        a head: nothing to evict): a new client is not served, and no
        request in progress is dropped for it, until a slot frees; then
        it is served at once.  Reaching the cap is logged."""
        srv = self.server(workers=1, extra={'worker_connections': 20})
        partial = []
        for i in range(20):
            c = connect(srv.port)
            self.addCleanup(c.close)
            c.send('GET / HTTP/1.1\r\nHost: x\r\n')
            partial.append(c)

        def all_read():
            table = tcp_sockets(srv.port)
            for c in partial:
                st = table.get((srv.port, c.sock.getsockname()[1]))
                if st is None or st[2] == 0 or st[1] != 0:
                    return False
            return True
        self.assertTrue(wait_for(all_read, 5), 'the worker did not accept '
                        'and read all 20 partial requests')
        new = connect(srv.port)
        self.addCleanup(new.close)
        new.send(GET)
        self.assertTrue(new.idle(1.0), 'a client beyond worker_connections '
                        'got an answer (or a close) while every slot held '
                        'a request in progress: %r' % new.buf[:200])
        t0 = time.monotonic()
        partial[0].close()
        r = new.read_response()
        took = time.monotonic() - t0
        self.assertLyrics(r)
        self.assertLess(took, 1.0, 'served %.2fs after a slot freed' % took)
        for i, c in enumerate(partial[1:], 1):
            c.send('\r\n')
            r = c.read_response()
            self.assertLyrics(r)
        self.assertTrue(wait_for_lines(srv, 'worker_connections'),
                        srv.read_log())

    # ------------------------------------------------------ greedy clients

    def test_pipelining_client_does_not_starve_others(self):
        """One worker: a client pipelines requests as fast as it can (each
        slow to parse, with 60 fields, and quick to answer: OPTIONS) and
        reads every answer at once, so its socket never makes the worker
        wait.  Fresh clients on both ports are still served within 0.5 s
        each: the worker answers a bounded number per turn."""
        srv = self.server(workers=1, extra={'keepalive_requests': 1000000})
        req = ('OPTIONS / HTTP/1.1\r\nHost: x\r\n' +
               ''.join('X-Field-%02d: %s\r\n' % (i, 'v' * 40)
                       for i in range(60)) + '\r\n').encode()
        chunk = req * ((1 << 20) // len(req))
        greedy = socket.create_connection(('127.0.0.1', srv.port), 10)
        self.addCleanup(greedy.close)
        halt = threading.Event()
        answered = [0]

        def send():
            try:
                while not halt.is_set():
                    greedy.sendall(chunk)
            except OSError:
                pass
        tail = b''

        def read():
            nonlocal tail
            try:
                while True:
                    d = greedy.recv(1 << 20)
                    if not d:
                        return
                    d = tail + d
                    answered[0] += d.count(b'HTTP/1.1 204 No Content\r\n')
                    tail = d[-30:]
                    answered[0] -= tail.count(b'HTTP/1.1 204 No Content\r\n')
            except OSError:
                pass
        threads = [threading.Thread(target=f, daemon=True)
                   for f in (send, read)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        before = answered[0]
        prober = Prober(self, srv, 0.5)
        prober.start()
        self.addCleanup(prober.stop)
        time.sleep(1.5)
        prober.stop()
        during = answered[0] - before
        halt.set()
        try:
            greedy.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for t in threads:
            t.join(10)
        self.assertGreater(during, 1000, 'the greedy client was not being '
                           'served meanwhile')
        prober.check(5)

    # ------------------------------------------------------ never reads

    def test_client_that_never_reads_does_not_hold_the_worker(self):
        """One worker, send_timeout 1s: a client pipelines 2000 GETs and
        never reads.  Fresh clients on both ports are served meanwhile
        within 0.5 s each, and the server closes the non-reader about
        send_timeout after its responses stopped fitting."""
        srv = self.server(workers=1, extra={'send_timeout': '1s'})
        hog = raw(srv.port, rcvbuf=4096, mss=536)
        self.addCleanup(hog.close)
        hog.settimeout(10)
        n = 2000
        t0 = time.monotonic()

        def flood():
            try:
                hog.sendall(GET.encode() * n)
            except OSError:
                pass            # blocked, then reset or closed
        t = threading.Thread(target=flood, daemon=True)
        t.start()
        prober = Prober(self, srv, 0.5)
        prober.start()
        self.addCleanup(prober.stop)
        closed = wait_for(lambda: not server_end_open(srv.port, hog), 6,
                          0.02)
        took = time.monotonic() - t0
        time.sleep(0.3)
        prober.stop()
        self.assertTrue(closed, 'a client that does not read still '
                        'connected after %.1fs' % took)
        self.assertGreaterEqual(took, 0.7, 'non-reader closed after only '
                                '%.2fs' % took)
        self.assertLessEqual(took, 3.0, 'non-reader closed after %.2fs' %
                             took)
        prober.check(5)
        data, eof = drain(hog, 5)
        self.assertTrue(eof, 'closed, yet no EOF once we read')
        self.assertLess(data.count(b'HTTP/1.1 200 OK\r\n'), n)
        t.join(10)


# ------------------------------------------------------ per-request deadlines

KA = 1.0                    # keepalive_timeout
HT = 2.0                    # header_timeout


class DeadlineTest(ServerTestCase):
    """Every request head, body and idle period has its own deadline."""

    SERVER = dict(workers=1, extra={'keepalive_timeout': '%gs' % KA,
                                    'header_timeout': '%gs' % HT,
                                    'handshake_timeout': '%gs' % HT})

    def conn(self, tls):
        c = connect(self.srv.tls_port if tls else self.srv.port, tls=tls)
        self.addCleanup(c.close)
        return c

    def request_after_idle(self, tls):
        c = self.conn(tls)
        c.send(GET)
        self.assertLyrics(c.read_response())
        time.sleep(0.8 * KA)
        c.send('GET / HTTP/1.1\r\nHo')
        t0 = time.monotonic()
        r = c.read_response()
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.8 * HT, '%r %.2fs after half a head '
                                'sent late in the idle time: the idle '
                                'deadline still ran' % (r, took))
        self.assertLessEqual(took, HT + 1.0, '%r only after %.2fs' %
                             (r, took))
        self.assertError(r, 408, 'Request Timeout')
        self.assertClosed(c)

    def test_request_after_idle_gets_header_timeout(self):
        """keepalive_timeout 1s, header_timeout 2s: half a head sent 0.8 s
        into the idle time gets its 408 header_timeout after its first
        byte (not when the idle deadline would have been, not never)."""
        self.request_after_idle(False)

    def test_request_after_idle_gets_header_timeout_tls(self):
        """As above, over TLS."""
        self.request_after_idle(True)

    def test_trickled_handshake_cut_at_handshake_timeout(self):
        """handshake_timeout 2s bounds the whole handshake: a ClientHello
        trickled a byte every 100 ms (it would take 50 s) is cut off about
        2 s after the connection, without a byte of HTTP."""
        hello = tls_client_hello()
        s = raw(self.srv.tls_port)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        got = b''
        for i in range(len(hello)):
            try:
                s.send(hello[i:i + 1])
            except OSError:
                break           # reset: closed
            if select.select([s], [], [], TICK)[0]:
                try:
                    d = s.recv(65536)
                except ConnectionResetError:
                    d = b''
                if not d:
                    break
                got += d
            if time.monotonic() - t0 > HT + 3:
                break
        took = time.monotonic() - t0
        self.assertNotIn(b'HTTP/', got)
        self.assertGreaterEqual(took, 0.8 * HT, 'cut off after only %.2fs' %
                                took)
        self.assertLessEqual(took, HT + 1.0, 'a trickled handshake went on '
                             'for %.2fs' % took)

    def split_pipelining(self, tls):
        c = self.conn(tls)
        writes = int(1.5 * HT / TICK)
        reqs = ['GET /%d HTTP/1.1\r\nHost: x\r\n\r\n' % i
                for i in range(writes + 1)]
        cut = 20                # mid "Host:"
        t0 = time.monotonic()
        c.send(reqs[0][:cut])
        for k in range(1, writes + 1):
            time.sleep(max(0.0, t0 + k * TICK - time.monotonic()))
            c.send(reqs[k - 1][cut:] + reqs[k][:cut])
            r = c.read_response()
            self.assertEqual(r.status, 200, 'request %d, %.2fs into a '
                             'stream that always holds a partial head: %r' %
                             (k - 1, time.monotonic() - t0, r))
            self.assertLyrics(r)
        c.send(reqs[writes][cut:])
        self.assertLyrics(c.read_response())
        self.assertOpen(c, 0.2)

    def test_split_pipelining_each_head_own_deadline(self):
        """Each write is the tail of one request and the head of the next,
        every 100 ms, for 1.5 x header_timeout: the buffer is never empty,
        yet every head has its own deadline, so no 408."""
        self.split_pipelining(False)

    def test_split_pipelining_each_head_own_deadline_tls(self):
        """As above, over TLS."""
        self.split_pipelining(True)

    def test_head_after_body_has_own_deadline(self):
        """A POST's body arrives over 0.5 x header_timeout, followed in the
        same write by the start of a GET, whose head then trickles in
        until 1.3 x header_timeout: past the body's deadline but within
        the GET's own.  Both are answered, no 408."""
        c = self.conn(False)
        t0 = time.monotonic()
        c.send('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n'
               '01234')
        time.sleep(max(0.0, t0 + 0.5 * HT - time.monotonic()))
        c.send('56789GET / HT')
        r = c.read_response('POST')
        self.assertEqual(r.status_line, 'HTTP/1.1 405 Method Not Allowed', r)
        rest = 'TP/1.1\r\nHost: x\r\n\r\n'
        for i, part in enumerate((rest[:5], rest[5:10], rest[10:15],
                                  rest[15:]), 1):
            time.sleep(max(0.0, t0 + (0.5 + 0.2 * i) * HT -
                           time.monotonic()))
            c.send(part)
        r = c.read_response()
        self.assertEqual(r.status, 200, 'GET whose head began %gs after '
                         'the body: %r' % (0.5 * HT, r))
        self.assertLyrics(r)
        self.assertOpen(c, 0.2)

    def crlf_while_idle(self, tls, sends=((0.5, '\r\n'), (0.9, '\r\n'))):
        c = self.conn(tls)
        c.send(GET)
        self.assertLyrics(c.read_response())
        t0 = time.monotonic()
        for at, data in sends:
            time.sleep(max(0.0, t0 + at * KA - time.monotonic()))
            try:
                c.send(data)
            except OSError as e:
                self.fail('connection closed %.2fs after the response, '
                          'before keepalive_timeout: %r' %
                          (time.monotonic() - t0, e))
        data = c.read_until_eof(HT + 2)
        took = time.monotonic() - t0
        self.assertEqual(data, b'', 'CRLFs on an idle connection are '
                         'ignored: it is closed silently, %.2fs after the '
                         'response' % took)
        self.assertGreaterEqual(took, 0.8 * KA, 'closed after %.2fs' % took)
        self.assertLessEqual(took, 1.6 * KA, 'closed after %.2fs: the CRLFs '
                             'extended keepalive_timeout' % took)

    def test_crlf_while_idle_ignored(self):
        """keepalive_timeout 1s: CRLFs sent 0.5 s and 0.9 s after a
        response neither start a request (no 408) nor extend the idle
        deadline: closed silently about 1 s after the response."""
        self.crlf_while_idle(False)

    def test_crlf_while_idle_ignored_tls(self):
        """As above, over TLS."""
        self.crlf_while_idle(True)

    def test_split_crlf_while_idle_ignored(self):
        """As above, with the CR and the LF in separate segments (at 0.5 s
        and 0.7 s): still an empty line, still no 408."""
        self.crlf_while_idle(False, ((0.5, '\r'), (0.7, '\n')))


if __name__ == '__main__':
    unittest.main()
