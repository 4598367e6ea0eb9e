"""Helpers for the astleyd integration tests: certificates, ports, a Server
that runs the real binary from its own temp dir, and raw HTTP/TLS clients.

Standard library only.  Environment:
  ASTLEYD_BIN         binary under test (default <root>/build/asan/astleyd)
  ASTLEYD_TEST_LEAVE  1 = keep each server's temp dir and print its path
  ASTLEYD_TEST_CERTS  dir holding cert.pem, key.pem, other-key.pem (set by
                      tests/run.py so one certificate serves the whole run)
  ASTLEYD_TEST_PORTS  "FIRST-LAST" port block for this process (set by
                      tests/run.py so concurrent modules never collide)
"""

import atexit
import calendar
import fcntl
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BIN = os.environ.get('ASTLEYD_BIN') or os.path.join(ROOT, 'build', 'asan',
                                                    'astleyd')
LEAVE = os.environ.get('ASTLEYD_TEST_LEAVE') == '1'
KEYPROC_TITLE = 'astleyd: key process'
WORKER_TITLE = 'astleyd: worker process'
LYRICS_PATH = os.path.join(ROOT, 'server', 'lyrics.txt')
LYRICS_SHA256 = ('aae46153ab1dc03765dc9c6b624126344aba0c1cc798444c4eccf915'
                 'c98a7a34')
LYRICS_LEN = 980
BODY_405 = b'Together forever and never to part Together forever we two'
LAST_MODIFIED = 'Mon, 27 Jul 1987 00:00:00 GMT'
CONTENT_TYPE = 'text/plain; charset=UTF-8'

IO_TIMEOUT = 5.0        # every socket operation; a test never hangs
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0

SANITIZER_PATTERNS = ('ERROR: AddressSanitizer', 'runtime error:',
                      'LeakSanitizer', 'SUMMARY: ', 'ERROR: UndefinedBehavior')


def is_root():
    return os.geteuid() == 0


def read_lyrics():
    with open(LYRICS_PATH, 'rb') as f:
        return f.read()


# ---------------------------------------------------------------- certificates

_certdir = None


def _openssl(*args):
    r = subprocess.run(['openssl'] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    if r.returncode != 0:
        raise RuntimeError('openssl %s failed:\n%s' %
                           (' '.join(args), r.stdout.decode(errors='replace')))


def make_certs(directory):
    """Self-signed ECDSA P-256 cert + key, and a second unrelated key."""
    cert = os.path.join(directory, 'cert.pem')
    key = os.path.join(directory, 'key.pem')
    other = os.path.join(directory, 'other-key.pem')
    _openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt',
             'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out',
             cert, '-days', '2', '-subj', '/CN=localhost', '-addext',
             'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1')
    _openssl('genpkey', '-algorithm', 'EC', '-pkeyopt',
             'ec_paramgen_curve:P-256', '-out', other)
    return directory


def certdir():
    global _certdir
    if _certdir is None:
        d = os.environ.get('ASTLEYD_TEST_CERTS')
        if d and os.path.exists(os.path.join(d, 'other-key.pem')):
            _certdir = d
        else:
            d = tempfile.mkdtemp(prefix='astleyd-certs-')
            atexit.register(shutil.rmtree, d, True)
            _certdir = make_certs(d)
    return _certdir


def cert_der():
    with open(os.path.join(certdir(), 'cert.pem')) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


# ----------------------------------------------------------------------- ports

_ports = None


def _port_iter():
    spec = os.environ.get('ASTLEYD_TEST_PORTS')
    if spec:
        first, last = (int(x) for x in spec.split('-'))
    else:
        # Below the kernel's ephemeral range, so our own client sockets
        # never occupy a port we are about to hand to the server.
        first = random.randrange(10000, 30000, 100)
        last = first + 1999
    return iter(range(first, last + 1))


def _bind_all(port, addrs, v6only, listen=False):
    """True if PORT can be bound on every (family, address) in ADDRS."""
    for fam, addr in addrs:
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
            s.bind((addr, port))
            if listen:
                s.listen(1)
        except OSError:
            return False
        finally:
            s.close()
    return True


def port_is_free(port):
    """True if nothing listens on PORT (IPv4 and, if present, IPv6)."""
    fams = [(socket.AF_INET, '127.0.0.1'), (socket.AF_INET, '0.0.0.0')]
    if has_ipv6():
        fams.append((socket.AF_INET6, '::'))
    return _bind_all(port, fams, 0)


def free_port():
    global _ports
    if _ports is None:
        _ports = _port_iter()
    for p in _ports:
        if port_is_free(p):
            return p
    raise RuntimeError('no free port left in this test process block')


_ipv6 = None


def has_ipv6():
    global _ipv6
    if _ipv6 is None:
        _ipv6 = False
        if socket.has_ipv6:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                s.bind(('::1', 0))
                _ipv6 = True
            except OSError:
                pass
            finally:
                s.close()
    return _ipv6


def connect_host(listen):
    """Address a client should use to reach listen value LISTEN."""
    addr, _, port = listen.rpartition(':')
    if addr in ('*', '[::]', '0.0.0.0'):
        return '127.0.0.1', int(port)
    return addr.strip('[]'), int(port)


# ---------------------------------------------------------------- /proc helpers

def children(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            return sorted(int(x) for x in f.read().split())
    except OSError:
        return []


def cmdline(pid):
    """The process title as ps shows it: /proc/PID/cmdline with trailing
    NULs dropped and inner ones as spaces.  Nothing is cut, so a mark
    libbsd's setproctitle leaves after a short title shows."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            raw = f.read()
    except OSError:
        return None
    return raw.rstrip(b'\0').replace(b'\0', b' ').decode(errors='replace')


def master_title(*args):
    """The master's title, as nginx's: its role, then its command line as
    it was started (ARGS after the binary)."""
    return ' '.join(('astleyd: master process', BIN) + args)


def proc_state(pid):
    """Single-letter state of PID, or None if it does not exist."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    st = proc_state(pid)
    return st is not None and st not in ('Z', 'X')


def proc_ids(pid):
    """{'Uid': [r, e, s, fs], 'Gid': [...], 'Groups': [...]} of PID."""
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in ('Uid', 'Gid', 'Groups'):
                out[k] = [int(x) for x in v.split()]
    return out


def wait_for(pred, timeout, interval=0.02):
    """Poll PRED until it returns a true value; return it, or None."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# ---------------------------------------------------------------- HTTP parsing

class Response:
    def __init__(self, head, body):
        self.head = head                  # bytes, up to and including CRLFCRLF
        self.body = body
        lines = head[:-4].split(b'\r\n')
        self.status_line = lines[0].decode('latin-1')
        parts = self.status_line.split(' ', 2)
        if len(parts) < 3 or not re.fullmatch(r'HTTP/1\.[01]', parts[0]) \
                or not re.fullmatch(r'[1-5][0-9][0-9]', parts[1]):
            raise AssertionError('bad status line %r' % self.status_line)
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2]
        self.headers = []                 # [(name, value)] in order
        for line in lines[1:]:
            m = re.fullmatch(rb'([!#$%&\'*+.^_`|~0-9A-Za-z-]+): (\S(?:.*\S)?)',
                             line)
            if not m:
                raise AssertionError('malformed header line %r in %r' %
                                     (line, head))
            self.headers.append((m.group(1).decode(), m.group(2).decode(
                'latin-1')))

    def get(self, name, default=None):
        vals = self.get_all(name)
        if len(vals) > 1:
            raise AssertionError('header %s repeated: %r' % (name, vals))
        return vals[0] if vals else default

    def get_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def names(self):
        return [k for k, _ in self.headers]

    def __repr__(self):
        return '<Response %r %d-byte body>' % (self.head, len(self.body))


def body_length(method, resp):
    if method == 'HEAD' or resp.status in (204, 304) or resp.status < 200:
        return 0
    cl = resp.get_all('Content-Length')
    if len(cl) != 1 or not re.fullmatch(r'[0-9]+', cl[0]):
        raise AssertionError('response without one valid Content-Length: %r' %
                             resp.head)
    return int(cl[0])


class Conn:
    """A client connection (plain or TLS) with a read buffer."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b''

    def send(self, data):
        if isinstance(data, str):
            data = data.encode('latin-1')
        self.sock.sendall(data)

    def _recv(self):
        d = self.sock.recv(65536)
        return d

    def read_response(self, method='GET'):
        """Read exactly one response; AssertionError on EOF or timeout."""
        try:
            return self._read_response(method)
        except socket.timeout:
            raise AssertionError('no complete response within %gs; have %r'
                                 % (self.sock.gettimeout(), self.buf[:300]))

    def _read_response(self, method):
        while b'\r\n\r\n' not in self.buf:
            if len(self.buf) > 65536:
                raise AssertionError('response head too long: %r' %
                                     self.buf[:200])
            d = self._recv()
            if not d:
                raise AssertionError('EOF before a complete response head; '
                                     'got %r' % self.buf)
            self.buf += d
        i = self.buf.index(b'\r\n\r\n') + 4
        head, self.buf = self.buf[:i], self.buf[i:]
        resp = Response(head, b'')
        n = body_length(method, resp)
        while len(self.buf) < n:
            d = self._recv()
            if not d:
                raise AssertionError('EOF in body after %d of %d bytes' %
                                     (len(self.buf), n))
            self.buf += d
        resp.body, self.buf = self.buf[:n], self.buf[n:]
        return resp

    def read_until_eof(self, timeout=IO_TIMEOUT):
        """All remaining bytes until the peer closes (a reset counts as close)."""
        self.sock.settimeout(timeout)
        data, self.buf = self.buf, b''
        try:
            while True:
                d = self._recv()
                if not d:
                    break
                data += d
        except (ConnectionResetError, ssl.SSLEOFError):
            pass
        except socket.timeout:
            raise AssertionError('connection still open after %gs; received '
                                 '%r' % (timeout, data[:300]))
        except ssl.SSLError as e:
            if 'UNEXPECTED_EOF' not in str(e):
                raise
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        return data

    def wait_eof(self, timeout=IO_TIMEOUT):
        """Return (bytes received, seconds) until EOF.  Raises on timeout."""
        t0 = time.monotonic()
        data = self.read_until_eof(timeout)
        return data, time.monotonic() - t0

    def idle(self, wait=0.3):
        """True if no byte and no EOF arrives within WAIT seconds.  Over
        TLS, records that carry no application data (session tickets) do
        not count."""
        if self.buf:
            return False
        tls = isinstance(self.sock, ssl.SSLSocket)
        deadline = time.monotonic() + wait
        while True:
            if tls and self.sock.pending():
                return False
            r, _, _ = select.select([self.sock], [], [],
                                    max(0.0, deadline - time.monotonic()))
            if not r:
                return True
            if not tls:
                return False
            self.sock.settimeout(0)
            try:
                d = self.sock.recv(65536)
            except ssl.SSLWantReadError:
                continue
            except (OSError, ssl.SSLError):
                return False
            finally:
                self.sock.settimeout(IO_TIMEOUT)
            self.buf += d
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def tls_context(min_version=None, max_version=None, alpn=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def connect(port, host='127.0.0.1', tls=False, ctx=None, timeout=IO_TIMEOUT):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls or ctx is not None:
            s = (ctx or tls_context()).wrap_socket(s)
    except BaseException:
        s.close()
        raise
    return Conn(s)


def request(port, data='GET / HTTP/1.1\r\nHost: test\r\n\r\n', host='127.0.0.1',
            tls=False, ctx=None, method=None):
    """One request on a fresh connection; return the response."""
    if method is None:
        method = data.split(' ', 1)[0] if isinstance(data, str) else \
            data.split(b' ', 1)[0].decode()
    with connect(port, host, tls, ctx) as c:
        c.send(data)
        return c.read_response(method)


_MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep',
           'Oct', 'Nov', 'Dec']
_DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']


def parse_imf_fixdate(s):
    """Seconds since the epoch for an IMF-fixdate, else AssertionError."""
    m = re.fullmatch(r'(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) '
                     r'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) '
                     r'([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT', s)
    if not m:
        raise AssertionError('not an IMF-fixdate: %r' % s)
    day, mon, year = int(m.group(2)), _MONTHS.index(m.group(3)) + 1, \
        int(m.group(4))
    hh, mm, ss = int(m.group(5)), int(m.group(6)), int(m.group(7))
    t = calendar.timegm((year, mon, day, hh, mm, ss, 0, 0, 0))
    tm = time.gmtime(t)
    if (tm.tm_mday, tm.tm_mon, tm.tm_hour, tm.tm_min, tm.tm_sec) != \
            (day, mon, hh, mm, ss):
        raise AssertionError('impossible date %r' % s)
    if _DAYS[tm.tm_wday] != m.group(1):
        raise AssertionError('wrong weekday in %r' % s)
    return t


# ---------------------------------------------------------------------- server

# The master's note of a worker that crashed (SIGILL, SIGABRT, SIGBUS,
# SIGFPE, SIGSEGV) or made a system call outside its sandbox (SIGSYS,
# old workers too): no test sends these, and ASan does not report abort().
CRASH_RE = re.compile(r'killed by signal (4|6|7|8|11)\b|'
                      r'(killed by|exited with) signal 31\b')


def sanitizer_lines(text):
    """Lines of TEXT that report a sanitizer finding or a crashed worker."""
    return [l for l in text.splitlines()
            if any(p in l for p in SANITIZER_PATTERNS) or CRASH_RE.search(l)]


def _child_env(sandir=None):
    """Environment for the binary.  Sanitizer reports go to stderr, or
    for a daemon (stderr is /dev/null) to files in SANDIR."""
    env = dict(os.environ)
    # Whatever journal the test runner logs to, the binary's stderr is
    # not it (tests that want it set it).
    env.pop('JOURNAL_STREAM', None)
    # Sanitizer reports must reach the log we check, not some other file.
    for var in ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS'):
        opts = [o for o in env.get(var, '').split(':')
                if o and not o.startswith('log_path=')]
        env[var] = ':'.join(opts)
    if 'print_stacktrace' not in env['UBSAN_OPTIONS']:
        env['UBSAN_OPTIONS'] = ':'.join(
            x for x in (env['UBSAN_OPTIONS'], 'print_stacktrace=1') if x)
    if sandir:
        for var, name in (('ASAN_OPTIONS', 'asan'), ('UBSAN_OPTIONS', 'ubsan'),
                          ('LSAN_OPTIONS', 'lsan')):
            env[var] = ':'.join(x for x in (env[var], 'log_path=%s' %
                                            os.path.join(sandir, name)) if x)
    return env


def run_bin(args, cwd=None, timeout=20):
    """Run the binary to completion: (exit status, stdout, stderr) as str."""
    r = subprocess.run([BIN] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=_child_env())
    return (r.returncode, r.stdout.decode(errors='replace'),
            r.stderr.decode(errors='replace'))


class Server:
    """One astleyd instance in its own temp dir.

    Server(test, workers=2, extra={'header_timeout': '1s'}) writes
    DIR/astleyd.conf (relative certificate paths, pidfile in DIR), starts
    $ASTLEYD_BIN -d -f DIR/astleyd.conf with output in DIR/astleyd.log and
    waits until a GET is answered.  test.addCleanup (or addClassCleanup for
    a class-wide server) stops it and fails on sanitizer output.
    """

    def __init__(self, workers=2, extra=None, listen=None, listen_tls=None,
                 start=True, daemon=False, env=None):
        self.dir = tempfile.mkdtemp(prefix='astleyd-test-')
        # 0700: the master (root or the test user) reads the certificate;
        # workers need nothing from this directory.
        os.chmod(self.dir, 0o700)
        for name in ('cert.pem', 'key.pem', 'other-key.pem'):
            shutil.copy(os.path.join(certdir(), name),
                        os.path.join(self.dir, name))
        self.conf = os.path.join(self.dir, 'astleyd.conf')
        self.pidfile = os.path.join(self.dir, 'astleyd.pid')
        self.logpath = os.path.join(self.dir, 'astleyd.log')
        self.workers = workers
        self.extra = extra
        self.listen = listen if listen is not None else \
            ['*:%d' % free_port()]
        self.listen_tls = listen_tls if listen_tls is not None else \
            ['*:%d' % free_port()]
        self.proc = None
        self.pid = None
        self.bin = BIN
        self.wrap = []          # a launcher that execs the binary
        self.daemon = daemon
        self.env = dict(env or {})     # added to the binary's environment
        self.log = None
        self.cleaned = False
        self.seen_workers = set()
        self.log_checked = 0
        self.write_conf()
        if start:
            self.start()

    # --- configuration

    @property
    def port(self):
        return connect_host(self.listen[0])[1]

    @property
    def tls_port(self):
        return connect_host(self.listen_tls[0])[1]

    @property
    def host(self):
        return connect_host(self.listen[0])[0]

    def conf_text(self):
        lines = ['# written by tests/integration/astleyd_test.py']
        for l in self.listen:
            lines.append('listen %s' % l)
        for l in self.listen_tls:
            lines.append('listen_tls %s' % l)
        if self.workers is not None:
            lines.append('workers %s' % self.workers)
        lines += ['pidfile astleyd.pid',
                  'tls_certificate cert.pem',
                  'tls_certificate_key key.pem']
        if isinstance(self.extra, dict):
            lines += ['%s %s' % kv for kv in self.extra.items()]
        elif self.extra:
            lines.append(self.extra.rstrip('\n'))
        return '\n'.join(lines) + '\n'

    def write_conf(self, text=None):
        tmp = self.conf + '.tmp'
        with open(tmp, 'w') as f:
            f.write(text if text is not None else self.conf_text())
        os.rename(tmp, self.conf)

    # --- lifecycle

    def start(self, wait=True, fds=(), fdnames=None, listen_pid=None):
        """FDS: listening sockets to hand over the systemd way, as
        descriptors 3, 4, ... with LISTEN_FDS, LISTEN_FDNAMES (if given)
        and LISTEN_PID (the new process, or LISTEN_PID if given)."""
        self.log = open(self.logpath, 'ab')
        args = self.wrap + ([self.bin, '-f', self.conf] if self.daemon
                            else [self.bin, '-d', '-f', self.conf])
        listen_env = {}
        preexec = None
        if fds:
            # sh's $$ is the pid astleyd keeps through exec.
            args = ['/bin/sh', '-c', 'LISTEN_PID=%s; export LISTEN_PID; '
                    'exec "$@"' % (listen_pid or '$$'), 'sh'] + args
            listen_env['LISTEN_FDS'] = str(len(fds))
            if fdnames is not None:
                listen_env['LISTEN_FDNAMES'] = fdnames
            src = [f if isinstance(f, int) else f.fileno() for f in fds]

            def preexec():
                high = [fcntl.fcntl(f, fcntl.F_DUPFD, 100) for f in src]
                for i, f in enumerate(high):
                    os.dup2(f, 3 + i)
                    os.close(f)
        sandir = None
        if self.daemon:
            # A daemon's stderr is /dev/null: sanitizer reports go to
            # files in san/, which workers (maybe nobody) must reach.
            sandir = os.path.join(self.dir, 'san')
            os.mkdir(sandir)
            os.chmod(sandir, 0o1777)
            os.chmod(self.dir, 0o711)
        env = _child_env(sandir)
        env.update(self.env)
        env.update(listen_env)
        self.proc = subprocess.Popen(args, cwd=self.dir,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, preexec_fn=preexec,
                                     pass_fds=tuple(range(3, 3 + len(fds))))
        if self.daemon:
            try:
                rc = self.proc.wait(START_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise AssertionError('daemon launcher did not exit within '
                                     '%gs\n%s' % (START_TIMEOUT,
                                                  self.read_log()))
            if rc != 0:
                raise AssertionError('daemon launcher exited %d\n%s' %
                                     (rc, self.read_log()))
            self.pid = self.read_pidfile()
            # The launcher returns only once the sockets are bound.
            try:
                socket.create_connection((self.host, self.port), 2).close()
                self.bound_at_launch = True
            except OSError:
                self.bound_at_launch = False
        else:
            self.pid = self.proc.pid
        if wait:
            self.wait_ready()

    def master_title(self):
        """What cmdline() of this server's master must be."""
        return master_title('-f', self.conf) if self.daemon else \
            master_title('-d', '-f', self.conf)

    def read_pidfile(self):
        with open(self.pidfile) as f:
            txt = f.read()
        # With its newline, as pidfile readers expect.
        if not re.fullmatch(r'[0-9]+\n', txt):
            raise AssertionError('pidfile content %r' % txt)
        return int(txt)

    def exited(self):
        if self.daemon:
            return not alive(self.pid)
        return self.proc.poll() is not None

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.exited():
                raise AssertionError('astleyd exited during startup '
                                     '(status %r)\n%s' %
                                     (self.proc.returncode, self.read_log()))
            try:
                r = request(self.port, host=self.host)
                if r.status == 200:
                    return
                last = r.status_line
            except (OSError, AssertionError) as e:
                last = e
            time.sleep(0.02)
        raise AssertionError('astleyd not serving %s within %gs (last: %r)\n%s'
                             % (self.listen[0], timeout, last, self.read_log()))

    def worker_pids(self):
        """The master's live children but its key process
        (tls_key_process).  A child that exited and is not reaped yet
        (an empty title) is not a worker."""
        c = children(self.pid)
        self.seen_workers.update(c)
        return [p for p in c if cmdline(p) not in (KEYPROC_TITLE, '', None)]

    def keyproc_pids(self):
        c = children(self.pid)
        self.seen_workers.update(c)
        return [p for p in c if cmdline(p) == KEYPROC_TITLE]

    def wait_workers(self, n=None, exclude=(), timeout=5.0):
        """Poll until there are N workers none of which is in EXCLUDE."""
        n = self.workers if n is None else n
        ex = set(exclude)

        def ok():
            w = self.worker_pids()
            if len(w) == n and not ex.intersection(w) and \
                    all(cmdline(p) == WORKER_TITLE for p in w):
                return w
            return None
        w = wait_for(ok, timeout)
        if w is None:
            raise AssertionError('expected %d workers not in %r, have %r\n%s'
                                 % (n, sorted(ex), [(p, cmdline(p)) for p in
                                                    self.worker_pids()],
                                    self.read_log()))
        return w

    def signal(self, sig):
        os.kill(self.pid, sig)

    def adopt(self, pid):
        """After a binary upgrade: PID, not our child, is the master."""
        self.old_proc = self.proc
        self.pid = pid
        self.daemon = True

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Exit status of the master (None if unknown: daemon not our child)."""
        if not self.daemon:
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                raise AssertionError('astleyd did not exit within %gs\n%s' %
                                     (timeout, self.read_log()))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid, st = os.waitpid(self.pid, os.WNOHANG)
                if pid == self.pid:
                    return os.waitstatus_to_exitcode(st)
            except ChildProcessError:
                if not alive(self.pid):
                    return None
            time.sleep(0.02)
        raise AssertionError('daemon %d did not exit within %gs' %
                             (self.pid, timeout))

    def stop(self, sig=None):
        """Stop with SIG (default SIGTERM) and require exit status 0."""
        sig = signal.SIGTERM if sig is None else sig
        self.signal(sig)
        rc = self.wait_exit()
        if rc is not None and rc != 0:
            raise AssertionError('astleyd exited with %r after %s\n%s' %
                                 (rc, signal.Signals(sig).name,
                                  self.read_log()))
        return rc

    def read_log(self):
        """The log, followed by any sanitizer report files."""
        out = ''
        paths = [self.logpath]
        sandir = os.path.join(self.dir, 'san')
        if os.path.isdir(sandir):
            paths += sorted(os.path.join(sandir, f)
                            for f in os.listdir(sandir))
        for p in paths:
            try:
                with open(p, 'rb') as f:
                    out += f.read().decode(errors='replace')
            except OSError:
                pass
        return out

    def check_log_increment(self):
        """check_log on what was logged since the last call: lets a
        class-wide server blame the test during which a report appeared."""
        text = self.read_log()
        new, self.log_checked = text[self.log_checked:], len(text)
        bad = sanitizer_lines(new)
        if bad:
            raise AssertionError('sanitizer output in %s:\n%s' %
                                 (self.logpath, '\n'.join(bad)))

    def check_log(self):
        bad = sanitizer_lines(self.read_log())
        if bad:
            raise AssertionError('sanitizer output in %s:\n%s\n--- log:\n%s' %
                                 (self.logpath, '\n'.join(bad),
                                  self.read_log()[-8000:]))

    def cleanup(self):
        """Kill whatever is left, then fail on sanitizer output."""
        if self.cleaned:
            return
        self.cleaned = True
        try:
            if self.pid and not self.exited():
                try:
                    self.signal(signal.SIGTERM)
                    self.wait_exit(STOP_TIMEOUT)
                except (AssertionError, ProcessLookupError):
                    pass
            if self.pid:
                self.worker_pids()
            for p in self._leftovers():
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            wait_for(lambda: not self._leftovers(), 3)
            self.check_log()
        finally:
            if self.log:
                self.log.close()
            if LEAVE:
                sys.stderr.write('ASTLEYD_TEST_LEAVE: kept %s\n' % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def _leftovers(self):
        """Our processes still alive (pid reuse guarded by the title)."""
        pids = set(self.seen_workers)
        if self.pid:
            pids.add(self.pid)
        return [p for p in pids if alive(p) and
                (cmdline(p) or '').startswith('astleyd')]

    def __repr__(self):
        return '<Server pid=%s %s>' % (self.pid, self.dir)


class ServerTestCase(unittest.TestCase):
    """Base class with helpers.  Subclasses either start a server per test
    with self.server(...) or set SERVER = dict(...) for one per class."""

    SERVER = None            # kwargs for one class-wide server

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = None
        if cls.SERVER is not None:
            srv = Server(start=False, **cls.SERVER)
            cls.addClassCleanup(srv.cleanup)
            srv.start()
            cls.srv = srv

    def setUp(self):
        super().setUp()
        if self.srv is not None:
            self.addCleanup(self.srv.check_log_increment)

    def server(self, **kw):
        start = kw.pop('start', True)
        srv = Server(start=False, **kw)
        self.addCleanup(srv.cleanup)
        if start:
            srv.start()
        return srv

    # --- assertions shared by several modules

    def assertDate(self, value, slack=5):
        t = parse_imf_fixdate(value)
        self.assertLessEqual(abs(t - time.time()), slack,
                             'Date %r is not now' % value)

    def assertLyrics(self, resp, version='HTTP/1.1', connection=None,
                     head=False):
        """RESP is exactly the GET (or HEAD) 200 response of the contract."""
        self.assertEqual(resp.status_line, '%s 200 OK' % version, resp)
        allowed = {'Server', 'Date', 'Last-Modified', 'Content-Type',
                   'Content-Length', 'Connection', 'ETag'}
        self.assertEqual([n for n in resp.names() if n not in allowed], [],
                         'unexpected headers in %r' % resp.head)
        self.assertEqual(len(resp.names()), len(set(resp.names())),
                         'repeated header in %r' % resp.head)
        self.assertEqual(resp.get('Server'), 'astleyd')
        self.assertDate(resp.get('Date'))
        self.assertEqual(resp.get('Last-Modified'), LAST_MODIFIED)
        self.assertEqual(resp.get('Content-Type'), CONTENT_TYPE)
        self.assertEqual(resp.get('Content-Length'), str(LYRICS_LEN))
        self.assertEqual(resp.get('Connection'), connection, resp.head)
        etag = resp.get('ETag')
        if etag is not None:
            self.assertRegex(etag, r'^(W/)?"[\x21\x23-\x7e]*"$')
        if head:
            self.assertEqual(resp.body, b'')
        else:
            self.assertEqual(resp.body, read_lyrics())

    def assertError(self, resp, status, reason, close=True):
        """A short text error page: exact status, exact Content-Length."""
        self.assertEqual(resp.status_line, 'HTTP/1.1 %d %s' % (status, reason),
                         resp)
        allowed = {'Server', 'Date', 'Content-Type', 'Content-Length',
                   'Connection'}
        self.assertEqual([n for n in resp.names() if n not in allowed], [],
                         'unexpected headers in %r' % resp.head)
        if close:
            self.assertEqual(resp.get('Connection'), 'close', resp.head)
        self.assertEqual(resp.get('Content-Length'), str(len(resp.body)))
        self.assertTrue(0 < len(resp.body) < 512, resp.body)
        self.assertTrue(resp.get('Content-Type', '').startswith('text/'),
                        resp.head)
        if resp.get('Date') is not None:
            self.assertDate(resp.get('Date'))
        if resp.get('Server') is not None:
            self.assertEqual(resp.get('Server'), 'astleyd')

    def hold_connections(self, srv, partial_tls=True, timeout=IO_TIMEOUT):
        """Two connections that occupy workers: IDLE, a keep-alive
        connection after one answered request, and PARTIAL, with half a
        request head sent (over TLS unless PARTIAL_TLS is false)."""
        idle = connect(srv.port, timeout=timeout)
        self.addCleanup(idle.close)
        idle.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertLyrics(idle.read_response())
        partial = connect(srv.tls_port if partial_tls else srv.port,
                          tls=partial_tls, timeout=timeout)
        self.addCleanup(partial.close)
        partial.send('GET / HTTP/1.1\r\nHost: x\r\n')
        time.sleep(0.1)         # let the worker read it
        return idle, partial

    def assertClosed(self, conn, timeout=IO_TIMEOUT):
        """Nothing more arrives, then EOF."""
        rest = conn.read_until_eof(timeout)
        self.assertEqual(rest, b'', 'bytes after the response')

    def assertOpen(self, conn, wait=0.3):
        self.assertTrue(conn.idle(wait),
                        'connection got data or EOF while it should idle')


# ------------------------------------------- operations helpers (-s, sockets)

def control(srv, command, timeout=30):
    """`astleyd -f CONF -s COMMAND` for Server SRV: (status, out, err)."""
    return run_bin(['-f', srv.conf, '-s', command], timeout=timeout)


def port_bindable(port):
    """True if a new listener could bind PORT on every address (what a
    restart needs)."""
    fams = [(socket.AF_INET, '0.0.0.0')]
    if has_ipv6():
        fams.append((socket.AF_INET6, '::'))
    return _bind_all(port, fams, 1, listen=True)


def occupy_port(port, host='0.0.0.0'):
    """A listening socket of ours on HOST:PORT, so nobody else can bind
    it (the caller closes it)."""
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((host, port))
        s.listen(16)
    except BaseException:
        s.close()
        raise
    return s


def socket_inodes(pid):
    """Inodes of the sockets PID holds ({fd: inode})."""
    out = {}
    try:
        fds = os.listdir('/proc/%d/fd' % pid)
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        m = re.fullmatch(r'socket:\[([0-9]+)\]', link)
        if m:
            out[int(fd)] = int(m.group(1))
    return out


def _proc_tcp():
    """The fields of every line of /proc/net/tcp{,6} (local address,
    remote address, state, tx:rx queues... inode at 9)."""
    for name in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            w = line.split()
            if len(w) >= 10:
                yield w


def _port(addr):
    return int(addr.rsplit(':', 1)[1], 16)


def tcp_table():
    """[(local port, remote port, state, inode)] from /proc/net/tcp{,6}
    (state 0x0A is LISTEN, 0x01 ESTABLISHED)."""
    return [(_port(w[1]), _port(w[2]), int(w[3], 16), int(w[9]))
            for w in _proc_tcp()]


def listening_sockets(pid):
    """{port: set of inodes} of the listening TCP sockets PID holds."""
    mine = set(socket_inodes(pid).values())
    out = {}
    for lport, _, state, inode in tcp_table():
        if state == 0x0A and inode in mine:
            out.setdefault(lport, set()).add(inode)
    return out


def socket_owner(pids, conn, server_port):
    """Which of PIDS holds the server end of client connection CONN (a
    Conn or socket) to SERVER_PORT, or None."""
    sock = conn.sock if isinstance(conn, Conn) else conn
    cport = sock.getsockname()[1]
    inodes = {inode for lport, rport, _, inode in tcp_table()
              if lport == server_port and rport == cport and inode}
    for pid in pids:
        if inodes & set(socket_inodes(pid).values()):
            return pid
    return None


# ------------------------------------ many clients at once (test_workers.py)

def raise_nofile(n):
    """Make sure this process may open N descriptors: raise the soft
    RLIMIT_NOFILE (as root the hard one too, if need be).  Servers started
    afterwards inherit it.  The previous (soft, hard) limits, or None when
    N is beyond the hard limit of an unprivileged process."""
    import resource
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = old
    if hard != resource.RLIM_INFINITY and hard < n:
        if not is_root():
            return None
        hard = n
    if soft == resource.RLIM_INFINITY or soft >= n:
        return old
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
    return old


def tls_client_hello(ctx=None):
    """The bytes of a real client's first TLS flight (its ClientHello),
    made without a socket, for a raw socket to send and then fall silent."""
    outgoing = ssl.MemoryBIO()
    obj = (ctx or tls_context()).wrap_bio(ssl.MemoryBIO(), outgoing)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tcp_sockets(port=None):
    """{(local port, remote port): (state, rx_queue, inode)} from
    /proc/net/tcp{,6}, only connections from or to PORT if given: the
    server end of a client connection is (server port, client port).
    State 0x01 is ESTABLISHED; rx_queue counts bytes not read yet; inode
    is 0 while a connection waits in the listen queue."""
    out = {}
    for w in _proc_tcp():
        key = (_port(w[1]), _port(w[2]))
        if port is not None and port not in key:
            continue
        state = int(w[3], 16)
        if key in out and state == 0x06:
            continue        # TIME_WAIT of an earlier connection
        out[key] = (state, int(w[4].split(':')[1], 16), int(w[9]))
    return out
