"""Self-tests of astleyd_test.py: the checks the other modules rely on must
be able to fail."""

import os
import subprocess
import unittest

from astleyd_test import (BIN, Response, Server, _child_env,
                          parse_imf_fixdate, sanitizer_lines)


class HarnessTest(unittest.TestCase):

    def test_sanitizer_check_detects_reports(self):
        for line in ('==12==ERROR: AddressSanitizer: heap-use-after-free on '
                     'address 0x602000000010',
                     'server/http.c:10:5: runtime error: signed integer '
                     'overflow',
                     '==7==ERROR: LeakSanitizer: detected memory leaks',
                     'SUMMARY: AddressSanitizer: 24 byte(s) leaked'):
            with self.subTest(line=line):
                self.assertEqual(sanitizer_lines('ok\n%s\nok\n' % line),
                                 [line])
        self.assertEqual(sanitizer_lines('astleyd[1]: worker 5 exited\n'), [])
        crash = 'astleyd[1]: worker 77 killed by signal 6 (core dumped)'
        self.assertEqual(sanitizer_lines(crash + '\n'), [crash])
        self.assertEqual(sanitizer_lines(
            'astleyd[1]: worker 77 killed by signal 9\n'), [])

    def test_server_cleanup_fails_on_sanitizer_output(self):
        srv = Server(start=False)
        try:
            with open(srv.logpath, 'w') as f:
                f.write('==1==ERROR: AddressSanitizer: SEGV on unknown '
                        'address\n')
            with self.assertRaisesRegex(AssertionError, 'sanitizer output'):
                srv.cleanup()
        finally:
            srv.cleaned = True

    def test_incremental_check_blames_the_current_test(self):
        srv = Server(start=False)
        self.addCleanup(srv.cleanup)
        with open(srv.logpath, 'w') as f:
            f.write('astleyd[1]: started\n')
        srv.check_log_increment()
        with open(srv.logpath, 'a') as f:
            f.write('x.c:3:9: runtime error: load of misaligned address\n')
        with self.assertRaisesRegex(AssertionError, 'misaligned'):
            srv.check_log_increment()
        srv.check_log_increment()          # already reported
        with open(srv.logpath, 'w') as f:  # keep cleanup() quiet
            f.write('')

    def test_binary_is_sanitized(self):
        if not os.path.basename(os.path.dirname(BIN)) == 'asan':
            self.skipTest('ASTLEYD_BIN is not the asan build: %s' % BIN)
        env = _child_env()
        env['ASAN_OPTIONS'] = 'help=1'
        r = subprocess.run([BIN, '-v'], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=20)
        self.assertIn(b'AddressSanitizer', r.stdout,
                      '%s is not built with -fsanitize=address' % BIN)

    def test_sanitizer_environment_reaches_log(self):
        env = _child_env()
        self.assertNotIn('log_path', env.get('ASAN_OPTIONS', ''))
        self.assertNotIn('log_path', env.get('UBSAN_OPTIONS', ''))

    def test_response_parser_rejects_bad_heads(self):
        for head in (b'HTTP/1.1 200 OK\r\nBad Header\r\n\r\n',
                     b'HTTP/1.1 200 OK\r\nX:  two-spaces\r\n\r\n',
                     b'HTTP/1.1 2000 OK\r\n\r\n',
                     b'HTTP/1.1 200 OK\r\nX: trailing \r\n\r\n'):
            with self.subTest(head=head):
                with self.assertRaises(AssertionError):
                    Response(head, b'')
        r = Response(b'HTTP/1.1 200 OK\r\nA: b c\r\n\r\n', b'')
        self.assertEqual(r.headers, [('A', 'b c')])

    def test_imf_fixdate(self):
        self.assertEqual(parse_imf_fixdate('Mon, 27 Jul 1987 00:00:00 GMT'),
                         554342400)
        for bad in ('Tue, 27 Jul 1987 00:00:00 GMT',      # wrong weekday
                    'Mon, 27 Jul 1987 00:00:00 UTC',
                    'Monday, 27-Jul-87 00:00:00 GMT',
                    'Mon Jul 27 00:00:00 1987',
                    'Mon, 7 Jul 1987 00:00:00 GMT',
                    'Fri, 31 Feb 1987 00:00:00 GMT'):
            with self.subTest(date=bad):
                with self.assertRaises(AssertionError):
                    parse_imf_fixdate(bad)


if __name__ == '__main__':
    unittest.main()
