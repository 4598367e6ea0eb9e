"""Command line and configuration checking (-t, -T, -v, -V, -h, file:line
errors)."""

import os
import re
import resource
import subprocess
import unittest

from astleyd_test import (BIN, ROOT, ServerTestCase, _child_env, free_port, request,
                          run_bin)

HEADER = '''# astleyd test configuration

# (blank lines and comments count as lines)
'''
BAD_LINE = len(HEADER.splitlines()) + 1    # where assertBad puts its line


def can_raise_hard_limit():
    """Whether this process may raise its hard RLIMIT_NOFILE (root with
    CAP_SYS_RESOURCE), tried in a child."""
    def probe():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_NOFILE, (2048, 2048))
    try:
        subprocess.run(['true'], preexec_fn=probe, check=True)
    except (subprocess.SubprocessError, OSError):
        return False
    return True


class ConfigTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.s = self.server(start=False)
        self.p, self.t = free_port(), free_port()

    def body(self, *lines, listen=True):
        out = []
        if listen:
            out += ['listen 127.0.0.1:%d' % self.p,
                    'listen_tls 127.0.0.1:%d' % self.t]
        out += ['workers 1', 'pidfile astleyd.pid',
                'tls_certificate cert.pem', 'tls_certificate_key key.pem']
        return out

    def write(self, text):
        self.s.write_conf(text)
        return self.s.conf

    def check(self, *args, cwd=None):
        return run_bin(list(args), cwd=cwd)

    def good_conf(self):
        return HEADER + '\n'.join(self.body()) + '\n'

    def assertTestOk(self, conf, cwd=None):
        rc, out, err = self.check('-t', '-f', conf, cwd=cwd)
        self.assertEqual(rc, 0, out + err)
        self.assertIn('astleyd: configuration file %s test is successful' %
                      conf, err)

    def assertBad(self, badline, msg_re=None):
        """BADLINE at line BAD_LINE of an otherwise good config: -t says
        file:LINE: and 'test failed', exit 1."""
        lines = HEADER.splitlines() + [badline] + self.body()
        line = BAD_LINE
        self.assertEqual(lines[BAD_LINE - 1], badline)
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, 'accepted %r:\n%s' % (badline, out + err))
        self.assertIn('%s:%d: ' % (conf, line), err,
                      '%r should be reported at line %d' % (badline, line))
        if msg_re:
            self.assertRegex(err, msg_re)
        self.assertIn('astleyd: configuration file %s test failed' % conf,
                      err)
        self.assertNotIn('test is successful', err)
        return err

    def test_good_config(self):
        self.assertTestOk(self.write(self.good_conf()))

    def test_good_config_every_directive(self):
        text = HEADER + '\n'.join(self.body() + [
            'user nobody', 'group nogroup',
            'header_timeout 10s', 'handshake_timeout 500ms',
            'keepalive_timeout 5', 'send_timeout 1m', 'shutdown_timeout 10s',
            'keepalive_requests 1000', 'max_uri_size 8k',
            'max_header_size 16384', 'max_body_size 1m',
        ]) + '\n'
        self.assertTestOk(self.write(text))

    def test_good_config_values(self):
        for line in ('workers auto', 'workers 1', 'workers 256',
                     'listen *:%d' % free_port(),
                     'listen [::]:%d' % free_port(),
                     'listen_tls 127.0.0.1:%d' % free_port(),
                     'header_timeout 1', 'header_timeout 250ms',
                     'keepalive_timeout 1m', 'max_uri_size 1024',
                     'keepalive_requests 1', 'keepalive_requests 1000000'):
            with self.subTest(line=line):
                body = [l for l in self.body()
                        if l.split()[0] != line.split()[0] or
                        l.startswith('listen')]
                conf = self.write(HEADER + '\n'.join(body + [line]) + '\n')
                self.assertTestOk(conf)

    def test_worker_connections(self):
        for v in ('0', '1048577', 'abc', '-5'):
            with self.subTest(value=v):
                self.assertBad('worker_connections %s' % v,
                               'worker_connections')
        for v in ('1', '4096', '1048576'):
            with self.subTest(value=v):
                self.assertTestOk(self.write(self.good_conf() +
                                             'worker_connections %s\n' % v))

    def test_descriptor_limit_reported(self):
        # 1000 connections need more than 256 descriptors: a master that
        # may raise its hard limit does (nothing to say); otherwise -t
        # says what a worker will take instead.
        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        conf = self.write(self.good_conf() + 'worker_connections 1000\n')
        r = subprocess.run([BIN, '-t', '-f', conf], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, env=_child_env(),
                           preexec_fn=low_limit, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('test is successful', r.stderr)
        if can_raise_hard_limit():
            self.assertNotIn('warning', r.stderr)
        else:
            self.assertRegex(r.stderr, r'warning: worker_connections 1000 '
                             r'needs \d+ descriptors, but the limit is 256: '
                             r'each worker takes at most \d+ connections')

    def test_relative_paths_from_config_dir(self):
        # Run from / : cert.pem and key.pem are found next to the config.
        self.assertTestOk(self.write(self.good_conf()), cwd='/')

    def test_unknown_directive(self):
        err = self.assertBad('never_gonna 1')
        self.assertIn('never_gonna', err)

    def test_bad_workers(self):
        for v in ('abc', '0', '257', '-1', '1.5', '2x', '99999999999999999999'):
            with self.subTest(value=v):
                self.assertBad('workers %s' % v)

    def test_missing_value(self):
        for d in ('workers', 'listen', 'pidfile', 'tls_certificate'):
            with self.subTest(directive=d):
                self.assertBad(d)

    def test_extra_value(self):
        self.assertBad('workers 2 3')

    def test_duplicate_pidfile(self):
        lines = HEADER.splitlines() + self.body() + ['pidfile other.pid']
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('%s:%d: ' % (conf, len(lines)), err)

    def test_duplicate_workers(self):
        lines = HEADER.splitlines() + self.body() + ['workers 2']
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('%s:%d: ' % (conf, len(lines)), err)

    def test_duplicate_listen_address(self):
        lines = HEADER.splitlines() + self.body() + \
            ['listen 127.0.0.1:%d' % self.p]
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('%s:%d: ' % (conf, len(lines)), err)

    def test_same_address_for_listen_and_listen_tls(self):
        lines = HEADER.splitlines() + self.body() + \
            ['listen_tls 127.0.0.1:%d' % self.p]
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('%s:%d: ' % (conf, len(lines)), err)

    def test_relative_config_path(self):
        # -f relative to the cwd; the certificate paths inside it are
        # relative to the config file's directory, not to the cwd.
        self.write(self.good_conf())
        parent, base = os.path.split(self.s.dir)
        rel = os.path.join(base, 'astleyd.conf')
        rc, out, err = self.check('-t', '-f', rel, cwd=parent)
        self.assertEqual(rc, 0, out + err)
        self.assertIn('test is successful', err)
        # Errors name the file as given (or resolved) with the line.
        lines = HEADER.splitlines() + ['workers many'] + self.body()
        self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', rel, cwd=parent)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(err, r'(^|[\s/])%s:%d: ' % (re.escape(rel), BAD_LINE))

    def test_port_zero(self):
        for d in ('listen', 'listen_tls'):
            for a in ('*:0', '127.0.0.1:0', '[::1]:0'):
                with self.subTest(line='%s %s' % (d, a)):
                    self.assertBad('%s %s' % (d, a))

    def test_bad_address(self):
        for a in ('999.1.1.1:80', '127.0.0.1', '127.0.0.1:', ':80',
                  '127.0.0.1:65536', '127.0.0.1:http', '[::1:80', '::1:80',
                  '[::g]:80', 'example.invalid:80', '127.0.0.1:-1'):
            with self.subTest(address=a):
                self.assertBad('listen %s' % a)

    def test_bad_durations_and_sizes(self):
        for line in ('header_timeout 10x', 'header_timeout -1',
                     'keepalive_timeout abc', 'handshake_timeout 1h2',
                     'max_uri_size 8q', 'max_body_size -5',
                     'keepalive_requests 0', 'keepalive_requests 1000001'):
            with self.subTest(line=line):
                self.assertBad(line)

    def test_missing_certificate(self):
        lines = HEADER.splitlines() + [
            l.replace('cert.pem', 'nothere.pem') for l in self.body()]
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('tls_certificate', err)
        self.assertIn(os.path.join(self.s.dir, 'nothere.pem'), err)
        self.assertIn('test failed', err)

    def test_garbage_certificate(self):
        with open(os.path.join(self.s.dir, 'junk.pem'), 'w') as f:
            f.write('-----BEGIN CERTIFICATE-----\nbm9wZQ==\n'
                    '-----END CERTIFICATE-----\n')
        lines = HEADER.splitlines() + [
            l.replace('cert.pem', 'junk.pem') for l in self.body()]
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('junk.pem', err)

    def test_missing_key(self):
        lines = HEADER.splitlines() + [
            l.replace('key.pem', 'nokey.pem') for l in self.body()]
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('nokey.pem', err)

    def test_key_not_matching_cert(self):
        lines = HEADER.splitlines() + [
            l.replace('key.pem', 'other-key.pem') for l in self.body()]
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('tls_certificate_key', err)
        self.assertIn(os.path.join(self.s.dir, 'other-key.pem'), err)
        self.assertIn('test failed', err)

    def test_missing_required_certificate(self):
        lines = HEADER.splitlines() + [
            l for l in self.body() if not l.startswith('tls_certificate ')]
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('tls_certificate', err)

    def test_missing_config_file(self):
        conf = os.path.join(self.s.dir, 'nope.conf')
        rc, out, err = self.check('-t', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn(conf, err)

    def test_start_with_bad_config_exits_1(self):
        lines = HEADER.splitlines() + ['frobnicate yes'] + self.body()
        conf = self.write('\n'.join(lines) + '\n')
        rc, out, err = self.check('-d', '-f', conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('%s:%d: ' % (conf, BAD_LINE), err)
        with self.assertRaises(ConnectionRefusedError):
            request(self.p)
        self.assertFalse(os.path.exists(os.path.join(self.s.dir,
                                                     'astleyd.pid')))

    def test_t_does_not_start(self):
        conf = self.write(self.good_conf())
        self.assertTestOk(conf)
        with self.assertRaises(ConnectionRefusedError):
            request(self.p)
        self.assertFalse(os.path.exists(os.path.join(self.s.dir,
                                                     'astleyd.pid')))

    def test_version(self):
        rc, out, err = self.check('-v')
        self.assertEqual(rc, 0, out + err)
        self.assertRegex((out + err).strip(), r'^astleyd [0-9][^\s]*$')

    def dump(self, conf):
        """astleyd -T -f CONF: (status, {directive: [values]}, stdout,
        stderr); commented-out directives under '#name'."""
        rc, out, err = self.check('-T', '-f', conf)
        values = {}
        for line in out.splitlines():
            if line.startswith('# ') or not line.strip():
                continue
            name, _, value = line.partition(' ')
            values.setdefault(name, []).append(value.strip())
        return rc, values, out, err

    def test_T_prints_effective_config(self):
        """-T tests as -t does and prints every directive of the table
        with the value in force: defaults, resolved paths, units."""
        conf = self.write(HEADER + '\n'.join(self.body() + [
            'handshake_timeout 500ms', 'send_timeout 1m', 'max_uri_size 1k',
            'listen 127.0.0.1:%d proxy_protocol' % free_port(),
            'proxy_protocol_from 10.0.0.0/8']) + '\n')
        rc, v, out, err = self.dump(conf)
        self.assertEqual(rc, 0, out + err)
        self.assertIn('astleyd: configuration file %s test is successful' %
                      conf, err)
        self.assertEqual(out.splitlines()[0],
                         '# effective configuration of %s' % conf)
        with open(os.path.join(ROOT, 'common', 'conf.c')) as f:
            names = re.findall(r'\{ "(\w+)", set_\w+,', f.read())
        self.assertGreater(len(names), 20)
        for name in names:
            self.assertTrue(name in v or '#' + name in v,
                            '%s missing from -T:\n%s' % (name, out))
        d = self.s.dir
        self.assertEqual(v['pidfile'], [os.path.join(d, 'astleyd.pid')])
        self.assertEqual(v['tls_certificate'], [os.path.join(d, 'cert.pem')])
        self.assertEqual(v['workers'], ['1'])
        self.assertEqual(v['user'], ['nobody'])          # defaults
        self.assertEqual(v['header_timeout'], ['10s'])
        self.assertEqual(v['max_body_size'], ['65536'])
        self.assertEqual(v['access_log'], ['off'])
        self.assertIn('#error_log', v)
        self.assertEqual(v['handshake_timeout'], ['500ms'])
        self.assertEqual(v['send_timeout'], ['60s'])
        self.assertEqual(v['max_uri_size'], ['1024'])
        self.assertEqual(v['proxy_protocol_from'], ['10.0.0.0/8'])
        self.assertEqual(len(v['listen']), 2)
        self.assertTrue(v['listen'][1].endswith(' proxy_protocol'), v)
        # What it prints is a configuration that says the same.
        again = self.write(out)
        rc2, v2, out2, err2 = self.dump(again)
        self.assertEqual(rc2, 0, out2 + err2)
        self.assertEqual(v2, v)

    def test_T_prints_before_a_failed_check(self):
        """A certificate that has gone still lets the init script learn
        the pidfile; -T fails as -t does."""
        conf = self.write(self.good_conf())
        os.unlink(os.path.join(self.s.dir, 'cert.pem'))
        rc, v, out, err = self.dump(conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('test failed', err)
        self.assertEqual(v['pidfile'],
                         [os.path.join(self.s.dir, 'astleyd.pid')])
        # A file that does not parse has no effective configuration, but
        # the pidfile that -s takes from it is printed.
        lines = HEADER.splitlines() + ['frobnicate yes'] + self.body()
        rc, v, out, err = self.dump(self.write('\n'.join(lines) + '\n'))
        self.assertEqual(rc, 1, out + err)
        self.assertIn('%s:%d: ' % (conf, BAD_LINE), err)
        self.assertEqual(v, {'pidfile': [os.path.join(self.s.dir,
                                                      'astleyd.pid')]})
        self.assertIn('does not parse', out)
        # A missing file: nothing.
        rc, v, out, err = self.dump(os.path.join(self.s.dir, 'nothere'))
        self.assertEqual((rc, out), (1, ''), err)

    def test_V(self):
        rc, out, err = self.check('-V')
        self.assertEqual(rc, 0, out + err)
        lines = out.splitlines()
        rc, vout, _ = self.check('-v')
        self.assertEqual(lines[0], vout.strip())
        self.assertRegex(out, r'(?m)^compiler: (gcc|clang) [0-9]')
        self.assertRegex(out, r'(?m)^built with OpenSSL [0-9]')
        self.assertRegex(out, r'(?m)^running with OpenSSL [0-9]')
        # The tree's binary (make install's is checked in test_install).
        self.assertIn('configuration file: conf/astleyd.conf\n', out)
        self.assertIn('prefix: none (built in the tree)\n', out)
        rc, hout, _ = self.check('-h')
        for opt in ('-T', '-V'):
            self.assertIn('  %s ' % opt, hout)

    def test_help(self):
        rc, out, err = self.check('-h')
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out + err, r'(?i)usage:.*astleyd')
        self.assertIn('-f', out + err)

    def test_unknown_option(self):
        rc, out, err = self.check('-Z')
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out + err, r'(?i)usage')

    def test_stray_argument(self):
        rc, out, err = self.check('-t', 'extra')
        self.assertEqual(rc, 1, out + err)


if __name__ == '__main__':
    unittest.main()
