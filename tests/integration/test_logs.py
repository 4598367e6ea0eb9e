"""Error and access logs: the combined format plus microseconds, peers,
escaping, one line per request under concurrency, off/syslog/stderr,
the error log file, reopening after rotation (SIGUSR1, -s reopen) and
-t on unusable log paths (issue 3, "Logs"); error_log levels, journal
priorities, clients' errors at info and rate-limited, failed starts in
the error log, the whole OpenSSL error queue, local times with their
offset (issue 9, "Logs that say what happened")."""

import datetime
import os
import re
import signal
import stat
import threading
import time
import unittest

import socket

import astleyd_test as T
from astleyd_test import (ServerTestCase, alive, connect, control, free_port,
                          has_ipv6, parse_imf_fixdate, request, run_bin,
                          wait_for)

# The combined log format plus the request time in microseconds.  Quoted
# fields may hold backslash escapes (\" for a quote), never a bare quote.
Q = r'"((?:[^"\\]|\\.)*)"'
ACCESS_RE = re.compile(r'^(\S+) - - \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d '
                       r'[+-]\d{4})\] ' + Q + r' (\d{3}) (\d+) ' + Q + ' ' +
                       Q + r' (\d+)$')
# ISO 8601 local time with its offset, the pid, the level, the message.
LEVELS = ('emerg', 'error', 'warn', 'notice', 'info', 'debug')
ERROR_RE = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d) '
                      r'astleyd\[(\d+)\]: \[(%s)\] (.*)$' % '|'.join(LEVELS))
# The same on stderr, without the time.
STDERR_RE = re.compile(r'^astleyd\[(\d+)\]: \[(%s)\] (.*)$' % '|'.join(LEVELS))
GET = 'GET / HTTP/1.1\r\nHost: logs\r\n\r\n'


def read_bytes(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except FileNotFoundError:
        return b''


def log_time(s):
    """Seconds since the epoch for "28/Nov/2024:09:30:00 +0100"."""
    return datetime.datetime.strptime(s, '%d/%b/%Y:%H:%M:%S %z').timestamp()


def local_offset(t, fmt='%+03d%02d'):
    """This machine's UTC offset at T, as the logs write it."""
    off = time.localtime(t).tm_gmtoff // 60
    return fmt % (off // 60 if off >= 0 else -(-off // 60), abs(off) % 60)


def error_lines(text, test):
    """(pid, level, message) of each error log line in TEXT, each checked,
    its time within 10 s of now with this machine's offset."""
    out = []
    for line in text.splitlines():
        m = ERROR_RE.match(line)
        test.assertIsNotNone(m, 'bad error log line %r' % line)
        t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
        test.assertLessEqual(abs(t - time.time()), 10, line)
        test.assertTrue(m.group(1).endswith(local_offset(t, '%+03d:%02d')),
                        line)
        out.append((int(m.group(2)), m.group(3), m.group(4)))
    return out


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
        # As nginx: \xHH.
        want.append(('127.0.0.1', 'GET /ua HTTP/1.1', 200, 980,
                     r'http://r/\x22x\x22', r'Mozilla \x22quoted\x22 \x5C back'))
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
                self.assertEqual(got.request, r'GET /a\x01\x22b HTTP/1.1')
                exp = exp[:1] + (got.request,) + exp[2:]
            self.assertEqual(got.key(), exp, got.line)
            self.assertLessEqual(abs(log_time(got.time) - t0), 10, got.line)
            self.assertTrue(got.time.endswith(' ' + local_offset(t0)),
                            got.line)
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
                                 '%d/%b/%Y:%H:%M:%S %z', time.localtime(t)),
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
        # Serving is not yet "started": every worker must be ready.
        self.assertTrue(wait_for(lambda: b'started:' in read_bytes(path),
                                 5), read_bytes(path))
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
        n = len(good.splitlines()) + 1
        self.assertEqual(error_lines(text, self), [
            (srv.pid, 'notice', 'started: 2 workers, pid %d' % srv.pid),
            (srv.pid, 'notice', 'reloaded %s: generation 1, 2 workers' %
             srv.conf),
            (srv.pid, 'error', 'reload failed, keeping the old '
             'configuration: %s:%d: unknown directive "bogus_directive"' %
             (srv.conf, n)),
            (srv.pid, 'notice', 'stopping'),
            (srv.pid, 'notice', 'exiting')])
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


# ------------------------------------------------------------- levels

def tls_garbage(port):
    """A TLS port sent bytes that are no ClientHello; returns when closed."""
    with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
        s.sendall(b'\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00' * 4)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass


class LevelTest(LogTestCase):

    def events(self, srv):
        """One message of each level, each recognized by MARKS below."""
        self.assertEqual(request(srv.tls_port, GET).status, 400)   # info
        tls_garbage(srv.tls_port)                          # info, debug
        good = srv.conf_text()
        old = srv.wait_workers(1)
        # (A signal: -s would look for the new pidfile's socket.)
        srv.write_conf(good.replace('pidfile astleyd.pid',
                                    'pidfile other.pid'))
        srv.signal(signal.SIGHUP)                          # warn, notice
        srv.wait_workers(1, exclude=old, timeout=8)
        srv.write_conf(good + 'bogus_directive 1\n')
        rc, out, err = control(srv, 'reload')              # error
        self.assertEqual(rc, 1, out)
        srv.write_conf(good)
        rc, out, err = control(srv, 'stop')                # notice
        self.assertEqual(rc, 0, err)
        self.assertEqual(srv.wait_exit(5), 0)

    MARKS = (('error', 'reload failed, keeping the old configuration'),
             ('warn', 'pidfile changes need a restart'),
             ('notice', 'started: 1 workers'),
             ('info', '127.0.0.1: plain HTTP request on a TLS port'),
             ('info', '127.0.0.1: TLS handshake failed: '),
             ('debug', 'TLS handshake: error:'))

    def test_each_level_shows_what_it_should(self):
        for level in ('error', 'warn', 'notice', 'info', 'debug', None):
            with self.subTest(level=level):
                target = 'error.log' + (' ' + level if level else '')
                srv = self.server(workers=1, extra={'error_log': target})
                self.events(srv)
                lines = error_lines(read_bytes(os.path.join(
                    srv.dir, 'error.log')).decode(), self)
                most = LEVELS.index(level or 'notice')      # the default
                for pid, lv, msg in lines:
                    self.assertLessEqual(LEVELS.index(lv), most,
                                         (level, lv, msg))
                for lv, mark in self.MARKS:
                    found = [(l, m) for _, l, m in lines if mark in m]
                    if LEVELS.index(lv) <= most:
                        self.assertEqual([l for l, _ in found], [lv],
                                         (level, mark, lines))
                    else:
                        self.assertEqual(found, [], (level, mark))
                self.assertNotIn('astleyd[', srv.read_log())

    def test_bad_level(self):
        for line, want in (
                ('stderr verbose', 'error_log: invalid level "verbose" '
                 '(error, warn, notice, info or debug)'),
                ('stderr emerg', 'error_log: invalid level "emerg"'),
                ('stderr INFO', 'error_log: invalid level "INFO"'),
                ('stderr info more', 'error_log: takes one value')):
            with self.subTest(line=line):
                srv = self.server(start=False)
                srv.write_conf(srv.conf_text() + 'error_log %s\n' % line)
                rc, out, err = run_bin(['-t', '-f', srv.conf])
                self.assertEqual(rc, 1, err)
                self.assertIn(want, err)


# ------------------------------------------------------------- journal

class JournalTest(LogTestCase):

    def journal_server(self, match=True, extra=None):
        """A server whose stderr (its log file) is, or is said not to be,
        the journal stream."""
        srv = self.server(start=False, workers=1, extra=extra)
        open(srv.logpath, 'ab').close()
        st = os.stat(srv.logpath)
        srv.env['JOURNAL_STREAM'] = '%d:%d' % (st.st_dev, st.st_ino +
                                               (0 if match else 1))
        srv.start()
        return srv

    def test_priorities_instead_of_the_prefix(self):
        srv = self.journal_server(extra={'error_log': 'stderr info',
                                         'access_log': 'stderr'})
        self.assertEqual(request(srv.tls_port, GET).status, 400)
        good = srv.conf_text()
        srv.write_conf(good + 'bogus_directive 1\n')
        rc, out, err = control(srv, 'reload')
        self.assertEqual(rc, 1, out)
        srv.write_conf(good)
        srv.stop()
        lines = srv.read_log().splitlines()
        self.assertIn('<5>[notice] started: 1 workers, pid %d' % srv.pid,
                      lines)
        self.assertIn('<6>[info] 127.0.0.1: plain HTTP request on a TLS '
                      'port', lines)
        self.assertTrue([l for l in lines if l.startswith(
            '<3>[error] reload failed, keeping the old configuration: ')],
            lines)
        self.assertIn('<5>[notice] exiting', lines)
        access = [l for l in lines if '"GET / HTTP/1.1" 200' in l]
        self.assertTrue(access, lines)
        for l in access:
            self.assertTrue(l.startswith('<6>127.0.0.1 - - ['), l)
        # journald adds its own "astleyd[PID]:".
        self.assertNotIn('astleyd[', srv.read_log())

    def test_another_stream_is_not_the_journal(self):
        srv = self.journal_server(match=False)
        srv.stop()
        lines = srv.read_log().splitlines()
        self.assertIn('astleyd[%d]: [notice] started: 1 workers, pid %d' %
                      (srv.pid, srv.pid), lines)
        self.assertFalse([l for l in lines if l.startswith('<')], lines)


# ------------------------------------------------------------- clients

class ClientErrorTest(LogTestCase):

    def notes(self, srv):
        out = []
        for line in srv.read_log().splitlines():
            m = STDERR_RE.match(line)
            if m and m.group(2) == 'info':
                out.append(m.group(3))
        return out

    def test_reasons_with_the_address(self):
        srv = self.server(workers=1, extra={'error_log': 'stderr info'})
        tls_garbage(srv.tls_port)
        for data in (b'GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n',
                     b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\n\r\n',
                     b'GET / HTTP/2.5\r\nHost: x\r\n\r\n'):
            with connect(srv.port) as c:
                c.send(data)
                self.assertGreaterEqual(c.read_response().status, 400)
        # A client that leaves before its first byte is no error.
        socket.create_connection(('127.0.0.1', srv.tls_port), 5).close()
        want = ['127.0.0.1: TLS handshake failed: ',
                '127.0.0.1: malformed request: answered 400',
                '127.0.0.1: request line longer than max_uri_size: '
                'answered 414',
                '127.0.0.1: HTTP version not supported: answered 505']
        self.assertTrue(wait_for(lambda: len(self.notes(srv)) >= 4, 5),
                        srv.read_log())
        time.sleep(0.3)
        got = self.notes(srv)
        self.assertEqual(len(got), 4, got)
        self.assertRegex(got[0], r'^127\.0\.0\.1: TLS handshake failed: '
                         r'[a-z]', got)
        self.assertEqual(got[1:], want[1:])

    def test_not_at_the_default_level(self):
        srv = self.server(workers=1)
        tls_garbage(srv.tls_port)
        self.assertEqual(request(srv.tls_port, GET).status, 400)
        srv.stop()
        self.assertNotIn('[info]', srv.read_log())
        self.assertNotIn('plain HTTP', srv.read_log())

    def test_rate_limited_and_counted(self):
        srv = self.server(workers=1, extra={'error_log': 'stderr info'})
        n = 300
        t0 = time.monotonic()
        for _ in range(n):
            with connect(srv.port) as c:
                c.send(b'BAD\x01 / HTTP/1.1\r\n\r\n')
                self.assertEqual(c.read_response().status, 400)
        elapsed = time.monotonic() - t0

        def counted():
            notes = self.notes(srv)
            lines = [m for m in notes if m.endswith('answered 400')]
            held = [int(m.split()[0]) for m in notes
                    if m.endswith(' similar messages suppressed')]
            return (len(lines), sum(held)) if \
                len(lines) + sum(held) >= n else None
        # The count of the last second's held-back lines comes without
        # another error to carry it.
        got = wait_for(counted, 5)
        self.assertIsNotNone(got, srv.read_log()[-3000:])
        lines, held = got
        self.assertEqual(lines + held, n)
        self.assertGreater(held, 0)
        # At most 10 lines a second.
        self.assertLessEqual(lines, 10 * (int(elapsed) + 2), elapsed)


# ------------------------------------------------------ failed start

class FailedStartTest(LogTestCase):

    def start_fails(self, srv):
        rc, out, err = run_bin(['-d', '-f', srv.conf])
        self.assertEqual(rc, 1, err)
        self.assertFalse(os.path.exists(srv.pidfile))
        return err, read_bytes(os.path.join(srv.dir, 'error.log')).decode()

    def assertEmerg(self, text, stderr, want):
        lines = error_lines(text, self)
        self.assertEqual([(l, m) for _, l, m in lines if l == 'emerg'],
                         [('emerg', want)], lines)
        m = [STDERR_RE.match(l) for l in stderr.splitlines()]
        self.assertIn(('emerg', want), [x.groups()[1:] for x in m if x],
                      stderr)

    def test_port_in_use(self):
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(('127.0.0.1', 0))
        s.listen(1)
        port = s.getsockname()[1]
        srv = self.server(start=False, listen=['127.0.0.1:%d' % port],
                          extra={'error_log': 'error.log'})
        err, text = self.start_fails(srv)
        lines = [m for _, l, m in error_lines(text, self) if l == 'emerg']
        self.assertEqual(len(lines), 1, text)
        self.assertIn('127.0.0.1:%d' % port, lines[0])
        self.assertIn('Address already in use', lines[0])
        self.assertIn(lines[0], err)

    def test_bad_certificate_whole_error_queue(self):
        for name, directive in (('cert.pem', 'tls_certificate'),
                                ('key.pem', 'tls_certificate_key')):
            with self.subTest(directive=directive):
                srv = self.server(start=False,
                                  extra={'error_log': 'error.log',
                                         'tls_key_process': 'off'})
                path = os.path.join(srv.dir, name)
                open(path, 'w').close()         # an empty PEM
                err, text = self.start_fails(srv)
                lines = [m for _, l, m in error_lines(text, self)
                         if l == 'emerg']
                self.assertEqual(len(lines), 1, text)
                self.assertTrue(lines[0].startswith('%s %s: ' %
                                                    (directive, path)),
                                lines[0])
                # The cause first, then where it surfaced.
                self.assertRegex(lines[0], r'error:[0-9A-F]+:(PEM|DECODER)'
                                 r' routines::[^;]+; .*PEM lib$')
                if name == 'cert.pem':
                    self.assertIn('no start line', lines[0])
                self.assertIn(lines[0], err)
                rc, out, err = run_bin(['-t', '-f', srv.conf])
                self.assertEqual(rc, 1)
                self.assertIn(lines[0], err)

    def test_bad_config_line_after_error_log(self):
        srv = self.server(start=False, extra={'error_log': 'error.log'})
        srv.write_conf(srv.conf_text() + 'bogus_directive 1\n')
        n = len(srv.conf_text().splitlines()) + 1
        err, text = self.start_fails(srv)
        want = '%s:%d: unknown directive "bogus_directive"' % (srv.conf, n)
        self.assertEmerg(text, err, want)

    def test_no_log_known_stderr_only(self):
        srv = self.server(start=False)
        srv.write_conf(srv.conf_text() + 'bogus_directive 1\n')
        rc, out, err = run_bin(['-d', '-f', srv.conf])
        self.assertEqual(rc, 1)
        self.assertRegex(err, r'astleyd\[\d+\]: \[emerg\] %s:\d+: unknown '
                         r'directive' % re.escape(srv.conf))
        self.assertEqual(sorted(os.listdir(srv.dir)), [
            'astleyd.conf', 'cert.pem', 'key.pem', 'other-key.pem'])


# ------------------------------------------------------------ time zone

class TimeZoneTest(LogTestCase):

    def test_local_time_with_offset(self):
        # A POSIX TZ string: no zone file needed, 5:30 east of UTC.
        srv = self.server(workers=1, env={'TZ': 'IST-05:30'},
                          extra={'access_log': 'access.log',
                                 'error_log': 'error.log'})
        t = time.time()
        self.assertEqual(request(srv.port).status, 200)
        srv.stop()
        acc = self.access_lines(os.path.join(srv.dir, 'access.log'))
        self.assertGreaterEqual(len(acc), 2)
        for a in acc:
            self.assertTrue(a.time.endswith(' +0530'), a.line)
            self.assertLessEqual(abs(log_time(a.time) - t), 10, a.line)
        text = read_bytes(os.path.join(srv.dir, 'error.log')).decode()
        self.assertTrue(text, 'empty error log')
        for line in text.splitlines():
            m = ERROR_RE.match(line)
            self.assertIsNotNone(m, line)
            self.assertTrue(m.group(1).endswith('+05:30'), line)
            self.assertLessEqual(abs(datetime.datetime.fromisoformat(
                m.group(1)).timestamp() - t), 10, line)



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
