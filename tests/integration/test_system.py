"""Integration with the system: the LSB init script run for real, the
systemd unit, the sd_notify protocol, the logrotate file, the man pages."""

import configparser
import grp
import os
import random
import re
import select
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import time
import unittest

import astleyd_test as T
from astleyd_test import (STOP_TIMEOUT, ServerTestCase, alive, children,
                          cmdline, is_root, proc_ids, read_lyrics, request,
                          wait_for)

INIT = os.path.join(T.ROOT, 'scripts', 'astleyd.init')
UNIT = os.path.join(T.ROOT, 'scripts', 'astleyd.service')
LOGROTATE = os.path.join(T.ROOT, 'scripts', 'logrotate.conf')
MAN8 = os.path.join(T.ROOT, 'man', 'astleyd.8')
MAN5 = os.path.join(T.ROOT, 'man', 'astleyd.conf.5')

# What the shipped files name; "make install" rewrites /usr/local.
SBIN = '/usr/local/sbin/astleyd'
ETC_CONF = '/usr/local/etc/astleyd/astleyd.conf'
RUN_PIDFILE = '/run/astleyd.pid'

SCRIPT_TIMEOUT = 60     # any init script action; a hang fails the test


def read(path):
    with open(path) as f:
        return f.read()


def child_env(sandir=None):
    """The environment for astleyd, sanitizer reports to SANDIR if given
    (a daemon's stderr is /dev/null)."""
    env = dict(os.environ)
    env.pop('NOTIFY_SOCKET', None)
    for var, name in (('ASAN_OPTIONS', 'asan'), ('UBSAN_OPTIONS', 'ubsan'),
                      ('LSAN_OPTIONS', 'lsan')):
        opts = [o for o in env.get(var, '').split(':')
                if o and not o.startswith('log_path=')]
        if var == 'UBSAN_OPTIONS' and not any(
                o.startswith('print_stacktrace') for o in opts):
            opts.append('print_stacktrace=1')
        if sandir:
            opts.append('log_path=%s' % os.path.join(sandir, name))
        env[var] = ':'.join(opts)
    return env


def monotonic_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class LaunchServer(T.Server):
    """A foreground Server (-d) started with extra environment and an
    optional command prefix (e.g. setpriv), whose launch does not wait."""

    def __init__(self, env=None, prefix=(), **kw):
        self.env_extra = dict(env or {})
        self.prefix = list(prefix)
        super().__init__(start=False, **kw)

    def launch(self):
        self.log = open(self.logpath, 'ab')
        env = child_env()
        env.update(self.env_extra)
        self.proc = subprocess.Popen(
            self.prefix + [T.BIN, '-d', '-f', self.conf], cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid

    def start(self):
        self.launch()
        self.wait_ready()


def parse_unit(path):
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    with open(path) as f:
        cp.read_file(f)
    return cp


def unit_seconds(value):
    """systemd time span ("30s", "1min", "90", "2min 30s") in seconds."""
    units = {'': 1, 's': 1, 'sec': 1, 'm': 60, 'min': 60, 'h': 3600,
             'ms': 0.001}
    total = 0.0
    for num, unit in re.findall(r'([0-9]+)\s*([a-z]*)', value):
        if unit not in units:
            raise AssertionError('unknown time unit in %r' % value)
        total += int(num) * units[unit]
    return total


# ------------------------------------------------------------- init script

class InitFixture:
    """A temp dir with a config written like astleyd_test.Server's (free
    ports, pidfile and the test certificate in the dir), a defaults file
    pointing the init script at it, and a runner for the script."""

    def __init__(self, test, workers=2, extra=None, daemon=None):
        self.test = test
        self.srv = T.Server(start=False, workers=workers, extra=extra)
        test.addCleanup(self.srv.cleanup)
        # Server.cleanup treats it as a daemon: the master is no child
        # of ours, and sanitizer reports go to files in san/.
        self.srv.daemon = True
        self.sandir = os.path.join(self.srv.dir, 'san')
        os.mkdir(self.sandir)
        os.chmod(self.sandir, 0o1777)
        os.chmod(self.srv.dir, 0o711)
        self.conf = os.path.realpath(self.srv.conf)
        self.pidfile = self.srv.pidfile
        self.sock = re.sub(r'\.pid$', '.sock', self.pidfile)
        self.defaults = os.path.join(self.srv.dir, 'defaults')
        self.daemon = daemon or T.BIN
        self.write_defaults(daemon=self.daemon)
        self.env = child_env(self.sandir)
        self.env['ASTLEYD_DEFAULTS'] = self.defaults

    def write_defaults(self, daemon):
        # No PIDFILE: the script takes it from the config (astleyd -T).
        with open(self.defaults, 'w') as f:
            f.write('# written by tests/integration/test_system.py\n'
                    'DAEMON=%s\nCONFIG=%s\nDAEMON_OPTS=\n' %
                    (shlex.quote(daemon), shlex.quote(self.conf)))

    def run(self, action, shell='bash', script=INIT):
        """Run the init script: (status, stdout + stderr)."""
        try:
            r = subprocess.run([shell, script, action], cwd=self.srv.dir,
                               env=self.env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            raise AssertionError('%s %s did not finish within %ds (did the '
                                 'daemon keep its stdio?)\n%s' %
                                 (script, action, SCRIPT_TIMEOUT,
                                  (e.stdout or b'').decode(errors='replace')))
        out = r.stdout.decode(errors='replace')
        with open(self.srv.logpath, 'a') as f:
            f.write('--- %s %s: exit %d\n%s' % (os.path.basename(script),
                                                 action, r.returncode, out))
        return r.returncode, out

    def expect(self, action, status, shell='bash', script=INIT):
        rc, out = self.run(action, shell, script)
        self.test.assertEqual(rc, status, '%s %s exited %d, want %d:\n%s' %
                              (os.path.basename(script), action, rc, status,
                               self.srv.read_log()[-6000:]))
        return out

    def master(self):
        """The pid in the pidfile, which must be a live master."""
        pid = self.srv.read_pidfile()
        self.test.assertTrue(alive(pid), 'pidfile names dead pid %d' % pid)
        # The init script starts it as DAEMON -f CONFIG.
        self.test.assertEqual(cmdline(pid), ' '.join((
            'astleyd: master process', self.daemon, '-f', self.conf)))
        self.srv.pid = pid
        return pid

    def assert_serving(self):
        r = request(self.srv.port, host=self.srv.host)
        self.test.assertEqual(r.status, 200, r)
        self.test.assertEqual(r.body, read_lyrics())
        r = request(self.srv.tls_port, host=self.srv.host, tls=True)
        self.test.assertEqual(r.status, 200, r)

    def assert_stopped(self, pid):
        self.test.assertTrue(wait_for(lambda: not alive(pid), STOP_TIMEOUT),
                             'master %d still alive after stop' % pid)
        self.test.assertFalse(os.path.exists(self.pidfile),
                              'pidfile left behind')
        self.test.assertFalse(os.path.exists(self.sock),
                              'control socket left behind')
        workers = self.srv.seen_workers
        self.test.assertTrue(
            wait_for(lambda: not any(alive(p) for p in workers), 5),
            'workers left behind: %r' % [p for p in workers if alive(p)])
        with self.test.assertRaises(ConnectionRefusedError):
            request(self.srv.port, host=self.srv.host)


@unittest.skipUnless(shutil.which('start-stop-daemon') or
                     os.path.exists('/sbin/start-stop-daemon'),
                     'start-stop-daemon (dpkg) is not installed')
class InitScriptTest(unittest.TestCase):

    def test_lifecycle(self):
        fx = InitFixture(self)
        out = fx.expect('status', 3)
        self.assertIn('not running', out)
        fx.expect('stop', 0)

        fx.expect('start', 0)
        pid = fx.master()
        fx.assert_serving()
        workers = set(fx.srv.wait_workers(2))

        out = fx.expect('start', 0)
        self.assertIn('already running', out)
        self.assertEqual(fx.master(), pid)

        out = fx.expect('status', 0)
        self.assertRegex(out, r'\b%d\b' % pid)

        out = fx.expect('reload', 0)
        self.assertRegex(out, r'reload ok: generation [0-9]+, 2 workers '
                              r'serving')
        self.assertEqual(fx.master(), pid)
        workers = set(fx.srv.wait_workers(2, exclude=workers))
        fx.assert_serving()

        out = fx.expect('force-reload', 0)
        self.assertIn('reload ok', out)
        workers = set(fx.srv.wait_workers(2, exclude=workers))

        # A broken config: the failure and its file:line reach the
        # operator; the old workers go on serving.
        good = read(fx.conf)
        fx.srv.write_conf(good + 'bogus_directive on\n')
        line = len(good.splitlines()) + 1
        out = fx.expect('reload', 1)
        self.assertIn('%s:%d: unknown directive' % (fx.conf, line), out)
        self.assertIn('old configuration keeps serving', out)
        self.assertEqual(fx.master(), pid)
        fx.assert_serving()
        self.assertEqual(set(fx.srv.worker_pids()), workers)

        # restart refuses to stop a server it could not start again.
        out = fx.expect('restart', 1)
        self.assertIn('%s:%d:' % (fx.conf, line), out)
        self.assertEqual(fx.master(), pid)
        fx.assert_serving()
        fx.srv.write_conf(good)

        fx.expect('stop', 0)
        fx.assert_stopped(pid)
        out = fx.expect('status', 3)
        self.assertIn('not running', out)
        fx.expect('stop', 0)
        out = fx.expect('reload', 7)
        self.assertIn('not running', out)

    def test_restart_and_try_restart(self):
        fx = InitFixture(self, workers=1)
        fx.expect('try-restart', 0)
        self.assertFalse(os.path.exists(fx.pidfile),
                         'try-restart started a stopped service')
        fx.expect('restart', 0)
        pid = fx.master()
        fx.assert_serving()
        fx.expect('restart', 0)
        pid2 = fx.master()
        self.assertNotEqual(pid2, pid)
        self.assertFalse(alive(pid) and cmdline(pid) ==
                         T.master_title('-f', fx.conf))
        fx.assert_serving()
        fx.expect('try-restart', 0)
        pid3 = fx.master()
        self.assertNotEqual(pid3, pid2)
        fx.assert_serving()
        fx.expect('stop', 0)
        fx.assert_stopped(pid3)

    def test_stop_falls_back_to_signals(self):
        """Without the control socket, stop signals the pidfile's pid."""
        fx = InitFixture(self, workers=1)
        fx.expect('start', 0)
        pid = fx.master()
        fx.srv.wait_workers(1)
        os.unlink(fx.sock)
        fx.expect('stop', 0)
        self.assertTrue(wait_for(lambda: not alive(pid), STOP_TIMEOUT))
        self.assertFalse(os.path.exists(fx.pidfile), 'pidfile left behind')
        fx.expect('status', 3)

    def test_failed_start_reported(self):
        fx = InitFixture(self)
        fx.srv.write_conf(fx.srv.conf_text() + 'workers_bogus 3\n')
        line = len(fx.srv.conf_text().splitlines()) + 1
        out = fx.expect('start', 1)
        self.assertIn('%s:%d: unknown directive' % (fx.conf, line), out)
        self.assertFalse(os.path.exists(fx.pidfile))
        fx.expect('status', 3)

    def test_stale_pidfile(self):
        """A pidfile naming some other live process: status says dead
        (1), stop leaves that process alone, start takes over."""
        fx = InitFixture(self, workers=1)
        other = subprocess.Popen(['sleep', '120'])
        self.addCleanup(other.wait)
        self.addCleanup(other.kill)
        with open(fx.pidfile, 'w') as f:
            f.write('%d\n' % other.pid)
        out = fx.expect('status', 1)
        self.assertIn(fx.pidfile, out)
        fx.expect('stop', 0)
        self.assertIsNone(other.poll(), 'stop killed an unrelated process')
        self.assertFalse(os.path.exists(fx.pidfile))
        with open(fx.pidfile, 'w') as f:
            f.write('%d\n' % other.pid)
        fx.expect('start', 0)
        pid = fx.master()
        self.assertNotEqual(pid, other.pid)
        fx.assert_serving()
        fx.expect('stop', 0)
        fx.assert_stopped(pid)
        self.assertIsNone(other.poll(), 'stop killed an unrelated process')

    def test_posix_sh_without_lsb_functions(self):
        """Runs under /bin/sh too, and with plain echo when
        /lib/lsb/init-functions is missing."""
        fx = InitFixture(self, workers=1)
        text = read(INIT)
        self.assertIn('/lib/lsb/init-functions', text)
        script = os.path.join(fx.srv.dir, 'astleyd.init')
        with open(script, 'w') as f:
            f.write(text.replace('/lib/lsb/init-functions',
                                 '/nonexistent/init-functions'))
        fx.expect('status', 3, shell='sh', script=script)
        out = fx.expect('start', 0, shell='sh', script=script)
        self.assertIn('Starting astleyd: astleyd.', out)
        pid = fx.master()
        fx.assert_serving()
        out = fx.expect('reload', 0, shell='sh', script=script)
        self.assertIn('reload ok', out)
        fx.expect('status', 0, shell='sh', script=script)
        out = fx.expect('stop', 0, shell='sh', script=script)
        self.assertIn('Stopping astleyd: astleyd.', out)
        fx.assert_stopped(pid)

    def test_pidfile_from_config(self):
        """The pidfile is the config's, whatever the defaults file says:
        moved in the config, status, rotate and stop follow it."""
        fx = InitFixture(self, workers=1)
        with open(fx.defaults, 'a') as f:
            f.write('PIDFILE=%s\n' % os.path.join(fx.srv.dir, 'wrong.pid'))
        os.mkdir(os.path.join(fx.srv.dir, 'elsewhere'))
        fx.pidfile = fx.srv.pidfile = os.path.join(fx.srv.dir, 'elsewhere',
                                                   'other.pid')
        fx.sock = re.sub(r'\.pid$', '.sock', fx.pidfile)
        fx.srv.write_conf(fx.srv.conf_text().replace(
            'pidfile astleyd.pid', 'pidfile elsewhere/other.pid'))
        fx.expect('status', 3)
        fx.expect('start', 0)
        pid = fx.master()
        fx.assert_serving()
        out = fx.expect('status', 0)
        self.assertRegex(out, r'\b%d\b' % pid)
        out = fx.expect('start', 0)
        self.assertIn('already running', out)
        fx.expect('rotate', 0)
        fx.expect('stop', 0)
        fx.assert_stopped(pid)
        fx.expect('status', 3)

    def test_stop_when_config_broke(self):
        """The running server's certificate gone, then its config broken:
        -T still gives the pidfile (as -s finds it), so status and stop
        work; without a config at all, status is unknown (4) and says
        why."""
        fx = InitFixture(self, workers=1)
        fx.expect('start', 0)
        pid = fx.master()
        fx.srv.wait_workers(1)
        os.rename(os.path.join(fx.srv.dir, 'cert.pem'),
                  os.path.join(fx.srv.dir, 'cert.pem.away'))
        out = fx.expect('status', 0)
        self.assertRegex(out, r'\b%d\b' % pid)
        out = fx.expect('configtest', 1)
        self.assertIn('cert.pem', out)
        self.assertIn('test failed', out)
        good = read(fx.conf)
        fx.srv.write_conf(good + 'bogus_directive on\n')
        out = fx.expect('status', 0)
        self.assertRegex(out, r'\b%d\b' % pid)
        fx.expect('stop', 0)
        fx.assert_stopped(pid)
        fx.expect('status', 3)
        os.rename(fx.conf, fx.conf + '.away')
        out = fx.expect('status', 4)
        self.assertIn('No such file', out)

    def test_configtest_and_rotate(self):
        fx = InitFixture(self, workers=1,
                         extra={'access_log': 'access.log'})
        out = fx.expect('configtest', 0)
        self.assertIn('test is successful', out)
        fx.srv.write_conf(fx.srv.conf_text() + 'bogus_directive on\n')
        line = len(fx.srv.conf_text().splitlines()) + 1
        out = fx.expect('configtest', 1)
        self.assertIn('%s:%d: unknown directive' % (fx.conf, line), out)
        fx.srv.write_conf()
        fx.expect('rotate', 7)
        fx.expect('start', 0)
        pid = fx.master()
        fx.srv.wait_workers(1)
        log = os.path.join(fx.srv.dir, 'access.log')
        request(fx.srv.port, host=fx.srv.host)
        self.assertTrue(wait_for(lambda: os.path.getsize(log) > 0, 5))
        os.rename(log, log + '.1')
        fx.expect('rotate', 0)
        self.assertTrue(os.path.exists(log), 'rotate did not reopen')
        # The old generation finishes into the old file: an old worker
        # that has not run its SIGQUIT handler yet may take a request.
        self.assertTrue(wait_for(lambda: request(
            fx.srv.port, host=fx.srv.host) and os.path.getsize(log) > 0, 5,
            0.2), 'no line in the reopened log')
        self.assertEqual(fx.master(), pid)
        fx.expect('stop', 0)
        fx.assert_stopped(pid)

    def test_upgrade_in_place(self):
        fx = InitFixture(self, workers=1)
        fx.expect('upgrade', 7)                 # not running
        fx.expect('start', 0)
        old = fx.master()
        fx.srv.wait_workers(1)
        out = fx.expect('upgrade', 0)
        self.assertRegex(out, r'upgrade: new master [0-9]+ serving, old '
                         r'master %d finishing' % old)
        self.assertTrue(wait_for(lambda: fx.srv.read_pidfile() != old, 5))
        new = fx.master()
        fx.assert_serving()
        fx.expect('status', 0)
        # A configuration that no longer loads: the old master stays.
        fx.srv.write_conf(fx.srv.conf_text() + 'bogus_directive on\n')
        out = fx.expect('upgrade', 1)
        self.assertIn('upgrade failed, the old master keeps serving', out)
        self.assertIn('bogus_directive', out)
        self.assertEqual(fx.master(), new)
        fx.srv.write_conf()
        fx.expect('stop', 0)
        fx.assert_stopped(new)

    def test_usage_and_missing_daemon(self):
        fx = InitFixture(self)
        out = fx.expect('frobnicate', 3)
        self.assertIn('Usage:', out)
        fx.write_defaults(daemon=os.path.join(fx.srv.dir, 'no-such-astleyd'))
        fx.expect('start', 5)
        fx.expect('reload', 5)
        fx.expect('status', 3)
        fx.expect('stop', 0)

    def test_lsb_header_and_lint(self):
        text = read(INIT)
        m = re.search(r'^### BEGIN INIT INFO\n(.*?)^### END INIT INFO$',
                      text, re.S | re.M)
        self.assertIsNotNone(m, 'no LSB header')
        info = dict(re.findall(r'^# ([A-Za-z-]+):\s+(.*?)\s*$', m.group(1),
                               re.M))
        self.assertEqual(info.get('Provides'), 'astleyd')
        self.assertEqual(info.get('Required-Start'),
                         '$network $remote_fs $syslog')
        self.assertEqual(info.get('Default-Start'), '2 3 4 5')
        self.assertEqual(info.get('Default-Stop'), '0 1 6')
        self.assertIn('DAEMON=%s\n' % SBIN, text)
        self.assertIn('CONFIG=%s\n' % ETC_CONF, text)
        # The pidfile comes from the config, never a default of its own.
        self.assertNotIn(RUN_PIDFILE, text)
        for sh in ('bash', 'sh'):
            r = subprocess.run([sh, '-n', INIT], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout)
        if not shutil.which('shellcheck'):
            self.skipTest('shellcheck is not installed')
        r = subprocess.run(['shellcheck', INIT], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors='replace'))


# ------------------------------------------------------------- systemd unit

class UnitFileTest(ServerTestCase):

    def setUp(self):
        self.unit = parse_unit(UNIT)
        self.svc = self.unit['Service']

    def args(self, key):
        return shlex.split(self.svc[key])

    def test_service_settings(self):
        self.assertEqual(self.svc.get('Type'), 'notify')
        # all: after -s upgrade the new master, not the main pid yet,
        # reports READY=1 and its MAINPID.
        self.assertEqual(self.svc.get('NotifyAccess'), 'all')
        self.assertEqual(self.svc.get('KillMode'), 'mixed')
        self.assertEqual(self.svc.get('Restart'), 'on-failure')
        self.assertNotIn('User', self.svc, 'the master must start as root')
        # The master may take shutdown_timeout (default 10s) and a second
        # to kill stragglers before systemd's own SIGKILL.
        self.assertGreater(unit_seconds(self.svc['TimeoutStopSec']), 11)
        self.assertEqual(self.unit['Install'].get('WantedBy'),
                         'multi-user.target')

    def test_exec_lines(self):
        start = self.args('ExecStart')
        self.assertEqual(start[0], SBIN)
        self.assertIn('-d', start)
        self.assertNotIn('-s', start)
        self.assertEqual(start[start.index('-f') + 1], ETC_CONF)
        pre = self.args('ExecStartPre')
        self.assertEqual(pre[0], SBIN)
        self.assertIn('-t', pre)
        self.assertEqual(pre[pre.index('-f') + 1], ETC_CONF)
        reload = self.args('ExecReload')
        self.assertEqual(reload[0], SBIN)
        i = reload.index('-s')
        self.assertEqual(reload[i + 1], 'reload')
        self.assertEqual(reload[reload.index('-f') + 1], ETC_CONF)
        self.assertRegex(read(UNIT), r'#.*make install')

    def test_hardening_keeps_privilege_drop(self):
        self.assertEqual(self.svc.get('NoNewPrivileges'), 'yes')
        self.assertEqual(self.svc.get('ProtectSystem'), 'full')
        self.assertEqual(self.svc.get('ProtectHome'), 'yes')
        self.assertEqual(self.svc.get('PrivateTmp'), 'yes')
        self.assertIn('LimitNOFILE', self.svc)
        caps = self.svc.get('CapabilityBoundingSet')
        if caps is not None:
            # Drop to user/group, and signal workers that no longer share
            # the master's uid at reload and stop.
            for cap in ('CAP_SETUID', 'CAP_SETGID', 'CAP_KILL'):
                self.assertIn(cap, caps.split())

    @unittest.skipUnless(is_root(), 'needs root: privilege drop')
    def test_capabilities_enough_for_drop_reload_stop(self):
        """The master, confined to the unit's capability bounding set and
        no_new_privs, drops its workers to nobody, reloads (the old
        workers, now another uid, get its signal) and stops."""
        if not shutil.which('setpriv'):
            self.skipTest('setpriv (util-linux) is not installed')
        prefix = ['setpriv']
        caps = self.svc.get('CapabilityBoundingSet')
        if caps is not None:
            prefix += ['--bounding-set', ','.join(
                ['-all'] + ['+' + c.lower()[4:] for c in caps.split()])]
        if self.svc.get('NoNewPrivileges') == 'yes':
            prefix.append('--no-new-privs')
        srv = LaunchServer(prefix=prefix + ['--'], workers=2)
        self.addCleanup(srv.cleanup)
        srv.start()
        old = srv.wait_workers(2)
        for w in old:
            ids = proc_ids(w)
            self.assertNotIn(0, ids['Uid'] + ids['Gid'], ids)
        rc, out, err = T.run_bin(['-f', srv.conf, '-s', 'reload'])
        self.assertEqual(rc, 0, out + err)
        srv.wait_workers(2, exclude=old)
        self.assertTrue(wait_for(lambda: not any(alive(p) for p in old), 5),
                        'old workers did not exit after reload')
        self.assertEqual(srv.stop(signal.SIGTERM), 0)

    def test_systemd_analyze_verify(self):
        if not shutil.which('systemd-analyze'):
            self.skipTest('systemd-analyze is not installed')
        srv = T.Server(start=False)
        self.addCleanup(srv.cleanup)
        tmp = tempfile.mkdtemp(prefix='astleyd-unit-')
        self.addCleanup(shutil.rmtree, tmp, True)
        text = read(UNIT)
        self.assertIn(SBIN, text)
        self.assertIn(ETC_CONF, text)
        path = os.path.join(tmp, 'astleyd.service')
        with open(path, 'w') as f:
            f.write(text.replace(SBIN, T.BIN).replace(ETC_CONF, srv.conf))
        # Documentation=man:... is checked with man(1): show it ours.
        for page, sec in ((MAN8, '8'), (MAN5, '5')):
            os.makedirs(os.path.join(tmp, 'man', 'man' + sec), exist_ok=True)
            shutil.copy(page, os.path.join(tmp, 'man', 'man' + sec))
        env = dict(os.environ, MANPATH=os.path.join(tmp, 'man'))
        cmd = ['systemd-analyze', 'verify']
        if not shutil.which('man'):
            cmd.append('--man=no')
        r = subprocess.run(cmd + [path], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = r.stdout.decode(errors='replace')
        # verify exits 0 even for lines it ignored: read what it says.
        ours = [l for l in out.splitlines() if 'astleyd' in l]
        self.assertEqual((r.returncode, ours), (0, []), out)

    def test_paths_agree(self):
        """Unit, init script, logrotate file and man pages name the same
        binary, config and pidfile, so one sed in make install fits all."""
        for path in (UNIT, INIT, LOGROTATE, MAN8, MAN5):
            self.assertIn(ETC_CONF, read(path), path)
        for path in (UNIT, INIT, LOGROTATE):
            self.assertIn(SBIN, read(path), path)
        self.assertIn('"%s"' % RUN_PIDFILE,
                      read(os.path.join(T.ROOT, 'common', 'conf.c')))
        self.assertIn(RUN_PIDFILE, read(MAN8))


# ---------------------------------------------------------------- sd_notify

class NotifySocket:
    """A datagram socket standing in for systemd's notify socket; it
    records the sender pid of every message (SCM_CREDENTIALS)."""

    def __init__(self, test, name):
        self.test = test
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        test.addCleanup(self.sock.close)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if name.startswith('@'):
            self.sock.bind('\0' + name[1:])
        else:
            self.sock.bind(name)
            test.addCleanup(os.unlink, name)
        self.seen = []

    def recv(self, timeout):
        """(sender pid, {key: value}) or None after TIMEOUT seconds."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        data, anc, _, _ = self.sock.recvmsg(
            4096, socket.CMSG_SPACE(struct.calcsize('iII')))
        pid = None
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and \
                    kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack('iII', cdata[:12])[0]
        text = data.decode(errors='replace')
        fields = {}
        for line in text.split('\n'):
            if line:
                k, sep, v = line.partition('=')
                self.test.assertTrue(sep, 'not KEY=value: %r' % text)
                fields[k] = v
        self.seen.append((pid, fields))
        return pid, fields

    def expect(self, key, timeout=15.0):
        """The next message; it must carry KEY."""
        m = self.recv(timeout)
        self.test.assertIsNotNone(m, 'no notification within %gs, waiting '
                                  'for %s; seen %r' % (timeout, key,
                                                       self.seen))
        self.test.assertIn(key, m[1], 'waiting for %s, got %r (seen %r)' %
                           (key, m[1], self.seen))
        return m


class NotifyTest(ServerTestCase):

    def notify_cycle(self, name):
        ns = NotifySocket(self, name)
        srv = LaunchServer(env={'NOTIFY_SOCKET': name}, workers=2)
        self.addCleanup(srv.cleanup)
        srv.launch()

        pid, f = ns.expect('READY')
        self.assertEqual(f['READY'], '1')
        self.assertEqual(f.get('MAINPID'), str(srv.pid))
        self.assertEqual(pid, srv.pid, 'READY=1 not sent by the main pid')
        # READY=1 means serving: no retry.
        self.assertLyrics(request(srv.port, host=srv.host))
        self.assertEqual(request(srv.tls_port, host=srv.host,
                                 tls=True).status, 200)
        old = set(srv.wait_workers(2))

        t0 = monotonic_usec()
        srv.signal(signal.SIGHUP)
        pid, f = ns.expect('RELOADING')
        t1 = monotonic_usec()
        self.assertEqual(pid, srv.pid)
        self.assertEqual(f['RELOADING'], '1')
        self.assertRegex(f.get('MONOTONIC_USEC', ''), r'^[0-9]+$', f)
        self.assertTrue(t0 <= int(f['MONOTONIC_USEC']) <= t1,
                        'MONOTONIC_USEC %s not within [%d, %d]' %
                        (f['MONOTONIC_USEC'], t0, t1))
        pid, f = ns.expect('READY')
        self.assertEqual(pid, srv.pid)
        self.assertEqual(f['READY'], '1')
        # The new generation accepts by the time READY=1 is sent.
        new = set(children(srv.pid)) - old
        self.assertGreaterEqual(len(new), 2, (old, new))
        # An old worker that has not yet run its SIGQUIT handler may
        # still take this one connection, and then answers "close".
        r = request(srv.port, host=srv.host)
        self.assertLyrics(r, connection='close' if r.get('Connection')
                          else None)
        workers = set(srv.wait_workers(2, exclude=old))

        # A failed reload still ends the reloading state: READY=1.
        good = read(srv.conf)
        srv.write_conf(good + 'bogus_directive on\n')
        srv.signal(signal.SIGHUP)
        ns.expect('RELOADING')
        pid, f = ns.expect('READY')
        self.assertEqual(pid, srv.pid)
        self.assertIn('bogus_directive', f.get('STATUS', ''))
        self.assertEqual(set(srv.worker_pids()), workers)
        # An error too long for one notify datagram is cut; READY=1 is
        # never dropped with it.
        srv.write_conf(good + 'x' * 600 + ' on\n')
        srv.signal(signal.SIGHUP)
        ns.expect('RELOADING')
        pid, f = ns.expect('READY')
        self.assertEqual(f['READY'], '1')
        self.assertTrue(f.get('STATUS', '').endswith('xxx...'), f)
        self.assertLess(len('READY=1\nSTATUS=' + f['STATUS']), 512)
        srv.write_conf(good)

        srv.signal(signal.SIGTERM)
        pid, f = ns.expect('STOPPING')
        self.assertEqual(pid, srv.pid)
        self.assertEqual(f['STOPPING'], '1')
        self.assertEqual(srv.wait_exit(), 0, srv.read_log())
        late = ns.recv(0.2)
        self.assertIsNone(late, 'notification after STOPPING=1')

    def test_notify_path_socket(self):
        d = tempfile.mkdtemp(prefix='astleyd-notify-')
        self.addCleanup(shutil.rmtree, d, True)
        # The master may be root or us; workers never write here.
        self.notify_cycle(os.path.join(d, 'notify'))

    def test_notify_abstract_socket(self):
        self.notify_cycle('@astleyd-test-%d-%d' %
                          (os.getpid(), random.randrange(1 << 30)))

    def test_no_listener_does_not_matter(self):
        """A NOTIFY_SOCKET nobody listens on changes nothing."""
        d = tempfile.mkdtemp(prefix='astleyd-notify-')
        self.addCleanup(shutil.rmtree, d, True)
        srv = LaunchServer(env={'NOTIFY_SOCKET': os.path.join(d, 'none')},
                           workers=1)
        self.addCleanup(srv.cleanup)
        srv.start()
        self.assertLyrics(request(srv.port, host=srv.host))
        srv.signal(signal.SIGHUP)
        srv.wait_workers(1)
        self.assertLyrics(request(srv.port, host=srv.host))
        self.assertEqual(srv.stop(), 0)


# ---------------------------------------------------------------- logrotate

@unittest.skipUnless(shutil.which('logrotate') or
                     os.path.exists('/usr/sbin/logrotate'),
                     'logrotate is not installed')
class LogrotateTest(ServerTestCase):

    def logrotate(self, *args):
        exe = shutil.which('logrotate') or '/usr/sbin/logrotate'
        r = subprocess.run([exe] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        return r.returncode, r.stdout.decode(errors='replace')

    def test_debug_parse(self):
        d = tempfile.mkdtemp(prefix='astleyd-logrotate-')
        self.addCleanup(shutil.rmtree, d, True)
        rc, out = self.logrotate('-d', '-s', os.path.join(d, 'state'),
                                 LOGROTATE)
        self.assertEqual(rc, 0, out)
        # Unknown keywords are reported but do not change the status.
        self.assertNotRegex(out, r'(?im)^error:', out)
        self.assertIn('rotating pattern: /var/log/astleyd/*.log', out)
        self.assertIn('14 rotations', out)
        text = read(LOGROTATE)
        for word in ('daily', 'compress', 'delaycompress', 'missingok',
                     'notifempty', 'create 0640 root adm', 'sharedscripts'):
            self.assertRegex(text, r'(?m)^\s*%s\s*$' % word)
        self.assertIn('%s -f %s -s reopen' % (SBIN, ETC_CONF), text)

    def test_rotation_reopens_logs(self):
        """The shipped file, pointed at a running server's logs: after a
        forced rotation new lines go to new files."""
        srv = self.server(workers=2, start=False)
        logdir = os.path.join(srv.dir, 'logs')
        os.mkdir(logdir, 0o755)
        access = os.path.join(logdir, 'access.log')
        error = os.path.join(logdir, 'error.log')
        srv.extra = {'error_log': error, 'access_log': access}
        srv.write_conf()
        srv.start()
        self.assertEqual(request(srv.port, 'GET /before-rotation HTTP/1.1\r\n'
                                 'Host: t\r\n\r\n').status, 200)
        self.assertTrue(wait_for(lambda: '/before-rotation' in read(access),
                                 3))
        old = srv.wait_workers(2)

        text = read(LOGROTATE)
        text = text.replace('/var/log/astleyd', logdir)
        text = text.replace(SBIN, T.BIN).replace(ETC_CONF, srv.conf)
        # Let postrotate's errors show.
        text = text.replace('>/dev/null 2>&1 || true', '')
        if not is_root():
            text = text.replace('create 0640 root adm', 'create 0640')
        conf = os.path.join(srv.dir, 'logrotate.conf')
        with open(conf, 'w') as f:
            f.write(text)
        os.chmod(conf, 0o644)
        rc, out = self.logrotate('-v', '-f', '-s',
                                 os.path.join(srv.dir, 'state'), conf)
        self.assertEqual(rc, 0, out)
        self.assertIn('/before-rotation', read(access + '.1'))

        srv.wait_workers(2, exclude=old)
        self.assertEqual(request(srv.port, 'GET /after-rotation HTTP/1.1\r\n'
                                 'Host: t\r\n\r\n').status, 200)
        self.assertTrue(wait_for(lambda: '/after-rotation' in read(access),
                                 3), read(access))
        self.assertNotIn('/after-rotation', read(access + '.1'))
        self.assertIn('reopened logs', read(error))
        st = os.stat(access)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        if is_root():
            self.assertEqual(st.st_uid, 0)
            self.assertEqual(grp.getgrgid(st.st_gid).gr_name, 'adm')


# ---------------------------------------------------------------- man pages

def man_items(path):
    """{name: text} of each .TP item in PATH, named by its first word."""
    items = {}
    lines = read(path).splitlines()
    for i, line in enumerate(lines):
        if line == '.TP' and i + 1 < len(lines):
            m = re.match(r'\.B[IR]? +"?(\\-\w|\w+)', lines[i + 1])
            if not m:
                continue
            body = []
            depth = 0           # inside .RS/.RE, .PP does not end it
            for l in lines[i + 2:]:
                if l in ('.TP', '.PP', '.RE') and depth == 0 or \
                        l.startswith(('.SH', '.SS')):
                    break
                depth += (l == '.RS') - (l == '.RE')
                body.append(l)
            items.setdefault(m.group(1), '\n'.join(body))
    return items


class ManPageTest(unittest.TestCase):

    def test_render_without_warnings(self):
        if not shutil.which('groff'):
            self.skipTest('groff is not installed')
        for page in (MAN8, MAN5):
            r = subprocess.run(['groff', '-man', '-Tutf8', '-ww', page],
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=60)
            self.assertEqual((r.returncode, r.stderr.decode()), (0, ''), page)
            text = re.sub('.\x08', '', r.stdout.decode(errors='replace'))
            self.assertIn('SEE ALSO', text)
        if not shutil.which('man'):
            return
        for page, title in ((MAN8, 'ASTLEYD(8)'), (MAN5, 'ASTLEYD.CONF(5)')):
            r = subprocess.run(['man', '-l', page], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, MANPAGER='cat',
                                        PAGER='cat', MANWIDTH='80'),
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(title, re.sub('.\x08', '', r.stdout.decode(
                errors='replace')))

    def test_every_directive_documented(self):
        src = read(os.path.join(T.ROOT, 'common', 'conf.c'))
        names = re.findall(r'\{ "(\w+)", set_\w+,', src)
        self.assertGreater(len(names), 15)
        items = man_items(MAN5)
        for name in names:
            self.assertIn(name, items, 'directive %s missing from %s' %
                          (name, MAN5))
            self.assertRegex(items[name], r'Default:|Required',
                             'no default given for %s' % name)
        # The shipped config shows defaults: the page must agree.
        for line in read(os.path.join(T.ROOT, 'conf',
                                      'astleyd.conf')).splitlines():
            words = line.split('#')[0].split()
            if len(words) != 2 or words[0] in ('pidfile', 'tls_certificate',
                                               'tls_certificate_key',
                                               'error_log', 'access_log'):
                continue
            self.assertIn(words[0], items)
            self.assertRegex(items[words[0]],
                             r'Default:\n\.[BI]R? %s\b' % re.escape(words[1]),
                             '%s default %s not in %s' %
                             (words[0], words[1], MAN5))

    def test_every_option_signal_and_command_documented(self):
        main = read(os.path.join(T.ROOT, 'server', 'main.c'))
        m = re.search(r'getopt\(argc, argv, "([^"]+)"\)', main)
        self.assertIsNotNone(m)
        items = man_items(MAN8)
        for opt in m.group(1).replace(':', ''):
            self.assertIn('\\-' + opt, items, 'option -%s missing' % opt)
        control = read(os.path.join(T.ROOT, 'server', 'control.c'))
        cmds = re.findall(r'\[CONTROL_\w+\] = "(\w+)"', control)
        self.assertGreaterEqual(len(cmds), 4)
        for cmd in cmds:
            self.assertIn(cmd, items, '-s %s missing' % cmd)
        master = read(os.path.join(T.ROOT, 'server', 'master.c'))
        sigs = re.search(r'sigs\[\] = \{([^}]*)\}', master).group(1)
        text = read(MAN8)
        for sig in re.findall(r'SIG\w+', sigs):
            if sig != 'SIGCHLD':
                self.assertRegex(text, r'(?m)^\.BR? .*\b%s\b' % sig, sig)
        for needle in ('NOTIFY_SOCKET', RUN_PIDFILE, '/run/astleyd.sock',
                       '.SH EXIT STATUS', '.SH FILES', '.SH EXAMPLES',
                       '.SH SEE ALSO', 'astleyd.conf (5)'):
            self.assertIn(needle, text)


if __name__ == '__main__':
    unittest.main()
