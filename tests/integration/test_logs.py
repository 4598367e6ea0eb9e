"""Error and access logs: the combined format plus microseconds, peers,
escaping, one line per request under concurrency, off/syslog/stderr,
the error log file, reopening after rotation (SIGUSR1, -s reopen) and
-t on unusable log paths (issue 3, "Logs")."""

import calendar
import os
import re
import signal
import stat
import threading
import time
import unittest

import astleyd_test as T
from astleyd_test import (ServerTestCase, alive, connect, control, free_port,
                          has_ipv6, parse_imf_fixdate, request, run_bin,
                          wait_for)

# The combined log format plus the request time in microseconds.  Quoted
# fields may hold backslash escapes (\" for a quote), never a bare quote.
Q = r'"((?:[^"\\]|\\.)*)"'
ACCESS_RE = re.compile(r'^(\S+) - - \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d) '
                       r'\+0000\] ' + Q + r' (\d{3}) (\d+) ' + Q + ' ' + Q +
                       r' (\d+)$')
ERROR_RE = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) astleyd\[(\d+)\]: '
                      r'(.*)$')
GET = 'GET / HTTP/1.1\r\nHost: logs\r\n\r\n'


def read_bytes(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except FileNotFoundError:
        return b''


def log_time(s):
    """Seconds since the epoch for "28/Nov/2024:09:30:00"."""
    return calendar.timegm(time.strptime(s, '%d/%b/%Y:%H:%M:%S'))


class Access:
    """One parsed access log line."""

    def __init__(self, line, test):
        m = ACCESS_RE.match(line)
        test.assertIsNotNone(m, 'not a combined+us log line: %r' % line)
        (self.peer, self.time, self.request, status, size, self.referer,
         self.agent, us) = m.groups()
        self.status, self.bytes, self.us = int(status), int(size), int(us)
        self.line = line

    def key(self):
        return (self.peer, self.request, self.status, self.bytes,
                self.referer, self.agent)


class LogTestCase(ServerTestCase):

    def access_lines(self, path):
        """The lines of access log PATH, each checked to be complete."""
        data = read_bytes(path)
        if not data:
            return []
        self.assertTrue(data.endswith(b'\n'), 'last line incomplete: %r' %
                        data[-200:])
        lines = data.decode('latin-1').split('\n')[:-1]
        for l in lines:
            # Escaped: printable ASCII only.
            self.assertRegex(l, r'^[\x20-\x7e]+$', 'unescaped byte')
        return [Access(l, self) for l in lines]

    def wait_lines(self, path, n, timeout=3):
        """Wait for N lines in PATH, then make sure no more come."""
        wait_for(lambda: read_bytes(path).count(b'\n') >= n, timeout)
        time.sleep(0.1)
        return self.access_lines(path)

    def after_probe(self, lines):
        """LINES without the first, Server.wait_ready's one GET /."""
        self.assertGreater(len(lines), 0)
        self.assertEqual(lines[0].key()[1:], ('GET / HTTP/1.1', 200, 980,
                                              '-', '-'), lines[0].line)
        return lines[1:]


# ------------------------------------------------------------- access log

class AccessLogTest(LogTestCase):

    def test_format_peers_statuses_escaping(self):
        p4, p6, pdual, ptls = (free_port() for _ in range(4))
        listen = ['127.0.0.1:%d' % p4, '*:%d' % pdual]
        if has_ipv6():
            listen.append('[::1]:%d' % p6)
        srv = self.server(workers=2, listen=listen,
                          listen_tls=['*:%d' % ptls],
                          extra={'access_log': 'access.log'})
        path = os.path.join(srv.dir, 'access.log')
        want = []
        t0 = time.time()

        def one(port, data, host='127.0.0.1', tls=False, method='GET'):
            with connect(port, host=host, tls=tls) as c:
                c.send(data)
                return c.read_response(method)

        r = one(p4, 'GET /v4 HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertEqual(r.status, 200)
        want.append(('127.0.0.1', 'GET /v4 HTTP/1.1', 200, 980, '-', '-'))
        # An IPv4 client of the dual-stack listener is shown as IPv4.
        one(pdual, 'GET /mapped HTTP/1.1\r\nHost: x\r\n\r\n')
        want.append(('127.0.0.1', 'GET /mapped HTTP/1.1', 200, 980, '-',
                     '-'))
        if has_ipv6():
            one(p6, 'GET /v6 HTTP/1.1\r\nHost: x\r\n\r\n', host='::1')
            want.append(('::1', 'GET /v6 HTTP/1.1', 200, 980, '-', '-'))
            one(pdual, 'GET /dual6 HTTP/1.1\r\nHost: x\r\n\r\n', host='::1')
            want.append(('::1', 'GET /dual6 HTTP/1.1', 200, 980, '-', '-'))
        r = one(ptls, 'GET /tls HTTP/1.1\r\nHost: x\r\n\r\n', tls=True)
        self.assertEqual(r.status, 200)
        want.append(('127.0.0.1', 'GET /tls HTTP/1.1', 200, 980, '-', '-'))
        r = one(p4, 'HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n', method='HEAD')
        self.assertEqual(r.status, 200)
        want.append(('127.0.0.1', 'HEAD /head HTTP/1.1', 200, 0, '-', '-'))
        r = one(p4, 'POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 3'
                '\r\n\r\nabc')
        self.assertEqual((r.status, r.body), (405, T.BODY_405))
        want.append(('127.0.0.1', 'POST /post HTTP/1.1', 405, 58, '-', '-'))
        r = one(p4, 'GET /old HTTP/1.0\r\n\r\n')
        self.assertEqual(r.status, 200)
        want.append(('127.0.0.1', 'GET /old HTTP/1.0', 200, 980, '-', '-'))
        # Quotes and backslashes in Referer and User-Agent are escaped.
        r = one(p4, 'GET /ua HTTP/1.1\r\nHost: x\r\nReferer: http://r/"x"'
                '\r\nUser-Agent: Mozilla "quoted" \\ back\r\n\r\n')
        self.assertEqual(r.status, 200)
        want.append(('127.0.0.1', 'GET /ua HTTP/1.1', 200, 980,
                     r'http://r/\"x\"', r'Mozilla \"quoted\" \\ back'))
        # A request line with a control byte and a quote: 400, and its
        # rendition in the log is escaped, on one line.
        with connect(p4) as c:
            c.send(b'GET /a\x01"b HTTP/1.1\r\nHost: x\r\n\r\n')
            r = c.read_response()
        self.assertEqual((r.status, r.body), (400, b'Bad Request\n'))
        want.append(('127.0.0.1', None, 400, 12, '-', '-'))

        lines = self.after_probe(self.wait_lines(path, len(want) + 1))
        self.assertEqual(len(lines), len(want), [l.line for l in lines])
        for got, exp in zip(lines, want):
            if exp[1] is None:
                self.assertRegex(got.request,
                                 r'^GET /a\\(\^A|001|x01)\\"b HTTP/1\.1$')
                exp = exp[:1] + (got.request,) + exp[2:]
            self.assertEqual(got.key(), exp, got.line)
            self.assertLessEqual(abs(log_time(got.time) - t0), 10, got.line)
            self.assertLess(got.us, 5000000, got.line)

    def test_time_is_that_of_the_request(self):
        srv = self.server(workers=1, extra={'access_log': 'access.log'})
        path = os.path.join(srv.dir, 'access.log')
        self.assertEqual(request(srv.port).status, 200)
        time.sleep(2.5)                 # the worker idles
        t = time.time()
        r = request(srv.port, 'GET /later HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertEqual(r.status, 200)
        lines = self.after_probe(self.wait_lines(path, 3))
        self.assertEqual(len(lines), 2, [l.line for l in lines])
        self.assertEqual(lines[1].request, 'GET /later HTTP/1.1')
        logged = log_time(lines[1].time)
        self.assertLessEqual(abs(logged - t), 1.5, 'logged at %s for a '
                             'request at %s (Date: %s)' %
                             (lines[1].time, time.strftime(
                                 '%d/%b/%Y:%H:%M:%S', time.gmtime(t)),
                              r.get('Date')))
        # Logging the time must not freeze the Date header (it once
        # consumed the once-a-second refresh the responses waited for).
        self.assertLessEqual(abs(parse_imf_fixdate(r.get('Date')) - t), 1.5,
                             r.get('Date'))

    def test_fields_of_a_request_whose_body_came_later(self):
        # Discarding a late body moves the buffer: the response and the
        # log line must still come from the request's own fields.
        srv = self.server(workers=1, extra={'access_log': 'access.log'})
        path = os.path.join(srv.dir, 'access.log')
        etag = request(srv.port).get('ETag')
        with connect(srv.port) as c:
            c.send('GET /late HTTP/1.1\r\nHost: x\r\nUser-Agent: ua/1\r\n'
                   'If-None-Match: %s\r\nContent-Length: 400\r\n\r\n' %
                   etag)
            time.sleep(0.3)
            c.send('Z' * 400)
            r = c.read_response('HEAD')
        self.assertEqual(r.status, 304, r)
        lines = self.after_probe(self.wait_lines(path, 3))
        self.assertEqual(lines[-1].request, 'GET /late HTTP/1.1')
        self.assertEqual(lines[-1].agent, 'ua/1')
        self.assertEqual(lines[-1].status, 304)

    def test_concurrent_lines_complete_and_counted(self):
        srv = self.server(workers=4, extra={'access_log': 'access.log'})
        path = os.path.join(srv.dir, 'access.log')
        per = 120
        errors = []
        long_ua = 'agent/' + 'x' * 3000        # long lines, too

        def client(tid, tls, keepalive):
            c = None
            try:
                for i in range(per):
                    data = ('GET /c%d-%d HTTP/1.1\r\nHost: x\r\nUser-Agent: '
                            '%s\r\n%s\r\n' % (tid, i, long_ua if i % 7 == 0
                                              else 'u%d' % tid,
                                              '' if keepalive else
                                              'Connection: close\r\n'))
                    if c is None:
                        c = connect(srv.tls_port if tls else srv.port,
                                    tls=tls)
                    c.send(data)
                    r = c.read_response()
                    if r.status != 200:
                        errors.append(r.status_line)
                    if not keepalive:
                        c.close()
                        c = None
            except (OSError, AssertionError) as e:
                errors.append(repr(e))
            finally:
                if c is not None:
                    c.close()

        threads = [threading.Thread(target=client, args=args, daemon=True)
                   for args in ((0, False, True), (1, False, False),
                                (2, True, True), (3, True, False))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        n = per * len(threads)
        lines = self.after_probe(self.wait_lines(path, n + 1))
        self.assertEqual(len(lines), n)
        got = sorted(l.request for l in lines)
        self.assertEqual(got, sorted('GET /c%d-%d HTTP/1.1' % (t, i)
                                     for t in range(len(threads))
                                     for i in range(per)))
        for l in lines:
            self.assertEqual((l.status, l.bytes), (200, 980))
            tid = int(l.request.split('/c')[1].split('-')[0])
            i = int(l.request.split('-')[1].split()[0])
            # A long User-Agent is cut, never split over lines.
            if i % 7 == 0:
                self.assertTrue(l.agent.startswith('agent/xxx'), l.line)
            else:
                self.assertEqual(l.agent, 'u%d' % tid)

    def test_off_and_default_create_nothing(self):
        for extra in ({'access_log': 'off'}, {}):
            with self.subTest(extra=extra):
                srv = self.server(workers=1, extra=extra)
                before = set(os.listdir(srv.dir))
                for _ in range(3):
                    self.assertEqual(request(srv.port).status, 200)
                    self.assertEqual(request(srv.tls_port, tls=True).status,
                                     200)
                self.assertEqual(set(os.listdir(srv.dir)), before)
                self.assertEqual(sorted(before), sorted([
                    'astleyd.conf', 'astleyd.log', 'astleyd.pid',
                    'astleyd.sock', 'cert.pem', 'key.pem', 'other-key.pem']))
                self.assertNotIn('GET / HTTP/1.1', srv.read_log())

    def test_stderr(self):
        srv = self.server(workers=1, extra={'access_log': 'stderr'})
        self.assertEqual(request(srv.port, 'GET /to-stderr HTTP/1.1\r\n'
                                 'Host: x\r\n\r\n').status, 200)
        self.assertTrue(wait_for(lambda: '/to-stderr' in srv.read_log(), 3))
        line = [l for l in srv.read_log().splitlines()
                if '/to-stderr' in l][0]
        a = Access(line, self)
        self.assertEqual(a.key(), ('127.0.0.1', 'GET /to-stderr HTTP/1.1',
                                   200, 980, '-', '-'))

    @unittest.skipUnless(os.path.exists('/dev/log') and
                         stat.S_ISSOCK(os.stat('/dev/log').st_mode),
                         'no syslog socket /dev/log')
    def test_syslog(self):
        srv = self.server(workers=1, extra={'access_log': 'syslog'})
        before = set(os.listdir(srv.dir))
        self.assertEqual(request(srv.port).status, 200)
        self.assertEqual(request(srv.tls_port, tls=True).status, 200)
        self.assertEqual(set(os.listdir(srv.dir)), before)
        self.assertNotIn('GET / HTTP/1.1', srv.read_log())


# ------------------------------------------------------------- error log

class ErrorLogTest(LogTestCase):

    def test_error_log_file(self):
        srv = self.server(workers=2, extra={'error_log': 'error.log'})
        path = os.path.join(srv.dir, 'error.log')
        t0 = time.time()
        rc, out, err = control(srv, 'reload')
        self.assertEqual(rc, 0, err)
        good = srv.conf_text()
        srv.write_conf(good + 'bogus_directive 1\n')
        rc, out, err = control(srv, 'reload')
        self.assertEqual(rc, 1, out)
        srv.write_conf(good)
        rc, out, err = control(srv, 'stop')
        self.assertEqual(rc, 0, err)
        self.assertEqual(srv.wait_exit(5), 0)
        text = read_bytes(path).decode()
        self.assertTrue(text.endswith('\n'), text)
        msgs = []
        for line in text.splitlines():
            m = ERROR_RE.match(line)
            self.assertIsNotNone(m, 'bad error log line %r' % line)
            t = calendar.timegm(time.strptime(m.group(1),
                                              '%Y-%m-%dT%H:%M:%SZ'))
            self.assertLessEqual(abs(t - t0), 10, line)
            self.assertEqual(int(m.group(2)), srv.pid, line)
            msgs.append(m.group(3))
        n = len(good.splitlines()) + 1
        self.assertEqual(msgs, [
            'started: 2 workers, pid %d' % srv.pid,
            'reloaded %s: generation 1, 2 workers' % srv.conf,
            'reload failed, keeping the old configuration: %s:%d: unknown '
            'directive "bogus_directive"' % (srv.conf, n),
            'stopping',
            'exiting'])
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)
        # Nothing went to stderr instead.
        self.assertNotIn('astleyd[', srv.read_log())


# ---------------------------------------------------------------- reopen

class ReopenTest(LogTestCase):

    def test_rotation_loses_nothing(self):
        srv = self.server(workers=3, extra={'access_log': 'access.log',
                                            'error_log': 'error.log'})
        access = os.path.join(srv.dir, 'access.log')
        error = os.path.join(srv.dir, 'error.log')
        stop = threading.Event()
        served = {'n': 0}
        errors = []
        lock = threading.Lock()

        def client(port, tls, keepalive):
            c = None
            try:
                while not stop.is_set():
                    if c is None:
                        c = connect(port, tls=tls)
                    c.send(GET if keepalive else
                           'GET / HTTP/1.1\r\nHost: x\r\nConnection: close'
                           '\r\n\r\n')
                    r = c.read_response()
                    if r.status != 200:
                        errors.append(r.status_line)
                    with lock:
                        served['n'] += 1
                    if not keepalive or r.get('Connection') == 'close':
                        c.close()
                        c = None
            except (OSError, AssertionError) as e:
                errors.append(repr(e))
            finally:
                if c is not None:
                    c.close()

        threads = [threading.Thread(target=client, args=a, daemon=True)
                   for a in ((srv.port, False, True),
                             (srv.port, False, False),
                             (srv.tls_port, True, True))]
        for t in threads:
            t.start()
        rotated = []
        try:
            for i, how in enumerate(('SIGUSR1', '-s reopen'), 1):
                time.sleep(0.4)
                old = srv.worker_pids()
                os.rename(access, '%s.%d' % (access, i))
                os.rename(error, '%s.%d' % (error, i))
                rotated.append('%s.%d' % (access, i))
                if how == 'SIGUSR1':
                    srv.signal(signal.SIGUSR1)
                    self.assertTrue(wait_for(
                        lambda: b'reopened logs' in read_bytes(error), 3),
                        'no "reopened logs" in the new error log')
                else:
                    rc, out, err = control(srv, 'reopen')
                    self.assertEqual(rc, 0, err)
                    self.assertRegex(out, r'^reopened logs, generation '
                                     r'[0-9]+\n$')
                    self.assertIn(b'reopened logs', read_bytes(error))
                # New workers take over; the old ones finish into the old
                # file and exit.
                self.assertTrue(wait_for(
                    lambda: not any(alive(p) for p in old), 5),
                    'old workers still running')
            time.sleep(0.4)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        self.assertEqual(errors, [])
        n = served['n'] + 1             # and Server.wait_ready's probe
        self.assertGreater(n, 100)
        counts = [len(self.access_lines(p)) for p in rotated]
        counts.append(len(self.wait_lines(access, n - sum(counts))))
        self.assertEqual(sum(counts), n, 'lines per file %r for %d requests'
                         % (counts, n))
        self.assertTrue(all(c > 0 for c in counts), counts)
        # A request now goes to the new file only.
        self.assertEqual(request(srv.port, 'GET /after HTTP/1.1\r\nHost: '
                                 'x\r\n\r\n').status, 200)
        self.assertTrue(wait_for(lambda: b'/after' in read_bytes(access), 3))
        for p in rotated:
            self.assertNotIn(b'/after', read_bytes(p))


# -------------------------------------------------------------------- -t

class TestConfigTest(LogTestCase):

    def test_log_in_missing_directory(self):
        for directive in ('error_log', 'access_log'):
            with self.subTest(directive=directive):
                srv = self.server(start=False)
                path = os.path.join(srv.dir, 'no-such-dir', 'x.log')
                srv.write_conf(srv.conf_text() + '%s %s\n' % (directive,
                                                            path))
                rc, out, err = run_bin(['-t', '-f', srv.conf])
                self.assertEqual((rc, out), (1, ''), err)
                self.assertIn('%s %s: No such file or directory' %
                              (directive, path), err)
                self.assertIn('astleyd: configuration file %s test failed' %
                              srv.conf, err)
                # And a start fails the same way, leaving nothing behind.
                rc, out, err = run_bin(['-d', '-f', srv.conf])
                self.assertEqual(rc, 1, err)
                self.assertIn(path, err)
                self.assertFalse(os.path.exists(srv.pidfile))
                with self.assertRaises(ConnectionRefusedError):
                    request(srv.port)

    def test_good_log_paths_pass(self):
        srv = self.server(start=False, extra={'error_log': 'e.log',
                                              'access_log': 'a.log'})
        rc, out, err = run_bin(['-t', '-f', srv.conf])
        self.assertEqual(rc, 0, err)
        self.assertIn('configuration file %s test is successful' % srv.conf,
                      err)


if __name__ == '__main__':
    unittest.main()
