"""Status and metrics: the shared scoreboard, read through the status
listener (/metrics, /status) and `astleyd -s status [-j]`."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from astleyd_test import (ServerTestCase, connect, control, free_port,
                          request, run_bin, tls_context, wait_for)

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = SAMPLE.match(line)
        if m is None:
            raise AssertionError('not a sample line: %r' % line)
        labels = tuple(sorted(LABEL.findall(m.group(2) or '')))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def get(m, name, **labels):
    return m[(name, tuple(sorted(labels.items())))]


class StatusTestCase(ServerTestCase):

    def status_server(self, extra='', **kw):
        port = free_port()
        srv = self.server(extra='status_listen 127.0.0.1:%d\n%s' %
                          (port, extra), **kw)
        srv.status_port = port
        return srv

    def fetch(self, srv, path):
        r = request(srv.status_port, 'GET %s HTTP/1.1\r\nHost: x\r\n'
                    'Connection: close\r\n\r\n' % path)
        self.assertEqual(r.status, 200, r)
        return r

    def scrape(self, srv):
        r = self.fetch(srv, '/metrics')
        self.assertEqual(r.get('Content-Type'),
                         'text/plain; version=0.0.4; charset=utf-8')
        return parse_metrics(r.body.decode()), r


class CountersTest(StatusTestCase):

    def test_every_counter_equals_what_was_sent(self):
        # One worker, so that nothing else moves the counters; a scrape
        # counts its own connection and request, and the response of
        # the scrape before it (its own is counted once written).
        srv = self.status_server('header_timeout 1s\n', workers=1)
        before, first = self.scrape(srv)
        sent = len(first.head) + len(first.body)
        conns = 0
        codes = {'200': 0, '400': 0, '405': 0, '408': 0}

        def count(resp):
            nonlocal sent
            sent += len(resp.head) + len(resp.body)
            codes[str(resp.status)] += 1

        # Keep-alive: 3 GET, 2 HEAD, 2 405s, then garbage: 400 and close.
        with connect(srv.port) as c:
            conns += 1
            for method in ('GET', 'HEAD', 'GET', 'POST', 'HEAD', 'PUT',
                           'GET'):
                c.send('%s / HTTP/1.1\r\nHost: x\r\n\r\n' % method)
                count(c.read_response(method))
            c.send('\x01garbage\r\n\r\n')
            count(c.read_response())
            c.wait_eof()
        # A head that never ends: 408 at header_timeout.
        with connect(srv.port) as c:
            conns += 1
            c.send('GET / HTTP/1.1\r\n')
            count(c.read_response())
            c.wait_eof()
        # TLS 1.3 full, then resumed with its ticket; TLS 1.2 full.
        ctx = tls_context(min_version=TLS13, max_version=TLS13)
        with connect(srv.tls_port, ctx=ctx) as c:
            conns += 1
            c.send(GET)
            count(c.read_response())
            c.send(GET)             # the ticket comes after the handshake
            count(c.read_response())
            sess = c.sock.session
        s = socket.create_connection(('127.0.0.1', srv.tls_port))
        s = ctx.wrap_socket(s, session=sess)
        conns += 1
        self.assertTrue(s.session_reused)
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        data = b''
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        sent += len(data)
        codes['200'] += 1
        ctx12 = tls_context(min_version=TLS12, max_version=TLS12)
        r = request(srv.tls_port, ctx=ctx12)
        conns += 1
        count(r)

        # Everything closed on the server's side too.
        self.assertTrue(wait_for(lambda: get(self.scrape(srv)[0],
                                             'astleyd_connections',
                                             state='waiting') == 0, 5))
        after, _ = self.scrape(srv)
        # The scrapes in between count too: find how many there were.
        scrapes = (get(after, 'astleyd_connections_accepted_total') -
                   get(before, 'astleyd_connections_accepted_total') -
                   conns)
        self.assertGreaterEqual(scrapes, 2)

        def delta(name, **labels):
            return get(after, name, **labels) - get(before, name, **labels)

        self.assertEqual(delta('astleyd_connections_handled_total'),
                         conns + scrapes)
        for code, n in codes.items():
            expect = n + (scrapes if code == '200' else 0)
            self.assertEqual(delta('astleyd_requests_total', code=code),
                             expect, code)
        responses = sum(codes.values()) + scrapes
        self.assertEqual(delta('astleyd_request_duration_seconds_count'),
                         responses)
        self.assertEqual(delta('astleyd_connection_timeouts_total',
                               kind='header'), 1)
        self.assertEqual(delta('astleyd_tls_handshakes_total', type='full',
                               version='TLSv1.3'), 1)
        self.assertEqual(delta('astleyd_tls_handshakes_total',
                               type='resumed', version='TLSv1.3'), 1)
        self.assertEqual(delta('astleyd_tls_handshakes_total', type='full',
                               version='TLSv1.2'), 1)
        self.assertEqual(delta('astleyd_tls_handshake_failures_total'), 0)
        # Bytes: what the clients read, with the scrapes in between but
        # the last (counted once it is written).
        between = sent - (len(first.head) + len(first.body))
        self.assertGreater(delta('astleyd_sent_bytes_total'), between)
        self.assertEqual(get(after, 'astleyd_connections', state='writing'),
                         1, 'the scrape itself')
        self.assertEqual(get(after, 'astleyd_connections', state='reading'),
                         0)
        # Exactly: scrape once more with nothing in between.
        again, last = self.scrape(srv)
        # (the scrape before it is counted now, with its bytes)
        self.assertEqual(get(again, 'astleyd_request_duration_seconds_count')
                         - get(after, 'astleyd_request_duration_seconds_count'),
                         1)

    def test_bytes_sent_exact(self):
        srv = self.status_server(workers=1)
        m0, r0 = self.scrape(srv)
        m1, r1 = self.scrape(srv)      # counts r0's bytes
        resp = request(srv.port)
        m2, r2 = self.scrape(srv)      # counts r1's and resp's bytes
        size = lambda r: len(r.head) + len(r.body)
        self.assertEqual(get(m2, 'astleyd_sent_bytes_total') -
                         get(m1, 'astleyd_sent_bytes_total'),
                         size(r1) + size(resp))

    def test_405_closes_counted(self):
        srv = self.status_server(workers=1)
        m0, _ = self.scrape(srv)
        with connect(srv.port) as c:
            for _ in range(4):
                c.send('DELETE / HTTP/1.1\r\nHost: x\r\n\r\n')
                r = c.read_response()
            self.assertEqual(r.get('Connection'), 'close')
            c.wait_eof()
        m1, _ = self.scrape(srv)
        self.assertEqual(get(m1, 'astleyd_connections_closed_405_total') -
                         get(m0, 'astleyd_connections_closed_405_total'), 1)

    def test_gauges_reading_writing_waiting(self):
        srv = self.status_server(workers=1)
        idle = connect(srv.port)
        self.addCleanup(idle.close)
        idle.send(GET)
        idle.read_response()
        part = connect(srv.port)
        self.addCleanup(part.close)
        part.send('GET / HTTP/1.1\r\nHost: x\r\n')
        silent = connect(srv.port)
        self.addCleanup(silent.close)
        want = ('Active connections: 4 \nserver accepts handled requests\n'
                ' {n} {n} {r} \nReading: 1 Writing: 1 Waiting: 2 \n')

        def body():
            return self.fetch(srv, '/status').body.decode()

        self.assertTrue(wait_for(lambda: re.fullmatch(
            re.escape(want).replace(r'\{n\}', '[0-9]+').replace(
                r'\{r\}', '[0-9]+'), body()), 5), body())

    def test_counters_survive_reload_and_killed_worker(self):
        srv = self.status_server(workers=2)
        for _ in range(5):
            request(srv.port)
        m0, _ = self.scrape(srv)
        self.assertEqual(control(srv, 'reload')[0], 0)
        workers = srv.wait_workers(2)
        m1, _ = self.scrape(srv)
        os.kill(workers[0], signal.SIGKILL)
        srv.wait_workers(2, exclude=[workers[0]])
        for _ in range(3):
            request(srv.port)
        m2, _ = self.scrape(srv)
        for key, v in m0.items():
            name = key[0]
            if name in ('astleyd_connections', 'astleyd_generation') or \
                    name.startswith('astleyd_worker_requests'):
                continue
            self.assertGreaterEqual(m1[key], v, key)
            self.assertGreaterEqual(m2[key], m1[key], key)
        self.assertEqual(get(m1, 'astleyd_reloads_total', result='ok') -
                         get(m0, 'astleyd_reloads_total', result='ok'), 1)
        self.assertEqual(get(m2, 'astleyd_worker_restarts_total') -
                         get(m1, 'astleyd_worker_restarts_total'), 1)
        self.assertEqual(get(m2, 'astleyd_generation'),
                         get(m0, 'astleyd_generation') + 1)
        # Exactly: the 3 GETs and the two scrapes before the last.  The
        # killed worker's and the old generation's counts stay in.
        self.assertEqual(get(m2, 'astleyd_requests_total', code='200') -
                         get(m0, 'astleyd_requests_total', code='200'), 3 + 2)
        self.assertEqual(get(m0, 'astleyd_requests_total', code='200'),
                         1 + 5, 'the start-up check and the 5 GETs')

    def test_failed_reload_counted_with_its_error(self):
        srv = self.status_server(workers=1)
        good = srv.conf_text()
        srv.write_conf(good + 'bogus_directive 1\n')
        self.assertNotEqual(control(srv, 'reload')[0], 0)
        m, _ = self.scrape(srv)
        self.assertEqual(get(m, 'astleyd_reloads_total', result='failed'), 1)
        rc, out, err = control(srv, 'status')
        self.assertEqual(rc, 0, err)
        self.assertIn('bogus_directive', out)


class FormatTest(StatusTestCase):

    def test_promtool_accepts_metrics(self):
        promtool = shutil.which('promtool')
        if promtool is None:
            self.skipTest('promtool (Debian package prometheus) missing')
        srv = self.status_server()
        request(srv.tls_port, tls=True)
        r = self.fetch(srv, '/metrics')
        p = subprocess.run([promtool, 'check', 'metrics'], input=r.body,
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        m = parse_metrics(r.body.decode())
        text = r.body.decode()
        for name in {k[0] for k in m}:
            family = re.sub(r'_(bucket|sum|count)$', '', name) \
                if 'duration' in name else name
            self.assertIn('# HELP %s ' % family, text)
            self.assertIn('# TYPE %s ' % family, text)

    def test_status_layout_is_nginx_stub_status(self):
        nginx = shutil.which('nginx') or '/usr/sbin/nginx'
        if not os.path.exists(nginx):
            self.skipTest('nginx missing')
        d = tempfile.mkdtemp(prefix='astleyd-nginx-')
        self.addCleanup(shutil.rmtree, d, True)
        port = free_port()
        with open(os.path.join(d, 'nginx.conf'), 'w') as f:
            f.write('daemon off; master_process off; pid %s/nginx.pid;\n'
                    'error_log %s/error.log;\n'
                    'events {}\nhttp { access_log off;\n'
                    'client_body_temp_path %s; proxy_temp_path %s;\n'
                    'fastcgi_temp_path %s; uwsgi_temp_path %s;\n'
                    'scgi_temp_path %s;\n'
                    'server { listen 127.0.0.1:%d;\n'
                    'location = /status { stub_status; } } }\n'
                    % ((d,) * 7 + (port,)))
        p = subprocess.Popen([nginx, '-p', d, '-c', 'nginx.conf'],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.addCleanup(p.wait)
        self.addCleanup(p.terminate)

        def nginx_status():
            try:
                return request(port, 'GET /status HTTP/1.1\r\nHost: x\r\n'
                               'Connection: close\r\n\r\n')
            except OSError:
                return None
        theirs = wait_for(nginx_status, 10)
        self.assertIsNotNone(theirs, 'nginx did not start')
        srv = self.status_server()
        ours = self.fetch(srv, '/status')
        shape = lambda b: re.sub(rb'[0-9]+', b'N', b)
        self.assertEqual(shape(ours.body), shape(theirs.body))
        self.assertEqual(ours.get('Content-Type'),
                         theirs.get('Content-Type'))


class ListenerTest(StatusTestCase):

    def test_status_allow_refuses_others(self):
        # Loopback is not in the list, so this client is "elsewhere".
        srv = self.status_server('status_allow 192.0.2.0/24\n')
        for path in ('/metrics', '/status', '/healthz', '/'):
            r = request(srv.status_port, 'GET %s HTTP/1.1\r\nHost: x\r\n'
                        '\r\n' % path)
            self.assertEqual(r.status, 403, path)
            self.assertNotIn(b'astleyd_', r.body)

    def test_default_allows_loopback_only(self):
        addr = non_loopback_address()
        if addr is None:
            self.skipTest('no non-loopback IPv4 address on this machine')
        port = free_port()
        srv = self.server(extra='status_listen 0.0.0.0:%d\n' % port)
        srv.status_port = port
        self.assertEqual(self.fetch(srv, '/metrics').status, 200)
        r = request(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n',
                    host=addr)
        self.assertEqual(r.status, 403)

    def test_bad_input_on_the_status_listener(self):
        srv = self.status_server()
        port = srv.status_port
        cases = [
            ('GET /nope HTTP/1.1\r\nHost: x\r\n\r\n', 404),
            ('POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3'
             '\r\n\r\nabc', 405),
            ('GET /metrics HTTP/1.1\r\n\r\n', 400),     # no Host
            ('GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n', 505),
            ('\x00\x01\x02\r\n\r\n', 400),
            ('GET /metrics HTTP/1.1\r\nHost: x\r\nX: ' + 'a' * 40000 +
             '\r\n\r\n', 431),
            ('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 200),
        ]
        for data, status in cases:
            with self.subTest(data=data[:40]):
                self.assertEqual(request(port, data).status, status)
        # Pipelined: two scrapes and a health check, in order.
        with connect(port) as c:
            c.send('GET /status HTTP/1.1\r\nHost: x\r\n\r\n'
                   'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'
                   'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertIn(b'Active connections', c.read_response().body)
            self.assertIn(b'# TYPE astleyd_', c.read_response().body)
            self.assertEqual(c.read_response().body, b'ok\n')
        # The main ports do not serve the scoreboard.
        self.assertLyrics(request(srv.port, 'GET /metrics HTTP/1.1\r\n'
                                  'Host: x\r\n\r\n'))
        self.assertEqual(request(srv.port).status, 200)

    def test_head_and_a_page_answered_after_a_body(self):
        srv = self.status_server(workers=1)
        r = request(srv.status_port, 'HEAD /metrics HTTP/1.1\r\nHost: x\r\n'
                    '\r\n', method='HEAD')
        self.assertEqual((r.status, r.body), (200, b''))
        self.assertGreater(int(r.get('Content-Length')), 1000)
        # A page is built when it is answered: /metrics held over its
        # body while another connection asks for /status gets /metrics.
        with connect(srv.status_port) as a, connect(srv.status_port) as b:
            a.send('GET /metrics HTTP/1.1\r\nHost: x\r\n'
                   'Content-Length: 5\r\n\r\n')
            time.sleep(0.2)
            b.send('GET /status HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertTrue(b.read_response().body.startswith(
                b'Active connections'))
            a.send('hello')
            r = a.read_response()
            self.assertEqual(r.get('Content-Type'),
                             'text/plain; version=0.0.4; charset=utf-8')
            self.assertTrue(r.body.startswith(b'# HELP astleyd_'), r.body[:80])
            self.assertEqual(len(r.body), int(r.get('Content-Length')))

    def test_status_listen_is_not_a_main_port(self):
        # A configuration with only status_listen still gets the default
        # main ports; the status port gives no lyrics.
        srv = self.status_server()
        r = request(srv.status_port)
        self.assertEqual(r.status, 404)


class ControlTest(StatusTestCase):

    def test_s_status_table_and_json(self):
        srv = self.status_server(workers=2)
        for _ in range(3):
            request(srv.port)
        workers = srv.wait_workers(2)
        rc, out, err = control(srv, 'status')
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'^astleyd \S+, master %d, up ' % srv.pid)
        self.assertRegex(out, r'(?m)^connections_accepted +[0-9]+$')
        for w in workers:
            self.assertRegex(out, r'(?m)^ *%d +[0-9]+ serving ' % w)
        rc, out, err = run_bin(['-f', srv.conf, '-s', 'status', '-j'])
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc['master']['pid'], srv.pid)
        self.assertEqual(sorted(w['pid'] for w in doc['workers']), workers)
        self.assertGreaterEqual(doc['responses']['200'], 3)
        m, _ = self.scrape(srv)
        self.assertGreaterEqual(get(m, 'astleyd_requests_total', code='200'),
                                doc['responses']['200'])
        self.assertEqual(get(m, 'astleyd_connections_accepted_total'),
                         doc['connections']['accepted'] + 1)

    def test_generations_serving_and_finishing(self):
        srv = self.status_server(workers=2, extra='shutdown_timeout 30s\n'
                                 'keepalive_timeout 30s\n')
        held = connect(srv.port)        # keeps an old worker finishing
        self.addCleanup(held.close)
        held.send(GET)
        held.read_response()
        old = srv.wait_workers(2)
        rc, out, err = control(srv, 'reload')
        self.assertEqual(rc, 0, err)
        # (wait_workers would wait for the finishing one to go.)
        self.assertTrue(wait_for(lambda: len(
            [p for p in srv.worker_pids() if p not in old]) == 2, 5))
        new = [p for p in srv.worker_pids() if p not in old]
        for _ in range(3):
            request(srv.port)

        def gens():
            rc, out, err = run_bin(['-f', srv.conf, '-s', 'status', '-j'])
            self.assertEqual(rc, 0, err)
            return json.loads(out)['generations']
        g = gens()
        self.assertEqual([x['generation'] for x in g], [1, 0], g)
        # Exactly the three requests since the reload; the old one has
        # the start-up check and the held connection's, with the one
        # worker that still holds it.
        self.assertEqual((g[0]['workers'], g[0]['requests']), (2, 3), g)
        self.assertEqual((g[1]['workers'], g[1]['requests']), (1, 2), g)
        rc, out, err = control(srv, 'status')
        self.assertRegex(out, r'(?m)^generation 1 \(serving\): 2 workers, '
                         r'3 connections, 3 requests$')
        self.assertRegex(out, r'(?m)^generation 0 \(finishing\): 1 worker, '
                         r'[0-9]+ connections, 2 requests$')
        # Its last request is answered with "close"; then it is gone, and
        # so is its line (its counts stay in the totals).
        held.send(GET)
        self.assertEqual(held.read_response().get('Connection'), 'close')
        self.assertTrue(wait_for(lambda: len(gens()) == 1, 10), gens())
        self.assertEqual(set(new), set(srv.worker_pids()))

    def test_j_only_with_status(self):
        srv = self.status_server(workers=1)
        rc, out, err = run_bin(['-f', srv.conf, '-s', 'reload', '-j'])
        self.assertNotEqual(rc, 0)
        self.assertIn('usage', err)


def non_loopback_address():
    """An IPv4 address of this machine that is not loopback, or None."""
    try:
        out = subprocess.run(['ip', '-4', '-o', 'addr', 'show'],
                             capture_output=True, text=True,
                             timeout=10).stdout
    except OSError:
        return None
    for m in re.finditer(r'inet ([0-9.]+)/', out):
        if not m.group(1).startswith('127.'):
            return m.group(1)
    return None
