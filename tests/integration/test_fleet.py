"""Issue 11: a fleet behind a real HAProxy, through scripts/fleet.

scripts/fleet starts N astleyd instances (each in a network namespace of
its own when root may make them, else on loopback ports) and one HAProxy
in front (TCP mode on both ports, PROXY protocol v2, health checks on
/healthz every second).  Through it, with real clients:

- every response is byte for byte the one the instance gives directly
  (the Date header masked), on both ports, and the access log shows the
  client's own address (the client binds to 127.0.0.5 and others; the
  balancer is 127.0.0.1 or 10.200.X.1);
- a connection to a proxy_protocol listener from outside
  proxy_protocol_from is closed without an answer, and logged;
- rolling restart under load: client threads (keep-alive and a new
  connection per request, on both ports, through HAProxy) run while each
  instance in turn is drained (astleyd -s quit with drain_timeout 3s:
  /healthz answers 503 and HAProxy's checks take it out while it still
  serves), stopped and started again (scripts/fleet restart), then one
  instance is SIGKILLed (its whole process group), then started again.
  Not one request may fail during the drains and restarts, nor once
  HAProxy has taken the killed instance out; what failed between the
  kill and that moment is counted, printed and bounded.  Figures per
  step go to the test log.
- `scripts/fleet status` reports each instance and the frontends, and
  `scripts/fleet stop` leaves no process, namespace or link behind
  (checked in the class cleanup, which runs however the tests ended).

Runs as root (network namespaces; a second, smaller fleet on loopback
ports exercises the fallback) and as an ordinary user (loopback ports
only, which the script says on stderr).  Skipped only if haproxy is not
installed (scripts/deps test installs it).  All traffic stays on this
machine: loopback and the namespaces the script made.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from astleyd_test import (BIN, IO_TIMEOUT, LEAVE, ROOT, Conn, Response,
                          _child_env,
                          body_length, certdir, free_port, is_root,
                          port_is_free, read_lyrics, sanitizer_lines,
                          tls_context, wait_for)

HAPROXY = shutil.which('haproxy') or next(
    (p for p in ('/usr/sbin/haproxy', '/usr/local/sbin/haproxy')
     if os.access(p, os.X_OK)), None)
FLEET = os.path.join(ROOT, 'scripts', 'fleet')
BACKENDS = ('astleyd_http', 'astleyd_https')
HOST = b'Host: fleet\r\n'
DATE_RE = re.compile(rb'\r\nDate: [^\r\n]*\r\n')


# ------------------------------------------------------------- PROXY headers

def proxy_v2(src, sport, dst, dport):
    """A PROXY protocol v2 header, PROXY command, TCP over IPv4."""
    return (b'\r\n\r\n\0\r\nQUIT\n' + struct.pack('!BBH', 0x21, 0x11, 12) +
            socket.inet_aton(src) + socket.inet_aton(dst) +
            struct.pack('!HH', sport, dport))


def proxy_v1(src, sport, dst, dport):
    return ('PROXY TCP4 %s %s %d %d\r\n' % (src, dst, sport, dport)).encode()


# ------------------------------------------------------------------ clients

def connect_from(src, host, port, timeout=IO_TIMEOUT):
    """A TCP connection to HOST:PORT from local address SRC."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        s.close()
        raise
    return s


def read_to_eof(s):
    """Every byte until the peer closes (a reset counts as a close)."""
    data = b''
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except (ConnectionResetError, ssl.SSLEOFError):
        pass
    except ssl.SSLError as e:
        if 'UNEXPECTED_EOF' not in str(e):
            raise
    return data


def exchange(src, host, port, raw, tls=False, header=b''):
    """Send HEADER (in cleartext), then RAW (over TLS if asked) from SRC;
    return all that comes back until the close."""
    s = connect_from(src, host, port)
    try:
        if header:
            s.sendall(header)
        if tls:
            s = tls_context().wrap_socket(s)
        s.sendall(raw)
        return read_to_eof(s)
    finally:
        s.close()


def split_responses(data, methods):
    """DATA as Responses, one per method in METHODS; the bytes left."""
    out = []
    for m in methods:
        if b'\r\n\r\n' not in data:
            break
        i = data.index(b'\r\n\r\n') + 4
        r = Response(data[:i], b'')
        n = body_length(m, r)
        r.body, data = data[i:i + n], data[i + n:]
        out.append(r)
    return out, data


def mask_date(data):
    return DATE_RE.sub(b'\r\nDate: (masked)\r\n', data)


# ------------------------------------------------------------------ HAProxy

def show_stat(sockpath):
    """{(proxy, server): (status, check_status)} from HAProxy's stats
    socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(sockpath)
        s.sendall(b'show stat\n')
        text = read_to_eof(s).decode(errors='replace')
    except OSError:
        return {}
    finally:
        s.close()
    lines = text.strip().splitlines()
    if not lines or not lines[0].startswith('# '):
        return {}
    head = lines[0][2:].split(',')
    out = {}
    for line in lines[1:]:
        row = dict(zip(head, line.split(',')))
        out[(row['pxname'], row['svname'])] = (row['status'],
                                               row['check_status'])
    return out


# ------------------------------------------------------------ process views

def proc_pgid(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            w = f.read().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if w[0] in ('Z', 'X') else int(w[2])


def proc_title(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().split(b'\0', 1)[0].decode(errors='replace')
    except OSError:
        return ''


def group_members(pgid):
    """Live processes of process group PGID."""
    return [int(d) for d in os.listdir('/proc')
            if d.isdigit() and proc_pgid(int(d)) == pgid]


def port_block(count):
    """The first of COUNT consecutive free ports from this process's
    block (HAProxy's two, and the instances' in loopback mode)."""
    while True:
        ports = [free_port()]
        while len(ports) < count:
            p = free_port()
            if p != ports[-1] + 1 or not port_is_free(p):
                break
            ports.append(p)
        if len(ports) == count:
            return ports[0]


# -------------------------------------------------------------- the fleet

class Fleet:
    """One `scripts/fleet start N` in a temp FLEET_DIR, the binary under
    test (build/asan/astleyd) with 2 workers an instance."""

    def __init__(self, n, mode=None):
        self.n = n
        self.dir = tempfile.mkdtemp(prefix='astleyd-fleet-')
        # Workers (nobody, when root) write sanitizer reports in san/.
        os.chmod(self.dir, 0o711)
        self.sandir = os.path.join(self.dir, 'san')
        os.mkdir(self.sandir)
        os.chmod(self.sandir, 0o1777)
        self.env = _child_env(self.sandir)
        self.env.update(FLEET_DIR=self.dir, ASTLEYD_BIN=BIN,
                        FLEET_WORKERS='2', FLEET_DRAIN='3s',
                        FLEET_PORT=str(port_block(2 + 2 * n)),
                        FLEET_CERT=os.path.join(certdir(), 'cert.pem'),
                        FLEET_KEY=os.path.join(certdir(), 'key.pem'))
        self.env.pop('FLEET_MODE', None)
        if mode:
            self.env['FLEET_MODE'] = mode
        self.state = None
        self.start_err = ''

    def run(self, *args, timeout=90):
        r = subprocess.run([FLEET] + list(args), env=self.env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        return (r.returncode, r.stdout.decode(errors='replace'),
                r.stderr.decode(errors='replace'))

    def start(self):
        rc, out, err = self.run('start', str(self.n))
        self.start_err = err
        self.reload()
        if rc != 0:
            raise AssertionError('scripts/fleet start %d: status %d\n%s%s'
                                 % (self.n, rc, out, err))
        print('--- scripts/fleet start %d\n%s%s' % (self.n, out, err))

    def reload(self):
        try:
            with open(os.path.join(self.dir, 'state.json')) as f:
                self.state = json.load(f)
        except FileNotFoundError:
            pass
        return self.state

    @property
    def instances(self):
        return self.reload()['instances']

    def master(self, inst):
        with open(os.path.join(inst['dir'], 'astleyd.pid')) as f:
            return int(f.read())

    def stat(self):
        return show_stat(self.state['haproxy']['socket'])

    def logs(self, name='access.log'):
        """{instance: text of its log NAME}."""
        out = {}
        for inst in self.instances:
            try:
                with open(os.path.join(inst['dir'], name), 'rb') as f:
                    out[inst['name']] = f.read().decode(errors='replace')
            except OSError:
                out[inst['name']] = ''
        return out

    # --- the end: scripts/fleet stop, then proof that nothing is left

    def leftovers(self, st):
        """What of the fleet in ST still exists, as strings."""
        left = []
        hpid = st['haproxy'].get('pid')
        if hpid and proc_pgid(hpid) is not None and \
                'haproxy' in proc_title(hpid):
            left.append('haproxy pid %d' % hpid)
        for inst in st['instances']:
            for p in group_members(inst.get('pgid') or -1):
                left.append('%s: pid %d %r' % (inst['name'], p,
                                               proc_title(p)))
        if st['mode'] == 'netns':
            spaces = subprocess.run(['ip', 'netns', 'list'],
                                    stdout=subprocess.PIPE).stdout.decode()
            for inst in st['instances']:
                if re.search(r'^%s( |$)' % re.escape(inst['netns']), spaces,
                             re.M):
                    left.append('namespace %s' % inst['netns'])
            for link in [st['bridge']] + [i['veth'] for i in
                                          st['instances']]:
                if subprocess.run(['ip', 'link', 'show', link],
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode == 0:
                    left.append('link %s' % link)
        return left

    def force(self, st):
        """Remove by hand what scripts/fleet stop left."""
        hpid = st['haproxy'].get('pid')
        if hpid and 'haproxy' in proc_title(hpid):
            os.kill(hpid, signal.SIGKILL)
        for inst in st['instances']:
            for p in group_members(inst.get('pgid') or -1):
                if proc_title(p).startswith('astleyd'):
                    os.kill(p, signal.SIGKILL)
        if st['mode'] == 'netns':
            for inst in st['instances']:
                subprocess.run(['ip', 'netns', 'del', inst['netns']],
                               stderr=subprocess.DEVNULL)
            subprocess.run(['ip', 'link', 'del', st['bridge']],
                           stderr=subprocess.DEVNULL)

    def stop(self):
        """scripts/fleet stop, then check that it left nothing and that
        no sanitizer spoke; clean up by hand (and fail) otherwise."""
        st = self.reload()
        problems = []
        try:
            if st is None:
                return
            rc, out, err = self.run('stop')
            print('--- scripts/fleet stop\n%s%s' % (out, err))
            if rc != 0:
                problems.append('scripts/fleet stop: status %d\n%s%s' %
                                (rc, out, err))
            if os.path.exists(os.path.join(self.dir, 'state.json')):
                problems.append('state.json left after stop')
            if not wait_for(lambda: not self.leftovers(st), 3):
                problems.append('left after scripts/fleet stop: %r' %
                                self.leftovers(st))
                self.force(st)
            bad = []
            for inst in st['instances']:
                try:
                    with open(os.path.join(inst['dir'], 'error.log')) as f:
                        bad += sanitizer_lines(f.read())
                except OSError:
                    pass
            for name in os.listdir(self.sandir):
                # Any file there is a report.
                with open(os.path.join(self.sandir, name),
                          errors='replace') as f:
                    bad.append('%s: %s' % (name, f.read()[:4000]))
            if bad:
                problems.append('sanitizer output:\n' + '\n'.join(bad))
        finally:
            if LEAVE:
                sys.stderr.write('ASTLEYD_TEST_LEAVE: kept %s\n' % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            raise AssertionError('\n'.join(problems))


# ---------------------------------------------------------------- the tests

# One connection each: a pipelined series with Connection: close on the
# last request, an HTTP/1.0 request, and a bad request (400, then close).
PIPELINE = (
    (b'GET /fleet/a HTTP/1.1\r\n' + HOST + b'\r\n', 'GET', 200),
    (b'HEAD / HTTP/1.1\r\n' + HOST + b'\r\n', 'HEAD', 200),
    (b'OPTIONS * HTTP/1.1\r\n' + HOST + b'\r\n', 'OPTIONS', 204),
    (b'POST / HTTP/1.1\r\n' + HOST + b'Content-Length: 3\r\n\r\nabc',
     'POST', 405),
    (b'GET / HTTP/1.1\r\n' + HOST +
     b'If-Modified-Since: Mon, 27 Jul 1987 00:00:00 GMT\r\n\r\n', 'GET', 304),
    (b'GET /healthz HTTP/1.1\r\n' + HOST + b'\r\n', 'GET', 200),
    (b'GET /fleet/z HTTP/1.1\r\n' + HOST + b'Connection: close\r\n\r\n',
     'GET', 200),
)
CASES = (
    ('pipelined', b''.join(p[0] for p in PIPELINE),
     [p[1] for p in PIPELINE], [p[2] for p in PIPELINE]),
    ('HTTP/1.0', b'GET / HTTP/1.0\r\n\r\n', ['GET'], [200]),
    ('two Host fields', b'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
     ['GET'], [400]),
)


class FleetChecks:
    """Tests any running fleet must pass; the classes below start one."""

    fleet = None

    @classmethod
    def start_fleet(cls, n, mode=None):
        if HAPROXY is None:
            raise unittest.SkipTest('haproxy is not installed (Debian '
                                    'package haproxy; scripts/deps test)')
        cls.fleet = Fleet(n, mode)
        # Registered first: runs however setUpClass or the tests end.
        cls.addClassCleanup(cls.fleet.stop)
        cls.fleet.start()

    def frontend(self, tls):
        st = self.fleet.state
        return st['bind'], st['tls_port' if tls else 'port']

    def test_identical_through_haproxy_and_direct(self):
        """Every byte the same (Date masked), through HAProxy from the
        client's own address and straight from each instance (with the
        header HAProxy would send)."""
        st = self.fleet.reload()
        for tls in (False, True):
            host, port = self.frontend(tls)
            for name, raw, methods, statuses in CASES:
                with self.subTest(port='tls' if tls else 'plain', case=name):
                    via = [exchange('127.0.0.5', host, port, raw, tls)
                           for _ in st['instances']]
                    direct = []
                    for inst in st['instances']:
                        dport = inst['tls_port' if tls else 'port']
                        hdr = proxy_v2('127.0.0.5', 40000, inst['addr'],
                                       dport)
                        direct.append(exchange(st['balancer'], inst['addr'],
                                               dport, raw, tls, hdr))
                    got, rest = split_responses(via[0], methods)
                    self.assertEqual([r.status for r in got], statuses,
                                     via[0][:600])
                    self.assertEqual(rest, b'')
                    if name == 'pipelined':
                        self.assertEqual(got[0].body, read_lyrics())
                        self.assertEqual(got[-1].get('Connection'), 'close')
                        self.assertEqual(got[5].body, b'ok\n')
                    want = mask_date(via[0])
                    for i, data in enumerate(via + direct):
                        self.assertEqual(
                            mask_date(data), want, '%s %d of %d differs' %
                            ('via HAProxy' if i < len(via) else 'direct',
                             i % len(via) + 1, len(via)))

    def test_access_log_shows_the_client(self):
        """The first field of the log line is the client's address: the
        one HAProxy's PROXY v2 header gives, or a v1 or v2 header sent
        straight to an instance from the balancer's address."""
        st = self.fleet.reload()
        tag = '%d-%d' % (os.getpid(), time.monotonic_ns())
        inst = st['instances'][0]
        want = {}
        for tls, src in ((False, '127.0.0.5'), (True, '127.0.0.6')):
            path = '/fleet/%s/via-%s' % (tag, 'tls' if tls else 'plain')
            want[path] = src
            host, port = self.frontend(tls)
            data = exchange(src, host, port, b'GET ' + path.encode() +
                            b' HTTP/1.1\r\n' + HOST +
                            b'Connection: close\r\n\r\n', tls)
            self.assertTrue(data.startswith(b'HTTP/1.1 200 OK\r\n'), data)
        for tls in (False, True):
            dport = inst['tls_port' if tls else 'port']
            for v, make, src in (('v1', proxy_v1, '127.0.0.7'),
                                 ('v2', proxy_v2, '127.0.0.8')):
                path = '/fleet/%s/direct-%s-%s' % (tag, v, 'tls' if tls
                                                   else 'plain')
                want[path] = src
                data = exchange(st['balancer'], inst['addr'], dport,
                                b'GET ' + path.encode() + b' HTTP/1.1\r\n' +
                                HOST + b'Connection: close\r\n\r\n', tls,
                                make(src, 50000, inst['addr'], dport))
                self.assertTrue(data.startswith(b'HTTP/1.1 200 OK\r\n'),
                                data)

        def logged():
            found = {}
            for text in self.fleet.logs().values():
                for line in text.splitlines():
                    for path in want:
                        if ' %s ' % path in line:
                            found[path] = line
            return found if len(found) == len(want) else None
        found = wait_for(logged, 3) or logged() or {}
        for path, src in sorted(want.items()):
            with self.subTest(path=path):
                self.assertIn(path, found, 'no access log line')
                self.assertEqual(found[path].split(' ', 1)[0], src,
                                 found[path])

    def test_untrusted_source_closed(self):
        """A connection to a proxy_protocol listener from outside
        proxy_protocol_from gets no answer, whatever header it sends,
        and is logged."""
        st = self.fleet.reload()
        src = st['direct_source']
        for inst in st['instances']:
            for key in ('port', 'tls_port'):
                with self.subTest(instance=inst['name'], port=key):
                    hdr = proxy_v2('127.0.0.9', 40000, inst['addr'],
                                   inst[key])
                    data = exchange(src, inst['addr'], inst[key], hdr +
                                    b'GET / HTTP/1.1\r\n' + HOST + b'\r\n')
                    self.assertEqual(data, b'', 'answered an untrusted '
                                     'source')
            # At most a line a second per worker: one of them says so.
            self.assertTrue(wait_for(
                lambda: re.search(r'%s\b.*proxy_protocol_from' %
                                  re.escape(src),
                                  self.fleet.logs('error.log')[inst['name']]),
                3), 'no log line about %s in %s' % (src, self.fleet.logs(
                    'error.log')[inst['name']][-2000:]))

    def test_status(self):
        rc, out, err = self.fleet.run('status')
        self.assertEqual((rc, err), (0, ''), out)
        st = self.fleet.reload()
        for fe, port in (('http', st['port']), ('https', st['tls_port'])):
            self.assertRegex(out, r'(?m)^%s +%s://%s:%d/ +OPEN' %
                             (fe, fe, re.escape(st['bind']), port))
        for inst in st['instances']:
            line = re.search(r'(?m)^%s .*$' % inst['name'], out)
            self.assertIsNotNone(line, out)
            self.assertRegex(line.group(0), r'^%s +%d +%s:%d,%d +UP .* UP .*'
                             r' 200\b' % (inst['name'],
                                          self.fleet.master(inst),
                                          re.escape(inst['addr']),
                                          inst['port'], inst['tls_port']))


# ------------------------------------------------------- the load generator

class Load:
    """Client threads through HAProxy while the fleet changes: the
    Hammer of test_reload.py, with its figures kept per step.

    Per port (cleartext, TLS): NEW threads each open a connection per
    request (Connection: close), every one must succeed; KA threads
    reuse a connection while the server keeps it open and, like a real
    client (RFC 9112 9.3.1), resend a request only when a reused
    connection closed before any byte of the answer came (counted as
    resent, not failed).  Every answer must be a complete 200 with the
    980-byte page.  Bounded: at most MAX_REQUESTS in all and
    MAX_SECONDS, loopback only."""

    NEW, KA = 2, 2
    MAX_REQUESTS = 200000
    MAX_SECONDS = 75

    def __init__(self, fleet):
        st = fleet.state
        self.addr = {False: (st['bind'], st['port']),
                     True: (st['bind'], st['tls_port'])}
        self.lyrics = read_lyrics()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.steps = []                 # [(name, start time)]
        self.figures = {}               # step -> {kind: [ok, failed, resent]}
        self.errors = {}                # step -> [message]
        self.total = 0
        self.threads = []
        self.kinds = []
        for tls in (False, True):
            for kind, count in (('new', self.NEW), ('keep-alive', self.KA)):
                name = '%s %s' % ('tls' if tls else 'plain', kind)
                self.kinds.append(name)
                for _ in range(count):
                    self.threads.append(threading.Thread(
                        target=self.guard, daemon=True,
                        args=(self.new_loop if kind == 'new' else
                              self.ka_loop, name, tls)))
        self.step('warm-up')

    def step(self, name):
        with self.lock:
            self.steps.append((name, time.monotonic()))
            self.figures[name] = {k: [0, 0, 0] for k in self.kinds}
            self.errors[name] = []

    def note(self, kind, what, err=None):
        """Count an outcome (0 ok, 1 failed, 2 resent) in the current
        step."""
        with self.lock:
            name = self.steps[-1][0]
            self.figures[name][kind][what] += 1
            self.total += 1
            if err and len(self.errors[name]) < 20:
                self.errors[name].append('%s: %s' % (kind, err))
            if self.total >= self.MAX_REQUESTS:
                self.stop.set()

    def check(self, r, close):
        if r.status != 200 or r.body != self.lyrics:
            return 'bad response %r' % r
        if close and r.get('Connection') != 'close':
            return 'no Connection: close in %r' % r.head
        return None

    def guard(self, fn, kind, tls):
        try:
            fn(kind, tls)
        except Exception as e:          # a bug in the loop is a failure
            self.note(kind, 1, 'client crashed: %r' % e)

    def connect(self, tls):
        s = socket.create_connection(self.addr[tls], IO_TIMEOUT)
        try:
            s.settimeout(IO_TIMEOUT)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls:
                s = self.ctx.wrap_socket(s)
        except BaseException:
            s.close()
            raise
        return Conn(s)

    def new_loop(self, kind, tls):
        while not self.stop.is_set():
            try:
                c = self.connect(tls)
                try:
                    c.send(b'GET /load/new HTTP/1.1\r\n' + HOST +
                           b'Connection: close\r\n\r\n')
                    r = c.read_response()
                finally:
                    c.close()
            except (OSError, AssertionError) as e:
                self.note(kind, 1, repr(e))
                continue
            bad = self.check(r, close=True)
            self.note(kind, 1 if bad else 0, bad)

    def ka_loop(self, kind, tls):
        c = None
        used = False            # this connection already carried a response
        while not self.stop.is_set():
            if c is None:
                try:
                    c = self.connect(tls)
                except OSError as e:
                    self.note(kind, 1, 'connect: %r' % e)
                    continue
                used = False
            try:
                c.send(b'GET /load/keep-alive HTTP/1.1\r\n' + HOST + b'\r\n')
                r = c.read_response()
            except (OSError, AssertionError) as e:
                nothing = c.buf == b'' and not isinstance(e, socket.timeout) \
                    and 'EOF in body' not in str(e)
                c.close()
                c = None
                if used and nothing:
                    self.note(kind, 2)
                else:
                    self.note(kind, 1, '%s: %r' % ('reused' if used else
                                                   'first', e))
                continue
            bad = self.check(r, close=False)
            self.note(kind, 1 if bad else 0, bad)
            if r.get('Connection') == 'close':
                c.close()
                c = None
            else:
                used = True
        if c is not None:
            c.close()

    def start(self):
        self.ctx = tls_context()
        self.deadline = time.monotonic() + self.MAX_SECONDS
        threading.Thread(target=self.timer, daemon=True).start()
        for t in self.threads:
            t.start()

    def timer(self):
        self.stop.wait(self.MAX_SECONDS)
        self.stop.set()

    def finish(self):
        self.step('end')
        self.stop.set()
        for t in self.threads:
            t.join(IO_TIMEOUT * 2 + 2)
        return [t for t in self.threads if t.is_alive()]

    def sums(self, name):
        """(ok, failed, resent) of step NAME."""
        f = self.figures[name]
        return tuple(sum(v[i] for v in f.values()) for i in range(3))

    def table(self):
        lines = ['%-28s %7s %7s %7s %7s %6s   per kind: ok/failed/resent'
                 % ('step', 'sent', 'ok', 'failed', 'resent', 'secs')]
        t_end = time.monotonic()
        for i, (name, t0) in enumerate(self.steps):
            if name == 'end':
                continue
            t1 = self.steps[i + 1][1] if i + 1 < len(self.steps) else t_end
            ok, failed, resent = self.sums(name)
            kinds = '  '.join('%s %d/%d/%d' % ((k,) + tuple(self.figures[
                name][k])) for k in self.kinds)
            lines.append('%-28s %7d %7d %7d %7d %6.1f   %s' % (
                name, ok + failed + resent, ok, failed, resent, t1 - t0,
                kinds))
        tot = [sum(self.sums(n)[i] for n, _ in self.steps) for i in range(3)]
        lines.append('%-28s %7d %7d %7d %7d' % ('total', sum(tot), tot[0],
                                                 tot[1], tot[2]))
        return '\n'.join(lines)


# ----------------------------------------------------------------- classes

class FleetTest(FleetChecks, unittest.TestCase):
    """Three instances, in network namespaces when root may make them."""

    N = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_fleet(cls.N)

    def test_mode(self):
        """Namespaces as root, loopback ports otherwise, and then the
        script says so."""
        st = self.fleet.state
        if is_root():
            self.assertEqual(st['mode'], 'netns', self.fleet.start_err)
            self.assertEqual(len({i['addr'] for i in st['instances']}),
                             self.N)
            for inst in st['instances']:
                self.assertRegex(inst['addr'], r'^10\.200\.[0-9]+\.')
        else:
            self.assertEqual(st['mode'], 'loopback')
            self.assertIn('network namespaces unavailable (not root)',
                          self.fleet.start_err)
            self.assertIn('falling back to loopback', self.fleet.start_err)

    def kill_instance(self, inst):
        """SIGKILL the instance's whole process group: master and
        workers at once."""
        pid = self.fleet.master(inst)
        pgid = os.getpgid(pid)
        self.assertEqual(pgid, pid, 'the daemon leads its process group')
        members = group_members(pgid)
        self.assertTrue(all(proc_title(p).startswith('astleyd')
                            for p in members), members)
        self.assertGreaterEqual(len(members), 3, members)  # master + 2
        os.killpg(pgid, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: not group_members(pgid), 5),
                        'processes left after SIGKILL: %r' %
                        group_members(pgid))

    def wait_out(self, name, timeout=10):
        """Seconds until HAProxy takes NAME out on both ports."""
        t0 = time.monotonic()
        ok = wait_for(lambda: all(
            self.fleet.stat().get((b, name), ('?',))[0].startswith('DOWN')
            for b in BACKENDS), timeout, 0.05)
        self.assertTrue(ok, 'HAProxy still sends %s connections: %r' %
                        (name, self.fleet.stat()))
        return time.monotonic() - t0

    def restart(self, load, name, step):
        """scripts/fleet restart NAME: drains it first if it runs."""
        load.step(step)
        rc, out, err = self.fleet.run('restart', name)
        print(out + err, end='')
        self.assertEqual(rc, 0, out + err)
        if step.startswith('drain'):
            self.assertRegex(out, r'%s: drained .*/healthz 503 after '
                             r'[0-9.]+ s, HAProxy took it out: http after '
                             r'.* https after' % name)
        self.assertRegex(out, r'%s: started .* HAProxy sees it up' % name)

    def test_rolling_restart_under_load(self):
        names = [i['name'] for i in self.fleet.instances]
        victim = names[-1]
        load = Load(self.fleet)
        t0 = time.monotonic()
        load.start()
        try:
            time.sleep(1.0)
            load.step('steady')
            time.sleep(1.5)
            for name in names:
                self.restart(load, name, 'drain+restart %s' % name)
            load.step('SIGKILL %s until out' % victim)
            self.kill_instance(self.fleet.instances[-1])
            out_after = self.wait_out(victim)
            time.sleep(0.3)
            load.step('%s killed, taken out' % victim)
            time.sleep(2.0)
            self.restart(load, victim, 'start %s again' % victim)
            load.step('all back')
            time.sleep(1.5)
        finally:
            stuck = load.finish()
        took = time.monotonic() - t0
        table = load.table()
        print('--- rolling restart under load (%s mode, %d instances, '
              'drain_timeout 3s, %.1f s; HAProxy took the killed %s out '
              '%.1f s after the kill)\n%s' % (
                  self.fleet.state['mode'], len(names), took, victim,
                  out_after, table))
        for name, errs in load.errors.items():
            if errs:
                print('%s: %s' % (name, '\n  '.join([''] + errs)))
        self.assertEqual(stuck, [], 'client threads did not finish')
        self.assertFalse(load.total >= load.MAX_REQUESTS or
                         time.monotonic() >= load.deadline,
                         'the load stopped at its bound before the end\n' +
                         table)
        kill_step = 'SIGKILL %s until out' % victim
        for name, _ in load.steps:
            if name in ('end', kill_step):
                continue
            ok, failed, resent = load.sums(name)
            self.assertEqual(failed, 0, '%s: %r\n%s' %
                             (name, load.errors[name], table))
            # Every kind of client kept going through every step.
            for kind, (k_ok, _, _) in load.figures[name].items():
                self.assertGreaterEqual(k_ok, 3, '%s: %s idle\n%s' %
                                        (name, kind, table))
        # What the kill cost: requests that were in flight on the killed
        # instance (each client thread has one at a time), not more.
        _, failed, _ = load.sums(kill_step)
        self.assertLessEqual(failed, 2 * len(load.threads), table)
        self.assertGreater(load.sums('%s killed, taken out' % victim)[0], 0)


class LoopbackFleetTest(FleetChecks, unittest.TestCase):
    """The fallback: two instances on loopback ports, as root too."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not is_root():
            raise unittest.SkipTest('not root: FleetTest runs on loopback '
                                    'ports already')
        cls.start_fleet(2, 'loopback')

    def test_mode(self):
        st = self.fleet.state
        self.assertEqual(st['mode'], 'loopback')
        self.assertIn('FLEET_MODE=loopback', self.fleet.start_err)
        self.assertEqual({i['addr'] for i in st['instances']},
                         {'127.0.0.1'})


if __name__ == '__main__':
    unittest.main()
