"""cloudpickle-based executors: cloudpickle itself, loky and joblib.

These run where the packages are importable.  joblib (which vendors loky)
is often only in the system Python (Debian: apt-get install python3-joblib
python3-cloudpickle); if this interpreter lacks it, the loky/joblib checks
run as a script under /usr/bin/python3 when that interpreter can load the
same extension (same EXT_SUFFIX), and are skipped, saying why, otherwise."""

import importlib.util
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

import support  # noqa: F401  (first: sets up the environment)
import shmring

from support import ShmLeakMixin, other_pythons

HAVE_JOBLIB = importlib.util.find_spec('joblib') is not None
# cloudpickle itself, or the copy joblib ships (Debian's python3-joblib)
CLOUDPICKLE = 'cloudpickle' if importlib.util.find_spec('cloudpickle') else \
    'joblib.externals.cloudpickle' if HAVE_JOBLIB else None
HAVE_CLOUDPICKLE = CLOUDPICKLE is not None

LOKY_SCRIPT = textwrap.dedent('''
    import sys
    import shmring
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    def square_into(q, i):
        q.put(i * i)
        return i

    if __name__ == '__main__':
        for q in (shmring.Queue(), shmring.Queue(10), shmring.JoinableQueue()):
            r = Parallel(n_jobs=2, backend='loky')(delayed(square_into)(q, i) for i in range(8))
            assert r == list(range(8)), r
            got = sorted(q.get(timeout=30) for _ in range(8))
            assert got == [i * i for i in range(8)], got
        ex = get_reusable_executor(max_workers=2)
        # a lambda closing over the queue: cloudpickle pickles it by value
        assert ex.submit(lambda: q.put('from a lambda') or 7).result(60) == 7
        assert q.get(timeout=30) == 'from a lambda'
        fs = [ex.submit(square_into, q, i) for i in range(5)]
        assert [f.result(60) for f in fs] == list(range(5))
        assert sorted(q.get(timeout=30) for _ in range(5)) == [0, 1, 4, 9, 16]
        ex.shutdown(wait=True)
        print('loky ok', sys.version.split()[0])
''')


def cloud_child(blob, out):
    cloudpickle = importlib.import_module(CLOUDPICKLE)
    fn = cloudpickle.loads(blob)
    out.put(fn())


class CloudpickleTest(ShmLeakMixin, unittest.TestCase):

    @unittest.skipUnless(HAVE_CLOUDPICKLE, 'cloudpickle is not installed for %s'
                         % sys.executable)
    def test_cloudpickle_closure(self):
        cloudpickle = importlib.import_module(CLOUDPICKLE)
        q = shmring.Queue(3)
        q.put('x')
        blob = cloudpickle.dumps(lambda: (q.get(timeout=10), q.maxsize))
        # loaded in this process ...
        self.assertEqual(cloudpickle.loads(blob)(), ('x', 3))
        # ... and in another one (through /proc/<pid>/fd of this process)
        q.put('y')
        blob = cloudpickle.dumps(lambda: (q.get(timeout=10), q.maxsize))
        out = shmring.Queue()
        p = multiprocessing.get_context('fork').Process(target=cloud_child, args=(blob, out))
        p.start()
        self.assertEqual(out.get(timeout=30), ('y', 3))
        p.join(30)
        self.assertEqual(p.exitcode, 0)


class LokyTest(ShmLeakMixin, unittest.TestCase):

    def test_loky_and_joblib(self):
        if HAVE_JOBLIB:
            exe = sys.executable
        else:
            candidates = [p for p in other_pythons()
                          if subprocess.run([p, '-c', 'import joblib, cloudpickle'],
                                            capture_output=True).returncode == 0]
            if not candidates:
                self.skipTest('joblib (with loky) is not importable by %s, and no other '
                              'python3 with the same extension ABI has it '
                              '(apt-get install python3-joblib python3-cloudpickle)'
                              % sys.executable)
            exe = candidates[0]
        env = dict(os.environ)
        if exe != sys.executable:
            # the other interpreter imports the very package under test
            # (only it: a symlink in a folder of its own)
            tmp = tempfile.mkdtemp(prefix='shmring-loky-')
            self.addCleanup(shutil.rmtree, tmp, True)
            os.symlink(os.path.dirname(os.path.abspath(shmring.__file__)),
                       os.path.join(tmp, 'shmring'))
            env['PYTHONPATH'] = tmp
        r = subprocess.run([exe, '-c', LOKY_SCRIPT], capture_output=True, text=True,
                           timeout=180, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('loky ok', r.stdout)


if __name__ == '__main__':
    unittest.main()
