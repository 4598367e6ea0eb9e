#!/usr/bin/python3
"""astleyd test driver: C unit tests (TAP) and integration modules.

usage: tests/run.py [-j N] [SELECTOR...]

  SELECTOR  a name run as both unit test and integration module where
            both exist (test_http), only the unit test (unit/test_http,
            build/asan/tests/test_http), only the module (test_http.py,
            tests/integration/test_http.py), or one class or test of a
            module (test_http.HttpTest.test_get_exact).  Default: all.
            "fuzz" runs only the parser fuzzer.
  -j N      run N jobs at once (default 3).

Runs every executable build/asan/tests/test_* and every
tests/integration/test_*.py (each module in its own process), prints
PASS/FAIL/SKIP per test and ends with "N passed, N failed, N skipped".
Exit status 1 if anything failed or nothing ran.  Standard library only.
The whole run also replays the fuzz corpus and fuzzes the parser for
FUZZ_SECONDS (default 60) when build/fuzz/fuzz_http_parse exists.
Environment: ASTLEYD_BIN (binary under test), ASTLEYD_TEST_LEAVE=1 (keep
each server's temp dir), ASTLEYD_TEST_MODULE_TIMEOUT (seconds, 300),
FUZZ_SECONDS.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT_DIR = os.path.join(ROOT, 'build', 'asan', 'tests')
INTEG_DIR = os.path.join(ROOT, 'tests', 'integration')
UNIT_TIMEOUT = 60
FUZZER = os.path.join(ROOT, 'build', 'fuzz', 'fuzz_http_parse')
FUZZ_CORPUS = os.path.join(ROOT, 'tests', 'fuzz', 'corpus')
MODULE_TIMEOUT = float(os.environ.get('ASTLEYD_TEST_MODULE_TIMEOUT', '300'))
PORTS_PER_MODULE = 400
# Slowest first, so the pool finishes together.
WEIGHT = {'test_process': 0, 'test_timeouts': 1, 'test_tls': 2,
          'test_config': 3}
SANITIZER_PATTERNS = ('ERROR: AddressSanitizer', 'runtime error:',
                      'LeakSanitizer', 'SUMMARY: ', 'ERROR: UndefinedBehavior')


# ------------------------------------------------------------ child: one module

class JsonResult(unittest.TestResult):
    """Streams one JSON line per outcome to a file."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def _emit(self, status, test, detail=''):
        name = test.id() if hasattr(test, 'id') else str(test)
        if name.startswith('setUpClass') or name.startswith('tearDownClass'):
            name = str(test)
        self.out.write(json.dumps({'status': status, 'name': name,
                                   'detail': detail}) + '\n')
        self.out.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._emit('PASS', test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._emit('FAIL', test, self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._emit('FAIL', test, self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._emit('SKIP', test, reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._emit('SKIP', test, 'expected failure')

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._emit('FAIL', test, 'unexpected success')

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._emit('FAIL', subtest, self._exc_info_to_string(err, test))


def child_main(selector, outpath):
    sys.path.insert(0, INTEG_DIR)
    with open(outpath, 'a') as out:
        result = JsonResult(out)
        try:
            suite = unittest.TestLoader().loadTestsFromName(selector)
        except Exception:
            out.write(json.dumps({'status': 'FAIL', 'name': selector,
                                  'detail': traceback.format_exc()}) + '\n')
            return 0
        suite.run(result)
        if result.testsRun == 0 and not result.errors and not result.skipped:
            out.write(json.dumps({'status': 'FAIL', 'name': selector,
                                  'detail': 'no tests found'}) + '\n')
    return 0


# --------------------------------------------------------------- parent: jobs

RUNNING = set()         # module processes, each leading its own group


def indent(text):
    return ''.join('    ' + l + '\n' for l in text.rstrip('\n').splitlines())


def run_module(selector, env):
    """Run one integration module in a subprocess; list of results."""
    fd, outpath = tempfile.mkstemp(prefix='astleyd-results-')
    os.close(fd)
    errf = tempfile.TemporaryFile()
    results = []
    timed_out = False
    t0 = time.monotonic()
    try:
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                              '--child', selector, outpath],
                             cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                             stdout=errf, stderr=subprocess.STDOUT,
                             start_new_session=True)
        RUNNING.add(p)
        try:
            try:
                rc = p.wait(MODULE_TIMEOUT)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(p.pid, signal.SIGKILL)
                rc = p.wait()
        finally:
            RUNNING.discard(p)
        with open(outpath) as f:
            for line in f:
                try:
                    results.append(json.loads(line))
                except ValueError:
                    pass
        errf.seek(0)
        output = errf.read().decode(errors='replace')
    finally:
        errf.close()
        os.unlink(outpath)
    mod = selector.split('.')[0]
    if timed_out:
        results.append({'status': 'FAIL', 'name': mod,
                        'detail': 'timed out after %gs\n%s' %
                                  (MODULE_TIMEOUT, output)})
    elif rc != 0:
        results.append({'status': 'FAIL', 'name': mod,
                        'detail': 'test process exited %d\n%s' % (rc, output)})
    elif output.strip():
        results.append({'status': 'NOTE', 'name': mod, 'detail': output})
    results.append({'status': 'TIME', 'name': mod,
                    'detail': '%.1fs' % (time.monotonic() - t0)})
    return results


TAP_PLAN = re.compile(r'^1\.\.(\d+)\s*(?:#\s*(.*))?$')
TAP_TEST = re.compile(r'^(not )?ok\b\s*(\d+)?\s*(?:-\s*)?(.*?)\s*$')
TAP_DIRECTIVE = re.compile(r'(?<!\\)#\s*(SKIP|TODO)\S*\s*(.*)$', re.I)


def run_unit(path, env):
    """Run one TAP unit test binary; list of results."""
    name = 'unit/' + os.path.basename(path)
    results = []
    try:
        r = subprocess.run([path], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=UNIT_TIMEOUT)
        out = r.stdout.decode(errors='replace')
        err = r.stderr.decode(errors='replace')
        rc = r.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b'').decode(errors='replace')
        err = (e.stderr or b'').decode(errors='replace')
        rc = 'timeout after %ds' % UNIT_TIMEOUT
    plans = []
    count = 0
    problems = []
    pending_fail = None
    for line in out.splitlines():
        m = TAP_PLAN.match(line)
        if m:
            plans.append(int(m.group(1)))
            if int(m.group(1)) == 0:
                results.append({'status': 'SKIP', 'name': name,
                                'detail': m.group(2) or 'no tests planned'})
            continue
        if line.startswith('Bail out!'):
            problems.append(line)
            continue
        m = TAP_TEST.match(line)
        if not m:
            # Diagnostics ("# ...") after a failure belong to it.
            if pending_fail is not None and line.startswith('#'):
                pending_fail['detail'] += line + '\n'
            continue
        pending_fail = None
        count += 1
        num = int(m.group(2)) if m.group(2) else count
        if num != count:
            problems.append('test number %d out of sequence (expected %d)' %
                            (num, count))
        desc = m.group(3)
        d = TAP_DIRECTIVE.search(desc)
        if d:
            desc = desc[:d.start()].rstrip()
        tname = '%s %d - %s' % (name, num, desc) if desc else \
            '%s %d' % (name, num)
        if d and d.group(1).upper() == 'SKIP':
            results.append({'status': 'SKIP', 'name': tname,
                            'detail': d.group(2) or 'skipped'})
        elif d and d.group(1).upper() == 'TODO':
            results.append({'status': 'SKIP', 'name': tname,
                            'detail': 'TODO ' + d.group(2)})
        elif m.group(1):
            pending_fail = {'status': 'FAIL', 'name': tname, 'detail': ''}
            results.append(pending_fail)
        else:
            results.append({'status': 'PASS', 'name': tname})
    if len(plans) != 1:
        problems.append('%d plan lines (want exactly one "1..N")' % len(plans))
    elif plans[0] != count:
        problems.append('planned %d tests, ran %d' % (plans[0], count))
    failed = any(r['status'] == 'FAIL' for r in results)
    if isinstance(rc, int) and rc < 0:
        problems.append('killed by %s' % signal.Signals(-rc).name)
    elif rc != 0 and not (failed and rc == 1):
        # A TAP program exits 1 when some test failed: already reported.
        problems.append('exit status %s' % rc)
    san = [l for l in err.splitlines() + out.splitlines()
           if any(p in l for p in SANITIZER_PATTERNS)]
    if san:
        problems.append('sanitizer output:\n' + '\n'.join(san))
    if problems:
        # Passing lines are already listed; keep the rest, and the tails.
        rest = [l for l in out.splitlines() if not re.match(r'ok\b', l)]
        results.append({'status': 'FAIL', 'name': name,
                        'detail': '\n'.join(problems) +
                        '\n--- stdout (without ok lines):\n%s\n'
                        '--- stderr:\n%s' % ('\n'.join(rest[-60:]),
                                              err[-6000:])})
    return results


def run_fuzz(path, env):
    """Replay the seed corpus, then fuzz for FUZZ_SECONDS: no crash, leak
    or timeout.  New inputs go to a temp dir, never into the tree."""
    seconds = int(os.environ.get('FUZZ_SECONDS', '60'))
    results = []
    work = tempfile.mkdtemp(prefix='astleyd-fuzz-')
    common = ['-timeout=5', '-rss_limit_mb=2048',
              '-artifact_prefix=' + work + '/']
    try:
        for name, args, limit in (
                ('fuzz/replay corpus', ['-runs=0', FUZZ_CORPUS], 120),
                ('fuzz/%ds on the parser' % seconds,
                 ['-max_total_time=%d' % seconds, '-print_final_stats=1',
                  '-dict=' + os.path.join(ROOT, 'tests', 'fuzz', 'http.dict'),
                  work, FUZZ_CORPUS], seconds + 120)):
            try:
                r = subprocess.run([path] + common + args, cwd=ROOT, env=env,
                                   stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=limit)
                out, rc = r.stdout.decode(errors='replace'), r.returncode
            except subprocess.TimeoutExpired as e:
                out = (e.stdout or b'').decode(errors='replace')
                rc = 'timeout'
            if rc != 0:
                results.append({'status': 'FAIL', 'name': name,
                                'detail': 'exit %s\n%s' % (rc, out[-6000:])})
                continue
            results.append({'status': 'PASS', 'name': name})
            stats = [l for l in out.splitlines()
                     if l.startswith(('stat::number_of_executed_units',
                                      'stat::average_exec_per_sec',
                                      'Done '))]
            if stats:
                results.append({'status': 'NOTE', 'name': name,
                                'detail': '\n'.join(stats)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def module_names():
    return sorted(f[:-3] for f in os.listdir(INTEG_DIR)
                  if f.startswith('test_') and f.endswith('.py'))


def unit_paths():
    if not os.path.isdir(UNIT_DIR):
        return []
    return sorted(os.path.join(UNIT_DIR, f) for f in os.listdir(UNIT_DIR)
                  if f.startswith('test_') and
                  os.access(os.path.join(UNIT_DIR, f), os.X_OK) and
                  os.path.isfile(os.path.join(UNIT_DIR, f)))


def normalize(arg):
    """(kind, name): kind 'unit' for unit/NAME or a path to a unit test,
    'integration' for NAME.py or integration/NAME, else None (both)."""
    a = arg.rstrip('/')
    kind = None
    if a.endswith('.py') or 'integration/' in a:
        kind = 'integration'
    elif 'unit/' in a or a.startswith('build/'):
        kind = 'unit'
    a = os.path.basename(a)
    if a.endswith('.py'):
        a = a[:-3]
    return kind, a


def main(argv):
    jobs = 3
    args = []
    it = iter(argv)
    for a in it:
        if a == '-j':
            jobs = int(next(it))
        elif a.startswith('-j'):
            jobs = int(a[2:])
        elif a in ('-h', '--help'):
            print(__doc__.strip())
            return 0
        else:
            args.append(normalize(a))
    jobs = max(1, jobs)
    fuzz = not args or (None, 'fuzz') in args
    args = [a for a in args if a != (None, 'fuzz')]
    only_fuzz = fuzz and not args and len(argv) > 0

    units = unit_paths()
    mods = module_names()
    if only_fuzz:
        sel_units, sel_mods = [], []
    elif args:
        unames = [os.path.basename(u) for u in units]
        sel_units = [u for u in units
                     if (None, os.path.basename(u)) in args or
                     ('unit', os.path.basename(u)) in args]
        sel_mods = [a for k, a in args
                    if k != 'unit' and a.split('.')[0] in mods]
        unknown = [a for k, a in args
                   if not (k != 'integration' and a in unames) and
                   not (k != 'unit' and a.split('.')[0] in mods)]
        for a in unknown:
            print('run.py: no unit test or integration module %r' % a,
                  file=sys.stderr)
        if unknown:
            print('0 passed, 0 failed, 0 skipped')
            return 1
    else:
        sel_units, sel_mods = units, mods
        if not units:
            print('# no C unit tests in %s (run make asan)' %
                  os.path.relpath(UNIT_DIR, ROOT))

    env = dict(os.environ)
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    env.setdefault('ASTLEYD_BIN', os.path.join(ROOT, 'build', 'asan',
                                               'astleyd'))
    tmp = None
    counts = {'PASS': 0, 'FAIL': 0, 'SKIP': 0}
    lock = threading.Lock()

    def report(results):
        with lock:
            for r in results:
                st, name, detail = r['status'], r['name'], r.get('detail', '')
                if st == 'PASS':
                    print('PASS %s' % name)
                elif st == 'SKIP':
                    print('SKIP %s: %s' % (name, detail))
                elif st == 'FAIL':
                    print('FAIL %s' % name)
                    sys.stdout.write(indent(detail))
                elif st == 'NOTE':
                    sys.stdout.write(''.join('# %s: %s\n' % (name, l) for l in
                                             detail.rstrip().splitlines()))
                    continue
                elif st == 'TIME':
                    print('# %s took %s' % (name, detail))
                    continue
                counts[st] += 1
            sys.stdout.flush()

    work = []
    if fuzz:
        # First, so its minute overlaps everything else.
        if os.access(FUZZER, os.X_OK):
            work.append((run_fuzz, FUZZER, dict(env)))
        elif only_fuzz:
            report([{'status': 'FAIL', 'name': 'fuzz',
                     'detail': '%s is missing (make %s)' % (
                         FUZZER, os.path.relpath(FUZZER, ROOT))}])
    if sel_mods:
        binpath = env['ASTLEYD_BIN']
        if not (os.path.isfile(binpath) and os.access(binpath, os.X_OK)):
            report([{'status': 'FAIL', 'name': 'astleyd binary',
                     'detail': '%s is missing or not executable '
                               '(run make asan)' % binpath}])
            sel_mods = []
    if sel_mods:
        sys.path.insert(0, INTEG_DIR)
        import astleyd_test
        tmp = tempfile.mkdtemp(prefix='astleyd-run-')
        try:
            astleyd_test.make_certs(tmp)
        except Exception as e:
            report([{'status': 'FAIL', 'name': 'certificate generation',
                     'detail': str(e)}])
            sel_mods = []
        env['ASTLEYD_TEST_CERTS'] = tmp
        base = random.randrange(10000, max(10001, 30000 - PORTS_PER_MODULE *
                                           len(sel_mods)), 100)
        sel_mods.sort(key=lambda m: (WEIGHT.get(m.split('.')[0], 9), m))
        for i, m in enumerate(sel_mods):
            menv = dict(env)
            first = base + i * PORTS_PER_MODULE
            menv['ASTLEYD_TEST_PORTS'] = '%d-%d' % (
                first, first + PORTS_PER_MODULE - 1)
            work.append((run_module, m, menv))
    uenv = dict(env)
    for var in ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS'):
        # Reports must reach the stderr we scan.
        uenv[var] = ':'.join(o for o in uenv.get(var, '').split(':')
                             if o and not o.startswith('log_path='))
    for u in sel_units:
        work.append((run_unit, u, uenv))

    def interrupted(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    t0 = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futs = [pool.submit(fn, arg, e) for fn, arg, e in work]
        for f in futs:
            f.add_done_callback(lambda f: report(
                f.result() if f.exception() is None else
                [{'status': 'FAIL', 'name': 'run.py',
                  'detail': repr(f.exception())}]))
        while not all(f.done() for f in futs):
            time.sleep(0.1)
        pool.shutdown()
    except KeyboardInterrupt:
        # Each module leads a process group holding its servers.
        pool.shutdown(wait=False, cancel_futures=True)
        for p in list(RUNNING):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        raise
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print('# total %.1fs' % (time.monotonic() - t0))
    print('%d passed, %d failed, %d skipped' %
          (counts['PASS'], counts['FAIL'], counts['SKIP']))
    if counts['FAIL'] or counts['PASS'] + counts['FAIL'] == 0:
        return 1
    return 0


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--child':
        sys.exit(child_main(sys.argv[2], sys.argv[3]))
    sys.exit(main(sys.argv[1:]))
