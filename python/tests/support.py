"""Helpers shared by the shmring Python tests."""
import os
import sys
import uuid

# The package under test: the one importable (PYTHONPATH=build/python from
# ninja, or an installed one); failing that, the tree's build/python.
import importlib.util  # noqa: E402
_here = os.path.dirname(os.path.abspath(__file__))
_built = os.path.normpath(os.path.join(_here, '..', '..', 'build', 'python'))
if importlib.util.find_spec('shmring') is None and \
        os.path.isdir(os.path.join(_built, 'shmring')):
    sys.path.insert(0, _built)
    os.environ['PYTHONPATH'] = os.pathsep.join(
        [_built] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])

# Side segments of this test run get a prefix of their own (children inherit
# it), so that a concurrent run of the suite cannot look like a leak here.
os.environ.setdefault('SHMRING_SEGMENT_PREFIX', 'shmring-py-t%d-' % os.getpid())
RUN_PID = os.getpid()

import shmring  # noqa: E402


def slow_timeout_factor():
    """Slack for timing assertions on a loaded machine
    (SHMRING_TEST_SLACK=<factor>, default 2)."""
    try:
        return float(os.environ.get('SHMRING_TEST_SLACK', '2'))
    except ValueError:
        return 2.0


def fd_count():
    return len(os.listdir('/proc/self/fd'))


def unique_name(tag='t'):
    return 'shmring-pytest-%s-%d-%s' % (tag, RUN_PID, uuid.uuid4().hex[:10])


def shm_names():
    try:
        return set(os.listdir('/dev/shm'))
    except OSError:
        return set()


class ShmLeakMixin:
    """Fails a test that leaves a side segment or a test-named queue in
    /dev/shm (and removes them, so one leak is reported once)."""

    def setUp(self):
        super().setUp()
        self._shm_before = shm_names()

    def tearDown(self):
        new = sorted(n for n in shm_names() - self._shm_before
                     if n.startswith(shmring.SEGMENT_PREFIX) or
                     n.startswith('shmring-pytest-') and '-%d-' % RUN_PID in n)
        for n in new:
            try:
                os.unlink('/dev/shm/' + n)
            except OSError:
                pass
        super().tearDown()
        self.assertEqual(new, [], 'left in /dev/shm')


def other_pythons():
    """Interpreters besides this one that can load the extension built for
    it (same EXT_SUFFIX), for the tests that need a package installed only
    there (joblib/loky from Debian's python3-joblib)."""
    import subprocess
    import sysconfig
    out = []
    for exe in ('/usr/bin/python3',):
        if not os.path.exists(exe) or os.path.realpath(exe) == os.path.realpath(sys.executable):
            continue
        try:
            suffix = subprocess.run(
                [exe, '-c', 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))'],
                capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if suffix == sysconfig.get_config_var('EXT_SUFFIX'):
            out.append(exe)
    return out
